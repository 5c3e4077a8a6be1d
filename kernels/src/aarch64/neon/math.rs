//! `exp` and exact-form GELU on four lanes, operation for operation the branch-free scalar
//! functions of `generic::math` (same constants, same fused multiply-adds in the same order,
//! selects where they select), so the bits are those of every other tier.
//!
//! Why a NEON copy: LLVM vectorises the generic loops one vector at a time, and each vector is one
//! dependency chain of about 15 fused multiply-adds. llvm-mca (neoverse-n1, cortex-a57) put that
//! loop at 2–4 cycles per instruction: the chain fills the FP issue queues before the next
//! iteration's independent work can enter. The loops here take 16 values (four vectors) per
//! step, so four chains interleave.

use crate::generic::math::{
    AS_A1, AS_A2, AS_A3, AS_A4, AS_A5, AS_P, EXP_HI, EXP_LO, LN2_HI, LN2_LO, LOG2_E, ROUND_MAGIC,
};
use std::arch::aarch64::*;

/// `generic::math::exp_f32` on four lanes.
#[target_feature(enable = "neon")]
#[inline]
fn exp4(x: float32x4_t) -> float32x4_t {
    let dup = vdupq_n_f32;
    // max/min keep NaN, like the generic clamps.
    let xc = vminq_f32(vmaxq_f32(x, dup(EXP_LO)), dup(EXP_HI));
    let t = vfmaq_f32(dup(ROUND_MAGIC), xc, dup(LOG2_E));
    let n = vsubq_f32(t, dup(ROUND_MAGIC));
    let r = vfmaq_f32(xc, n, dup(-LN2_HI));
    let r = vfmaq_f32(r, n, dup(-LN2_LO));
    let mut p = dup(1.0 / 5040.0);
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = vfmaq_f32(dup(c), p, r);
    }
    let bits = vshlq_n_u32::<23>(vaddq_u32(vreinterpretq_u32_f32(t), vdupq_n_u32(126)));
    let y = vmulq_f32(vmulq_f32(p, vreinterpretq_f32_u32(bits)), dup(2.0));
    let y = vbslq_f32(vcgtq_f32(x, dup(EXP_HI)), dup(f32::INFINITY), y);
    vbslq_f32(vcltq_f32(x, dup(EXP_LO)), dup(0.0), y)
}

/// `generic::math::gelu_erf_f32` on four lanes.
#[target_feature(enable = "neon")]
#[inline]
fn gelu_erf4(x: float32x4_t) -> float32x4_t {
    let dup = vdupq_n_f32;
    let z = vmulq_f32(vabsq_f32(x), dup(std::f32::consts::FRAC_1_SQRT_2));
    let t = vdivq_f32(dup(1.0), vfmaq_f32(dup(1.0), dup(AS_P), z));
    let mut poly = dup(AS_A5);
    for c in [AS_A4, AS_A3, AS_A2, AS_A1] {
        poly = vfmaq_f32(dup(c), poly, t);
    }
    let poly = vmulq_f32(poly, t);
    let h = vmulq_f32(vmulq_f32(dup(0.5), poly), exp4(vnegq_f32(vmulq_f32(z, z))));
    let phi = vbslq_f32(vcltq_f32(x, dup(0.0)), h, vsubq_f32(dup(1.0), h));
    vmulq_f32(x, phi)
}

/// Applies `f4` to 16 values per step; the last `len % 16` values go through `tail` (the
/// generic loop, which computes the same bits).
#[inline(always)]
fn map16(x: &mut [f32], f4: impl Fn(float32x4_t) -> float32x4_t, tail: impl Fn(&mut [f32])) {
    let (blocks, rest) = x.as_chunks_mut::<16>();
    for b in blocks {
        // SAFETY: every load and store touches 4 values at offset 4·i < 16 of a 16-value block.
        // (Plain statements, not `array::map`: that is an out-of-line `try_map` per block.)
        unsafe {
            let p = b.as_mut_ptr();
            let v0 = f4(vld1q_f32(p));
            let v1 = f4(vld1q_f32(p.add(4)));
            let v2 = f4(vld1q_f32(p.add(8)));
            let v3 = f4(vld1q_f32(p.add(12)));
            vst1q_f32(p, v0);
            vst1q_f32(p.add(4), v1);
            vst1q_f32(p.add(8), v2);
            vst1q_f32(p.add(12), v3);
        }
    }
    if !rest.is_empty() {
        tail(rest);
    }
}

/// Every `v` of `row` becomes `exp(v − max)`, bit for bit `generic::math::exp_f32(v − max)`.
#[target_feature(enable = "neon")]
pub(crate) fn exp_shifted(row: &mut [f32], max: f32) {
    let m = vdupq_n_f32(max);
    map16(
        row,
        |v| exp4(vsubq_f32(v, m)),
        |t| {
            t.iter_mut()
                .for_each(|v| *v = crate::generic::math::exp_f32(*v - max))
        },
    );
}

/// Exact-form GELU in place, bit for bit `generic::math::gelu_erf_f32`.
#[target_feature(enable = "neon")]
pub(crate) fn gelu_erf(x: &mut [f32]) {
    map16(
        x,
        |v| gelu_erf4(v),
        |t| {
            t.iter_mut()
                .for_each(|v| *v = crate::generic::math::gelu_erf_f32(*v))
        },
    );
}

#[cfg(test)]
mod tests {
    use crate::generic::math;

    /// Values across every branch: a dense sweep, the clamp edges and the special values.
    fn inputs() -> Vec<f32> {
        let mut x: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.0237).collect();
        x.extend([
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            math::EXP_HI,
            math::EXP_LO,
            f32::MIN_POSITIVE,
            1e-30,
            -1e30,
            1e30,
        ]);
        x
    }

    #[test]
    fn exp_and_gelu_have_the_generic_bits() {
        let x = inputs();
        let (mut e, mut g) = (x.clone(), x.clone());
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            super::exp_shifted(&mut e, 0.5);
            super::gelu_erf(&mut g);
        }
        for (i, &v) in x.iter().enumerate() {
            let (we, wg) = (math::exp_f32(v - 0.5), math::gelu_erf_f32(v));
            assert!(
                e[i].to_bits() == we.to_bits() || (e[i].is_nan() && we.is_nan()),
                "exp({v})"
            );
            assert!(
                g[i].to_bits() == wg.to_bits() || (g[i].is_nan() && wg.is_nan()),
                "gelu({v})"
            );
        }
    }
}
