//! Quantization parameters of the quantized ops and the exact integer mapping the executor uses.
//!
//! Every function here is plain scalar arithmetic on IEEE-754 `f32` and integers with no libm
//! call, so the integer values it produces are identical on every CPU: that is what makes the
//! integer path of a quantized bundle bit-exact between the host and the board.

use qvit_kernels::log2::MANTISSA_THRESHOLDS;

/// Fraction bits of the integer form of a [`ActQuant::Log2`] level: level `q` stands for the
/// integer `P(q) = round(2^LOG2_FRAC_BITS · 2^(−q/m))` (see [`log_steps`] for `m`), so the
/// product with an integer operand is exact integer arithmetic; with `m = 1` it is a shift.
pub const LOG2_FRAC_BITS: u32 = 15;

/// Levels per octave of a `bits`-bit log quantizer: 1 up to 4 bits (pure powers of two), then
/// doubling with every extra bit (2 at 5 bits, RepQ-ViT's log√2; 16 at 8 bits). Extra bits thus
/// buy resolution instead of reaching ever smaller probabilities: every width spans about
/// 2⁻¹⁶, below which the fixed-point form is zero anyway.
pub fn log_steps(bits: u8) -> u32 {
    1 << (bits.clamp(4, 8) - 4)
}

/// The fixed-point value `P(q) = round_half_up(2^15 · 2^(−q/m))` of log level `q` with `m`
/// levels per octave (`m` a power of two ≤ 16): exact integer arithmetic, the kernels' own.
pub fn log_level_value(q: u32, m: u32) -> i32 {
    qvit_kernels::log2::level_value(q, m)
}

/// Symmetric integer constant (quantized weights), row-major like an f32 constant:
/// `bits` in 2..=8 and every value in `[−(2^(bits−1) − 1), 2^(bits−1) − 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntData {
    /// Bit width of the stored values.
    pub bits: u8,
    /// The values, one per element.
    pub data: Vec<i8>,
}

/// Largest magnitude of a symmetric `bits`-bit value: `2^(bits−1) − 1`.
pub fn symmetric_max(bits: u8) -> i32 {
    (1i32 << (bits.clamp(1, 8) - 1)) - 1
}

/// Largest level of an unsigned `bits`-bit value: `2^bits − 1`.
pub fn unsigned_max(bits: u8) -> i32 {
    (1i32 << bits.clamp(1, 8)) - 1
}

fn check_bits(bits: u8) -> Result<(), String> {
    if (2..=8).contains(&bits) {
        Ok(())
    } else {
        Err(format!("{bits} bits; quantized values have 2 to 8 bits"))
    }
}

impl IntData {
    /// Checks the bit width and that every value lies in the symmetric range.
    pub fn check(&self) -> Result<(), String> {
        check_int_values(self.bits, self.data.iter().copied())
    }
}

/// [`IntData::check`] on values given one at a time, so that weights still in a bundle's
/// bit-packed form are checked with the same errors without being unpacked into memory.
pub fn check_int_values(bits: u8, values: impl IntoIterator<Item = i8>) -> Result<(), String> {
    check_bits(bits)?;
    let max = symmetric_max(bits);
    match values
        .into_iter()
        .enumerate()
        .find(|&(_, v)| (v as i32).abs() > max)
    {
        Some((i, v)) => Err(format!(
            "value {v} at {i} outside the symmetric {bits}-bit range ±{max}"
        )),
        None => Ok(()),
    }
}

/// How an activation is mapped to integers at the input of a quantized op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActQuant {
    /// Uniform affine: `q = clamp(round_half_even(x/scale) + zero, 0, 2^bits − 1)`, standing
    /// for `(q − zero)·scale`. The division is a multiplication by the `f32` reciprocal.
    Uniform {
        /// Bit width, 2..=8.
        bits: u8,
        /// Step size.
        scale: f32,
        /// Zero point, in `[0, 2^bits − 1]`.
        zero: i32,
    },
    /// Uniform symmetric: `q = clamp(round_half_even(x/scale), −(2^(bits−1)−1), 2^(bits−1)−1)`,
    /// standing for `q·scale`. The right operand of activation × activation products.
    Symmetric {
        /// Bit width, 2..=8.
        bits: u8,
        /// Step size.
        scale: f32,
    },
    /// Logarithmic levels for values in `[0, scale]` (post-softmax probabilities):
    /// `q = clamp(round(−m·log2(x/scale)), 0, 2^bits − 1)` with `m = log_steps(bits)` levels
    /// per octave, standing for `scale·P(q)/2^15` ([`log_level_value`]). Up to 4 bits `m = 1`:
    /// powers of two, whose products are shifts. `x ≤ 0` maps to the last level.
    Log2 {
        /// Bit width, 2..=8.
        bits: u8,
        /// The largest representable value.
        scale: f32,
    },
    /// Uniform affine with a step and zero point per row (token), taken at run time from that
    /// row's range ([`RowQuant::of_row`]): a few high-norm tokens then cost only their own
    /// resolution, not every token's. Inputs of [`crate::Op::QLinear`] only.
    Dynamic {
        /// Bit width, 2..=8.
        bits: u8,
    },
    /// Symmetric with a step per column of a [`crate::Op::QMatMul`]'s product, taken at run
    /// time from that column's largest magnitude along the reduction axis
    /// ([`RowQuant::symmetric_of_row`]): one step per key token of K in `Q·Kᵀ`, per channel of
    /// V in `P·V`. A few high-norm tokens or channels then cost only their own resolution. The
    /// right operand of QMatMul only.
    DynamicSymmetric {
        /// Bit width, 2..=8.
        bits: u8,
    },
}

/// The quantizer of one row under [`ActQuant::Dynamic`]: `q = clamp(round_half_even(x·inv) +
/// zero, 0, 2^bits − 1)`, standing for `(q − zero)·scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowQuant {
    /// Step size.
    pub scale: f32,
    /// `1/scale`, the multiplier the level computation uses.
    pub inv: f32,
    /// Zero point, in `[0, 2^bits − 1]`.
    pub zero: i32,
}

impl RowQuant {
    /// The row's quantizer: its range `[min(0, min x), max(0, max x)]` (zero included, so it is
    /// exact) cut into `2^bits − 1` steps. Scalar comparisons, one IEEE division and the
    /// magic-number rounding, so every CPU derives the same step and zero point from the same
    /// row. NaN is ignored; a row of zeros, or one whose range is not a normal positive number,
    /// gets step 1 (all its values round to the zero point's level or clamp).
    pub fn of_row(x: &[f32], bits: u8) -> RowQuant {
        let (lo, hi) = row_range(x);
        let max = unsigned_max(bits);
        RowQuant::with_step((hi - lo) / max as f32, |inv| {
            round_clamped(-lo * inv).clamp(0, max)
        })
    }

    /// The quantizer of step `scale` and zero point `zero(1/scale)`, or step 1 and zero point
    /// 0 when the step or its reciprocal is not a normal number.
    fn with_step(scale: f32, zero: impl FnOnce(f32) -> i32) -> RowQuant {
        let inv = 1.0 / scale;
        if !(scale.is_normal() && inv.is_normal()) {
            return RowQuant {
                scale: 1.0,
                inv: 1.0,
                zero: 0,
            };
        }
        RowQuant {
            scale,
            inv,
            zero: zero(inv),
        }
    }

    /// The row's symmetric quantizer under [`ActQuant::DynamicSymmetric`]: its largest
    /// magnitude cut into `2^(bits−1) − 1` steps each way, zero point 0. Scalar, as
    /// [`RowQuant::of_row`], with the same fallback to step 1.
    pub fn symmetric_of_row(x: &[f32], bits: u8) -> RowQuant {
        let (lo, hi) = row_range(x);
        let m = if -lo > hi { -lo } else { hi };
        RowQuant::with_step(m / symmetric_max(bits) as f32, |_| 0)
    }
}

/// Lanes of [`row_range`]: enough independent chains for the compiler to keep them in vector
/// registers on every target.
const RANGE_LANES: usize = 16;

/// `(min(0, min x), max(0, max x))`, NaN ignored. Comparisons with NaN are false, so NaN never
/// becomes a bound, and the bounds only move away from 0.0 to strictly smaller (larger)
/// values, so neither is ever −0.0: the result is one value whatever the order, and
/// [`RANGE_LANES`] independent chains give the bits a single loop gives, vectorised.
fn row_range(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([0.0f32; RANGE_LANES], [0.0f32; RANGE_LANES]);
    let chunks = x.chunks_exact(RANGE_LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for ((v, lo), hi) in c.iter().zip(lo.iter_mut()).zip(hi.iter_mut()) {
            *lo = if *v < *lo { *v } else { *lo };
            *hi = if *v > *hi { *v } else { *hi };
        }
    }
    // Fold the lanes in halves (vector operations too), then the tail.
    let mut w = RANGE_LANES / 2;
    while w > 0 {
        for l in 0..w {
            lo[l] = if lo[l + w] < lo[l] { lo[l + w] } else { lo[l] };
            hi[l] = if hi[l + w] > hi[l] { hi[l + w] } else { hi[l] };
        }
        w /= 2;
    }
    let (mut lo_all, mut hi_all) = (lo[0], hi[0]);
    for &v in tail {
        if v < lo_all {
            lo_all = v;
        }
        if v > hi_all {
            hi_all = v;
        }
    }
    (lo_all, hi_all)
}

impl ActQuant {
    /// Bit width.
    pub fn bits(&self) -> u8 {
        match *self {
            ActQuant::Uniform { bits, .. }
            | ActQuant::Symmetric { bits, .. }
            | ActQuant::Log2 { bits, .. }
            | ActQuant::Dynamic { bits }
            | ActQuant::DynamicSymmetric { bits } => bits,
        }
    }

    /// Step size (the largest value for [`ActQuant::Log2`]; 1 for the dynamic quantizers, whose
    /// steps are per row or column, so a factor of it changes nothing).
    pub fn scale(&self) -> f32 {
        match *self {
            ActQuant::Uniform { scale, .. }
            | ActQuant::Symmetric { scale, .. }
            | ActQuant::Log2 { scale, .. } => scale,
            ActQuant::Dynamic { .. } | ActQuant::DynamicSymmetric { .. } => 1.0,
        }
    }

    /// Whether the step (and zero point) are taken per row or column at run time.
    pub fn is_dynamic(&self) -> bool {
        matches!(
            self,
            ActQuant::Dynamic { .. } | ActQuant::DynamicSymmetric { .. }
        )
    }

    /// The quantizer a dynamic `self` takes for `row` (the values of one row of a QLinear or
    /// QMatMul left operand, or one column of a QMatMul right operand); `None` if static.
    pub fn of_row(&self, row: &[f32]) -> Option<RowQuant> {
        match *self {
            ActQuant::Dynamic { bits } => Some(RowQuant::of_row(row, bits)),
            ActQuant::DynamicSymmetric { bits } => Some(RowQuant::symmetric_of_row(row, bits)),
            _ => None,
        }
    }

    /// Checks bits, scale and zero point.
    pub fn check(&self) -> Result<(), String> {
        check_bits(self.bits())?;
        let s = self.scale();
        if !(s.is_finite() && s > 0.0 && (1.0 / s).is_finite()) {
            return Err(format!("scale {s} is not a positive normal number"));
        }
        if let ActQuant::Uniform { bits, zero, .. } = *self
            && !(0..=unsigned_max(bits)).contains(&zero)
        {
            return Err(format!(
                "zero point {zero} outside [0, {}]",
                unsigned_max(bits)
            ));
        }
        Ok(())
    }

    /// The integer level of `x` (see each variant). NaN maps to the level of zero.
    pub fn level(&self, x: f32, inv_scale: f32) -> i32 {
        match *self {
            ActQuant::Uniform { bits, zero, .. } => {
                (round_clamped(x * inv_scale) + zero).clamp(0, unsigned_max(bits))
            }
            ActQuant::Symmetric { bits, .. } => {
                let m = symmetric_max(bits);
                round_clamped(x * inv_scale).clamp(-m, m)
            }
            ActQuant::Log2 { bits, .. } => {
                log_level(x * inv_scale, log_steps(bits), unsigned_max(bits))
            }
            // A row of one value: its own range.
            ActQuant::Dynamic { bits } => {
                let r = RowQuant::of_row(&[x], bits);
                (round_clamped(x * r.inv) + r.zero).clamp(0, unsigned_max(bits))
            }
            ActQuant::DynamicSymmetric { bits } => {
                let (r, m) = (RowQuant::symmetric_of_row(&[x], bits), symmetric_max(bits));
                round_clamped(x * r.inv).clamp(-m, m)
            }
        }
    }

    /// The real value the integer path gives `x`: quantize, then dequantize. For analysis and
    /// tests; the executor never goes back to f32 before the product.
    pub fn fake(&self, x: f32) -> f32 {
        let inv = 1.0 / self.scale();
        let q = self.level(x, inv);
        match *self {
            ActQuant::Uniform { scale, zero, .. } => (q - zero) as f32 * scale,
            ActQuant::Symmetric { scale, .. } => q as f32 * scale,
            ActQuant::Log2 { bits, scale } => {
                let p = log_level_value(q as u32, log_steps(bits));
                p as f32 * (scale / (1u32 << LOG2_FRAC_BITS) as f32)
            }
            ActQuant::Dynamic { bits } => {
                let r = RowQuant::of_row(&[x], bits);
                (q - r.zero) as f32 * r.scale
            }
            ActQuant::DynamicSymmetric { bits } => {
                q as f32 * RowQuant::symmetric_of_row(&[x], bits).scale
            }
        }
    }

    /// [`ActQuant::fake`] of a whole row: for the dynamic quantizers with the row's own
    /// quantizer (pass a column of a QMatMul right operand as the row), else element by element.
    pub fn fake_row(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match (self.dynamic_levels(), self.of_row(x)) {
            (Some((lo, hi)), Some(r)) => out.extend(x.iter().map(|&v| {
                let q = (round_clamped(v * r.inv) + r.zero).clamp(lo, hi);
                (q - r.zero) as f32 * r.scale
            })),
            _ => out.extend(x.iter().map(|&v| self.fake(v))),
        }
    }

    /// The range of a dynamic quantizer's levels (before any kernel offset): `[0, 2^bits − 1]`
    /// for [`ActQuant::Dynamic`], `±(2^(bits−1) − 1)` for [`ActQuant::DynamicSymmetric`];
    /// `None` if static.
    pub fn dynamic_levels(&self) -> Option<(i32, i32)> {
        match *self {
            ActQuant::Dynamic { bits } => Some((0, unsigned_max(bits))),
            ActQuant::DynamicSymmetric { bits } => {
                Some((-symmetric_max(bits), symmetric_max(bits)))
            }
            _ => None,
        }
    }
}

/// `x` rounded to the nearest f16 value (what a bundle stores in 2 bytes without loss).
pub fn round_to_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// `round_half_even(clamp(v, −512, 512))` as `i32`, NaN → 0: adding 1.5·2²³ rounds any
/// |v| ≤ 2²² to an integer, ties to even, in IEEE round-to-nearest, and leaves it in the low
/// mantissa bits. The same on every CPU, with no libm `rintf` call, and exactly what the
/// kernels' vectorised `KernelSet::levels_i8` computes.
#[inline(always)]
fn round_clamped(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    let v = if v.is_nan() { 0.0 } else { v };
    let c = v.clamp(-512.0, 512.0);
    (c + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

/// `clamp(round(−m·log2 y), 0, max)` from the bits of `y`, with no libm call: for
/// `y = M·2^e`, `M ∈ [1, 2)`, the answer is `−m·e − r` where `r` counts the thresholds
/// `2^((j + ½)/m)`, `j < m`, that `M` reaches (irrational, so there are no ties). Non-positive,
/// NaN and subnormal `y` give `max`. Builds a [`LogLevels`]; use one directly in loops.
pub fn log_level(y: f32, m: u32, max: i32) -> i32 {
    LogLevels::new(m, max).level(y)
}

/// Branch-free log levels with `m` (a power of two ≤ 16) levels per octave: the mantissa's top
/// five bits pick one of 32 buckets, each holding at most one threshold (thresholds are at
/// least 0.045·2²³ apart, a bucket is 2¹⁸ wide), so a level costs two table reads and one
/// comparison.
#[derive(Clone, Copy, Debug)]
pub struct LogLevels {
    m: i32,
    max: i32,
    /// Thresholds below each bucket's first mantissa.
    base: [u8; 32],
    /// The threshold inside each bucket, or `u32::MAX`.
    inner: [u32; 32],
}

impl LogLevels {
    /// Tables for `m` levels per octave and levels clamped to `[0, max]`.
    pub fn new(m: u32, max: i32) -> LogLevels {
        let m = m.clamp(1, 16);
        let half_stride = 16 / m;
        let thresholds = (0..m).map(|j| MANTISSA_THRESHOLDS[((2 * j + 1) * half_stride) as usize]);
        let mut base = [0u8; 32];
        let mut inner = [u32::MAX; 32];
        for t in thresholds {
            let bucket = (t >> 18) as usize;
            inner[bucket] = t;
            for b in base.iter_mut().skip(bucket + 1) {
                *b += 1;
            }
        }
        LogLevels {
            m: m as i32,
            max,
            base,
            inner,
        }
    }

    /// The level of `y` (see [`log_level`]).
    #[inline(always)]
    pub fn level(&self, y: f32) -> i32 {
        let bits = y.to_bits();
        // Zero, subnormals, negatives (sign bit) and NaN: the last level. One unsigned compare
        // instead of two float tests keeps loops over probabilities branch-free.
        if bits.wrapping_sub(0x0080_0000) > 0x7f80_0000 - 0x0080_0000 {
            return self.max;
        }
        let e = (bits >> 23) as i32 - 127;
        let mantissa = bits & 0x7f_ffff;
        let bucket = (mantissa >> 18) as usize;
        let r = self.base[bucket] as i32 + i32::from(mantissa >= self.inner[bucket]);
        // +inf has e = 128 and clamps to 0.
        (-self.m * e - r).clamp(0, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lane-parallel range gives exactly the bits of one sequential loop, on every length
    /// around the lane count, with NaN, ±0.0, ties and infinities mixed in.
    #[test]
    fn row_range_equals_the_sequential_loop() {
        let sequential = |x: &[f32]| {
            let (mut lo, mut hi) = (0.0f32, 0.0f32);
            for &v in x {
                if v < lo {
                    lo = v;
                }
                if v > hi {
                    hi = v;
                }
            }
            (lo.to_bits(), hi.to_bits())
        };
        let specials = [
            f32::NAN,
            -0.0,
            0.0,
            3.5,
            -3.5,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let mut seed = 7u32;
        for len in 0..70 {
            for trial in 0..20 {
                let x: Vec<f32> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        match (seed >> 28, trial % 4) {
                            (0..=1, 0) => specials[(seed >> 8) as usize % specials.len()],
                            (0, _) => -0.0,
                            _ => ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 8.0,
                        }
                    })
                    .collect();
                let (lo, hi) = row_range(&x);
                assert_eq!((lo.to_bits(), hi.to_bits()), sequential(&x), "{x:?}");
            }
        }
    }

    #[test]
    fn log_levels_match_f64_rounding_away_from_half_points() {
        for m in [1u32, 2, 4, 8, 16] {
            let mut x = 1.0e-9f32;
            while x < 4.0 {
                let t = -(m as f64) * (x as f64).log2();
                if (t.fract().abs() - 0.5).abs() > 1e-5 {
                    let want = t.round().clamp(0.0, 255.0) as i32;
                    assert_eq!(log_level(x, m, 255), want, "x = {x}, m = {m}");
                }
                x *= 1.0137;
            }
        }
        assert_eq!(log_level(0.0, 1, 15), 15);
        assert_eq!(log_level(-1.0, 4, 63), 63);
        assert_eq!(log_level(f32::NAN, 1, 15), 15);
        assert_eq!(log_level(1.0, 16, 255), 0);
        assert_eq!(log_level(0.5, 1, 15), 1);
        assert_eq!(log_level(0.5, 16, 255), 16);
    }

    #[test]
    fn log_level_values_are_rounded_powers_of_two() {
        for m in [1u32, 2, 4, 8, 16] {
            for q in 0..256u32 {
                let exact = 2f64.powf(15.0 - q as f64 / m as f64);
                let got = log_level_value(q, m) as f64;
                assert!((got - exact).abs() <= 0.5, "q {q} m {m}: {got} vs {exact}");
            }
        }
        assert_eq!(log_level_value(3, 1), 1 << 12);
        assert_eq!(log_steps(4), 1);
        assert_eq!(log_steps(8), 16);
    }

    #[test]
    fn uniform_levels_are_clamped_and_fake_quant_error_is_half_a_step() {
        let q = ActQuant::Uniform {
            bits: 4,
            scale: 0.1,
            zero: 3,
        };
        q.check().unwrap();
        for i in -300..300 {
            let x = i as f32 * 0.0037;
            let l = q.level(x, 10.0);
            assert!((0..=15).contains(&l));
            if (-0.3..=1.2).contains(&x) {
                assert!((q.fake(x) - x).abs() <= 0.05 + 1e-6, "x {x}");
            }
        }
        assert_eq!(q.level(f32::NAN, 10.0), 3);
        assert_eq!(q.level(f32::INFINITY, 10.0), 15);
    }

    #[test]
    fn checks_reject_bad_parameters() {
        let bad = [
            ActQuant::Uniform {
                bits: 9,
                scale: 1.0,
                zero: 0,
            },
            ActQuant::Uniform {
                bits: 8,
                scale: 1.0,
                zero: 256,
            },
            ActQuant::Symmetric {
                bits: 8,
                scale: 0.0,
            },
            ActQuant::Log2 {
                bits: 4,
                scale: f32::NAN,
            },
        ];
        for b in bad {
            assert!(b.check().is_err(), "{b:?}");
        }
        let w = IntData {
            bits: 4,
            data: vec![7, -7, 8],
        };
        assert!(w.check().is_err());
        let w = IntData {
            bits: 8,
            data: vec![127, -127],
        };
        assert!(w.check().is_ok());
    }
}
