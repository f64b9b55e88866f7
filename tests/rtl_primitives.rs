//! Hand-written Verilog primitives (hw/) simulated with Icarus against the compiler's
//! own integer arithmetic, on random vectors.

mod common;

use ccc::quant::requantize;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn row_end_matches_reference_requantize() {
    if !common::need("iverilog", "row_end_matches_reference_requantize") {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 600;
    let mut words = Vec::new();
    let mut want = Vec::new();
    for i in 0..n {
        // PSUM_W = 14: bit-plane sums in [-8192, 8191]; keep the total inside int32.
        let psums: Vec<i64> = (0..8).map(|_| rng.random_range(-8192..8192i64)).collect();
        let base: i64 = match i % 3 {
            0 => rng.random_range(-1000..1000),
            1 => rng.random_range(-(1 << 28)..(1 << 28)),
            _ => 0,
        };
        let shift: i32 = match i % 4 {
            0 => rng.random_range(-16..=0),
            _ => rng.random_range(1..=31),
        };
        let clamp: i32 = if i % 2 == 0 {
            192
        } else {
            rng.random_range(1..=255)
        };
        let last = i % 5 != 0;
        let acc = base + psums.iter().enumerate().map(|(b, p)| p << b).sum::<i64>();
        let act = requantize(acc, shift, clamp);
        want.push(if last {
            format!("{} {act} 1", acc as i32)
        } else {
            format!("{} - 0", acc as i32)
        });
        let mut row = vec![
            base as i32 as u32,
            (shift as u32) & 0x3f,
            clamp as u32,
            last as u32,
        ];
        row.extend(psums.iter().map(|&p| (p as i32 as u32) & 0x3fff));
        words.extend(row);
    }
    let d = tempfile::tempdir().unwrap();
    let vec_path = d.path().join("vectors.hex");
    std::fs::write(
        &vec_path,
        words
            .iter()
            .map(|w| format!("{w:08x}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let repo = common::repo();
    let out = common::iverilog_run(
        d.path(),
        &[
            repo.join("hw/ccc_requant_window.v"),
            repo.join("hw/ccc_requant_clamp.v"),
            repo.join("hw/ccc_row_end.v"),
            repo.join("testbench/tb_row_end.v"),
        ],
        "tb_row_end",
        &[
            format!("+vectors={}", vec_path.display()),
            format!("+n={n}"),
        ],
    );
    let got: Vec<&str> = out.lines().filter(|l| !l.starts_with("VCD")).collect();
    assert_eq!(got.len(), n, "{out}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "case {i}");
    }
}

/// The requantizer as docs/DESIGN.md §5 states it, written the direct way (a 49-bit
/// bidirectional shift, the rounding add and two wide comparisons): the specification
/// that `hw/ccc_requant.v` must equal.
const REQUANT_SPEC: &str = r#"
module requant_spec (
    input  wire signed [31:0] acc,
    input  wire signed [5:0]  shift,
    input  wire [7:0]         clamp_max,
    output wire [7:0]         act
);
    wire signed [48:0] acc_wide = {{17{acc[31]}}, acc};
    wire        [4:0]  rshift = shift[4:0];
    wire        [4:0]  lshift = 5'd0 - shift[4:0];
    wire signed [48:0] round_bias = (shift > 6'sd0) ? (49'sd1 <<< (rshift - 5'd1)) : 49'sd0;
    wire signed [48:0] scaled = (shift > 6'sd0) ? ((acc_wide + round_bias) >>> rshift)
                                                : (acc_wide <<< lshift);
    wire signed [48:0] clamp_wide = {41'd0, clamp_max};
    assign act = (scaled < 0) ? 8'd0 : (scaled > clamp_wide) ? clamp_max : scaled[7:0];
endmodule

// N: the accumulator width the row end is built with (the compiler's bound, <= 32); the
// spec sees the same value sign-extended to int32.
module requant_miter #(
    parameter integer N = 32
) (
    input  wire signed [N-1:0] acc_n,
    input  wire [5:0]         t_in,
    input  wire [7:0]         clamp_max,
    output wire               same
);
    // Every shift the compiler emits, [-16, 31], and nothing else.
    wire        [5:0] t = (t_in > 6'd47) ? 6'd47 : t_in;
    wire signed [5:0] shift = t - 6'd16;
    wire [7:0] a_spec, a_impl;
    wire signed [31:0] acc = {{(33 - N){acc_n[N-1]}}, acc_n[N-2:0]};
    requant_spec u_spec (.acc(acc), .shift(shift), .clamp_max(clamp_max), .act(a_spec));
    ccc_requant #(.ACC_W(N)) u_impl (.acc(acc_n), .shift(shift), .clamp_max(clamp_max), .act(a_impl));
    assign same = a_spec == a_impl;
endmodule
"#;

/// yosys's SAT solver proves `impl_text` (a `ccc_requant` module built for `acc_w`-bit
/// accumulators) equal to the spec for every accumulator, shift and clamp. Returns
/// (proved, log).
fn prove_requant(impl_text: &str, acc_w: usize) -> (bool, String) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("impl.v"), impl_text).unwrap();
    std::fs::write(d.path().join("spec.v"), REQUANT_SPEC).unwrap();
    let o = std::process::Command::new("yosys")
        .current_dir(d.path())
        .args([
            "-p",
            &format!(
                "read_verilog impl.v spec.v; chparam -set N {acc_w} requant_miter; \
                 hierarchy -top requant_miter; proc; flatten; opt; \
                 sat -prove same 1 -verify -show-inputs"
            ),
        ])
        .output()
        .unwrap();
    (
        o.status.success(),
        format!("{}{}", common::stdout(&o), common::stderr(&o)),
    )
}

#[test]
fn requantizer_is_proven_equal_to_the_spec() {
    if !common::need("yosys", "requantizer_is_proven_equal_to_the_spec") {
        return;
    }
    // The requantizer as ccc_requant composes it from its two halves.
    let text: String = [
        "ccc_requant_window.v",
        "ccc_requant_clamp.v",
        "ccc_requant.v",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(common::repo().join("hw").join(f)).unwrap())
    .collect();
    // 32 bits and the narrowest accumulator a design gets (psum_w + 8 on a one-column
    // array: 17).
    for acc_w in [32, 17] {
        let (ok, log) = prove_requant(&text, acc_w);
        assert!(
            ok,
            "ccc_requant ({acc_w} bits) differs from the spec:\n{log}"
        );
        assert!(
            log.contains("SAT proof finished - no model found: SUCCESS"),
            "{log}"
        );
    }
    // Broken requantizers must fail the proof with a counterexample: no round bit, and
    // an overflow check one bit too high.
    for (what, from, to) in [
        ("round bit", "+ {8'd0, window[0]}", "+ 9'd0"),
        (
            "overflow",
            "(t < 6'd8) ? 6'd0 : t - 6'd8",
            "(t < 6'd7) ? 6'd0 : t - 6'd7",
        ),
    ] {
        assert!(
            text.contains(from),
            "mutation target `{from}` not in the requantizer"
        );
        let (ok, log) = prove_requant(&text.replacen(from, to, 1), 32);
        assert!(!ok, "{what}: a broken requantizer passed the proof");
        assert!(
            log.contains("proof did fail"),
            "{what}: failed for another reason:\n{log}"
        );
    }
}

/// The logits unit of a head on the array: every class written by its row (in either
/// bank, in any order), then the stream under random back-pressure: the logits in class
/// order, then the argmax (lowest index on ties) with `last`; twice, so the second
/// image's logits land while the first's may still be leaving.
#[test]
fn logits_unit_streams_the_logits_and_their_argmax() {
    if !common::need(
        "iverilog",
        "logits_unit_streams_the_logits_and_their_argmax",
    ) {
        return;
    }
    let (r, nb, cls) = (4usize, 2usize, 10usize);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let images: Vec<Vec<i32>> = (0..2)
        .map(|i| {
            let mut v: Vec<i32> = (0..cls)
                .map(|_| rng.random_range(-(1 << 20)..(1 << 20)))
                .collect();
            if i == 1 {
                // A tie at the top: the lower index wins.
                let m = *v.iter().max().unwrap();
                v[7] = m;
                v[3] = m;
            }
            v
        })
        .collect();
    // Writes: (cycle, bank, row, block, value); classes in a shuffled order.
    let mut lines = String::new();
    for (i, lg) in images.iter().enumerate() {
        let mut order: Vec<usize> = (0..cls).collect();
        for k in (1..cls).rev() {
            order.swap(k, rng.random_range(0..=k));
        }
        for (n, &k) in order.iter().enumerate() {
            let bank = rng.random_range(0..nb);
            lines += &format!(
                "{:08x} {:08x} {:08x} {:08x} {:08x}\n",
                i * 100 + n * 2,
                bank,
                k % r,
                k / r,
                lg[k] as u32
            );
        }
    }
    let tb = format!(
        r#"`timescale 1ns/1ps
module tb;
    localparam integer R = {r}, NB = {nb}, CLS = {cls};
    reg clk = 0, rst = 1;
    always #5 clk = ~clk;
    reg  [NB*R-1:0]    lg_valid;
    reg  [NB*32*R-1:0] lg_val;
    reg  [NB*2*R-1:0]  lg_blk;
    reg                start, out_ready;
    wire               busy, pool_done, out_valid, out_last;
    wire [31:0]        out_data;
    ccc_logits #(.R(R), .NB(NB), .RB_W(2), .CLS(CLS), .CLS_W(4), .ACC_W(32)) dut (
        .clk(clk), .rst(rst), .lg_valid(lg_valid), .lg_val(lg_val), .lg_blk(lg_blk),
        .start(start), .busy(busy), .pool_done(pool_done), .out_valid(out_valid),
        .out_ready(out_ready), .out_data(out_data), .out_last(out_last)
    );
    reg [31:0] w [0:5*2*CLS-1];
    integer cyc, n, i, seed;
    initial begin
        $readmemh("{vec}", w);
        seed = 3;
        lg_valid = 0; lg_val = 0; lg_blk = 0; start = 0; out_ready = 0;
        repeat (3) @(posedge clk);
        rst <= 0;
        n = 0;
        for (cyc = 0; cyc < 400; cyc = cyc + 1) begin
            @(negedge clk);
            lg_valid = 0;
            start = (cyc == 30 || cyc == 130);
            out_ready = ($random(seed) & 1);
            if (n < 2 * CLS && w[5*n] == cyc) begin
                i = w[5*n+1] * R + w[5*n+2];
                lg_valid[i] = 1'b1;
                lg_val[i*32 +: 32] = w[5*n+4];
                lg_blk[i*2 +: 2] = w[5*n+3];
                n = n + 1;
            end
        end
        $finish;
    end
    always @(posedge clk) if (out_valid && out_ready) $display("%0d %0d", $signed(out_data), out_last);
endmodule
"#,
        vec = "vectors.hex"
    );
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("vectors.hex"), lines).unwrap();
    let tb_path = d.path().join("tb.v");
    std::fs::write(
        &tb_path,
        tb.replace(
            "vectors.hex",
            &d.path().join("vectors.hex").display().to_string(),
        ),
    )
    .unwrap();
    let out = common::iverilog_run(
        d.path(),
        &[common::repo().join("hw/ccc_logits.v"), tb_path],
        "tb",
        &[],
    );
    let mut want = String::new();
    for lg in &images {
        for &v in lg {
            want += &format!("{v} 0\n");
        }
        let best = (0..cls).fold(0, |b, k| if lg[k] > lg[b] { k } else { b });
        want += &format!("{best} 1\n");
    }
    assert_eq!(out, want);
}
