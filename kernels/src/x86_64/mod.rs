//! x86_64 tiers. Every feature beyond SSE2 is detected at run time (see [`crate::cpu`]) because
//! one binary must run on any x86_64 host.

pub mod avx2;
pub mod avx512vnni;
pub mod avxvnni;
