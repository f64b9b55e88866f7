//! The accelerator as a component (docs/ACCELERATOR.md, "Ports and protocol"): framing
//! with `s_axis_tlast` (short, long and back-to-back images with random `tvalid` gaps,
//! sticky error flags and their clear), random back-pressure on both streams at once,
//! results that do not depend on what the memories hold at power-on, a reset in the
//! middle of an image, and `s_axis_tready` low during reset. Small arrays, Icarus and
//! Verilator, bit-exact against the reference of what each packet must compute.

mod common;

use ccc::compile::CompileOptions;
use ccc::rtl::design::HwDesign;
use ccc::rtl::sim::{PowerOn, ResetPulse, RunOptions, Simulator, StreamOptions};
use ccc::testgen::{self, GenSpec};
use ccc::verify::SimCheck;

/// `tail`: a last layer too short to hide the next image's stream (the input then keeps
/// buffers of its own rather than sharing the tap buffers' write ports).
fn spec(seed: u64, tail: bool) -> GenSpec {
    if tail {
        common::rtl_tail_spec(seed)
    } else {
        common::rtl_spec(seed)
    }
}

struct Built {
    b: common::Built,
    spec: GenSpec,
}

impl Built {
    fn design(&self) -> &HwDesign {
        self.b.design()
    }

    fn images(&self, n: usize) -> Vec<Vec<u8>> {
        let s = &self.spec;
        (0..n)
            .map(|k| testgen::random_image(s.channels, s.height, s.width, 70 + k as u64))
            .collect()
    }

    fn run(&self, imgs: &[Vec<u8>], sim: Simulator, o: &RunOptions) -> SimCheck {
        let r = self.b.check(imgs, sim, o);
        assert!(
            r.run.ready_in_reset.is_empty(),
            "{sim:?}: s_axis_tready high during reset on cycles {:?}",
            r.run.ready_in_reset
        );
        r
    }
}

fn build(seed: u64, tail: bool, rows: usize, cols: usize) -> Built {
    build_spec(spec(seed, tail), rows, cols)
}

fn build_spec(s: GenSpec, rows: usize, cols: usize) -> Built {
    let o = CompileOptions {
        rows,
        cols,
        alpha: Some(vec![1, 3, 3]),
        ..CompileOptions::default()
    };
    Built {
        b: common::build_rtl(&s, &o),
        spec: s,
    }
}

fn beats(b: &Built) -> usize {
    b.design().image_bytes()
}

#[test]
fn short_long_and_back_to_back_images_resynchronize_with_random_gaps() {
    if !common::need(
        "iverilog",
        "short_long_and_back_to_back_images_resynchronize",
    ) {
        return;
    }
    for tail in [false, true] {
        let b = build(11, tail, 4, 4);
        let n = beats(&b);
        let imgs = b.images(6);
        // full, short by a third, full, long by 7 beats, one beat only, full
        let lens = vec![n, n - n / 3, n, n + 7, 1, n];
        for seed in [1, 2] {
            let o = RunOptions {
                stream: StreamOptions {
                    lens: Some(lens.clone()),
                    seed,
                    in_gap: 35,
                    ..StreamOptions::default()
                },
                ..RunOptions::default()
            };
            let r = b.run(&imgs, Simulator::Icarus, &o);
            // Every packet gave one result: the short ones completed with zeros, the long
            // one cut, the following images untouched (checked against the reference).
            assert_eq!(r.run.done.len(), imgs.len());
            // The flags: early end first, then long; nothing clears them.
            let flags: Vec<u8> = r.run.errors.iter().map(|e| e.1).collect();
            assert_eq!(flags, vec![1, 3], "in_err changes {:?}", r.run.errors);
        }
    }
}

#[test]
fn error_flags_clear_on_request() {
    if !common::need("iverilog", "error_flags_clear_on_request") {
        return;
    }
    let b = build(12, false, 4, 4);
    let n = beats(&b);
    let imgs = b.images(4);
    let lens = vec![n + 3, n, n - 5, n];
    let mut o = RunOptions {
        stream: StreamOptions {
            lens: Some(lens),
            ..StreamOptions::default()
        },
        ..RunOptions::default()
    };
    let r = b.run(&imgs, Simulator::Icarus, &o);
    assert_eq!(
        r.run.errors.iter().map(|e| e.1).collect::<Vec<_>>(),
        vec![2, 3],
        "{:?}",
        r.run.errors
    );
    // Clear between the long and the short packet: only the short one's flag comes back.
    let between = (r.run.errors[0].0 + r.run.errors[1].0) / 2;
    o.stream.err_clear_at = Some(between);
    let r = b.run(&imgs, Simulator::Icarus, &o);
    let flags: Vec<u8> = r.run.errors.iter().map(|e| e.1).collect();
    assert_eq!(flags, vec![2, 0, 1], "{:?}", r.run.errors);
    assert!(r.run.errors[1].0 >= between && r.run.errors[1].0 <= between + 2);
}

#[test]
fn random_backpressure_on_both_streams_never_corrupts_a_result() {
    if !common::need("iverilog", "random_backpressure_on_both_streams") {
        return;
    }
    for (tail, rows, cols) in [(false, 4, 4), (true, 3, 5)] {
        let b = build(13, tail, rows, cols);
        let imgs = b.images(5);
        for (seed, in_gap, out_stall) in [(3, 40, 60), (4, 10, 90), (5, 70, 20)] {
            let o = RunOptions {
                stream: StreamOptions {
                    seed,
                    in_gap,
                    out_stall,
                    ..StreamOptions::default()
                },
                ..RunOptions::default()
            };
            b.run(&imgs, Simulator::Icarus, &o);
        }
    }
}

#[test]
fn the_next_image_computes_while_the_output_is_stalled() {
    if !common::need(
        "iverilog",
        "the_next_image_computes_while_the_output_is_stalled",
    ) {
        return;
    }
    let b = build(14, false, 4, 4);
    let imgs = b.images(4);
    let sch = &b.b.c.schedule;
    let pred = sch.predict(&b.b.c.packed, imgs.len());
    // The output held off until well after all four images would have finished.
    let hold = pred.done[3] + 4 * sch.interval;
    let o = RunOptions {
        stream: StreamOptions {
            out_hold: Some(hold),
            ..StreamOptions::default()
        },
        ..RunOptions::default()
    };
    let r = b.run(&imgs, Simulator::Icarus, &o);
    // When the last layer's first tile starts running (phase 1; phase 2 is its wait for
    // the pool).
    let last_first = sch.layers.last().unwrap().first_tile;
    let running = |e: &(u64, u8, usize)| e.2 == last_first && e.1 == 1;
    let starts: Vec<u64> = r
        .run
        .events
        .windows(2)
        .filter(|w| running(&w[1]) && !running(&w[0]))
        .map(|w| w[1].0)
        .collect();
    assert_eq!(starts.len(), 4, "{starts:?}");
    // The output buffer holds one image's result (classifier and output skid stage) and
    // the pool one image's sums: image 1 still runs its last layer while image 0's
    // logits wait; image 2's last layer waits for the pool (docs/ACCELERATOR.md).
    assert!(
        starts[1] < hold,
        "image 1's last layer waited for the output: {starts:?}"
    );
    assert!(
        starts[2] >= hold,
        "image 2 ran past the output buffer: {starts:?} (hold {hold})"
    );
    // Nothing was lost or reordered.
    assert!(r.run.done.values().all(|&d| d >= hold));
}

#[test]
fn results_do_not_depend_on_power_on_contents() {
    let b = build(15, false, 4, 4);
    let own = build(16, true, 4, 4);
    // Both places the first layer's input can live: the tap buffers, its own buffers.
    assert!(b.b.c.schedule.shared_input && !own.b.c.schedule.shared_input);
    // An MLP head on 4 MAC lanes: its hidden layers' memory and the lanes' registers
    // start random too.
    let hs = GenSpec {
        head: vec![9, 5],
        ..spec(17, false)
    };
    let o = CompileOptions {
        rows: 4,
        cols: 4,
        alpha: Some(vec![1, 3, 3]),
        head_lanes: Some(4),
        ..CompileOptions::default()
    };
    let head = Built {
        b: common::build_rtl(&hs, &o),
        spec: hs,
    };
    assert_eq!(head.b.c.schedule.head_lanes, 4);
    if common::need(
        "verilator",
        "results_do_not_depend_on_power_on_contents (Verilator)",
    ) {
        for bb in [&b, &own, &head] {
            let imgs = bb.images(3);
            for seed in [1, 7, 12345] {
                let o = RunOptions {
                    power_on: PowerOn::Random(seed),
                    ..RunOptions::default()
                };
                let r = bb.run(&imgs, Simulator::Verilator, &o);
                // The clear after reset is in the cycle model.
                assert!(r.cycles_match(), "{:?} vs {:?}", r.measured, r.predicted);
            }
        }
    }
    if common::need(
        "iverilog",
        "results_do_not_depend_on_power_on_contents (Icarus)",
    ) {
        for bb in [&b, &own, &head] {
            let imgs = bb.images(3);
            let o = RunOptions {
                power_on: PowerOn::Random(1),
                ..RunOptions::default()
            };
            let r = bb.run(&imgs, Simulator::Icarus, &o);
            assert!(r.cycles_match());
            // Without the define the RAMs start at X, which is stricter still.
            let r = bb.run(&imgs, Simulator::Icarus, &RunOptions::default());
            assert!(r.cycles_match());
        }
    }
}

#[test]
fn reset_in_the_middle_of_an_image_recovers() {
    let b = build(17, false, 4, 4);
    let imgs = b.images(5);
    let sch = &b.b.c.schedule;
    // Reset while image 1 streams in (and image 0 computes), then stream from packet 2.
    let at = sch.clear_cycles + sch.input_cycles + sch.input_cycles / 2;
    for sim in [Simulator::Icarus, Simulator::Verilator] {
        let tool = if sim == Simulator::Icarus {
            "iverilog"
        } else {
            "verilator"
        };
        if !common::need(tool, "reset_in_the_middle_of_an_image_recovers") {
            continue;
        }
        let o = RunOptions {
            stream: StreamOptions {
                reset: Some(ResetPulse {
                    at,
                    len: 3,
                    resume: 2,
                }),
                seed: 21,
                in_gap: 20,
                ..StreamOptions::default()
            },
            power_on: if sim == Simulator::Verilator {
                PowerOn::Random(5)
            } else {
                PowerOn::Default
            },
            ..RunOptions::default()
        };
        let r = b.run(&imgs, sim, &o);
        assert_eq!(r.run.resets.len(), 1, "{sim:?}: no reset pulse seen");
        assert_eq!(r.images, 3);
    }
}
