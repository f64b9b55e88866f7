//! Verification of the emitted accelerator (docs/DESIGN.md §7.3): simulates OUT's RTL (or a
//! post-synthesis netlist) on images and compares every activation, logit and class with
//! the bit-exact integer reference, locating the first difference; measures cycles per
//! phase from the simulation's events next to the schedule's prediction. `ccc simulate`
//! and the RTL tests run this one loop.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::dataset::{self, Split};
use crate::lower::Dims;
use crate::pack::network::PackedNet;
use crate::rtl::design::HwDesign;
use crate::rtl::sim::{self, RunOptions, SimRun, Simulator};
use crate::schedule::{ACT_BITS, Breakdown, Prediction, Schedule};
use crate::testgen;

/// The first difference between the RTL and the reference, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Activation {
        image: usize,
        layer: usize,
        /// physical channel (row) and the model's channel it holds
        channel: usize,
        model_channel: usize,
        y: usize,
        x: usize,
        rtl: Option<u8>,
        reference: u8,
    },
    Output {
        image: usize,
        index: usize,
        rtl: Option<i64>,
        reference: i64,
    },
    Missing {
        image: usize,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Activation {
                image,
                layer,
                channel,
                model_channel,
                y,
                x,
                rtl,
                reference,
            } => write!(
                f,
                "image {image}: first difference at conv layer {layer}, channel {model_channel} (physical row {channel}), pixel (y={y}, x={x}): RTL {} vs reference {reference}",
                rtl.map_or("nothing".to_string(), |v| v.to_string())
            ),
            Mismatch::Output {
                image,
                index,
                rtl,
                reference,
            } => write!(
                f,
                "image {image}: output word {index} (logits in class order, then the class) is {} in RTL, {reference} in the reference",
                rtl.map_or("missing".to_string(), |v| v.to_string())
            ),
            Mismatch::Missing { image } => write!(f, "image {image}: the RTL produced no result"),
        }
    }
}

/// Compares a simulator run with the packed reference, image by image, layer by layer.
pub fn compare(net: &PackedNet, images: &[Vec<u8>], run: &SimRun) -> Vec<Mismatch> {
    let reference = net.reference();
    let mut found = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let want = reference.run(img, true);
        let mut first: Option<Mismatch> = None;
        for (l, map) in want.layers.iter().enumerate() {
            let got = run.acts.get(&(i, l));
            let (ch_n, h, w) = map.dim();
            // A pool layer's rows give only its result, at its last pixel, under the
            // pixel index its running sum uses (0; `TileRow::pool`).
            let pool = net.layers[l].pool;
            'outer: for ch in 0..ch_n {
                for y in if pool { h - 1..h } else { 0..h } {
                    for x in if pool { w - 1..w } else { 0..w } {
                        let pix = if pool { 0 } else { y * w + x };
                        let g = got.and_then(|m| m.get(&(ch, pix))).copied();
                        if g != Some(map[[ch, y, x]]) {
                            first = Some(Mismatch::Activation {
                                image: i,
                                layer: l,
                                channel: ch,
                                model_channel: net.layers[l].row_perm[ch],
                                y,
                                x,
                                rtl: g,
                                reference: map[[ch, y, x]],
                            });
                            break 'outer;
                        }
                    }
                }
            }
            if first.is_some() {
                break;
            }
        }
        if first.is_none() {
            let mut want_out: Vec<i64> = want.logits.iter().map(|&v| v as i64).collect();
            want_out.push(want.class as i64);
            match run.outputs.get(&i) {
                None => first = Some(Mismatch::Missing { image: i }),
                Some(got) => {
                    for (k, &wv) in want_out.iter().enumerate() {
                        if got.get(k) != Some(&wv) {
                            first = Some(Mismatch::Output {
                                image: i,
                                index: k,
                                rtl: got.get(k).copied(),
                                reference: wv,
                            });
                            break;
                        }
                    }
                }
            }
        }
        found.extend(first);
    }
    found
}

/// What a run's events and `done` pulses show of its timing.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MeasuredCycles {
    /// Per finished image: the cycle of its `done` pulse.
    pub done: Vec<u64>,
    /// Per image whose layers all ended in the run, per layer: the cycles from the end of
    /// the previous layer's last slot to the end of its own (as [`Prediction::spans`]).
    pub spans: Vec<Vec<u64>>,
}

impl MeasuredCycles {
    /// First input beat (the cycle after reset) to the first class, inclusive.
    pub fn latency(&self) -> Option<u64> {
        self.done.first().map(|d| d + 1)
    }

    /// Cycles between the last two images' results.
    pub fn last_interval(&self) -> Option<u64> {
        let n = self.done.len();
        (n >= 2).then(|| self.done[n - 1] - self.done[n - 2])
    }
}

/// Splits a run into layer spans from its tile events: a layer's span ends when the
/// controller's running tile becomes the next layer's first tile (tile 0: the next
/// image's first layer).
pub fn measure(run: &SimRun, sched: &Schedule) -> MeasuredCycles {
    let first_of: std::collections::HashMap<usize, usize> = sched
        .layers
        .iter()
        .enumerate()
        .filter(|(_, ls)| ls.tiles > 0)
        .map(|(l, ls)| (ls.first_tile, l))
        .collect();
    let nl = sched.layers.len();
    let mut m = MeasuredCycles {
        done: run.done.values().copied().collect(),
        spans: Vec::new(),
    };
    let mut prev_tile: Option<usize> = None;
    let mut span_start = 0u64;
    // The layer running now; layers without tiles take no cycles.
    let mut layer = first_of.get(&0).copied().unwrap_or(0);
    let mut current = vec![0u64; nl];
    for &(cycle, _phase, tile) in &run.events {
        if prev_tile.is_some_and(|p| p != tile)
            && let Some(&l) = first_of.get(&tile)
        {
            current[layer] = cycle - span_start;
            span_start = cycle;
            if l <= layer {
                m.spans.push(std::mem::replace(&mut current, vec![0; nl]));
            }
            layer = l;
        }
        prev_tile = Some(tile);
    }
    m
}

/// What one simulator run showed.
#[derive(Debug)]
pub struct SimCheck {
    pub simulator: Simulator,
    pub images: usize,
    /// The first difference of each image that has one.
    pub mismatches: Vec<Mismatch>,
    pub timeout: bool,
    pub measured: MeasuredCycles,
    /// The schedule's timeline of the same images.
    pub predicted: Prediction,
    pub build_secs: f64,
    pub run_secs: f64,
    /// The raw run (events, done cycles, framing errors, ready during reset).
    pub run: SimRun,
}

impl SimCheck {
    /// Bit-exact and finished.
    pub fn passed(&self) -> bool {
        !self.timeout && self.mismatches.is_empty()
    }

    /// Whether every image finished on the predicted cycle and every layer span that
    /// ended in the run took the predicted cycles.
    pub fn cycles_match(&self) -> bool {
        let m = &self.measured;
        let p = &self.predicted;
        m.done == p.done
            && !m.spans.is_empty()
            && m.spans.len() <= p.spans.len()
            && m.spans.iter().zip(&p.spans).all(|(a, b)| a == b)
    }

    /// Whether the run's last image is in the steady state the breakdown describes: its
    /// predicted layer spans and distance from the previous image are the schedule's. (A
    /// head slower than the layers holds them back only after a few images.)
    pub fn steady(&self, sched: &Schedule) -> bool {
        let p = &self.predicted;
        let n = p.done.len();
        let spans_steady = p
            .spans
            .last()
            .is_some_and(|sp| sp.iter().zip(&sched.layers).all(|(&c, l)| c == l.cycles));
        spans_steady && (n < 2 || p.done[n - 1] - p.done[n - 2] == sched.interval)
    }

    /// The loss breakdown's identity on the measured run: per layer span of the last image
    /// measured whole, and for the measured interval, the cell-cycles that
    /// `R·C · measured cycles − 8 · MACs − Σ losses` leaves over (all zero when the
    /// schedule's accounting covers every cell-cycle the RTL spent).
    pub fn unaccounted(&self, sched: &Schedule) -> Vec<(String, i64)> {
        if !self.steady(sched) {
            return Vec::new();
        }
        let cells = (sched.array.rows * sched.array.cols) as i64;
        let rest = |cycles: u64, b: &Breakdown| {
            cells * cycles as i64 - (ACT_BITS * b.macs) as i64 - b.losses()
        };
        let mut out: Vec<(String, i64)> = match self.measured.spans.last() {
            Some(spans) => spans
                .iter()
                .zip(&sched.layers)
                .enumerate()
                .map(|(l, (&c, ls))| (format!("layer {l}"), rest(c, &ls.breakdown)))
                .collect(),
            None => Vec::new(),
        };
        if let Some(iv) = self.measured.last_interval() {
            out.push(("interval".into(), rest(iv, &sched.breakdown)));
        }
        out
    }

    /// Bit-exact, finished, on the predicted cycles, and every measured cell-cycle
    /// accounted for.
    pub fn exact(&self, sched: &Schedule) -> bool {
        self.passed() && self.cycles_match() && self.unaccounted(sched).iter().all(|(_, r)| *r == 0)
    }

    /// The lines `ccc simulate` prints for this run.
    pub fn summary(&self, what: &str, sched: &Schedule) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:?}: {} {what}, {} mismatching (build {:.1} s, run {:.1} s)",
            self.simulator,
            self.images,
            self.mismatches.len(),
            self.build_secs,
            self.run_secs
        );
        if self.timeout {
            let _ = writeln!(s, "  TIMEOUT: the design did not finish");
        }
        for m in self.mismatches.iter().take(5) {
            let _ = writeln!(s, "  {m}");
        }
        let (m, p) = (&self.measured, &self.predicted);
        if let Some(lat) = m.latency() {
            let cycles = m.done.last().map_or(0, |d| d + 1);
            let _ = writeln!(
                s,
                "  latency (first input beat to class): {lat} cycles measured, {} predicted ({:.0} simulated cycles/s)",
                p.done.first().map_or(0, |d| d + 1),
                cycles as f64 / self.run_secs.max(1e-9)
            );
        }
        if let Some(iv) = m.last_interval() {
            let n = p.done.len();
            let _ = writeln!(
                s,
                "  images {} and {} finish {iv} cycles apart, {} predicted; steady state {} cycles per image, MAC efficiency {:.1}%",
                n - 2,
                n - 1,
                p.done[n - 1] - p.done[n - 2],
                sched.interval,
                100.0 * sched.breakdown.efficiency(sched.array)
            );
        }
        if let Some((k, spans)) = m.spans.iter().enumerate().next_back() {
            let _ = writeln!(s, "  image {k}, cycles per layer (measured, predicted):");
            for (l, (mc, pc)) in spans.iter().zip(&p.spans[k]).enumerate() {
                let _ = writeln!(s, "    layer {l:<2}: {mc:>9} {pc:>9}");
            }
        }
        if !self.timeout && !self.cycles_match() {
            let _ = writeln!(s, "  cycles differ from the schedule's prediction");
        }
        if !self.steady(sched) {
            let _ = writeln!(
                s,
                "  the run ends before the steady state (the head holds the layers back only after a few images): the loss breakdown is checked on longer runs"
            );
        }
        let rest = self.unaccounted(sched);
        let off: Vec<String> = rest
            .iter()
            .filter(|(_, r)| *r != 0)
            .map(|(w, r)| format!("{w}: {r}"))
            .collect();
        if off.is_empty() && !rest.is_empty() {
            let _ = writeln!(
                s,
                "  loss breakdown: R·C · cycles = 8 · MACs + Σ losses on every measured layer span{}",
                if self.measured.last_interval().is_some() {
                    " and the interval"
                } else {
                    ""
                }
            );
        } else if !off.is_empty() {
            let _ = writeln!(
                s,
                "  loss breakdown does not add up on the measured run (cell-cycles left over): {}",
                off.join(", ")
            );
        }
        s
    }
}

/// The images the accelerator must compute when `o` streams `images`: each packet as the
/// framing completes or cuts it, and after a reset pulse only the packets streamed again.
pub fn expected_images(design: &HwDesign, images: &[Vec<u8>], o: &RunOptions) -> Vec<Vec<u8>> {
    let framed = images.iter().enumerate().map(|(k, img)| {
        match o.stream.lens.as_ref().and_then(|l| l.get(k)) {
            Some(&len) => {
                let beats = sim::stream_order(design, img);
                sim::from_stream_order(design, &sim::framed_image(&beats, len))
            }
            None => img.clone(),
        }
    });
    let skip = o.stream.reset.map_or(0, |r| r.resume);
    framed.skip(skip).collect()
}

/// Runs simulator `sim` on `images` over the design in OUT and checks the run against
/// `net`'s reference (of [`expected_images`]).
pub fn check(
    out: &Path,
    net: &PackedNet,
    sched: &Schedule,
    design: &HwDesign,
    images: &[Vec<u8>],
    sim: Simulator,
    o: &RunOptions,
) -> Result<SimCheck> {
    let run = sim::run(out, design, images, sim, o)?;
    let want = expected_images(design, images, o);
    Ok(SimCheck {
        simulator: sim,
        images: want.len(),
        mismatches: compare(net, &want, &run),
        timeout: run.timeout,
        measured: measure(&run, sched),
        predicted: sched.predict(net, want.len()),
        build_secs: run.build_secs,
        run_secs: run.run_secs,
        run,
    })
}

/// `n` images for a model taking `input`: the first Fashion-MNIST test images when the
/// model takes their shape and `data_dir` holds them, else seeded random images. Returns
/// the images and what they are.
pub fn test_images(
    input: Dims,
    n: usize,
    data_dir: &Path,
    seed: u64,
) -> Result<(Vec<Vec<u8>>, &'static str)> {
    if (input.c, input.h, input.w) == (1, 28, 28)
        && data_dir.join("t10k-images-idx3-ubyte.gz").exists()
    {
        let d = dataset::load_mnist_like(data_dir, Split::Test, Some(n))?;
        Ok((d.images, "Fashion-MNIST test images"))
    } else {
        Ok((
            testgen::random_images(input.c, input.h, input.w, n, seed),
            "seeded random images",
        ))
    }
}
