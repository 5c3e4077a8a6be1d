//! `qvit inspect`'s table.

use qvit_host::inspect::ModelInfo;

fn shape_str(s: &[usize]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("×")
    )
}

/// Human-readable count: 1234567 → "1.23 M".
pub fn si(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2} G", n / 1e9),
        n if n >= 1e6 => format!("{:.2} M", n / 1e6),
        n if n >= 1e3 => format!("{:.1} k", n / 1e3),
        n => format!("{n}"),
    }
}

/// Renders the aligned table. `all` includes layout and element-wise nodes too.
pub fn render_table(info: &ModelInfo, all: bool) -> String {
    let rows: Vec<[String; 6]> = info
        .layers
        .iter()
        .filter(|l| {
            all || l.params > 0
                || l.macs > 0
                || matches!(l.op.as_str(), "Softmax" | "GeluErf" | "GeluTanh" | "Relu")
        })
        .map(|l| {
            let ins = l
                .input_shapes
                .iter()
                .map(|s| shape_str(s))
                .collect::<Vec<_>>()
                .join(", ");
            [
                l.name.clone(),
                l.op.clone(),
                format!("{ins} → {}", shape_str(&l.output_shape)),
                if l.params > 0 {
                    si(l.params as f64)
                } else {
                    "-".into()
                },
                if l.macs > 0 {
                    si(l.macs as f64)
                } else {
                    "-".into()
                },
                if l.quantizable {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    let header = ["layer", "op", "shapes", "params", "MACs", "quant"];
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 3 || i == 4 {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = format!(
        "{}  opset {}  input {}  →  {}\n\n",
        info.model,
        info.opset,
        shape_str(&info.input_shape),
        info.output_shapes
            .iter()
            .map(|s| shape_str(s))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out += &line(&header.map(String::from));
    out += &line(&w.iter().map(|&n| "-".repeat(n)).collect::<Vec<_>>());
    for r in &rows {
        out += &line(r);
    }
    let hidden = info.layers.len() - rows.len();
    out += &format!(
        "\n{} nodes ({} layout/element-wise nodes not shown{}), {} parameters ({} in quantizable layers), {} MACs per inference\n",
        info.layers.len(),
        hidden,
        if all || hidden == 0 {
            ""
        } else {
            "; --all shows them"
        },
        si(info.total_params as f64),
        si(info.quantizable_params as f64),
        si(info.total_macs as f64),
    );
    let counts: Vec<String> = info
        .op_counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    out += &format!("ops: {}\n", counts.join(", "));
    out
}
