//! Exact derivatives of the element-wise ops, for the plain-gradient mode (gradient × input, the
//! baseline explanations are compared with).

use qvit_device::Op;
use qvit_device::graph::{GeluKind, UnaryOp};

/// `erf` by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), enough for a derivative.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let r = 1.0 - poly * (-x * x).exp();
    if x < 0.0 { -r } else { r }
}

/// `dy/dx` of an element-wise op at input `x` with output `y`; `None` for other ops.
pub fn elementwise(op: &Op, x: f32, y: f32) -> Option<f32> {
    let (x, y) = (x as f64, y as f64);
    let d = match op {
        Op::Relu => (x > 0.0) as u8 as f64,
        Op::Gelu(GeluKind::Erf) => {
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2)) + x * pdf
        }
        Op::Gelu(GeluKind::Tanh) => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let u = k * (x + 0.044715 * x.powi(3));
            let t = u.tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x)
        }
        Op::Unary(u) => match u {
            UnaryOp::Sqrt => 0.5 / y,
            UnaryOp::Rsqrt => -0.5 * y * y * y,
            UnaryOp::Recip => -y * y,
            UnaryOp::Exp => y,
            UnaryOp::Erf => 2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp(),
            UnaryOp::Tanh => 1.0 - y * y,
            UnaryOp::Sigmoid => y * (1.0 - y),
            UnaryOp::Abs => x.signum(),
            UnaryOp::Neg => -1.0,
            UnaryOp::Square => 2.0 * x,
            UnaryOp::Ln => 1.0 / x,
        },
        _ => return None,
    };
    Some(if d.is_finite() { d as f32 } else { 0.0 })
}
