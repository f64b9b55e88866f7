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
        blocks: vec![BlockSpec::shift(3, 2, Some(2))],
        density: 0.6,
        batchnorm: true,
        relu6: true,
        gamma: Some(1.0),
        dtype: GenDtype::F32,
        seed: 9,
        head: Vec::new(),
    }
}

/// `spec` compiled in-process for a 2x2 array (its model file in `dir`).
fn compile_2x2(dir: &std::path::Path, spec: &GenSpec) -> ccc::compile::Compiled {
    let m = common::write_model(dir, "m.safetensors", spec);
    ccc::compile::compile(
        &m,
        &ccc::compile::CompileOptions {
            rows: 2,
            cols: 2,
            ..ccc::compile::CompileOptions::default()
        },
    )
    .unwrap()
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
        ("rtl/weights_b00.hex", "tiny_2x2_weights.hex"),
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
    spec.blocks.push(BlockSpec::shift(6, 1, Some(4)));
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

/// Every value that goes into a fixed-width field of the RTL is checked: one just past
/// its field is refused with an error naming the layer, the field and the range, never
/// wrapped. Each case starts from a model that compiles and pushes one value one step
/// past the field's edge (and checks the edge itself still builds).
#[test]
fn a_value_past_its_field_is_refused_naming_layer_field_and_limit() {
    use ccc::pack::network::PackedNet;
    use ccc::rtl::design::{self, FieldOverflow, Provenance};
    use ccc::schedule::Schedule;

    let d = tempfile::tempdir().unwrap();
    let spec = GenSpec {
        blocks: vec![
            BlockSpec::shift(6, 1, Some(2)),
            BlockSpec::shift(4, 1, Some(2)),
        ],
        ..tiny()
    };
    let c = compile_2x2(d.path(), &spec);
    let build = |net: &PackedNet, s: &Schedule| design::build(net, s, Provenance::default());
    build(&c.packed, &c.schedule).expect("the unmodified model builds");
    let refused = |net: &PackedNet, s: &Schedule, layer: Option<usize>, name: &str, v: i64| {
        let e = build(net, s).expect_err(name);
        let f = e
            .downcast_ref::<FieldOverflow>()
            .unwrap_or_else(|| panic!("{name}: not a field overflow: {e:#}"));
        assert_eq!((f.layer, f.field, f.value), (layer, name, v), "{e:#}");
        let text = format!("{e:#}");
        let (lo, hi) = f.range();
        assert!(
            text.contains(name) && text.contains(&format!("{lo}..={hi}")),
            "{text}"
        );
        if let Some(l) = layer {
            assert!(text.contains(&format!("conv layer {l}")), "{text}");
        }
    };
    let conv1 = c.packed.layers[1].conv_index;
    let t1 = c.schedule.tiles.iter().position(|t| t.layer == 1).unwrap();

    // Tile gap: 16 bits.
    let mut s = c.schedule.clone();
    s.tiles[t1].gap = (1 << 16) - 1;
    build(&c.packed, &s).expect("a gap at the field's edge");
    s.tiles[t1].gap = 1 << 16;
    refused(&c.packed, &s, Some(conv1), "tile gap", 1 << 16);
    // Segment delay: 3 bits.
    let mut s = c.schedule.clone();
    s.tiles[t1].delta = 8;
    refused(&c.packed, &s, Some(conv1), "segment delay", 8);
    // The controller's delay counters: 8 bits.
    let mut s = c.schedule.clone();
    s.reopen_delay = 256;
    refused(&c.packed, &s, None, "input reopen delay", 256);
    let mut s = c.schedule.clone();
    s.cls_delay = 256;
    refused(&c.packed, &s, None, "classifier delay", 256);
    // Requantize shift: 6 bits, signed, both ends.
    for v in [32, -33] {
        let mut n = c.packed.clone();
        n.layers[1].shift = v;
        refused(&n, &c.schedule, Some(conv1), "requantize shift", v as i64);
    }
    let mut n = c.packed.clone();
    n.layers[1].shift = 31;
    build(&n, &c.schedule).expect("a shift at the field's edge");
    // Clamp: 8 bits.
    let mut n = c.packed.clone();
    n.layers[1].clamp_max = 256;
    refused(&n, &c.schedule, Some(conv1), "clamp", 256);
    // A tap's offsets: 8 bits, signed.
    let mut n = c.packed.clone();
    n.layers[1].taps[0].dy = 128;
    refused(&n, &c.schedule, Some(conv1), "tap offset dy", 128);
    let mut n = c.packed.clone();
    n.layers[1].taps[0].dx = -129;
    refused(&n, &c.schedule, Some(conv1), "tap offset dx", -129);
    // Below that cap the offsets' field is as wide as the model's widest offset: shifts
    // of one need 2 bits, -5 needs 4; the word's target field follows.
    let tap_w = |n: &PackedNet| {
        let d = build(n, &c.schedule).expect("builds");
        (d.capacity.widths.tap_w, d.capacity.word.target_w)
    };
    let (w2, t2) = tap_w(&c.packed);
    assert_eq!(w2, 2);
    let mut n = c.packed.clone();
    n.layers[1].taps[0].dy = -5;
    assert_eq!(tap_w(&n), (4, t2 + 4));
    n.layers[1].taps[0].dx = 8;
    assert_eq!(tap_w(&n), (5, t2 + 6));
    // A write target's offset into the compact buffers: sized to the buffers, so a shift
    // that fits its own field but reaches far past the buffers does not fit.
    let mut n = c.packed.clone();
    n.layers[1].taps[0].dy = -127;
    let e = build(&n, &c.schedule).expect_err("write-target offset");
    let f = e.downcast_ref::<FieldOverflow>().expect("a field overflow");
    assert_eq!(f.field, "write-target offset", "{e:#}");
}

#[test]
fn the_accumulator_is_as_wide_as_the_models_bound() {
    use ccc::rtl::design::{self, Provenance};

    let d = tempfile::tempdir().unwrap();
    let c = compile_2x2(d.path(), &tiny());
    let psum_w = c.design.as_ref().unwrap().capacity.psum_w;
    let width = |bias: i32| {
        let mut n = c.packed.clone();
        n.layers[1].bias[0] = bias;
        let d = design::build(&n, &c.schedule, Provenance::default()).unwrap();
        assert_eq!(d.capacity.acc_w, design::acc_width(&n, psum_w));
        d.capacity.acc_w
    };
    let sum_w: u64 = c.packed.layers[1]
        .weight
        .row(0)
        .iter()
        .map(|&w| w.unsigned_abs() as u64 * 255)
        .sum();
    // |bias| + Σ|w|·255 just below and at a power of two: one more bit.
    let edge = (1u64 << 24) - sum_w;
    assert_eq!(width(edge as i32 - 1), 25);
    assert_eq!(width(-(edge as i32)), 26);
    // Never below the eight shifted bit-plane sums, never above int32.
    assert_eq!(width(0).max(psum_w + 8), width(0));
    assert_eq!(width(1 << 30), 32);
    // The classifier's: the same rule over its classes, at least one product wide.
    let logit = |bias: i32| {
        let mut n = c.packed.clone();
        n.classifier.bias[0] = bias;
        design::build(&n, &c.schedule, Provenance::default())
            .unwrap()
            .capacity
            .logit_w
    };
    let in_bits = c.packed.classifier.in_bits as usize;
    assert_eq!(logit(0), design::logit_width(&c.packed));
    assert!(logit(0) > in_bits + 8);
    assert_eq!(logit(1 << 26), 28);
    assert_eq!(logit(-(1 << 30)), 32);
}

#[test]
fn the_memory_budget_counts_what_the_model_stores_against_the_block_rams() {
    use ccc::fit::{Family, estimate, memory_budget};
    let model = common::repo().join("benches/data/fmnist-shift-cc.safetensors");
    let c = ccc::compile::compile(
        &model,
        &ccc::compile::CompileOptions {
            rows: 32,
            cols: 32,
            ..Default::default()
        },
    )
    .unwrap();
    let d = c.design.as_ref().unwrap();
    for fam in [Family::Ice40, Family::Ecp5] {
        let b = memory_budget(&c.packed, d, fam);
        // The block RAMs are the fit model's.
        assert_eq!(b.bram, estimate(&d.capacity, fam).total.bram, "{fam:?}");
        assert_eq!(
            b.needed_bits,
            b.memories.iter().map(|m| m.needed_bits).sum::<u64>()
        );
        let tap = b
            .memories
            .iter()
            .find(|m| m.memory == "tap buffers")
            .unwrap();
        // The stem's 9 taps over 28x28 and the next layer's 32 over 14x14, 8 bits each:
        // the largest pair a layer reads and writes at once.
        assert_eq!(tap.needed_bits, (9 * 784 + 32 * 196) * 8);
        let w = b
            .memories
            .iter()
            .find(|m| m.memory == "weight memory")
            .unwrap();
        let cells: u64 = c
            .packed
            .layers
            .iter()
            .map(|l| {
                let sel = if l.alpha > 1 {
                    usize::BITS - (l.alpha - 1).leading_zeros()
                } else {
                    0
                };
                (l.rows() * l.groups_len()) as u64 * (8 + u64::from(sel))
            })
            .sum();
        let filters: u64 = c.packed.layers.iter().map(|l| l.rows() as u64).sum();
        let per_filter = (d.capacity.acc_w + d.capacity.word.target_w) as u64;
        assert_eq!(w.needed_bits, cells + filters * per_filter);
    }
    let md = std::fs::read_to_string(
        compile(&tiny(), &["--rows", "2", "--cols", "2"])
            .path()
            .join("out/report.md"),
    )
    .unwrap();
    assert!(
        md.contains("### Memory: needed bits against block RAM (ecp5"),
        "{md}"
    );
}
