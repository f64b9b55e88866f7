//! The emitted accelerator, simulated with Icarus and Verilator on generated models for
//! several array shapes and α (vertical tiling forced by small C, the dense baseline),
//! must match the integer reference on every activation, logit and class, and take
//! exactly the predicted cycles. Also: lint-clean, latch-free synthesis, and a
//! corrupted weight image is caught and located.

mod common;

use std::path::Path;

use ccc::compile::CompileOptions;
use ccc::rtl::sim::{self, RunOptions, Simulator, WeightLoad};
use ccc::schedule::Mode;
use ccc::testgen::{self, GenSpec};
use ccc::verify::{self, Mismatch};

fn spec(seed: u64) -> GenSpec {
    common::rtl_spec(seed)
}

use common::Built;

fn build(spec: &GenSpec, rows: usize, cols: usize, alpha: &[usize], dense: bool) -> Built {
    common::build_rtl(
        spec,
        &CompileOptions {
            rows,
            cols,
            alpha: Some(alpha.to_vec()),
            dense,
            ..CompileOptions::default()
        },
    )
}

fn images(spec: &GenSpec, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|k| testgen::random_image(spec.channels, spec.height, spec.width, 40 + k as u64))
        .collect()
}

fn check(b: &Built, imgs: &[Vec<u8>], s: Simulator) {
    let sch = &b.c.schedule;
    let r = b.check(imgs, s, &RunOptions::default());
    // Every image finishes on the predicted cycle, every layer span is as predicted.
    assert!(
        r.cycles_match(),
        "{s:?}: measured {:?}, predicted {:?}",
        r.measured,
        r.predicted
    );
    assert_eq!(r.measured.latency(), Some(sch.latency), "{s:?}: latency");
    // Images overlap: the next one streams in during the later layers and the classifier
    // runs beside the next image, so images finish closer together than one latency.
    if let Some(iv) = r.measured.last_interval() {
        assert!(iv < sch.latency, "{s:?}: no overlap ({iv} cycles apart)");
    }
    // The cycle-loss accounting is exact, per layer and in total.
    assert!(sch.breakdown.adds_up(sch.array), "{:?}", sch.breakdown);
    for l in &sch.layers {
        assert!(l.breakdown.adds_up(sch.array), "{:?}", l.breakdown);
    }
    // ... and on the measured run: every cell-cycle the RTL spent is accounted for.
    assert!(
        r.exact(sch),
        "{s:?}: unaccounted cell-cycles {:?}",
        r.unaccounted(sch)
    );
}

/// The modes the tiles of `b` use.
fn modes(b: &Built) -> Vec<Mode> {
    let mut m: Vec<Mode> = b.c.schedule.tiles.iter().map(|t| t.mode).collect();
    m.dedup();
    m
}

#[test]
fn icarus_bit_exact_over_shapes_and_alphas() {
    if !common::need("iverilog", "icarus_bit_exact_over_shapes_and_alphas") {
        return;
    }
    let s = spec(1);
    let imgs = images(&s, 3);
    let mut seen = Vec::new();
    let mut inputs = Vec::new();
    // (rows, cols, alphas): square, non-square, α = 1/3/8 mixes, vertical tiling (C < G).
    for (r, c, a) in [
        (4, 4, vec![1, 3, 8]),
        (8, 4, vec![1, 8, 8]),
        (3, 5, vec![1, 2, 3]),
        (4, 2, vec![1, 3, 3]),
        (2, 1, vec![1, 1, 1]),
    ] {
        let b = build(&s, r, c, &a, false);
        assert!(b.c.packed.layers.iter().all(|l| l.alpha <= 8));
        check(&b, &imgs, Simulator::Icarus);
        seen.extend(modes(&b));
        inputs.push(b.c.schedule.shared_input);
    }
    // A one-channel stem whose groups fit half the columns runs even and odd pixels on the
    // two segments.
    let narrow = GenSpec {
        channels: 1,
        ..spec(1)
    };
    let b = build(&narrow, 6, 10, &[3, 8, 4], false);
    check(&b, &images(&narrow, 3), Simulator::Icarus);
    seen.extend(modes(&b));
    inputs.push(b.c.schedule.shared_input);
    // A last layer too short to hide the next image's stream: the input keeps buffers of
    // its own.
    let tail = common::rtl_tail_spec(1);
    let b = build(&tail, 4, 4, &[1, 3, 3], false);
    check(&b, &images(&tail, 3), Simulator::Icarus);
    inputs.push(b.c.schedule.shared_input);
    // The first layer's input in the tap buffers (streaming in during the last layer)
    // and in input buffers of its own (streaming in after the first layer).
    assert!(
        inputs.contains(&true) && inputs.contains(&false),
        "{inputs:?}"
    );
    // Every way of using the columns ran: one segment (with vertical tiling at C < G),
    // two row blocks side by side, even and odd pixels side by side.
    for m in [Mode::Single, Mode::Rows, Mode::Pixels] {
        assert!(seen.contains(&m), "no configuration ran {m:?} tiles");
    }
}

/// A first layer whose groups fit one of the two column segments, but whose rows write
/// the two columns in a pattern that collides for every segment delay the controller can
/// hold: it must fall back to one segment (before, the scheduler searched forever for a
/// gap that could never separate writes of one tile), and stay exact.
#[test]
fn segment_write_collisions_fall_back_to_single_tiles() {
    if !common::need(
        "iverilog",
        "segment_write_collisions_fall_back_to_single_tiles",
    ) {
        return;
    }
    let shift = |out, stride| testgen::BlockSpec::shift(out, stride, None);
    let s = GenSpec {
        name: "collide".into(),
        channels: 2,
        height: 10,
        width: 11,
        classes: 4,
        stem: None,
        blocks: vec![shift(8, 2), shift(20, 1), shift(14, 1)],
        density: 0.8018364056568165,
        batchnorm: false,
        relu6: true,
        gamma: None,
        dtype: testgen::GenDtype::F32,
        seed: 6977226794082417533,
        head: vec![5, 3],
    };
    let b = common::build_rtl(
        &s,
        &CompileOptions {
            rows: 9,
            cols: 2,
            alpha: Some(vec![9, 9, 4]),
            gamma: Some(0.49448343302950226),
            strategy: ccc::pack::group::Strategy::Auto,
            ..CompileOptions::default()
        },
    );
    let sch = &b.c.schedule;
    // One group in layer 0 fits a one-column segment, but the tile runs Single.
    assert_eq!(b.c.packed.layers[0].groups_len(), 1);
    assert!(
        sch.tiles
            .iter()
            .filter(|t| t.layer == 0)
            .all(|t| t.mode == Mode::Single),
        "{:?}",
        modes(&b)
    );
    check(&b, &images(&s, 3), Simulator::Icarus);
}

#[test]
fn dense_baseline_simulates_bit_exact() {
    if !common::need("iverilog", "dense_baseline_simulates_bit_exact") {
        return;
    }
    let s = spec(2);
    let b = build(&s, 4, 4, &[1], true);
    check(&b, &images(&s, 2), Simulator::Icarus);
}

#[test]
fn verilator_bit_exact_8x8_and_16x16() {
    if !common::need("verilator", "verilator_bit_exact_8x8_and_16x16") {
        return;
    }
    let s = spec(3);
    let imgs = images(&s, 3);
    for (r, c) in [(8, 8), (16, 16)] {
        let b = build(&s, r, c, &[1, 8, 4], false);
        check(&b, &imgs, Simulator::Verilator);
    }
}

#[test]
fn emitted_rtl_is_lint_clean() {
    if !common::need("verilator", "emitted_rtl_is_lint_clean") {
        return;
    }
    let s = spec(4);
    for (r, c, a) in [
        (4, 4, vec![1, 3, 8]),
        (1, 1, vec![1]),
        (5, 3, vec![1, 5, 2]),
    ] {
        let b = build(&s, r, c, &a, false);
        let (prog, args) = sim::lint_command();
        let o = std::process::Command::new(prog)
            .current_dir(b.out.join("rtl"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{r}x{c}: {}", common::stderr(&o));
    }
}

#[test]
fn yosys_synthesizes_without_latches_and_infers_block_ram() {
    if !common::need(
        "yosys",
        "yosys_synthesizes_without_latches_and_infers_block_ram",
    ) {
        return;
    }
    let s = spec(5);
    let b = build(&s, 2, 3, &[1, 3, 2], false);
    let rtl = b.out.join("rtl");
    let reads: String = ccc::rtl::emit::sim_files()
        .iter()
        .map(|f| format!("read_verilog -DCCC_ICE40 {f}; "))
        .collect();
    // Latches show up as $dlatch right after `proc`; then the iCE40 flow must map the
    // tap-buffer, weight and partial-sum memories to block RAM.
    let script = format!(
        "{reads} hierarchy -top ccc_top; proc; select -assert-none t:$dlatch; \
         synth_ice40 -top ccc_top; select -assert-min 1 t:SB_RAM40_4K; stat"
    );
    let o = std::process::Command::new("yosys")
        .current_dir(&rtl)
        .args(["-q", "-p", &script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        common::stdout(&o),
        common::stderr(&o)
    );
}

#[test]
fn a_corrupted_weight_is_located() {
    if !common::need("iverilog", "a_corrupted_weight_is_located") {
        return;
    }
    let s = spec(6);
    let b = build(&s, 4, 4, &[1, 3, 3], false);
    // Flip one weight bit of the first tile's top row (the last word of the tile).
    let p: &Path = &b.out.join("rtl/weights_b00.hex");
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let sel_w = b.design().capacity.sel_w;
    let digit_bit = sel_w + 3; // a bit of column 0's weight
    let line = &mut lines[3];
    let len = line.len();
    let pos = len - 1 - digit_bit / 4;
    let d = line.as_bytes()[pos] as char;
    let v = d.to_digit(16).unwrap() ^ (1 << (digit_bit % 4));
    line.replace_range(pos..pos + 1, &format!("{v:x}"));
    std::fs::write(p, lines.join("\n") + "\n").unwrap();
    let imgs = images(&s, 1);
    let r = verify::check(
        &b.out,
        &b.c.packed,
        &b.c.schedule,
        b.design(),
        &imgs,
        Simulator::Icarus,
        &RunOptions::default(),
    )
    .unwrap();
    match r.mismatches.first() {
        Some(Mismatch::Activation { layer, channel, .. }) => {
            assert_eq!(*layer, 0);
            assert_eq!(*channel, 0, "row 0 of tile 0 holds physical filter 0");
        }
        other => panic!("expected an activation mismatch in layer 0, got {other:?}"),
    }
}

#[test]
fn weights_loaded_through_the_load_port() {
    if !common::need("iverilog", "weights_loaded_through_the_load_port") {
        return;
    }
    let s = spec(7);
    let b = build(&s, 4, 3, &[1, 3, 2], false);
    let rtl = b.out.join("rtl");
    let tb = b.out.join("tb");
    // Move the weights out of the memory image: the design starts with all-zero weights
    // and gets the real ones only through wl_en/wl_addr/wl_data.
    let words = std::fs::read_to_string(rtl.join("weights_b00.hex")).unwrap();
    let n_words = words.lines().count();
    std::fs::write(tb.join("wload.hex"), &words).unwrap();
    let zero = words
        .lines()
        .map(|l| "0".repeat(l.len()) + "\n")
        .collect::<String>();
    std::fs::write(rtl.join("weights_b00.hex"), zero).unwrap();
    let imgs = images(&s, 2);
    let run_with = |load: bool| {
        let o = RunOptions {
            weight_load: load.then(|| WeightLoad {
                file: tb.join("wload.hex"),
                words: n_words,
            }),
            ..RunOptions::default()
        };
        verify::check(
            &b.out,
            &b.c.packed,
            &b.c.schedule,
            b.design(),
            &imgs,
            Simulator::Icarus,
            &o,
        )
        .unwrap()
    };
    assert!(run_with(true).passed());
    // Without the load the zero weights must show up as mismatches.
    assert!(!run_with(false).mismatches.is_empty());
}

#[test]
fn weight_memory_in_banks() {
    if !common::need("iverilog", "weight_memory_in_banks")
        || !common::need("verilator", "weight_memory_in_banks")
    {
        return;
    }
    let s = spec(9);
    // 8-word banks: tiles of 3 rows straddle them, the last bank is short.
    let b = build(&s, 3, 4, &[1, 3, 2], false).rebank(8);
    let cap = &b.design().capacity;
    assert!(cap.wm_banks() > 2, "{} banks", cap.wm_banks());
    let rtl = b.out.join("rtl");
    let images_per_bank: Vec<usize> = (0..cap.wm_banks())
        .map(|k| {
            let f = rtl.join(format!("weights_b{k:02}.hex"));
            std::fs::read_to_string(&f).unwrap().lines().count()
        })
        .collect();
    assert_eq!(images_per_bank.iter().sum::<usize>(), cap.tiles * cap.rows);
    assert!(
        images_per_bank[..images_per_bank.len() - 1]
            .iter()
            .all(|&n| n == 8)
    );
    let imgs = images(&s, 3);
    check(&b, &imgs, Simulator::Icarus);
    check(&b, &imgs, Simulator::Verilator);
    // The load port writes across the banks: start from zero weights, load the image.
    let tb = b.out.join("tb");
    std::fs::create_dir_all(&tb).unwrap();
    let mut all = String::new();
    for k in 0..cap.wm_banks() {
        let f = rtl.join(format!("weights_b{k:02}.hex"));
        let words = std::fs::read_to_string(&f).unwrap();
        all.push_str(&words);
        let zero: String = words.lines().map(|l| "0".repeat(l.len()) + "\n").collect();
        std::fs::write(&f, zero).unwrap();
    }
    std::fs::write(tb.join("wload.hex"), &all).unwrap();
    let o = RunOptions {
        weight_load: Some(WeightLoad {
            file: tb.join("wload.hex"),
            words: cap.tiles * cap.rows,
        }),
        ..RunOptions::default()
    };
    let r = b.check(&imgs, Simulator::Icarus, &o);
    assert!(r.cycles_match(), "{:?} vs {:?}", r.measured, r.predicted);
}

#[test]
fn simulate_command_end_to_end_with_waveforms() {
    if !common::need("iverilog", "simulate_command_end_to_end_with_waveforms")
        || !common::need("verilator", "simulate_command_end_to_end_with_waveforms")
    {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    common::write_model(d.path(), "m.safetensors", &spec(8));
    // Relative paths, as a user in the model's directory types them.
    let args = [
        "compile",
        "m.safetensors",
        "--rows",
        "3",
        "--cols",
        "3",
        "-o",
        "out",
    ];
    let o = common::ccc_in(d.path(), &args);
    assert!(o.status.success(), "{}", common::stderr(&o));
    for sim in ["icarus", "verilator"] {
        let vcd = format!("{sim}.vcd");
        let args = [
            "simulate",
            "out",
            "--images",
            "2",
            "--simulator",
            sim,
            "--vcd",
            &vcd,
        ];
        let o = common::ccc_in(d.path(), &args);
        let text = common::stdout(&o);
        assert!(o.status.success(), "{sim}: {text}{}", common::stderr(&o));
        assert!(text.contains("0 mismatching"), "{text}");
        assert!(text.contains("bit-exact"), "{text}");
        let len = std::fs::metadata(d.path().join(&vcd)).unwrap().len();
        assert!(len > 1000, "{sim}: no waveform");
    }
    // A stale output (model changed after compile) is refused.
    common::write_model(d.path(), "m.safetensors", &spec(9));
    let o = common::ccc_in(d.path(), &["simulate", "out", "--simulator", "icarus"]);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("stale"),
        "{}",
        common::stderr(&o)
    );
}

/// `ccc gen-model` (with `gen_args` and `spec_args`) then `ccc compile` on a rows x cols array
/// in `dir` with `compile_args`; returns the output directory's name (relative to `dir`).
fn generated_design(
    dir: &std::path::Path,
    k: usize,
    gen_args: &[&str],
    spec_args: &str,
    rows: &str,
    cols: &str,
    compile_args: &[&str],
) -> String {
    let model = format!("m{k}.safetensors");
    let out = format!("o{k}");
    let mut args = vec!["gen-model", &model];
    args.extend(gen_args);
    args.extend(spec_args.split_whitespace());
    let o = common::ccc_in(dir, &args);
    assert!(o.status.success(), "{spec_args}: {}", common::stderr(&o));
    let mut args = vec![
        "compile", &model, "--rows", rows, "--cols", cols, "-o", &out,
    ];
    args.extend(compile_args);
    let o = common::ccc_in(dir, &args);
    assert!(o.status.success(), "{spec_args}: {}", common::stderr(&o));
    out
}

/// `ccc simulate OUT --images N --simulator icarus` in `dir`; the simulator's report,
/// asserted bit-exact (and, with `exact_cycles`, with every cycle count as predicted).
fn simulate_bit_exact(
    dir: &std::path::Path,
    out: &str,
    images: &str,
    what: &str,
    exact_cycles: bool,
) {
    let o = common::ccc_in(
        dir,
        &["simulate", out, "--images", images, "--simulator", "icarus"],
    );
    let text = common::stdout(&o);
    assert!(
        o.status.success()
            && text.contains("bit-exact")
            && !(exact_cycles && text.contains("differ")),
        "{what}: {text}{}",
        common::stderr(&o)
    );
}

/// Tiles shorter than the weight load's lead (a layer of one or two output pixels: 8 or
/// 16 cycles against LOAD_AT = R + C + 10): the load for the next tile begins after the
/// short tile has ended. The controller fetched the tile after next then (the next
/// image's first tile ran with its second tile's weights: every image after the first
/// differed, or on 4x2 already the first); it now keeps the tile to fetch from the start
/// of the one that began the count.
#[test]
fn tiles_shorter_than_the_load_lead_load_the_right_weights() {
    if !common::need(
        "iverilog",
        "tiles_shorter_than_the_load_lead_load_the_right_weights",
    ) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // 8x8 → 4x4 → 2x2 → 1x1: the last layer has one pixel.
    let spec_args = "--input 1,8,8 --stem 4,3,2,1 --blocks 8:2:4,8:2:4";
    for (k, (rows, cols)) in [("4", "4"), ("4", "2")].into_iter().enumerate() {
        let out = generated_design(d.path(), k, &["--seed", "4"], spec_args, rows, cols, &[]);
        simulate_bit_exact(d.path(), &out, "3", &format!("{rows}x{cols}"), false);
    }
}

/// The head on the array (`--head-on-array`): the pool folded into the first linear
/// layer, hidden layers as 1-pixel layers, the classifier's accumulators the logits.
/// Bit-exact with exact cycles (latency, interval, every layer span) on generated models:
/// 1x1, 2x2 and 4x4 last maps, masked MLP heads and a classifier alone, non-square
/// arrays, a head combined at α 2.
#[test]
fn head_on_the_array_simulates_bit_exact() {
    if !common::need("iverilog", "head_on_the_array_simulates_bit_exact") {
        return;
    }
    let cases = [
        (
            "--input 1,8,8 --stem 4,3,2,1 --blocks 8:2:4,8:2:4 --head 5",
            "4",
            "4",
            "1",
        ),
        (
            "--input 1,8,8 --stem 4,3,1,1 --blocks 8:2:4,8:2:4 --head 6,3",
            "3",
            "2",
            "1",
        ),
        (
            "--input 1,8,8 --stem 4,3,2,1 --blocks 8:2:4,12:1:4",
            "4",
            "4",
            "2",
        ),
        // A 4x4 last map over three column blocks into a 20-unit hidden layer over three
        // row blocks, on a tall array.
        (
            "--input 1,8,8 --stem 8,3,1,1 --blocks 16:2:4,12:1:4 --head 20",
            "8",
            "4",
            "1",
        ),
    ];
    let d = tempfile::tempdir().unwrap();
    for (k, (spec_args, rows, cols, alpha)) in cases.iter().enumerate() {
        let head = format!("--head-on-array={alpha}");
        let gen_args = ["--seed", "4", "--classes", "6"];
        let out = generated_design(d.path(), k, &gen_args, spec_args, rows, cols, &[&head]);
        simulate_bit_exact(
            d.path(),
            &out,
            "3",
            &format!("{spec_args} on {rows}x{cols}"),
            true,
        );
    }
}

#[test]
fn varied_models_simulate_bit_exact() {
    if !common::need("iverilog", "varied_models_simulate_bit_exact") {
        return;
    }
    // (gen-model arguments, rows, cols): α up to 16, no stem with 3 input channels on a
    // 1x1 array, an unpadded and a 1x1 stem, ReLU, conv biases instead of batchnorm, and
    // compact tap buffers packing 2 and 4 pixels per word behind stride-2 and stride-4
    // layers on odd-sized maps, a single pooled channel, and a 5x5 stem.
    let cases = [
        (
            "--input 2,11,9 --stem 4,3,1,1 --blocks 8:2:2,8:4:4,6:1:8 --density 0.6",
            "3",
            "2",
        ),
        (
            "--input 1,5,5 --stem 3,3,2,1 --blocks 7:1:16,5:2:3 --density 0.5",
            "2",
            "3",
        ),
        (
            "--input 3,4,6 --stem none --blocks 9:1:4,6:1:9 --density 0.3",
            "1",
            "1",
        ),
        (
            "--input 2,6,5 --stem 4,3,1,0 --blocks 10:2:5 --density 0.7 --relu",
            "5",
            "2",
        ),
        (
            "--input 2,5,5 --stem 5,1,1,0 --blocks 8:1:6 --density 0.6 --no-batchnorm",
            "6",
            "6",
        ),
        // One channel into the pool: the classifier's logits finish on consecutive
        // cycles, so its argmax must forward the best it has just updated (without the
        // forward, this model's classes differ at seed 3).
        (
            "--input 2,4,4 --stem 3,3,1,1 --blocks 5:1:2,1:1:5 --density 0.6",
            "2",
            "2",
        ),
        // A 5x5 stem padded by 2: tap offsets of -2..2, 3-bit offset fields (the
        // row units' targets sign-extend shifts of one from them).
        (
            "--input 1,7,6 --stem 4,5,1,2 --blocks 8:1:4,6:2:4 --density 0.5",
            "3",
            "4",
        ),
    ];
    let d = tempfile::tempdir().unwrap();
    for (k, (spec_args, rows, cols)) in cases.iter().enumerate() {
        let gen_args = ["--seed", "3", "--classes", "4"];
        let out = generated_design(d.path(), k, &gen_args, spec_args, rows, cols, &[]);
        simulate_bit_exact(d.path(), &out, "2", spec_args, false);
    }
}

/// KxK convs after the first layer: 3x3 (padded, strided, column-combined), 5x5 and an
/// even 2x2, on odd map sizes and non-square arrays. Each channel they read is written into
/// every tap that reads it by a row of its own (the packer's copies), in Icarus and in
/// Verilator, bit-exact, on the predicted cycles, the loss breakdown adding up.
#[test]
fn kxk_convs_at_depth_simulate_bit_exact() {
    if !common::need("iverilog", "kxk_convs_at_depth_simulate_bit_exact")
        || !common::need("verilator", "kxk_convs_at_depth_simulate_bit_exact")
    {
        return;
    }
    let cases = [
        (
            "--input 1,9,7 --stem 4,3,1,1 --blocks 6:1:k3:p1,8:2:2:k3:p1,5:1 --density 0.5",
            "3",
            "4",
            "icarus",
        ),
        (
            "--input 2,7,7 --stem 3,3,1,1 --blocks 5:1:k5:p2,6:2:k2,4:1:k3:p1 --density 0.6",
            "4",
            "3",
            "verilator",
        ),
        (
            "--input 1,6,5 --stem none --blocks 4:1:k3:p1,6:1:k3 --density 0.7",
            "2",
            "5",
            "verilator",
        ),
    ];
    let d = tempfile::tempdir().unwrap();
    for (k, (spec_args, rows, cols, sim)) in cases.iter().enumerate() {
        let gen_args = ["--seed", "5", "--classes", "3"];
        let out = generated_design(d.path(), k, &gen_args, spec_args, rows, cols, &[]);
        let report = std::fs::read_to_string(d.path().join(&out).join("report.json")).unwrap();
        assert!(
            report.contains("\"copies\""),
            "{spec_args}: no row copies reported"
        );
        simulates_exactly(d.path(), &out, "2", sim, spec_args);
    }
}

/// `ccc simulate OUT` runs `images` images bit-exact, on the predicted cycles, with the
/// loss breakdown adding up.
fn simulates_exactly(dir: &std::path::Path, out: &str, images: &str, sim: &str, what: &str) {
    let o = common::ccc_in(
        dir,
        &["simulate", out, "--images", images, "--simulator", sim],
    );
    let text = common::stdout(&o);
    assert!(
        o.status.success()
            && text.contains("bit-exact")
            && !text.contains("cycles differ")
            && text.contains("loss breakdown: R·C"),
        "{what}: {text}{}",
        common::stderr(&o)
    );
}

/// Decomposed convs (kernel decomposition) at several depths, strided and padded, with
/// and without batchnorm, on non-square arrays, in both mappings: the basis stage's
/// signed outputs (uint8 with zero point 128, folded into the coefficient stage's bias)
/// and the expanded KxK conv, bit-exact in Icarus and Verilator on the predicted cycles.
#[test]
fn decomposed_convs_simulate_bit_exact_in_both_mappings() {
    if !common::need(
        "iverilog",
        "decomposed_convs_simulate_bit_exact_in_both_mappings",
    ) || !common::need(
        "verilator",
        "decomposed_convs_simulate_bit_exact_in_both_mappings",
    ) {
        return;
    }
    let cases = [
        (
            "--input 1,9,7 --stem 4,3,1,1 --blocks 6:1:2:k3:p1:d2,8:2:4:k3:p1:d3,5:1 --density 0.5",
            "3",
            "4",
            "icarus",
            "stages",
        ),
        (
            "--input 2,7,7 --stem none --blocks 5:1:k5:p2:d2,6:2:2:k3:p1:d4 --density 0.6 --no-batchnorm",
            "4",
            "3",
            "verilator",
            "stages",
        ),
        (
            "--input 1,9,7 --stem 4,3,1,1 --blocks 6:1:2:k3:p1:d2,8:2:4:k3:p1:d3,5:1 --density 0.5",
            "2",
            "5",
            "verilator",
            "expanded",
        ),
    ];
    let d = tempfile::tempdir().unwrap();
    for (k, (spec_args, rows, cols, sim, mapping)) in cases.iter().enumerate() {
        let gen_args = ["--seed", "11", "--classes", "3"];
        let model = format!("dec{k}.safetensors");
        let mut args = vec!["gen-model", &model];
        args.extend(gen_args);
        args.extend(spec_args.split_whitespace());
        let o = common::ccc_in(d.path(), &args);
        assert!(o.status.success(), "{spec_args}: {}", common::stderr(&o));
        let out = format!("dec{k}-out");
        let o = common::ccc_in(
            d.path(),
            &[
                "compile",
                &model,
                "--rows",
                rows,
                "--cols",
                cols,
                "--decomposed",
                mapping,
                "-o",
                &out,
            ],
        );
        assert!(o.status.success(), "{spec_args}: {}", common::stderr(&o));
        let md = std::fs::read_to_string(d.path().join(&out).join("report.md")).unwrap();
        assert!(
            md.contains(&format!("| {mapping} (this design) |")),
            "{spec_args}: the report does not compare the mappings"
        );
        simulates_exactly(
            d.path(),
            &out,
            "3",
            sim,
            &format!("{spec_args} ({mapping})"),
        );
    }
}

/// The row-write merge relies on the 8 rows of a write group never finishing on the same
/// cycle (TP >= 8). The simulation check of that premise must stop a run that breaks it:
/// widened to 16-row groups, rows r and r + 8 of the shipped model's 16x8 tiles collide.
#[test]
fn write_group_premise_is_checked_in_simulation() {
    if !common::need("verilator", "write_group_premise_is_checked_in_simulation") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let model = common::repo().join("models/fmnist-shift-cc.safetensors");
    let out = d.path().join("out");
    let (model, out_s) = (model.to_str().unwrap(), out.to_str().unwrap());
    let o = common::ccc(&["compile", model, "--rows", "16", "--cols", "8", "-o", out_s]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let merge = out.join("rtl/ccc_write_merge.v");
    let text = std::fs::read_to_string(&merge).unwrap();
    let grouped = "localparam integer WG = 8;";
    assert!(
        text.contains(grouped),
        "ccc_write_merge.v no longer declares {grouped}"
    );
    std::fs::write(&merge, text.replace(grouped, "localparam integer WG = 16;")).unwrap();
    let o = common::ccc(&["simulate", out_s, "--simulator", "verilator"]);
    let all = format!("{}{}", common::stdout(&o), common::stderr(&o));
    assert!(
        !o.status.success(),
        "a colliding write group went unnoticed: {all}"
    );
    assert!(all.contains("two rows writing in one cycle"), "{all}");
}

/// An MLP head (hidden linear layers between the pool and the classifier, ReLU6 or ReLU
/// between them): the head unit runs its layers one after another, the first reading the
/// pool's wide sums, the others the requantized uint8 outputs of the one before, in Icarus
/// and Verilator, bit-exact on the predicted cycles. The cases cover a head shorter than
/// the layers and one longer (the layers then wait for the pool; enough images run to
/// reach that steady state, and the loss breakdown adds up on it), one hidden input and
/// one hidden output, and a non-square array.
#[test]
fn mlp_heads_simulate_bit_exact() {
    if !common::need("iverilog", "mlp_heads_simulate_bit_exact")
        || !common::need("verilator", "mlp_heads_simulate_bit_exact")
    {
        return;
    }
    // (model, rows, cols, images, simulator, compile options, head lanes expected)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        usize,
    );
    let cases: [Case; 7] = [
        (
            "--input 1,8,8 --blocks 12:2:4 --head 9",
            "4",
            "4",
            "3",
            "icarus",
            &[],
            1,
        ),
        // One lane: a head slower than the layers (the steady state takes images).
        (
            "--input 2,6,6 --head 60,50 --relu",
            "4",
            "4",
            "12",
            "verilator",
            &["--head-lanes", "1"],
            1,
        ),
        // The same head: the compiler gives it lanes until it keeps up; 8 lanes pad the
        // last block of every layer (60 = 7·8 + 4, 50 = 6·8 + 2, 4 classes).
        (
            "--input 2,6,6 --head 60,50 --relu",
            "4",
            "4",
            "4",
            "icarus",
            &[],
            2,
        ),
        (
            "--input 2,6,6 --head 60,50 --relu",
            "4",
            "4",
            "4",
            "verilator",
            &["--head-lanes", "8"],
            8,
        ),
        (
            "--input 1,5,7 --blocks 1:1:1 --head 3,1,5",
            "3",
            "2",
            "4",
            "verilator",
            &[],
            1,
        ),
        (
            "--input 1,6,5 --blocks 7:1:2 --head 33",
            "2",
            "5",
            "3",
            "icarus",
            &[],
            1,
        ),
        // As many lanes as a layer's inputs: a block's outputs leave just as the next
        // block finishes.
        (
            "--input 1,6,6 --blocks 4:1:1 --head 4",
            "3",
            "2",
            "3",
            "icarus",
            &["--head-lanes", "4"],
            4,
        ),
    ];
    let d = tempfile::tempdir().unwrap();
    for (k, (spec_args, rows, cols, images, sim, opts, lanes)) in cases.iter().enumerate() {
        let gen_args = ["--seed", "5", "--classes", "4"];
        let out = generated_design(d.path(), k, &gen_args, spec_args, rows, cols, opts);
        let sched = std::fs::read_to_string(d.path().join(&out).join("schedule.json")).unwrap();
        let sched: serde_json::Value = serde_json::from_str(&sched).unwrap();
        assert_eq!(sched["head_lanes"], *lanes, "{spec_args} {opts:?}");
        simulates_exactly(d.path(), &out, images, sim, spec_args);
    }
    // A linear classifier alone on 8 lanes, more than its classes.
    let out = generated_design(
        d.path(),
        cases.len(),
        &["--seed", "7", "--classes", "4"],
        "--input 1,6,6 --blocks 8:1:2",
        "3",
        "3",
        &["--head-lanes", "8"],
    );
    simulates_exactly(d.path(), &out, "3", "icarus", "classifier on 8 lanes");
    // Lanes the head cannot use are refused, naming why (case 4 has a one-wide layer).
    let o = common::ccc_in(
        d.path(),
        &[
            "compile",
            "m4.safetensors",
            "--head-lanes",
            "2",
            "-o",
            "refused",
        ],
    );
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("at least 2 inputs; one has 1"),
        "{}",
        common::stderr(&o)
    );
}
