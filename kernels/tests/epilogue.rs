//! The shared GEMM epilogues and the per-tensor quantizer against closed forms computed in f64.

use qvit_kernels::gemm::epilogue::{
    dequantize_i8_f32, dequantize_i32_f32, quantize_f32_i8, quantize_one, requantize_i32_i8,
};

/// The contract's quantizer evaluated in f64 (ties to even, saturation); `None` where f32
/// rounding of `x·inv` may legitimately land on the other side of a .5 tie.
fn quantize_f64(x: f64, inv: f64, zero: i8) -> Option<i8> {
    let t = x * inv;
    if (t - t.floor() - 0.5).abs() < 1e-4 {
        return None;
    }
    Some((t.round_ties_even() + zero as f64).clamp(-128.0, 127.0) as i8)
}

#[test]
fn quantizer_rounds_half_to_even_and_saturates() {
    assert_eq!(quantize_one(0.5, 1.0, 0), 0);
    assert_eq!(quantize_one(1.5, 1.0, 0), 2);
    assert_eq!(quantize_one(-2.5, 1.0, 0), -2);
    assert_eq!(quantize_one(1e9, 1.0, 0), 127);
    assert_eq!(quantize_one(-1e9, 1.0, 0), -128);
    assert_eq!(quantize_one(f32::NAN, 1.0, 9), 9);
    assert_eq!(quantize_one(f32::INFINITY, 1.0, 0), 127);
    assert_eq!(
        quantize_one(100.0, 1.0, 100),
        127,
        "zero point added before saturation"
    );
}

#[test]
fn quantize_dequantize_round_trip_within_half_step() {
    let (scale, zero) = (0.037f32, -11i8);
    let x: Vec<f32> = (-200..200).map(|i| i as f32 * 0.0213).collect();
    let mut q = vec![0i8; x.len()];
    quantize_f32_i8(&x, scale, zero, &mut q).unwrap();
    let mut back = vec![0f32; x.len()];
    dequantize_i8_f32(&q, scale, zero, &mut back).unwrap();
    for i in 0..x.len() {
        let lo = (-128 - zero as i32) as f32 * scale;
        let hi = (127 - zero as i32) as f32 * scale;
        let clipped = x[i].clamp(lo, hi);
        assert!(
            (back[i] - clipped).abs() <= 0.5 * scale * (1.0 + 1e-5),
            "x {} q {} back {}",
            x[i],
            q[i],
            back[i]
        );
        if let Some(want) = quantize_f64(x[i] as f64, 1.0 / scale as f64, zero) {
            assert_eq!(q[i], want, "x {}", x[i]);
        }
    }
    assert!(quantize_f32_i8(&x, 0.0, 0, &mut q).is_err());
    assert!(quantize_f32_i8(&x[1..], scale, 0, &mut q).is_err());
}

#[test]
fn requantize_matches_closed_form() {
    let n = 7;
    let acc: Vec<i32> = (0..5 * n as i32).map(|i| (i - 17) * 29_989).collect();
    let w_scales: Vec<f32> = (0..n).map(|j| 1e-3 * (j + 1) as f32).collect();
    let bias: Vec<f32> = (0..n).map(|j| 0.25 * j as f32 - 1.0).collect();
    let (a_scale, out_scale, out_zero) = (0.05f32, 0.7f32, 3i8);
    let mut q = vec![0i8; acc.len()];
    requantize_i32_i8(
        &acc,
        n,
        a_scale,
        &w_scales,
        Some(&bias),
        out_scale,
        out_zero,
        &mut q,
    )
    .unwrap();
    let mut y = vec![0f32; acc.len()];
    dequantize_i32_f32(&acc, n, a_scale, &w_scales, Some(&bias), &mut y).unwrap();
    let mut saturated = 0;
    for i in 0..acc.len() {
        let j = i % n;
        let exact = acc[i] as f64 * a_scale as f64 * w_scales[j] as f64 + bias[j] as f64;
        assert!(
            (y[i] as f64 - exact).abs() <= 1e-6 * exact.abs().max(1.0),
            "dequant {} vs {exact}",
            y[i]
        );
        if let Some(want) = quantize_f64(exact, 1.0 / out_scale as f64, out_zero) {
            assert_eq!(q[i], want, "acc {} exact {exact}", acc[i]);
        }
        saturated += (q[i] == 127 || q[i] == -128) as usize;
    }
    assert!(
        saturated > 0 && saturated < acc.len(),
        "the data should exercise both regimes"
    );
    assert!(requantize_i32_i8(&acc, n, a_scale, &w_scales, None, -1.0, 0, &mut q).is_err());
    assert!(requantize_i32_i8(&acc, n, a_scale, &w_scales[1..], None, 1.0, 0, &mut q).is_err());
}
