//! Branch-free scalar f32 approximations of `exp` and the two GELU forms, written so that LLVM
//! vectorises the loops that call them (no branches, only selects, `mul_add` for fused
//! multiply-adds). The tier modules instantiate them under `#[target_feature]`, which turns every
//! `mul_add` into a vector FMA; on a target without hardware FMA they would become libm calls, so
//! only call them from a tier that proves FMA (AVX2+FMA on x86_64, any aarch64). The NEON tier
//! mirrors `exp_f32` and `gelu_erf_f32` operation for operation in `aarch64::neon::math` (same
//! constants, same order), so both give the same bits.

/// `1.5·2²³`: adding it to a float with |x| < 2²² rounds x to the nearest integer (ties to even)
/// and leaves that integer in the low mantissa bits.
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0;
pub(crate) const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that `n·LN2_HI` is exact for |n| ≤ 2¹⁵ (LN2_HI has 9 significant bits).
pub(crate) const LN2_HI: f32 = 0.693_359_4;
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// Above this `exp` overflows f32.
pub(crate) const EXP_HI: f32 = 88.722_83;
/// Below this `exp` returns 0: `e^-86.6 ≈ 2.3e-38` is the smallest result still computed through
/// the fast 2ⁿ construction (n ≥ -125); smaller results are flushed to zero, as with FTZ.
pub(crate) const EXP_LO: f32 = -86.6;

/// `max(x, lo)` that keeps NaN (maps to one `maxps`/`fmax`-like select).
#[inline(always)]
fn clamp_lo(x: f32, lo: f32) -> f32 {
    if lo > x { lo } else { x }
}

/// `min(x, hi)` that keeps NaN.
#[inline(always)]
fn clamp_hi(x: f32, hi: f32) -> f32 {
    if hi < x { hi } else { x }
}

/// `e^x` with a relative error of about 2 ulp for `-86.6 ≤ x ≤ 88.7`, `+∞` above, `0` below
/// (results under 2.3e-38 are flushed), NaN for NaN.
///
/// Method: `x = n·ln2 + r` with `n = round(x·log2 e)`, `|r| ≤ ln2/2`; `e^r` by its degree-7
/// Taylor polynomial (truncation error `r⁸/8! < 5e-9`); `2ⁿ` built from exponent bits as
/// `2ⁿ⁻¹·2` so that n = 128 (x near the overflow bound) still has a normal representation.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    let xc = clamp_hi(clamp_lo(x, EXP_LO), EXP_HI);
    let t = xc.mul_add(LOG2_E, ROUND_MAGIC);
    let n = t - ROUND_MAGIC;
    let r = n.mul_add(-LN2_HI, xc);
    let r = n.mul_add(-LN2_LO, r);
    let mut p: f32 = 1.0 / 5040.0;
    p = p.mul_add(r, 1.0 / 720.0);
    p = p.mul_add(r, 1.0 / 120.0);
    p = p.mul_add(r, 1.0 / 24.0);
    p = p.mul_add(r, 1.0 / 6.0);
    p = p.mul_add(r, 0.5);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    // The low mantissa bits of `t` hold n (two's complement, as 0x4B40_0000 + n); shifting
    // (n + 126) into the exponent field discards the magic's own bits, giving 2ⁿ⁻¹ for
    // n ∈ [-125, 128].
    let half_scale = f32::from_bits(t.to_bits().wrapping_add(126) << 23);
    let y = p * half_scale * 2.0;
    let y = if x > EXP_HI { f32::INFINITY } else { y };
    if x < EXP_LO { 0.0 } else { y }
}

// Abramowitz & Stegun 7.1.26: erfc(z) ≈ t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))·e^(−z²),
// t = 1/(1 + p·z), z ≥ 0, absolute error ≤ 1.5e-7.
pub(crate) const AS_P: f32 = 0.327_591_1;
pub(crate) const AS_A1: f32 = 0.254_829_6;
pub(crate) const AS_A2: f32 = -0.284_496_74;
pub(crate) const AS_A3: f32 = 1.421_413_7;
pub(crate) const AS_A4: f32 = -1.453_152;
pub(crate) const AS_A5: f32 = 1.061_405_4;

/// Exact-form GELU `x·Φ(x) = 0.5·x·(1 + erf(x/√2))`, absolute error ≤ 1e-7·max(1, |x|).
///
/// Computes `h = ½·erfc(|x|/√2)` (A&S 7.1.26) and returns `x·h` for x < 0 and `x·(1 − h)`
/// otherwise, so the negative tail has no cancellation (`1 + erf` would lose all digits there).
#[inline(always)]
pub(crate) fn gelu_erf_f32(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / AS_P.mul_add(z, 1.0);
    let mut poly = AS_A5;
    poly = poly.mul_add(t, AS_A4);
    poly = poly.mul_add(t, AS_A3);
    poly = poly.mul_add(t, AS_A2);
    poly = poly.mul_add(t, AS_A1);
    poly *= t;
    let h = 0.5 * poly * exp_f32(-(z * z));
    let phi = if x < 0.0 { h } else { 1.0 - h };
    x * phi
}

/// √(2/π), the tanh-GELU's inner scale.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// Tanh-form GELU `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, computed as the equal
/// `x / (1 + e^(−2u))` (one exp, one division, no cancellation); relative error a few ulp.
#[inline(always)]
pub(crate) fn gelu_tanh_f32(x: f32) -> f32 {
    let x2 = x * x;
    let u = SQRT_2_OVER_PI * x * (0.044_715f32).mul_add(x2, 1.0);
    x / (1.0 + exp_f32(-2.0 * u))
}
