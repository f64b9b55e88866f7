//! Scheduling: maps each packed layer onto the R x C array as tiles, in the order the
//! controller runs them, and computes their exact timing — every idle cycle the
//! controller waits before a tile is decided here and stored in the schedule ROM.
//!
//! **Tiles.** Array rows hold filters, array columns hold groups. A layer whose groups
//! fill at most half the columns can run on two *column segments* (columns [0, B) and
//! [B, C), each with its own row ends): `Rows` puts two row blocks side by side over the
//! same pixels (the writing layer writes each value into both halves), `Pixels` (first
//! layer only, fed by the input writer) runs even and odd pixels side by side on the same
//! weights. Otherwise a tile is `Single`: one row block and one column block (vertical
//! tiling when G > C, partial sums kept per row between column blocks).
//!
//! **Timing** (the RTL in `hw/`, exact; `ccc simulate` measures it). A tile streams
//! `slots` pixel requests, one every `tp` cycles (8: one 8-bit MAC per cell every 8
//! cycles). Request k of segment s enters the segment's first column at
//! T + δ_s + k·tp (T = the tile's start, δ_0 = 0, δ_1 = the tile's `delta`). Tiles follow
//! each other back to back, across layers and images, unless something forbids it; then
//! the tile waits `gap` cycles after the previous tile's last slot:
//! * the weights: the next tile's shadow registers load after the current tile's swap has
//!   passed every cell, R words at one per cycle ([`pipe::LOAD_AT`], [`pipe::load_gap`]);
//! * data: every word a request reads must have been written by the previous layer at an
//!   earlier clock edge (write edge: T + δ + k·tp + w + [`pipe::write`] + r for row r of a
//!   segment of width w), and the next image may overwrite a word only after the last read
//!   of it ([`pipe`] has every latency);
//! * partial sums between column blocks, the order of requests at the segment boundary
//!   column, and the write ports: no two rows may write one column memory on one edge.
//!
//! The first layer also waits for its image (the input stream, overlapped with the
//! previous image's later layers) and the last layer for the pool (the classifier of the
//! previous image runs beside the array). `interval` is the steady-state cycles between
//! images, `latency` the first image's cycles from its first input beat to its class.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::lower::Tap;
use crate::pack::network::PackedNet;

/// Activation width on the bit-serial lines.
pub const ACT_BITS: u64 = 8;

/// Pipeline latencies of the emitted RTL (`hw/`), in cycles. T is the cycle a request is
/// presented at its segment's first column; r is the array row; w is the width of the
/// segment whose row ends take the result. The RTL's localparams carry the same numbers.
pub mod pipe {
    /// Edge (end of cycle T + w + write(R) + r) at which a finished activation is in the
    /// next layer's tap buffer (4-stage row end, row-unit register, write merge: two
    /// stages, three with level 0).
    pub fn write(rows: usize) -> u64 {
        16 + u64::from(write_level0(rows))
    }
    /// Whether the write merge registers the rows' decoded requests first (its level 0,
    /// `hw/ccc_write_merge.v` decides the same way): arrays of at least one full 8-row
    /// write group, where the group buses cross the die; on smaller ones the stage only
    /// costs flip-flops (iCE40HX8K at 4x4 is at 92% of its logic cells).
    pub fn write_level0(rows: usize) -> bool {
        rows >= 8
    }
    /// Partial-sum memory: read at the edge ending T + w + PSUM_READ + r (bit-plane 0),
    /// written at the edge ending T + w + PSUM_WRITE + r.
    pub const PSUM_READ: u64 = 3;
    pub const PSUM_WRITE: u64 = 12;
    /// A pool layer's pixels carry one running sum through partial-sum word 0, so each
    /// pixel's read must come after the previous pixel's write: a slot of at least
    /// PSUM_WRITE − PSUM_READ + 1 cycles.
    pub const POOL_TP: u64 = PSUM_WRITE - PSUM_READ + 1;
    /// Pool add at the edge ending T + w + POOL + r.
    pub const POOL: u64 = 16;
    /// Row outputs (the debug port) valid during T + w + OUT + r.
    pub const OUT: u64 = 14;
    /// The next tile's load starts LOAD_AT cycles after a tile's start plus R + C: the
    /// swap token has then passed every cell and row end.
    /// Covers segment 1's delay (up to 7) on the narrowest segments.
    pub const LOAD_MARGIN: u64 = 10;
    /// Cycles between a tile's start and the next tile's start for its R weight words to
    /// be in the shadow registers: LOAD_AT + 3 (read latency 2: the bank's read and its
    /// register; the per-column enable register) + R words.
    pub fn load_gap(rows: usize, cols: usize) -> u64 {
        load_at(rows, cols) + 3 + rows as u64
    }
    pub fn load_at(rows: usize, cols: usize) -> u64 {
        (rows + cols) as u64 + LOAD_MARGIN
    }
    /// One column's feed needs this many cycles between two requests.
    pub const FEED: u64 = 8;
    /// The input writer: an image of `beats` beats in `phases` write phases each takes
    /// beats * phases + INPUT_EXTRA cycles from the first beat to `full`.
    pub const INPUT_EXTRA: u64 = 6;
    /// The classifier's MAC loop: ⌈classes / lanes⌉ * channels + CLS_MAC_EXTRA cycles from its start
    /// to the pool being free for the next image; then classes + 1 output words and
    /// CLS_OUT_EXTRA cycles to `done` (output always ready: the output skid stage).
    pub const CLS_MAC_EXTRA: u64 = 9;
    pub const CLS_OUT_EXTRA: u64 = 1;
    /// With the head on the array (hw/ccc_logits.v): LOGITS_EXTRA cycles from the start to
    /// the first logit word, and the class registers are free LOGITS_FREE cycles after it.
    pub const LOGITS_EXTRA: u64 = 4;
    pub const LOGITS_FREE: u64 = 2;
    /// An MLP head's hidden layer ends HEAD_LAYER_GAP cycles after its last MAC read
    /// (the pipeline's drain and the requantized write) before the next layer reads.
    pub const HEAD_LAYER_GAP: u64 = 7;
    /// The head can take its next start HEAD_BUSY_LESS cycles before its last output word
    /// (output always ready): `busy` drops with the last word in the output skid stage.
    pub const HEAD_BUSY_LESS: u64 = 3;
    /// The input opens REOPEN_EXTRA cycles after its reopen delay has run out.
    pub const REOPEN_EXTRA: u64 = 2;
    /// The input port's skid stage: its ready rises the cycle after reset and each beat
    /// spends a cycle in it, so the first image's first beat reaches the writer
    /// INPUT_SKID cycles late (later images' first beats wait in it, already taken).
    pub const INPUT_SKID: u64 = 2;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayShape {
    pub rows: usize,
    pub cols: usize,
}

/// How a tile uses the array's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// All C columns, one row block, one column block.
    Single,
    /// Two segments, two row blocks (the second may be absent), same pixels.
    Rows,
    /// Two segments, one row block, even pixels on segment 0 and odd on segment 1.
    Pixels,
}

/// One tile: a weight load and a stream of pixel requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tile {
    pub layer: usize,
    pub mode: Mode,
    /// Segment 0's filters [row0, row0 + rows); segment 1's [row0_b, row0_b + rows_b)
    /// (`Pixels`: the same filters; `Single`: none).
    pub row0: usize,
    pub rows: usize,
    pub row0_b: usize,
    pub rows_b: usize,
    /// Groups [col0, col0 + cols) of the layer, in every segment.
    pub col0: usize,
    pub cols: usize,
    /// First / last column block of its row block (bias / requantize).
    pub first: bool,
    pub last: bool,
    /// Pixel requests per segment.
    pub slots: usize,
    /// Cycles per slot (>= 8).
    pub tp: u64,
    /// Segment 1's requests trail segment 0's by this many cycles.
    pub delta: u64,
    /// Idle cycles between the previous tile's last slot and this tile's first.
    pub gap: u64,
}

impl Tile {
    /// Segments in use (1 or 2).
    pub fn segments(&self) -> usize {
        if self.mode == Mode::Single { 1 } else { 2 }
    }

    /// Cycles from the start to the end of the last slot.
    pub fn stream_cycles(&self) -> u64 {
        self.slots as u64 * self.tp
    }
}

/// Cell-cycle accounting of the interval (docs/DESIGN.md §11): `rows * cols * cycles`
/// equals `8 * macs` plus every loss below, exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Cycles of the span (a layer's: from the end of the previous layer's last slot to the
    /// end of its own; the network's: the interval).
    pub cycles: u64,
    /// Nonzero MACs done in the span.
    pub macs: u64,
    /// Losses in cell-cycles.
    pub fill_drain: u64,
    pub idle_columns: u64,
    pub idle_rows: u64,
    pub zero_weights: u64,
    pub period_stretch: u64,
    /// MACs of rows that copy another row's filter so that its value reaches one more
    /// next-layer tap (a KxK conv after the first layer; `PackedLayer::copy`).
    #[serde(default)]
    pub replication: u64,
    /// Cycles waiting for the pool minus the classifier's MACs (which run beside the
    /// array, so this can be negative).
    pub pool_classifier: i64,
    pub memory_clearing: u64,
    pub waiting_io: u64,
}

impl Breakdown {
    /// Σ losses (cell-cycles).
    pub fn losses(&self) -> i64 {
        (self.fill_drain
            + self.idle_columns
            + self.idle_rows
            + self.zero_weights
            + self.period_stretch
            + self.replication
            + self.memory_clearing
            + self.waiting_io) as i64
            + self.pool_classifier
    }

    /// `part` (cell-cycles) as a share of the span's cell-cycles (0 for an empty span).
    pub fn share(&self, part: f64, a: ArrayShape) -> f64 {
        let all = (a.rows * a.cols) as f64 * self.cycles as f64;
        if all == 0.0 { 0.0 } else { part / all }
    }

    /// MAC efficiency: useful cell-cycles over all of them.
    pub fn efficiency(&self, a: ArrayShape) -> f64 {
        self.share((ACT_BITS * self.macs) as f64, a)
    }

    /// Whether cell-cycles = 8 · MACs + Σ losses holds.
    pub fn adds_up(&self, a: ArrayShape) -> bool {
        (a.rows * a.cols) as i64 * self.cycles as i64
            == (ACT_BITS * self.macs) as i64 + self.losses()
    }

    fn add(&mut self, o: &Breakdown) {
        self.cycles += o.cycles;
        self.macs += o.macs;
        self.fill_drain += o.fill_drain;
        self.idle_columns += o.idle_columns;
        self.idle_rows += o.idle_rows;
        self.zero_weights += o.zero_weights;
        self.period_stretch += o.period_stretch;
        self.replication += o.replication;
        self.pool_classifier += o.pool_classifier;
        self.memory_clearing += o.memory_clearing;
        self.waiting_io += o.waiting_io;
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerSchedule {
    pub conv_index: usize,
    pub pixels: usize,
    pub row_blocks: usize,
    pub col_blocks: usize,
    pub mode: Mode,
    /// Its tiles: `Schedule::tiles[first_tile .. first_tile + tiles]`.
    pub first_tile: usize,
    pub tiles: usize,
    /// Steady-state span (the gap before its first tile included).
    pub cycles: u64,
    pub breakdown: Breakdown,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Schedule {
    pub array: ArrayShape,
    /// First column of segment 1 when any tile uses two segments.
    pub split: Option<usize>,
    pub tiles: Vec<Tile>,
    pub layers: Vec<LayerSchedule>,
    /// One image through the input stream (first beat to `full`).
    pub input_cycles: u64,
    /// The classifier: MAC loop plus output (beside the array).
    pub classifier_cycles: u64,
    /// MAC lanes of the head unit ([`head_lanes`]); schedules written before lanes had 1.
    #[serde(default = "one_lane")]
    pub head_lanes: usize,
    /// Whether the first layer's input lives in the tap buffers (written through their
    /// write ports, so the next image streams in only once the last layer that writes
    /// them is done) rather than in input buffers of its own (it streams in as soon as
    /// the first layer has read the image).
    pub shared_input: bool,
    /// The tile after whose last slot the input may take the next image, and the cycles
    /// from there (its last read or write of the input's memory has passed); the cycles
    /// from the last layer's last slot to the classifier's start (its last pool add has
    /// passed): the RTL's REOPEN and CLS_DLY.
    pub reopen_tile: usize,
    pub reopen_delay: u64,
    pub cls_delay: u64,
    /// Steady state: cycles between the starts of consecutive images.
    pub interval: u64,
    /// The first image after reset: first input beat (offered the cycle after reset) to
    /// its class leaving, the memory clearing after reset included.
    pub latency: u64,
    /// Cycles after reset in which the accelerator clears its buffers (every word its
    /// first reads could find unwritten) and keeps its input closed; set by
    /// [`Schedule::set_clear_cycles`] once the buffers' depth is known.
    #[serde(default)]
    pub clear_cycles: u64,
    /// The whole network's accounting of the interval.
    pub breakdown: Breakdown,
}

/// Number of tiles for an N x G packed matrix (one segment).
pub fn tile_count(n: usize, g: usize, a: ArrayShape) -> usize {
    n.div_ceil(a.rows) * g.div_ceil(a.cols)
}

/// Cycles to write one input pixel: the most first-layer taps reading one input channel
/// that share an array column (at least 1).
pub fn input_phases(net: &PackedNet, a: ArrayShape) -> usize {
    let first = &net.layers[0];
    first
        .readers(first.input.c)
        .iter()
        .map(|us| {
            let mut per_column = vec![0usize; a.cols];
            for &u in us {
                per_column[first.group_of(u) % a.cols] += 1;
            }
            per_column.into_iter().max().unwrap_or(0)
        })
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Where a value the writing layer produced at its output pixel (y, x) lands in a reader
/// tap: the reader's output pixel q (in its output order) that reads it, if any. The
/// reader (stride s, output `ho` x `wo`) reads input (yo·s + dy, xo·s + dx).
pub fn reader_pixel(y: usize, x: usize, tap: Tap, s: usize, ho: usize, wo: usize) -> Option<usize> {
    let (yy, xx) = (y as i64 - tap.dy, x as i64 - tap.dx);
    let s = s as i64;
    if yy < 0 || xx < 0 || yy % s != 0 || xx % s != 0 {
        return None;
    }
    let (yo, xo) = ((yy / s) as usize, (xx / s) as usize);
    (yo < ho && xo < wo).then_some(yo * wo + xo)
}

/// Per layer: which plan (mode) and the resulting tiles, before timing.
fn plan_layer(net: &PackedNet, li: usize, a: ArrayShape, split: Option<usize>) -> Vec<Tile> {
    let l = &net.layers[li];
    let (n, g, p) = (l.rows(), l.groups_len(), l.output.pixels());
    let (rb, cb) = (n.div_ceil(a.rows), g.div_ceil(a.cols));
    let single = || {
        let mut tiles = Vec::with_capacity(rb * cb);
        for r in 0..rb {
            for c in 0..cb {
                let (row0, col0) = (r * a.rows, c * a.cols);
                tiles.push(Tile {
                    layer: li,
                    mode: Mode::Single,
                    row0,
                    rows: a.rows.min(n - row0),
                    row0_b: 0,
                    rows_b: 0,
                    col0,
                    cols: a.cols.min(g - col0),
                    first: c == 0,
                    last: c + 1 == cb,
                    slots: p,
                    tp: ACT_BITS,
                    delta: 0,
                    gap: 0,
                });
            }
        }
        tiles
    };
    let Some(b) = split else {
        return single();
    };
    let fits = g <= b.min(a.cols - b);
    let rows_mode = fits && rb >= 2;
    // Pixels mode splits the first layer's input buffer by pixel parity, which only the
    // input writer does.
    let pixels_mode = fits && li == 0 && p >= 2;
    let single_slots = rb * p;
    let rows_slots = rb.div_ceil(2) * p;
    let pixel_slots = rb * p.div_ceil(2);
    let best = [
        (single_slots, Mode::Single),
        (if rows_mode { rows_slots } else { usize::MAX }, Mode::Rows),
        (
            if pixels_mode { pixel_slots } else { usize::MAX },
            Mode::Pixels,
        ),
    ]
    .into_iter()
    .min_by_key(|(s, _)| *s)
    .map(|(_, m)| m)
    .unwrap_or(Mode::Single);
    match best {
        Mode::Single => single(),
        Mode::Rows => (0..rb.div_ceil(2))
            .map(|t| {
                let (r0, r1) = (2 * t * a.rows, (2 * t + 1) * a.rows);
                Tile {
                    layer: li,
                    mode: Mode::Rows,
                    row0: r0,
                    rows: a.rows.min(n - r0),
                    row0_b: r1.min(n),
                    rows_b: if r1 < n { a.rows.min(n - r1) } else { 0 },
                    col0: 0,
                    cols: g,
                    first: true,
                    last: true,
                    slots: p,
                    tp: ACT_BITS,
                    delta: 0,
                    gap: 0,
                }
            })
            .collect(),
        Mode::Pixels => (0..rb)
            .map(|r| {
                let row0 = r * a.rows;
                let rows = a.rows.min(n - row0);
                Tile {
                    layer: li,
                    mode: Mode::Pixels,
                    row0,
                    rows,
                    row0_b: row0,
                    rows_b: rows,
                    col0: 0,
                    cols: g,
                    first: true,
                    last: true,
                    slots: p.div_ceil(2),
                    tp: ACT_BITS,
                    delta: 0,
                    gap: 0,
                }
            })
            .collect(),
    }
}

/// The segment boundary for `a` when some layer of `net` would gain from two segments.
fn choose_split(net: &PackedNet, a: ArrayShape) -> Option<usize> {
    if a.cols < 2 {
        return None;
    }
    let b = a.cols / 2;
    let cost = |split: Option<usize>| -> usize {
        (0..net.layers.len())
            .flat_map(|li| plan_layer(net, li, a, split))
            .map(|t| t.slots)
            .sum()
    };
    (cost(Some(b)) < cost(None)).then_some(b)
}

/// For each physical output channel of layer `l`: the next layer's packed taps that read
/// it (empty for the last layer, which feeds the pool).
fn next_readers(net: &PackedNet, l: usize) -> Vec<Vec<usize>> {
    match net.layers.get(l + 1) {
        Some(next) => next.readers(net.layers[l].output.c),
        None => vec![Vec::new(); net.layers[l].output.c],
    }
}

/// The rows of one segment of a tile as the timing sees them.
struct SegView {
    /// Extra delay of its requests (δ) and width.
    delta: u64,
    width: usize,
    row0: usize,
    rows: usize,
    /// Output pixel of slot k: first + k * step (None past the layer's pixels).
    first_pixel: usize,
    step: usize,
}

fn seg_views(t: &Tile, a: ArrayShape, split: Option<usize>) -> Vec<SegView> {
    let b = split.unwrap_or(a.cols);
    match t.mode {
        Mode::Single => vec![SegView {
            delta: 0,
            width: a.cols,
            row0: t.row0,
            rows: t.rows,
            first_pixel: 0,
            step: 1,
        }],
        Mode::Rows | Mode::Pixels => {
            let pix = t.mode == Mode::Pixels;
            vec![
                SegView {
                    delta: 0,
                    width: b,
                    row0: t.row0,
                    rows: t.rows,
                    first_pixel: 0,
                    step: if pix { 2 } else { 1 },
                },
                SegView {
                    delta: t.delta,
                    width: a.cols - b,
                    row0: t.row0_b,
                    rows: t.rows_b,
                    first_pixel: usize::from(pix),
                    step: if pix { 2 } else { 1 },
                },
            ]
        }
    }
}

/// Everything the timing simulation needs about the network, precomputed.
struct Geometry {
    /// Per layer: per physical output channel, the (reader tap column, reader tap) pairs.
    writes: Vec<Vec<Vec<(usize, Tap)>>>,
    /// Per layer: whether its readers (the next layer) run `Rows` (mirrored writes).
    mirror: Vec<bool>,
}

fn geometry(net: &PackedNet, tiles: &[Tile], a: ArrayShape) -> Geometry {
    let nl = net.layers.len();
    let mode_of = |l: usize| tiles.iter().find(|t| t.layer == l).map(|t| t.mode);
    let mut writes = Vec::with_capacity(nl);
    let mut mirror = Vec::with_capacity(nl);
    for l in 0..nl {
        let readers = next_readers(net, l);
        let w: Vec<Vec<(usize, Tap)>> = match net.layers.get(l + 1) {
            Some(next) => readers
                .iter()
                .map(|us| {
                    us.iter()
                        .map(|&u| (next.group_of(u) % a.cols, next.taps[u]))
                        .collect()
                })
                .collect(),
            None => vec![Vec::new(); readers.len()],
        };
        writes.push(w);
        mirror.push(mode_of(l + 1) == Some(Mode::Rows));
    }
    Geometry { writes, mirror }
}

/// The timing of every tile of `images` consecutive images.
struct Timeline {
    /// (image, tile) -> start T.
    start: Vec<Vec<u64>>,
    /// (image) -> the head's start (after its pool is complete and the previous image's
    /// head has finished).
    cls_start: Vec<u64>,
    /// (image) -> input full / pool free waits that bound the first / final tile.
    input_wait: Vec<u64>,
    pool_wait: Vec<u64>,
}

/// What the simulation found the gaps must at least be.
struct Needs {
    gaps: Vec<u64>,
    conflicts: bool,
}

struct Sim<'a> {
    net: &'a PackedNet,
    a: ArrayShape,
    split: Option<usize>,
    geo: Geometry,
    input_cycles: u64,
    reopen_tile: usize,
    reopen_delay: u64,
    cls_delay: u64,
    cls_mac: u64,
    /// The head's start to its next possible start ([`head_cycles`]).
    cls_busy: u64,
    /// Cycles after reset during which the memories are cleared and the input is closed.
    clear_cycles: u64,
}

impl Sim<'_> {
    /// Starts of every tile of `images` images with `tiles`' gaps; `external` adds the
    /// input and pool waits.
    fn timeline(&self, tiles: &[Tile], images: usize, external: bool) -> Timeline {
        let nl = self.net.layers.len();
        let last_first = tiles.iter().position(|t| t.layer + 1 == nl).unwrap_or(0);
        let mut start = vec![vec![0u64; tiles.len()]; images];
        let mut input_wait = vec![0; images];
        let mut pool_wait = vec![0; images];
        let mut end = 0u64; // end of the previous tile's last slot
        // Image i's input is full at: the input opens after reset and the clearing
        // (image 0) or when the previous image's first layer has read its last word.
        let mut input_open = pipe::INPUT_SKID.max(self.clear_cycles);
        let mut pool_free = 0u64;
        let mut cls_free = 0u64;
        let mut cls_start = vec![0; images];
        for (i, st) in start.iter_mut().enumerate() {
            let full = input_open + self.input_cycles;
            for (ti, t) in tiles.iter().enumerate() {
                let mut s = end + t.gap;
                if i == 0 && ti == 0 {
                    // After reset the controller takes the first image as soon as it is in.
                    s = full;
                }
                if external {
                    if ti == 0 && i > 0 && full > s {
                        input_wait[i] = full - s;
                        s = full;
                    }
                    if ti == last_first && i > 0 && pool_free > s {
                        pool_wait[i] = pool_free - s;
                        s = pool_free;
                    }
                }
                st[ti] = s;
                end = s + t.stream_cycles();
                if ti == self.reopen_tile {
                    input_open = end + self.reopen_delay + pipe::REOPEN_EXTRA;
                }
            }
            // The head starts once the pool is complete and it has finished the
            // previous image (an MLP head may take longer than the layers).
            let cs = (end + self.cls_delay).max(cls_free);
            cls_start[i] = cs;
            pool_free = cs + self.cls_mac;
            cls_free = cs + self.cls_busy;
        }
        Timeline {
            start,
            cls_start,
            input_wait,
            pool_wait,
        }
    }

    /// Checks every constraint on `tl`; returns the gaps that would satisfy the bounds
    /// found (never below the current ones) and whether a write-port conflict remains.
    fn needs(&self, tiles: &[Tile], tl: &Timeline) -> Needs {
        let a = self.a;
        let net = self.net;
        let nl = net.layers.len();
        let mut gaps: Vec<u64> = tiles.iter().map(|t| t.gap).collect();
        let load_gap = pipe::load_gap(a.rows, a.cols);
        // (column, reader pixel) -> last write edge, per (image, reader layer); and the
        // last read edge of each word, per (image, layer).
        let images = tl.start.len();
        let mut last_write: Vec<Vec<HashMap<(usize, usize), u64>>> =
            vec![vec![HashMap::new(); nl]; images];
        let mut last_read: Vec<Vec<HashMap<(usize, usize), u64>>> =
            vec![vec![HashMap::new(); nl]; images];
        let mut port: HashMap<(u64, usize), u32> = HashMap::new();
        let mut conflicts = false;
        for (i, st) in tl.start.iter().enumerate() {
            for (ti, t) in tiles.iter().enumerate() {
                let l = &net.layers[t.layer];
                let segs = seg_views(t, a, self.split);
                let ts = st[ti];
                let prev_end = if ti > 0 {
                    st[ti - 1] + tiles[ti - 1].stream_cycles()
                } else if i > 0 {
                    tl.start[i - 1][tiles.len() - 1] + tiles[tiles.len() - 1].stream_cycles()
                } else {
                    0
                };
                let bounded = i > 0 || ti > 0;
                let need = |gaps: &mut Vec<u64>, bound: u64| {
                    if bounded && bound > prev_end {
                        let g = bound - prev_end;
                        if g > gaps[ti] {
                            gaps[ti] = g;
                        }
                    }
                };
                // Weights of this tile were loaded during the previous tile.
                if ti > 0 || i > 0 {
                    let prev_start = if ti > 0 {
                        st[ti - 1]
                    } else {
                        tl.start[i - 1][tiles.len() - 1]
                    };
                    need(&mut gaps, prev_start + load_gap);
                }
                // Requests at the boundary column keep their order.
                if let Some(b) = self.split {
                    let prev = if ti > 0 {
                        Some((&tiles[ti - 1], st[ti - 1]))
                    } else if i > 0 {
                        Some((&tiles[tiles.len() - 1], tl.start[i - 1][tiles.len() - 1]))
                    } else {
                        None
                    };
                    if let Some((p, ps)) = prev {
                        let last_k = p.slots.saturating_sub(1) as u64 * p.tp;
                        // When the last request reaches column b, and when the first of
                        // this tile does.
                        let p_at_b = ps
                            + last_k
                            + if p.mode == Mode::Single {
                                b as u64
                            } else {
                                p.delta
                            };
                        let t_at_b_off = if t.mode == Mode::Single {
                            b as u64
                        } else {
                            t.delta
                        };
                        need(&mut gaps, (p_at_b + pipe::FEED).saturating_sub(t_at_b_off));
                    }
                }
                // Partial sums: the previous column block of this row block wrote them.
                if !t.first && ti > 0 {
                    need(
                        &mut gaps,
                        st[ti - 1] + pipe::PSUM_WRITE - pipe::PSUM_READ + 1,
                    );
                }
                // Reads: every (column, pixel) this tile reads.
                if t.layer > 0 {
                    let reads_from = &last_write[i][t.layer];
                    for sv in &segs {
                        for k in 0..t.slots {
                            let q = sv.first_pixel + k * sv.step;
                            if q >= l.output.pixels() {
                                continue;
                            }
                            let tk = sv.delta + k as u64 * t.tp;
                            for gi in 0..t.cols {
                                let g = t.col0 + gi;
                                let offset = tk + gi as u64;
                                if let Some(&w) = reads_from.get(&(g, q)) {
                                    // Read edge ts + offset must be after the write edge w.
                                    need(&mut gaps, (w + 1).saturating_sub(offset));
                                }
                                let read_edge = ts + offset;
                                let e = last_read[i][t.layer].entry((g, q)).or_insert(0);
                                *e = (*e).max(read_edge);
                            }
                        }
                    }
                }
                // Writes into the next layer's buffers.
                if t.layer + 1 < nl {
                    let next = &net.layers[t.layer + 1];
                    let mirror = self.geo.mirror[t.layer];
                    let b = self.split.unwrap_or(a.cols);
                    for sv in &segs {
                        for k in 0..t.slots {
                            let p = sv.first_pixel + k * sv.step;
                            if p >= l.output.pixels() {
                                continue;
                            }
                            let (y, x) = (p / l.output.w, p % l.output.w);
                            for r in 0..sv.rows {
                                let ch = sv.row0 + r;
                                let edge = ts
                                    + sv.delta
                                    + k as u64 * t.tp
                                    + sv.width as u64
                                    + pipe::write(a.rows)
                                    + r as u64;
                                let targets = &self.geo.writes[t.layer][ch];
                                // One write per row per pixel: the hardware writes one tap.
                                if let Some(&(g, tap)) = targets.first() {
                                    let Some(q) = reader_pixel(
                                        y,
                                        x,
                                        tap,
                                        next.stride,
                                        next.output.h,
                                        next.output.w,
                                    ) else {
                                        continue;
                                    };
                                    let e = last_write[i][t.layer + 1].entry((g, q)).or_insert(0);
                                    *e = (*e).max(edge);
                                    // Write-after-read: the previous image's reads.
                                    if i > 0
                                        && let Some(&rd) =
                                            last_read[i - 1][t.layer + 1].get(&(g, q))
                                    {
                                        let off = edge - ts;
                                        need(&mut gaps, (rd + 1).saturating_sub(off));
                                    }
                                    let col = g % a.cols;
                                    let mut cols = vec![col];
                                    if mirror {
                                        cols.push(col + b);
                                    }
                                    for c in cols {
                                        let n = port.entry((edge, c)).or_insert(0);
                                        *n += 1;
                                        if *n > 1 {
                                            conflicts = true;
                                            // Shift this tile: its writes move past the
                                            // other's.
                                            if gaps[ti] == tiles[ti].gap {
                                                gaps[ti] += 1;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Needs { gaps, conflicts }
    }
}

/// Smallest period ≥ 8 and segment delay for which the rows of one tile that finish on
/// the same cycle write different column memories (rows of one segment finish one cycle
/// apart, so rows r and r + tp collide; the two segments' rows collide across). `None`
/// when no delay the controller can hold (3 bits) separates a two-segment tile's rows:
/// the segments' rows overlap in time whatever the period, so the tile must run `Single`.
/// A `Single` tile always has one (the period reaches its row count).
fn period_and_delta(
    net: &PackedNet,
    t: &Tile,
    a: ArrayShape,
    split: Option<usize>,
    geo: &Geometry,
) -> Option<(u64, u64)> {
    let l = t.layer;
    let final_layer = l + 1 == net.layers.len();
    let col_of = |ch: usize| -> Option<usize> { geo.writes[l].get(ch)?.first().map(|w| w.0) };
    let mirror = geo.mirror[l];
    let b = split.unwrap_or(a.cols);
    // Deltas to try: the controller starts segment 1 at least one cycle after segment 0
    // (two in `Pixels`, whose segment-1 context it captures on the tile's first cycle);
    // in the last layer both segments add into the pool's per-row memories, so they must
    // not do so on one cycle (delta ≢ 0 mod tp).
    let deltas: Vec<u64> = match t.mode {
        Mode::Single => vec![0],
        Mode::Pixels => (2..8).collect(),
        Mode::Rows => (1..8).collect(),
    };
    let tp0 = if net.layers[l].pool {
        pipe::POOL_TP
    } else {
        ACT_BITS
    };
    for tp in tp0.. {
        for &d in &deltas {
            if final_layer && t.mode != Mode::Single && d % tp == 0 {
                continue;
            }
            let segs = seg_views(
                &Tile {
                    tp,
                    delta: d,
                    ..t.clone()
                },
                a,
                split,
            );
            // (cycle mod tp over two slots, column) occupied.
            let mut seen: HashMap<(u64, usize), ()> = HashMap::new();
            let mut ok = true;
            'check: for sv in &segs {
                for r in 0..sv.rows {
                    let Some(col) = col_of(sv.row0 + r) else {
                        continue;
                    };
                    let off = sv.delta + sv.width as u64 + r as u64;
                    let mut cols = vec![col];
                    if mirror {
                        cols.push(col + b);
                    }
                    // Writes repeat every tp cycles: compare in one period.
                    for c in cols {
                        if seen.insert((off % tp, c % a.cols), ()).is_some() {
                            ok = false;
                            break 'check;
                        }
                    }
                }
            }
            if ok || final_layer {
                // The last layer writes no memory (it feeds the pool).
                return Some((tp, d));
            }
        }
        // Within one slot the segments' write offsets stay below `tp` once it passes
        // them, so a larger period separates nothing more.
        if tp > ACT_BITS.max(a.rows as u64) + 2 * (a.cols as u64 + 8) {
            return None;
        }
    }
    None
}

/// One image through the input stream: first beat to `full` (beats times write phases).
pub fn input_cycles(net: &PackedNet, a: ArrayShape) -> u64 {
    if net.layers.is_empty() {
        net.input.len() as u64
    } else {
        net.input.len() as u64 * input_phases(net, a) as u64 + pipe::INPUT_EXTRA
    }
}

/// Where the input reopens for the next image (see [`Schedule::reopen_tile`]): with
/// input buffers of its own, after the first layer's last read; with the input in the
/// tap buffers, after the last row write into them (the last layer writes none), since
/// both write through the same ports.
fn reopen_point(
    net: &PackedNet,
    a: ArrayShape,
    split: Option<usize>,
    tiles: &[Tile],
    shared: bool,
) -> (usize, u64) {
    let nl = net.layers.len();
    let writer = if shared && nl >= 2 { nl - 2 } else { 0 };
    let ti = tiles.iter().rposition(|t| t.layer == writer).unwrap_or(0);
    let t = &tiles[ti];
    let segs = seg_views(t, a, split);
    let live = segs.iter().filter(|s| s.rows > 0);
    // Cycles after the tile's last slot ends (its last request + tp).
    let after = if shared && nl >= 2 {
        // The last row write edge: the slowest segment's last row.
        live.map(|s| s.delta + s.width as u64 + pipe::write(a.rows) + s.rows as u64 - 1)
            .max()
            .unwrap_or(0)
    } else {
        // The last read: the slowest segment's last request at its last used column.
        live.map(|s| s.delta + t.cols.saturating_sub(1) as u64)
            .max()
            .unwrap_or(0)
    };
    (ti, (after + 1).saturating_sub(t.tp))
}

/// Whether the first layer's input can live in the tap buffers at no cost in cycles:
/// the stream of the next image (after the last row write, see [`reopen_point`]) fits
/// in the last layer's tiles, so the first layer never waits for it. Saves the input
/// buffers' memories.
pub fn shared_input(net: &PackedNet, a: ArrayShape, split: Option<usize>, tiles: &[Tile]) -> bool {
    let nl = net.layers.len();
    if nl < 2 || tiles.is_empty() {
        return false;
    }
    let (_, delay) = reopen_point(net, a, split, tiles, true);
    let last: u64 = tiles
        .iter()
        .filter(|t| t.layer + 1 == nl)
        .map(Tile::stream_cycles)
        .sum();
    delay + pipe::REOPEN_EXTRA + input_cycles(net, a) <= last
}

/// The tiles of `net` on `a` in execution order, each with its mode, period and segment
/// delay, but without gaps (what the design's widths need).
pub fn plan(net: &PackedNet, a: ArrayShape) -> (Option<usize>, Vec<Tile>) {
    let split = choose_split(net, a);
    let nl = net.layers.len();
    // Layers whose two segments cannot write without a port collision run `Single`;
    // that changes what the layer before writes (no mirrored copy), so check again until
    // every tile has a period. Each round moves at least one layer to `Single`.
    let mut single = vec![false; nl];
    loop {
        // A pool layer's running sum lives in its rows' partial-sum memories, so its
        // pixels stay in one segment, in order.
        let mut tiles: Vec<Tile> = (0..nl)
            .flat_map(|li| {
                let one = single[li] || net.layers[li].pool;
                plan_layer(net, li, a, if one { None } else { split })
            })
            .collect();
        let geo = geometry(net, &tiles, a);
        let mut settled = true;
        for t in tiles.iter_mut() {
            match period_and_delta(net, t, a, split, &geo) {
                Some((tp, d)) => {
                    t.tp = tp;
                    t.delta = d;
                }
                None => {
                    debug_assert!(t.mode != Mode::Single, "a Single tile always has a period");
                    single[t.layer] = true;
                    settled = false;
                }
            }
        }
        if settled {
            // The split only exists for tiles that use it.
            let split = split.filter(|_| tiles.iter().any(|t| t.mode != Mode::Single));
            return (split, tiles);
        }
    }
}

/// Row-end and pool latency of a tile's slowest segment: (extra delay, width) of the
/// segment whose last row finishes last.
fn slowest(t: &Tile, a: ArrayShape, split: Option<usize>) -> u64 {
    seg_views(t, a, split)
        .iter()
        .filter(|s| s.rows > 0)
        .map(|s| s.delta + s.width as u64)
        .max()
        .unwrap_or(a.cols as u64)
}

/// Cell-cycle accounting of one tile (its gap included).
fn tile_breakdown(net: &PackedNet, t: &Tile, a: ArrayShape, split: Option<usize>) -> Breakdown {
    let l = &net.layers[t.layer];
    let cells = (a.rows * a.cols) as u64;
    let mut b = Breakdown {
        cycles: t.gap + t.stream_cycles(),
        fill_drain: t.gap * cells,
        period_stretch: (t.tp - ACT_BITS) * t.slots as u64 * cells,
        ..Breakdown::default()
    };
    let segs = seg_views(t, a, split);
    let used_width: usize = segs.iter().map(|s| s.width).sum();
    // Columns outside every segment, during every slot.
    b.idle_columns += (a.cols - used_width) as u64 * a.rows as u64 * ACT_BITS * t.slots as u64;
    for sv in &segs {
        // Pixels this segment computes; the slots without one idle its whole segment.
        let pixels = (0..t.slots)
            .filter(|k| sv.first_pixel + k * sv.step < l.output.pixels())
            .count() as u64;
        let idle_slots = t.slots as u64 - pixels;
        let seg_cells = (a.rows * sv.width) as u64;
        let (mut nnz, mut copied) = (0u64, 0u64);
        for r in 0..sv.rows {
            for g in t.col0..t.col0 + t.cols {
                if l.weight[[sv.row0 + r, g]] != 0 {
                    if l.is_copy(sv.row0 + r) {
                        copied += 1;
                    } else {
                        nnz += 1;
                    }
                }
            }
        }
        let used = (sv.rows * t.cols) as u64;
        if l.pool {
            // The pool folded in: each weight's MAC is useful once per image (docs/DESIGN.md
            // §11 counts the head's weights once); its repeats over the map's other
            // pixels are the pool's cost.
            let once = if pixels > 0 { nnz } else { 0 };
            b.macs += once;
            b.pool_classifier += (ACT_BITS * (nnz * pixels - once)) as i64;
        } else {
            b.macs += nnz * pixels;
        }
        b.replication += ACT_BITS * copied * pixels;
        b.zero_weights += ACT_BITS * (used - nnz - copied) * pixels;
        b.idle_rows += ACT_BITS * ((a.rows - sv.rows) * t.cols) as u64 * pixels;
        b.idle_columns += ACT_BITS * (a.rows * (sv.width - t.cols)) as u64 * pixels;
        b.idle_columns += ACT_BITS * seg_cells * idle_slots;
    }
    b
}

/// The predicted timeline of consecutive images, in the terms `ccc simulate` measures
/// (cycles counted from the release of reset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Prediction {
    /// Per image: the cycle its `done` pulse is high.
    pub done: Vec<u64>,
    /// Per image, per layer: cycles from the end of the previous layer's last slot (the
    /// previous image's last layer for the first; reset for image 0) to the end of its
    /// own last slot.
    pub spans: Vec<Vec<u64>>,
}

impl Schedule {
    fn sim<'a>(&self, net: &'a PackedNet) -> Sim<'a> {
        Sim {
            net,
            a: self.array,
            split: self.split,
            geo: geometry(net, &self.tiles, self.array),
            input_cycles: self.input_cycles,
            reopen_tile: self.reopen_tile,
            reopen_delay: self.reopen_delay,
            cls_delay: self.cls_delay,
            cls_mac: cls_mac(net, self.head_lanes),
            cls_busy: self.classifier_cycles - pipe::HEAD_BUSY_LESS,
            clear_cycles: self.clear_cycles,
        }
    }

    /// What the RTL does with `images` images streamed back to back (`net` is the
    /// network this schedule was made for).
    pub fn predict(&self, net: &PackedNet, images: usize) -> Prediction {
        if self.tiles.is_empty() {
            return Prediction::default();
        }
        let tl = self.sim(net).timeline(&self.tiles, images, true);
        let mut prev = 0u64;
        let mut p = Prediction::default();
        for (st, &cs) in tl.start.iter().zip(&tl.cls_start) {
            let mut spans = Vec::with_capacity(self.layers.len());
            for l in &self.layers {
                // A layer without tiles (no nonzero weight) takes no time.
                if let Some(last) = (l.first_tile + l.tiles)
                    .checked_sub(1)
                    .filter(|_| l.tiles > 0)
                {
                    let end = st[last] + self.tiles[last].stream_cycles();
                    spans.push(end - prev);
                    prev = end;
                } else {
                    spans.push(0);
                }
            }
            p.done.push(cs + self.classifier_cycles - 1);
            p.spans.push(spans);
        }
        p
    }

    /// Makes the timeline start with `cycles` of memory clearing after reset (the RTL's
    /// clear of its tap and input buffers): the first image's input opens only after it.
    /// Moves the first image's latency and every predicted cycle; the steady state (the
    /// interval and its breakdown) is that of later images and does not change.
    pub fn set_clear_cycles(&mut self, net: &PackedNet, cycles: u64) {
        self.clear_cycles = cycles;
        self.latency = match self.predict(net, 1).done.first() {
            Some(&done) => done + 1,
            // Nothing runs on the array: the input, then the classifier.
            None => pipe::INPUT_SKID.max(cycles) + self.input_cycles + self.classifier_cycles,
        };
    }
}

/// Most images the timeline runs to find the steady state behind a slow head.
const MAX_RUN: usize = 1 << 12;

/// One MAC lane: what designs, schedules and reports written before lanes had.
pub fn one_lane() -> usize {
    1
}

fn fewest_head_inputs(net: &PackedNet) -> usize {
    net.classifier
        .weights()
        .map(|w| w.ncols())
        .min()
        .unwrap_or(1)
}

/// `lanes` MAC lanes can run `net`'s head: a power of two up to [`MAX_HEAD_LANES`] and no
/// more than any head layer's inputs (a block's outputs leave one a cycle while the next
/// block runs, which takes a cycle per input).
pub fn check_head_lanes(net: &PackedNet, lanes: usize) -> anyhow::Result<()> {
    if !lanes.is_power_of_two() || lanes > MAX_HEAD_LANES {
        anyhow::bail!("head MAC lanes must be 1, 2, 4 or 8, not {lanes}");
    }
    let fewest = fewest_head_inputs(net);
    if lanes > fewest {
        anyhow::bail!(
            "{lanes} head MAC lanes need every head layer to have at least {lanes} inputs; \
             one has {fewest}"
        );
    }
    Ok(())
}

/// Whether the head's linear layers run on the array (a pool layer among the layers):
/// then the last layer's accumulators are the logits and no head unit computes.
pub fn head_on_array(net: &PackedNet) -> bool {
    net.layers.iter().any(|l| l.pool)
}

/// Most MAC lanes the head unit gets (each is a multiplier).
pub const MAX_HEAD_LANES: usize = 8;

/// The head's first layer (the one that reads the pool), from the head's start to the
/// pool being free: one cycle per block of `lanes` outputs and input.
fn cls_mac(net: &PackedNet, lanes: usize) -> u64 {
    if head_on_array(net) {
        return pipe::LOGITS_FREE;
    }
    let (o, i) = net.classifier.pool_weight().dim();
    (o.div_ceil(lanes) * i) as u64 + pipe::CLS_MAC_EXTRA
}

/// The head from its start to its last output word (output always ready): one cycle per
/// input and block of `lanes` outputs (zeros included) in every layer; with lanes, a
/// cycle to take a block's sums and one per output of the last block before the last one
/// leaves; a drain between layers; the classes' logits and the class.
pub fn head_cycles(net: &PackedNet, lanes: usize) -> u64 {
    if head_on_array(net) {
        return pipe::LOGITS_EXTRA + net.classes as u64 + 1 + pipe::CLS_OUT_EXTRA;
    }
    let c = &net.classifier;
    let layer = |w: &ndarray::Array2<i32>| -> u64 {
        let (o, i) = w.dim();
        let serial = if lanes > 1 {
            1 + ((o - 1) % lanes) as u64
        } else {
            0
        };
        (o.div_ceil(lanes) * i) as u64 + serial
    };
    c.weights().map(layer).sum::<u64>()
        + c.hidden.len() as u64 * pipe::HEAD_LAYER_GAP
        + pipe::CLS_MAC_EXTRA
        + net.classes as u64
        + 1
        + pipe::CLS_OUT_EXTRA
}

/// MAC lanes for the head unit: the fewest (a power of two, at most [`MAX_HEAD_LANES`])
/// whose head time fits in the array's busy cycles per image (`tiles`' slots, a lower
/// bound of the interval), so that the head does not set the interval; never more than
/// any head layer's inputs (a block's outputs leave one a cycle while the next block
/// runs). One lane for a linear classifier that keeps up, as before lanes existed.
pub fn head_lanes(net: &PackedNet, tiles: &[Tile]) -> usize {
    let fewest_inputs = fewest_head_inputs(net);
    let busy: u64 = tiles.iter().map(|t| t.stream_cycles()).sum();
    let mut lanes = 1;
    while head_cycles(net, lanes) > busy
        && lanes * 2 <= MAX_HEAD_LANES
        && lanes * 2 <= fewest_inputs
    {
        lanes *= 2;
    }
    lanes
}

/// The schedule of `net` on `a`; `head_lanes` overrides [`head_lanes`] (checked by
/// [`check_head_lanes`]).
pub fn schedule(net: &PackedNet, a: ArrayShape, head_lanes: Option<usize>) -> Schedule {
    let (split, mut tiles) = plan(net, a);
    let nl = net.layers.len();
    let cls = &net.classifier;
    let head_lanes = head_lanes.unwrap_or_else(|| self::head_lanes(net, &tiles));
    let cls_mac = cls_mac(net, head_lanes);
    let classifier_cycles = head_cycles(net, head_lanes);
    let input_cycles = input_cycles(net, a);
    if tiles.is_empty() {
        // Every layer is empty (no nonzero column): nothing runs on the array.
        let layers = net
            .layers
            .iter()
            .map(|l| LayerSchedule {
                conv_index: l.conv_index,
                pixels: l.output.pixels(),
                row_blocks: 0,
                col_blocks: 0,
                mode: Mode::Single,
                first_tile: 0,
                tiles: 0,
                cycles: 0,
                breakdown: Breakdown::default(),
            })
            .collect();
        return Schedule {
            array: a,
            split,
            tiles,
            layers,
            input_cycles,
            classifier_cycles,
            head_lanes,
            shared_input: false,
            reopen_tile: 0,
            reopen_delay: 0,
            cls_delay: 0,
            interval: classifier_cycles,
            latency: pipe::INPUT_SKID + input_cycles + classifier_cycles,
            clear_cycles: 0,
            breakdown: Breakdown::default(),
        };
    }
    let shared_input = shared_input(net, a, split, &tiles);
    let (reopen_tile, reopen_delay) = reopen_point(net, a, split, &tiles, shared_input);
    let lt = &tiles[tiles.len() - 1];
    // The last pool add: the slowest segment's last row.
    let cls_delay = (slowest(lt, a, split) + pipe::POOL + a.rows as u64).saturating_sub(lt.tp);
    let sim = Sim {
        net,
        a,
        split,
        geo: geometry(net, &tiles, a),
        input_cycles,
        reopen_tile,
        reopen_delay,
        cls_delay,
        cls_mac,
        cls_busy: classifier_cycles - pipe::HEAD_BUSY_LESS,
        clear_cycles: 0,
    };
    // Gaps: the least that satisfies every constraint in the steady state without
    // external waits (those only delay tiles, which never breaks a constraint).
    const IMAGES: usize = 3;
    // Every round moves some later tile past what it waits for, and every write-port
    // collision is between two tiles (plan() leaves none inside one), so this settles.
    const ROUNDS: usize = 100_000;
    let mut settled = false;
    for _ in 0..ROUNDS {
        let tl = sim.timeline(&tiles, IMAGES, false);
        let n = sim.needs(&tiles, &tl);
        let changed = n.gaps.iter().zip(&tiles).any(|(g, t)| *g != t.gap);
        for (t, g) in tiles.iter_mut().zip(n.gaps) {
            t.gap = g;
        }
        if !changed && !n.conflicts {
            settled = true;
            break;
        }
    }
    // Hardware from an unsettled schedule would compute wrong values: stop instead.
    assert!(
        settled,
        "schedule of {} on {}x{}: the tile gaps did not settle in {ROUNDS} rounds",
        net.name, a.rows, a.cols
    );
    // The real timeline, with the waits for input and pool, long enough to reach the
    // steady state: the images' ends and the head's starts equally spaced, by the same
    // amount. A head slower than the layers (an MLP head) only holds the layers back once
    // its lag has used up the pool's slack, which takes slack / (head − layers) images.
    let last_end = |tl: &Timeline, i: usize| {
        tl.start[i][tiles.len() - 1] + tiles[tiles.len() - 1].stream_cycles()
    };
    let mut run = 4;
    let tl = loop {
        let tl = sim.timeline(&tiles, run, true);
        let d = |i: usize| last_end(&tl, run - i) - last_end(&tl, run - i - 1);
        let dc = tl.cls_start[run - 1] - tl.cls_start[run - 2];
        let settled = d(1) == d(2) && dc == d(1);
        // Only a head slower than the layers takes more images to settle; otherwise the
        // fourth image is the steady state.
        let head_behind = sim.cls_busy > d(1);
        if settled || !head_behind || run >= MAX_RUN {
            break tl;
        }
        run *= 2;
    };
    let end_of = |i: usize| last_end(&tl, i);
    let interval = end_of(run - 1) - end_of(run - 2);
    let latency = tl.cls_start[0] + classifier_cycles;
    // Breakdown of the steady-state image.
    let img = run - 1;
    let mut layers = Vec::with_capacity(nl);
    let mut total = Breakdown::default();
    for li in 0..nl {
        let first_tile = tiles.iter().position(|t| t.layer == li).unwrap_or(0);
        let count = tiles.iter().filter(|t| t.layer == li).count();
        let mut b = Breakdown::default();
        for t in &tiles[first_tile..first_tile + count] {
            b.add(&tile_breakdown(net, t, a, split));
        }
        let cells = (a.rows * a.cols) as u64;
        if li == 0 {
            let w = tl.input_wait[img];
            b.cycles += w;
            b.waiting_io += w * cells;
        }
        if li + 1 == nl {
            let w = tl.pool_wait[img];
            b.cycles += w;
            b.pool_classifier += (w * cells) as i64;
        }
        let l = &net.layers[li];
        layers.push(LayerSchedule {
            conv_index: l.conv_index,
            pixels: l.output.pixels(),
            row_blocks: l.rows().div_ceil(a.rows),
            col_blocks: l.groups_len().div_ceil(a.cols),
            mode: tiles
                .get(first_tile)
                .filter(|t| t.layer == li)
                .map_or(Mode::Single, |t| t.mode),
            first_tile,
            tiles: count,
            cycles: b.cycles,
            breakdown: b.clone(),
        });
        total.add(&b);
    }
    // The classifier's MACs count as useful (docs/DESIGN.md §11) but take no array cycle.
    // On the array the head's layers counted their MACs above.
    if !head_on_array(net) {
        let cls_nnz = cls.nonzeros() as u64;
        total.macs += cls_nnz;
        total.pool_classifier -= (ACT_BITS * cls_nnz) as i64;
    }
    debug_assert_eq!(total.cycles, interval);
    Schedule {
        array: a,
        split,
        tiles,
        layers,
        input_cycles,
        classifier_cycles,
        head_lanes,
        shared_input,
        reopen_tile,
        reopen_delay,
        cls_delay,
        interval,
        latency,
        clear_cycles: 0,
        breakdown: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_matrix_once() {
        let a = ArrayShape { rows: 4, cols: 3 };
        assert_eq!(tile_count(8, 6, a), 4);
        assert_eq!(tile_count(9, 7, a), 9);
        assert_eq!(tile_count(1, 1, a), 1);
    }

    #[test]
    fn reader_pixel_inverts_the_gather() {
        let tap = |dy, dx| Tap { channel: 0, dy, dx };
        // Stride 1: (y, x) is read by (y - dy, x - dx).
        assert_eq!(reader_pixel(2, 3, tap(1, 1), 1, 5, 5), Some(5 + 2));
        assert_eq!(reader_pixel(0, 0, tap(1, 0), 1, 5, 5), None);
        // Stride 2: only even displaced positions are read.
        assert_eq!(reader_pixel(4, 2, tap(0, 0), 2, 3, 3), Some(2 * 3 + 1));
        assert_eq!(reader_pixel(3, 2, tap(0, 0), 2, 3, 3), None);
        assert_eq!(reader_pixel(4, 3, tap(0, -1), 2, 3, 3), Some(2 * 3 + 2));
        // Beyond the reader's map.
        assert_eq!(reader_pixel(6, 0, tap(0, 0), 2, 3, 3), None);
    }
}
