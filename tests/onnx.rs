//! ONNX ingest: the fixtures of tests/data/onnx (written by tools/onnx_fixtures.py with
//! the `onnx` package) against their ccc-format twins, against onnxruntime's logits,
//! and every refusal.

mod common;

use std::path::{Path, PathBuf};

use ccc::compile::{self, CompileOptions, Compiled};
use ccc::reference::{Form, run_float, run_form};
use common::{ccc, stderr, stdout};

/// The generated networks that exist in both forms.
const TWINS: &[&str] = &[
    "stem5-shift-gemm",
    "padslice-matmul-op9",
    "padslice-matmul-op13",
    "one-pixel-head",
    "mlp-head",
];

fn data(name: &str) -> PathBuf {
    common::repo().join("tests/data/onnx").join(name)
}

fn compile_at(model: &Path, rows: usize, cols: usize, input_scale: Option<f64>) -> Compiled {
    let o = CompileOptions {
        rows,
        cols,
        rtl: false,
        input_scale,
        ..CompileOptions::default()
    };
    compile::compile(model, &o).unwrap_or_else(|e| panic!("{}: {e:#}", model.display()))
}

/// The report as JSON with the one field that may differ (the model's path) blanked.
fn report_without_source(c: &Compiled) -> String {
    let mut r = c.report.clone();
    r.source = String::new();
    r.to_json()
}

#[test]
fn onnx_and_ccc_format_give_identical_logits_and_reports() {
    for name in TWINS {
        let onnx = data(&format!("{name}.onnx"));
        let st = data(&format!("{name}.safetensors"));
        for (rows, cols) in [(4, 4), (3, 5)] {
            let a = compile_at(&onnx, rows, cols, None);
            let b = compile_at(&st, rows, cols, None);
            assert_eq!(
                report_without_source(&a),
                report_without_source(&b),
                "{name} at {rows}x{cols}: packed reports differ"
            );
            assert_eq!(
                compile::packed_safetensors(&a.packed, a.schedule.array).unwrap(),
                compile::packed_safetensors(&b.packed, b.schedule.array).unwrap(),
                "{name}: packed networks differ"
            );
            let i = a.qnet.input;
            let images = ccc::testgen::random_images(i.c, i.h, i.w, 16, 7);
            for form in [Form::Packed, Form::Unpacked] {
                let la: Vec<Vec<i32>> = run_form(&a.qnet, &a.packed, form, &images, false)
                    .into_iter()
                    .map(|r| r.logits)
                    .collect();
                let lb: Vec<Vec<i32>> = run_form(&b.qnet, &b.packed, form, &images, false)
                    .into_iter()
                    .map(|r| r.logits)
                    .collect();
                assert_eq!(la, lb, "{name}: {form:?} integer logits differ");
            }
            for img in &images {
                assert_eq!(run_float(&a.lowered, img), run_float(&b.lowered, img));
            }
        }
    }
}

#[test]
fn the_cli_takes_onnx_like_its_own_format() {
    let onnx = data("stem5-shift-gemm.onnx");
    let st = data("stem5-shift-gemm.safetensors");
    let args = |m: &Path| {
        let o = ccc(&[
            "infer",
            m.to_str().unwrap(),
            "--random",
            "5",
            "--rows",
            "4",
            "--cols",
            "4",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(args(&onnx), args(&st));
    let inspect = ccc(&["inspect", onnx.to_str().unwrap()]);
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let text = stdout(&inspect);
    assert!(
        text.contains("conv 2 (graph layer 8, `block2.conv.weight`)"),
        "{text}"
    );
    assert!(text.contains("alpha 3"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = ccc(&[
        "compile",
        onnx.to_str().unwrap(),
        "--rows",
        "4",
        "--cols",
        "4",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["report.json", "packed.safetensors", "rtl/ccc_top.v"] {
        assert!(
            out.join(f).exists(),
            "compile of an ONNX model wrote no {f}"
        );
    }
}

#[test]
fn metadata_sets_alpha_and_gamma_and_flags_override_it() {
    let onnx = data("stem5-shift-gemm.onnx");
    let c = compile_at(&onnx, 4, 4, None);
    assert_eq!(c.report.gamma, 1.5);
    let alphas: Vec<usize> = c.report.layers.iter().map(|l| l.alpha).collect();
    assert_eq!(alphas, [1, 2, 3]);
    let o = CompileOptions {
        rows: 4,
        cols: 4,
        rtl: false,
        alpha: Some(vec![4]),
        gamma: Some(0.5),
        ..CompileOptions::default()
    };
    let c = compile::compile(&onnx, &o).unwrap();
    assert_eq!(c.report.gamma, 0.5);
    assert!(c.report.layers.iter().all(|l| l.alpha == 4));
}

#[derive(serde::Deserialize)]
struct Expected {
    engine: String,
    input_scale: f64,
    images: Vec<Vec<u8>>,
    logits: Vec<Vec<f64>>,
}

/// ccc's float reference against onnxruntime's logits (float32, so a float32 tolerance),
/// with `--input-scale` where the fixture was trained on pixel / 255.
#[test]
fn float_reference_matches_onnxruntime() {
    let mut checked = 0;
    for entry in std::fs::read_dir(data("")).unwrap() {
        let p = entry.unwrap().path();
        let Some(stem) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".expected.json"))
        else {
            continue;
        };
        let e: Expected = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let scale = (e.input_scale != 256.0).then_some(e.input_scale);
        let c = compile_at(&data(&format!("{stem}.onnx")), 4, 4, scale);
        let mut worst = 0.0f64;
        for (img, want) in e.images.iter().zip(&e.logits) {
            let got = run_float(&c.lowered, img);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                worst = worst.max((g - w).abs() / w.abs().max(1.0));
            }
        }
        assert!(
            worst < 1e-5,
            "{stem}: ccc's float reference is {worst:e} (relative) from {}",
            e.engine
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        TWINS.len() + 1,
        "expected logits for every fixture"
    );
}

#[test]
fn input_scale_folds_into_the_first_conv() {
    let m = data("stem5-shift-gemm.onnx");
    let a = compile_at(&m, 4, 4, None);
    let b = compile_at(&m, 4, 4, Some(128.0));
    // pixel / 128 is twice pixel / 256: the first conv's weights double, exactly.
    assert_eq!(
        b.lowered.layers[0].weight,
        &a.lowered.layers[0].weight * 2.0
    );
    assert_eq!(b.lowered.layers[1].weight, a.lowered.layers[1].weight);
    let o = ccc(&[
        "infer",
        m.to_str().unwrap(),
        "--random",
        "1",
        "--input-scale",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--input-scale 0 must be a positive number"));
}

/// Each refusal: (fixture, node, op, words of the reason).
const REFUSALS: &[(&str, &str, &str, &str)] = &[
    (
        "refuse-maxpool",
        "pool1",
        "MaxPool",
        "max pooling is not supported",
    ),
    (
        "refuse-grouped-conv",
        "gconv",
        "Conv",
        "a grouped Conv (group = 2) is accepted only as a shift",
    ),
    (
        "refuse-depthwise-not-one-hot",
        "dw",
        "Conv",
        "whose one nonzero is 0.5, not 1",
    ),
    (
        "refuse-asymmetric-pads",
        "conv",
        "Conv",
        "pads [0, 0, 1, 1] (top, left, bottom, right) are not symmetric",
    ),
    (
        "refuse-residual-add",
        "residual",
        "Add",
        "Add of two activations (a residual connection) is not supported",
    ),
    (
        "refuse-clip-0-4",
        "clip4",
        "Clip",
        "Clip(0, 4) is not supported",
    ),
    (
        "refuse-normalize-padded",
        "conv",
        "Conv",
        "cannot fold the input normalization at `normalize.sub` into this conv: it pads with zeros",
    ),
];

#[test]
fn unsupported_graphs_are_refused_naming_node_op_and_reason_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, node, op, reason) in REFUSALS {
        let m = data(&format!("{fixture}.onnx"));
        let out = dir.path().join(fixture);
        let o = ccc(&[
            "compile",
            m.to_str().unwrap(),
            "--rows",
            "4",
            "--cols",
            "4",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(!o.status.success(), "{fixture} was accepted");
        let err = stderr(&o);
        let head = format!("ONNX node `{node}` ({op}): ");
        assert!(err.contains(&head), "{fixture}: no `{head}` in: {err}");
        assert!(err.contains(reason), "{fixture}: no `{reason}` in: {err}");
        assert!(
            err.contains(&m.display().to_string()),
            "{fixture}: the file is not named: {err}"
        );
        assert!(!out.exists(), "{fixture}: a refused compile wrote {out:?}");
    }
    // The operators refused with the list of what is supported.
    for fixture in [
        "refuse-maxpool",
        "refuse-grouped-conv",
        "refuse-residual-add",
    ] {
        let err = ccc::model::load(&data(&format!("{fixture}.onnx")), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(ccc::onnx::SUPPORTED), "{fixture}: {err}");
    }
}

#[test]
fn files_that_are_not_onnx_models_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"\xff\xff\xff\xff not a protobuf").unwrap();
    let err = ccc::model::load(&junk, None).unwrap_err().to_string();
    assert!(
        err.contains("junk.onnx: not a model ccc can read as ONNX"),
        "{err}"
    );
    let err = ccc::model::load(&data("one-pixel-head.onnx"), Some(&junk))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--graph applies to .safetensors models"),
        "{err}"
    );
}
