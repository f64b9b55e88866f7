//! Cycle-accurate rust-hdl models of the MX cell and of a runtime-sized R x C array tile.
//!
//! This module owns the *reference hardware model* that the Verilog templates are checked
//! against (docs/DESIGN.md §7.2): [`MxCell`] is a rust-hdl `LogicBlock` with exactly the ports
//! and behaviour of `ccc_mx_cell` (see `docs/MX_CELL.md`), and its rust-hdl-generated
//! Verilog ([`cell_verilog`]) is what `yosys equiv_*` proves the template equal to.
//! [`MxTile`] wires `rows * cols` cells as a flat `Vec` exactly like `ccc_mx_array`, and
//! [`TileSim`] drives it clock by clock, so tests can compare it with the software matmul.
//!
//! Widths are const generics because rust-hdl signals are typed `Bits<N>`: `A` is the
//! number of activation lanes (α), `S` the selector width (`max(1, ceil(log2 α))`) and `P`
//! the partial-sum width. Rows and columns of a tile are runtime values.

use rust_hdl::prelude::*;

/// One MX cell: shadow/active weight registers, an α-lane selector and a bit-plane adder.
///
/// Same ports (names and widths) as the `ccc_mx_cell` template so that the generated
/// Verilog can be compared with it port for port. The weight/selector registers carry the
/// template's names (`w_shadow`, `sel_shadow`, `w_active`, `sel_active`) so that the
/// equivalence proof can pair them; `act_reg`, `swap_reg` and `psum_reg` drive the ports
/// that are registers in the template.
#[derive(LogicBlock)]
pub struct MxCell<const A: usize, const S: usize, const P: usize> {
    pub clk: Signal<In, Clock>,
    pub rst: Signal<In, Bit>,
    pub ld_en: Signal<In, Bit>,
    pub ld_w_in: Signal<In, Bits<8>>,
    pub ld_sel_in: Signal<In, Bits<S>>,
    pub ld_w_out: Signal<Out, Bits<8>>,
    pub ld_sel_out: Signal<Out, Bits<S>>,
    pub act_in: Signal<In, Bits<A>>,
    pub swap_in: Signal<In, Bit>,
    pub act_out: Signal<Out, Bits<A>>,
    pub swap_out: Signal<Out, Bit>,
    pub psum_in: Signal<In, Signed<P>>,
    pub psum_out: Signal<Out, Signed<P>>,
    w_shadow: DFF<Bits<8>>,
    sel_shadow: DFF<Bits<S>>,
    w_active: DFF<Bits<8>>,
    sel_active: DFF<Bits<S>>,
    act_reg: DFF<Bits<A>>,
    swap_reg: DFF<Bit>,
    psum_reg: DFF<Signed<P>>,
    lanes: Signal<Local, Bits<A>>,
    w_ext: Signal<Local, Signed<P>>,
    /// Ones in bits 8..P: OR-ed onto a negative weight to sign-extend it.
    sign_mask: Constant<Bits<P>>,
}

impl<const A: usize, const S: usize, const P: usize> Default for MxCell<A, S, P> {
    fn default() -> Self {
        assert!(
            A >= 1 && S >= 1 && (9..=64).contains(&P),
            "MxCell<{A}, {S}, {P}>: bad widths"
        );
        assert!(
            A <= 1 << S,
            "MxCell: {S} selector bits cannot name {A} lanes"
        );
        Self {
            clk: Default::default(),
            rst: Default::default(),
            ld_en: Default::default(),
            ld_w_in: Default::default(),
            ld_sel_in: Default::default(),
            ld_w_out: Default::default(),
            ld_sel_out: Default::default(),
            act_in: Default::default(),
            swap_in: Default::default(),
            act_out: Default::default(),
            swap_out: Default::default(),
            psum_in: Default::default(),
            psum_out: Default::default(),
            w_shadow: Default::default(),
            sel_shadow: Default::default(),
            w_active: Default::default(),
            sel_active: Default::default(),
            act_reg: Default::default(),
            swap_reg: Default::default(),
            psum_reg: Default::default(),
            lanes: Default::default(),
            w_ext: Default::default(),
            sign_mask: Constant::new(Bits::<P>::from((u64::MAX >> (64 - P)) & !0xff)),
        }
    }
}

impl<const A: usize, const S: usize, const P: usize> Logic for MxCell<A, S, P> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clk, w_shadow, sel_shadow, w_active, sel_active, act_reg, swap_reg, psum_reg
        );
        // The swap token runs one cycle ahead of a tile's first bit-plane, so the cell
        // always multiplies by the active copy and only copies the shadow into it here.
        if self.swap_in.val() {
            self.w_active.d.next = self.w_shadow.q.val();
            self.sel_active.d.next = self.sel_shadow.q.val();
        }
        if self.ld_en.val() {
            self.w_shadow.d.next = self.ld_w_in.val();
            self.sel_shadow.d.next = self.ld_sel_in.val();
        }
        self.act_reg.d.next = self.act_in.val();
        self.swap_reg.d.next = self.swap_in.val();
        // Shifting the lanes right by the selector puts the selected lane at bit 0 and
        // yields 0 for a selector >= α (a shift past the width empties the vector), which
        // is the template's "selected_bit = 0 when sel >= ALPHA" without a comparator.
        self.lanes.next = self.act_in.val() >> self.sel_active.q.val();
        self.psum_reg.d.next = self.psum_in.val();
        // Sign extension by hand: rust-hdl 0.46's `signed_bit_cast` recurses forever on
        // the most negative value (-(-128) == -128), and a cell must accept any int8.
        self.w_ext.next = signed_cast(bit_cast::<P, 8>(self.w_active.q.val()));
        if self.w_active.q.val().get_bit(7) {
            self.w_ext.next =
                signed_cast(bit_cast::<P, 8>(self.w_active.q.val()) | self.sign_mask.val());
        }
        if self.lanes.val().get_bit(0) {
            self.psum_reg.d.next = self.psum_in.val() + self.w_ext.val();
        }
        // Only the swap token is control state; the datapath registers are not reset.
        if self.rst.val() {
            self.swap_reg.d.next = false;
        }
        self.ld_w_out.next = self.w_shadow.q.val();
        self.ld_sel_out.next = self.sel_shadow.q.val();
        self.act_out.next = self.act_reg.q.val();
        self.swap_out.next = self.swap_reg.q.val();
        self.psum_out.next = self.psum_reg.q.val();
    }
}

/// Module name of [`cell_verilog`]'s top.
pub const HDL_CELL_MODULE: &str = "ccc_mx_cell_hdl";

/// rust-hdl's Verilog for one `MxCell<A, S, P>`: rust-hdl names its top `top` and each
/// register a sub-module `top$<field>`; they are renamed to [`HDL_CELL_MODULE`] and
/// `ccc_mx_cell_hdl$<field>` so the text can sit in one yosys design with the template's
/// `ccc_mx_cell` for the equivalence proof. Ports keep the template's names.
pub fn cell_verilog<const A: usize, const S: usize, const P: usize>() -> String {
    let mut uut = MxCell::<A, S, P>::default();
    uut.connect_all();
    generate_verilog(&uut)
        .replace("module top(", &format!("module {HDL_CELL_MODULE}("))
        .replace("top$", &format!("{HDL_CELL_MODULE}$"))
}

/// An R x C tile of [`MxCell`]s, wired like `ccc_mx_array`: shadow chain, activations and
/// swap token run down the columns, partial sums run right along the rows, and the left
/// partial-sum input of every row is 0.
///
/// Sizes are runtime values: the cells are a flat `Vec` (cell (r, c) at `r * cols + c`)
/// and the per-column / per-row ports are `Vec`s of signals, so one monomorphised model
/// serves every array shape. The wiring is plain Rust in `update` (not `hdl_gen`): this
/// block exists to be simulated; its Verilog counterpart is the `ccc_mx_array` template.
#[derive(LogicBlock)]
pub struct MxTile<const A: usize, const S: usize, const P: usize> {
    pub clk: Signal<In, Clock>,
    pub rst: Signal<In, Bit>,
    pub ld_en: Signal<In, Bit>,
    /// Top of column c's shadow chain.
    pub ld_w_in: Vec<Signal<In, Bits<8>>>,
    pub ld_sel_in: Vec<Signal<In, Bits<S>>>,
    /// Column c's α lanes (the caller applies the systolic skew).
    pub act_in: Vec<Signal<In, Bits<A>>>,
    pub swap_in: Vec<Signal<In, Bit>>,
    /// Right edge: row r's bit-plane sum.
    pub psum_out: Vec<Signal<Out, Signed<P>>>,
    pub cells: Vec<MxCell<A, S, P>>,
}

impl<const A: usize, const S: usize, const P: usize> MxTile<A, S, P> {
    pub fn new(rows: usize, cols: usize) -> Self {
        assert!(
            rows >= 1 && cols >= 1,
            "MxTile: {rows} x {cols} has no cells"
        );
        Self {
            clk: Default::default(),
            rst: Default::default(),
            ld_en: Default::default(),
            ld_w_in: (0..cols).map(|_| Default::default()).collect(),
            ld_sel_in: (0..cols).map(|_| Default::default()).collect(),
            act_in: (0..cols).map(|_| Default::default()).collect(),
            swap_in: (0..cols).map(|_| Default::default()).collect(),
            psum_out: (0..rows).map(|_| Default::default()).collect(),
            cells: (0..rows * cols).map(|_| MxCell::default()).collect(),
        }
    }

    pub fn rows(&self) -> usize {
        self.psum_out.len()
    }

    pub fn cols(&self) -> usize {
        self.act_in.len()
    }
}

impl<const A: usize, const S: usize, const P: usize> Logic for MxTile<A, S, P> {
    fn update(&mut self) {
        let (rows, cols) = (self.rows(), self.cols());
        for r in 0..rows {
            for c in 0..cols {
                let i = r * cols + c;
                let (ld_w, ld_sel, act, swap) = if r == 0 {
                    (
                        self.ld_w_in[c].val(),
                        self.ld_sel_in[c].val(),
                        self.act_in[c].val(),
                        self.swap_in[c].val(),
                    )
                } else {
                    let up = &self.cells[i - cols];
                    (
                        up.ld_w_out.val(),
                        up.ld_sel_out.val(),
                        up.act_out.val(),
                        up.swap_out.val(),
                    )
                };
                let psum = if c == 0 {
                    Signed::default()
                } else {
                    self.cells[i - 1].psum_out.val()
                };
                let cell = &mut self.cells[i];
                cell.clk.next = self.clk.val();
                cell.rst.next = self.rst.val();
                cell.ld_en.next = self.ld_en.val();
                cell.ld_w_in.next = ld_w;
                cell.ld_sel_in.next = ld_sel;
                cell.act_in.next = act;
                cell.swap_in.next = swap;
                cell.psum_in.next = psum;
            }
            self.psum_out[r].next = self.cells[r * cols + cols - 1].psum_out.val();
        }
    }
}

/// The inputs of an array (or [`MxTile`]) for one clock cycle; per-column vectors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrayInputs {
    pub rst: bool,
    pub ld_en: bool,
    /// Weight entering the top of each column's shadow chain.
    pub ld_w: Vec<i8>,
    /// Selector entering the top of each column's shadow chain.
    pub ld_sel: Vec<usize>,
    /// Bit-plane on each column's lanes: bit `l` is lane `l`.
    pub act: Vec<u64>,
    /// Swap token on each column.
    pub swap: Vec<bool>,
}

impl ArrayInputs {
    /// All-zero inputs for `cols` columns.
    pub fn idle(cols: usize) -> Self {
        Self {
            rst: false,
            ld_en: false,
            ld_w: vec![0; cols],
            ld_sel: vec![0; cols],
            act: vec![0; cols],
            swap: vec![false; cols],
        }
    }
}

/// Clock-by-clock driver of an [`MxTile`].
pub struct TileSim<const A: usize, const S: usize, const P: usize> {
    pub tile: MxTile<A, S, P>,
}

impl<const A: usize, const S: usize, const P: usize> TileSim<A, S, P> {
    pub fn new(rows: usize, cols: usize) -> Self {
        let mut tile = MxTile::new(rows, cols);
        tile.connect_all();
        let mut sim = Self { tile };
        sim.settle();
        sim
    }

    fn settle(&mut self) {
        assert!(
            simulate(&mut self.tile, 1000),
            "MxTile did not settle (combinational loop?)"
        );
    }

    /// Applies `inp` for one cycle (clock low, settle, rising edge, settle) and returns
    /// `psum_out` after the edge, i.e. the row outputs during the *next* cycle.
    pub fn cycle(&mut self, inp: &ArrayInputs) -> Vec<i64> {
        let cols = self.tile.cols();
        assert_eq!(inp.act.len(), cols, "ArrayInputs for the wrong width");
        let t = &mut self.tile;
        t.clk.next = Clock::from(false);
        t.rst.next = inp.rst;
        t.ld_en.next = inp.ld_en;
        for c in 0..cols {
            t.ld_w_in[c].next = Bits::from(inp.ld_w[c] as u8 as u64);
            t.ld_sel_in[c].next = Bits::from(inp.ld_sel[c] as u64);
            t.act_in[c].next = Bits::from(inp.act[c]);
            t.swap_in[c].next = inp.swap[c];
        }
        self.settle();
        self.tile.clk.next = Clock::from(true);
        self.settle();
        self.tile
            .psum_out
            .iter()
            .map(|s| signed_to_i64(s.val()))
            .collect()
    }
}

/// Two's-complement value of a rust-hdl `Signed<P>` (P <= 64).
pub fn signed_to_i64<const P: usize>(x: Signed<P>) -> i64 {
    let raw = x.inner().index() as u64;
    let shift = 64 - P as u32;
    ((raw << shift) as i64) >> shift
}

/// One weight tile and the activations streamed through it.
#[derive(Clone, Debug)]
pub struct TileOperands {
    pub rows: usize,
    pub cols: usize,
    pub alpha: usize,
    pub pixels: usize,
    /// int8 weight of cell (r, c) at `r * cols + c`.
    pub weights: Vec<i8>,
    /// Selector of cell (r, c) at `r * cols + c`; a selector >= α selects nothing (0).
    pub selectors: Vec<usize>,
    /// uint8 activation of lane `l` of column `c` at pixel `p`: `(c * alpha + l) * pixels + p`.
    pub acts: Vec<u8>,
}

impl TileOperands {
    fn act(&self, c: usize, lane: usize, p: usize) -> u8 {
        if lane < self.alpha {
            self.acts[(c * self.alpha + lane) * self.pixels + p]
        } else {
            0
        }
    }

    /// The software matmul the array must reproduce: `out[r * pixels + p] =
    /// Σ_c w[r][c] · a[c][sel[r][c]][p]`.
    pub fn reference(&self) -> Vec<i64> {
        let mut out = vec![0i64; self.rows * self.pixels];
        for r in 0..self.rows {
            for p in 0..self.pixels {
                out[r * self.pixels + p] = (0..self.cols)
                    .map(|c| {
                        let i = r * self.cols + c;
                        self.weights[i] as i64 * self.act(c, self.selectors[i], p) as i64
                    })
                    .sum();
            }
        }
        out
    }
}

/// A cycle-by-cycle input program for a sequence of tiles, and where their results appear.
#[derive(Clone, Debug)]
pub struct StreamPlan {
    pub rows: usize,
    pub cols: usize,
    /// Inputs of every cycle, from reset on.
    pub cycles: Vec<ArrayInputs>,
    /// For each tile, the cycle `t` its first bit-plane enters column 0.
    pub starts: Vec<usize>,
    /// For each tile, the first cycle of its `rows` load cycles.
    pub loads: Vec<usize>,
}

/// Builds the input program that runs `tiles` back to back through one array, double
/// buffered: one reset cycle; tile 0's load; then each tile streams (bit-planes LSB first,
/// column c skewed by c cycles, the swap token one cycle ahead of the first bit-plane)
/// while the next tile's weights shift into the shadow chain. A load may start once the
/// last cell (R-1, C-1) has taken the previous swap, at `t - 1 + (C-1) + (R-1)` (the swap
/// reads the shadow in the same cycle the shift overwrites it at the clock edge); the next
/// tile's swap needs its load complete (`t - 1 >= load + R`) and may share a cycle with
/// the previous tile's last bit-plane, which still multiplies by the old active weight.
pub fn plan_stream(tiles: &[TileOperands]) -> StreamPlan {
    assert!(!tiles.is_empty());
    let (rows, cols, alpha) = (tiles[0].rows, tiles[0].cols, tiles[0].alpha);
    assert!(alpha <= 64, "ArrayInputs carries at most 64 lanes");
    for t in tiles {
        assert_eq!(
            (t.rows, t.cols, t.alpha),
            (rows, cols, alpha),
            "mixed tile shapes"
        );
    }
    let mut loads: Vec<usize> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut load = 1; // cycle 0 is reset
    let mut earliest_start = 0;
    for (k, t) in tiles.iter().enumerate() {
        if k > 0 {
            load = (loads[k - 1] + rows).max(starts[k - 1] - 1 + (cols - 1) + (rows - 1));
        }
        let start = earliest_start.max(load + rows + 1);
        loads.push(load);
        starts.push(start);
        earliest_start = start + 8 * t.pixels;
    }
    let last = tiles.len() - 1;
    // Row R-1's sum of the last bit-plane is on psum_out at t + (8P - 1) + (R - 1) + C.
    let end = starts[last] + 8 * tiles[last].pixels + rows + cols;
    let mut cycles = vec![ArrayInputs::idle(cols); end];
    cycles[0].rst = true;
    for (k, t) in tiles.iter().enumerate() {
        for j in 0..rows {
            // Bottom row first: after `rows` shifts, the value fed at step j sits in row R-1-j.
            let r = rows - 1 - j;
            let cyc = &mut cycles[loads[k] + j];
            cyc.ld_en = true;
            for c in 0..cols {
                cyc.ld_w[c] = t.weights[r * cols + c];
                cyc.ld_sel[c] = t.selectors[r * cols + c];
            }
        }
        for c in 0..cols {
            cycles[starts[k] - 1 + c].swap[c] = true;
            for p in 0..t.pixels {
                for b in 0..8 {
                    let plane = (0..alpha)
                        .map(|l| (((t.act(c, l, p) >> b) & 1) as u64) << l)
                        .fold(0, |a, x| a | x);
                    cycles[starts[k] + c + 8 * p + b].act[c] = plane;
                }
            }
        }
    }
    StreamPlan {
        rows,
        cols,
        cycles,
        starts,
        loads,
    }
}

impl StreamPlan {
    /// Shift-and-accumulates the row outputs of a run of this plan into each tile's
    /// results (`[r * pixels + p]`, as [`TileOperands::reference`]). `after[n]` is
    /// `psum_out` after the clock edge that ends cycle `n` (what [`TileSim::cycle`]
    /// returns), so row r's sum of the bit-plane that entered column 0 at `t` is
    /// `after[t + r + C - 1][r]`.
    pub fn collect(&self, tiles: &[TileOperands], after: &[Vec<i64>]) -> Vec<Vec<i64>> {
        tiles
            .iter()
            .zip(&self.starts)
            .map(|(t, &start)| {
                let mut out = vec![0i64; self.rows * t.pixels];
                for r in 0..self.rows {
                    for p in 0..t.pixels {
                        out[r * t.pixels + p] = (0..8)
                            .map(|b| after[start + 8 * p + b + r + self.cols - 1][r] << b)
                            .sum();
                    }
                }
                out
            })
            .collect()
    }
}

/// Runs `plan` on a fresh rust-hdl tile; returns `psum_out` after every cycle's edge.
pub fn run_plan<const A: usize, const S: usize, const P: usize>(
    plan: &StreamPlan,
) -> Vec<Vec<i64>> {
    let mut sim = TileSim::<A, S, P>::new(plan.rows, plan.cols);
    plan.cycles.iter().map(|c| sim.cycle(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(cols: usize) -> ArrayInputs {
        ArrayInputs::idle(cols)
    }

    /// Loads `w`/`sel` into a 1x1 tile's shadow register, then returns the sums of the
    /// swap cycle and the following cycle for the lane bits `act` (the swap cycle still
    /// multiplies by the active weight, 0 after reset).
    fn one_cell<const A: usize, const S: usize, const P: usize>(
        w: i8,
        sel: usize,
        act: u64,
    ) -> (i64, i64) {
        let mut sim = TileSim::<A, S, P>::new(1, 1);
        let mut i = inputs(1);
        i.rst = true;
        sim.cycle(&i);
        let mut i = inputs(1);
        i.ld_en = true;
        i.ld_w = vec![w];
        i.ld_sel = vec![sel];
        sim.cycle(&i);
        let mut i = inputs(1);
        i.swap = vec![true];
        i.act = vec![act];
        let first = sim.cycle(&i)[0];
        let mut i = inputs(1);
        i.act = vec![act];
        let second = sim.cycle(&i)[0];
        (first, second)
    }

    #[test]
    fn swap_takes_effect_on_the_next_cycle() {
        assert_eq!(one_cell::<3, 2, 9>(-77, 1, 0b010), (0, -77));
        assert_eq!(one_cell::<3, 2, 9>(-77, 1, 0b101), (0, 0));
    }

    #[test]
    fn most_negative_weight_is_sign_extended() {
        assert_eq!(one_cell::<8, 3, 14>(-128, 7, 0x80), (0, -128));
        assert_eq!(one_cell::<1, 1, 9>(-128, 0, 1), (0, -128));
        assert_eq!(one_cell::<1, 1, 9>(127, 0, 1), (0, 127));
    }

    #[test]
    fn selector_beyond_alpha_reads_zero() {
        // α = 3 with a 2-bit selector: selector 3 names no lane, even with all lines high.
        assert_eq!(one_cell::<3, 2, 11>(5, 3, 0b111), (0, 0));
        assert_eq!(one_cell::<3, 2, 11>(5, 2, 0b111), (0, 5));
    }

    #[test]
    fn reset_leaves_the_datapath() {
        // Reset is control only: the weights in the shadow and active copies survive it
        // (every tile loads them anyway), so a reset costs the datapath no logic.
        let mut sim = TileSim::<2, 1, 9>::new(1, 1);
        let mut i = inputs(1);
        i.ld_en = true;
        i.ld_w = vec![9];
        sim.cycle(&i);
        let mut i = inputs(1);
        i.swap = vec![true];
        sim.cycle(&i);
        let mut i = inputs(1);
        i.rst = true;
        sim.cycle(&i);
        let mut i = inputs(1);
        i.act = vec![1];
        assert_eq!(sim.cycle(&i), vec![9], "active weight kept through reset");
    }

    #[test]
    fn shadow_chain_shifts_down_a_column() {
        let mut sim = TileSim::<1, 1, 9>::new(3, 1);
        for w in [30i8, 20, 10] {
            let mut i = inputs(1);
            i.ld_en = true;
            i.ld_w = vec![w];
            sim.cycle(&i);
        }
        let cells = &sim.tile.cells;
        let got: Vec<u64> = cells
            .iter()
            .map(|c| c.ld_w_out.val().index() as u64)
            .collect();
        assert_eq!(got, vec![10, 20, 30], "bottom row's value went in first");
    }

    #[test]
    fn cell_verilog_is_renamed_and_has_the_template_ports() {
        let v = cell_verilog::<3, 2, 11>();
        assert!(v.contains("module ccc_mx_cell_hdl(clk,rst,ld_en,ld_w_in,ld_sel_in,"));
        assert!(!v.contains("module top"));
        assert!(v.contains("input wire signed [10:0] psum_in;"));
    }
}
