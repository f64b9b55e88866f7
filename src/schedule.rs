//! Scheduling: maps each packed layer onto an R x C array as tiles (rows = filters,
//! columns = groups; vertical tiling when G > C) in the order the controller runs them,
//! and predicts cycles per inference with the array's timing model.
//!
//! Timing model (DESIGN.md §6; the RTL measures the same quantities):
//! * A tile streams every output pixel of the layer through the array, each activation
//!   bit-serially over `ACT_BITS` cycles: `ACT_BITS · P` cycles of steady state, one
//!   8-bit MAC per cell every 8 cycles.
//! * Each tile also pays the systolic fill and drain: activations skew down R rows,
//!   partial sums travel across C columns, plus the serial width and a fixed pipeline
//!   depth (`PIPELINE_DEPTH`: input buffer read, row-end shift-accumulate, requantize).
//! * Weights are double-buffered: tile t+1 loads (one array row per cycle, R cycles)
//!   while tile t computes, so loading only shows when a tile computes for fewer than R
//!   cycles, and for the layer's first tile.
//! * The pool accumulates while the last layer writes; the classifier then runs one MAC
//!   per class per cycle over the pooled channels.

use serde::Serialize;

use crate::pack::network::{PackedLayer, PackedNet};

/// Activation width on the bit-serial lines.
pub const ACT_BITS: u64 = 8;
/// Fixed pipeline stages outside the array (see module docs).
pub const PIPELINE_DEPTH: u64 = 4;

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
    /// Beats to stream one image in (one uint8 per beat); overlaps the previous image.
    pub input_cycles: u64,
    pub total_cycles: u64,
}

/// Number of tiles for an N x G packed matrix.
pub fn tile_count(n: usize, g: usize, a: ArrayShape) -> usize {
    n.div_ceil(a.rows) * g.div_ceil(a.cols)
}

/// Cycles of one layer of N filters and G groups over P output pixels.
pub fn layer_cycles(n: usize, g: usize, pixels: usize, a: ArrayShape) -> u64 {
    let (rb, cb) = (n.div_ceil(a.rows) as u64, g.div_ceil(a.cols) as u64);
    let (r, c) = (a.rows as u64, a.cols as u64);
    let stream = ACT_BITS * pixels as u64;
    let fill = (r - 1) + (c - 1) + ACT_BITS + PIPELINE_DEPTH;
    let per_tile = stream.max(r) + fill;
    rb * cb * per_tile + r
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
    (channels + classes) as u64 + PIPELINE_DEPTH
}

pub fn schedule(net: &PackedNet, a: ArrayShape) -> Schedule {
    let layers: Vec<LayerSchedule> = net.layers.iter().map(|l| schedule_layer(l, a)).collect();
    let classifier = classifier_cycles(net.classes, net.classifier.pool_input.c);
    let total = layers.iter().map(|l| l.cycles).sum::<u64>() + classifier;
    Schedule {
        array: a,
        layers,
        classifier_cycles: classifier,
        input_cycles: net.input.len() as u64,
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
    fn steady_state_is_eight_cycles_per_pixel() {
        let a = ArrayShape { rows: 4, cols: 4 };
        let big = layer_cycles(4, 4, 1000, a);
        let bigger = layer_cycles(4, 4, 2000, a);
        assert_eq!(bigger - big, 8 * 1000);
    }
}
