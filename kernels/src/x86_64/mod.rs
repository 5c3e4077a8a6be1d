//! x86_64 tiers. Every feature beyond SSE2 is detected at run time (`is_x86_feature_detected!`)
//! because one binary must run on any x86_64 host.

pub mod avx2;
pub mod avx512vnni;
