//! The MX cell and array: golden Verilog, the rust-hdl tile against the software matmul,
//! the yosys equivalence proof of the template cell against the rust-hdl cell (and of
//! broken cells failing it), Verilator lint, Icarus simulation of the rendered array, and
//! iCE40 cost. Tool-dependent tests print `SKIPPED <test>: <tool> not found` and return
//! when the tool is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ccc::rtl::cell::{CellParams, render_array, render_cell, render_cell_bitserial};
use ccc::rtl::hdl::{self, StreamPlan, TileOperands, plan_stream, run_plan};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------
// helpers

fn require(test: &str, tool: &str) -> bool {
    common::need(tool, test)
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("spawn tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Random tile: int8 weights over the full range, selectors mostly in [0, α) but sometimes
/// in [α, 2^sel_w) (those must read 0), uint8 activations.
fn random_tile(
    rng: &mut ChaCha8Rng,
    rows: usize,
    cols: usize,
    p: CellParams,
    pixels: usize,
) -> TileOperands {
    let lanes = 1usize << p.sel_w;
    TileOperands {
        rows,
        cols,
        alpha: p.alpha,
        pixels,
        weights: (0..rows * cols)
            .map(|_| rng.random_range(-128..=127i16) as i8)
            .collect(),
        selectors: (0..rows * cols)
            .map(|_| {
                if lanes > p.alpha && rng.random_range(0..8) == 0 {
                    rng.random_range(p.alpha..lanes)
                } else {
                    rng.random_range(0..p.alpha)
                }
            })
            .collect(),
        acts: (0..cols * p.alpha * pixels)
            .map(|_| rng.random_range(0..=255u8))
            .collect(),
    }
}

/// The largest bit-plane sums: every weight `w`, every activation 255, valid selectors.
fn extreme_tile(rows: usize, cols: usize, p: CellParams, w: i8) -> TileOperands {
    TileOperands {
        rows,
        cols,
        alpha: p.alpha,
        pixels: 2,
        weights: vec![w; rows * cols],
        selectors: (0..rows * cols).map(|i| i % p.alpha).collect(),
        acts: vec![255; cols * p.alpha * 2],
    }
}

/// A mixed program: random tiles (one of a single pixel, too short to hide the next load),
/// and the two extreme tiles, all back to back through one double-buffered array.
fn program(seed: u64, rows: usize, cols: usize, p: CellParams) -> Vec<TileOperands> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    vec![
        random_tile(&mut rng, rows, cols, p, 3),
        random_tile(&mut rng, rows, cols, p, 1),
        extreme_tile(rows, cols, p, -128),
        random_tile(&mut rng, rows, cols, p, 5),
        extreme_tile(rows, cols, p, 127),
    ]
}

fn check_results(what: &str, plan: &StreamPlan, tiles: &[TileOperands], after: &[Vec<i64>]) {
    let got = plan.collect(tiles, after);
    for (k, t) in tiles.iter().enumerate() {
        assert_eq!(
            got[k],
            t.reference(),
            "{what}: tile {k} ({}x{} α={} P={}) differs from the matmul",
            t.rows,
            t.cols,
            t.alpha,
            t.pixels
        );
    }
}

// ---------------------------------------------------------------------------------------
// golden text

fn golden(name: &str, text: &str) {
    common::golden_file(name, text);
}

#[test]
fn golden_cell_alpha3() {
    let p = CellParams::for_array(3, 3);
    golden("ccc_mx_cell_a3_c3.v", &render_cell(&p).unwrap());
}

#[test]
fn golden_array_2x3_alpha3() {
    let p = CellParams::for_array(3, 3);
    golden("ccc_mx_array_2x3_a3.v", &render_array(2, 3, &p).unwrap());
}

#[test]
fn golden_cell_bitserial_alpha3() {
    let p = CellParams::for_array(3, 3);
    golden(
        "ccc_mx_cell_bitserial_a3.v",
        &render_cell_bitserial(&p).unwrap(),
    );
}

#[test]
fn rendering_is_deterministic_and_names_its_generator() {
    let p = CellParams::for_array(8, 32);
    let a = render_array(8, 32, &p).unwrap();
    assert_eq!(a, render_array(8, 32, &p).unwrap());
    let c = render_cell(&p).unwrap();
    assert_eq!(c, render_cell(&p).unwrap());
    let tag = format!("ccc {}", env!("CARGO_PKG_VERSION"));
    assert!(c.contains(&tag) && a.contains(&tag));
    assert!(c.contains("ALPHA = 8, SEL_W = 3, PSUM_W = 14"));
    assert!(a.contains("ROWS = 8, COLS = 32, ALPHA = 8, SEL_W = 3, PSUM_W = 14"));
    assert!(c.contains("parameter integer PSUM_W = 14"));
    assert!(a.contains("parameter integer COLS   = 32"));
}

// ---------------------------------------------------------------------------------------
// rust-hdl tile against the software matmul

macro_rules! tile_test {
    ($name:ident, $rows:expr, $cols:expr, $a:literal, $s:literal, $p:literal, $seed:expr) => {
        #[test]
        fn $name() {
            let p = CellParams::for_array($a, $cols);
            assert_eq!(
                (p.sel_w, p.psum_w),
                ($s, $p),
                "test widths disagree with for_array"
            );
            let tiles = program($seed, $rows, $cols, p);
            let plan = plan_stream(&tiles);
            // Double buffering really happened: some load overlaps the previous tile's stream.
            assert!(
                (1..tiles.len())
                    .any(|k| plan.loads[k] < plan.starts[k - 1] + 8 * tiles[k - 1].pixels),
                "no load was hidden behind a stream"
            );
            let after = run_plan::<$a, $s, $p>(&plan);
            check_results("rust-hdl tile", &plan, &tiles, &after);
        }
    };
}

tile_test!(hdl_tile_1x1_alpha1, 1, 1, 1, 1, 9, 11);
tile_test!(hdl_tile_2x3_alpha3, 2, 3, 3, 2, 11, 12);
tile_test!(hdl_tile_3x2_alpha3, 3, 2, 3, 2, 10, 13);
tile_test!(hdl_tile_5x2_alpha1, 5, 2, 1, 1, 10, 14);
tile_test!(hdl_tile_4x4_alpha8, 4, 4, 8, 3, 11, 15);
tile_test!(hdl_tile_3x7_alpha5, 3, 7, 5, 3, 12, 16);
tile_test!(hdl_tile_8x8_alpha8, 8, 8, 8, 3, 12, 17);

/// The array's timing contract, checked cycle by cycle: a bit-plane entering column 0 at
/// t (column c at t + c) puts row r's sum on psum_out at t + r + COLS, and nothing else
/// appears. With all weights 1 and every activation 255, each bit-plane sum is COLS.
#[test]
fn hdl_tile_timing_contract() {
    const R: usize = 3;
    const C: usize = 4;
    let p = CellParams::for_array(3, C);
    let tile = TileOperands {
        rows: R,
        cols: C,
        alpha: 3,
        pixels: 1,
        weights: vec![1; R * C],
        selectors: (0..R * C).map(|i| i % 3).collect(),
        acts: vec![255; C * 3],
    };
    let plan = plan_stream(std::slice::from_ref(&tile));
    let after = run_plan::<3, 2, 11>(&plan);
    assert_eq!(p.psum_w, 11);
    let t = plan.starts[0];
    for (n, row_out) in after.iter().enumerate() {
        // after[n] is psum_out during cycle n + 1.
        let time = n + 1;
        for (r, &v) in row_out.iter().enumerate() {
            let live = time >= t + r + C && time < t + r + C + 8;
            assert_eq!(
                v,
                if live { C as i64 } else { 0 },
                "row {r} at cycle {time}"
            );
        }
    }
    // Loading takes exactly ROWS ld_en cycles, bottom row's values first.
    let ld: Vec<usize> = (0..plan.cycles.len())
        .filter(|&n| plan.cycles[n].ld_en)
        .collect();
    assert_eq!(ld, (plan.loads[0]..plan.loads[0] + R).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// yosys: equivalence of the template cell with the rust-hdl cell

/// Proves `gold` (a `ccc_mx_cell` module) equivalent to rust-hdl's cell. Ports match by
/// name; the four weight/selector registers are matched by renaming rust-hdl's stub nets
/// (`w_shadow$q`, ...) to the template's register names, so the induction has every state
/// element paired. Returns (proved, log).
fn prove_equivalent(gold: &str, gate: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ccc_mx_cell.v", gold);
    write(dir.path(), "ccc_mx_cell_hdl.v", gate);
    let script = "\
read_verilog ccc_mx_cell.v
read_verilog ccc_mx_cell_hdl.v
proc
hierarchy -check
flatten
opt_clean
cd ccc_mx_cell_hdl
rename w_shadow$q w_shadow
rename sel_shadow$q sel_shadow
rename w_active$q w_active
rename sel_active$q sel_active
cd ..
";
    run_equiv(dir.path(), script, "ccc_mx_cell", "ccc_mx_cell_hdl")
}

/// Runs `prepare` (reads and renames) then yosys's sequential equivalence proof of
/// `gate` against `gold` in `dir`, logging to equiv.log. Returns (proved, log).
fn run_equiv(dir: &Path, prepare: &str, gold: &str, gate: &str) -> (bool, String) {
    let script = format!(
        "{prepare}equiv_make {gold} {gate} equiv\nhierarchy -top equiv\nequiv_simple -seq 2\n\
         equiv_induct -seq 2\nequiv_status -assert\n"
    );
    write(dir, "equiv.ys", &script);
    run(Command::new("yosys")
        .args(["-q", "-l", "equiv.log", "equiv.ys"])
        .current_dir(dir))
}

fn assert_proof_fails(what: &str, gold: &str, gate: &str) {
    let (ok, log) = prove_equivalent(gold, gate);
    assert!(!ok, "{what}: a broken cell passed the equivalence proof");
    // It must fail *in the proof*, not because the mutant does not parse.
    assert!(
        log.contains("unproven $equiv cells"),
        "{what}: failed for another reason:\n{log}"
    );
}

fn mutate(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "mutation target `{from}` not in the template"
    );
    text.replacen(from, to, 1)
}

#[test]
fn yosys_equiv_template_cell_matches_rust_hdl() {
    if !require("yosys_equiv_template_cell_matches_rust_hdl", "yosys") {
        return;
    }
    let cases: [(CellParams, String); 3] = [
        (
            CellParams::for_array(8, 32),
            hdl::cell_verilog::<8, 3, 14>(),
        ),
        (CellParams::for_array(3, 5), hdl::cell_verilog::<3, 2, 12>()),
        (CellParams::for_array(1, 1), hdl::cell_verilog::<1, 1, 9>()),
    ];
    for (p, gate) in cases {
        let (ok, log) = prove_equivalent(&render_cell(&p).unwrap(), &gate);
        assert!(
            ok,
            "{p:?}: template cell not proven equal to rust-hdl:\n{log}"
        );
    }
}

#[test]
fn yosys_equiv_rejects_broken_cells() {
    if !require("yosys_equiv_rejects_broken_cells", "yosys") {
        return;
    }
    for (p, gate) in [
        (
            CellParams::for_array(8, 32),
            hdl::cell_verilog::<8, 3, 14>(),
        ),
        (CellParams::for_array(3, 5), hdl::cell_verilog::<3, 2, 12>()),
    ] {
        let gold = render_cell(&p).unwrap();
        for (what, from, to) in [
            (
                "selector off by one",
                "assign sel_bit = act_pad[sel_active];",
                "assign sel_bit = act_pad[sel_active + 1'b1];",
            ),
            (
                "psum without sign extension",
                "{ {(PSUM_W - 8){w_active[7]}}, w_active }",
                "{ {(PSUM_W - 8){1'b0}}, w_active }",
            ),
            // The old timing (the swap token on the first bit-plane, shadow bypassing the
            // active copy that cycle) is a different cell now, and must be told apart.
            (
                "same-cycle shadow bypass",
                "assign sel_bit = act_pad[sel_active];",
                "assign sel_bit = act_pad[swap_in ? sel_shadow : sel_active];",
            ),
            (
                "active copy loaded on ld_en",
                "    if (swap_in) begin",
                "    if (ld_en) begin",
            ),
        ] {
            assert_proof_fails(what, &mutate(&gold, from, to), &gate);
        }
    }
}

/// yosys's own simulation models of the two iCE40 primitives the `CCC_ICE40` cell
/// instantiates, cut out of `ice40/cells_sim.v` (reading the whole file costs ~40 s: it
/// elaborates every block-RAM model).
fn ice40_adder_models() -> String {
    let cells = ccc::rtl::sim::yosys_datdir()
        .expect("yosys data directory")
        .join("ice40/cells_sim.v");
    let text = std::fs::read_to_string(&cells).expect("read ice40/cells_sim.v");
    let module = |name: &str| -> String {
        ccc::rtl::sim::module_text(&text, name)
            .unwrap_or_else(|e| panic!("{name} in {}: {e:#}", cells.display()))
    };
    // The models give unconnected inputs defaults through this macro; the cell connects
    // every input, so it expands to nothing here.
    format!(
        "`define ICE40_DEFAULT_ASSIGNMENT_0\n`define ICE40_DEFAULT_ASSIGNMENT_1\n{}\n{}\n",
        module("SB_LUT4"),
        module("SB_CARRY")
    )
}

/// Proves the cell as the iCE40 flow reads it (`-DCCC_ICE40`: SB_LUT4 + SB_CARRY per
/// partial-sum bit, mapped through yosys's models of them) equal to the generic cell,
/// which the proof above ties to the rust-hdl model. Returns (proved, log).
fn prove_ice40_adder(cell: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cell.v", cell);
    write(dir.path(), "prims.v", &ice40_adder_models());
    let script = "\
read_verilog cell.v
rename ccc_mx_cell ccc_mx_cell_generic
read_verilog -DCCC_ICE40 cell.v
techmap -map prims.v ccc_mx_cell
proc
opt_clean
";
    run_equiv(dir.path(), script, "ccc_mx_cell_generic", "ccc_mx_cell")
}

#[test]
fn yosys_equiv_ice40_adder_matches_generic_cell() {
    if !require("yosys_equiv_ice40_adder_matches_generic_cell", "yosys") {
        return;
    }
    for p in [
        CellParams::for_array(8, 32),
        CellParams::for_array(3, 5),
        CellParams::for_array(1, 1),
    ] {
        let cell = render_cell(&p).unwrap();
        assert!(cell.contains("`ifdef CCC_ICE40"));
        let (ok, log) = prove_ice40_adder(&cell);
        assert!(ok, "{p:?}: iCE40 adder cell not proven equal:\n{log}");
    }
    // A wrong sum LUT (one truth-table entry flipped) and a carry that skips the weight
    // must fail in the proof.
    let cell = render_cell(&CellParams::for_array(8, 32)).unwrap();
    for (what, from, to) in [
        ("sum LUT", ".LUT_INIT(16'hc66c)", ".LUT_INIT(16'hc66d)"),
        (
            "carry input",
            ".I1(w_ext[gb]),\n          .CI",
            ".I1(1'b0),\n          .CI",
        ),
    ] {
        let (ok, log) = prove_ice40_adder(&mutate(&cell, from, to));
        assert!(!ok, "{what}: a broken iCE40 adder passed the proof");
        assert!(
            log.contains("unproven $equiv cells"),
            "{what}: failed for another reason:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Verilator lint and yosys synthesis checks

fn array_dir(rows: usize, cols: usize, alpha: usize) -> tempfile::TempDir {
    let p = CellParams::for_array(alpha, cols);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ccc_mx_cell.v", &render_cell(&p).unwrap());
    write(
        dir.path(),
        "ccc_mx_array.v",
        &render_array(rows, cols, &p).unwrap(),
    );
    dir
}

#[test]
fn verilator_lint_cell_and_arrays() {
    if !require("verilator_lint_cell_and_arrays", "verilator") {
        return;
    }
    for alpha in [1, 3, 8, 16] {
        let dir = tempfile::tempdir().unwrap();
        let p = CellParams::for_array(alpha, 32);
        write(dir.path(), "ccc_mx_cell.v", &render_cell(&p).unwrap());
        write(
            dir.path(),
            "ccc_mx_cell_bitserial.v",
            &render_cell_bitserial(&p).unwrap(),
        );
        for top in ["ccc_mx_cell", "ccc_mx_cell_bitserial"] {
            let (ok, log) = run(Command::new("verilator")
                .args(["--lint-only", "-Wall", &format!("{top}.v")])
                .current_dir(dir.path()));
            assert!(ok, "lint {top} α={alpha}:\n{log}");
        }
    }
    for (rows, cols, alpha) in [(1, 1, 1), (2, 3, 3), (8, 8, 8), (4, 16, 1), (3, 1, 5)] {
        let dir = array_dir(rows, cols, alpha);
        let (ok, log) = run(Command::new("verilator")
            .args([
                "--lint-only",
                "-Wall",
                "--top-module",
                "ccc_mx_array",
                "ccc_mx_array.v",
                "ccc_mx_cell.v",
            ])
            .current_dir(dir.path()));
        assert!(ok, "lint {rows}x{cols} α={alpha}:\n{log}");
    }
}

#[test]
fn yosys_synthesizes_without_latches() {
    if !require("yosys_synthesizes_without_latches", "yosys") {
        return;
    }
    for (rows, cols, alpha) in [(1, 1, 1), (2, 3, 3), (4, 4, 8)] {
        let dir = array_dir(rows, cols, alpha);
        write(
            dir.path(),
            "ccc_mx_cell_bitserial.v",
            &render_cell_bitserial(&CellParams::for_array(alpha, cols)).unwrap(),
        );
        for (top, files) in [
            ("ccc_mx_array", "ccc_mx_array.v ccc_mx_cell.v"),
            ("ccc_mx_cell_bitserial", "ccc_mx_cell_bitserial.v"),
        ] {
            let script = format!(
                "read_verilog {files}; hierarchy -check -top {top}; proc; check -assert; \
                 synth -top {top}; check -assert; \
                 select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$_DLATCH_* t:$_DLATCHSR_*"
            );
            let (ok, log) = run(Command::new("yosys")
                .args(["-q", "-p", &script])
                .current_dir(dir.path()));
            assert!(ok, "synth {top} {rows}x{cols} α={alpha}:\n{log}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Icarus: the rendered array itself against the matmul (and cycle for cycle against the
// rust-hdl tile)

/// Packs one cycle's inputs as the testbench's stimulus word,
/// `{rst, ld_en, ld_w_in, ld_sel_in, act_in, swap_in}`, in hex.
fn stimulus_word(inp: &hdl::ArrayInputs, p: CellParams) -> String {
    let cols = inp.act.len();
    // Little-endian bit vector, filled from the least significant field up.
    let mut bits: Vec<bool> = Vec::new();
    for c in 0..cols {
        bits.push(inp.swap[c]);
    }
    for c in 0..cols {
        for l in 0..p.alpha {
            bits.push((inp.act[c] >> l) & 1 == 1);
        }
    }
    for c in 0..cols {
        for b in 0..p.sel_w {
            bits.push((inp.ld_sel[c] >> b) & 1 == 1);
        }
    }
    for c in 0..cols {
        for b in 0..8 {
            bits.push((inp.ld_w[c] as u8 >> b) & 1 == 1);
        }
    }
    bits.push(inp.ld_en);
    bits.push(inp.rst);
    while !bits.len().is_multiple_of(4) {
        bits.push(false);
    }
    bits.chunks(4)
        .rev()
        .map(|n| {
            let v = n
                .iter()
                .enumerate()
                .map(|(i, &b)| (b as u32) << i)
                .sum::<u32>();
            char::from_digit(v, 16).unwrap()
        })
        .collect()
}

fn testbench(rows: usize, cols: usize, p: CellParams, n: usize) -> String {
    let w = 2 + cols * (8 + p.sel_w + p.alpha + 1);
    format!(
        "\
// Testbench for ccc_mx_array (Verilog-2005): applies one stimulus word per cycle and
// prints psum_out after every rising edge.
module tb;
  localparam integer ROWS = {rows}, COLS = {cols}, ALPHA = {alpha}, SEL_W = {sel_w},
                     PSUM_W = {psum_w}, N = {n}, W = {w};
  reg clk;
  reg rst, ld_en;
  reg [COLS*8-1:0] ld_w_in;
  reg [COLS*SEL_W-1:0] ld_sel_in;
  reg [COLS*ALPHA-1:0] act_in;
  reg [COLS-1:0] swap_in;
  wire [ROWS*PSUM_W-1:0] psum_out, psum_mid;
  reg [W-1:0] stim [0:N-1];
  integer i;

  // One segment: every column loads together, no cut.
  ccc_mx_array #(.ROWS(ROWS), .COLS(COLS), .ALPHA(ALPHA), .SEL_W(SEL_W), .PSUM_W(PSUM_W),
                 .SPLIT(0))
    u_dut (.clk(clk), .rst(rst), .ld_en({{COLS*((ROWS+3)/4){{ld_en}}}}), .ld_w_in(ld_w_in),
           .ld_sel_in(ld_sel_in), .act_in(act_in), .swap_in(swap_in), .cut_in(1'b0),
           .psum_out(psum_out), .psum_mid(psum_mid));

  always #5 clk = ~clk;

  initial begin
    clk = 1'b0;
    $readmemh(\"stim.hex\", stim);
    for (i = 0; i < N; i = i + 1) begin
      {{rst, ld_en, ld_w_in, ld_sel_in, act_in, swap_in}} = stim[i];
      @(posedge clk);
      #1 $display(\"%0d %b\", i, psum_out);
    end
    $finish;
  end
endmodule
",
        alpha = p.alpha,
        sel_w = p.sel_w,
        psum_w = p.psum_w,
    )
}

/// The trace's psum_out per cycle and row, and per row how many leading cycles had
/// unknown bits: the cells' datapath registers are not reset, so a row's output is X
/// until the first tile's weights and bit-planes have passed through it; once known it
/// must stay known. An unknown row reads as i64::MIN, a value no result can have.
fn parse_trace(text: &str, rows: usize, p: CellParams, n: usize) -> (Vec<usize>, Vec<Vec<i64>>) {
    let mut out: Vec<Vec<i64>> = Vec::new();
    let mut unknown = vec![0usize; rows];
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(i), Some(bin)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else { continue };
        assert_eq!(i, out.len(), "trace out of order");
        assert_eq!(bin.len(), rows * p.psum_w, "cycle {i}: width of {bin}");
        // LSB last in the text: reverse so bit k is bits[k].
        let bits: Vec<char> = bin.chars().rev().collect();
        let row = (0..rows)
            .map(|r| {
                let word = &bits[r * p.psum_w..(r + 1) * p.psum_w];
                if word.iter().any(|c| *c != '0' && *c != '1') {
                    assert_eq!(
                        unknown[r], i,
                        "cycle {i}: row {r} of psum_out has X/Z bits after known cycles: {bin}"
                    );
                    unknown[r] += 1;
                    return i64::MIN;
                }
                let raw: u64 = word
                    .iter()
                    .enumerate()
                    .map(|(b, c)| ((*c == '1') as u64) << b)
                    .sum();
                let sh = 64 - p.psum_w as u32;
                ((raw << sh) as i64) >> sh
            })
            .collect();
        out.push(row);
    }
    assert_eq!(
        out.len(),
        n,
        "testbench printed {} of {n} cycles",
        out.len()
    );
    (unknown, out)
}

fn iverilog_array<const A: usize, const S: usize, const P: usize>(
    rows: usize,
    cols: usize,
    seed: u64,
) {
    let p = CellParams::for_array(A, cols);
    assert_eq!((p.sel_w, p.psum_w), (S, P));
    let tiles = program(seed, rows, cols, p);
    let plan = plan_stream(&tiles);
    let n = plan.cycles.len();
    let dir = array_dir(rows, cols, A);
    let stim: String = plan
        .cycles
        .iter()
        .map(|c| stimulus_word(c, p) + "\n")
        .collect();
    write(dir.path(), "stim.hex", &stim);
    write(dir.path(), "tb.v", &testbench(rows, cols, p, n));
    let (ok, log) = run(Command::new("iverilog")
        .args([
            "-g2005",
            "-Wall",
            "-o",
            "sim.vvp",
            "tb.v",
            "ccc_mx_array.v",
            "ccc_mx_cell.v",
        ])
        .current_dir(dir.path()));
    assert!(
        ok && !log.contains("warning"),
        "iverilog {rows}x{cols} α={A}:\n{log}"
    );
    let (ok, log) = run(Command::new("vvp")
        .args(["-n", "sim.vvp"])
        .current_dir(dir.path()));
    assert!(ok, "vvp {rows}x{cols} α={A}:\n{log}");
    let (unknown, after) = parse_trace(&log, rows, p, n);
    check_results("Icarus RTL", &plan, &tiles, &after);
    // Cycle for cycle, the RTL and the rust-hdl model agree on every known output (the
    // model starts its unreset registers at 0).
    let model = run_plan::<A, S, P>(&plan);
    for (i, (v, m)) in after.iter().zip(&model).enumerate() {
        for r in (0..rows).filter(|&r| i >= unknown[r]) {
            assert_eq!(
                v[r], m[r],
                "{rows}x{cols} α={A}: RTL and rust-hdl differ after cycle {i}, row {r}"
            );
        }
    }
}

#[test]
fn iverilog_array_matches_matmul() {
    if !require("iverilog_array_matches_matmul", "iverilog")
        || !require("iverilog_array_matches_matmul", "vvp")
    {
        return;
    }
    iverilog_array::<3, 2, 11>(2, 3, 21);
    iverilog_array::<8, 3, 12>(4, 5, 22);
    iverilog_array::<1, 1, 9>(3, 1, 23);
    iverilog_array::<5, 3, 12>(1, 8, 24);
}

// ---------------------------------------------------------------------------------------
// iCE40 cost per cell

/// (SB_LUT4, DFFs, SB_CARRY) of `top` in `file` after `synth_ice40`; `extra` goes to
/// `synth_ice40`, `read` to `read_verilog` (`-DCCC_ICE40`, as the iCE40 flow reads it).
fn ice40_cost(dir: &Path, file: &str, top: &str, extra: &str, read: &str) -> (usize, usize, usize) {
    let (ok, log) = run(Command::new("yosys")
        .args([
            "-p",
            &format!("read_verilog {read} {file}; synth_ice40 {extra} -top {top}; stat"),
        ])
        .current_dir(dir));
    assert!(ok, "synth_ice40 {top}:\n{log}");
    // The last `stat` table is the one after synthesis.
    let table = &log[log.rfind("Number of cells").expect("stat output")..];
    let count = |prefix: &str| -> usize {
        table
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                match (it.next(), it.next()) {
                    (Some(name), Some(n)) if name.starts_with(prefix) => n.parse::<usize>().ok(),
                    _ => None,
                }
            })
            .sum()
    };
    (count("SB_LUT4"), count("SB_DFF"), count("SB_CARRY"))
}

/// Prints the per-cell iCE40 cost quoted in docs/MX_CELL.md and guards it against
/// regressions (bounds a little above the measured numbers).
#[test]
fn ice40_cost_per_cell() {
    if !require("ice40_cost_per_cell", "yosys") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for alpha in [4, 8, 16] {
        let p = CellParams::for_array(alpha, 32);
        write(dir.path(), "ccc_mx_cell.v", &render_cell(&p).unwrap());
        write(
            dir.path(),
            "ccc_mx_cell_bitserial.v",
            &render_cell_bitserial(&p).unwrap(),
        );
        let (lut, dff, carry) = ice40_cost(dir.path(), "ccc_mx_cell.v", "ccc_mx_cell", "", "");
        let (lut9, _, _) = ice40_cost(dir.path(), "ccc_mx_cell.v", "ccc_mx_cell", "-abc9", "");
        let (ilut, idff, icarry) = ice40_cost(
            dir.path(),
            "ccc_mx_cell.v",
            "ccc_mx_cell",
            "",
            "-DCCC_ICE40",
        );
        let (slut, sdff, scarry) = ice40_cost(
            dir.path(),
            "ccc_mx_cell_bitserial.v",
            "ccc_mx_cell_bitserial",
            "",
            "",
        );
        println!(
            "iCE40 α={alpha} C=32: ccc_mx_cell {ilut} LUT4, {idff} DFF, {icarry} CARRY as the \
             iCE40 flow builds it (-DCCC_ICE40); generic adder {lut} LUT4 ({lut9} with \
             -abc9), {dff} DFF, {carry} CARRY; bit-serial psum cell {slut} LUT4, {sdff} DFF, \
             {scarry} CARRY"
        );
        // DFFs are exact: 2x(8 + SEL_W) weight/selector + α lanes + swap + PSUM_W.
        assert_eq!(dff, 2 * (8 + p.sel_w) + alpha + 1 + p.psum_w);
        assert_eq!(idff, dff);
        // One sum LUT per partial-sum bit plus the lane multiplexer.
        assert!(
            ilut < lut,
            "the iCE40 adder saved nothing: {ilut} vs {lut} SB_LUT4"
        );
        if alpha == 8 {
            assert!(
                ilut < 25,
                "α=8 iCE40 cell is {ilut} SB_LUT4, the target is < 25"
            );
            assert!(lut <= 38, "α=8 generic cell grew to {lut} SB_LUT4");
        }
    }
}

/// The bit-serial partial-sum cell (kept for cost comparison) must work too, or its cost
/// numbers mean nothing: one row of COLS cells, words of 16 + ceil(log2 COLS) bits.
#[test]
fn iverilog_bitserial_row_matches_matmul() {
    if !require("iverilog_bitserial_row_matches_matmul", "iverilog")
        || !require("iverilog_bitserial_row_matches_matmul", "vvp")
    {
        return;
    }
    const COLS: usize = 4;
    const PIXELS: usize = 5;
    let p = CellParams::for_array(3, COLS);
    let word = 16 + ccc::rtl::cell::ceil_log2(COLS);
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let mut tile = random_tile(&mut rng, 1, COLS, p, PIXELS);
    // Every cell contributes, and negative products (the sign-extension path) are certain.
    tile.selectors = (0..COLS).map(|c| c % p.alpha).collect();
    tile.weights[0] = -128;
    tile.weights[1] = -3;
    let (t0, n) = (2, 2 + COLS + PIXELS * word + 2);
    // Stimulus word: {rst, ld_en, ld_w, ld_sel, act, swap, frame}, hex.
    let mut stim = String::new();
    for cyc in 0..n {
        let mut bits: Vec<bool> = Vec::new();
        let mut act = [0u64; COLS];
        let mut swap = [false; COLS];
        let mut frame = [false; COLS];
        for c in 0..COLS {
            if cyc >= t0 + c && cyc < t0 + c + PIXELS * word {
                let (px, k) = ((cyc - t0 - c) / word, (cyc - t0 - c) % word);
                frame[c] = k == 0;
                swap[c] = cyc == t0 + c;
                if k < 8 {
                    for l in 0..p.alpha {
                        let a = tile.acts[(c * p.alpha + l) * PIXELS + px];
                        act[c] |= (((a >> k) & 1) as u64) << l;
                    }
                }
            }
        }
        bits.extend(frame);
        bits.extend(swap);
        for a in act {
            bits.extend((0..p.alpha).map(|l| (a >> l) & 1 == 1));
        }
        for c in 0..COLS {
            bits.extend((0..p.sel_w).map(|b| (tile.selectors[c] >> b) & 1 == 1));
        }
        for c in 0..COLS {
            bits.extend((0..8).map(|b| (tile.weights[c] as u8 >> b) & 1 == 1));
        }
        bits.push(cyc == 1);
        bits.push(cyc == 0);
        while !bits.len().is_multiple_of(4) {
            bits.push(false);
        }
        let hex: String = bits
            .chunks(4)
            .rev()
            .map(|n| {
                let v = n.iter().enumerate().map(|(i, &b)| (b as u32) << i).sum();
                char::from_digit(v, 16).unwrap()
            })
            .collect();
        stim += &hex;
        stim.push('\n');
    }
    let w = 2 + COLS * (8 + p.sel_w + p.alpha + 2);
    let tb = format!(
        "\
module tb;
  localparam integer COLS = {COLS}, ALPHA = {alpha}, SEL_W = {sel_w}, N = {n}, W = {w};
  reg clk;
  reg rst, ld_en;
  reg [COLS*8-1:0] ld_w;
  reg [COLS*SEL_W-1:0] ld_sel;
  reg [COLS*ALPHA-1:0] act;
  reg [COLS-1:0] swap, frame;
  wire [COLS:0] psum;
  reg [W-1:0] stim [0:N-1];
  integer i;
  assign psum[0] = 1'b0;
  genvar c;
  generate
    for (c = 0; c < COLS; c = c + 1) begin : g_col
      wire [7:0] w_o;
      wire [SEL_W-1:0] s_o;
      wire [ALPHA-1:0] a_o;
      wire sw_o, f_o;
      ccc_mx_cell_bitserial u_cell (
        .clk(clk), .rst(rst), .ld_en(ld_en), .ld_w_in(ld_w[c*8 +: 8]),
        .ld_sel_in(ld_sel[c*SEL_W +: SEL_W]), .ld_w_out(w_o), .ld_sel_out(s_o),
        .act_in(act[c*ALPHA +: ALPHA]), .swap_in(swap[c]), .frame_in(frame[c]),
        .act_out(a_o), .swap_out(sw_o), .frame_out(f_o),
        .psum_in(psum[c]), .psum_out(psum[c+1]));
    end
  endgenerate
  always #5 clk = ~clk;
  initial begin
    clk = 1'b0;
    $readmemh(\"stim.hex\", stim);
    for (i = 0; i < N; i = i + 1) begin
      {{rst, ld_en, ld_w, ld_sel, act, swap, frame}} = stim[i];
      @(posedge clk);
      #1 $display(\"%0d %b\", i, psum[COLS]);
    end
    $finish;
  end
endmodule
",
        alpha = p.alpha,
        sel_w = p.sel_w,
    );
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ccc_mx_cell_bitserial.v",
        &render_cell_bitserial(&p).unwrap(),
    );
    write(dir.path(), "stim.hex", &stim);
    write(dir.path(), "tb.v", &tb);
    let (ok, log) = run(Command::new("iverilog")
        .args(["-g2005", "-o", "sim.vvp", "tb.v", "ccc_mx_cell_bitserial.v"])
        .current_dir(dir.path()));
    assert!(ok, "iverilog bit-serial row:\n{log}");
    let (ok, log) = run(Command::new("vvp")
        .args(["-n", "sim.vvp"])
        .current_dir(dir.path()));
    assert!(ok, "vvp bit-serial row:\n{log}");
    let bits: Vec<u64> = log
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            it.next()?.parse::<usize>().ok()?;
            match it.next()? {
                "0" => Some(0),
                "1" => Some(1),
                other => panic!("bit-serial psum is {other}"),
            }
        })
        .collect();
    assert_eq!(bits.len(), n);
    let want = tile.reference();
    for px in 0..PIXELS {
        // Bit k of pixel px leaves the last cell after cycle t0 + (COLS-1) + px*word + k.
        let raw: u64 = (0..word)
            .map(|k| bits[t0 + COLS - 1 + px * word + k] << k)
            .sum();
        let sh = 64 - word as u32;
        let got = ((raw << sh) as i64) >> sh;
        assert_eq!(got, want[px], "bit-serial row, pixel {px}");
    }
}
