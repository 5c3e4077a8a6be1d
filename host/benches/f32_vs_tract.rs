//! The device f32 executor against tract's optimized f32 plan on the same imported models, at
//! one thread, in the same run. Models: DeiT-Tiny (seeded weights), the default model, and the
//! shared MNIST ViT / DINOv2 ViT-S/14 when ../shared is present.

use criterion::{Criterion, criterion_group, criterion_main};
use qvit_device::Tensor;
use qvit_device::exec::Executor;
use qvit_host::fixtures::{SeededRng, load_weightless};
use qvit_host::import::{Imported, import_path, import_proto};
use qvit_kernels::KernelSet;
use std::path::Path;
use tract_onnx::prelude::*;

fn models() -> Vec<(&'static str, Imported)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut v = vec![];
    let deit = load_weightless(&root.join("models/fixtures/deit_tiny_op17.onnx"), 17).unwrap();
    v.push(("deit_tiny", import_proto(&deit, None).unwrap()));
    v.push((
        "fashion_vit",
        import_path(&root.join("models/fashion-vit/fashion_vit.onnx"), None).unwrap(),
    ));
    let shared = root.join("../shared/models");
    if shared.exists() {
        v.push((
            "vit_mnist",
            import_path(&shared.join("vit-mnist/vit_mnist.onnx"), None).unwrap(),
        ));
        if std::env::var("QVIT_BENCH_LARGE").is_ok() {
            v.push((
                "vit_s14",
                import_path(&shared.join("vit-s14-dinov2/vit_s14_backbone.onnx"), None).unwrap(),
            ));
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    for (name, imp) in models() {
        let shape = imp.input_shape.clone();
        let x = Tensor::new(
            shape.clone(),
            SeededRng::new(1).normals(shape.iter().product(), 1.0),
        )
        .unwrap();
        let mut g = c.benchmark_group(format!("f32_{name}"));
        g.sample_size(20);
        let mut exec = Executor::new(imp.graph.clone(), KernelSet::detect()).unwrap();
        exec.set_threads(1);
        g.bench_function("qvit", |b| b.iter(|| exec.run(&[&x]).unwrap()));
        let plan = imp
            .tract
            .clone()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let t = tract_onnx::prelude::Tensor::from_shape(&x.shape, &x.data).unwrap();
        g.bench_function("tract", |b| {
            b.iter(|| plan.run(tvec!(t.clone().into())).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
