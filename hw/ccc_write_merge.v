// ccc_write_merge — the column memories' write ports (hand-written primitive of ccc):
// every row end's shift-on-write request, merged onto one write port per column memory.
//
// Three registered levels keep the merge small and local (two on arrays of fewer than 8
// rows, which have no level 0). Level 0 registers every row's request already decoded:
// its column and byte lane as one-hot vectors and its address and byte, all zero when
// the row does not write. Row r of a bank finishes pixel p at t0 + TP*p + r with TP >= 8
// (src/schedule.rs), so the WG = 8 consecutive rows of a write group never write on the
// same cycle: level 1 is then a plain OR of the group's level-0 vectors, field by field,
// into the group bus. Level 2 gives each column memory the group bus that targets it,
// registered; the compiler's schedule guarantees that at most one bus targets a column
// per cycle (period, segment delay and gaps: src/schedule.rs). A write whose reader runs
// two row blocks side by side (`mirror`) goes to column col and to col + SPLIT. A row
// write fills one byte lane, every lane carrying the same byte. Simulation checks both
// premises every cycle.
//
// Why level 0 decodes: the row ends sit beside their array rows and the column memories
// in the block-RAM rows, so the group bus crosses the die. With the request registered
// as it was, the crossing still met the group's valid-gated OR and the column and lane
// decodes, 3-4 LUT levels (ECP5 16x16 at 615dee9, seed 3: a row's valid -> the lane
// decode -> gl_q, 1.23 ns of logic and 8.86 ns of routing, 99.06 MHz); decoded and gated
// at level 0, an 8-input OR is all that is left.
`default_nettype none

module ccc_write_merge #(
    parameter integer R      = 4,
    // row-end banks (1, or 2 with a split array)
    parameter integer NB     = 1,
    parameter integer C      = 4,
    parameter integer SPLIT  = 0,
    parameter integer ALPHA  = 8,
    parameter integer A_W    = 10,
    parameter integer COL_W  = 2,
    parameter integer LANE_W = 3,
    // Level 0 (below): 1 to register the rows' decoded requests. The compiler decides
    // (src/schedule.rs pipe::write_level0) and counts the cycle in its timing.
    parameter integer L0     = 0
) (
    input  wire                  clk,
    input  wire                  rst,
    // per row of each bank (bank-major): a write request, its column, lane, word address,
    // byte and mirror flag
    input  wire [NB*R-1:0]        rw_valid,
    input  wire [NB*R*COL_W-1:0]  rw_col,
    input  wire [NB*R*LANE_W-1:0] rw_lane,
    input  wire [NB*R*A_W-1:0]    rw_addr,
    input  wire [NB*R*8-1:0]      rw_byte,
    input  wire [NB*R-1:0]        rw_mirror,
    // the column memories' write ports
    output reg  [C-1:0]           cw_we,
    output reg  [C*ALPHA-1:0]     cw_be,
    output reg  [C*A_W-1:0]       cw_addr,
    output wire [C*ALPHA*8-1:0]   cw_data
);
    localparam integer WG = 8;
    localparam integer NR = NB * R;
    // Level 0, per row: the target columns (one-hot; two bits for a mirrored write), the
    // byte lane (one-hot), and {address, byte}; all zero when the row does not write.
    // Registered (L0) on arrays of at least one full write group, where level 1 crosses
    // the die; on smaller ones it is a flip-flop cost with nothing to gain. The column
    // bits are the write enables: reset. The rest is data: not reset.
    localparam integer GW_W = A_W + 8;
    wire [NR*C-1:0]     l0_hot;
    wire [NR*ALPHA-1:0] l0_lhot;
    wire [NR*GW_W-1:0]  l0_w;
    genvar gk;
    generate
        for (gk = 0; gk < NR; gk = gk + 1) begin : g_row
            wire [31:0] col  = {{(32 - COL_W) {1'b0}}, rw_col[gk*COL_W +: COL_W]};
            wire [31:0] lane = {{(32 - LANE_W) {1'b0}}, rw_lane[gk*LANE_W +: LANE_W]};
            wire        on   = rw_valid[gk];
            wire        mir  = rw_mirror[gk];
            reg [C-1:0]     hot;
            reg [ALPHA-1:0] lhot;
            wire [GW_W-1:0] w = on ? {rw_addr[gk*A_W +: A_W], rw_byte[gk*8 +: 8]}
                                   : {GW_W{1'b0}};
            integer hc, hl;
            always @(*) begin
                hc = 0;
                hl = 0;
                for (hc = 0; hc < C; hc = hc + 1)
                    hot[hc] = on && (col == hc || (SPLIT > 0 && mir && col + SPLIT == hc));
                for (hl = 0; hl < ALPHA; hl = hl + 1)
                    lhot[hl] = on && (lane == hl);
            end
            if (L0 != 0) begin : g_l0
                reg [C-1:0]     hot_q;
                reg [ALPHA-1:0] lhot_q;
                reg [GW_W-1:0]  w_q;
                always @(posedge clk) begin
                    if (rst) hot_q <= {C{1'b0}};
                    else hot_q <= hot;
                    lhot_q <= lhot;
                    w_q    <= w;
                end
                assign l0_hot[gk*C +: C]          = hot_q;
                assign l0_lhot[gk*ALPHA +: ALPHA] = lhot_q;
                assign l0_w[gk*GW_W +: GW_W]      = w_q;
            end else begin : g_no_l0
                assign l0_hot[gk*C +: C]          = hot;
                assign l0_lhot[gk*ALPHA +: ALPHA] = lhot;
                assign l0_w[gk*GW_W +: GW_W]      = w;
            end
        end
    endgenerate

    // Level 1: each write group's bus, {addr, byte} with its target columns (gh_q) and
    // byte lane (gl_q) one-hot, the OR of the group's rows.
    localparam integer NGB = (R + WG - 1) / WG;  // groups per bank
    localparam integer NG = NB * NGB;
    reg [NG*GW_W-1:0]  gw_q;
    reg [NG*C-1:0]     gh_q;
    reg [NG*ALPHA-1:0] gl_q;

    genvar gg;
    generate
        for (gg = 0; gg < NG; gg = gg + 1) begin : g_wgroup
            localparam integer BK = gg / NGB;
            localparam integer G0 = BK * R + (gg % NGB) * WG;
            localparam integer GN = (R - (gg % NGB) * WG < WG) ? R - (gg % NGB) * WG : WG;
            reg [C-1:0]     hot;
            reg [ALPHA-1:0] lhot;
            reg [GW_W-1:0]  w;
            integer k;
            always @(*) begin
                k = 0;
                hot = {C{1'b0}};
                lhot = {ALPHA{1'b0}};
                w = {GW_W{1'b0}};
                for (k = 0; k < GN; k = k + 1) begin
                    hot  = hot | l0_hot[(G0 + k)*C +: C];
                    lhot = lhot | l0_lhot[(G0 + k)*ALPHA +: ALPHA];
                    w    = w | l0_w[(G0 + k)*GW_W +: GW_W];
                end
            end
            always @(posedge clk) begin
                if (rst) gh_q[gg*C +: C] <= {C{1'b0}};
                else gh_q[gg*C +: C] <= hot;
                gl_q[gg*ALPHA +: ALPHA] <= lhot;
                gw_q[gg*GW_W +: GW_W] <= w;
            end
`ifndef SYNTHESIS
            // The one-hot premise above, checked wherever the RTL is simulated.
            reg [GN-1:0] g_keep;
            integer m;
            always @(*) begin
                m = 0;
                for (m = 0; m < GN; m = m + 1) g_keep[m] = |l0_hot[(G0 + m)*C +: C];
            end
            always @(posedge clk) begin
                if (!rst && (g_keep & (g_keep - 1'b1)) != {GN{1'b0}})
                    $fatal(1, "ccc_core: write group %0d has two rows writing in one cycle (%b)",
                           gg, g_keep);
            end
`endif
        end
    endgenerate

    // Level 2: which group bus writes column wc this cycle (hit[wg*C + wc]).
    wire [NG*C-1:0] hit = gh_q;

    reg [C-1:0]       we_d;
    reg [C*ALPHA-1:0] be_d;
    reg [C*A_W-1:0]   addr_d;
    reg [C*8-1:0]     byte_d;
    reg [C*8-1:0]     byte_q;
    integer wc, wg;
    always @(*) begin
        // Loop variables are assigned on every path, or synthesis sees latches.
        wg = 0;
        we_d   = {C{1'b0}};
        be_d   = {C*ALPHA{1'b0}};
        addr_d = {C*A_W{1'b0}};
        byte_d = {C*8{1'b0}};
        for (wc = 0; wc < C; wc = wc + 1) begin
            for (wg = 0; wg < NG; wg = wg + 1) begin
                if (hit[wg*C + wc]) begin
                    we_d[wc] = 1'b1;
                    addr_d[wc*A_W +: A_W] = addr_d[wc*A_W +: A_W] | gw_q[wg*GW_W + 8 +: A_W];
                    byte_d[wc*8 +: 8] = byte_d[wc*8 +: 8] | gw_q[wg*GW_W +: 8];
                    be_d[wc*ALPHA +: ALPHA] = be_d[wc*ALPHA +: ALPHA] | gl_q[wg*ALPHA +: ALPHA];
                end
            end
        end
    end

    always @(posedge clk) begin
        if (rst) cw_we <= {C{1'b0}};
        else cw_we <= we_d;
        cw_be   <= be_d;
        cw_addr <= addr_d;
        byte_q  <= byte_d;
    end
    genvar gd;
    generate
        for (gd = 0; gd < C; gd = gd + 1) begin : g_wdata
            assign cw_data[gd*ALPHA*8 +: ALPHA*8] = {ALPHA{byte_q[gd*8 +: 8]}};
        end
    endgenerate

`ifndef SYNTHESIS
    // The schedule's premise: no two group buses write one column memory on one edge.
    reg [C-1:0] clash;
    integer cc, cg, hits;
    always @(*) begin
        clash = {C{1'b0}};
        hits = 0;
        cg = 0;
        for (cc = 0; cc < C; cc = cc + 1) begin
            hits = 0;
            for (cg = 0; cg < NG; cg = cg + 1) if (hit[cg*C + cc]) hits = hits + 1;
            clash[cc] = (hits > 1);
        end
    end
    always @(posedge clk) begin
        if (!rst && clash != {C{1'b0}})
            $fatal(1, "ccc_core: row writes meet at column memories %b in one cycle", clash);
    end
`endif
endmodule

`default_nettype wire
