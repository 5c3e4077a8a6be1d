//! Explanations: relevance maps, Salient Relevance maps, faithfulness.
pub mod faithfulness;
pub mod maps;
pub mod saliency;
