//! End-to-end checks of the compile pipeline on generated models in the real format.

mod common;

use ccc::compile::{self, CompileOptions};
use ccc::lower::Decomposition;
use ccc::model::{Network, Op};
use ccc::pack::network::apply_permutation;
use ccc::reference::run_float;
use ccc::testgen::{self, BlockSpec, GenSpec, StemSpec};
use common::{ccc, stderr, stdout, tensor_f32};

fn opts(rows: usize, cols: usize) -> CompileOptions {
    CompileOptions {
        rows,
        cols,
        rtl: false,
        ..CompileOptions::default()
    }
}

/// A direct, unlowered float evaluation of the graph (PyTorch semantics for conv with
/// stride and padding, zero-fill shift, eval-mode batchnorm), written independently of
/// `lower` so the lowering and BN folding are checked against it.
fn direct_float(net: &Network, image: &[u8]) -> Vec<f64> {
    let (mut c, mut h, mut w) = (net.input.channels, net.input.height, net.input.width);
    let mut x: Vec<f64> = image.iter().map(|&p| p as f64 / 256.0).collect();
    for l in &net.layers {
        // A decomposed conv computes the KxK conv its coefficients and basis make.
        let expanded;
        let op = match &l.op {
            Op::DecomposedConv(d) => {
                expanded = Op::Conv(d.as_conv());
                &expanded
            }
            op => op,
        };
        match op {
            Op::Conv(cv) => {
                let (n, cin, k, _) = cv.weight.dim();
                let (s, p) = (cv.stride, cv.padding as i64);
                let ho = (h + 2 * cv.padding - k) / s + 1;
                let wo = (w + 2 * cv.padding - k) / s + 1;
                let mut y = vec![0.0; n * ho * wo];
                for o in 0..n {
                    for oy in 0..ho {
                        for ox in 0..wo {
                            let mut acc = cv.bias.as_ref().map_or(0.0, |b| b[o]);
                            for ci in 0..cin {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let iy = (oy * s + ky) as i64 - p;
                                        let ix = (ox * s + kx) as i64 - p;
                                        if iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64 {
                                            acc += cv.weight[[o, ci, ky, kx]]
                                                * x[(ci * h + iy as usize) * w + ix as usize];
                                        }
                                    }
                                }
                            }
                            y[(o * ho + oy) * wo + ox] = acc;
                        }
                    }
                }
                x = y;
                (c, h, w) = (n, ho, wo);
            }
            Op::Shift(sh) => {
                let mut y = vec![0.0; c * h * w];
                for ch in 0..c {
                    let (dy, dx) = sh.shifts[ch];
                    for yy in 0..h as i64 {
                        for xx in 0..w as i64 {
                            let (sy, sx) = (yy + dy, xx + dx);
                            if sy >= 0 && sx >= 0 && sy < h as i64 && sx < w as i64 {
                                y[(ch * h + yy as usize) * w + xx as usize] =
                                    x[(ch * h + sy as usize) * w + sx as usize];
                            }
                        }
                    }
                }
                x = y;
            }
            Op::BatchNorm(bn) => {
                for ch in 0..c {
                    for v in &mut x[ch * h * w..(ch + 1) * h * w] {
                        *v = (*v - bn.mean[ch]) / (bn.var[ch] + bn.eps).sqrt() * bn.weight[ch]
                            + bn.bias[ch];
                    }
                }
            }
            Op::Relu6 => x.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
            Op::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
            Op::AvgPool => {
                x = x
                    .chunks_exact(h * w)
                    .map(|ch| ch.iter().sum::<f64>() / (h * w) as f64)
                    .collect();
                (h, w) = (1, 1);
            }
            Op::DecomposedConv(_) => unreachable!("expanded above"),
            // The classifier, or a hidden layer of an MLP head (its activation follows).
            Op::Linear(lin) => {
                x = lin
                    .weight
                    .rows()
                    .into_iter()
                    .enumerate()
                    .map(|(o, row)| {
                        lin.bias.as_ref().map_or(0.0, |b| b[o])
                            + row.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>()
                    })
                    .collect();
                c = x.len();
            }
        }
    }
    x
}

fn varied_spec(seed: u64) -> GenSpec {
    GenSpec {
        name: "varied".into(),
        channels: 2,
        height: 9,
        width: 7,
        classes: 5,
        stem: Some(StemSpec {
            out: 6,
            k: 3,
            stride: 2,
            padding: 1,
        }),
        blocks: vec![
            BlockSpec::shift(12, 1, Some(3)),
            BlockSpec::shift(10, 2, Some(5)),
        ],
        density: 0.4,
        batchnorm: true,
        relu6: true,
        gamma: Some(0.5),
        dtype: testgen::GenDtype::F64,
        seed,
        head: Vec::new(),
    }
}

#[test]
fn lowering_matches_direct_graph_evaluation() {
    let d = tempfile::tempdir().unwrap();
    // The last with an MLP head (hidden linear layers and their activations).
    let mut headed = varied_spec(6);
    headed.head = vec![7, 4];
    for (i, spec) in [GenSpec::small(3), varied_spec(4), headed]
        .iter()
        .enumerate()
    {
        let m = common::write_model(d.path(), &format!("m{i}.safetensors"), spec);
        let net = ccc::model::load(&m, None).unwrap();
        let lowered = ccc::lower::lower(&net).unwrap();
        for s in 0..4 {
            let img = testgen::random_image(spec.channels, spec.height, spec.width, s);
            let a = direct_float(&net, &img);
            let b = run_float(&lowered, &img);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-9 * (1.0 + x.abs()), "{x} vs {y}");
            }
        }
    }
    // A padded 1x1 conv and a strided 3x3 without padding also lower exactly.
    let mut spec = varied_spec(5);
    spec.stem = Some(StemSpec {
        out: 4,
        k: 3,
        stride: 2,
        padding: 0,
    });
    let m = common::write_model(d.path(), "nopad.safetensors", &spec);
    let net = ccc::model::load(&m, None).unwrap();
    let lowered = ccc::lower::lower(&net).unwrap();
    let img = testgen::random_image(2, 9, 7, 9);
    let (a, b) = (direct_float(&net, &img), run_float(&lowered, &img));
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| (x - y).abs() < 1e-9 * (1.0 + x.abs()))
    );
    // Decomposed convs, in both mappings, against their expanded KxK conv evaluated
    // directly.
    let mut spec = varied_spec(6);
    spec.blocks[1] = BlockSpec {
        k: 3,
        padding: 1,
        bases: 3,
        ..BlockSpec::shift(10, 2, Some(5))
    };
    let m = common::write_model(d.path(), "dec.safetensors", &spec);
    let net = ccc::model::load(&m, None).unwrap();
    for mapping in [Decomposition::Stages, Decomposition::Expanded] {
        let lowered = ccc::lower::lower_with(&net, mapping).unwrap();
        assert_eq!(
            lowered.layers.len(),
            if mapping == Decomposition::Stages {
                4
            } else {
                3
            }
        );
        for s in 0..3 {
            let img = testgen::random_image(2, 9, 7, s);
            let (a, b) = (direct_float(&net, &img), run_float(&lowered, &img));
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() < 1e-9 * (1.0 + x.abs()),
                    "{mapping:?}: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn without_combining_packed_equals_unpacked_exactly() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &varied_spec(11));
    let mut o = opts(4, 4);
    o.alpha = Some(vec![1]);
    let c = compile::compile(&m, &o).unwrap();
    assert_eq!(c.report.packed.pruned, 0);
    let packed = c.packed.reference();
    for s in 0..5 {
        let img = testgen::random_image(2, 9, 7, s);
        let u = c.qnet.run(&img, true);
        let p = packed.run_model_order(&img, true);
        assert_eq!(u, p);
    }
}

#[test]
fn packed_reference_equals_unpacked_with_pruned_weights() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &varied_spec(12));
    let c = compile::compile(&m, &opts(4, 3)).unwrap();
    assert!(
        c.report.packed.pruned > 0,
        "the test needs pruning to happen"
    );
    // Build the unpacked network with exactly the combined-away weights zeroed, from the
    // grouping and the combining rule, independently of the packed arrays.
    let mut q = c.qnet.clone();
    for (l, pl) in q.layers.iter_mut().zip(&c.packed.layers) {
        for group in &pl.groups {
            for r in 0..l.weight.nrows() {
                let keep = group
                    .iter()
                    .copied()
                    .filter(|&col| l.weight[[r, col]] != 0)
                    .fold(None::<usize>, |best, col| match best {
                        Some(b)
                            if l.float_weight[[r, b]].abs() >= l.float_weight[[r, col]].abs() =>
                        {
                            Some(b)
                        }
                        _ => Some(col),
                    });
                for &col in group {
                    if Some(col) != keep {
                        l.weight[[r, col]] = 0;
                    }
                }
            }
        }
    }
    let packed = c.packed.reference();
    for s in 0..6 {
        let img = testgen::random_image(2, 9, 7, 100 + s);
        assert_eq!(q.run(&img, true), packed.run_model_order(&img, true));
    }
}

#[test]
fn head_on_the_array_computes_the_head_units_logits() {
    let d = tempfile::tempdir().unwrap();
    let mut headed = varied_spec(15);
    headed.head = vec![7, 4];
    for (i, spec) in [GenSpec::small(3), headed].iter().enumerate() {
        let m = common::write_model(d.path(), &format!("m{i}.safetensors"), spec);
        let unit = compile::compile(&m, &opts(4, 4)).unwrap();
        let array = compile::compile(
            &m,
            &CompileOptions {
                head_on_array: Some(1),
                ..opts(4, 4)
            },
        )
        .unwrap();
        // No head unit, no lanes for it.
        let err = compile::compile(
            &m,
            &CompileOptions {
                head_on_array: Some(1),
                head_lanes: Some(1),
                ..opts(4, 4)
            },
        )
        .err()
        .expect("lanes refused");
        assert!(format!("{err:#}").contains("no head unit"), "{err:#}");
        let convs = unit.packed.layers.len();
        let head = &array.packed.layers[convs..];
        assert_eq!(
            head.len(),
            spec.head.len() + 1,
            "one array layer per linear layer"
        );
        assert!(head[0].pool && head[1..].iter().all(|l| !l.pool));
        if !spec.head.is_empty() {
            // The hidden layers' weights are dense in the file behind a sparse mask: the
            // array layer holds at most the mask's nonzeros (quantization may zero more).
            let mask = tensor_f32(&m, "head.0.mask");
            let dense = tensor_f32(&m, "head.0.weight");
            let ones = mask.iter().filter(|&&v| v != 0.0).count();
            assert!(dense.iter().all(|&v| v != 0.0) && ones < dense.len());
            let nnz = head[0].decode().iter().filter(|&&w| w != 0).count();
            assert!(nnz <= ones && nnz * 10 >= ones * 9, "{nnz} of {ones}");
        }
        let last = head.last().unwrap();
        assert_eq!(last.act, ccc::lower::Activation::Logits);
        assert_eq!(last.output.c, spec.classes);
        let (a, u) = (array.packed.reference(), unit.packed.reference());
        for s in 0..6 {
            let img = testgen::random_image(spec.channels, spec.height, spec.width, 300 + s);
            let (x, y) = (a.run_model_order(&img, true), u.run_model_order(&img, true));
            // Bit for bit: the pool folded into the first linear layer sums the same
            // integers in another order.
            assert_eq!(x.logits, y.logits, "model {i}, image {s}");
            assert_eq!(x.sums, y.sums, "model {i}, image {s}");
            assert_eq!(x.class, y.class);
            assert_eq!(x.layers[..convs], y.layers[..]);
        }
    }
}

#[test]
fn row_permutation_changes_no_output() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &varied_spec(13));
    let c = compile::compile(&m, &opts(4, 4)).unwrap();
    let perms: Vec<Vec<usize>> = c.packed.layers.iter().map(|l| l.row_perm.clone()).collect();
    assert!(
        perms
            .iter()
            .any(|p| p.iter().enumerate().any(|(i, &v)| i != v)),
        "the test needs a non-trivial permutation"
    );
    let mut identity = c.packed.clone();
    let undo: Vec<Vec<usize>> = perms.iter().map(|p| ccc::lower::invert(p)).collect();
    apply_permutation(&mut identity, &undo);
    for l in &identity.layers {
        assert!(l.row_perm.iter().enumerate().all(|(i, &v)| i == v));
    }
    let (a, b) = (c.packed.reference(), identity.reference());
    let float_perm = c.lowered.permuted(&perms);
    for s in 0..6 {
        let img = testgen::random_image(2, 9, 7, 200 + s);
        assert_eq!(a.run_model_order(&img, true), b.run(&img, true));
        assert_eq!(run_float(&c.lowered, &img), run_float(&float_perm, &img));
    }
}

#[test]
fn groups_read_contiguous_slots_of_the_previous_layer() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &varied_spec(14));
    let c = compile::compile(&m, &opts(4, 4)).unwrap();
    for l in c.packed.layers.iter().skip(2) {
        // 1x1 layers after a shift: each group's channels are consecutive slots.
        let mut next_slot = 0;
        for g in 0..l.groups_len() {
            for t in &l.taps[l.group_offsets[g]..l.group_offsets[g + 1]] {
                assert_eq!(t.channel, next_slot);
                next_slot += 1;
            }
        }
    }
}

#[test]
fn compile_output_is_deterministic_and_complete() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &GenSpec::small(21));
    let mut outs = Vec::new();
    for run in 0..2 {
        let out = d.path().join(format!("out{run}"));
        let o = ccc(&[
            "compile",
            m.to_str().unwrap(),
            "--rows",
            "8",
            "--cols",
            "4",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        outs.push(out);
    }
    // Recompiling into an existing directory replaces it.
    let o = ccc(&[
        "compile",
        m.to_str().unwrap(),
        "--rows",
        "8",
        "--cols",
        "4",
        "-o",
        outs[1].to_str().unwrap(),
    ]);
    assert!(o.status.success());
    for f in [
        "report.json",
        "report.md",
        "packed.safetensors",
        "schedule.json",
    ] {
        let a = std::fs::read(outs[0].join(f)).unwrap();
        let b = std::fs::read(outs[1].join(f)).unwrap();
        assert!(!a.is_empty());
        assert_eq!(a, b, "{f} differs between runs");
    }
    // The packed file carries what the emitter needs, consistent with the report.
    let bytes = std::fs::read(outs[0].join("packed.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outs[0].join("report.json")).unwrap()).unwrap();
    for (i, l) in report["layers"].as_array().unwrap().iter().enumerate() {
        let w = st.tensor(&format!("layers.{i}.weight")).unwrap();
        assert_eq!(w.dtype(), safetensors::Dtype::I8);
        assert_eq!(
            w.shape()[1] as u64,
            l["packed"]["columns"].as_u64().unwrap()
        );
        let nnz = w.data().iter().filter(|&&b| b != 0).count() as u64;
        assert_eq!(nnz, l["packed"]["nonzeros"].as_u64().unwrap());
        for name in ["selector", "bias", "taps", "group_offsets", "row_perm"] {
            st.tensor(&format!("layers.{i}.{name}")).unwrap();
        }
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().as_ref().unwrap();
    let packed: serde_json::Value = serde_json::from_str(&meta["ccc.packed"]).unwrap();
    assert_eq!(packed["format"], "ccc.packed/1");
    assert!(packed["net"]["layers"][0]["k"].is_i64());
}

#[test]
fn infer_dump_holds_every_layer() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &GenSpec::small(22));
    let dump = d.path().join("acts.safetensors");
    let o = ccc(&[
        "infer",
        m.to_str().unwrap(),
        "--random",
        "2",
        "--dump",
        dump.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let bytes = std::fs::read(&dump).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (k, line) in lines.iter().enumerate() {
        for l in 0..3 {
            st.tensor(&format!("image{k}.layer{l}")).unwrap();
        }
        let logits = st.tensor(&format!("image{k}.logits")).unwrap();
        let got: Vec<i64> = logits
            .data()
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
            .collect();
        let want: Vec<i64> = line["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn dense_baseline_has_no_pruning_and_matches_unpacked_metrics() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &GenSpec::small(23));
    let mut o = opts(8, 8);
    o.dense = true;
    let c = compile::compile(&m, &o).unwrap();
    assert_eq!(c.report.packed, c.report.unpacked);
    let img = testgen::random_image(1, 12, 12, 1);
    assert_eq!(
        c.qnet.run(&img, true),
        c.packed.reference().run_model_order(&img, true)
    );
}

#[test]
fn eval_on_fashion_mnist() {
    if !common::need_fashion_mnist("eval_on_fashion_mnist") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut spec = GenSpec::small(24);
    (spec.height, spec.width) = (28, 28);
    let m = common::write_model(d.path(), "m.safetensors", &spec);
    let o = ccc(&[
        "eval",
        m.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--limit",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for f in [
        "50 images",
        "float (f64",
        "8-bit unpacked",
        "8-bit packed",
        "agreement",
    ] {
        assert!(out.contains(f), "{out}");
    }
    // compile --dataset puts the same numbers into the report.
    let out_dir = d.path().join("out");
    let o = ccc(&[
        "compile",
        m.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--limit",
        "50",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["accuracy"]["images"], 50);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## Accuracy"));
    // A model whose input does not match the dataset is refused.
    let m2 = common::write_model(d.path(), "m2.safetensors", &GenSpec::small(25));
    let o = ccc(&[
        "eval",
        m2.to_str().unwrap(),
        "--dataset",
        "fashion-mnist",
        "--limit",
        "5",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("1x12x12"), "{}", stderr(&o));
}

#[test]
fn compare_command_on_fashion_mnist() {
    if !common::need_fashion_mnist("compare_command_on_fashion_mnist") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut spec = GenSpec::small(26);
    (spec.height, spec.width) = (28, 28);
    let m = common::write_model(d.path(), "m.safetensors", &spec);
    let out = d.path().join("cmp");
    let o = ccc(&[
        "compare",
        &format!("combined={}", m.display()),
        m.to_str().unwrap(),
        &format!(
            "dec={}",
            common::repo()
                .join("models/fmnist-vgg-decomposed.safetensors")
                .display()
        ),
        "--rows",
        "8",
        "--cols",
        "8",
        "--dataset",
        "fashion-mnist",
        "--limit",
        "20",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("| combined |") && md.contains("| m |"), "{md}");
    assert!(md.contains("20 fashion-mnist test images"), "{md}");
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("comparison.json")).unwrap()).unwrap();
    assert_eq!(rows[0]["tiles"], rows[1]["tiles"]);
    // A decomposed model gives a row per mapping, from one compile of both.
    assert!(
        md.contains("| dec (stages) |") && md.contains("| dec (expanded) |"),
        "{md}"
    );
    assert_ne!(rows[2]["cycles"], rows[3]["cycles"]);
    assert!(out.join("accuracy-vs-cycles.svg").exists());
    // No dataset: refused before anything is written.
    let o = ccc(&[
        "compare",
        m.to_str().unwrap(),
        "-o",
        d.path().join("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--dataset fashion-mnist"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("x").exists());
}
