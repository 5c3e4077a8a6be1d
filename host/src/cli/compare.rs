//! `qvit compare`'s text output.

use qvit_host::compare::Comparison;

/// Text rendering: summary line plus one line per layer.
pub fn render(c: &Comparison) -> String {
    let mut s = format!(
        "{} images: top-1 agreement {:.2} %, output cosine mean {:.6} (min {:.6})",
        c.n,
        100.0 * c.top1_agreement,
        c.output_cosine_mean,
        c.output_cosine_min
    );
    if let (Some(q), Some(f)) = (c.top1_quantized, c.top1_float) {
        s += &format!(
            "; top-1 {:.2} % quantized vs {:.2} % f32",
            100.0 * q,
            100.0 * f
        );
    }
    if c.layers.is_empty() {
        return s + "\n(no quantized layers: the bundle is f32)\n";
    }
    s += "\n\nlayer                                              op        cosine\n";
    for l in &c.layers {
        s += &format!("{:<50} {:<8} {:.6}\n", l.name, l.op, l.cosine);
    }
    s
}
