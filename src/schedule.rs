//! Scheduling: maps each packed layer onto an R x C array as tiles (rows = filters,
//! columns = groups; vertical tiling when G > C) in the order the controller runs them,
//! and predicts cycles per inference with the array's timing model.
//!
//! Timing model — exact for the emitted RTL (`hw/ccc_ctrl.v` and the parts around it);
//! `ccc simulate` measures the same phases and tests hold the two equal:
//! * A pixel period is `TP` cycles, 8 bit-planes (activations are bit-serial, so each
//!   cell does one 8-bit MAC per 8 cycles). Row r finishes pixel p at t0 + TP·p + r, so
//!   rows r and r + TP finish together; each writes its value into the column memory of
//!   the next-layer tap that reads its channel, one write port per memory. TP is the
//!   smallest period ≥ 8 for which no two rows finishing together target the same
//!   memory ([`tile_period`]); usually 8.
//! * A tile costs `1 + P·TP + (R + C + 16)`: one cycle to start, P output pixels, and
//!   the drain of the systolic pipeline (column skew, row skew, row-end, writer).
//!   Weights are double-buffered in the cells' shadow registers: the next tile's R rows
//!   shift in while this tile streams, so loading never shows.
//! * The input phase streams one pixel byte per beat and writes it into every first-layer
//!   tap that reads it, in parallel across array columns: `beats · phases + 3` cycles,
//!   where `phases` is the most taps of one channel that share a column (1 when the
//!   K·K taps of a KxK first conv spread over ≥ K·K columns).
//! * Pool + classifier: one MAC per cycle, then the logits and class leave:
//!   `classes · channels + classes + 5` cycles.

use serde::Serialize;

use crate::pack::network::PackedNet;

/// Activation width on the bit-serial lines.
pub const ACT_BITS: u64 = 8;
/// Drain after a tile's last pixel beyond the R + C systolic skew (`DRAIN` in
/// `hw/ccc_ctrl.v`: feed latency, row-end, requantizer, writer and pool pipelines).
pub const DRAIN_EXTRA: u64 = 16;

/// For each physical output channel of layer `l`: the array column whose tap-buffer
/// memory its value is written to (the column of the next layer's group that reads it),
/// or `None` (no reader, or the last layer, which feeds the pool).
pub fn write_columns(net: &PackedNet, l: usize, a: ArrayShape) -> Vec<Option<usize>> {
    let channels = net.layers[l].output.c;
    match net.layers.get(l + 1) {
        Some(next) => next
            .readers(channels)
            .iter()
            .map(|us| us.last().map(|&u| next.group_of(u) % a.cols))
            .collect(),
        None => vec![None; channels],
    }
}

/// Smallest pixel period ≥ 8 for a tile whose rows `row0..row0 + R` write the given
/// columns: rows r1 < r2 finish together when TP divides r2 − r1, and must then write
/// different column memories.
pub fn tile_period(cols: &[Option<usize>], row0: usize, a: ArrayShape) -> u64 {
    let rows: Vec<Option<usize>> = (0..a.rows)
        .map(|r| cols.get(row0 + r).copied().flatten())
        .collect();
    let mut tp = ACT_BITS as usize;
    'search: loop {
        for r1 in 0..rows.len() {
            let Some(c1) = rows[r1] else { continue };
            for r2 in (r1 + tp..rows.len()).step_by(tp) {
                if rows[r2] == Some(c1) {
                    tp += 1;
                    continue 'search;
                }
            }
        }
        return tp as u64;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// Cycles per output pixel.
    pub tp: u64,
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

/// Cycles of one tile over P output pixels at pixel period `tp`.
pub fn tile_cycles(pixels: usize, tp: u64, a: ArrayShape) -> u64 {
    1 + pixels as u64 * tp + a.rows as u64 + a.cols as u64 + DRAIN_EXTRA
}

pub fn schedule_layer(net: &PackedNet, li: usize, a: ArrayShape) -> LayerSchedule {
    let l = &net.layers[li];
    let cols = write_columns(net, li, a);
    let (n, g) = (l.rows(), l.groups_len());
    let (row_blocks, col_blocks) = (n.div_ceil(a.rows), g.div_ceil(a.cols));
    let mut tiles = Vec::with_capacity(row_blocks * col_blocks);
    for rb in 0..row_blocks {
        for cb in 0..col_blocks {
            let (row0, col0) = (rb * a.rows, cb * a.cols);
            let last = cb + 1 == col_blocks;
            tiles.push(Tile {
                row0,
                rows: a.rows.min(n - row0),
                col0,
                cols: a.cols.min(g - col0),
                first: cb == 0,
                last,
                // Only the last column block writes activations.
                tp: if last {
                    tile_period(&cols, row0, a)
                } else {
                    ACT_BITS
                },
            });
        }
    }
    let pixels = l.output.pixels();
    LayerSchedule {
        conv_index: l.conv_index,
        pixels,
        row_blocks,
        col_blocks,
        cycles: tiles.iter().map(|t| tile_cycles(pixels, t.tp, a)).sum(),
        tiles,
    }
}

pub fn classifier_cycles(classes: usize, channels: usize) -> u64 {
    (classes * channels + classes) as u64 + 5
}

/// Input phase: a beat is written to every first-layer tap that reads its channel, one
/// tap per array column per cycle (taps of a channel in the same column take turns).
pub fn input_cycles(net: &PackedNet, a: ArrayShape) -> u64 {
    net.input.len() as u64 * input_phases(net, a) as u64 + 3
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

pub fn schedule(net: &PackedNet, a: ArrayShape) -> Schedule {
    let layers: Vec<LayerSchedule> = (0..net.layers.len())
        .map(|l| schedule_layer(net, l, a))
        .collect();
    let classifier = classifier_cycles(net.classes, net.classifier.pool_input.c);
    let input = if net.layers.is_empty() {
        net.input.len() as u64
    } else {
        input_cycles(net, a)
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
    fn steady_state_is_eight_cycles_per_pixel() {
        let a = ArrayShape { rows: 16, cols: 4 };
        assert_eq!(tile_cycles(2000, 8, a) - tile_cycles(1000, 8, a), 8 * 1000);
    }

    #[test]
    fn period_stretches_only_for_colliding_rows() {
        let a = ArrayShape { rows: 16, cols: 4 };
        // Rows r and r + 8 write different columns: full rate.
        let cols: Vec<Option<usize>> = (0..16).map(|r| Some(r / 8)).collect();
        assert_eq!(tile_period(&cols, 0, a), 8);
        // Every row writes column 0: rows must never finish together.
        let same = vec![Some(0); 16];
        assert_eq!(tile_period(&same, 0, a), 16);
        // Rows 0 and 8 share a column: 8 collides, 9 does not.
        let mut c = vec![None; 16];
        (c[0], c[8]) = (Some(1), Some(1));
        assert_eq!(tile_period(&c, 0, a), 9);
        // Channels past the layer's end (a partial last row block) are ignored.
        assert_eq!(tile_period(&same[..5], 0, a), 8);
    }
}
