//! The hardware design, as typed data: everything the emitted accelerator is made of,
//! computed once from the packed network and its schedule, between the schedule and the
//! Verilog. [`HwDesign`] holds the design's **capacity** (array, α, every width and
//! memory depth: what the hardware is built for) apart from one model's **contents**
//! (buffer layout and regions, schedule-ROM rows, the write map of the input image,
//! weight-memory words, the classifier's tables: what this model puts in it).
//!
//! `rtl::emit` renders it to Verilog and memory images, `fit` estimates its cost from the
//! capacity, `rtl::sim` writes and runs the simulation drivers from it, and OUT/rtl/rtl.json
//! is this value serialized: reading it back and rendering again gives the same files.

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::cell::{CellParams, ceil_log2};
use crate::pack::network::{PackedLayer, PackedNet};
use crate::quant;
use crate::schedule::{self, ArrayShape, Mode, Schedule, Tile, input_phases, pipe};

/// The serialized form's format tag (OUT/rtl/rtl.json).
pub const FORMAT: &str = "ccc.hw-design/1";

/// Bits to hold the value `v` (at least 1).
pub fn bits(v: usize) -> usize {
    ceil_log2(v + 1).max(1)
}

/// Bits of a two's-complement field that holds `v` (at least 2: a sign and one bit):
/// the bits of `v`, or of `-v - 1` when negative, plus the sign.
pub fn signed_bits(v: i64) -> usize {
    bits(if v < 0 { !v } else { v } as usize) + 1
}

/// A value of the compiled model that a field of the hardware is too narrow to hold: the
/// compiler refuses it rather than let the RTL wrap it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldOverflow {
    /// The conv layer (model order) the value belongs to; `None` for the network's own.
    pub layer: Option<usize>,
    pub field: &'static str,
    pub value: i64,
    pub bits: usize,
    pub signed: bool,
}

impl FieldOverflow {
    /// The range the field holds.
    pub fn range(&self) -> (i64, i64) {
        if self.signed {
            (-(1i64 << (self.bits - 1)), (1i64 << (self.bits - 1)) - 1)
        } else {
            (0, (1i64 << self.bits) - 1)
        }
    }
}

impl std::fmt::Display for FieldOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (lo, hi) = self.range();
        match self.layer {
            Some(l) => write!(f, "conv layer {l}: ")?,
            None => write!(f, "network: ")?,
        }
        write!(
            f,
            "the {} is {}, past the RTL's {}-bit {} field ({lo}..={hi})",
            self.field,
            self.value,
            self.bits,
            if self.signed { "signed" } else { "unsigned" }
        )
    }
}

impl std::error::Error for FieldOverflow {}

/// `value` in a field of `bits` bits, or the error naming it.
fn field(
    layer: Option<usize>,
    field: &'static str,
    value: i64,
    bits: usize,
    signed: bool,
) -> std::result::Result<(), FieldOverflow> {
    let e = FieldOverflow {
        layer,
        field,
        value,
        bits,
        signed,
    };
    let (lo, hi) = e.range();
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(e)
    }
}

/// Widths of the fields the hardware fixes whatever the model (the others are sized to
/// the model's values): the controller's 8-bit delay counters, the requantizer's signed
/// shift, the clamp, the token's tap offsets, the segment delay.
pub const DELAY_W: usize = 8;
pub const SHIFT_W: usize = 6;
pub const CLAMP_W: usize = 8;
pub const TAP_W: usize = 8;
pub const DELTA_W: usize = 3;
/// Weight-memory words per bank: an ECP5 DP16KD holds 512 words of 36 bits, two iCE40
/// SB_RAM40_4K 512 of 16. Each bank's read is registered before the multiplexer that
/// joins the banks, so a deep memory adds no block-RAM-to-multiplexer path.
pub const WM_BANK_DEPTH: usize = 512;
fn tap_w_max() -> usize {
    TAP_W
}
fn int32_bits() -> usize {
    32
}

fn wm_bank_depth() -> usize {
    WM_BANK_DEPTH
}

/// Bank images are named with two decimal digits.
pub const WM_BANKS_MAX: usize = 100;

/// The design of one compiled model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HwDesign {
    pub format: String,
    /// `ccc <version>` that built it.
    pub generator: String,
    pub provenance: Provenance,
    pub capacity: Capacity,
    pub contents: Contents,
}

/// Where a design came from, for the generated files' headers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The model's name (its graph's `[model] name`).
    pub model: String,
    /// The model file as the user named it (never an absolute path).
    pub source: String,
    /// The complete `ccc compile` command that regenerates the design.
    pub command: String,
}

/// What the hardware is built for: array, cell widths, memory depths and every bus and
/// counter width. Two models with the same capacity run on the same Verilog modules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub rows: usize,
    pub cols: usize,
    /// Activation lanes per array column (the largest α of any layer).
    pub alpha: usize,
    pub sel_w: usize,
    pub psum_w: usize,
    /// Row-end accumulator, partial-sum and bias width ([`acc_width`]): the bits the
    /// model's largest possible |accumulator| needs, at most 32 (DESIGN §5's int32);
    /// designs written before it existed had 32.
    #[serde(default = "int32_bits")]
    pub acc_w: usize,
    /// Schedule-ROM entries (tiles); the weight memory holds `tiles * rows` words.
    pub tiles: usize,
    pub layers: usize,
    /// Largest pixel period of any tile (cycles per output pixel).
    pub tp: usize,
    /// Tap-buffer words per array column.
    pub a_d: usize,
    /// Input-buffer words per column (the first layer's input) and which columns have one;
    /// 0 and none when the input lives in the tap buffers.
    pub in_d: usize,
    pub in_cols: Vec<bool>,
    /// First column of the second column segment (0: one segment) and the row-end banks.
    pub split: usize,
    pub banks: usize,
    /// Whether the write merge registers the rows' decoded requests (its level 0,
    /// [`schedule::pipe::write_level0`]): one cycle more from a row's result to the tap
    /// buffers.
    pub write_l0: bool,
    /// Partial-sum words per array row (0: no layer is tiled along groups).
    pub psum_d: usize,
    /// Write-map ROM entries (input channels x phases).
    pub map_entries: usize,
    pub classes: usize,
    /// Pooled channels and the width of their sums.
    pub ch: usize,
    pub pool_w: usize,
    /// The classifier's accumulator and logit width ([`logit_width`], ≤ 32); the logits
    /// leave sign-extended to int32. Designs written before it existed had 32.
    #[serde(default = "int32_bits")]
    pub logit_w: usize,
    /// The head's linear layers (hw/ccc_classifier.v). Designs written before MLP heads
    /// existed have none: [`HwDesign::read`] gives them their one-layer head.
    #[serde(default)]
    pub head: Option<HeadCapacity>,
    /// The head runs on the array ([`crate::quant::QNet::head_layers`]): the last layer's
    /// accumulators are the logits (hw/ccc_logits.v instead of the head unit).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub head_array: bool,
    /// Weight-memory words per block-RAM bank ([`WM_BANK_DEPTH`], a power of two: the
    /// address's high bits pick the bank); each bank has its own image, `weights_bNN.hex`.
    #[serde(default = "wm_bank_depth")]
    pub wm_bank: usize,
    pub widths: Widths,
    pub word: WordLayout,
}

/// What the head unit is built for: its linear layers (the hidden layers of an MLP head,
/// then the classifier), run one after another on `lanes` MACs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadCapacity {
    pub layers: usize,
    /// MAC lanes: outputs computed side by side, one weight each per cycle
    /// ([`crate::schedule::head_lanes`]). Designs written before lanes had one.
    #[serde(default = "crate::schedule::one_lane")]
    pub lanes: usize,
    /// Bits of the loop counters: they hold every layer's input and output count.
    pub hn_w: usize,
    /// Index bits of each half of the hidden ping-pong memory (2^hd_w ≥ widest hidden layer).
    pub hd_w: usize,
    /// Weight words (`lanes` weights each: one per block of `lanes` outputs and input) and
    /// bias words (one per block) of all layers: the ROMs' depths.
    pub weights: usize,
    pub biases: usize,
    /// The classifier's inputs.
    pub cls_in: usize,
}

impl HeadCapacity {
    /// A linear classifier alone: `classes` outputs over `ch` pooled channels.
    pub fn classifier(classes: usize, ch: usize) -> Self {
        HeadCapacity {
            layers: 1,
            lanes: 1,
            hn_w: bits(classes.max(ch)).max(2),
            hd_w: 1,
            weights: classes * ch,
            biases: classes,
            cls_in: ch,
        }
    }

    pub fn of(net: &PackedNet, lanes: usize) -> Self {
        let c = &net.classifier;
        let dims: Vec<(usize, usize)> = c.weights().map(|w| w.dim()).collect();
        // Counters hold every count, and the output index of a last block's lanes.
        let widest = dims
            .iter()
            .map(|&(o, i)| (o.div_ceil(lanes) * lanes).max(i))
            .max()
            .unwrap_or(1);
        let hidden = c.hidden.iter().map(|h| h.weight.nrows()).max().unwrap_or(1);
        HeadCapacity {
            layers: dims.len(),
            lanes,
            hn_w: bits(widest).max(2),
            hd_w: bits(hidden.saturating_sub(1)),
            weights: dims.iter().map(|&(o, i)| o.div_ceil(lanes) * i).sum(),
            biases: dims.iter().map(|&(o, _)| o.div_ceil(lanes)).sum(),
            cls_in: c.weight.ncols(),
        }
    }
}

impl Capacity {
    /// The head unit's capacity (a one-layer head for designs that predate MLP heads).
    pub fn head(&self) -> HeadCapacity {
        self.head
            .clone()
            .unwrap_or_else(|| HeadCapacity::classifier(self.classes, self.ch))
    }

    /// Block-RAM banks of the weight memory (hw/ccc_loader.v).
    pub fn wm_banks(&self) -> usize {
        (self.tiles * self.rows).div_ceil(self.wm_bank)
    }

    /// Cycles the clear after reset takes: one word of every tap and input buffer per
    /// cycle (hw/ccc_core.v, CLR_D).
    pub fn clear_cycles(&self) -> u64 {
        self.a_d.max(self.in_d) as u64
    }
}

/// Bus and counter widths.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Widths {
    /// Tap-buffer word address.
    pub a_w: usize,
    /// Tile index.
    pub t_w: usize,
    /// Weight-memory word address.
    pub wm_aw: usize,
    /// Pixel index within a map.
    pub pix_w: usize,
    pub y_w: usize,
    pub x_w: usize,
    /// Channel / filter index.
    pub n_w: usize,
    /// Write-map ROM address.
    pub map_aw: usize,
    /// Array column index.
    pub col_w: usize,
    /// Byte lane within a tap-buffer word.
    pub lane_w: usize,
    /// Write phases per input pixel.
    pub wpc_w: usize,
    pub tp_w: usize,
    /// A tile's gap before its first slot.
    pub gap_w: usize,
    /// Row-block index, and row count within a tile ([row_w:0] holds 0..=R).
    pub rb_w: usize,
    pub row_w: usize,
    pub layer_w: usize,
    /// Stride mask of the compact tap buffers.
    pub s_w: usize,
    /// log2 pixels per word / log2 α fields of the compact tap buffers.
    pub lk_w: usize,
    /// A tap's signed offsets (dy, dx) in write targets and the write map: as wide as the
    /// model's widest, at most [`TAP_W`]. Offsets are compared and subtracted in every
    /// write target, so each bit costs a carry stage in every row unit and column.
    #[serde(default = "tap_w_max")]
    pub tap_w: usize,
    pub psum_aw: usize,
    pub cls_w: usize,
    pub ch_w: usize,
}

/// Bit fields of a weight-memory word (one array row of one tile), LSB first: per array
/// column `{weight[7:0], selector}` (column c at `c * cell_w`, selector lowest), then per
/// row-end bank `{bias, target}` with its write target `{valid, col, lane, dy, dx,
/// offset}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordLayout {
    /// Word width.
    pub width: usize,
    /// Bits per array column.
    pub cell_w: usize,
    /// Bank b's bias at `bias_lsb + b * bank_w`, its target `target_lsb + b * bank_w`.
    pub bias_lsb: usize,
    pub target_lsb: usize,
    pub bank_w: usize,
    /// Width of the write target field, its valid bit included.
    pub target_w: usize,
    /// Width of the target's signed compact-buffer offset.
    pub offset_w: usize,
}

/// One model's tables and images in a design.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contents {
    /// How the input image is written into the first layer's tap buffers.
    pub input: InputLayout,
    /// Per conv layer: its input's tap-buffer layout and region, its output map.
    pub layers: Vec<LayerPlan>,
    /// Schedule ROM, one row per tile in execution order.
    pub tiles: Vec<TileRow>,
    /// Write-map ROM of the input image.
    pub write_map: Vec<MapEntry>,
    /// Weight memory, in address order: tile by tile, bottom array row first.
    pub weight_words: Vec<WeightWord>,
    /// The controller's delays the schedule was computed with.
    pub timing: Timing,
    pub classifier: ClassifierImage,
}

/// The controller's fixed delays (src/schedule.rs): the next tile's load `load_at` cycles
/// into a tile, the input reopened `reopen` cycles after the first layer's last slot, the
/// classifier started `cls_delay` cycles after the last layer's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub load_at: usize,
    pub reopen: usize,
    pub cls_delay: usize,
}

/// The input stream and the first layer's buffers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLayout {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Write phases per input pixel (taps of one channel that share an array column).
    pub wpc: usize,
    /// How the first layer uses the segments (0 one, 1 two row blocks, 2 even/odd
    /// pixels: its buffer split by pixel parity).
    pub mode: usize,
    /// The first layer's compact buffers (stride mask, packing, read limits, width).
    pub smask: usize,
    pub lk: usize,
    pub la: usize,
    pub lh: usize,
    pub lw: usize,
    pub wo: usize,
}

/// How a layer's input sits in its compact tap buffers: the layer reads output pixel
/// (yo, xo) at position (yo·s, xo·s) of every tap, so only those positions are stored,
/// in output order, `2^lk` consecutive pixels per word (byte lanes `(p mod 2^lk)·α + u`)
/// when α is a power of two below the array's ALPHA. Writers (the input writer for the
/// first layer, the previous layer's rows otherwise) need all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufLayout {
    pub stride: usize,
    pub lk: usize,
    pub la: usize,
    pub words_per_block: usize,
    /// Width of the layer's output: the row length of its grid index.
    pub wo: usize,
    /// One past the last input row / column the layer reads, capped at the map's size:
    /// positions beyond it are never stored.
    pub h_lim: usize,
    pub w_lim: usize,
}

impl BufLayout {
    /// The layout of `l`'s input; `halved`: its buffer is split by pixel parity over two
    /// segments, each holding half the pixels.
    pub fn new(l: &PackedLayer, alpha_max: usize, halved: bool) -> Result<Self> {
        if !l.stride.is_power_of_two() || l.stride > 128 {
            bail!(
                "stride {} is not supported by the RTL (compact tap buffers need a power of two up to 128)",
                l.stride
            );
        }
        let lk = if l.alpha.is_power_of_two() && l.alpha < alpha_max {
            (alpha_max / l.alpha).ilog2() as usize
        } else {
            0
        };
        let la = if lk > 0 { l.alpha.ilog2() as usize } else { 0 };
        let limit =
            |input: usize, output: usize| (output.saturating_sub(1) * l.stride + 1).min(input);
        Ok(Self {
            stride: l.stride,
            lk,
            la,
            words_per_block: l
                .output
                .pixels()
                .div_ceil(if halved { 2 } else { 1 })
                .div_ceil(1 << lk)
                .max(1),
            wo: l.output.w,
            h_lim: limit(l.input.h, l.output.h),
            w_lim: limit(l.input.w, l.output.w),
        })
    }
}

/// One conv layer's place in the design.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerPlan {
    /// First word of the layer's input (its column blocks follow each other,
    /// `layout.words_per_block` words each): in the input buffers for the first layer,
    /// in the tap buffers otherwise.
    pub region: usize,
    pub mode: Mode,
    pub col_blocks: usize,
    pub layout: BufLayout,
    /// Output map (channels, height, width).
    pub dims: [usize; 3],
    /// Physical row i holds the model's output channel `row_perm[i]`.
    pub row_perm: Vec<usize>,
}

/// One schedule-ROM row: the constants of one tile (`ccc_sched`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileRow {
    pub layer: usize,
    /// First / last column block of its row block.
    pub first: bool,
    pub last: bool,
    /// Last conv layer (its rows feed the pool).
    #[serde(rename = "final")]
    pub final_layer: bool,
    /// First tile of the last layer (waits for the pool); the tile after which the input
    /// may take the next image (Schedule::reopen_tile).
    pub ffirst: bool,
    pub reopen: bool,
    /// 0 one segment, 1 two row blocks, 2 even/odd pixels.
    pub mode: usize,
    /// Segment 0's and segment 1's first filter, row block and filter count.
    pub row0: usize,
    pub row0_b: usize,
    pub rblk: usize,
    pub rblk_b: usize,
    pub rows: usize,
    pub rows_b: usize,
    /// The layer's output pixels, and the tile's pixel requests per segment.
    pub pixels: usize,
    pub slots: usize,
    pub wo: usize,
    /// Read word of this column block; its pixels follow, `rkm1 + 1` per word, `rstep`
    /// lanes apart.
    pub rbase: usize,
    pub rkm1: usize,
    pub rstep: usize,
    /// The next layer's compact buffers, where the rows write (stride − 1, packing,
    /// output width, read limits), and whether it reads two row blocks side by side
    /// (each write goes to both segments).
    pub wsmask: usize,
    pub wlk: usize,
    pub wla: usize,
    pub wwo: usize,
    pub wlh: usize,
    pub wlw: usize,
    pub mirror: bool,
    /// Requantizer shift and clamp.
    pub shift: i32,
    pub clamp: i32,
    /// Cycles per slot, segment 1's delay, cycles before the first slot.
    pub tp: usize,
    pub delta: usize,
    pub gap: usize,
    /// A pool layer's tile ([`crate::pack::network::PackedLayer::pool`]): its pixels
    /// carry one running sum (pixel index 0 for the partial-sum memory, `first` only on
    /// the first pixel, `last` only on the last).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pool: bool,
}

/// Where a value goes in a tap buffer (`ccc_shift_target`): the column memory, byte
/// lane, the tap's (dy, dx), and the offset that turns the writer's grid index into the
/// tap's position in its compact buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteTarget {
    pub col: usize,
    pub lane: usize,
    pub dy: i64,
    pub dx: i64,
    pub offset: i64,
}

/// One write-map ROM entry: the first-layer taps of one input channel written in one
/// cycle (one per array column at most).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapEntry {
    pub index: usize,
    pub channel: usize,
    pub phase: usize,
    /// The packed first-layer taps written, in slot order.
    pub taps: Vec<usize>,
    pub slots: Vec<WriteTarget>,
}

/// One weight-memory word: one array row of one tile. Rows past the layer's filters and
/// columns past its groups hold zeros.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightWord {
    /// Per array column.
    pub weights: Vec<i8>,
    pub selectors: Vec<u8>,
    /// Per row-end bank: this row's bias and where its finished activations are written
    /// (none: nothing reads them, or the bank has no filter in this row).
    pub banks: Vec<BankWord>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankWord {
    pub bias: i32,
    pub target: Option<WriteTarget>,
}

/// The head's tables: every linear layer's weights (row-major) and biases, pool side
/// first, the classifier last, and one table row per layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifierImage {
    pub weight: Vec<i8>,
    pub bias: Vec<i32>,
    #[serde(default)]
    pub layers: Vec<HeadLayer>,
}

/// One row of the head's layer table (hw/ccc_classifier.v `L_FILE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadLayer {
    pub inputs: usize,
    pub outputs: usize,
    /// A hidden layer's requantize shift and clamp (0 for the classifier).
    pub shift: u32,
    pub clamp: u32,
}

/// Everything the capacity and the contents are derived from: the layouts and regions.
struct Plan {
    alpha: usize,
    cell: CellParams,
    acc_w: usize,
    /// The mode each layer runs in.
    modes: Vec<Mode>,
    layouts: Vec<BufLayout>,
    region: Vec<usize>,
    a_d: usize,
    in_d: usize,
    in_cols: Vec<bool>,
    split: usize,
    banks: usize,
    widths: Widths,
    word: WordLayout,
    tp: usize,
    in_wpc: usize,
    psum_d: usize,
}

/// The row ends' accumulator width: every partial sum of every row lies within
/// |bias| + Σ|w|·255 (uint8 inputs; bit-plane and column-block partial sums are sums over
/// subsets of the same terms), so a signed word one bit wider than that bound never wraps,
/// and the hardware equals DESIGN §5's int32 arithmetic without carrying 32 bits. At least
/// psum_w + 8 (the eight shifted bit-plane sums, hw/ccc_row_end.v), at most 32 (the
/// quantizer already refused anything wider).
pub fn acc_width(net: &PackedNet, psum_w: usize) -> usize {
    let bound = net
        .layers
        .iter()
        // A pool layer's running sum reads every pixel of its map: as if the inputs
        // were that many times larger.
        .flat_map(|l| {
            let max_in = if l.pool {
                255 * l.output.pixels() as u64
            } else {
                255
            };
            quant::accumulator_bounds(&l.weight, &l.bias, max_in)
        })
        .max()
        .unwrap_or(0);
    (bits(bound as usize) + 1).max(psum_w + 8).min(32)
}

/// The classifier's accumulator width: every partial logit lies within |b_k| +
/// Σ_ch |w[k][ch]|·(2^pool_w − 1), so one bit more than the largest class's bound holds
/// all of them; at least pool_w + 9 (one signed 8-bit x pool_w-bit product), at most 32.
pub fn logit_width(net: &PackedNet) -> usize {
    let c = &net.classifier;
    let max_in = (1u64 << c.in_bits) - 1;
    let mut bound = 0;
    let mut floor = c.in_bits as usize + 9;
    for (i, (w, b)) in c
        .hidden
        .iter()
        .map(|h| (&h.weight, &h.bias))
        .chain([(&c.weight, &c.bias)])
        .enumerate()
    {
        let max_in = if i == 0 { max_in } else { 255 };
        bound = bound.max(quant::accumulator_bounds(w, b, max_in).max().unwrap_or(0));
    }
    // A hidden layer's rounding constant 2^(shift-1) and the rounded sum fit beside the
    // accumulator's value.
    for h in &c.hidden {
        floor = floor.max(h.shift() as usize + 2);
    }
    (bits(bound as usize) + 1).max(floor).min(32)
}

fn mode_code(m: Mode) -> usize {
    match m {
        Mode::Single => 0,
        Mode::Rows => 1,
        Mode::Pixels => 2,
    }
}

/// Width of the gap field: gaps are bounded by what the compiler checks.
const GAP_W: usize = 16;

fn plan(
    net: &PackedNet,
    split: Option<usize>,
    tiles: &[Tile],
    shared_input: bool,
    a: ArrayShape,
) -> Result<Plan> {
    let (r, c) = (a.rows, a.cols);
    if net.layers.is_empty() {
        bail!("{}: RTL needs at least one conv layer", net.name);
    }
    if tiles.is_empty() {
        bail!(
            "{}: the schedule has no tiles (every layer is empty)",
            net.name
        );
    }
    let alpha = net.layers.iter().map(|l| l.alpha).max().unwrap_or(1).max(1);
    let cell = CellParams::for_array(alpha, c);
    let tp = tiles.iter().map(|t| t.tp as usize).max().unwrap_or(8);
    let nl = net.layers.len();
    let modes: Vec<Mode> = (0..nl)
        .map(|l| {
            tiles
                .iter()
                .find(|t| t.layer == l)
                .map_or(Mode::Single, |t| t.mode)
        })
        .collect();
    let layouts = net
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            BufLayout::new(l, alpha, modes[i] == Mode::Pixels)
                .with_context(|| format!("{}: conv layer {i} ({})", net.name, l.weight_name))
        })
        .collect::<Result<Vec<_>>>()?;
    // Every layer's input in a region of the tap buffers, but the first layer's in input
    // buffers of its own unless it shares them (schedule::shared_input).
    let blocks = |l: &PackedLayer| match l.groups_len().div_ceil(c) {
        0 => 1,
        n => n,
    };
    let mut region = vec![0usize; nl];
    let mut a_d = 0usize;
    let mut in_d = 0usize;
    for i in 0..nl {
        let words = blocks(&net.layers[i]) * layouts[i].words_per_block;
        if i == 0 && !shared_input {
            in_d = words;
        } else {
            region[i] = a_d;
            a_d += words;
        }
    }
    let b = split.unwrap_or(0);
    let first = &net.layers[0];
    let g0 = first.groups_len();
    let mut in_cols = vec![false; c];
    for g in 0..if shared_input { 0 } else { g0.min(c) } {
        in_cols[g] = true;
        if modes[0] != Mode::Single && g + b < c {
            in_cols[g + b] = true;
        }
    }
    if g0 > c && !shared_input {
        in_cols.iter_mut().for_each(|v| *v = true);
    }
    let banks = if split.is_some() { 2 } else { 1 };
    let most =
        |f: &dyn Fn(&PackedLayer) -> [usize; 2]| net.layers.iter().flat_map(f).max().unwrap_or(1);
    let pix_w = bits(most(&|l| [l.input.pixels(), l.output.pixels()]));
    let a_w = bits(a_d).max(bits(in_d)).max(pix_w);
    let y_w = bits(most(&|l| [l.input.h, l.output.h]));
    let x_w = bits(most(&|l| [l.input.w, l.output.w]));
    let n_w = bits(most(&|l| [l.input.c, l.output.c]).max(r));
    let col_w = ceil_log2(c).max(1);
    let lane_w = ceil_log2(alpha).max(1);
    let s_w = bits(layouts.iter().map(|b| b.stride - 1).max().unwrap_or(0));
    let lk_w = bits(lane_w);
    let tap_w = net
        .layers
        .iter()
        .flat_map(|l| l.taps.iter().flat_map(|t| [t.dy, t.dx]))
        .map(signed_bits)
        .max()
        .unwrap_or(2)
        .min(TAP_W);
    let in_wpc = input_phases(net, a);
    let in_c = first.input.c;
    let nt = tiles.len();
    // Partial sums are kept per row and output pixel, only for layers tiled along groups.
    // A pool layer's running sum takes word 0, tiled or not.
    let psum_d = (0..nl)
        .filter(|&l| net.layers[l].groups_len() > c || net.layers[l].pool)
        .map(|l| {
            if net.layers[l].pool {
                1
            } else {
                net.layers[l].output.pixels()
            }
        })
        .max()
        .unwrap_or(0);
    let classes = net.classes;
    let ch = net.classifier.pool_input.c;
    let max_rblk = net
        .layers
        .iter()
        .map(|l| l.rows().div_ceil(r))
        .max()
        .unwrap_or(1);
    let widths = Widths {
        a_w,
        t_w: bits(nt - 1),
        wm_aw: bits(nt * r - 1),
        pix_w,
        y_w,
        x_w,
        n_w,
        map_aw: bits((in_c * in_wpc).max(1) - 1),
        col_w,
        lane_w,
        wpc_w: bits(in_wpc),
        tp_w: bits(tp),
        gap_w: GAP_W,
        rb_w: bits(max_rblk.saturating_sub(1)).max(bits(ch.div_ceil(r).saturating_sub(1))),
        row_w: bits(r) - 1,
        layer_w: bits(nl - 1),
        s_w,
        lk_w,
        tap_w,
        psum_aw: bits(psum_d.saturating_sub(1)),
        cls_w: bits(classes),
        ch_w: bits(ch),
    };
    // {valid, col, lane, dy, dx, offset}; the offset is a signed position in the reader's
    // compact buffer, in lanes.
    let offset_w = a_w + lane_w + 1;
    let target_w = 1 + col_w + lane_w + 2 * tap_w + offset_w;
    let cell_w = 8 + cell.sel_w;
    let acc_w = acc_width(net, cell.psum_w);
    let bank_w = acc_w + target_w;
    let word = WordLayout {
        width: c * cell_w + banks * bank_w,
        cell_w,
        bias_lsb: c * cell_w,
        target_lsb: c * cell_w + acc_w,
        bank_w,
        target_w,
        offset_w,
    };
    Ok(Plan {
        alpha,
        cell,
        acc_w,
        modes,
        layouts,
        region,
        a_d,
        in_d,
        in_cols,
        split: b,
        banks,
        widths,
        word,
        tp,
        in_wpc,
        psum_d,
    })
}

fn capacity_of(
    net: &PackedNet,
    a: ArrayShape,
    tiles: &[Tile],
    p: &Plan,
    head_lanes: usize,
) -> Capacity {
    Capacity {
        rows: a.rows,
        cols: a.cols,
        alpha: p.alpha,
        sel_w: p.cell.sel_w,
        psum_w: p.cell.psum_w,
        acc_w: p.acc_w,
        tiles: tiles.len(),
        layers: net.layers.len(),
        tp: p.tp,
        a_d: p.a_d.max(1),
        in_d: p.in_d,
        in_cols: p.in_cols.clone(),
        split: p.split,
        banks: p.banks,
        write_l0: pipe::write_level0(a.rows),
        psum_d: p.psum_d,
        map_entries: net.layers[0].input.c * p.in_wpc,
        classes: net.classes,
        ch: net.classifier.pool_input.c,
        pool_w: net.classifier.in_bits as usize,
        logit_w: logit_width(net),
        head: Some(HeadCapacity::of(net, head_lanes)),
        head_array: net.layers.iter().any(|l| l.pool),
        wm_bank: WM_BANK_DEPTH,
        widths: p.widths.clone(),
        word: p.word.clone(),
    }
}

/// The capacity alone (no tables, no timing): what the fit model needs of `net` on `a`.
pub fn capacity(net: &PackedNet, a: ArrayShape) -> Result<Capacity> {
    let (split, tiles) = schedule::plan(net, a);
    let shared = schedule::shared_input(net, a, split, &tiles);
    let p = plan(net, split, &tiles, shared, a)?;
    let lanes = schedule::head_lanes(net, &tiles);
    Ok(capacity_of(net, a, &tiles, &p, lanes))
}

/// Every value of `net` and `sched` that goes into a fixed-width field of the RTL fits it.
fn check_fields(net: &PackedNet, sched: &Schedule) -> std::result::Result<(), FieldOverflow> {
    let conv = |l: usize| Some(net.layers[l].conv_index);
    for t in &sched.tiles {
        field(conv(t.layer), "tile gap", t.gap as i64, GAP_W, false)?;
        field(
            conv(t.layer),
            "segment delay",
            t.delta as i64,
            DELTA_W,
            false,
        )?;
    }
    field(
        None,
        "input reopen delay",
        sched.reopen_delay as i64,
        DELAY_W,
        false,
    )?;
    field(
        None,
        "classifier delay",
        sched.cls_delay as i64,
        DELAY_W,
        false,
    )?;
    for (l, layer) in net.layers.iter().enumerate() {
        field(
            conv(l),
            "requantize shift",
            layer.shift as i64,
            SHIFT_W,
            true,
        )?;
        field(conv(l), "clamp", layer.clamp_max as i64, CLAMP_W, false)?;
    }
    Ok(())
}

/// The design of `net` under its schedule `sched`. A value too wide for its field is an
/// error whose source is a [`FieldOverflow`].
pub fn build(net: &PackedNet, sched: &Schedule, provenance: Provenance) -> Result<HwDesign> {
    let a = sched.array;
    let p = plan(net, sched.split, &sched.tiles, sched.shared_input, a)?;
    let capacity = capacity_of(net, a, &sched.tiles, &p, sched.head_lanes);
    let c = a.cols;
    let nl = net.layers.len();
    check_fields(net, sched)
        .with_context(|| format!("{}: the RTL cannot hold this model", net.name))?;
    // Shift-on-write target of packed tap `u` of layer `l_reader`.
    let target = |l_reader: usize, u: usize| -> Result<WriteTarget> {
        let reader = &net.layers[l_reader];
        let g = reader.group_of(u);
        let tap = reader.taps[u];
        let at = Some(reader.conv_index);
        field(at, "tap offset dy", tap.dy, TAP_W, true)?;
        field(at, "tap offset dx", tap.dx, TAP_W, true)?;
        let lay = &p.layouts[l_reader];
        let mut base = ((p.region[l_reader] + (g / c) * lay.words_per_block) << lay.lk) as i64;
        // A buffer split by pixel parity halves positions before the base is added, so
        // the offset carries twice the base (ccc_shift_target).
        if p.modes[l_reader] == Mode::Pixels {
            base *= 2;
        }
        let s = lay.stride as i64;
        let offset = base - tap.dy.div_euclid(s) * lay.wo as i64 - tap.dx.div_euclid(s);
        field(at, "write-target offset", offset, p.word.offset_w, true)?;
        Ok(WriteTarget {
            col: g % c,
            lane: u - reader.group_offsets[g],
            dy: tap.dy,
            dx: tap.dx,
            offset,
        })
    };

    // Write map of the input image: each channel's first-layer taps in phases, one tap
    // per column per phase (first fit gives exactly the count the cycle model uses).
    let first = &net.layers[0];
    let in_c = first.input.c;
    let mut phases: Vec<Vec<Vec<(usize, WriteTarget)>>> = vec![Vec::new(); in_c];
    for (ch, us) in first.readers(in_c).iter().enumerate() {
        for &u in us {
            let tg = target(0, u)?;
            let ph = &mut phases[ch];
            match ph
                .iter_mut()
                .find(|p| p.iter().all(|(_, o)| o.col != tg.col))
            {
                Some(p) => p.push((u, tg)),
                None => ph.push(vec![(u, tg)]),
            }
        }
    }
    debug_assert_eq!(
        p.in_wpc,
        phases.iter().map(Vec::len).max().unwrap_or(1).max(1)
    );
    let mut write_map = Vec::new();
    for (ch, ph) in phases.iter().enumerate() {
        for (k, slots) in ph.iter().enumerate() {
            write_map.push(MapEntry {
                index: ch * p.in_wpc + k,
                channel: ch,
                phase: k,
                taps: slots.iter().map(|(u, _)| *u).collect(),
                slots: slots.iter().map(|(_, t)| *t).collect(),
            });
        }
    }

    // Each layer's rows write their channel to the one next-layer tap that reads it (the
    // packer gave every tap its own row: pack::network::replicate_shared_reads).
    let mut row_targets: Vec<Vec<Option<WriteTarget>>> = Vec::with_capacity(nl);
    for l in 0..nl {
        let mut t: Vec<Option<WriteTarget>> = vec![None; net.layers[l].output.c];
        if let Some(reader) = net.layers.get(l + 1) {
            for (n, us) in reader.readers(net.layers[l].output.c).iter().enumerate() {
                match us.as_slice() {
                    [] => {}
                    [u] => t[n] = Some(target(l + 1, *u)?),
                    _ => bail!(
                        "{}: conv layer {} reads row {n} of the layer before through {} taps, but a row writes one (internal: the packer replicates such rows)",
                        net.name,
                        l + 1,
                        us.len()
                    ),
                }
            }
        }
        row_targets.push(t);
    }

    // Schedule rows and weight words.
    let first_final = sched.tiles.iter().position(|t| t.layer + 1 == nl);
    let b = p.split;
    let mut tiles = Vec::new();
    let mut weight_words = Vec::new();
    for (ti, t) in sched.tiles.iter().enumerate() {
        let li = t.layer;
        let l = &net.layers[li];
        let n = l.rows();
        let lay = &p.layouts[li];
        let next = p.layouts.get(li + 1);
        let cb = t.col0 / c;
        let rblk = |row0: usize| row0 / a.rows;
        tiles.push(TileRow {
            layer: li,
            first: t.first,
            last: t.last,
            final_layer: li + 1 == nl,
            ffirst: Some(ti) == first_final,
            reopen: ti == sched.reopen_tile,
            mode: mode_code(t.mode),
            row0: t.row0,
            row0_b: t.row0_b,
            rblk: rblk(t.row0),
            rblk_b: rblk(t.row0_b),
            rows: t.rows,
            rows_b: t.rows_b,
            pixels: l.output.pixels(),
            slots: t.slots,
            wo: l.output.w,
            rbase: p.region[li] + cb * lay.words_per_block,
            rkm1: (1 << lay.lk) - 1,
            rstep: if lay.lk > 0 { l.alpha } else { 0 },
            wsmask: next.map_or(0, |b| b.stride - 1),
            wlk: next.map_or(0, |b| b.lk),
            wla: next.map_or(0, |b| b.la),
            wwo: next.map_or(0, |b| b.wo),
            wlh: next.map_or(0, |b| b.h_lim),
            wlw: next.map_or(0, |b| b.w_lim),
            mirror: p.modes.get(li + 1) == Some(&Mode::Rows),
            shift: l.shift,
            clamp: l.clamp_max,
            tp: t.tp as usize,
            delta: t.delta as usize,
            gap: t.gap as usize,
            pool: l.pool,
        });
        // The segments' (first filter, filters, columns holding the tile's groups): bank 0
        // is segment 0 of a two-segment tile, the last bank the main one.
        let mut banks_of: Vec<Option<(usize, usize)>> = vec![None; p.banks];
        let mut cells_of: Vec<(usize, usize, usize)> = Vec::new(); // (row0, col base, bank)
        match t.mode {
            Mode::Single => {
                banks_of[p.banks - 1] = Some((t.row0, t.rows));
                cells_of.push((t.row0, 0, p.banks - 1));
            }
            Mode::Rows | Mode::Pixels => {
                banks_of[0] = Some((t.row0, t.rows));
                cells_of.push((t.row0, 0, 0));
                if t.rows_b > 0 {
                    banks_of[1] = Some((t.row0_b, t.rows_b));
                    cells_of.push((t.row0_b, b, 1));
                }
            }
        }
        // Bottom row first: the shadow chain shifts down.
        for rr in (0..a.rows).rev() {
            let mut w = WeightWord {
                weights: vec![0; c],
                selectors: vec![0; c],
                banks: vec![BankWord::default(); p.banks],
            };
            for (bank, seg) in banks_of.iter().enumerate() {
                if let Some((row0, rows)) = seg
                    && rr < *rows
                {
                    let row = row0 + rr;
                    w.banks[bank] = BankWord {
                        bias: l.bias[row],
                        target: row_targets[li][row],
                    };
                }
            }
            for &(row0, base, bank) in &cells_of {
                let rows = banks_of[bank].map_or(0, |s| s.1);
                if rr >= rows {
                    continue;
                }
                let row = row0 + rr;
                for cc in 0..t.cols {
                    let g = t.col0 + cc;
                    if g < l.groups_len() && row < n {
                        w.weights[base + cc] = l.weight[[row, g]] as i8;
                        w.selectors[base + cc] = l.selector[[row, g]];
                    }
                }
            }
            weight_words.push(w);
        }
    }

    let layers = net
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerPlan {
            region: p.region[i],
            mode: p.modes[i],
            col_blocks: l.groups_len().div_ceil(c).max(1),
            layout: p.layouts[i],
            dims: [l.output.c, l.output.h, l.output.w],
            row_perm: l.row_perm.clone(),
        })
        .collect();
    let lay0 = &p.layouts[0];
    let cls = &net.classifier;
    let contents = Contents {
        input: InputLayout {
            c: in_c,
            h: first.input.h,
            w: first.input.w,
            wpc: p.in_wpc,
            mode: mode_code(p.modes[0]),
            smask: lay0.stride - 1,
            lk: lay0.lk,
            la: lay0.la,
            lh: lay0.h_lim,
            lw: lay0.w_lim,
            wo: lay0.wo,
        },
        layers,
        tiles,
        write_map,
        weight_words,
        timing: Timing {
            load_at: pipe::load_at(a.rows, a.cols) as usize,
            reopen: sched.reopen_delay as usize,
            cls_delay: sched.cls_delay as usize,
        },
        classifier: ClassifierImage {
            weight: cls
                .weights()
                .flat_map(|w| w.iter().map(|&v| v as i8))
                .collect(),
            bias: cls
                .hidden
                .iter()
                .flat_map(|h| h.bias.iter().copied())
                .chain(cls.bias.iter().copied())
                .collect(),
            layers: cls
                .hidden
                .iter()
                .map(|h| HeadLayer {
                    inputs: h.weight.ncols(),
                    outputs: h.weight.nrows(),
                    shift: h.shift() as u32,
                    clamp: h.clamp_max as u32,
                })
                .chain([HeadLayer {
                    inputs: cls.weight.ncols(),
                    outputs: cls.weight.nrows(),
                    shift: 0,
                    clamp: 0,
                }])
                .collect(),
        },
    };
    Ok(HwDesign {
        format: FORMAT.to_string(),
        generator: format!("ccc {}", env!("CARGO_PKG_VERSION")),
        provenance,
        capacity,
        contents,
    })
}

impl HwDesign {
    /// Reads a design written by `ccc compile` (OUT/rtl/rtl.json).
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "reading {} (compiled with --no-rtl, or not a `ccc compile` output?)",
                path.display()
            )
        })?;
        let mut d: HwDesign = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        // Written before MLP heads: the classifier is the head's one layer.
        let cap = &mut d.capacity;
        let cls = &mut d.contents.classifier;
        if cap.head.is_none() {
            cap.head = Some(HeadCapacity::classifier(cap.classes, cap.ch));
        }
        if cls.layers.is_empty() {
            cls.layers.push(HeadLayer {
                inputs: cap.ch,
                outputs: cap.classes,
                shift: 0,
                clamp: 0,
            });
        }
        if d.format != FORMAT {
            bail!(
                "{}: design format `{}`, this ccc reads `{FORMAT}` (recompile the model)",
                path.display(),
                d.format
            );
        }
        Ok(d)
    }

    /// Bytes per input image (one uint8 per beat).
    pub fn image_bytes(&self) -> usize {
        let i = &self.contents.input;
        i.c * i.h * i.w
    }
}

#[cfg(test)]
mod tests {
    use super::signed_bits;

    #[test]
    fn signed_bits_is_the_narrowest_twos_complement_field() {
        for (v, n) in [
            (0, 2),
            (1, 2),
            (-1, 2),
            (-2, 2),
            (2, 3),
            (-3, 3),
            (127, 8),
            (-128, 8),
            (128, 9),
            (-129, 9),
        ] {
            assert_eq!(signed_bits(v), n, "{v}");
            let half = 1i64 << (n - 1);
            assert!((-half..half).contains(&v), "{v} in {n} bits");
        }
    }
}
