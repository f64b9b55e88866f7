// ccc_write_merge — the column memories' write ports (hand-written primitive of ccc):
// every array row's shift-on-write request and the input writer's writes, merged.
//
// Rows merge in two levels so the merge stays small and local. Row r finishes pixel p at
// t0 + TP*p + r with TP >= 8 (src/schedule.rs) and tiles do not overlap, so the WG = 8
// consecutive rows of a write group never write on the same cycle: each group needs only
// a one-hot AND-OR of its rows' writes. The column memories then pick among ceil(R/8)
// group buses instead of R rows; the compiler's pixel period guarantees at most one group
// targets a column per cycle. A row write fills one lane (byte enable), every lane
// carrying the same byte. The rows own the ports: an input write that meets a row write
// in any column waits (`iw_stall` holds the input writer for that cycle).
`default_nettype none

module ccc_write_merge #(
    parameter integer R      = 4,
    parameter integer C      = 4,
    parameter integer ALPHA  = 8,
    parameter integer A_W    = 10,
    parameter integer COL_W  = 2,
    parameter integer LANE_W = 3
) (
    input  wire                 clk,
    input  wire                 rst,
    // per row: a write request (already masked to rows that hold filters and to layers
    // that write a next layer), its column, lane, word address and byte
    input  wire [R-1:0]         rw_valid,
    input  wire [R*COL_W-1:0]   rw_col,
    input  wire [R*LANE_W-1:0]  rw_lane,
    input  wire [R*A_W-1:0]     rw_addr,
    input  wire [R*8-1:0]       rw_byte,
    // the input writer's writes
    input  wire [C-1:0]         iw_we,
    input  wire [C*ALPHA-1:0]   iw_be,
    input  wire [C*A_W-1:0]     iw_addr,
    input  wire [ALPHA*8-1:0]   iw_data,
    output wire                 iw_stall,
    // the column memories' write ports
    output reg  [C-1:0]         cw_we,
    output reg  [C*ALPHA-1:0]   cw_be,
    output reg  [C*A_W-1:0]     cw_addr,
    output reg  [C*ALPHA*8-1:0] cw_data
);
    localparam integer WG = 8;
    localparam integer NG = (R + WG - 1) / WG;
    localparam integer GW_W = 1 + COL_W + LANE_W + A_W + 8;
    wire [NG*GW_W-1:0] gw;
    genvar gg;
    generate
        for (gg = 0; gg < NG; gg = gg + 1) begin : g_wgroup
            localparam integer GN = (R - gg*WG < WG) ? R - gg*WG : WG;
            reg [GW_W-1:0] bus;
            integer gk;
            always @(*) begin
                gk = 0;
                bus = {GW_W{1'b0}};
                for (gk = 0; gk < GN; gk = gk + 1) begin
                    if (rw_valid[gg*WG + gk])
                        bus = bus | {1'b1, rw_col[(gg*WG + gk)*COL_W +: COL_W],
                                     rw_lane[(gg*WG + gk)*LANE_W +: LANE_W],
                                     rw_addr[(gg*WG + gk)*A_W +: A_W],
                                     rw_byte[(gg*WG + gk)*8 +: 8]};
                end
            end
            assign gw[gg*GW_W +: GW_W] = bus;
`ifndef SYNTHESIS
            // The one-hot premise above, checked wherever the RTL is simulated.
            wire [GN-1:0] g_keep = rw_valid[gg*WG +: GN];
            always @(posedge clk) begin
                if (!rst && (g_keep & (g_keep - 1'b1)) != {GN{1'b0}})
                    $fatal(1, "ccc_core: write group %0d has two rows writing in one cycle (%b)",
                           gg, g_keep);
            end
`endif
        end
    endgenerate

    reg [C-1:0]       rw_we;
    reg [C*ALPHA-1:0] rw_be;
    reg [C*A_W-1:0]   rw_waddr;
    reg [C*8-1:0]     rw_cbyte;
    integer wc, wg, wl;
    always @(*) begin
        // Loop variables are assigned on every path, or synthesis sees latches.
        wg = 0;
        wl = 0;
        rw_we    = {C{1'b0}};
        rw_be    = {C*ALPHA{1'b0}};
        rw_waddr = {C*A_W{1'b0}};
        rw_cbyte = {C*8{1'b0}};
        for (wc = 0; wc < C; wc = wc + 1) begin
            for (wg = 0; wg < NG; wg = wg + 1) begin
                if (gw[wg*GW_W + GW_W - 1] &&
                    gw[wg*GW_W + LANE_W + A_W + 8 +: COL_W] == wc[COL_W-1:0]) begin
                    rw_we[wc] = 1'b1;
                    rw_waddr[wc*A_W +: A_W] = rw_waddr[wc*A_W +: A_W] | gw[wg*GW_W + 8 +: A_W];
                    rw_cbyte[wc*8 +: 8] = rw_cbyte[wc*8 +: 8] | gw[wg*GW_W +: 8];
                    for (wl = 0; wl < ALPHA; wl = wl + 1) begin
                        if (gw[wg*GW_W + A_W + 8 +: LANE_W] == wl[LANE_W-1:0])
                            rw_be[wc*ALPHA + wl] = 1'b1;
                    end
                end
            end
        end
    end
    wire [C*ALPHA*8-1:0] rw_data;
    genvar gd;
    generate
        for (gd = 0; gd < C; gd = gd + 1) begin : g_wdata
            assign rw_data[gd*ALPHA*8 +: ALPHA*8] = {ALPHA{rw_cbyte[gd*8 +: 8]}};
        end
    endgenerate
    assign iw_stall = |(iw_we & rw_we);

    integer ic;
    always @(*) begin
        ic = 0;
        cw_we   = rw_we;
        cw_be   = rw_be;
        cw_addr = rw_waddr;
        cw_data = rw_data;
        if (!iw_stall) begin
            for (ic = 0; ic < C; ic = ic + 1) begin
                if (iw_we[ic]) begin
                    cw_we[ic] = 1'b1;
                    cw_be[ic*ALPHA +: ALPHA] = iw_be[ic*ALPHA +: ALPHA];
                    cw_addr[ic*A_W +: A_W] = iw_addr[ic*A_W +: A_W];
                    cw_data[ic*ALPHA*8 +: ALPHA*8] = iw_data;
                end
            end
        end
    end
endmodule

`default_nettype wire
