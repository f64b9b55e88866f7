//! Every malformed input is rejected with an error naming the file, layer and tensor,
//! a non-zero exit, and nothing written.

mod common;

use std::path::{Path, PathBuf};

use ccc::error::ModelError;
use ccc::modelfile::model_bytes;
use ccc::output::OutTensor;
use ccc::testgen::{self, GenDtype, GenSpec};
use common::{ccc, stderr};

fn spec() -> GenSpec {
    GenSpec::small(7)
}

fn parts() -> (Vec<(String, OutTensor)>, String) {
    let m = testgen::generate(&spec()).unwrap();
    (m.tensors, m.graph)
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn write_parts(dir: &Path, name: &str, t: &[(String, OutTensor)], graph: &str) -> PathBuf {
    write_bytes(dir, name, &model_bytes(t, graph).unwrap())
}

/// Runs `ccc compile` and asserts failure, the message fragments, and that neither the
/// output directory nor any staging leftovers exist afterwards.
fn rejects(model: &Path, extra: &[&str], fragments: &[&str]) {
    let dir = model.parent().unwrap();
    let out = dir.join(format!(
        "out-{}",
        model.file_stem().unwrap().to_string_lossy()
    ));
    let before: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut args = vec![
        "compile",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = ccc(&args);
    let err = stderr(&o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    for f in fragments {
        assert!(err.contains(f), "stderr lacks `{f}`:\n{err}");
    }
    assert!(!out.exists(), "output dir was written despite the error");
    let after: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "the failed run left files behind");
}

fn replace_tensor(t: &mut [(String, OutTensor)], name: &str, new: OutTensor) {
    let slot = t
        .iter_mut()
        .find(|(n, _)| n == name)
        .expect("tensor exists");
    slot.1 = new;
}

#[test]
fn truncated_and_corrupt_files() {
    let d = tempfile::tempdir().unwrap();
    let (t, g) = parts();
    let good = model_bytes(&t, &g).unwrap();
    let m = write_bytes(d.path(), "trunc.safetensors", &good[..good.len() / 2]);
    rejects(
        &m,
        &[],
        &["trunc.safetensors", "not a valid safetensors file"],
    );
    let m = write_bytes(d.path(), "tiny.safetensors", &good[..5]);
    rejects(
        &m,
        &[],
        &["tiny.safetensors", "shorter than the 8-byte header"],
    );
    let m = write_bytes(d.path(), "empty.safetensors", &[]);
    rejects(&m, &[], &["empty.safetensors"]);
    let mut bad = 9u64.to_le_bytes().to_vec();
    bad.extend(b"not json{");
    let m = write_bytes(d.path(), "nojson.safetensors", &bad);
    rejects(&m, &[], &["nojson.safetensors", "header is not JSON"]);
    let mut huge = (1u64 << 40).to_le_bytes().to_vec();
    huge.extend(b"{}");
    let m = write_bytes(d.path(), "hugelen.safetensors", &huge);
    rejects(&m, &[], &["runs past the end of the file"]);
    rejects(
        &d.path().join("absent.safetensors"),
        &[],
        &["absent.safetensors", "cannot read"],
    );
}

fn handmade(dtype: &str) -> Vec<u8> {
    let header = format!(
        r#"{{"__metadata__":{{"ccc.graph":"x"}},"w":{{"dtype":"{dtype}","shape":[2],"data_offsets":[0,4]}}}}"#
    );
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.as_bytes());
    b.extend([0u8; 4]);
    b
}

#[test]
fn unknown_and_unsupported_dtypes_name_the_tensor() {
    let d = tempfile::tempdir().unwrap();
    let m = write_bytes(d.path(), "u16.safetensors", &handmade("U16"));
    rejects(&m, &[], &["tensor `w`", "dtype U16"]);
    let m = write_bytes(d.path(), "weird.safetensors", &handmade("Q3"));
    rejects(&m, &[], &["tensor `w`", "dtype Q3"]);
    let err = ccc::model::load(&m, None).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedDtype { ref tensor, .. } if tensor == "w"));
}

#[test]
fn missing_tensor_and_graph() {
    let d = tempfile::tempdir().unwrap();
    let (mut t, g) = parts();
    t.retain(|(n, _)| n != "b0.conv.weight");
    let m = write_parts(d.path(), "missing.safetensors", &t, &g);
    rejects(
        &m,
        &[],
        &["layer 4 (conv)", "tensor `b0.conv.weight` is missing"],
    );
    let err = ccc::model::load(&m, None).unwrap_err();
    assert!(matches!(err, ModelError::MissingTensor { layer: 4, .. }));

    let (t, _) = parts();
    let bytes = ccc::output::safetensors_bytes(&t, None).unwrap();
    let m = write_bytes(d.path(), "nograph.safetensors", &bytes);
    rejects(&m, &[], &["no network graph", "ccc.graph"]);
    // A sidecar graph fixes it.
    let (_, g) = parts();
    let gp = d.path().join("side.toml");
    std::fs::write(&gp, g).unwrap();
    let out = d.path().join("side-out");
    let o = ccc(&[
        "compile",
        m.to_str().unwrap(),
        "--graph",
        gp.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn shapes_that_do_not_chain() {
    let d = tempfile::tempdir().unwrap();
    let (mut t, g) = parts();
    // b1 takes 16 channels; give it 15.
    replace_tensor(
        &mut t,
        "b1.conv.weight",
        OutTensor::f32(&[24, 15, 1, 1], vec![0.1; 24 * 15]),
    );
    let m = write_parts(d.path(), "chain.safetensors", &t, &g);
    rejects(
        &m,
        &[],
        &["layer 8 (conv)", "`b1.conv.weight`", "does not chain"],
    );
    let (mut t, g) = parts();
    replace_tensor(
        &mut t,
        "fc.weight",
        OutTensor::f32(&[10, 23], vec![0.1; 230]),
    );
    let m = write_parts(d.path(), "fc.safetensors", &t, &g);
    rejects(&m, &[], &["(linear)", "`fc.weight`", "does not chain"]);
    let (mut t, g) = parts();
    replace_tensor(
        &mut t,
        "b0.bn.running_var",
        OutTensor::f32(&[3], vec![1.0; 3]),
    );
    let m = write_parts(d.path(), "bn.safetensors", &t, &g);
    rejects(&m, &[], &["(batchnorm)", "`b0.bn.running_var`"]);
    let (mut t, g) = parts();
    replace_tensor(&mut t, "b0.shift", OutTensor::i32(&[8, 3], vec![0; 24]));
    let m = write_parts(d.path(), "shift.safetensors", &t, &g);
    rejects(&m, &[], &["(shift)", "`b0.shift`"]);
    // Classes disagreeing with the classifier.
    let (t, g) = parts();
    let m = write_parts(
        d.path(),
        "classes.safetensors",
        &t,
        &g.replace("classes = 10", "classes = 11"),
    );
    rejects(&m, &[], &["model.classes = 11"]);
}

#[test]
fn non_finite_weights() {
    let d = tempfile::tempdir().unwrap();
    for (name, bad) in [
        ("nan", f32::NAN),
        ("inf", f32::INFINITY),
        ("ninf", f32::NEG_INFINITY),
    ] {
        let (mut t, g) = parts();
        let mut v = vec![0.25f32; 16 * 8];
        v[5] = bad;
        replace_tensor(&mut t, "b0.conv.weight", OutTensor::f32(&[16, 8, 1, 1], v));
        let m = write_parts(d.path(), &format!("{name}.safetensors"), &t, &g);
        rejects(
            &m,
            &[],
            &["layer 4 (conv)", "`b0.conv.weight`", "not finite"],
        );
    }
    let (mut t, g) = parts();
    replace_tensor(&mut t, "fc.bias", OutTensor::f32(&[10], vec![f32::NAN; 10]));
    let m = write_parts(d.path(), "nanbias.safetensors", &t, &g);
    rejects(&m, &[], &["(linear)", "`fc.bias`", "not finite"]);
}

#[test]
fn bad_graph_fields() {
    let d = tempfile::tempdir().unwrap();
    let (t, g) = parts();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "kind",
            g.replacen("kind = \"avgpool\"", "kind = \"maxpool\"", 1),
            vec!["layer 11 (maxpool)", "unknown layer kind"],
        ),
        (
            "stride0",
            g.replacen("stride = 2", "stride = 0", 1),
            vec!["layer 4 (conv)", "`stride` = 0"],
        ),
        (
            "strideneg",
            g.replacen("stride = 2", "stride = -2", 1),
            vec!["layer 4 (conv)", "`stride` = -2"],
        ),
        (
            "alpha0",
            g.replacen("alpha = 4", "alpha = 0", 1),
            vec!["layer 4 (conv)", "`alpha` = 0"],
        ),
        (
            "typo",
            g.replacen("stride = 2", "strides = 2", 1),
            vec!["layer 4 (conv)", "unknown field `strides`"],
        ),
        (
            "toml",
            g.replacen("[model]", "[model", 1),
            vec!["graph TOML is invalid"],
        ),
        (
            "noclass",
            g.replacen("kind = \"linear\"", "kind = \"relu\"", 1),
            vec!["layer 12"],
        ),
        (
            "norelu",
            g.replacen("\n[[layers]]\nkind = \"relu6\"\n", "", 1),
            vec![
                "layer 0 (conv)",
                "unsupported combination",
                "must be followed by relu6 or relu",
            ],
        ),
    ];
    for (name, graph, frags) in cases {
        let m = write_parts(d.path(), &format!("{name}.safetensors"), &t, &graph);
        rejects(&m, &[], &frags);
    }
}

#[test]
fn unsupported_combinations() {
    let d = tempfile::tempdir().unwrap();
    let (mut t, g) = parts();
    // A shift in front of the 3x3 stem.
    t.push(("s0".into(), OutTensor::i32(&[1, 2], vec![1, 0])));
    let g2 = g.replacen(
        "\n[[layers]]\nkind = \"conv\"",
        "\n[[layers]]\nkind = \"shift\"\nshifts = \"s0\"\n\n[[layers]]\nkind = \"conv\"",
        1,
    );
    let m = write_parts(d.path(), "shift3x3.safetensors", &t, &g2);
    rejects(
        &m,
        &[],
        &[
            "unsupported combination",
            "shifts may only precede 1x1 convs",
        ],
    );
    let err = ccc::compile::load_lowered(&m, None).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<ModelError>(),
        Some(ModelError::Unsupported { .. })
    ));
}

#[test]
fn bad_command_line_values() {
    let d = tempfile::tempdir().unwrap();
    let (t, g) = parts();
    let m = write_parts(d.path(), "ok.safetensors", &t, &g);
    rejects(&m, &["--rows", "0"], &["--rows = 0"]);
    rejects(&m, &["--cols", "0"], &["--cols = 0"]);
    rejects(&m, &["--rows", "100000"], &["--rows = 100000"]);
    rejects(&m, &["--alpha", "0"], &["alpha = 0"]);
    rejects(
        &m,
        &["--alpha", "1,2"],
        &["--alpha has 2 values", "3 conv layers"],
    );
    rejects(&m, &["--gamma=-1"], &["gamma = -1"]);
    rejects(&m, &["--gamma", "NaN"], &["gamma = NaN"]);
}

#[test]
fn unwritable_output_directory() {
    let d = tempfile::tempdir().unwrap();
    let (t, g) = parts();
    let m = write_parts(d.path(), "ok.safetensors", &t, &g);
    let blocker = d.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("out");
    let o = ccc(&["compile", m.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot be created") || stderr(&o).contains("not writable"),
        "{}",
        stderr(&o)
    );
    let o = ccc(&[
        "compile",
        m.to_str().unwrap(),
        "-o",
        blocker.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
}

#[test]
fn all_float_dtypes_are_accepted_and_agree() {
    let d = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for dt in [GenDtype::F32, GenDtype::F16, GenDtype::Bf16, GenDtype::F64] {
        let mut s = spec();
        s.dtype = dt;
        let m = common::write_model(d.path(), &format!("{dt:?}.safetensors"), &s);
        let net = ccc::model::load(&m, None).unwrap();
        assert_eq!(net.layers.len(), 13);
        let out = d.path().join(format!("{dt:?}-out"));
        let o = ccc(&[
            "compile",
            m.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--rows",
            "8",
            "--cols",
            "8",
        ]);
        assert!(o.status.success(), "{dt:?}: {}", stderr(&o));
        reports.push(std::fs::read_to_string(out.join("report.json")).unwrap());
    }
    // f16/bf16 round the same seeded weights differently, but the structure is the same.
    for r in &reports {
        assert!(r.contains("\"conv_index\": 8"));
    }
}

#[test]
fn stored_groupings_and_linear_masks() {
    let d = tempfile::tempdir().unwrap();
    let (mut t, g) = parts();
    // b0: 8 taps at alpha 4; its random weights (density 0.3) clash in any grouping of
    // four columns.
    let with_groups = g.replacen("alpha = 4", "alpha = 4\ngroups = \"b0.conv.groups\"", 1);
    let cases: Vec<(&str, Vec<i32>, Vec<&str>)> = vec![
        (
            "label",
            vec![0, 1, 2, 3, 4, 5, 6, 99],
            vec!["b0.conv.groups", "group 99"],
        ),
        (
            "alpha",
            vec![0; 8],
            vec!["b0.conv.groups", "exceeds alpha = 4"],
        ),
        (
            "clash",
            vec![0, 0, 0, 0, 1, 1, 1, 1],
            vec!["b0.conv.groups", "not clash-free", "--regroup"],
        ),
    ];
    for (name, labels, frags) in cases {
        let mut tt = t.clone();
        tt.push(("b0.conv.groups".into(), OutTensor::i32(&[8, 1, 1], labels)));
        let m = write_parts(
            d.path(),
            &format!("groups-{name}.safetensors"),
            &tt,
            &with_groups,
        );
        rejects(&m, &["--no-rtl"], &frags);
    }
    // --regroup packs such a model anew.
    let mut tt = t.clone();
    tt.push((
        "b0.conv.groups".into(),
        OutTensor::i32(&[8, 1, 1], vec![0, 0, 0, 0, 1, 1, 1, 1]),
    ));
    let m = write_parts(d.path(), "regroup.safetensors", &tt, &with_groups);
    let out = d.path().join("out-regroup");
    let o = ccc(&[
        "compile",
        m.to_str().unwrap(),
        "--no-rtl",
        "--regroup",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A linear layer's mask zeroes its weights exactly as zeroed weights do.
    let (classes, c) = (10, 24);
    let mask: Vec<f32> = (0..classes * c)
        .map(|i| if i % 3 == 0 { 0.0 } else { 1.0 })
        .collect();
    let masked_graph = g.replacen(
        "weight = \"fc.weight\"",
        "weight = \"fc.weight\"\nmask = \"fc.mask\"",
        1,
    );
    let mut with_mask = t.clone();
    with_mask.push((
        "fc.mask".into(),
        OutTensor::f32(&[classes, c], mask.clone()),
    ));
    let a = write_parts(d.path(), "fcmask.safetensors", &with_mask, &masked_graph);
    let fc = &t.iter().find(|(n, _)| n == "fc.weight").unwrap().1;
    let zeroed: Vec<f32> = fc
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .zip(&mask)
        .map(|(w, m)| w * m)
        .collect();
    replace_tensor(&mut t, "fc.weight", OutTensor::f32(&[classes, c], zeroed));
    let b = write_parts(d.path(), "fczeroed.safetensors", &t, &g);
    let mut packed = Vec::new();
    for (m, name) in [(&a, "a"), (&b, "b")] {
        let out = d.path().join(format!("out-fc-{name}"));
        let o = ccc(&[
            "compile",
            m.to_str().unwrap(),
            "--no-rtl",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        packed.push(std::fs::read(out.join("packed.safetensors")).unwrap());
    }
    assert_eq!(packed[0], packed[1]);
    // A mask of the wrong shape is named.
    with_mask.last_mut().unwrap().1 =
        OutTensor::f32(&[classes, c - 1], mask[..classes * (c - 1)].to_vec());
    let bad = write_parts(d.path(), "fcmaskbad.safetensors", &with_mask, &masked_graph);
    rejects(&bad, &["--no-rtl"], &["fc.mask"]);
}

/// A decomposed conv's tensors are checked like a conv's: coefficients that do not
/// match C·M, a basis that is not square, a shift in front of it.
#[test]
fn decomposed_conv_tensors_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let spec = GenSpec {
        blocks: vec![testgen::BlockSpec {
            k: 3,
            padding: 1,
            bases: 2,
            ..testgen::BlockSpec::shift(12, 1, Some(2))
        }],
        ..spec()
    };
    let m = testgen::generate(&spec).unwrap();
    let ok = write_parts(d.path(), "ok.safetensors", &m.tensors, &m.graph);
    let o = ccc(&["inspect", ok.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The stem has 8 channels: 2 bases need 16 coefficients per filter, not 15.
    let mut t = m.tensors.clone();
    replace_tensor(
        &mut t,
        "b0.conv.weight",
        OutTensor::f32(&[12, 15, 1, 1], vec![0.1; 12 * 15]),
    );
    let p = write_parts(d.path(), "coeff.safetensors", &t, &m.graph);
    rejects(
        &p,
        &[],
        &["(decomposed_conv)", "`b0.conv.weight`", "does not chain"],
    );
    let mut t = m.tensors.clone();
    replace_tensor(
        &mut t,
        "b0.conv.basis",
        OutTensor::f32(&[2, 3, 2], vec![0.1; 12]),
    );
    let p = write_parts(d.path(), "basis.safetensors", &t, &m.graph);
    rejects(&p, &[], &["`b0.conv.basis`", "not square"]);
    let mut t = m.tensors.clone();
    t.push(("s".into(), OutTensor::i32(&[8, 2], vec![0; 16])));
    let g = m.graph.replacen(
        "\n[[layers]]\nkind = \"decomposed_conv\"",
        "\n[[layers]]\nkind = \"shift\"\nshifts = \"s\"\n\n[[layers]]\nkind = \"decomposed_conv\"",
        1,
    );
    let p = write_parts(d.path(), "shift.safetensors", &t, &g);
    rejects(&p, &[], &["may not precede a decomposed conv"]);
}

/// An MLP head's structure is checked: a hidden linear layer needs an activation after
/// it, only linear layers and activations follow the pool, and the head's weights must
/// suit its requantizer (a right shift of at most 30), each refusal naming the layer.
#[test]
fn mlp_head_structure_and_fields_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.head = vec![6];
    let m = testgen::generate(&s).unwrap();
    let (t, g) = (m.tensors, m.graph);
    // No activation between the hidden layer and the classifier.
    let g2 = g.replacen(
        "\n[[layers]]\nkind = \"relu6\"\n\n[[layers]]\nkind = \"linear\"\nweight = \"fc.weight\"",
        "\n[[layers]]\nkind = \"linear\"\nweight = \"fc.weight\"",
        1,
    );
    assert_ne!(g2, g);
    let m = write_parts(d.path(), "noact.safetensors", &t, &g2);
    rejects(&m, &[], &["must be closed by relu or relu6"]);
    // A batchnorm after the pool.
    let g3 = g.replacen(
        "\n[[layers]]\nkind = \"avgpool\"\n",
        "\n[[layers]]\nkind = \"avgpool\"\n\n[[layers]]\nkind = \"relu\"\n",
        1,
    );
    let m = write_parts(d.path(), "poolrelu.safetensors", &t, &g3);
    rejects(&m, &[], &["after avgpool only linear layers may follow"]);
    // Hidden weights so small that the requantize shift passes 30.
    let mut t4 = t.clone();
    let (_, w) = t4
        .iter()
        .find(|(n, _)| n == "head.0.weight")
        .unwrap()
        .clone();
    let n = w.shape.iter().product();
    replace_tensor(
        &mut t4,
        "head.0.weight",
        OutTensor::f32(&w.shape, vec![1e-9; n]),
    );
    replace_tensor(
        &mut t4,
        "head.0.bias",
        OutTensor::f32(&[w.shape[0]], vec![0.0; w.shape[0]]),
    );
    let m = write_parts(d.path(), "tiny.safetensors", &t4, &g);
    rejects(
        &m,
        &[],
        &[
            "layer",
            "head.0.weight",
            "requantize shift",
            "outside 0..=30",
        ],
    );
}
