//! FPGA fit model: what the emitted accelerator costs on an FPGA, before synthesis.
//!
//! Per component of the design (MX cells, column feeds, row units, memories, pool and
//! classifier, control, input writer, schedule/write-map ROMs) an analytic count of
//! 4-input LUTs, flip-flops and carry cells, linear in the design's parameters with
//! coefficients fitted against yosys 0.23 (`tools/fit_calibrate.py`; the data points and
//! the model's error on them are in `tests/data/fit-calibration.json` and checked by
//! `cargo test`), and block RAMs counted by the same packing rules yosys's memory mapper
//! follows (iCE40 SB_RAM40_4K, ECP5 DP16KD or LUT RAM). `ccc compile --target T` refuses
//! a design that does not fit T and names the largest array that would.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::pack::network::PackedNet;
use crate::rtl::design::{self, Capacity, HwDesign};
use crate::schedule::ArrayShape;

/// A synthesis family: what the LUTs, flip-flops and memories are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// yosys `synth` mapped to 4-LUTs, memories kept (counted as iCE40 would pack them).
    Generic,
    Ice40,
    Ecp5,
}

/// A device `ccc compile --target` checks the design against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Target {
    #[value(name = "ice40-up5k")]
    #[serde(rename = "ice40-up5k")]
    Ice40Up5k,
    #[value(name = "ice40-hx8k")]
    #[serde(rename = "ice40-hx8k")]
    Ice40Hx8k,
    #[value(name = "ecp5-85k")]
    #[serde(rename = "ecp5-85k")]
    Ecp5_85k,
    #[value(name = "generic")]
    #[serde(rename = "generic")]
    Generic,
}

/// Capacity of a device (u64::MAX: unlimited).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Device {
    pub name: &'static str,
    pub family: Family,
    pub lut: u64,
    pub dff: u64,
    pub bram: u64,
    pub dsp: u64,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::Ice40Up5k,
        Target::Ice40Hx8k,
        Target::Ecp5_85k,
        Target::Generic,
    ];

    pub fn device(self) -> Device {
        match self {
            // Lattice data sheets: logic cells (one LUT4 + one flip-flop each), 4-kbit
            // EBRs, 18x18 multipliers (the UP5K's SB_MAC16 are not inferred by default).
            Target::Ice40Up5k => Device {
                name: "iCE40UP5K",
                family: Family::Ice40,
                lut: 5280,
                dff: 5280,
                bram: 30,
                dsp: 8,
            },
            Target::Ice40Hx8k => Device {
                name: "iCE40HX8K",
                family: Family::Ice40,
                lut: 7680,
                dff: 7680,
                bram: 32,
                dsp: 0,
            },
            Target::Ecp5_85k => Device {
                name: "LFE5U-85F",
                family: Family::Ecp5,
                lut: 83_640,
                dff: 83_640,
                bram: 208,
                dsp: 156,
            },
            Target::Generic => Device {
                name: "generic",
                family: Family::Generic,
                lut: u64::MAX,
                dff: u64::MAX,
                bram: u64::MAX,
                dsp: u64::MAX,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Ice40Up5k => "ice40-up5k",
            Target::Ice40Hx8k => "ice40-hx8k",
            Target::Ecp5_85k => "ecp5-85k",
            Target::Generic => "generic",
        }
    }
}

/// FPGA resources. `lut` counts LUT4s; on ECP5 it includes 2 LUT4s per 16x4 LUT RAM
/// (a DPR16X4 takes the two LUTs of a slice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub lut: u64,
    pub dff: u64,
    pub carry: u64,
    pub bram: u64,
    pub dsp: u64,
}

impl std::ops::AddAssign for Resources {
    fn add_assign(&mut self, o: Resources) {
        self.lut += o.lut;
        self.dff += o.dff;
        self.carry += o.carry;
        self.bram += o.bram;
        self.dsp += o.dsp;
    }
}

/// `n` copies of one instance.
impl std::ops::Mul<u64> for Resources {
    type Output = Resources;
    fn mul(self, n: u64) -> Resources {
        Resources {
            lut: self.lut * n,
            dff: self.dff * n,
            carry: self.carry * n,
            bram: self.bram * n,
            dsp: self.dsp * n,
        }
    }
}

/// One component's cost: `instances` copies of `each`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub instances: usize,
    pub each: Resources,
    pub total: Resources,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Estimate {
    pub family: Family,
    /// The design's capacity the estimate is computed from.
    pub capacity: Capacity,
    pub components: Vec<Component>,
    pub total: Resources,
}

impl Estimate {
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

// Fitted coefficients (tools/fit_calibrate.py on tests/data/fit-calibration.json's
// configurations, yosys 0.23): per family, component and metric, the coefficients of
// the component's features (see `features`), per instance.
struct Coef {
    lut: &'static [f64],
    dff: &'static [f64],
    carry: &'static [f64],
}

const COMPONENTS: [&str; 7] = [
    "cell",
    "feed",
    "row",
    "classifier",
    "control",
    "writer",
    "roms",
];

fn features(comp: &str, p: &Capacity) -> Vec<f64> {
    let f = |v: usize| v as f64;
    match comp {
        "cell" => vec![1.0, f(p.psum_w), f(p.alpha)],
        "feed" => vec![1.0, f(p.alpha), f(p.widths.a_w), f(p.banks)],
        "row" => vec![1.0, f(p.widths.a_w)],
        // The fixed part (logit shift register, argmax) grows with the classes; the pool
        // storage (flip-flops and their word multiplexers where there is no LUT RAM) with
        // the pooled bits; the per-row adders and the row multiplexer with rows x width.
        "classifier" => vec![f(p.classes), f(p.ch * p.pool_w), f(p.rows * p.pool_w)],
        // The row writes are decoded per row (target columns and lane one-hot, registered
        // at level 0 on arrays of 8 rows or more) and merged within each 8-row write
        // group, then the groups' buses into the column RAMs' write ports.
        "control" => {
            let l0 = usize::from(p.write_l0);
            vec![
                1.0,
                f(p.cols),
                f(p.rows * p.banks),
                f(p.cols * p.rows.div_ceil(8)),
                f(p.banks),
                f(l0 * p.rows * p.banks * (p.cols + p.alpha + p.widths.a_w + 8)),
            ]
        }
        "writer" => vec![1.0, f(p.cols)],
        "roms" => vec![1.0, f(p.tiles), f(p.cols * p.map_entries)],
        _ => unreachable!("unknown component {comp}"),
    }
}

fn instances(comp: &str, p: &Capacity) -> usize {
    match comp {
        "cell" => p.rows * p.cols,
        "feed" => p.cols,
        // One row unit per array row and row-end bank.
        "row" => p.rows * p.banks,
        _ => 1,
    }
}

include!("fit_coefs.rs");

/// hw/ccc_logits.v, which replaces the head unit when the head runs on the array.
/// Flip-flops counted from the RTL: the class and output shift registers (2·CLS·ACC_W),
/// the argmax value, the output word (its sign extension one flip-flop), the argmax and
/// output indices and five control bits. LUTs and carries fitted to yosys 0.23 on the
/// module alone (CLS 10–30, ACC_W 20–32, R 4–32, one and two banks; within 4 LUTs of
/// every point): a LUT per class bit and bank picks the row that wrote it and shifts it
/// out, the argmax compare is a carry chain of ACC_W.
fn logits_unit(p: &Capacity, family: Family) -> Resources {
    let (cls, acc) = (p.classes as f64, p.acc_w as f64);
    let cls_w = p.widths.cls_w as u64;
    let per_bit = 1.05 * (p.banks as f64) * cls * acc;
    let (lut, carry) = match family {
        Family::Ecp5 => (per_bit + 2.0 * acc + 0.5 * cls, p.acc_w.div_ceil(2) + 3),
        _ => (per_bit + 0.67 * acc + 31.0, p.acc_w + 3),
    };
    Resources {
        lut: count(lut),
        dff: (2 * p.classes * p.acc_w + p.acc_w + (p.acc_w + 1).min(32)) as u64 + 2 * cls_w + 6,
        carry: carry as u64,
        ..Resources::default()
    }
}

fn dot(c: &[f64], x: &[f64]) -> f64 {
    c.iter().zip(x).map(|(a, b)| a * b).sum()
}

fn count(v: f64) -> u64 {
    v.round().max(0.0) as u64
}

/// iCE40 SB_RAM40_4K modes (width, depth); the 16-bit mode is the only one with a
/// per-bit write mask, so byte-enabled memories use it.
const ICE40_MODES: [(usize, usize); 4] = [(16, 256), (8, 512), (4, 1024), (2, 2048)];
/// ECP5 DP16KD modes; byte enables exist in the 18- and 36-bit modes (9-bit bytes).
const ECP5_MODES: [(usize, usize); 6] = [
    (1, 16384),
    (2, 8192),
    (4, 4096),
    (9, 2048),
    (18, 1024),
    (36, 512),
];

/// (block RAMs, blocks cascaded in depth) for one `depth` x `width` memory written in
/// `lanes` byte lanes: the cheapest mode, as yosys's memory mapper picks it.
pub fn brams(family: Family, depth: usize, width: usize, lanes: usize) -> (u64, u64) {
    let (modes, eff): (Vec<(usize, usize)>, usize) = match family {
        Family::Ice40 | Family::Generic => {
            if lanes > 1 {
                (ICE40_MODES[..1].to_vec(), width)
            } else {
                (ICE40_MODES.to_vec(), width)
            }
        }
        Family::Ecp5 => {
            if lanes > 1 {
                (
                    ECP5_MODES.iter().copied().filter(|m| m.0 >= 18).collect(),
                    lanes * 9,
                )
            } else {
                (ECP5_MODES.to_vec(), width)
            }
        }
    };
    modes
        .iter()
        .map(|&(w, d)| {
            let deep = depth.div_ceil(d) as u64;
            (eff.div_ceil(w) as u64 * deep, deep)
        })
        .min()
        .unwrap_or((0, 0))
}

/// ECP5 keeps a small memory in LUT RAM (DPR16X4, 16 x 4) when that is cheaper in
/// yosys's cost units (4 per DPR16X4 plus 1 per flip-flop that turns its asynchronous
/// read into the memory's synchronous one, 128 per DP16KD; ties go to block RAM). A
/// memory with byte lanes splits into one LUT RAM per lane (each has its own write
/// enable); yosys 0.23 does that only up to 32 words (measured: 16 and 24 words of 8
/// lanes in LUT RAM, 40 and more in DP16KD; `make fit-calibrate`). Measured for the read
/// register's share: 64 x 152 bits went to 5 DP16KD (640) against 152 DPR16X4 (608 + 152).
fn ecp5_lutram(depth: usize, width: usize, lanes: usize, bram: u64) -> Option<u64> {
    if lanes > 1 {
        let n = (lanes * (width / lanes).div_ceil(4) * depth.div_ceil(16)) as u64;
        return (depth <= 32).then_some(n);
    }
    let n = (width.div_ceil(4) * depth.div_ceil(16)) as u64;
    (4 * n + (width as u64) < 128 * bram).then_some(n)
}

/// Every block-RAM-mapped memory: (what, depth, width, byte lanes, instances).
fn memories(p: &Capacity) -> Vec<(&'static str, usize, usize, usize, usize)> {
    let mut m = vec![
        ("tap buffers", p.a_d, p.alpha * 8, p.alpha, p.cols),
        // Banks of wm_bank words (the last may be shorter; counted as full).
        (
            "weight memory",
            (p.tiles * p.rows).min(p.wm_bank),
            p.word.width,
            1,
            p.wm_banks(),
        ),
    ];
    // The first layer's own input buffers, on the columns it reads.
    let in_cols = p.in_cols.iter().filter(|&&c| c).count();
    if p.in_d > 0 && in_cols > 0 {
        m.push(("input buffers", p.in_d, p.alpha * 8, p.alpha, in_cols));
    }
    if p.psum_d > 0 {
        m.push(("partial sums", p.psum_d, p.acc_w, 1, p.rows * p.banks));
    }
    m
}

/// The model's estimate for `p` on `family`.
pub fn estimate(p: &Capacity, family: Family) -> Estimate {
    let coefs = coefficients(family);
    let mut components = Vec::new();
    for (name, c) in COMPONENTS.iter().zip(coefs.iter()) {
        let x = features(name, p);
        let mut each = Resources {
            lut: count(dot(c.lut, &x)),
            dff: count(dot(c.dff, &x)),
            carry: count(dot(c.carry, &x)),
            ..Resources::default()
        };
        if *name == "cell" {
            // Exact: {weight, selector} shadow and active, α lanes, swap, partial sum.
            each.dff = (2 * (8 + p.sel_w) + p.alpha + 1 + p.psum_w) as u64;
        }
        components.push((*name, instances(name, p), each));
    }
    // The head's weight ROM (CLS*CH x 8 for a linear classifier) and, on ECP5, its pool memories (one per
    // array row, ceil(CH / R) words of POOL_W).
    let head = p.head();
    let cls_mem = |fam: Family| -> Resources {
        // yosys keeps memories this small in logic (measured: 256 bits and below stay
        // logic, 320 bits and above become block RAM).
        let rom = |depth: usize, width: usize| {
            if depth * width > 256 {
                brams(fam, depth, width, 1).0
            } else {
                0
            }
        };
        match fam {
            // The ROMs become logic (in the classifier's fitted LUTs); the pool memories
            // LUT RAM, two LUT slots per DPR16X4 as in `memories`.
            Family::Ecp5 => {
                let words = p.ch.div_ceil(p.rows.max(1));
                let dpr = (p.rows * p.pool_w.div_ceil(4) * words.div_ceil(16)) as u64;
                Resources {
                    lut: 2 * dpr,
                    dsp: head.lanes as u64,
                    ..Resources::default()
                }
            }
            // No LUT RAM: the pool memories are flip-flops (fitted). The bias ROM is read
            // combinationally into the accumulator, so it stays logic too.
            _ => Resources {
                bram: rom(head.weights, 8 * head.lanes),
                ..Resources::default()
            },
        }
    };
    // Lanes past the first (the fitted counts are of one-lane heads): each adds its
    // weight, product, sum and bias registers and its adder, the shift register that
    // hands the block's sums on takes a sum per lane, and without multipliers (iCE40)
    // each lane's 8 x POOL_W product is LUTs.
    let extra = head.lanes.saturating_sub(1) as u64;
    let logit_w = p.logit_w as u64;
    let lane_res = Resources {
        dff: extra * (8 + 4 * logit_w)
            + if extra > 0 {
                head.lanes as u64 * logit_w
            } else {
                0
            },
        lut: extra
            * (logit_w
                + if family == Family::Ecp5 {
                    0
                } else {
                    (8 * p.pool_w) as u64
                }),
        ..Resources::default()
    };
    if p.head_array {
        // No head unit: the logits unit takes the classifier's place.
        if let Some(c) = components.iter_mut().find(|c| c.0 == "classifier") {
            *c = ("logits", 1, logits_unit(p, family));
        }
    } else if let Some(c) = components.iter_mut().find(|c| c.0 == "classifier") {
        c.2 += cls_mem(family);
        c.2 += lane_res;
    }
    if family == Family::Ecp5 {
        // The writer's channel * phases product maps to a multiplier.
        if let Some(c) = components.iter_mut().find(|c| c.0 == "writer") {
            c.2.dsp += 1;
        }
    }
    let mem_coef = memory_coefficients(family);
    let mut mem = Resources::default();
    let mut mux_bits = 0usize;
    for (_, d, w, lanes, n) in memories(p) {
        let (b, deep) = brams(family, d, w, lanes);
        let n64 = n as u64;
        match (family, ecp5_lutram(d, w, lanes, b)) {
            (Family::Ecp5, Some(lr)) => mem.lut += 2 * lr * n64,
            _ => {
                mem.bram += b * n64;
                mux_bits += n * w * (deep as usize - 1);
            }
        }
    }
    // Besides the output multiplexers of deep memories, the write-enable and read-lane
    // logic around the block RAMs grows with the tap buffers (C) and partial-sum memories
    // (R): iCE40 measured 308 / 551 / 900 / 1 036 LUT4 at 2x2 / 4x4 / 4x8 / 8x8.
    let x = [1.0, mux_bits as f64, p.cols as f64, p.rows as f64];
    mem.lut += count(dot(mem_coef.0, &x));
    mem.dff += count(dot(mem_coef.1, &x));
    components.push(("memories", 1, mem));

    let mut total = Resources::default();
    let components: Vec<Component> = components
        .into_iter()
        .map(|(name, instances, each)| {
            let t = each * instances as u64;
            total += t;
            Component {
                name: name.to_string(),
                instances,
                each,
                total: t,
            }
        })
        .collect();
    Estimate {
        family,
        capacity: p.clone(),
        components,
        total,
    }
}

/// Why a design was refused for a target.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error(
        "the {rows}x{cols} array does not fit {device}: {resource} {need} > {have} available (fit model, before synthesis){}",
        match (largest, closest) { (Some(a), _) => format!("; the largest array that fits this model is {}x{} (--rows {} --cols {})", a.rows, a.cols, a.rows, a.cols), (None, Some(c)) => format!("; no array size fits this model: {c}"), (None, None) => "; no array size fits this model".to_string() }
    )]
    DoesNotFit {
        device: &'static str,
        rows: usize,
        cols: usize,
        resource: &'static str,
        need: u64,
        have: u64,
        largest: Option<ArrayShape>,
        /// When no array fits: the one that misses by least.
        closest: Option<Box<Shortfall>>,
    },
}

/// Flattened synthesis (what place and route sees) needs this share of the LUT4s and
/// flip-flops that the per-module fits add up to: yosys merges logic across module
/// boundaries (the parameters each instance gets: row and column indices, the split
/// column, modes a layer never uses), removes flip-flops that hold constants, and drops
/// the load and debug paths of the board top. The shares move with the RTL, so they are
/// re-measured with every recalibration. ECP5, pinned shipped model, flattened LUT4 + 2
/// per DPR16X4 over the per-module prediction: RTL of 01b4429, 16x16 13 283 / 29 500 =
/// 0.450, 32x32 44 043 / 82 151 = 0.536; RTL of 2026-12-03 (two-stage pool add), 16x16
/// 12 891 / 26 094 = 0.494; RTL of 7146cfa (registered control compares), 16x16 15 712
/// / 26 094 = 0.602. The larger keeps the check on the safe side. Earlier RTL measured
/// 0.39 to 0.61 (9417666, 441fed5, e0911ca).
pub const ECP5_FLAT_LUT: f64 = 0.61;
/// iCE40, pinned iCE40 model, flattened SB_LUT4 over the per-module prediction: 4x4
/// (RTL of 71ead9e) 3 517 / 5 480 = 0.642; 3x4 and 1x5 (7146cfa) 3 316 / 4 897 = 0.677
/// and 2 723 / 4 273 = 0.637 (2026-12-03 at 4x4: 0.670; 0.553 at 01b4429).
pub const ICE40_FLAT_LUT: f64 = 0.68;
/// Flip-flops. RTL of 2026-12-03: ECP5 16x16 21 904 / 27 339 = 0.801; iCE40 4x4
/// 4 467 / 5 682 = 0.786. RTL of 7146cfa, whose control compares and enables are
/// registered copies: ECP5 16x16 23 536 / 27 339 = 0.861; iCE40 4x4 (71ead9e) 4 686 /
/// 5 682 = 0.825, 3x4 4 231 / 4 927 = 0.859, 1x5 3 297 / 3 700 = 0.891.
pub const ECP5_FLAT_FF: f64 = 0.87;
pub const ICE40_FLAT_FF: f64 = 0.89;

/// The flattened design's predicted resources (what `synth_<family>` reports for the
/// board-level top): the per-module sum, with the flattened shares of LUT4s and
/// flip-flops.
pub fn flattened(e: &Estimate) -> Resources {
    let mut r = e.total;
    let (lut, ff) = match e.family {
        Family::Ecp5 => (ECP5_FLAT_LUT, ECP5_FLAT_FF),
        Family::Ice40 => (ICE40_FLAT_LUT, ICE40_FLAT_FF),
        Family::Generic => (1.0, 1.0),
    };
    r.lut = (r.lut as f64 * lut).ceil() as u64;
    r.dff = (r.dff as f64 * ff).ceil() as u64;
    r
}

/// iCE40 logic cells per flip-flop beyond the LUT4s. A cell holds one LUT4, its carry
/// and one flip-flop, but nextpnr pairs a flip-flop only with the LUT4 that drives it;
/// a flip-flop fed by another flip-flop or a block RAM (pipeline stages, register
/// copies, shadow registers) takes a cell of its own. Calibrated on synthesized and
/// placed designs of the pinned iCE40 model: 4x4 on the HX8K (71ead9e), 3 517 SB_LUT4 +
/// 4 686 flip-flops in 7 039 cells, (7 039 − 3 517) / 4 686 = 0.752; 3x4 on the UP5K,
/// 3 316 + 4 231 in 6 504 cells, 0.753; 1x5 on the UP5K, 2 723 + 3 297 in 5 208 cells,
/// 0.754 (98.6%: no legal placement). Carries need no cell of their own in any.
pub const ICE40_CELLS_PER_FF: f64 = 0.76;

/// The resources a device must provide for estimate `e`. Carry cells take LUT slots too,
/// so on ECP5 the LUT4 need is the flattened LUT4s plus two LUT4 per CCU2C (nextpnr's
/// "Total LUT4s": 32 176 = 23 030 logic + 9 050 carry + 96 RAM on the 16x16 design). On
/// iCE40 it is logic cells: the flattened LUT4s plus [`ICE40_CELLS_PER_FF`] per
/// flip-flop.
pub fn device_need(e: &Estimate) -> Resources {
    let mut r = flattened(e);
    match e.family {
        Family::Ecp5 => r.lut += 2 * r.carry,
        Family::Ice40 => r.lut += (r.dff as f64 * ICE40_CELLS_PER_FF).ceil() as u64,
        Family::Generic => {}
    }
    r
}

/// Share of a device's logic or flip-flops above which `--target` warns that placement
/// may fail: iCE40HX8K designs at 91% and 93% of the logic cells found no legal placement
/// (nextpnr-ice40 0.4, heap placer, several seeds) while others at 88-91.6% placed, and
/// the LFE5U-85F's static placer did not finish a 32x32 design at 95% of its flip-flops
/// in 80 minutes. A warning, not a refusal: the iCE40UP5K 1x4 design placed at 94%.
pub const PLACE_WARN: f64 = 0.9;

/// What [`device_need`]'s `lut` counts on a family.
pub fn logic_name(f: Family) -> &'static str {
    match f {
        Family::Ice40 => "logic cells (LUT4 + unpaired flip-flops)",
        _ => "LUT4 (logic and carry)",
    }
}

/// Every resource of `e` that exceeds `d`: (name, need, have).
pub fn exceeded_all(e: &Resources, d: &Device) -> Vec<(&'static str, u64, u64)> {
    [
        (logic_name(d.family), e.lut, d.lut),
        ("flip-flops", e.dff, d.dff),
        ("block RAMs", e.bram, d.bram),
        ("multipliers", e.dsp, d.dsp),
    ]
    .into_iter()
    .filter(|(_, need, have)| need > have)
    .collect()
}

/// The first resource of `e` that exceeds `d`: (name, need, have).
pub fn exceeded(e: &Resources, d: &Device) -> Option<(&'static str, u64, u64)> {
    exceeded_all(e, d).into_iter().next()
}

/// The arrays [`largest_fit`] and [`closest_miss`] consider when no square fits.
fn narrow_arrays() -> impl Iterator<Item = ArrayShape> {
    (1..=8).flat_map(|rows| (1..=16).map(move |cols| ArrayShape { rows, cols }))
}

/// When no array fits `t`: the array that misses it by least (the smallest sum of the
/// overshoots, each relative to what the device has) and what it lacks.
pub fn closest_miss(net: &PackedNet, t: Target) -> Option<Shortfall> {
    let sq = (1..=64).map(|n| ArrayShape { rows: n, cols: n });
    sq.chain(narrow_arrays())
        .filter_map(|a| {
            let over = misses(net, a, t)?;
            let cost: f64 = over
                .iter()
                .map(|&(_, need, have)| need as f64 / have.max(1) as f64 - 1.0)
                .sum();
            Some((cost, a, over))
        })
        .min_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, array, over)| Shortfall { array, over })
}

/// An array that does not fit and by how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Shortfall {
    pub array: ArrayShape,
    /// (resource, need, have) for every resource it exceeds.
    pub over: Vec<(&'static str, u64, u64)>,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the closest, {}x{}, needs ",
            self.array.rows, self.array.cols
        )?;
        for (k, (name, need, have)) in self.over.iter().enumerate() {
            let sep = if k == 0 { "" } else { " and " };
            write!(f, "{sep}{need} {name} of {have} (+{})", need - have)?;
        }
        Ok(())
    }
}

/// Every resource `net` on array `a` exceeds on `t` (None: no design for that array).
fn misses(net: &PackedNet, a: ArrayShape, t: Target) -> Option<Vec<(&'static str, u64, u64)>> {
    let d = t.device();
    let p = design::capacity(net, a).ok()?;
    Some(exceeded_all(&device_need(&estimate(&p, d.family)), &d))
}

fn fits(net: &PackedNet, a: ArrayShape, t: Target) -> bool {
    misses(net, a, t).is_some_and(|over| over.is_empty())
}

/// The largest array (most cells; squarer on ties) for which `net` fits `t`: square
/// arrays first, then the best square widened in either direction.
pub fn largest_fit(net: &PackedNet, t: Target) -> Option<ArrayShape> {
    let sq = |n: usize| ArrayShape { rows: n, cols: n };
    // Not a prefix: logic grows with the array, but small arrays need more tiles and so
    // larger schedule and weight memories (the shipped model needs 2x2 or more on
    // ECP5), so every square up to 64 is checked.
    let Some(b) = (1..=64).rev().map(sq).find(|&a| fits(net, a, t)) else {
        // No square fits (a small device whose block RAM a 1-column step tips over):
        // the narrow rectangles, most cells first.
        let mut best: Option<ArrayShape> = None;
        for a in narrow_arrays() {
            let better = best.is_none_or(|w| a.rows * a.cols > w.rows * w.cols);
            if better && fits(net, a, t) {
                best = Some(a);
            }
        }
        return best;
    };
    let mut winner = b;
    for (dr, dc) in [(0usize, 1usize), (1, 0)] {
        let mut k = 1;
        loop {
            let a = ArrayShape {
                rows: b.rows + dr * k,
                cols: b.cols + dc * k,
            };
            if k > 64 || !fits(net, a, t) {
                break;
            }
            if a.rows * a.cols > winner.rows * winner.cols {
                winner = a;
            }
            k += 1;
        }
    }
    Some(winner)
}

/// Checks design `hw` of `net` against `t`; on failure, the error names the exceeded
/// resource and the largest array that fits.
pub fn check(net: &PackedNet, hw: &HwDesign, t: Target) -> std::result::Result<Estimate, FitError> {
    let d = t.device();
    let p = &hw.capacity;
    let e = estimate(p, d.family);
    if let Some((resource, need, have)) = exceeded(&device_need(&e), &d) {
        let largest = largest_fit(net, t);
        return Err(FitError::DoesNotFit {
            device: d.name,
            rows: p.rows,
            cols: p.cols,
            resource,
            need,
            have,
            largest,
            closest: match largest {
                Some(_) => None,
                None => closest_miss(net, t).map(Box::new),
            },
        });
    }
    Ok(e)
}

/// Predicted resources for the report: every family, for the design and for the dense
/// baseline on the same array.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Prediction {
    pub target: Option<Target>,
    pub packed: Vec<Estimate>,
    pub dense: Vec<Estimate>,
}

pub fn predict(packed: &HwDesign, dense: Option<&HwDesign>, target: Option<Target>) -> Prediction {
    let fams = [Family::Generic, Family::Ice40, Family::Ecp5];
    let all = |d: &HwDesign| -> Vec<Estimate> {
        fams.iter().map(|&f| estimate(&d.capacity, f)).collect()
    };
    Prediction {
        target,
        packed: all(packed),
        dense: dense.map(all).unwrap_or_default(),
    }
}

/// Markdown table of one estimate's components.
pub fn components_markdown(e: &Estimate) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| component | instances | LUT4 each | FF each | LUT4 | FF | carry | BRAM | DSP |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in &e.components {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.name,
            c.instances,
            c.each.lut,
            c.each.dff,
            c.total.lut,
            c.total.dff,
            c.total.carry,
            c.total.bram,
            c.total.dsp
        );
    }
    let t = &e.total;
    let _ = writeln!(
        s,
        "| **total** | | | | **{}** | **{}** | **{}** | **{}** | **{}** |",
        t.lut, t.dff, t.carry, t.bram, t.dsp
    );
    s
}

/// Bits one block RAM holds: ECP5 DP16KD (18 Kbit, the parity bits included, since the
/// 36-bit mode stores them), iCE40 SB_RAM40_4K.
pub fn block_bits(family: Family) -> u64 {
    match family {
        Family::Ecp5 => 18_432,
        Family::Ice40 | Family::Generic => 4_096,
    }
}

/// One memory of the design: the bits the model needs it to hold and the block RAM it
/// takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryUse {
    pub memory: String,
    /// What the needed bits are made of.
    pub holds: String,
    pub needed_bits: u64,
    /// "block RAM", "LUT RAM" or "logic".
    pub kind: String,
    pub bram: u64,
    pub bram_bits: u64,
}

/// Every memory of a design on one family, against what the model must store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryBudget {
    pub family: Family,
    pub memories: Vec<MemoryUse>,
    pub needed_bits: u64,
    pub bram: u64,
    pub bram_bits: u64,
}

impl MemoryBudget {
    /// Block-RAM bits per needed bit (all memories: those in logic need bits and take no
    /// block RAM).
    pub fn ratio(&self) -> f64 {
        self.bram_bits as f64 / self.needed_bits.max(1) as f64
    }
}

/// Bits of one schedule-ROM row: the fields `ccc_ctrl` reads (`r_*`).
pub fn sched_row_bits(c: &Capacity) -> usize {
    let w = &c.widths;
    w.layer_w
        + 6 // first, last, final, ffirst, reopen, mirror
        + 2 // mode
        + 2 * w.n_w
        + 2 * w.rb_w
        + 2 * (w.row_w + 1)
        + 2 * (w.pix_w + 1)
        + 2 * w.x_w
        + w.a_w
        + 2 * w.lane_w
        + w.s_w
        + 2 * w.lk_w
        + w.pix_w
        + w.y_w
        + 6 // requantize shift
        + 8 // clamp
        + w.tp_w
        + 3 // delta
        + w.gap_w
}

/// What the design must store for `net` (DESIGN §12's memory accounting) against the
/// block RAM its memories take on `family`:
/// * weight memory — per packed cell 8 weight bits and the selector bits of its layer's
///   α; per filter its bias (`acc_w`) and write target;
/// * tap buffers — the layers' inputs as taps at the positions they read (taps × output
///   pixels × 8), two at a time (a layer reads one while it writes the next: ping-pong),
///   the largest pair;
/// * input buffers — the first layer's taps, where it has buffers of its own;
/// * partial sums — R × banks sums of `acc_w` per output pixel of the largest layer
///   tiled along its groups;
/// * classifier, schedule ROM and write map — weights, biases and pooled sums, one row
///   per tile, one entry per input channel and phase (in logic or LUT RAM).
pub fn memory_budget(net: &PackedNet, d: &HwDesign, family: Family) -> MemoryBudget {
    let c = &d.capacity;
    let bits = |v: usize| design::bits(v) as u64;
    let stored = |i: usize| -> u64 {
        let l = &net.layers[i];
        (l.taps.len() * l.output.pixels() * 8) as u64
    };
    let nl = net.layers.len();
    // The first layer's input lives in the tap buffers unless it has input buffers.
    let first_in_taps = usize::from(c.in_d > 0);
    let mut pair = 0u64;
    for i in first_in_taps..nl {
        let next = if i + 1 < nl { stored(i + 1) } else { 0 };
        pair = pair.max(stored(i) + next);
    }
    let mut cells = 0u64;
    let mut filters = 0u64;
    for l in &net.layers {
        let n = l.rows() as u64;
        // ⌈log2 α⌉ selector bits; none for a dense layer.
        let sel = if l.alpha > 1 { bits(l.alpha - 1) } else { 0 };
        cells += n * l.groups_len() as u64 * (8 + sel);
        filters += n;
    }
    let weights_needed = cells + filters * (c.acc_w + c.word.target_w) as u64;
    let tiled_pixels = net
        .layers
        .iter()
        .filter(|l| l.groups_len() > c.cols)
        .map(|l| l.output.pixels())
        .max()
        .unwrap_or(0);
    let psum_needed = (c.rows * c.banks * c.acc_w * tiled_pixels) as u64;
    let block = block_bits(family);
    let mut memories = Vec::new();
    for (name, depth, width, lanes, n) in self::memories(c) {
        let (b, _) = brams(family, depth, width, lanes);
        let lutram = family == Family::Ecp5 && ecp5_lutram(depth, width, lanes, b).is_some();
        let (holds, needed) = match name {
            "weight memory" => (
                "8-bit weights and selectors of every packed cell; per filter bias and write target",
                weights_needed,
            ),
            "tap buffers" => (
                "layer inputs as taps at the positions read, the largest pair of consecutive layers",
                pair,
            ),
            "input buffers" => ("the first layer's taps", stored(0)),
            _ => (
                "running sums between column blocks of the largest tiled layer",
                psum_needed,
            ),
        };
        let blocks = if lutram { 0 } else { b * n as u64 };
        memories.push(MemoryUse {
            memory: name.to_string(),
            holds: holds.to_string(),
            needed_bits: needed,
            kind: if lutram { "LUT RAM" } else { "block RAM" }.to_string(),
            bram: blocks,
            bram_bits: blocks * block,
        });
    }
    if c.head_array {
        memories.push(MemoryUse {
            memory: "logits".into(),
            holds: "the classifier's accumulators, one register per class".into(),
            needed_bits: (c.classes * c.acc_w) as u64,
            kind: "logic".into(),
            bram: 0,
            bram_bits: 0,
        });
    } else {
        memories.push(head_memory(c, family));
    }
    let map_bits = c.cols * (1 + c.widths.lane_w + 2 * c.widths.tap_w + c.word.offset_w);
    memories.push(MemoryUse {
        memory: "schedule ROM and write map".into(),
        holds: "one row per tile; per input channel and phase the columns' targets".into(),
        needed_bits: (c.tiles * sched_row_bits(c) + c.map_entries * map_bits) as u64,
        kind: "logic".into(),
        bram: 0,
        bram_bits: 0,
    });
    MemoryBudget {
        family,
        needed_bits: memories.iter().map(|m| m.needed_bits).sum(),
        bram: memories.iter().map(|m| m.bram).sum(),
        bram_bits: memories.iter().map(|m| m.bram_bits).sum(),
        memories,
    }
}

/// The head unit's memories: its weight and bias ROMs, the pooled sums and an MLP
/// head's hidden outputs.
fn head_memory(c: &Capacity, family: Family) -> MemoryUse {
    let block = block_bits(family);
    let head = c.head();
    let cls_rom = (head.weights * 8 * head.lanes) as u64;
    let cls_bram = match family {
        Family::Ecp5 => 0,
        _ if cls_rom > 256 => brams(family, head.weights, 8 * head.lanes, 1).0,
        _ => 0,
    };
    // An MLP head's hidden outputs: two halves of 2^hd_w bytes.
    let hidden_bits = if head.layers > 1 { 16 << head.hd_w } else { 0 };
    MemoryUse {
        memory: "classifier".into(),
        holds: "weights, biases, the pooled sums (and an MLP head's hidden outputs)".into(),
        needed_bits: cls_rom
            + (head.biases * head.lanes * c.logit_w + c.ch * c.pool_w + hidden_bits) as u64,
        kind: if cls_bram > 0 { "block RAM" } else { "logic" }.into(),
        bram: cls_bram,
        bram_bits: cls_bram * block,
    }
}

/// The budget as a Markdown table.
pub fn memory_markdown(b: &MemoryBudget) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| memory | holds | needed bits | in | block RAMs | block-RAM bits | ratio |"
    );
    let _ = writeln!(s, "|---|---|---:|---|---:|---:|---:|");
    for m in &b.memories {
        let ratio = if m.bram_bits > 0 {
            format!("{:.2}x", m.bram_bits as f64 / m.needed_bits.max(1) as f64)
        } else {
            "—".into()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {ratio} |",
            m.memory, m.holds, m.needed_bits, m.kind, m.bram, m.bram_bits
        );
    }
    let _ = writeln!(
        s,
        "| **total** | | {} | | {} | {} | **{:.2}x** |",
        b.needed_bits,
        b.bram,
        b.bram_bits,
        b.ratio()
    );
    s
}
