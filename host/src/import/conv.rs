//! tract's Conv → device Conv2d (NCHW, OIHW weights), the ViT patch embedding.

use super::builder::Builder;
use super::context::{Mapped, NodeCx, Translated};
use anyhow::{Context, bail};
use qvit_device::graph::Op;
use tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_core::ops::nn::DataFormat;

pub(crate) fn convert_conv(conv: &Conv, cx: &NodeCx, b: &mut Builder) -> Translated {
    let name = cx.name;
    let out_shape = cx.out_shape.clone();
    let spec = &conv.pool_spec;
    if spec.kernel_shape.len() != 2 {
        bail!(
            "only 2-D convolutions are supported, got {}-D",
            spec.kernel_shape.len()
        );
    }
    if conv.q_params.is_some() {
        bail!("quantized Conv is not supported");
    }
    let x = cx.input(0, b)?;
    let w = cx.input(1, b)?;
    if b.graph.const_data(w).is_none() {
        bail!("convolution kernel must be a constant");
    }
    let w = match conv.kernel_fmt {
        KernelFormat::OIHW => w,
        KernelFormat::HWIO => b.transpose(&format!("{name}.oihw"), w, vec![3, 2, 0, 1]),
        KernelFormat::OHWI => b.transpose(&format!("{name}.oihw"), w, vec![0, 3, 1, 2]),
    };
    let o = b.shape(w)[0];
    let mut inputs = vec![];
    let x_shape = b.shape(x).to_vec();
    let x4 = match spec.data_format {
        DataFormat::NCHW => x,
        DataFormat::CHW => {
            let mut s = vec![1];
            s.extend(&x_shape);
            b.reshape(&format!("{name}.batch"), x, s)
        }
        DataFormat::NHWC => b.transpose(&format!("{name}.nchw"), x, vec![0, 3, 1, 2]),
        DataFormat::HWC => {
            let t = b.transpose(&format!("{name}.chw"), x, vec![2, 0, 1]);
            let mut s = vec![1];
            s.extend(b.shape(t).to_vec());
            b.reshape(&format!("{name}.batch"), t, s)
        }
    };
    inputs.push(x4);
    inputs.push(w);
    if cx.node.inputs.len() > 2 {
        let bias = cx.input(2, b)?;
        let data = b
            .graph
            .const_data(bias)
            .context("convolution bias must be a constant")?
            .to_vec();
        let full = if data.len() == o {
            data
        } else if data.len() == 1 {
            vec![data[0]; o]
        } else {
            bail!("bias of {} values for {o} output channels", data.len())
        };
        if full.iter().any(|&v| v != 0.0) {
            inputs.push(b.constant(&format!("{name}.bias"), vec![o], full));
        }
    }
    let [h, wd] = [b.shape(x4)[2], b.shape(x4)[3]];
    let strides = spec.strides.clone().map(|s| [s[0], s[1]]).unwrap_or([1, 1]);
    let dilations = spec
        .dilations
        .clone()
        .map(|s| [s[0], s[1]])
        .unwrap_or([1, 1]);
    let k = [spec.kernel_shape[0], spec.kernel_shape[1]];
    let pads = match &spec.padding {
        PaddingSpec::Valid => [0, 0, 0, 0],
        PaddingSpec::Explicit(before, after) | PaddingSpec::ExplicitOnnxPool(before, after, _) => {
            [before[0], before[1], after[0], after[1]]
        }
        PaddingSpec::SameUpper | PaddingSpec::SameLower => {
            let total = |i: usize, len: usize| {
                let out = len.div_ceil(strides[i]);
                ((out - 1) * strides[i] + (k[i] - 1) * dilations[i] + 1).saturating_sub(len)
            };
            let (th, tw) = (total(0, h), total(1, wd));
            if matches!(spec.padding, PaddingSpec::SameUpper) {
                [th / 2, tw / 2, th - th / 2, tw - tw / 2]
            } else {
                [th - th / 2, tw - tw / 2, th / 2, tw / 2]
            }
        }
    };
    let oh = (h + pads[0] + pads[2] - dilations[0] * (k[0] - 1) - 1) / strides[0] + 1;
    let ow = (wd + pads[1] + pads[3] - dilations[1] * (k[1] - 1) - 1) / strides[1] + 1;
    let y_shape = vec![b.shape(x4)[0], o, oh, ow];
    let op = Op::Conv2d {
        strides,
        pads,
        dilations,
        group: conv.group,
    };
    let y = b.node(name, op, inputs, y_shape);
    let out = match spec.data_format {
        DataFormat::NCHW | DataFormat::CHW => b.reshape(&format!("{name}.out"), y, out_shape),
        DataFormat::NHWC | DataFormat::HWC => {
            let t = b.transpose(&format!("{name}.nhwc"), y, vec![0, 2, 3, 1]);
            b.reshape(&format!("{name}.out"), t, out_shape)
        }
    };
    Ok(vec![Mapped::Value(out)])
}
