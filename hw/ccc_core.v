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
//
// This module only connects the parts, one module per concern: ccc_ctrl (the tile
// controller), ccc_sched (the compiled schedule ROM), ccc_loader (weight memory and
// loader), ccc_token_gen (row control tokens), ccc_col_feed + ccc_sdp_ram per column
// (tap buffers and their streamers), ccc_mx_array, ccc_row_unit per row, ccc_write_merge
// (the column memories' write ports), ccc_input (stream in, shift-on-write of the image)
// and ccc_classifier (pool, classifier, output stream).
`default_nettype none

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
    localparam integer TOK_W = 1 + 3 + PIX_W + PIX_W + Y_W + X_W + 3;

    // ------------------------------------------------------------------ schedule
    wire [T_W-1:0]        tile;
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
        .tile(tile), .layer(s_layer), .first(s_first), .last(s_last), .final_layer(s_final),
        .layer_end(s_layer_end), .row0(s_row0), .nrows(s_nrows), .pixels(s_pixels),
        .wo(s_wo), .rbase(s_rbase), .rkm1(s_rkm1), .rstep(s_rstep),
        .wsmask(s_wsmask), .wlk(s_wlk), .wla(s_wla), .wwo(s_wwo), .wlh(s_wlh), .wlw(s_wlw),
        .shift(s_shift), .clamp(s_clamp), .tp(s_tp)
    );

    // ------------------------------------------------------------------ controller
    wire             in_full, in_take, in_reopen, in_busy;
    wire             loaded, ld_go, ld_consume, ld_busy, ld_en;
    wire [T_W-1:0]   ld_tile, ld_go_tile;
    wire             go0, swap0;
    wire [PIX_W-1:0] req_pix, req_cpix;
    wire [Y_W-1:0]   req_y;
    wire [X_W-1:0]   req_x;
    wire [A_W-1:0]   req_addr;
    wire [LANE_W-1:0] req_amt;
    wire             cls_start, running;

    ccc_ctrl #(
        .R(R), .C(C), .NT(NT), .T_W(T_W), .A_W(A_W), .PIX_W(PIX_W), .Y_W(Y_W), .X_W(X_W),
        .LANE_W(LANE_W), .TP_W(TP_W), .LAYER_W(LAYER_W), .S_W(S_W)
    ) u_ctrl (
        .clk(clk), .rst(rst), .tile(tile),
        .s_layer(s_layer), .s_final(s_final), .s_layer_end(s_layer_end),
        .s_pixels(s_pixels), .s_wo(s_wo), .s_rbase(s_rbase), .s_rkm1(s_rkm1),
        .s_rstep(s_rstep), .s_wsmask(s_wsmask), .s_wwo(s_wwo), .s_tp(s_tp),
        .in_full(in_full), .in_take(in_take), .in_reopen(in_reopen),
        .loaded(loaded), .ld_tile(ld_tile), .ld_go(ld_go), .ld_go_tile(ld_go_tile),
        .ld_consume(ld_consume),
        .go(go0), .swap(swap0), .pix(req_pix), .cpix(req_cpix), .y(req_y), .x(req_x),
        .addr(req_addr), .amt(req_amt),
        .cls_start(cls_start), .cls_done(done), .running(running), .phase(dbg_phase)
    );

    // ------------------------------------------------------------------ weight loader
    wire [WM_W-1:0] wm_rdata;
    ccc_loader #(
        .R(R), .NT(NT), .T_W(T_W), .WM_AW(WM_AW), .WORD_W(WM_W), .WM_FILE(WM_FILE)
    ) u_loader (
        .clk(clk), .rst(rst), .wl_en(wl_en), .wl_addr(wl_addr), .wl_data(wl_data),
        .go(ld_go), .go_tile(ld_go_tile), .consume(ld_consume),
        .ld_busy(ld_busy), .ld_en(ld_en), .ld_word(wm_rdata), .loaded(loaded),
        .ld_tile(ld_tile)
    );
    wire unused_ld_busy = ld_busy;

    // ------------------------------------------------------------------ tokens
    wire [TOK_W-1:0] tok_row0;
    ccc_token_gen #(.C(C), .PIX_W(PIX_W), .Y_W(Y_W), .X_W(X_W), .TOK_W(TOK_W)) u_tokens (
        .clk(clk), .rst(rst), .go(go0), .swap(swap0), .pix(req_pix), .cpix(req_cpix),
        .y(req_y), .x(req_x), .first(s_first), .last(s_last), .tok(tok_row0)
    );

    // ------------------------------------------------------------------ columns
    wire [C-1:0]          cw_we;
    wire [C*ALPHA-1:0]    cw_be;
    wire [C*A_W-1:0]      cw_addr;
    wire [C*ALPHA*8-1:0]  cw_data;
    wire [C:0]            cg_go;
    wire [(C+1)*A_W-1:0]  cg_addr;
    wire [(C+1)*LANE_W-1:0] cg_amt;
    wire [C:0]            cg_swap;
    wire [C*ALPHA-1:0]    arr_act;
    wire [C-1:0]          arr_swap;
    assign cg_go[0] = go0;
    assign cg_addr[0 +: A_W] = req_addr;
    assign cg_amt[0 +: LANE_W] = req_amt;
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
    assign row_tok[0 +: TOK_W] = tok_row0;
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
    assign dbg_tile_layer = s_layer;

    // ------------------------------------------------------------------ input and writes
    wire [C-1:0]       iw_we;
    wire [C*ALPHA-1:0] iw_be;
    wire [C*A_W-1:0]   iw_addr;
    wire [ALPHA*8-1:0] iw_data;
    wire               iw_stall;

    ccc_input #(
        .C(C), .ALPHA(ALPHA), .A_W(A_W), .PIX_W(PIX_W), .Y_W(Y_W), .X_W(X_W), .N_W(N_W),
        .MAP_AW(MAP_AW), .LANE_W(LANE_W), .WPC_W(WPC_W), .S_W(S_W), .LK_W(LK_W),
        .IN_C(IN_C), .IN_H(IN_H), .IN_W(IN_W), .IN_WPC(IN_WPC), .IN_SMASK(IN_SMASK),
        .IN_LK(IN_LK), .IN_LA(IN_LA), .IN_LH(IN_LH), .IN_LW(IN_LW), .IN_WO(IN_WO)
    ) u_input (
        .clk(clk), .rst(rst),
        .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
        .s_axis_tdata(s_axis_tdata), .stall(iw_stall),
        .take(in_take), .reopen(in_reopen), .full(in_full), .busy(in_busy),
        .mem_we(iw_we), .mem_be(iw_be), .mem_waddr(iw_addr), .mem_wdata(iw_data)
    );

    ccc_write_merge #(
        .R(R), .C(C), .ALPHA(ALPHA), .A_W(A_W), .COL_W(COL_W), .LANE_W(LANE_W)
    ) u_merge (
        .clk(clk), .rst(rst),
        .rw_valid(rw_valid & row_keep & {R{!s_final}}), .rw_col(rw_col), .rw_lane(rw_lane),
        .rw_addr(rw_addr), .rw_byte(ro_act),
        .iw_we(iw_we), .iw_be(iw_be), .iw_addr(iw_addr), .iw_data(iw_data),
        .iw_stall(iw_stall),
        .cw_we(cw_we), .cw_be(cw_be), .cw_addr(cw_addr), .cw_data(cw_data)
    );

    // ------------------------------------------------------------------ classifier
    wire cls_busy;
    ccc_classifier #(
        .CH(CH), .CH_W(CH_W), .R(R), .N_W(N_W), .CLS(CLS), .CLS_W(CLS_W), .POOL_W(POOL_W),
        .W_FILE(CW_FILE), .B_FILE(CB_FILE)
    ) u_cls (
        .clk(clk), .rst(rst),
        .add_valid(ro_keep & {R{s_final}}), .add_val(ro_act), .add_row0(s_row0),
        .start(cls_start), .busy(cls_busy),
        .out_valid(m_axis_tvalid), .out_ready(m_axis_tready), .out_data(m_axis_tdata),
        .out_last(m_axis_tlast), .done(done)
    );
    wire unused_cls = cls_busy;

    assign busy = running || in_busy;
endmodule

`default_nettype wire
