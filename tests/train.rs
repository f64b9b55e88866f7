//! `ccc train` / `ccc sweep`: the trainer's forward passes agree with the compiler's own
//! float and integer references on the models it writes, and the command-line paths
//! (joint optimization, quantization-aware fine-tuning, per-class subsampling, the
//! retraining path from a trained model, sweeps) work end to end on tiny
//! configurations.

mod common;

use std::path::Path;

use candle_core::{Device, Tensor};
use ccc::compile::{self, CompileOptions};
use ccc::dataset::Dataset;
use ccc::pack::group::Strategy;
use ccc::reference::{argmax, run_float};
use ccc::testgen::random_image;
use ccc::train::net::{Arch, Mode, ShiftNet, batch_tensor};
use ccc::train::{TrainOptions, train};
use common::{ccc, stderr, tensor_f32};

fn synthetic(n: usize, seed: u64) -> Dataset {
    // Labels follow the image's brightest quadrant-ish bucket so training has signal.
    let images: Vec<Vec<u8>> = (0..n)
        .map(|i| random_image(1, 12, 12, seed + i as u64))
        .collect();
    let labels = images
        .iter()
        .map(|im| (im[..72].iter().map(|&p| p as u32).sum::<u32>() % 4) as u8)
        .collect();
    Dataset {
        channels: 1,
        height: 12,
        width: 12,
        images,
        labels,
    }
}

fn options(alpha: usize, epochs: usize, qat: usize) -> TrainOptions {
    TrainOptions {
        arch: Arch::from_stages(
            [1, 12, 12],
            4,
            3,
            &[8, 16, 24],
            &[1, 1, 1],
            &[1, 2, 1],
            &[1, alpha, alpha],
        )
        .unwrap(),
        gamma: 1.0,
        epochs,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
        batch_size: 32,
        l1_penalty: 1e-5,
        sample_ratio: 1.0,
        qat_epochs: qat,
        strategy: Strategy::Auto,
        seed: 7,
        load: None,
        rows: 8,
        cols: 8,
        eval_limit: None,
        name: "tiny".into(),
        progress: false,
        augment: Default::default(),
        label_smoothing: 0.0,
        teacher: None,
        epoch_images: None,
        predefined: None,
        stop_after: None,
        resume: false,
        alpha_ramp: false,
    }
}

fn compile_no_rtl(model: &Path) -> compile::Compiled {
    compile::compile(
        model,
        &CompileOptions {
            rows: 8,
            cols: 8,
            strategy: Strategy::Auto,
            rtl: false,
            ..CompileOptions::default()
        },
    )
    .unwrap()
}

/// `model` loaded into a fresh network of `o`'s architecture (the retraining path), the
/// test images as a batch, and its float (eval-mode) logits on them.
fn reloaded_eval(
    o: &TrainOptions,
    model: &Path,
    test: &Dataset,
) -> (ShiftNet, Tensor, Vec<Vec<f32>>) {
    let mut net = ShiftNet::init(o.arch.clone(), 99, &Device::Cpu).unwrap();
    net.load_from(model).unwrap();
    let imgs: Vec<&[u8]> = test.images.iter().map(Vec::as_slice).collect();
    let x = batch_tensor(&imgs, 1, 12, 12, &Device::Cpu).unwrap();
    let float = net.forward(&x, Mode::Eval).unwrap().to_vec2().unwrap();
    (net, x, float)
}

#[test]
fn trained_model_matches_the_compilers_float_and_integer_references() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let data = synthetic(256, 1);
    let test = synthetic(64, 9000);
    let o = options(4, 3, 1);
    let log = train(&o, &data, &test, &model).unwrap();
    // Pruning reached the cubic schedule's end: at most 1/α of each block's weights,
    // and combining left nothing for the compiler to prune.
    let c = compile_no_rtl(&model);
    assert_eq!(
        c.report.packed.pruned, 0,
        "compile pruned weights training kept"
    );
    assert!(log.final_eval.packed_tiles <= log.final_eval.unpacked_tiles);
    for l in &c.report.layers[1..] {
        assert!(
            l.packed.nonzeros * 4 <= l.rows * l.taps,
            "layer {} keeps {} of {}x{}",
            l.layer,
            l.packed.nonzeros,
            l.rows,
            l.taps
        );
    }

    // Reload into a fresh network (the retraining path) and compare forward passes.
    trainer_agrees_with_the_compiler(&o, &model, &test, &c);
}

#[test]
fn alpha_ramp_prunes_gradually_and_ends_at_the_full_alpha() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(256, 1);
    let test = synthetic(64, 9000);
    let mut kept_after_first_epoch = Vec::new();
    for ramp in [false, true] {
        let model = dir.path().join(format!("ramp-{ramp}.safetensors"));
        let o = TrainOptions {
            alpha_ramp: ramp,
            ..options(4, 4, 0)
        };
        let log = train(&o, &data, &test, &model).unwrap();
        kept_after_first_epoch.push(log.epochs[0].nonzeros);
        // Either way the last prune step combines at the full α: nothing left for the
        // compiler to prune, at most one weight per row and group.
        let c = compile_no_rtl(&model);
        assert_eq!(c.report.packed.pruned, 0, "ramp {ramp}");
        for l in &c.report.layers[1..] {
            assert!(
                l.packed.nonzeros * 4 <= l.rows * l.taps,
                "ramp {ramp}, layer {}",
                l.layer
            );
        }
    }
    // After the first epoch the ramp has combined at a smaller α only.
    assert!(
        kept_after_first_epoch[1] > kept_after_first_epoch[0],
        "weights kept after epoch 1 without and with the ramp: {kept_after_first_epoch:?}"
    );
}

/// The model reloaded into a fresh network (the retraining path): its float forward pass
/// is the compiler's float reference, and its fake-quantized pass the 8-bit network (the
/// same class on nearly every image).
fn trainer_agrees_with_the_compiler(
    o: &TrainOptions,
    model: &Path,
    test: &Dataset,
    c: &compile::Compiled,
) {
    let (mut net, x, float) = reloaded_eval(o, model, test);
    for (img, got) in test.images.iter().zip(&float) {
        let want = run_float(&c.lowered, img);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-3 * (1.0 + w.abs()),
                "candle eval {g} vs compiler float {w}"
            );
        }
    }
    fake_quant_agrees(&mut net, &x, c, test);
}

/// The trainer's fake-quantized pass picks the compiled integer reference's class on at
/// least 95% of the test images.
fn fake_quant_agrees(net: &mut ShiftNet, x: &Tensor, c: &compile::Compiled, test: &Dataset) {
    let quant: Vec<Vec<f32>> = net.forward(x, Mode::Quant).unwrap().to_vec2().unwrap();
    let agree = test
        .images
        .iter()
        .zip(&quant)
        .filter(|(img, q)| argmax(q.as_slice()) == c.qnet.run(img, false).class)
        .count();
    assert!(
        agree * 100 >= test.images.len() * 95,
        "fake-quant agrees with the integer reference on only {agree}/{}",
        test.images.len()
    );
}

/// A VGG-style network (3x3 blocks, combined over their K·K·C taps) trains, exports, and
/// runs on the array bit-exact: the compiler's row copies give each 3x3 tap its row.
#[test]
fn kxk_blocks_train_and_run_bit_exact_on_the_array() {
    if !common::need(
        "verilator",
        "kxk_blocks_train_and_run_bit_exact_on_the_array",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("vgg.safetensors");
    let mut o = options(2, 2, 1);
    o.arch = o.arch.with_block_kernel(3).unwrap();
    let log = train(&o, &synthetic(128, 3), &synthetic(32, 9100), &model).unwrap();
    let c = compile_no_rtl(&model);
    assert!(
        c.report.layers.iter().any(|l| l.copies > 0),
        "no row copies in front of the 3x3 blocks"
    );
    assert_eq!(log.final_eval.packed_tiles, c.report.packed.tiles);
    runs_bit_exact_on_a_3x4_array(&model, &dir.path().join("out"));
}

/// `ccc compile` on a 3x4 array, then `ccc simulate` in Verilator: bit-exact on the
/// predicted cycles.
fn runs_bit_exact_on_a_3x4_array(model: &Path, out: &Path) {
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    let r = common::ccc(&["compile", m, "--rows", "3", "--cols", "4", "-o", o]);
    assert!(r.status.success(), "{}", common::stderr(&r));
    let r = common::ccc(&["simulate", o, "--images", "2", "--simulator", "verilator"]);
    let text = common::stdout(&r);
    assert!(
        r.status.success() && text.contains("bit-exact") && !text.contains("cycles differ"),
        "{text}{}",
        common::stderr(&r)
    );
}

/// Kernel decomposition (`--decompose`): 3x3 blocks learn basis kernels and pruned,
/// combined coefficients; the model is a `decomposed_conv` per block whose float forms
/// (trainer, basis + coefficient stages, expanded conv) agree, and whose stages run on
/// the array bit-exact.
#[test]
fn decomposed_blocks_train_and_run_bit_exact_on_the_array() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("dec.safetensors");
    let mut o = options(2, 2, 0);
    o.arch = o
        .arch
        .with_block_kernel(3)
        .unwrap()
        .with_decompose(2)
        .unwrap();
    let test = synthetic(32, 9200);
    let data = synthetic(128, 4);
    let log = train(&o, &data, &test, &model).unwrap();
    // Stopped after the first epoch and resumed (the basis kernels are in the
    // checkpoint): the same bytes.
    resumes_to_the_same_bytes(&o, &data, &test, &model);
    let c = compile_no_rtl(&model);
    assert_eq!(c.lowered.decomposed, 2);
    // Stem, then basis + coefficient stage per block.
    assert_eq!(c.report.layers.len(), 5);
    assert_eq!(log.final_eval.packed_tiles, c.report.packed.tiles);
    let rows = c
        .report
        .decomposition
        .as_ref()
        .expect("the report compares mappings");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].layers, 3, "expanded: one layer per block");
    // The basis stage is block diagonal: it combines without pruning.
    for l in [1, 3] {
        assert_eq!(
            c.report.layers[l].packed.pruned, 0,
            "basis stage {l} pruned"
        );
    }
    let alt = c.alternative.as_ref().unwrap();
    let (mut net, x, float) = reloaded_eval(&o, &model, &test);
    // The fake-quantized pass is the basis + coefficient stages' 8-bit arithmetic.
    fake_quant_agrees(&mut net, &x, &c, &test);
    for (img, got) in test.images.iter().zip(&float) {
        let stages = run_float(&c.lowered, img);
        let expanded = run_float(&alt.lowered, img);
        for ((g, s), e) in got.iter().zip(&stages).zip(&expanded) {
            assert!(
                (s - e).abs() <= 1e-9 * (1.0 + e.abs()),
                "stages {s} vs expanded {e}"
            );
            assert!(
                (f64::from(*g) - s).abs() <= 1e-3 * (1.0 + s.abs()),
                "candle eval {g} vs compiler float {s}"
            );
        }
    }
    if !common::need(
        "verilator",
        "decomposed_blocks_train_and_run_bit_exact_on_the_array",
    ) {
        return;
    }
    let out = dir.path().join("out");
    runs_bit_exact_on_a_3x4_array(&model, &out);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| stages (this design) |"), "{md}");
}

/// Training `o` stopped after the first epoch and resumed writes `model`'s bytes.
fn resumes_to_the_same_bytes(o: &TrainOptions, data: &Dataset, test: &Dataset, model: &Path) {
    let part = model.with_extension("part.safetensors");
    let first = TrainOptions {
        stop_after: Some(1),
        ..o.clone()
    };
    assert!(
        ccc::train::train_or_stop(&first, data, test, &part)
            .unwrap()
            .is_none()
    );
    let rest = TrainOptions {
        resume: true,
        ..o.clone()
    };
    train(&rest, data, test, &part).unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), std::fs::read(model).unwrap());
}

/// An MLP head (`--head`): hidden linear layers between the pool and the classifier
/// train (checkpointed and resumed to the same bytes), export, agree with the compiler's
/// float and integer references, and run on the accelerator bit-exact.
#[test]
fn mlp_head_trains_and_runs_bit_exact_on_the_array() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp.safetensors");
    let mut o = options(4, 2, 1);
    o.arch = o.arch.with_head(&[20, 12]).unwrap();
    let test = synthetic(64, 9300);
    let data = synthetic(128, 5);
    train(&o, &data, &test, &model).unwrap();
    resumes_to_the_same_bytes(&o, &data, &test, &model);
    let c = compile_no_rtl(&model);
    let hidden: Vec<_> = c
        .qnet
        .classifier
        .hidden
        .iter()
        .map(|h| h.weight.dim())
        .collect();
    assert_eq!(hidden, [(20, 24), (12, 20)]);
    // The report lists the head's layers and their MAC cycles.
    let cycles: Vec<u64> = c.report.head.iter().map(|h| h.cycles).collect();
    assert_eq!(cycles, [480, 240, 48]);
    assert!(c.report.to_markdown().contains("## MLP head"));
    trainer_agrees_with_the_compiler(&o, &model, &test, &c);
    if !common::need(
        "verilator",
        "mlp_head_trains_and_runs_bit_exact_on_the_array",
    ) {
        return;
    }
    runs_bit_exact_on_a_3x4_array(&model, &dir.path().join("out"));
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(128, 3);
    let test = synthetic(32, 7000);
    let o = options(2, 2, 0);
    let a = dir.path().join("a.safetensors");
    let b = dir.path().join("b.safetensors");
    train(&o, &data, &test, &a).unwrap();
    train(&o, &data, &test, &b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let mut o2 = o.clone();
    o2.seed = 8;
    let c = dir.path().join("c.safetensors");
    train(&o2, &data, &test, &c).unwrap();
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
}

/// Options with every part of the loop on, `epochs` long (the last fake-quantized): α 4
/// pruning, augmentation, distillation from a teacher trained here into `dir`, a half-data
/// subset drawn in several passes per epoch.
fn everything_on(dir: &Path, data: &Dataset, test: &Dataset, epochs: usize) -> TrainOptions {
    let teacher = dir.join("t.safetensors");
    train(&options(1, 1, 0), data, test, &teacher).unwrap();
    let mut o = options(4, epochs, 1);
    o.augment = ccc::train::Augment {
        flip: true,
        translate: 2,
    };
    o.teacher = Some(ccc::train::Teacher {
        model: teacher,
        weight: 0.7,
        temperature: 3.0,
    });
    o.epoch_images = Some(150);
    o.sample_ratio = 0.5;
    o
}

/// A run split by `--stop-after` and finished with `--resume` (at each epoch boundary,
/// pruning, distillation, augmentation, several passes per epoch and a fake-quantized
/// epoch included) writes the same model bytes and epoch logs as one uninterrupted run;
/// a resume with other options, or without a checkpoint, is refused.
#[test]
fn a_run_stopped_and_resumed_ends_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(96, 5);
    let test = synthetic(32, 7200);
    let o = everything_on(dir.path(), &data, &test, 4);
    let whole = dir.path().join("whole.safetensors");
    let want = train(&o, &data, &test, &whole).unwrap();
    assert!(
        !ccc::train::checkpoint_path(&whole).exists(),
        "checkpoint left behind"
    );
    for stop in 1..4 {
        let part = dir.path().join(format!("part{stop}.safetensors"));
        let mut first = o.clone();
        first.stop_after = Some(stop);
        let r = ccc::train::train_or_stop(&first, &data, &test, &part).unwrap();
        assert!(r.is_none() && !part.exists());
        let mut rest = o.clone();
        rest.resume = true;
        let got = train(&rest, &data, &test, &part).unwrap();
        assert_eq!(
            std::fs::read(&part).unwrap(),
            std::fs::read(&whole).unwrap(),
            "stopped after epoch {stop}"
        );
        let lines = |l: &ccc::train::TrainLog| -> Vec<(f64, f64, usize)> {
            l.epochs
                .iter()
                .map(|e| (e.loss, e.test_accuracy, e.nonzeros))
                .collect()
        };
        assert_eq!(lines(&got), lines(&want), "stopped after epoch {stop}");
    }
    // Other options: refused, naming them.
    let part = dir.path().join("other.safetensors");
    let mut first = o.clone();
    first.stop_after = Some(2);
    ccc::train::train_or_stop(&first, &data, &test, &part).unwrap();
    let mut other = o.clone();
    other.resume = true;
    other.lr = 0.01;
    let e = format!("{:#}", train(&other, &data, &test, &part).unwrap_err());
    assert!(e.contains("other options") && e.contains("lr"), "{e}");
    let mut none = o.clone();
    none.resume = true;
    let e = format!(
        "{:#}",
        train(&none, &data, &test, &dir.path().join("none.safetensors")).unwrap_err()
    );
    assert!(e.contains("none.safetensors.ckpt"), "{e}");
}

#[test]
fn training_is_the_same_for_one_and_two_threads() {
    // Augmentation, distillation, several passes per epoch, pruning and fake-quantized
    // steps: the same bytes whatever the thread count.
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(96, 4);
    let test = synthetic(32, 7100);
    let mut o = everything_on(dir.path(), &data, &test, 3);
    o.label_smoothing = 0.1;
    let mut bytes = Vec::new();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let out = dir.path().join(format!("m{threads}.safetensors"));
        let log = pool.install(|| train(&o, &data, &test, &out)).unwrap();
        assert_eq!(log.threads, threads);
        assert_eq!(log.epochs.len(), 3);
        bytes.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(bytes[0], bytes[1]);
}

#[test]
fn sample_ratio_keeps_each_class_share() {
    let data = synthetic(400, 5);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    let keep = ccc::train::sample_per_class(&data, 0.1, &mut rng);
    for class in 0..4u8 {
        let total = data.labels.iter().filter(|&&l| l == class).count();
        let kept = keep.iter().filter(|&&i| data.labels[i] == class).count();
        assert_eq!(
            kept,
            ((total as f64) * 0.1).round() as usize,
            "class {class}"
        );
    }
}

#[test]
fn shift_op_gradient_matches_finite_differences_through_the_network() {
    // A loss through shift, stride, batchnorm and ReLU6: autograd vs central differences
    // on a few stem weights.
    let o = options(1, 1, 0);
    let mut net = ShiftNet::init(o.arch.clone(), 3, &Device::Cpu).unwrap();
    let data = synthetic(16, 11);
    let imgs: Vec<&[u8]> = data.images.iter().map(Vec::as_slice).collect();
    let x = batch_tensor(&imgs, 1, 12, 12, &Device::Cpu).unwrap();
    let y = Tensor::new(
        data.labels
            .iter()
            .map(|&l| u32::from(l))
            .collect::<Vec<_>>()
            .as_slice(),
        &Device::Cpu,
    )
    .unwrap();
    let loss_of = |net: &mut ShiftNet| -> f64 {
        let l = candle_nn::loss::cross_entropy(&net.forward(&x, Mode::Train).unwrap(), &y).unwrap();
        f64::from(l.to_scalar::<f32>().unwrap())
    };
    let loss = candle_nn::loss::cross_entropy(&net.forward(&x, Mode::Train).unwrap(), &y).unwrap();
    let grads = loss.backward().unwrap();
    let w = net.convs[1].w.clone();
    let g: Vec<f32> = grads
        .get(w.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let base: Vec<f32> = w.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let shape = w.as_tensor().shape().clone();
    for &k in &[0usize, 5, 17, 40] {
        let eps = 1e-2f32;
        let mut plus = base.clone();
        plus[k] += eps;
        w.set(&Tensor::from_vec(plus, shape.clone(), &Device::Cpu).unwrap())
            .unwrap();
        let lp = loss_of(&mut net);
        let mut minus = base.clone();
        minus[k] -= eps;
        w.set(&Tensor::from_vec(minus, shape.clone(), &Device::Cpu).unwrap())
            .unwrap();
        let lm = loss_of(&mut net);
        let fd = (lp - lm) / (2.0 * f64::from(eps));
        assert!(
            (fd - f64::from(g[k])).abs() <= 2e-3 + 0.05 * fd.abs(),
            "weight {k}: autograd {} vs finite difference {fd}",
            g[k]
        );
    }
}

#[test]
fn hand_written_backward_matches_candle_autograd() {
    // Strides 1 and 2, a stride-2 stem too, and 3x3 blocks instead of shift + 1x1 ones:
    // the manual training step's parameter gradients and running statistics against the
    // autograd of the same forward pass; decomposed 3x3 blocks (coefficients and basis
    // kernels) too.
    let mlp: &[usize] = &[12, 7];
    for (stem_stride, block_kernel, bases, head) in [
        (1, 1, 0, &[][..]),
        (2, 1, 0, &[]),
        (1, 3, 0, &[]),
        (2, 3, 0, &[]),
        (1, 3, 2, &[]),
        (1, 1, 0, mlp),
    ] {
        let arch = Arch::from_stages(
            [1, 12, 12],
            4,
            3,
            &[8, 16, 24],
            &[1, 1, 2],
            &[stem_stride, 2, 1],
            &[1, 1, 1],
        )
        .unwrap()
        .with_block_kernel(block_kernel)
        .unwrap()
        .with_decompose(bases)
        .unwrap()
        .with_head(head)
        .unwrap();
        let dev = Device::Cpu;
        let mut auto = ShiftNet::init(arch.clone(), 5, &dev).unwrap();
        let mut manual = ShiftNet::init(arch, 5, &dev).unwrap();
        let data = synthetic(24, 21);
        let imgs: Vec<&[u8]> = data.images.iter().map(Vec::as_slice).collect();
        let x = batch_tensor(&imgs, 1, 12, 12, &dev).unwrap();
        let labels: Vec<u32> = data.labels.iter().map(|&l| u32::from(l)).collect();
        let y = Tensor::new(labels.as_slice(), &dev).unwrap();
        let logits = auto.forward(&x, Mode::Train).unwrap();
        let store = candle_nn::loss::cross_entropy(&logits, &y)
            .unwrap()
            .backward()
            .unwrap();
        let (mlogits, grads) = manual
            .train_step(&x, |l| {
                let p = candle_nn::ops::softmax(l, 1).unwrap();
                let onehot: Vec<f32> = labels
                    .iter()
                    .flat_map(|&c| (0..4).map(move |j| f32::from(j == c)))
                    .collect();
                let q = Tensor::from_vec(onehot, (labels.len(), 4), &dev).unwrap();
                Ok(((p - q).unwrap() / labels.len() as f64).unwrap())
            })
            .unwrap();
        let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        let close = |a: &[f32], b: &[f32], what: &str| {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-4 * scale + 1e-6,
                    "{what}[{i}]: manual {x} vs autograd {y} (stem stride {stem_stride}, block kernel {block_kernel}, {bases} bases, head {head:?})"
                );
            }
        };
        close(&flat(&mlogits), &flat(&logits), "logits");
        let params = auto.params();
        assert_eq!(params.len(), grads.len());
        for (k, ((v, ..), g)) in params.iter().zip(&grads).enumerate() {
            let want = store.get(v.as_tensor()).unwrap();
            assert_eq!(want.dims(), g.dims(), "parameter {k}");
            close(&flat(g), &flat(want), &format!("gradient of parameter {k}"));
        }
        for (a, m) in auto.convs.iter().zip(&manual.convs) {
            close(
                &flat(&m.running_mean),
                &flat(&a.running_mean),
                "running mean",
            );
            close(&flat(&m.running_var), &flat(&a.running_var), "running var");
        }
    }
}

/// The real command on real data: a few hundred Fashion-MNIST images, two epochs.
#[test]
fn train_retrain_and_sweep_commands_run_end_to_end() {
    if !common::need_fashion_mnist("train_retrain_and_sweep_commands_run_end_to_end") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let tiny = [
        "--filters",
        "8,16,16",
        "--layers",
        "1,1,1",
        "--strides",
        "1,2,2",
        "--train-limit",
        "400",
        "--eval-limit",
        "200",
        "--batch-size",
        "50",
        "--rows",
        "8",
        "--cols",
        "8",
    ];
    let dense = p("dense.safetensors");
    let mut args = vec!["train", "--groups", "1,1,1", "--epochs", "2", "-o", &dense];
    args.extend(tiny);
    let o = ccc(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("epoch 2/2"), "{}", stderr(&o));

    // Retraining path: from the dense model, half of the data, combining with α = 4,
    // distilled from the dense model with augmentation, fake-quantized last epoch.
    let cc = p("cc.safetensors");
    let mut args = vec![
        "train",
        "--groups",
        "1,4,4",
        "--epochs",
        "2",
        "--load",
        &dense,
        "--sample-ratio",
        "0.5",
        "--quant-aware",
        "--qat-epochs",
        "1",
        "--teacher",
        &dense,
        "--flip",
        "--translate",
        "2",
        "--epoch-images",
        "300",
        "-o",
        &cc,
    ];
    args.extend(tiny);
    let o = ccc(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{cc}.train.json")).unwrap()).unwrap();
    // Half of each class (per-class rounding: within one image per class of 200).
    let n = log["train_images"].as_u64().unwrap();
    assert!((190..=210).contains(&n), "{n} training images");
    assert_eq!(log["epochs"][1]["quant_aware"], true);
    // 300 drawn images per epoch in batches of 50, distilled from the dense model.
    assert_eq!(log["options"]["epoch_images"], 300);
    assert_eq!(log["options"]["teacher"]["model"], dense.as_str());
    assert_eq!(log["options"]["augment"]["translate"], 2);
    let e = &log["final_eval"];
    assert!(e["packed_tiles"].as_u64().unwrap() < e["unpacked_tiles"].as_u64().unwrap());
    let o = ccc(&[
        "compile",
        &cc,
        "--rows",
        "8",
        "--cols",
        "8",
        "--no-rtl",
        "-o",
        &p("out"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A mismatched architecture names the tensor.
    let bad = p("x.safetensors");
    let mut args = vec![
        "train", "--groups", "1,4,4", "--epochs", "1", "--load", &dense, "-o", &bad,
    ];
    args.extend(tiny);
    let base = args.len() - tiny.len();
    args[base + 1] = "8,24,16"; // the --filters value
    let o = ccc(&args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("b1.conv.weight"), "{}", stderr(&o));

    let sweep = p("sweep");
    let mut args = vec![
        "sweep", "--alphas", "2,4", "--gammas", "1", "--epochs", "1", "--load", &dense, "-o",
        &sweep,
    ];
    args.extend(tiny);
    let o = ccc(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(format!("{sweep}/sweep.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 4, "2 points x 2 panels");
    let md = std::fs::read_to_string(format!("{sweep}/sweep.md")).unwrap();
    assert!(md.contains("| start |") && md.contains("| 4 | 1 |"), "{md}");
}

#[test]
fn predefined_sparsity_is_fixed_before_training_and_packs_without_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(256, 11);
    let test = synthetic(64, 9100);
    let mut o = options(4, 2, 1);
    o.predefined = Some(ccc::train::Predefined {
        density: None,
        classifier_density: Some(0.25),
    });
    let model = dir.path().join("p.safetensors");
    let log = train(&o, &data, &test, &model).unwrap();
    // One epoch instead of two: the same patterns (training never changes them).
    let mut o1 = o.clone();
    o1.epochs = 1;
    o1.qat_epochs = 0;
    let model1 = dir.path().join("p1.safetensors");
    train(&o1, &data, &test, &model1).unwrap();

    // (tensor prefix, rows N, taps T, fan-in ⌈T/α⌉)
    for (prefix, n, t, fan_in) in [("b1", 16, 8, 2), ("b2", 24, 16, 4)] {
        let mask = tensor_f32(&model, &format!("{prefix}.conv.mask"));
        let groups = tensor_f32(&model, &format!("{prefix}.conv.groups"));
        let w = tensor_f32(&model, &format!("{prefix}.conv.weight"));
        assert_eq!(mask, tensor_f32(&model1, &format!("{prefix}.conv.mask")));
        assert_eq!(mask.len(), n * t);
        for r in 0..n {
            let row = &mask[r * t..(r + 1) * t];
            assert_eq!(
                row.iter().filter(|&&m| m == 1.0).count(),
                fan_in,
                "{prefix} row {r}"
            );
            // Clash-free: at most one connection per group in a row.
            let mut seen = std::collections::HashSet::new();
            for (c, _) in row.iter().enumerate().filter(|(_, m)| **m == 1.0) {
                assert!(seen.insert(groups[c] as usize), "{prefix} row {r}: clash");
            }
            for c in 0..t {
                if row[c] == 0.0 {
                    assert_eq!(w[r * t + c], 0.0, "{prefix}: weight outside the mask");
                }
            }
        }
    }
    let fc_mask = tensor_f32(&model, "fc.mask");
    let fc_w = tensor_f32(&model, "fc.weight");
    for r in 0..4 {
        let row = &fc_mask[r * 24..(r + 1) * 24];
        assert_eq!(row.iter().filter(|&&m| m == 1.0).count(), 6);
        for c in 0..24 {
            assert!(row[c] == 1.0 || fc_w[r * 24 + c] == 0.0);
        }
    }

    // The compiler packs with the stored grouping: nothing pruned, and every packed
    // cell holds a weight (fixed connections are kept from rounding to 0).
    let c = compile_no_rtl(&model);
    assert_eq!(c.report.packed.pruned, 0);
    assert_eq!(log.final_eval.packed_tiles, c.report.packed.tiles);
    for (l, groups) in c.report.layers[1..].iter().zip([2, 4]) {
        assert_eq!(l.packed.columns, groups, "layer {}", l.layer);
        assert_eq!(l.packed.pruned, 0);
        assert_eq!(
            l.packed.nonzeros,
            l.rows * l.packed.columns,
            "layer {}: a packed cell without a weight",
            l.layer
        );
    }
    // A density the groups cannot hold clash-free is refused, naming the conv.
    let mut bad = o.clone();
    bad.predefined = Some(ccc::train::Predefined {
        density: Some(0.5),
        classifier_density: None,
    });
    let e = format!(
        "{:#}",
        train(&bad, &data, &test, &dir.path().join("bad.safetensors")).unwrap_err()
    );
    assert!(e.contains("conv 1") && e.contains("fan-in 4"), "{e}");
}
