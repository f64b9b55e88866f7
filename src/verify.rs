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
use crate::schedule::Schedule;
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
            'outer: for ch in 0..ch_n {
                for y in 0..h {
                    for x in 0..w {
                        let pix = y * w + x;
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

/// Cycles of one image by phase: input, each conv layer, classifier + output.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MeasuredCycles {
    pub input: u64,
    pub layers: Vec<u64>,
    pub classifier: u64,
    pub total: u64,
}

/// Splits the first image's run into phases from the EV events.
pub fn measure(run: &SimRun, layers: usize) -> Option<MeasuredCycles> {
    let end = *run.done.get(&0)?;
    let mut m = MeasuredCycles {
        layers: vec![0; layers],
        ..Default::default()
    };
    let evs: Vec<&(u64, u8, usize)> = run.events.iter().filter(|e| e.0 <= end).collect();
    for (k, e) in evs.iter().enumerate() {
        let next = evs.get(k + 1).map_or(end + 1, |n| n.0);
        let span = next - e.0;
        match e.1 {
            0 => m.input += span,
            1 => {
                if let Some(l) = m.layers.get_mut(e.2) {
                    *l += span;
                }
            }
            _ => m.classifier += span,
        }
    }
    m.total = end + 1;
    Some(m)
}

/// What one simulator run showed.
#[derive(Debug)]
pub struct SimCheck {
    pub simulator: Simulator,
    pub images: usize,
    /// The first difference of each image that has one.
    pub mismatches: Vec<Mismatch>,
    pub timeout: bool,
    /// Cycles of the first image by phase (None: it never finished).
    pub measured: Option<MeasuredCycles>,
    /// Cycles between the first two images' results (with two images or more).
    pub interval: Option<u64>,
    pub build_secs: f64,
    pub run_secs: f64,
}

impl SimCheck {
    /// Bit-exact and finished.
    pub fn passed(&self) -> bool {
        !self.timeout && self.mismatches.is_empty()
    }

    /// Whether every measured phase took exactly the cycles `sched` predicts.
    pub fn cycles_match(&self, sched: &Schedule) -> bool {
        self.measured.as_ref().is_some_and(|m| {
            m.input == sched.input_cycles
                && m.classifier == sched.classifier_cycles
                && m.total == sched.total_cycles
                && m.layers.len() == sched.layers.len()
                && m.layers
                    .iter()
                    .zip(&sched.layers)
                    .all(|(a, l)| *a == l.cycles)
        })
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
        if let Some(m) = &self.measured {
            let _ = writeln!(
                s,
                "  cycles per inference: {} measured, {} predicted ({:.0} simulated cycles/s)",
                m.total,
                sched.total_cycles,
                m.total as f64 * self.images as f64 / self.run_secs.max(1e-9)
            );
            let _ = writeln!(
                s,
                "    input   : {:>9} measured {:>9} predicted",
                m.input, sched.input_cycles
            );
            for (l, (mc, ls)) in m.layers.iter().zip(&sched.layers).enumerate() {
                let _ = writeln!(
                    s,
                    "    layer {l:<2}: {mc:>9} measured {:>9} predicted",
                    ls.cycles
                );
            }
            let _ = writeln!(
                s,
                "    classify: {:>9} measured {:>9} predicted",
                m.classifier, sched.classifier_cycles
            );
            if let Some(i) = self.interval {
                let _ = writeln!(
                    s,
                    "  images finish {i} cycles apart (the next input streams in during the later layers)"
                );
            }
        }
        s
    }
}

/// Runs simulator `sim` on `images` over the design in OUT and checks the run against
/// `net`'s reference.
pub fn check(
    out: &Path,
    net: &PackedNet,
    design: &HwDesign,
    images: &[Vec<u8>],
    sim: Simulator,
    o: &RunOptions,
) -> Result<SimCheck> {
    let run = sim::run(out, design, images, sim, o)?;
    Ok(SimCheck {
        simulator: sim,
        images: images.len(),
        mismatches: compare(net, images, &run),
        timeout: run.timeout,
        measured: measure(&run, net.layers.len()),
        interval: match (run.done.get(&0), run.done.get(&1)) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        build_secs: run.build_secs,
        run_secs: run.run_secs,
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
