//! Verilog for the MX cell and the bare systolic array of MX cells.
//!
//! This module owns the cell-level hardware layer of the emitted RTL: the `ccc_mx_cell`
//! module (one weight-stationary MX cell with bit-parallel bit-plane partial sums), the
//! `ccc_mx_array` module (ROWS x COLS cells, no control), and optionally the bit-serial
//! partial-sum cell kept for cost comparison. Everything around the array (controller,
//! memories, streamer, row-end accumulators) lives elsewhere and instantiates
//! `ccc_mx_array`. Behaviour, timing and cost are documented in `docs/MX_CELL.md`.
//!
//! The templates are compiled into the binary (`include_str!`), so rendering works from
//! any working directory, and rendering is a pure function of its arguments.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::templates;

/// Module (and file stem) of the MX cell.
pub const CELL_MODULE: &str = "ccc_mx_cell";
/// Module (and file stem) of the systolic array.
pub const ARRAY_MODULE: &str = "ccc_mx_array";
/// Module (and file stem) of the bit-serial partial-sum cell (cost comparison only).
pub const CELL_BITSERIAL_MODULE: &str = "ccc_mx_cell_bitserial";

/// Widths of one MX cell, shared by every cell of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CellParams {
    /// α: activation lanes per array column (columns combined into one group).
    pub alpha: usize,
    /// Selector width; must name every lane: `2^sel_w >= alpha`, at least 1.
    pub sel_w: usize,
    /// Partial-sum width (two's complement), at least 9 (an int8 weight plus sign room).
    pub psum_w: usize,
}

impl CellParams {
    /// The widths for an array of `cols` columns at α = `alpha`: `sel_w = max(1,
    /// ceil(log2 α))`, `psum_w = 8 + ceil(log2 cols) + 1` (a bit-plane row sum is at most
    /// 128·cols in magnitude). Pure arithmetic; [`CellParams::validate`] rejects α = 0.
    pub fn for_array(alpha: usize, cols: usize) -> Self {
        Self {
            alpha,
            sel_w: ceil_log2(alpha).max(1),
            psum_w: 8 + ceil_log2(cols) + 1,
        }
    }

    /// Checks the widths make a well-formed cell.
    pub fn validate(&self) -> Result<()> {
        if self.alpha == 0 {
            bail!("MX cell: alpha must be at least 1");
        }
        if self.sel_w == 0 || self.sel_w > 16 {
            bail!("MX cell: selector width {} out of range 1..=16", self.sel_w);
        }
        if (1usize << self.sel_w) < self.alpha {
            bail!(
                "MX cell: a {}-bit selector cannot name {} lanes",
                self.sel_w,
                self.alpha
            );
        }
        if self.psum_w < 9 {
            bail!(
                "MX cell: partial-sum width {} is below 9 bits (int8 weight + sign)",
                self.psum_w
            );
        }
        Ok(())
    }
}

/// What the cell and array templates read.
#[derive(Serialize)]
struct CellView<'a> {
    version: &'static str,
    #[serde(flatten)]
    cell: &'a CellParams,
    rows: usize,
    cols: usize,
    split: usize,
}

fn view(p: &CellParams, rows: usize, cols: usize, split: usize) -> CellView<'_> {
    CellView {
        version: env!("CARGO_PKG_VERSION"),
        cell: p,
        rows,
        cols,
        split,
    }
}

/// `ceil(log2 n)`, with `ceil_log2(0) = ceil_log2(1) = 0`.
pub fn ceil_log2(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

/// Verilog of `ccc_mx_cell` with parameter defaults `p` (file `ccc_mx_cell.v`).
pub fn render_cell(p: &CellParams) -> Result<String> {
    p.validate()?;
    templates::render("mx_cell.v", &view(p, 1, 1, 0))
}

/// Verilog of `ccc_mx_array` for `rows` x `cols` cells of widths `p` (file
/// `ccc_mx_array.v`; it instantiates `ccc_mx_cell` from [`render_cell`]), one segment.
pub fn render_array(rows: usize, cols: usize, p: &CellParams) -> Result<String> {
    render_array_split(rows, cols, 0, p)
}

/// [`render_array`] with a second column segment from column `split` on (0: none).
pub fn render_array_split(
    rows: usize,
    cols: usize,
    split: usize,
    p: &CellParams,
) -> Result<String> {
    if split != 0 && split >= cols {
        bail!("MX array: segment boundary {split} is not inside {cols} columns");
    }
    p.validate()?;
    if rows == 0 || cols == 0 {
        bail!("MX array: {rows} x {cols} has no cells");
    }
    let need = CellParams::for_array(p.alpha, cols).psum_w;
    if p.psum_w < need {
        bail!(
            "MX array: {} partial-sum bits can overflow on {cols} columns (need {need})",
            p.psum_w
        );
    }
    templates::render("mx_array.v", &view(p, rows, cols, split))
}

/// Verilog of `ccc_mx_cell_bitserial`, the fully bit-serial partial-sum variant, kept only
/// to measure its cost against the chosen bit-parallel cell (see `docs/MX_CELL.md`).
/// Only `alpha` and `sel_w` of `p` matter: its partial sums are serial words whose length
/// is set by the frame spacing, not by a port width.
pub fn render_cell_bitserial(p: &CellParams) -> Result<String> {
    p.validate()?;
    templates::render("mx_cell_bitserial.v", &view(p, 1, 1, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_for_array() {
        assert_eq!(
            CellParams::for_array(8, 32),
            CellParams {
                alpha: 8,
                sel_w: 3,
                psum_w: 14
            }
        );
        assert_eq!(CellParams::for_array(1, 1).sel_w, 1);
        assert_eq!(CellParams::for_array(1, 1).psum_w, 9);
        assert_eq!(CellParams::for_array(3, 3).sel_w, 2);
        assert_eq!(CellParams::for_array(3, 3).psum_w, 11);
        assert_eq!(CellParams::for_array(16, 33).sel_w, 4);
        assert_eq!(CellParams::for_array(16, 33).psum_w, 15);
        assert_eq!(CellParams::for_array(5, 64).sel_w, 3);
    }

    #[test]
    fn rejects_bad_widths() {
        assert!(render_cell(&CellParams::for_array(0, 4)).is_err());
        let narrow = CellParams {
            alpha: 5,
            sel_w: 2,
            psum_w: 12,
        };
        assert!(render_cell(&narrow).is_err());
        let short = CellParams {
            alpha: 2,
            sel_w: 1,
            psum_w: 8,
        };
        assert!(render_cell(&short).is_err());
        let p = CellParams::for_array(4, 4);
        assert!(render_array(0, 4, &p).is_err());
        assert!(render_array(4, 0, &p).is_err());
        assert!(
            render_array(2, 64, &p).is_err(),
            "psum too narrow for 64 columns"
        );
        assert!(render_array(2, 4, &p).is_ok());
    }
}
