// ccc_core — the accelerator around the MX array (hand-written, generic; ccc emits
// ccc_top, which sets the parameters and supplies the compiled tables).
//
// Dataflow per image (the next image streams in as soon as the first layer has read
// this one, overlapping the later layers, the classifier and the output):
//   1. input: AXI-Stream pixels (y, x, channel order) go through the writer into the
//      first layer's tap buffers (shift-on-write; the K*K taps of a KxK first conv are
//      written in parallel when they sit in different columns);
//   2. for every tile of the compiled schedule (ccc_sched: layer constants, row block,
//      column block): stream each output pixel through the array — one word of ALPHA
//      activation bytes per column, serialized LSB first over 8 cycles, skewed one
//      cycle per column — while the row units shift-accumulate, add bias or the stored
//      partial sum (vertical tiling), requantize, and hand finished activations to the
//      writer (next layer's tap buffers) or to the pool (last layer). The next tile's
//      weights shift into the cells' shadow registers while this one streams, once
//      its swap wavefront has passed every cell (double buffering);
//   3. pool + classifier, then the logits and class index on the output stream.
// One pixel period is TP cycles per tile (>= 8): 8 normally, which is one 8-bit MAC per
// cell every 8 cycles; the compiler stretches it only where two rows finishing on the
// same cycle would write the same column memory. See docs/ACCELERATOR.md.
module ccc_core #(
    parameter integer R        = 4,
    parameter integer C        = 4,
    parameter integer ALPHA    = 8,
    parameter integer SEL_W    = 3,
    parameter integer PSUM_W   = 12,
    parameter integer NT       = 1,
    parameter integer T_W      = 1,
    parameter integer WM_AW    = 4,
    parameter integer A_W      = 10,
    parameter integer A_D      = 1024,
    parameter integer PIX_W    = 10,
    parameter integer Y_W      = 5,
    parameter integer X_W      = 5,
    parameter integer N_W      = 8,
    parameter integer MAP_AW   = 8,
    parameter integer COL_W    = 2,
    parameter integer LANE_W   = 3,
    parameter integer WPC_W    = 4,
    parameter integer TP_W     = 8,
    parameter integer LAYER_W  = 2,
    parameter integer IN_C     = 1,
    parameter integer IN_H     = 8,
    parameter integer IN_W     = 8,
    parameter integer IN_WPC   = 9,
    // compact tap buffers (ccc_shift_target): stride-mask and packing-field widths, and
    // the first layer's stride mask, packing (log2 pixels per word, log2 alpha), read
    // limits and output width, for the input writer
    parameter integer S_W      = 1,
    parameter integer LK_W     = 2,
    parameter integer IN_SMASK = 0,
    parameter integer IN_LK    = 0,
    parameter integer IN_LA    = 0,
    parameter integer IN_LH    = 8,
    parameter integer IN_LW    = 8,
    parameter integer IN_WO    = 8,
    parameter integer PSUM_D   = 0,
    parameter integer PSUM_AW  = 1,
    parameter integer CLS      = 10,
    parameter integer CLS_W    = 4,
    parameter integer CH       = 4,
    parameter integer CH_W     = 2,
    parameter integer POOL_W   = 14,
    parameter         WM_FILE  = "",
    parameter         CW_FILE  = "",
    parameter         CB_FILE  = ""
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire                   s_axis_tvalid,
    output wire                   s_axis_tready,
    input  wire [7:0]             s_axis_tdata,
    output wire                   m_axis_tvalid,
    input  wire                   m_axis_tready,
    output wire [31:0]            m_axis_tdata,
    output wire                   m_axis_tlast,
    output wire                   busy,
    output wire                   done,
    // weight memory load port: one array row {write target, bias, columns' {weight,
    // selector}} a word
    input  wire                   wl_en,
    input  wire [WM_AW-1:0]       wl_addr,
    input  wire [C*(8+SEL_W)+32+1+COL_W+LANE_W+16+A_W+LANE_W:0] wl_data,
    // debug: every activation a layer produces; row r holds channel dbg_row0 + r
    output wire [R-1:0]           dbg_valid,
    output wire [LAYER_W-1:0]     dbg_layer,
    output wire [N_W-1:0]         dbg_row0,
    output wire [R*PIX_W-1:0]     dbg_pix,
    output wire [R*8-1:0]         dbg_data,
    // debug: 0 input, 1 layers, 2 classifier/output; the layer of the running tile
    output wire [1:0]             dbg_phase,
    output wire [LAYER_W-1:0]     dbg_tile_layer
);
    localparam integer TGT_W = 1 + COL_W + LANE_W + 16 + A_W + LANE_W + 1;
    localparam integer WM_W  = C * (8 + SEL_W) + 32 + TGT_W;
    // Mirrored by DRAIN_EXTRA in src/schedule.rs (the cycle model).
    localparam integer DRAIN = R + C + 16;
    localparam integer TOK_W = 1 + 3 + PIX_W + PIX_W + Y_W + X_W + 3;
    // The next tile's weights may start shifting in once the swap token has passed the
    // last cell: 1 cycle of feed latency (the token leads bit-plane 0 by one) + (C - 1) +
    // (R - 1), plus margin.
    localparam integer LOAD_AT_I = R + C + 4;
    localparam [15:0] LOAD_AT = LOAD_AT_I[15:0];

    // ------------------------------------------------------------------ schedule
    reg  [T_W-1:0]        tile_q;
    wire [LAYER_W-1:0]    s_layer;
    wire                  s_first, s_last, s_final, s_layer_end;
    wire [N_W-1:0]        s_row0;
    wire [N_W:0]          s_nrows;
    wire [PIX_W:0]        s_pixels;
    wire [X_W-1:0]        s_wo;
    wire [A_W-1:0]        s_rbase;
    wire [LANE_W-1:0]     s_rkm1;
    wire [LANE_W-1:0]     s_rstep;
    wire [S_W-1:0]        s_wsmask;
    wire [LK_W-1:0]       s_wlk;
    wire [LK_W-1:0]       s_wla;
    wire [PIX_W-1:0]      s_wwo;
    wire [Y_W-1:0]        s_wlh;
    wire [X_W-1:0]        s_wlw;
    wire signed [5:0]     s_shift;
    wire [7:0]            s_clamp;
    wire [TP_W-1:0]       s_tp;

    ccc_sched u_sched (
        .tile(tile_q), .layer(s_layer), .first(s_first), .last(s_last), .final_layer(s_final),
        .layer_end(s_layer_end), .row0(s_row0), .nrows(s_nrows), .pixels(s_pixels),
        .wo(s_wo), .rbase(s_rbase), .rkm1(s_rkm1), .rstep(s_rstep),
        .wsmask(s_wsmask), .wlk(s_wlk), .wla(s_wla), .wwo(s_wwo), .wlh(s_wlh), .wlw(s_wlw),
        .shift(s_shift), .clamp(s_clamp), .tp(s_tp)
    );

    // ------------------------------------------------------------------ state
    localparam [2:0] S_WAITIN = 3'd0, S_WAITLOAD = 3'd1, S_STREAM = 3'd2, S_DRAIN = 3'd3,
                     S_CLASSIFY = 3'd4;
    reg [2:0]        state_q;
    reg              in_busy_q;
    reg              in_done_q;
    // The first layer's tap buffers may take the next image; an image waits in them.
    reg              in_open_q;
    reg              in_full_q;
    reg [N_W-1:0]    in_c_q;
    reg [Y_W-1:0]    in_y_q;
    reg [X_W-1:0]    in_x_q;
    wire [PIX_W-1:0] in_cpix;
    reg [TP_W-1:0]   cyc_q;
    reg [PIX_W:0]    pix_q;
    reg [Y_W-1:0]    y_q;
    reg [X_W-1:0]    x_q;
    // read side: word address, pixel within the word and its lane offset
    reg [A_W-1:0]    addr_q;
    reg [LANE_W-1:0] sub_q;
    reg [LANE_W-1:0] amt_q;
    // write side: the pixel's index on the next layer's grid (ccc_shift_target's cpix)
    wire [PIX_W-1:0] cpix;
    reg [15:0]       since_q;
    reg [15:0]       drain_q;
    reg              cls_start_q;

    // ------------------------------------------------------------------ weight loader
    reg              ld_busy_q;
    reg [T_W-1:0]    ld_tile_q;
    reg [WM_AW-1:0]  ld_addr_q;
    reg [15:0]       ld_left_q;
    reg              ld_rd_q;
    reg              loaded_q;
    reg              ld_need_q;
    wire [WM_W-1:0]  wm_rdata;
    wire             ld_en = ld_rd_q;

    ccc_sdp_ram #(
        .WIDTH(WM_W), .BYTES(1), .DEPTH(NT * R), .ADDR_W(WM_AW), .INIT_FILE(WM_FILE)
    ) u_wmem (
        .clk(clk), .we(wl_en), .wbe(1'b1), .waddr(wl_addr), .wdata(wl_data),
        .re(ld_busy_q), .raddr(ld_addr_q), .rdata(wm_rdata)
    );

    wire [T_W-1:0] next_tile = (tile_q == NT[T_W-1:0] - 1'b1) ? {T_W{1'b0}} : tile_q + 1'b1;
    wire ld_go = !ld_busy_q && (ld_need_q ||
        ((state_q == S_STREAM || state_q == S_DRAIN) && since_q == LOAD_AT));
    wire [T_W-1:0] ld_go_tile = ld_need_q ? {T_W{1'b0}} : next_tile;

    // ------------------------------------------------------------------ pixel requests
    wire go0 = (state_q == S_STREAM) && (cyc_q == {TP_W{1'b0}});
    wire swap0 = go0 && (pix_q == {(PIX_W + 1) {1'b0}});

    // Token generator: the 8 bit-plane tokens of a request leave 2 cycles after it, in
    // step with column 0's bit-planes (the feed's RAM read and output register).
    reg              go_d1_q;
    reg [PIX_W-1:0]  tg_pix_q;
    reg [PIX_W-1:0]  tg_cpix_q;
    reg [Y_W-1:0]    tg_y_q;
    reg [X_W-1:0]    tg_x_q;
    reg              tg_swap_q;
    reg              tg_on_q;
    reg [2:0]        tg_bit_q;
    wire [TOK_W-1:0] tok0 = {tg_on_q, tg_bit_q, tg_pix_q, tg_cpix_q, tg_y_q, tg_x_q, s_first, s_last,
                             tg_on_q && tg_swap_q && tg_bit_q == 3'd0};

    // Token delay line of C stages: row 0's sums for column 0's bit-plane t arrive at t + C.
    // (A flat vector, not an array, so synthesis keeps it as plain registers.)
    reg [C*TOK_W-1:0] tok_line_q;
    generate
        if (C == 1) begin : g_tok_line1
            always @(posedge clk) tok_line_q <= rst ? {TOK_W{1'b0}} : tok0;
        end else begin : g_tok_line
            always @(posedge clk)
                tok_line_q <= rst ? {C*TOK_W{1'b0}} : {tok_line_q[(C-1)*TOK_W-1:0], tok0};
        end
    endgenerate

    // ------------------------------------------------------------------ columns
    wire [C:0]            cg_go;
    wire [(C+1)*A_W-1:0]  cg_addr;
    wire [(C+1)*LANE_W-1:0] cg_amt;
    wire [C:0]            cg_swap;
    wire [C*ALPHA-1:0]    arr_act;
    wire [C-1:0]          arr_swap;
    assign cg_go[0] = go0;
    assign cg_addr[0 +: A_W] = addr_q;
    assign cg_amt[0 +: LANE_W] = amt_q;
    assign cg_swap[0] = swap0;

    genvar gc, gr;
    generate
        for (gc = 0; gc < C; gc = gc + 1) begin : g_col
            wire              re;
            wire [A_W-1:0]    raddr;
            wire [ALPHA*8-1:0] rdata;
            ccc_col_feed #(.ALPHA(ALPHA), .ADDR_W(A_W), .LANE_W(LANE_W)) u_feed (
                .clk(clk), .rst(rst),
                .go_in(cg_go[gc]), .addr_in(cg_addr[gc*A_W +: A_W]),
                .amt_in(cg_amt[gc*LANE_W +: LANE_W]), .swap_in(cg_swap[gc]),
                .go_out(cg_go[gc+1]), .addr_out(cg_addr[(gc+1)*A_W +: A_W]),
                .amt_out(cg_amt[(gc+1)*LANE_W +: LANE_W]),
                .swap_out(cg_swap[gc+1]),
                .mem_re(re), .mem_raddr(raddr), .mem_rdata(rdata),
                .act(arr_act[gc*ALPHA +: ALPHA]), .act_swap(arr_swap[gc])
            );
            ccc_sdp_ram #(
                .WIDTH(ALPHA * 8), .BYTES(ALPHA), .DEPTH(A_D), .ADDR_W(A_W), .INIT_FILE("")
            ) u_amem (
                .clk(clk), .we(cw_we[gc]), .wbe(cw_be[gc*ALPHA +: ALPHA]),
                .waddr(cw_addr[gc*A_W +: A_W]), .wdata(cw_data[gc*ALPHA*8 +: ALPHA*8]),
                .re(re), .raddr(raddr), .rdata(rdata)
            );
        end
    endgenerate
    wire unused_chain_end = ^{cg_go[C], cg_addr[C*A_W +: A_W], cg_amt[C*LANE_W +: LANE_W],
                              cg_swap[C]};

    // ------------------------------------------------------------------ array
    wire [C*8-1:0]     arr_ld_w;
    wire [C*SEL_W-1:0] arr_ld_sel;
    wire [R*PSUM_W-1:0] arr_psum;
    generate
        for (gc = 0; gc < C; gc = gc + 1) begin : g_ld
            assign arr_ld_w[gc*8 +: 8] = wm_rdata[gc*(8+SEL_W) + SEL_W +: 8];
            assign arr_ld_sel[gc*SEL_W +: SEL_W] = wm_rdata[gc*(8+SEL_W) +: SEL_W];
        end
    endgenerate

    ccc_mx_array #(
        .ROWS(R), .COLS(C), .ALPHA(ALPHA), .SEL_W(SEL_W), .PSUM_W(PSUM_W)
    ) u_array (
        .clk(clk), .rst(rst), .ld_en(ld_en), .ld_w_in(arr_ld_w), .ld_sel_in(arr_ld_sel),
        .act_in(arr_act), .swap_in(arr_swap), .psum_out(arr_psum)
    );

    // ------------------------------------------------------------------ rows
    wire [(R+1)*TOK_W-1:0] row_tok;
    wire [(R+1)*32-1:0]    row_bias;
    wire [R-1:0]           ro_valid;
    wire [R*8-1:0]         ro_act;
    wire [R*Y_W-1:0]       ro_y;
    wire [R*X_W-1:0]       ro_x;
    wire [R*PIX_W-1:0]     ro_pix;
    wire [(R+1)*TGT_W-1:0] row_tgt;
    wire [R-1:0]           rw_valid;
    wire [R*COL_W-1:0]     rw_col;
    wire [R*LANE_W-1:0]    rw_lane;
    wire [R*A_W-1:0]       rw_addr;
    assign row_tok[0 +: TOK_W] = tok_line_q[(C-1)*TOK_W +: TOK_W];
    assign row_bias[0 +: 32] = wm_rdata[C*(8+SEL_W) +: 32];
    assign row_tgt[0 +: TGT_W] = wm_rdata[WM_W-1 -: TGT_W];

    generate
        for (gr = 0; gr < R; gr = gr + 1) begin : g_row
            wire [TOK_W-1:0] ti = row_tok[gr*TOK_W +: TOK_W];
            wire [TOK_W-1:0] to;
            ccc_row_unit #(
                .PSUM_W(PSUM_W), .PIX_W(PIX_W), .Y_W(Y_W), .X_W(X_W), .PSUM_D(PSUM_D),
                .PSUM_AW(PSUM_AW), .A_W(A_W), .COL_W(COL_W), .LANE_W(LANE_W), .S_W(S_W),
                .LK_W(LK_W)
            ) u_row (
                .clk(clk), .rst(rst),
                .tok_valid(ti[TOK_W-1]), .tok_bit(ti[TOK_W-2 -: 3]),
                .tok_pix(ti[TOK_W-5 -: PIX_W]), .tok_cpix(ti[TOK_W-5-PIX_W -: PIX_W]),
                .tok_y(ti[TOK_W-5-2*PIX_W -: Y_W]),
                .tok_x(ti[X_W+2 -: X_W]), .tok_first(ti[2]), .tok_last(ti[1]), .tok_swap(ti[0]),
                .tok_valid_o(to[TOK_W-1]), .tok_bit_o(to[TOK_W-2 -: 3]),
                .tok_pix_o(to[TOK_W-5 -: PIX_W]), .tok_cpix_o(to[TOK_W-5-PIX_W -: PIX_W]),
                .tok_y_o(to[TOK_W-5-2*PIX_W -: Y_W]),
                .tok_x_o(to[X_W+2 -: X_W]), .tok_first_o(to[2]), .tok_last_o(to[1]),
                .tok_swap_o(to[0]),
                .psum(arr_psum[gr*PSUM_W +: PSUM_W]),
                .ld_en(ld_en), .ld_bias_in(row_bias[gr*32 +: 32]),
                .ld_bias_out(row_bias[(gr+1)*32 +: 32]),
                .ld_tgt_in(row_tgt[gr*TGT_W +: TGT_W]),
                .ld_tgt_out(row_tgt[(gr+1)*TGT_W +: TGT_W]),
                .map_h(s_wlh), .map_w(s_wlw), .map_smask(s_wsmask), .map_lk(s_wlk),
                .map_la(s_wla),
                .shift(s_shift), .clamp_max(s_clamp),
                .out_valid(ro_valid[gr]), .out_act(ro_act[gr*8 +: 8]),
                .out_y(ro_y[gr*Y_W +: Y_W]), .out_x(ro_x[gr*X_W +: X_W]),
                .out_pix(ro_pix[gr*PIX_W +: PIX_W]),
                .wr_valid(rw_valid[gr]), .wr_col(rw_col[gr*COL_W +: COL_W]),
                .wr_lane(rw_lane[gr*LANE_W +: LANE_W]), .wr_addr(rw_addr[gr*A_W +: A_W])
            );
            assign row_tok[(gr+1)*TOK_W +: TOK_W] = to;
        end
    endgenerate
    wire unused_row_end = ^{row_tok[R*TOK_W +: TOK_W], row_bias[R*32 +: 32],
                            row_tgt[R*TGT_W +: TGT_W], ro_y, ro_x};

    // Rows that hold real filters of this layer (the last row block may be partial).
    reg [R-1:0] row_keep;
    integer ri;
    always @(*) begin
        for (ri = 0; ri < R; ri = ri + 1)
            row_keep[ri] = ({1'b0, s_row0} + ri[N_W:0]) < s_nrows;
    end
    wire [R-1:0] ro_keep = ro_valid & row_keep;

    assign dbg_valid = ro_keep;
    assign dbg_layer = s_layer;
    assign dbg_row0  = s_row0;
    assign dbg_pix   = ro_pix;
    assign dbg_data  = ro_act;
    assign dbg_phase = (state_q == S_WAITIN) ? 2'd0 : (state_q == S_CLASSIFY) ? 2'd2 : 2'd1;
    assign dbg_tile_layer = s_layer;

    // ------------------------------------------------------------------ writer
    wire in_accept = in_open_q && !in_done_q && !in_full_q;
    wire wr_ready, wr_busy;
    wire iw_stall;
    wire in_fire = in_accept && s_axis_tvalid && wr_ready && !iw_stall;
    assign s_axis_tready = in_accept && wr_ready && !iw_stall;

    // The writer serves the input phase (K*K taps per pixel for a KxK first layer);
    // layers write through their rows' own targets below.
    wire [C-1:0]       iw_we;
    wire [C*ALPHA-1:0] iw_be;
    wire [C*A_W-1:0]   iw_addr;
    wire [ALPHA*8-1:0] iw_data;

    wire [MAP_AW-1:0]    map_index;
    wire [C-1:0]         map_valid;
    wire [C*LANE_W-1:0]  map_lane;
    wire [C*8-1:0]       map_dy, map_dx;
    wire [C*(A_W+LANE_W+1)-1:0] map_offset;

    ccc_wmap u_wmap (
        .index(map_index), .valid(map_valid), .lane(map_lane),
        .dy(map_dy), .dx(map_dx), .offset(map_offset)
    );

    ccc_writer #(
        .C(C), .ALPHA(ALPHA), .A_W(A_W), .N_W(N_W), .Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W),
        .MAP_AW(MAP_AW), .LANE_W(LANE_W), .PH_W(WPC_W), .S_W(S_W), .LK_W(LK_W)
    ) u_writer (
        .clk(clk), .rst(rst), .hold(iw_stall), .req_valid(in_fire), .req_ready(wr_ready),
        .req_chan(in_c_q), .req_y(in_y_q), .req_x(in_x_q), .req_cpix(in_cpix),
        .req_val(s_axis_tdata),
        .req_phases(IN_WPC[WPC_W-1:0]), .req_h(IN_LH[Y_W-1:0]), .req_w(IN_LW[X_W-1:0]),
        .req_smask(IN_SMASK[S_W-1:0]), .req_lk(IN_LK[LK_W-1:0]), .req_la(IN_LA[LK_W-1:0]),
        .map_index(map_index), .map_valid(map_valid), .map_lane(map_lane),
        .map_dy(map_dy), .map_dx(map_dx), .map_offset(map_offset),
        .mem_we(iw_we), .mem_be(iw_be), .mem_waddr(iw_addr), .mem_wdata(iw_data),
        .busy(wr_busy)
    );

    // Column memory write ports, merged in two levels so the merge stays small and local.
    // Row r finishes pixel p at t0 + TP*p + r with TP >= 8 (src/schedule.rs), and tiles
    // do not overlap, so the WG = 8 consecutive rows of a write group never write on the
    // same cycle: each group needs only a one-hot AND-OR of its rows' writes. The column
    // memories then pick among ceil(R/8) group buses instead of R rows; the compiler's
    // pixel period guarantees at most one group targets a column per cycle. An input
    // write that meets a row write waits (`iw_stall` holds the writer).
    localparam integer WG = 8;
    localparam integer NG = (R + WG - 1) / WG;
    localparam integer GW_W = 1 + COL_W + LANE_W + A_W + 8;
    wire [NG*GW_W-1:0] gw;
    wire [R-1:0] rw_keep = rw_valid & row_keep & {R{!s_final}};
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
                    if (rw_keep[gg*WG + gk])
                        bus = bus | {1'b1, rw_col[(gg*WG + gk)*COL_W +: COL_W],
                                     rw_lane[(gg*WG + gk)*LANE_W +: LANE_W],
                                     rw_addr[(gg*WG + gk)*A_W +: A_W],
                                     ro_act[(gg*WG + gk)*8 +: 8]};
                end
            end
            assign gw[gg*GW_W +: GW_W] = bus;
`ifndef SYNTHESIS
            // The one-hot premise above, checked wherever the RTL is simulated.
            wire [GN-1:0] g_keep = rw_keep[gg*WG +: GN];
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
    reg [C*8-1:0]     rw_byte;
    integer wc, wg, wl;
    always @(*) begin
        // Loop variables are assigned on every path, or synthesis sees latches.
        wg = 0;
        wl = 0;
        rw_we    = {C{1'b0}};
        rw_be    = {C*ALPHA{1'b0}};
        rw_waddr = {C*A_W{1'b0}};
        rw_byte  = {C*8{1'b0}};
        for (wc = 0; wc < C; wc = wc + 1) begin
            for (wg = 0; wg < NG; wg = wg + 1) begin
                if (gw[wg*GW_W + GW_W - 1] &&
                    gw[wg*GW_W + LANE_W + A_W + 8 +: COL_W] == wc[COL_W-1:0]) begin
                    rw_we[wc] = 1'b1;
                    rw_waddr[wc*A_W +: A_W] = rw_waddr[wc*A_W +: A_W] | gw[wg*GW_W + 8 +: A_W];
                    rw_byte[wc*8 +: 8] = rw_byte[wc*8 +: 8] | gw[wg*GW_W +: 8];
                    for (wl = 0; wl < ALPHA; wl = wl + 1) begin
                        if (gw[wg*GW_W + A_W + 8 +: LANE_W] == wl[LANE_W-1:0])
                            rw_be[wc*ALPHA + wl] = 1'b1;
                    end
                end
            end
        end
    end
    // A row write fills one lane (byte enable); every lane carries the same byte.
    wire [C*ALPHA*8-1:0] rw_data;
    genvar gd;
    generate
        for (gd = 0; gd < C; gd = gd + 1) begin : g_wdata
            assign rw_data[gd*ALPHA*8 +: ALPHA*8] = {ALPHA{rw_byte[gd*8 +: 8]}};
        end
    endgenerate
    assign iw_stall = |(iw_we & rw_we);

    reg [C-1:0]       cw_we;
    reg [C*ALPHA-1:0] cw_be;
    reg [C*A_W-1:0]   cw_addr;
    reg [C*ALPHA*8-1:0] cw_data;
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

    // ------------------------------------------------------------------ classifier
    wire cls_busy;
    ccc_classifier #(
        .CH(CH), .CH_W(CH_W), .R(R), .N_W(N_W), .CLS(CLS), .CLS_W(CLS_W), .POOL_W(POOL_W),
        .W_FILE(CW_FILE), .B_FILE(CB_FILE)
    ) u_cls (
        .clk(clk), .rst(rst),
        .add_valid(ro_keep & {R{s_final}}), .add_val(ro_act), .add_row0(s_row0),
        .start(cls_start_q), .busy(cls_busy),
        .out_valid(m_axis_tvalid), .out_ready(m_axis_tready), .out_data(m_axis_tdata),
        .out_last(m_axis_tlast), .done(done)
    );

    assign busy = (state_q != S_WAITIN) || in_busy_q;

    // Grid indices for shift-on-write: input pixels on the first layer's grid (back to 0
    // after an image's last pixel), this tile's output pixels on the next layer's grid
    // (back to 0 when a tile starts streaming).
    wire in_pix_step = in_fire && (in_c_q == IN_C[N_W-1:0] - 1'b1);
    wire in_row_end  = (in_x_q == IN_W[X_W-1:0] - 1'b1);
    ccc_grid_index #(.Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W), .S_W(S_W)) u_in_grid (
        .clk(clk), .rst(rst),
        .clear(in_pix_step && in_row_end && (in_y_q == IN_H[Y_W-1:0] - 1'b1)),
        .step(in_pix_step), .y(in_y_q), .x(in_x_q), .row_end(in_row_end),
        .smask(IN_SMASK[S_W-1:0]), .wo(IN_WO[PIX_W-1:0]), .cpix(in_cpix)
    );
    ccc_grid_index #(.Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W), .S_W(S_W)) u_out_grid (
        .clk(clk), .rst(rst),
        .clear(state_q == S_WAITLOAD && loaded_q && ld_tile_q == tile_q),
        .step(go0), .y(y_q), .x(x_q), .row_end(x_q == s_wo - 1'b1),
        .smask(s_wsmask), .wo(s_wwo), .cpix(cpix)
    );

    // ------------------------------------------------------------------ control
    always @(posedge clk) begin
        if (rst) begin
            state_q     <= S_WAITIN;
            tile_q      <= {T_W{1'b0}};
            in_busy_q   <= 1'b0;
            in_done_q   <= 1'b0;
            in_open_q   <= 1'b1;
            in_full_q   <= 1'b0;
            in_c_q      <= {N_W{1'b0}};
            in_y_q      <= {Y_W{1'b0}};
            in_x_q      <= {X_W{1'b0}};
            cyc_q       <= {TP_W{1'b0}};
            pix_q       <= {(PIX_W + 1) {1'b0}};
            y_q         <= {Y_W{1'b0}};
            x_q         <= {X_W{1'b0}};
            addr_q      <= {A_W{1'b0}};
            sub_q       <= {LANE_W{1'b0}};
            amt_q       <= {LANE_W{1'b0}};
            since_q     <= 16'd0;
            drain_q     <= 16'd0;
            cls_start_q <= 1'b0;
            ld_busy_q   <= 1'b0;
            ld_tile_q   <= {T_W{1'b0}};
            ld_addr_q   <= {WM_AW{1'b0}};
            ld_left_q   <= 16'd0;
            ld_rd_q     <= 1'b0;
            loaded_q    <= 1'b0;
            ld_need_q   <= 1'b1;
            go_d1_q     <= 1'b0;
            tg_pix_q    <= {PIX_W{1'b0}};
            tg_cpix_q   <= {PIX_W{1'b0}};
            tg_y_q      <= {Y_W{1'b0}};
            tg_x_q      <= {X_W{1'b0}};
            tg_swap_q   <= 1'b0;
            tg_on_q     <= 1'b0;
            tg_bit_q    <= 3'd0;
        end else begin
            cls_start_q <= 1'b0;

            // weight loader: R reads, bottom row first; ld_en follows each read by a cycle
            ld_rd_q <= ld_busy_q;
            if (ld_go) begin
                ld_busy_q <= 1'b1;
                ld_need_q <= 1'b0;
                ld_tile_q <= ld_go_tile;
                ld_addr_q <= ld_go_tile * R[WM_AW-1:0];
                ld_left_q <= R[15:0];
                loaded_q  <= 1'b0;
            end else if (ld_busy_q) begin
                ld_addr_q <= ld_addr_q + 1'b1;
                ld_left_q <= ld_left_q - 1'b1;
                if (ld_left_q == 16'd1) ld_busy_q <= 1'b0;
            end
            if (ld_rd_q && !ld_busy_q) loaded_q <= 1'b1;

            // token generator
            go_d1_q <= go0;
            if (go0) begin
                tg_pix_q  <= pix_q[PIX_W-1:0];
                tg_cpix_q <= cpix;
                tg_y_q    <= y_q;
                tg_x_q    <= x_q;
                tg_swap_q <= swap0;
            end
            if (go_d1_q) begin
                tg_on_q  <= 1'b1;
                tg_bit_q <= 3'd0;
            end else if (tg_on_q) begin
                tg_bit_q <= tg_bit_q + 1'b1;
                if (tg_bit_q == 3'd7) tg_on_q <= 1'b0;
            end

            // input: runs beside the layers whenever the first layer's buffers are free
            if (in_fire) begin
                in_busy_q <= 1'b1;
                if (in_c_q == IN_C[N_W-1:0] - 1'b1) begin
                    in_c_q   <= {N_W{1'b0}};
                    if (in_x_q == IN_W[X_W-1:0] - 1'b1) begin
                        in_x_q <= {X_W{1'b0}};
                        if (in_y_q == IN_H[Y_W-1:0] - 1'b1) begin
                            in_y_q    <= {Y_W{1'b0}};
                            in_done_q <= 1'b1;
                        end else begin
                            in_y_q <= in_y_q + 1'b1;
                        end
                    end else begin
                        in_x_q <= in_x_q + 1'b1;
                    end
                end else begin
                    in_c_q <= in_c_q + 1'b1;
                end
            end
            if (in_done_q && !wr_busy) begin
                in_done_q <= 1'b0;
                in_open_q <= 1'b0;
                in_full_q <= 1'b1;
            end

            case (state_q)
                S_WAITIN: begin
                    if (in_full_q) begin
                        in_full_q <= 1'b0;
                        in_busy_q <= 1'b0;
                        tile_q    <= {T_W{1'b0}};
                        state_q   <= S_WAITLOAD;
                    end
                end
                S_WAITLOAD: begin
                    if (loaded_q && ld_tile_q == tile_q) begin
                        loaded_q   <= 1'b0;
                        state_q    <= S_STREAM;
                        cyc_q      <= {TP_W{1'b0}};
                        pix_q      <= {(PIX_W + 1) {1'b0}};
                        y_q        <= {Y_W{1'b0}};
                        x_q        <= {X_W{1'b0}};
                        addr_q     <= s_rbase;
                        sub_q      <= {LANE_W{1'b0}};
                        amt_q      <= {LANE_W{1'b0}};
                        since_q    <= 16'd0;
                    end
                end
                S_STREAM: begin
                    since_q <= since_q + 1'b1;
                    if (cyc_q == s_tp - 1'b1) begin
                        cyc_q <= {TP_W{1'b0}};
                        if (pix_q == s_pixels) begin
                            state_q <= S_DRAIN;
                            drain_q <= DRAIN[15:0];
                        end
                    end else begin
                        cyc_q <= cyc_q + 1'b1;
                    end
                    if (go0) begin
                        pix_q <= pix_q + 1'b1;
                        // This layer's pixels are consecutive in its compact buffers,
                        // rkm1 + 1 of them per word, rstep lanes apart.
                        if (sub_q == s_rkm1) begin
                            sub_q  <= {LANE_W{1'b0}};
                            amt_q  <= {LANE_W{1'b0}};
                            addr_q <= addr_q + 1'b1;
                        end else begin
                            sub_q <= sub_q + 1'b1;
                            amt_q <= amt_q + s_rstep;
                        end
                        if (x_q == s_wo - 1'b1) begin
                            x_q <= {X_W{1'b0}};
                            y_q <= y_q + 1'b1;
                        end else begin
                            x_q <= x_q + 1'b1;
                        end
                    end
                end
                S_DRAIN: begin
                    since_q <= since_q + 1'b1;
                    drain_q <= drain_q - 1'b1;
                    if (drain_q == 16'd1) begin
                        // The first layer has read this image: the next may come in.
                        if (s_layer == {LAYER_W{1'b0}} && s_layer_end) in_open_q <= 1'b1;
                        if (s_final && s_layer_end) begin
                            state_q     <= S_CLASSIFY;
                            cls_start_q <= 1'b1;
                        end else begin
                            tile_q  <= next_tile;
                            state_q <= S_WAITLOAD;
                        end
                    end
                end
                default: begin  // S_CLASSIFY: wait for the logits to leave
                    if (done) begin
                        state_q <= S_WAITIN;
                        tile_q  <= {T_W{1'b0}};
                    end
                end
            endcase
        end
    end
    wire unused_cls = cls_busy;
endmodule
