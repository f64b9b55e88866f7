//! Scheduling: maps each packed layer onto an R x C array as tiles (rows = filters,
//! columns = groups; vertical tiling when G > C) in the order the controller runs them,
//! and predicts cycles per inference with the array's timing model.
//!
//! Timing model — exact for the emitted RTL (`hw/ccc_core.v`); `ccc simulate` measures
//! the same phases and tests hold the two equal:
//! * A pixel period is `TP = max(8, R)` cycles: 8 bit-planes (activations are
//!   bit-serial, so each cell does one 8-bit MAC per 8 cycles), stretched to R so that
//!   the R rows finish on distinct cycles and one shift-on-write port keeps up.
//! * A tile costs `1 + P·TP + (R + C + 16)`: one cycle to start, P output pixels, and
//!   the drain of the systolic pipeline (column skew, row skew, row-end, writer).
//!   Weights are double-buffered in the cells' shadow registers: the next tile's R rows
//!   shift in while this tile streams, so loading never shows.
//! * The input phase streams one pixel byte per beat and writes it into the first
//!   layer's tap buffers, one write per tap that reads it (K·K for a KxK first conv):
//!   `beats · K² + 2` cycles.
//! * Pool + classifier: one MAC per cycle, then the logits and class leave:
//!   `classes · channels + classes + 5` cycles.

use serde::Serialize;

use crate::pack::network::{PackedLayer, PackedNet};

/// Activation width on the bit-serial lines.
pub const ACT_BITS: u64 = 8;
/// Drain after a tile's last pixel beyond the R + C systolic skew (`DRAIN` in
/// `hw/ccc_core.v`: feed latency, row-end, requantizer, writer and pool pipelines).
pub const DRAIN_EXTRA: u64 = 16;

/// Cycles per output pixel on an array of `rows` rows (see module docs).
pub fn pixel_period(rows: usize) -> u64 {
    (rows as u64).max(ACT_BITS)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ArrayShape {
    pub rows: usize,
    pub cols: usize,
}

/// One weight-stationary tile: array rows hold filters [row0, row0 + rows), array
/// columns hold groups [col0, col0 + cols).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tile {
    pub row0: usize,
    pub rows: usize,
    pub col0: usize,
    pub cols: usize,
    /// First column block of its row block: the row-end accumulators start from bias.
    pub first: bool,
    /// Last column block: the accumulators requantize and write the outputs.
    pub last: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerSchedule {
    pub conv_index: usize,
    pub pixels: usize,
    pub row_blocks: usize,
    pub col_blocks: usize,
    pub tiles: Vec<Tile>,
    pub cycles: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Schedule {
    pub array: ArrayShape,
    pub layers: Vec<LayerSchedule>,
    pub classifier_cycles: u64,
    /// Input phase: stream one image in and write it into the first layer's taps.
    pub input_cycles: u64,
    pub total_cycles: u64,
}

/// Number of tiles for an N x G packed matrix.
pub fn tile_count(n: usize, g: usize, a: ArrayShape) -> usize {
    n.div_ceil(a.rows) * g.div_ceil(a.cols)
}

/// Cycles of one layer of N filters and G groups over P output pixels.
pub fn layer_cycles(n: usize, g: usize, pixels: usize, a: ArrayShape) -> u64 {
    let tiles = tile_count(n, g, a) as u64;
    let (r, c) = (a.rows as u64, a.cols as u64);
    tiles * (1 + pixels as u64 * pixel_period(a.rows) + r + c + DRAIN_EXTRA)
}

pub fn schedule_layer(l: &PackedLayer, a: ArrayShape) -> LayerSchedule {
    let (n, g) = (l.rows(), l.groups_len());
    let (row_blocks, col_blocks) = (n.div_ceil(a.rows), g.div_ceil(a.cols));
    let mut tiles = Vec::with_capacity(row_blocks * col_blocks);
    for rb in 0..row_blocks {
        for cb in 0..col_blocks {
            let (row0, col0) = (rb * a.rows, cb * a.cols);
            tiles.push(Tile {
                row0,
                rows: a.rows.min(n - row0),
                col0,
                cols: a.cols.min(g - col0),
                first: cb == 0,
                last: cb + 1 == col_blocks,
            });
        }
    }
    LayerSchedule {
        conv_index: l.conv_index,
        pixels: l.output.pixels(),
        row_blocks,
        col_blocks,
        tiles,
        cycles: layer_cycles(n, g, l.output.pixels(), a),
    }
}

pub fn classifier_cycles(classes: usize, channels: usize) -> u64 {
    (classes * channels + classes) as u64 + 5
}

/// Input phase: every beat is written once per first-layer tap that reads its channel.
pub fn input_cycles(net: &PackedNet) -> u64 {
    let first = &net.layers[0];
    let mut per_channel = vec![0u64; first.input.c];
    for t in &first.taps {
        per_channel[t.channel] += 1;
    }
    let wpc = per_channel.iter().copied().max().unwrap_or(1).max(1);
    net.input.len() as u64 * wpc + 2
}

pub fn schedule(net: &PackedNet, a: ArrayShape) -> Schedule {
    let layers: Vec<LayerSchedule> = net.layers.iter().map(|l| schedule_layer(l, a)).collect();
    let classifier = classifier_cycles(net.classes, net.classifier.pool_input.c);
    let input = if net.layers.is_empty() {
        net.input.len() as u64
    } else {
        input_cycles(net)
    };
    let total = input + layers.iter().map(|l| l.cycles).sum::<u64>() + classifier;
    Schedule {
        array: a,
        layers,
        classifier_cycles: classifier,
        input_cycles: input,
        total_cycles: total,
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
    fn steady_state_is_eight_cycles_per_pixel_up_to_eight_rows() {
        let a = ArrayShape { rows: 4, cols: 4 };
        assert_eq!(
            layer_cycles(4, 4, 2000, a) - layer_cycles(4, 4, 1000, a),
            8 * 1000
        );
        let a = ArrayShape { rows: 16, cols: 4 };
        assert_eq!(
            layer_cycles(16, 4, 2000, a) - layer_cycles(16, 4, 1000, a),
            16 * 1000
        );
    }
}
