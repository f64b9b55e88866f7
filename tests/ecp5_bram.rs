//! ccc's ECP5 `DP16KD` simulation model (testbench/ecp5/DP16KD.v) against yosys's own
//! memory semantics. Memories of the shapes the accelerator instantiates
//! (hw/ccc_sdp_ram.v: tap buffers, partial sums, initialised weights) and of the other
//! DP16KD modes yosys maps onto (widths 1 to 36, byte enables, clock enable, reset,
//! write modes, falling edge, true dual port, yosys's read-during-write bypass) go
//! through `synth_ecp5`; the netlist and the RTL then run side by side under Icarus on
//! the same random writes and reads, and every read port must agree at every clock edge.
//! Mutations of the model (yosys's empty DP16KD, swapped 36-bit halves, the x1 mode
//! using the ninth bit) must be caught. Costs 1.5 to 2 minutes on 2 cores, most of it
//! yosys.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ccc::rtl::sim;

/// One `ccc_sdp_ram` of the test.
struct Shape {
    name: &'static str,
    width: usize,
    bytes: usize,
    depth: usize,
    init: bool,
}

const fn shape(name: &'static str, width: usize, bytes: usize, depth: usize, init: bool) -> Shape {
    Shape {
        name,
        width,
        bytes,
        depth,
        init,
    }
}

/// The accelerator's shapes (tiny 2x2 and shipped 8x8 designs) and the narrow modes.
const SHAPES: &[Shape] = &[
    // tap buffer, 64-bit words of 8 byte lanes: the 36-bit pseudo-dual-port mode
    shape("tap64", 64, 8, 64, false),
    // the 8x8 design's tap buffer: deeper than 512 words
    shape("tap542", 64, 8, 542, false),
    // partial sums
    shape("psum", 32, 1, 784, false),
    // weights: initialised, wider than 36 bits and deeper than 1024 words
    shape("wts", 45, 1, 1100, true),
    // initialised 36-bit mode
    shape("w72", 72, 1, 512, true),
    // two byte lanes: x18 with byte enables
    shape("be16", 16, 2, 1024, false),
    shape("x9", 8, 1, 2048, true),
    shape("x4", 4, 1, 4096, true),
    shape("x2", 2, 1, 8192, true),
    shape("x1", 1, 1, 16384, true),
];

/// One memory of the test around `ccc_sdp_ram`: addresses in range, drawn from the
/// whole memory or from 32-word windows at its bottom and top (so that reads find
/// earlier writes), and no read of the word being written in the same cycle, since
/// ccc_sdp_ram declares `no_rw_check` and the block RAM leaves that read undefined.
const PROBE_V: &str = r#"
module probe #(
    parameter integer WIDTH = 8,
    parameter integer BYTES = 1,
    parameter integer DEPTH = 16,
    parameter integer ADDR_W = 4,
    parameter INIT_FILE = ""
) (
    input clk,
    input [63:0] rnd,
    input [WIDTH-1:0] wdata,
    output [WIDTH-1:0] rdata
);
    function [ADDR_W-1:0] pick;
        input [1:0] sel;
        input [15:0] raw;
        reg [ADDR_W:0] v;
        begin
            v = {1'b0, raw[ADDR_W-1:0]};
            if (v >= DEPTH) v = v - DEPTH;
            case (sel)
                2'd2: pick = raw[4:0];
                2'd3: pick = DEPTH - 1 - raw[4:0];
                default: pick = v[ADDR_W-1:0];
            endcase
        end
    endfunction
    wire we = rnd[0];
    wire re = rnd[1] | rnd[2];
    wire [BYTES-1:0] wbe = rnd[15] ? {BYTES{1'b1}} : rnd[7 +: BYTES];
    wire [ADDR_W-1:0] waddr = pick(rnd[4:3], rnd[31:16]);
    wire [ADDR_W-1:0] raddr0 = pick(rnd[6:5], rnd[47:32]);
    wire [ADDR_W-1:0] raddr = (we && raddr0 == waddr)
        ? (raddr0 == DEPTH - 1 ? {ADDR_W{1'b0}} : raddr0 + 1'b1) : raddr0;
    ccc_sdp_ram #(
        .WIDTH(WIDTH), .BYTES(BYTES), .DEPTH(DEPTH), .ADDR_W(ADDR_W), .INIT_FILE(INIT_FILE)
    ) ram (
        .clk(clk), .we(we), .wbe(wbe), .waddr(waddr), .wdata(wdata),
        .re(re), .raddr(raddr), .rdata(rdata)
    );
endmodule
"#;

/// DP16KD modes the accelerator does not use but yosys maps other memories onto.
const MODES_V: &str = r#"
module modes (
    input clk,
    input [383:0] rnd,
    output reg [17:0] q0,
    output reg [8:0] q1,
    output reg [15:0] q2,
    output reg [17:0] q3,
    output reg [8:0] q4,
    output reg [17:0] q5a,
    output reg [17:0] q5b,
    output reg [35:0] q6,
    output reg [8:0] q7,
    output reg [35:0] q8
);
    integer i;
    wire rst = rnd[3:0] == 4'd0;
    wire arst = rnd[7:4] == 4'd0;
    wire en = rnd[8] | rnd[9];
    wire [4:0] near = rnd[14:10];
    wire [1:0] sel = rnd[16:15];
    // READBEFOREWRITE with clock enable and synchronous reset
    reg [17:0] m0 [0:1023];
    wire we0 = rnd[17];
    wire [9:0] a0 = sel[0] ? {5'd0, near} : rnd[27:18];
    always @(posedge clk)
        if (rst) q0 <= 18'd0;
        else if (en) begin
            if (we0) m0[a0] <= rnd[63:46];
            q0 <= m0[a0];
        end
    // WRITETHROUGH
    reg [8:0] m1 [0:2047];
    wire we1 = rnd[64];
    wire [10:0] a1 = sel[1] ? {6'd0, near} : rnd[75:65];
    always @(posedge clk)
        if (en) begin
            if (we1) begin
                m1[a1] <= rnd[84:76];
                q1 <= rnd[84:76];
            end else q1 <= m1[a1];
        end
    // NORMAL: the read data holds during a write
    reg [15:0] m2 [0:1023];
    wire we2 = rnd[85];
    wire [9:0] a2 = sel[0] ? {5'd0, near} : rnd[95:86];
    always @(posedge clk)
        if (we2) m2[a2] <= rnd[111:96];
        else q2 <= m2[a2];
    // asynchronous reset of the read data
    (* no_rw_check *)
    reg [17:0] m3 [0:1023];
    wire we3 = rnd[112];
    wire [9:0] wa3 = sel[1] ? {5'd0, near} : rnd[122:113];
    wire [9:0] ra3_0 = sel[0] ? {5'd0, ~near} : rnd[132:123];
    // no_rw_check: never read the word being written
    wire [9:0] ra3 = we3 && ra3_0 == wa3 ? ra3_0 + 1'b1 : ra3_0;
    always @(posedge clk) if (we3) m3[wa3] <= rnd[150:133];
    always @(posedge clk or posedge arst)
        if (arst) q3 <= 18'd0;
        else q3 <= m3[ra3];
    // falling edge
    (* no_rw_check *)
    reg [8:0] m4 [0:2047];
    wire we4 = rnd[151];
    wire [10:0] wa4 = {6'd0, near};
    wire [10:0] ra4_0 = sel[0] ? {6'd0, ~near} : rnd[162:152];
    wire [10:0] ra4 = we4 && ra4_0 == wa4 ? ra4_0 + 1'b1 : ra4_0;
    always @(negedge clk) begin
        if (we4) m4[wa4] <= rnd[171:163];
        q4 <= m4[ra4];
    end
    // true dual port; port a keeps to the bottom half, port b to the top half
    (* no_rw_check *)
    reg [17:0] m5 [0:1023];
    wire we5a = rnd[172], we5b = rnd[173];
    wire [9:0] a5a = {1'b0, sel[0] ? {4'd0, near} : rnd[182:174]};
    wire [9:0] a5b = {1'b1, sel[1] ? {4'd0, near} : rnd[191:183]};
    always @(posedge clk) begin
        if (we5a) m5[a5a] <= rnd[209:192];
        q5a <= m5[a5a];
    end
    always @(posedge clk) begin
        if (we5b) m5[a5b] <= rnd[227:210];
        q5b <= m5[a5b];
    end
    // read during write defined (no no_rw_check): yosys builds its bypass around the
    // block RAM; reads of the word being written are frequent here
    reg [35:0] m6 [0:511];
    wire we6 = rnd[228];
    wire [8:0] wa6 = {4'd0, near};
    wire [8:0] ra6 = sel == 2'd3 ? wa6 : {4'd0, rnd[233:229]};
    always @(posedge clk) begin
        if (we6) m6[wa6] <= {rnd[255:234], rnd[227:214]};
        q6 <= m6[ra6];
    end
    // a 36-bit write port over a 9-bit read port (pseudo-dual-port, mixed widths)
    (* no_rw_check *)
    reg [8:0] m7 [0:2047];
    wire we7 = rnd[256];
    wire [8:0] wa7 = sel[1] ? {4'd0, near} : rnd[265:257];
    wire [35:0] d7 = rnd[301:266];
    wire [10:0] ra7_0 = sel[0] ? {4'd0, near, rnd[303:302]} : rnd[312:302];
    wire [10:0] ra7 = we7 && ra7_0[10:2] == wa7 ? ra7_0 ^ 11'd4 : ra7_0;
    always @(posedge clk) if (we7) begin
        m7[{wa7, 2'b00}] <= d7[8:0];
        m7[{wa7, 2'b01}] <= d7[17:9];
        m7[{wa7, 2'b10}] <= d7[26:18];
        m7[{wa7, 2'b11}] <= d7[35:27];
    end
    always @(posedge clk) q7 <= m7[ra7];
    // a 9-bit write port under a 36-bit read port
    (* no_rw_check *)
    reg [8:0] m8 [0:2047];
    wire we8 = rnd[313];
    wire [10:0] wa8 = sel[1] ? {4'd0, near, rnd[315:314]} : rnd[324:314];
    wire [8:0] ra8_0 = sel[0] ? {4'd0, near} : rnd[342:334];
    wire [8:0] ra8 = we8 && ra8_0 == wa8[10:2] ? ra8_0 ^ 9'd1 : ra8_0;
    always @(posedge clk) if (we8) m8[wa8] <= rnd[333:325];
    always @(posedge clk)
        q8 <= {m8[{ra8, 2'b11}], m8[{ra8, 2'b10}], m8[{ra8, 2'b01}], m8[{ra8, 2'b00}]};
    initial begin
        for (i = 0; i < 1024; i = i + 1) begin
            m0[i] = i * 7 + 1;
            m2[i] = i * 5 + 3;
            m3[i] = i * 11 + 5;
            m5[i] = i * 13 + 7;
        end
        for (i = 0; i < 2048; i = i + 1) begin
            m1[i] = i * 3 + 2;
            m4[i] = i * 9 + 4;
            m7[i] = i * 15 + 6;
            m8[i] = i * 17 + 8;
        end
        for (i = 0; i < 512; i = i + 1) m6[i] = {i[8:0], 27'h5a5a5a5 ^ i};
        q0 = 0; q1 = 0; q2 = 0; q3 = 0; q4 = 0; q5a = 0; q5b = 0; q6 = 0; q7 = 0; q8 = 0;
    end
endmodule
"#;

/// `modes`' outputs: port, width, what it covers.
const MODE_FIELDS: &[(&str, usize, &str)] = &[
    ("q0", 18, "READBEFOREWRITE, CE, sync reset"),
    ("q1", 9, "WRITETHROUGH"),
    ("q2", 16, "NORMAL"),
    ("q3", 18, "async reset"),
    ("q4", 9, "falling edge"),
    ("q5a", 18, "true dual port, A"),
    ("q5b", 18, "true dual port, B"),
    ("q6", 36, "yosys bypass"),
    ("q7", 9, "36-bit write, 9-bit read"),
    ("q8", 36, "9-bit write, 36-bit read"),
];
const MODES_RND: usize = 384;
/// Clock cycles of random writes and reads (Icarus: about 5 s per thousand here).
const CYCLES: usize = 2000;

fn addr_w(depth: usize) -> usize {
    (usize::BITS - (depth - 1).leading_zeros()) as usize
}

/// A small deterministic generator for the initial contents (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// An output port of `bram_top`: (port, width, what it reads).
type Field = (String, usize, String);
/// A stimulus port of `bram_top`: (port, offset in the testbench's random vector, width).
type Stim = (String, usize, usize);

/// Writes the design (`bram_top`: the probes and `modes`, with ports per memory, since
/// Icarus slows to a crawl on one wide vector driven or read bit by bit) and its init
/// files; returns the RTL files, the output ports and the stimulus ports (port, offset
/// in the testbench's random vector, width).
fn write_design(dir: &Path) -> (Vec<PathBuf>, Vec<Field>, Vec<Stim>) {
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    let mut fields: Vec<Field> = Vec::new();
    let mut body = String::new();
    let mut inputs: Vec<Stim> = Vec::new();
    let mut rpos = 0usize;
    for s in SHAPES {
        let aw = addr_w(s.depth);
        let init = if s.init {
            let file = format!("{}.hex", s.name);
            let digits = s.width.div_ceil(4);
            // The top digit holds only the bits the width has.
            let top_mask = (1u64 << (s.width - 4 * (digits - 1))) - 1;
            let mut hex = String::new();
            for _ in 0..s.depth {
                write!(hex, "{:x}", rng.next() & top_mask).unwrap();
                for _ in 1..digits {
                    write!(hex, "{:x}", rng.next() & 15).unwrap();
                }
                hex.push('\n');
            }
            std::fs::write(dir.join(&file), hex).unwrap();
            // Absolute: yosys and vvp run in other directories.
            format!("\"{}\"", dir.join(&file).display())
        } else {
            "\"\"".to_string()
        };
        let port = format!("o_{}", s.name);
        writeln!(
            body,
            "    probe #(.WIDTH({1}), .BYTES({2}), .DEPTH({3}), .ADDR_W({aw}), .INIT_FILE({init})) p_{0} (\n        .clk(clk), .rnd(s_{0}[63:0]), .wdata(s_{0}[64 +: {1}]), .rdata({port}));",
            s.name,
            s.width,
            s.bytes,
            s.depth,
        )
        .unwrap();
        let what = format!(
            "ccc_sdp_ram {}x{}{}{}",
            s.depth,
            s.width,
            if s.bytes > 1 { ", byte enables" } else { "" },
            if s.init { ", INIT_FILE" } else { "" }
        );
        fields.push((port, s.width, what));
        let n = 64 + s.width.next_multiple_of(32);
        inputs.push((format!("s_{}", s.name), rpos, n));
        rpos += n;
    }
    let conns: Vec<String> = MODE_FIELDS
        .iter()
        .map(|(q, _, _)| format!(".{q}(o_{q})"))
        .collect();
    writeln!(
        body,
        "    modes m (.clk(clk), .rnd(s_modes), {});",
        conns.join(", ")
    )
    .unwrap();
    inputs.push(("s_modes".to_string(), rpos, MODES_RND));
    for (q, w, what) in MODE_FIELDS {
        fields.push((format!("o_{q}"), *w, what.to_string()));
    }
    let mut top = String::from("module bram_top (\n    input clk");
    for (port, _, w) in &inputs {
        write!(top, ",\n    input [{}:0] {port}", w - 1).unwrap();
    }
    for (port, w, _) in &fields {
        write!(top, ",\n    output [{}:0] {port}", w - 1).unwrap();
    }
    top.push_str("\n);\n");
    top.push_str(&body);
    top.push_str("endmodule\n");
    std::fs::write(dir.join("bram_top.v"), top).unwrap();
    std::fs::write(dir.join("probe.v"), PROBE_V).unwrap();
    std::fs::write(dir.join("modes.v"), MODES_V).unwrap();
    let files = vec![
        common::repo().join("hw/ccc_sdp_ram.v"),
        dir.join("probe.v"),
        dir.join("modes.v"),
        dir.join("bram_top.v"),
    ];
    (files, fields, inputs)
}

/// The testbench: the stimulus changes (all at once) while the clock is low; every read
/// port is compared (`!==`, so an X from the netlist counts) after each rising and
/// falling edge.
fn write_tb(dir: &Path, fields: &[Field], inputs: &[Stim], cycles: usize) -> PathBuf {
    let rw: usize = inputs.iter().map(|i| i.2).sum();
    let mut tb = format!(
        "module tb;\n    reg clk = 1'b0;\n    reg [{0}:0] rnd, nxt;\n    integer seed, cyc, k, bad;\n",
        rw - 1
    );
    let mut rtl = String::from("    bram_top rtl (.clk(clk)");
    let mut net = String::from("    bram_top_net net (.clk(clk)");
    for (port, off, w) in inputs {
        write!(rtl, ", .{port}(rnd[{off} +: {w}])").unwrap();
        write!(net, ", .{port}(rnd[{off} +: {w}])").unwrap();
    }
    for (port, w, _) in fields {
        writeln!(tb, "    wire [{}:0] r_{port}, n_{port};", w - 1).unwrap();
        write!(rtl, ", .{port}(r_{port})").unwrap();
        write!(net, ", .{port}(n_{port})").unwrap();
    }
    tb.push_str(&rtl);
    tb.push_str(");\n");
    tb.push_str(&net);
    tb.push_str(");\n");
    tb.push_str("    task check;\n        input [8*8-1:0] edge_name;\n        begin\n");
    for (port, _, what) in fields {
        writeln!(
            tb,
            "            if (r_{port} !== n_{port}) begin\n                bad = bad + 1;\n                if (bad <= 20) $display(\"MISMATCH cycle %0d after %0s edge: {port} ({what}): rtl %h netlist %h\", cyc, edge_name, r_{port}, n_{port});\n            end"
        )
        .unwrap();
    }
    tb.push_str("        end\n    endtask\n");
    writeln!(
        tb,
        "    initial begin\n        seed = 7;\n        bad = 0;\n        cyc = 0;\n        rnd = 0;\n        #1 check(\"initial\");\n        for (cyc = 0; cyc < {cycles}; cyc = cyc + 1) begin\n            for (k = 0; k < {rw}; k = k + 32) nxt[k +: 32] = $random(seed);\n            rnd = nxt;\n            #4 clk = 1'b1;\n            #1 check(\"rising\");\n            #4 clk = 1'b0;\n            #1 check(\"falling\");\n        end\n        $display(\"DONE cycles %0d mismatches %0d\", cyc, bad);\n        $finish;\n    end\nendmodule"
    )
    .unwrap();
    let path = dir.join("tb.v");
    std::fs::write(&path, tb).unwrap();
    path
}

/// Runs the testbench over RTL + netlist + the given ECP5 cell models; returns
/// (mismatches, the simulator's output).
fn simulate(
    dir: &Path,
    tag: &str,
    rtl: &[PathBuf],
    netlist: &Path,
    models: &[PathBuf],
    ecp5_dir: &Path,
    tb: &Path,
) -> (usize, String) {
    let exe = dir.join(format!("{tag}.vvp"));
    let o = Command::new("iverilog")
        // A block RAM without an image holds zeros after configuration; the RTL leaves
        // such memories unset unless told (the accelerator never relies on them).
        .args(["-g2005", "-DCCC_ZERO_INIT", "-s", "tb", "-o"])
        .arg(&exe)
        .arg("-I")
        .arg(ecp5_dir)
        .args(rtl)
        .arg(netlist)
        .args(models)
        .arg(tb)
        .output()
        .expect("run iverilog");
    assert!(
        o.status.success(),
        "iverilog ({tag}) failed:\n{}{}",
        common::stdout(&o),
        common::stderr(&o)
    );
    let o = Command::new("vvp")
        .arg("-n")
        .arg(&exe)
        .output()
        .expect("run vvp");
    let text = common::stdout(&o) + &common::stderr(&o);
    assert!(o.status.success(), "vvp ({tag}) failed:\n{text}");
    let done = text
        .lines()
        .find_map(|l| l.strip_prefix("DONE "))
        .unwrap_or_else(|| panic!("{tag}: the testbench did not finish:\n{text}"));
    let bad = done
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{tag}: bad DONE line `{done}`"));
    (bad, text)
}

/// The DP16KD instances of a `write_verilog` netlist: (instance name, DATA_WIDTH_A,
/// DATA_WIDTH_B).
fn dp16kd_instances(netlist: &str) -> Vec<(String, String, String)> {
    netlist
        .split("DP16KD #(")
        .skip(1)
        .map(|cell| {
            let param = |p: &str| {
                cell.split(&format!(".{p}("))
                    .nth(1)
                    .and_then(|r| r.split(')').next())
                    .map_or("18 (default)".to_string(), |v| {
                        v.trim_start_matches("32'd").to_string()
                    })
            };
            let name = cell
                .split(") \\")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("?")
                .to_string();
            (name, param("DATA_WIDTH_A"), param("DATA_WIDTH_B"))
        })
        .collect()
}

#[test]
fn dp16kd_model_matches_yosys_memory_semantics() {
    const TEST: &str = "dp16kd_model_matches_yosys_memory_semantics";
    if !common::need("yosys", TEST) || !common::need("iverilog", TEST) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (rtl, fields, inputs) = write_design(dir);
    let netlist = dir.join("bram_top_net.v");
    let script = format!(
        "read_verilog {}; synth_ecp5 -top bram_top; rename bram_top bram_top_net; write_verilog -noattr {}",
        rtl.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        netlist.display()
    );
    let t = std::time::Instant::now();
    let o = Command::new("yosys")
        .args(["-q", "-l"])
        .arg(dir.join("yosys.log"))
        .arg("-p")
        .arg(&script)
        .output()
        .expect("run yosys");
    assert!(
        o.status.success(),
        "yosys failed:\n{}{}",
        common::stdout(&o),
        common::stderr(&o)
    );
    eprintln!("synth_ecp5: {:.1} s", t.elapsed().as_secs_f64());

    // Every memory is in block RAM, in the modes the test means to cover.
    let text = std::fs::read_to_string(&netlist).unwrap();
    let cells = dp16kd_instances(&text);
    let mut widths = std::collections::BTreeSet::new();
    for s in SHAPES
        .iter()
        .map(|s| format!("p_{}.", s.name))
        .chain((0..=8).map(|k| format!("m.m{k}.")))
    {
        let mine: Vec<_> = cells.iter().filter(|c| c.0.starts_with(&s)).collect();
        assert!(
            !mine.is_empty(),
            "{s}: no DP16KD in the netlist (the memory went to logic)"
        );
        eprintln!(
            "{s:10} {} DP16KD, widths A/B {:?}",
            mine.len(),
            mine.iter()
                .map(|c| format!("{}/{}", c.1, c.2))
                .collect::<std::collections::BTreeSet<_>>()
        );
        widths.extend(mine.iter().flat_map(|c| [c.1.clone(), c.2.clone()]));
    }
    for w in ["1", "2", "4", "9", "18", "36"] {
        assert!(
            widths.contains(w),
            "no DP16KD port of width {w}: {widths:?}"
        );
    }
    assert!(text.contains(".CLKAMUX(\"INV\")"), "no falling-edge DP16KD");
    for mode in ["WRITETHROUGH", "READBEFOREWRITE", "NORMAL"] {
        assert!(
            text.contains(&format!("(\"{mode}\")")),
            "no DP16KD in WRITEMODE {mode}"
        );
    }
    assert!(text.contains(".RESETMODE(\"SYNC\")") && text.contains(".RESETMODE(\"ASYNC\")"));

    let ecp5 = sim::yosys_datdir().unwrap().join("ecp5");
    let tb = write_tb(dir, &fields, &inputs, CYCLES);
    let models = dir.join("models");
    let (cells_v, model_v) = sim::write_ecp5_models(&models, &ecp5).unwrap();
    let t = std::time::Instant::now();
    let (bad, out) = simulate(
        dir,
        "model",
        &rtl,
        &netlist,
        &[cells_v.clone(), model_v.clone()],
        &ecp5,
        &tb,
    );
    eprintln!(
        "Icarus, {CYCLES} cycles: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(bad, 0, "netlist and RTL disagree:\n{out}");

    // The comparison can fail: with yosys's own (empty) DP16KD, and with the model's
    // layout broken where only INIT or the x1 mode tell.
    let (bad, _) = simulate(
        dir,
        "yosys_empty",
        &rtl,
        &netlist,
        &[ecp5.join("cells_sim.v")],
        &ecp5,
        &tb,
    );
    assert!(bad > 0, "yosys's empty DP16KD went unnoticed");
    let model = sim::DP16KD_MODEL;
    for (what, from, to) in [
        (
            "36-bit halves swapped",
            "{ad[13:5], 1'b1, wr ? {{9{ad[3]}}, {9{ad[2]}}} : 18'h3ffff,\n                           ad[13:5], 1'b0,",
            "{ad[13:5], 1'b0, wr ? {{9{ad[3]}}, {9{ad[2]}}} : 18'h3ffff,\n                           ad[13:5], 1'b1,",
        ),
        (
            "x1 mode on the ninth bit",
            "6'd1: offset = (ad[3] ? 5'd9 : 5'd0)",
            "6'd1: offset = (ad[3] ? 5'd8 : 5'd0)",
        ),
    ] {
        assert!(
            model.contains(from),
            "mutation `{what}` no longer applies: update this test with the model"
        );
        let m = dir.join("mutant.v");
        std::fs::write(&m, model.replacen(from, to, 1)).unwrap();
        let (bad, _) = simulate(
            dir,
            "mutant",
            &rtl,
            &netlist,
            &[cells_v.clone(), m],
            &ecp5,
            &tb,
        );
        assert!(bad > 0, "mutant model ({what}) went unnoticed");
    }
}
