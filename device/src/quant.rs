//! Quantization parameters of the quantized ops and the exact integer mapping the executor uses.
//!
//! Every function here is plain scalar arithmetic on IEEE-754 `f32` and integers with no libm
//! call, so the integer values it produces are identical on every CPU: that is what makes the
//! integer path of a quantized bundle bit-exact between the host and the board.

/// Fraction bits of the integer form of a [`ActQuant::Log2`] level: level `q` stands for
/// `2^(LOG2_FRAC_BITS − q)`, and levels above `LOG2_FRAC_BITS` (values below `scale·2⁻¹⁵`) are
/// zero, exactly as a right shift by `q` of a 15-bit fixed-point one would make them.
pub const LOG2_FRAC_BITS: u32 = qvit_kernels::attn::LOG2_FRAC_BITS;

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
        check_bits(self.bits)?;
        let max = symmetric_max(self.bits);
        match self.data.iter().position(|&v| (v as i32).abs() > max) {
            Some(i) => Err(format!(
                "value {} at {i} outside the symmetric {}-bit range ±{max}",
                self.data[i], self.bits
            )),
            None => Ok(()),
        }
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
    /// Power-of-two levels for values in `[0, scale]` (post-softmax probabilities):
    /// `q = clamp(round(−log2(x/scale)), 0, 2^bits − 1)`, standing for `scale·2^−q` (zero when
    /// `q > LOG2_FRAC_BITS`). Products with it are shifts. `x ≤ 0` maps to the last level.
    Log2 {
        /// Bit width, 2..=8.
        bits: u8,
        /// The largest representable value.
        scale: f32,
    },
}

impl ActQuant {
    /// Bit width.
    pub fn bits(&self) -> u8 {
        match *self {
            ActQuant::Uniform { bits, .. }
            | ActQuant::Symmetric { bits, .. }
            | ActQuant::Log2 { bits, .. } => bits,
        }
    }

    /// Step size (the largest value for [`ActQuant::Log2`]).
    pub fn scale(&self) -> f32 {
        match *self {
            ActQuant::Uniform { scale, .. }
            | ActQuant::Symmetric { scale, .. }
            | ActQuant::Log2 { scale, .. } => scale,
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
                let q = (x * inv_scale).round_ties_even();
                if q.is_nan() {
                    return zero;
                }
                // Clamp in f32 first so the conversion cannot saturate differently per target.
                let q = q.clamp(-512.0, 512.0) as i32 + zero;
                q.clamp(0, unsigned_max(bits))
            }
            ActQuant::Symmetric { bits, .. } => {
                let q = (x * inv_scale).round_ties_even();
                if q.is_nan() {
                    return 0;
                }
                let m = symmetric_max(bits);
                (q.clamp(-512.0, 512.0) as i32).clamp(-m, m)
            }
            ActQuant::Log2 { bits, .. } => log2_level(x * inv_scale, unsigned_max(bits)),
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
            ActQuant::Log2 { scale, .. } => {
                if q as u32 > LOG2_FRAC_BITS {
                    0.0
                } else {
                    scale / (1u32 << q) as f32
                }
            }
        }
    }
}

/// `clamp(round(−log2 y), 0, max)` from the bits of `y`, with no libm call: for
/// `y = m·2^e`, `m ∈ [1, 2)`, the answer is `−e` when `m < √2` and `−e − 1` otherwise (√2 is
/// irrational, so there are no ties). Non-positive, NaN and subnormal `y` give `max`.
pub fn log2_level(y: f32, max: i32) -> i32 {
    if y.is_nan() || y < f32::MIN_POSITIVE {
        return max;
    }
    if y.is_infinite() {
        return 0;
    }
    let bits = y.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    // Mantissa of the f32 nearest √2 (1.41421354…, just below √2): m ≥ √2 ⟺ mantissa above it.
    const SQRT2_MANTISSA: u32 = 0x3504f3;
    let up = i32::from(bits & 0x7f_ffff > SQRT2_MANTISSA);
    (-e - up).clamp(0, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_level_matches_libm_rounding_away_from_half_points() {
        let mut x = 1.0e-9f32;
        while x < 4.0 {
            let want = (-(x as f64).log2()).round().clamp(0.0, 255.0) as i32;
            let frac = (-(x as f64).log2()).fract().abs();
            if (frac - 0.5).abs() > 1e-6 {
                assert_eq!(log2_level(x, 255), want, "x = {x}");
            }
            x *= 1.0137;
        }
        assert_eq!(log2_level(0.0, 15), 15);
        assert_eq!(log2_level(-1.0, 15), 15);
        assert_eq!(log2_level(f32::NAN, 15), 15);
        assert_eq!(log2_level(1.0, 15), 0);
        assert_eq!(log2_level(0.5, 15), 1);
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
