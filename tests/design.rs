//! The hardware-design IR: `ccc compile` writes it as OUT/rtl/rtl.json, reading it back
//! and rendering it again gives every emitted file byte for byte, and the IR, the report
//! and the schedule of a tiny configuration match their goldens (tests/golden/; rewrite
//! with CCC_UPDATE_GOLDEN=1 and review the diff).

mod common;

use ccc::rtl::design::HwDesign;
use ccc::rtl::emit;
use ccc::testgen::{BlockSpec, GenDtype, GenSpec, StemSpec};

/// The configuration of the Verilog goldens (tests/golden/tiny_2x2_*).
fn tiny() -> GenSpec {
    GenSpec {
        name: "tiny".into(),
        channels: 1,
        height: 4,
        width: 4,
        classes: 2,
        stem: Some(StemSpec {
            out: 2,
            k: 3,
            stride: 1,
            padding: 1,
        }),
        blocks: vec![BlockSpec {
            out: 3,
            stride: 2,
            alpha: Some(2),
        }],
        density: 0.6,
        batchnorm: true,
        relu6: true,
        gamma: Some(1.0),
        dtype: GenDtype::F32,
        seed: 9,
    }
}

/// Compiles `spec` from inside a temp dir with a relative model path, as a user would.
fn compile(spec: &GenSpec, args: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    common::write_model(d.path(), "tiny.safetensors", spec);
    let mut all = vec!["compile", "tiny.safetensors", "-o", "out"];
    all.extend(args);
    let o = common::ccc_in(d.path(), &all);
    assert!(o.status.success(), "{}", common::stderr(&o));
    d
}

#[test]
fn golden_outputs_of_a_tiny_model() {
    let d = compile(&tiny(), &["--rows", "2", "--cols", "2", "--alpha", "1,2"]);
    let out = d.path().join("out");
    // The generated Verilog and memory images (the hand-written primitives and the
    // cell/array templates have goldens of their own in tests/rtl_cell.rs), then the IR,
    // the report and the schedule.
    for (file, golden) in [
        ("rtl/ccc_top.v", "tiny_2x2_ccc_top.v"),
        ("rtl/ccc_sched.v", "tiny_2x2_ccc_sched.v"),
        ("rtl/ccc_wmap.v", "tiny_2x2_ccc_wmap.v"),
        ("rtl/weights.hex", "tiny_2x2_weights.hex"),
        ("rtl/cls_w.hex", "tiny_2x2_cls_w.hex"),
        ("rtl/cls_b.hex", "tiny_2x2_cls_b.hex"),
        ("rtl/rtl.json", "tiny_2x2_design.json"),
        ("report.json", "tiny_2x2_report.json"),
        ("schedule.json", "tiny_2x2_schedule.json"),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        common::golden_file(golden, &text);
    }
}

#[test]
fn the_design_round_trips_to_the_same_files() {
    // Vertical tiling, α below ALPHA (packed pixels), stride 2, and the classifier.
    let mut spec = tiny();
    spec.blocks.push(BlockSpec {
        out: 6,
        stride: 1,
        alpha: Some(4),
    });
    let d = compile(&spec, &["--rows", "3", "--cols", "2"]);
    let rtl = d.path().join("out/rtl");
    let design = HwDesign::read(&rtl.join(emit::DESIGN_FILE)).unwrap();
    let files = emit::render(&design).unwrap();
    let mut on_disk: Vec<String> = std::fs::read_dir(&rtl)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut rendered: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    rendered.sort();
    assert_eq!(
        rendered, on_disk,
        "the design renders exactly OUT/rtl's files"
    );
    for (name, text) in &files {
        let want = std::fs::read_to_string(rtl.join(name)).unwrap();
        assert!(&want == text, "{name} differs after the round trip");
    }
}

#[test]
fn a_design_of_another_format_is_refused() {
    let d = compile(&tiny(), &["--rows", "2", "--cols", "2"]);
    let p = d.path().join("out/rtl").join(emit::DESIGN_FILE);
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("ccc.hw-design/1", "ccc.hw-design/0");
    std::fs::write(&p, text).unwrap();
    let e = HwDesign::read(&p).unwrap_err().to_string();
    assert!(e.contains("ccc.hw-design/0"), "{e}");
}
