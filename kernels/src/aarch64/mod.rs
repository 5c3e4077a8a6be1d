//! aarch64 tiers. NEON (ARMv8.0 Advanced SIMD) is part of the `aarch64-unknown-linux-gnu`
//! baseline, so it is used unconditionally; SDOT (`dotprod`, ARMv8.2) and SMMLA (`i8mm`,
//! ARMv8.6) are detected at run time, so one generic binary runs on a Pi 3 and uses SDOT on a Pi 5.

pub mod dotprod;
mod drive;
pub mod i8mm;
pub mod neon;
