// ccc_write_merge — the column memories' write ports (hand-written primitive of ccc):
// every row end's shift-on-write request, merged onto one write port per column memory.
//
// Three registered levels keep the merge small and local. Level 0 takes every row's
// request as it is: the row ends sit beside their array rows and the column memories in
// the block-RAM rows, so the request crosses the die there with no logic in front of it
// (ECP5 16x16, b34792c to a0b0e66: a row's request -> the group's OR tree -> gh_q, 1.2 ns
// of logic and 9.4-10.5 ns of routing, was the critical path at three of six seeds).
// Row r of a bank finishes pixel p
// at t0 + TP*p + r with TP >= 8 (src/schedule.rs), so the WG = 8 consecutive rows of a
// write group never write on the same cycle: level 1 forwards each group's one write
// with a one-hot AND-OR into a register. Level 2 gives each column memory the group bus
// that targets it, registered; the compiler's schedule guarantees that at most one bus
// targets a column per cycle (period, segment delay and gaps: src/schedule.rs). A write
// whose reader runs two row blocks side by side (`mirror`) goes to column col and to
// col + SPLIT. A row write fills one byte lane, every lane carrying the same byte.
// Simulation checks both premises every cycle.
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
    parameter integer LANE_W = 3
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
    // Level 0: the rows' requests, registered (only the valid bits are reset).
    reg [NB*R-1:0]        r_valid_q;
    reg [NB*R*COL_W-1:0]  r_col_q;
    reg [NB*R*LANE_W-1:0] r_lane_q;
    reg [NB*R*A_W-1:0]    r_addr_q;
    reg [NB*R*8-1:0]      r_byte_q;
    reg [NB*R-1:0]        r_mirror_q;
    always @(posedge clk) begin
        if (rst) r_valid_q <= {NB*R{1'b0}};
        else r_valid_q <= rw_valid;
        r_col_q    <= rw_col;
        r_lane_q   <= rw_lane;
        r_addr_q   <= rw_addr;
        r_byte_q   <= rw_byte;
        r_mirror_q <= rw_mirror;
    end
    localparam integer NGB = (R + WG - 1) / WG;  // groups per bank
    localparam integer NG = NB * NGB;
    // A group bus: {addr, byte}, with its target column and byte lane decoded to one-hot
    // before its register (gh_q, gl_q), so that level 2 is an AND-OR of registers: the
    // bus reaches every column memory across the die (ECP5 16x16 at 7146cfa: the bus's
    // column field, 7.4 ns of routing, then the column compare and the lane decode in
    // front of cw_be, was the critical path).
    localparam integer GW_W = A_W + 8;
    reg [NG*GW_W-1:0]  gw_q;
    reg [NG*C-1:0]     gh_q;
    reg [NG*ALPHA-1:0] gl_q;

    genvar gg;
    generate
        for (gg = 0; gg < NG; gg = gg + 1) begin : g_wgroup
            localparam integer BK = gg / NGB;
            localparam integer G0 = BK * R + (gg % NGB) * WG;
            localparam integer GN = (R - (gg % NGB) * WG < WG) ? R - (gg % NGB) * WG : WG;
            // {valid, mirror, col, lane, addr, byte} of the group's one writing row
            localparam integer BUS_W = 2 + COL_W + LANE_W + A_W + 8;
            reg [BUS_W-1:0] bus;
            reg [C-1:0]     hot;
            reg [ALPHA-1:0] lhot;
            integer gk, hc, hl;
            always @(*) begin
                gk = 0;
                bus = {BUS_W{1'b0}};
                for (gk = 0; gk < GN; gk = gk + 1) begin
                    if (r_valid_q[G0 + gk])
                        bus = bus | {1'b1, r_mirror_q[G0 + gk],
                                     r_col_q[(G0 + gk)*COL_W +: COL_W],
                                     r_lane_q[(G0 + gk)*LANE_W +: LANE_W],
                                     r_addr_q[(G0 + gk)*A_W +: A_W],
                                     r_byte_q[(G0 + gk)*8 +: 8]};
                end
            end
            wire [31:0] b_col = {{(32 - COL_W) {1'b0}}, bus[LANE_W + A_W + 8 +: COL_W]};
            wire [31:0] b_lane = {{(32 - LANE_W) {1'b0}}, bus[A_W + 8 +: LANE_W]};
            wire        b_on  = bus[BUS_W-1];
            wire        b_mir = bus[BUS_W-2];
            always @(*) begin
                hc = 0;
                hl = 0;
                for (hc = 0; hc < C; hc = hc + 1)
                    hot[hc] = b_on && (b_col == hc || (SPLIT > 0 && b_mir && b_col + SPLIT == hc));
                for (hl = 0; hl < ALPHA; hl = hl + 1)
                    lhot[hl] = (b_lane == hl);
            end
            always @(posedge clk) begin
                if (rst) gh_q[gg*C +: C] <= {C{1'b0}};
                else gh_q[gg*C +: C] <= hot;
                gl_q[gg*ALPHA +: ALPHA] <= lhot;
                gw_q[gg*GW_W +: GW_W] <= bus[GW_W-1:0];
            end
`ifndef SYNTHESIS
            // The one-hot premise above, checked wherever the RTL is simulated.
            wire [GN-1:0] g_keep = r_valid_q[G0 +: GN];
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
