// ccc_core — the accelerator around the MX array (hand-written, generic; ccc emits
// ccc_top, which sets the parameters and supplies the compiled tables).
//
// Dataflow per image; images follow each other without draining the array:
//   1. input: AXI-Stream pixels (y, x, channel order) go through the writer into the
//      first layer's input buffers (shift-on-write; the K*K taps of a KxK first conv are
//      written in parallel when they sit in different columns), while the array still
//      runs the previous image's later layers;
//   2. for every tile of the compiled schedule (ccc_sched), after the gap the compiler
//      chose: stream its pixels through the array — one word of ALPHA activation bytes
//      per column, serialized LSB first over 8 cycles, skewed one cycle per column —
//      while the row ends shift-accumulate, add bias or the stored partial sum (vertical
//      tiling), requantize, and write finished activations into the next layer's tap
//      buffers or add them into the pool (last layer). The next tile's weights shift into
//      the cells' shadow registers while this one streams (double buffering). With
//      SPLIT > 0 the array has two column segments with a row-end bank each, so a layer
//      with few groups runs two row blocks, or even and odd pixels, side by side;
//   3. the classifier reads the pool and sends the logits and the class index, beside
//      the next image's layers.
// One pixel period is TP cycles per tile (>= 8): 8 normally, which is one 8-bit MAC per
// cell every 8 cycles. See docs/ACCELERATOR.md.
//
// This module only connects the parts, one module per concern: ccc_ctrl (the tile
// controller), ccc_sched (the compiled schedule ROM), ccc_loader (weight memory and
// loader), ccc_token_gen (row control tokens, one per segment), ccc_col_feed +
// ccc_sdp_ram per column (tap buffers, input buffers and their streamers), ccc_mx_array,
// ccc_row_unit per row and bank, ccc_write_merge (the tap buffers' write ports),
// ccc_input (stream in, shift-on-write of the image) and ccc_classifier (pool,
// classifier, output stream).
`default_nettype none

module ccc_core #(
    parameter integer R        = 4,
    parameter integer C        = 4,
    parameter integer ALPHA    = 8,
    parameter integer SEL_W    = 3,
    parameter integer PSUM_W   = 12,
    // row-end accumulator and bias width (the model's bound, <= 32)
    parameter integer ACC_W    = 32,
    parameter integer NT       = 1,
    parameter integer T_W      = 1,
    parameter integer WM_AW    = 4,
    parameter integer A_W      = 10,
    parameter integer A_D      = 1024,
    parameter integer PIX_W    = 10,
    parameter integer Y_W      = 5,
    parameter integer X_W      = 5,
    parameter integer N_W      = 8,
    parameter integer RB_W     = 2,
    parameter integer ROW_W    = 2,
    parameter integer MAP_AW   = 8,
    parameter integer COL_W    = 2,
    parameter integer LANE_W   = 3,
    parameter integer WPC_W    = 4,
    parameter integer TP_W     = 8,
    parameter integer GAP_W    = 16,
    parameter integer LAYER_W  = 2,
    // column segments: the second starts at column SPLIT (0: one segment); NB row-end
    // banks (2 with a split)
    parameter integer SPLIT    = 0,
    parameter integer NB       = 1,
    // the write merge's level 0 (ccc_write_merge)
    parameter integer WRITE_L0 = 0,
    parameter integer IN_C     = 1,
    parameter integer IN_H     = 8,
    parameter integer IN_W     = 8,
    parameter integer IN_WPC   = 9,
    // compact tap buffers (ccc_shift_target): stride-mask and packing-field widths, and
    // the first layer's stride mask, packing (log2 pixels per word, log2 alpha), read
    // limits and output width, for the input writer; how it runs on the segments
    // (0 one, 1 two row blocks, 2 even/odd pixels); its input buffers' depth and columns
    parameter integer S_W      = 1,
    parameter integer LK_W     = 2,
    parameter integer TAP_W    = 8,
    parameter integer IN_SMASK = 0,
    parameter integer IN_LK    = 0,
    parameter integer IN_LA    = 0,
    parameter integer IN_LH    = 8,
    parameter integer IN_LW    = 8,
    parameter integer IN_WO    = 8,
    parameter integer IN_MODE  = 0,
    // input-buffer words per column; 0: the first layer's input lives in the tap buffers
    parameter integer IN_D     = 1,
    parameter [C-1:0] IN_COLS  = {C{1'b1}},
    parameter integer PSUM_D   = 0,
    parameter integer PSUM_AW  = 1,
    parameter integer CLS      = 10,
    parameter integer CLS_W    = 4,
    parameter integer CH       = 4,
    parameter integer POOL_W   = 14,
    // head accumulator width (the model's bound, <= 32)
    parameter integer LOGIT_W  = 32,
    // the head's linear layers (hw/ccc_classifier.v): count, MAC lanes, counter and
    // hidden-index widths, weight and bias words, the classifier's inputs
    parameter integer HL       = 1,
    parameter integer HP       = 1,
    parameter integer HN_W     = 4,
    parameter integer HD_W     = 1,
    parameter integer HW_N     = CLS * CH,
    parameter integer HB_N     = CLS,
    parameter integer CLS_IN   = CH,
    // 1: the head runs on the array (its last layer's accumulators are the logits,
    // ccc_logits instead of ccc_classifier)
    parameter integer HEAD_ARRAY = 0,
    // timing the compiler planned with (src/schedule.rs)
    parameter integer LOAD_AT  = 16,
    parameter integer REOPEN   = 0,
    parameter integer CLS_DLY  = 0,
    parameter         WM_FILE  = "",
    parameter integer WM_BANK  = 512,
    parameter         CW_FILE  = "",
    parameter         CB_FILE  = "",
    parameter         CL_FILE  = ""
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire                   s_axis_tvalid,
    output wire                   s_axis_tready,
    input  wire [7:0]             s_axis_tdata,
    input  wire                   s_axis_tlast,
    // sticky input framing errors ([0] an image ended early, [1] one ran long), cleared
    // by a pulse on in_err_clear (docs/ACCELERATOR.md)
    output wire [1:0]             in_err,
    input  wire                   in_err_clear,
    output wire                   m_axis_tvalid,
    input  wire                   m_axis_tready,
    output wire [31:0]            m_axis_tdata,
    output wire                   m_axis_tlast,
    output wire                   busy,
    output wire                   done,
    // weight memory load port: one word per array row and tile {bank targets and biases,
    // columns' {weight, selector}}
    input  wire                   wl_en,
    input  wire [WM_AW-1:0]       wl_addr,
    input  wire [C*(8+SEL_W)+NB*(ACC_W+1+COL_W+LANE_W+2*TAP_W+A_W+LANE_W+1)-1:0] wl_data,
    // debug: every activation the row ends produce (bank-major, row r of a bank at r)
    output wire [NB*R-1:0]         dbg_valid,
    output wire [NB*R*LAYER_W-1:0] dbg_layer,
    output wire [NB*R*N_W-1:0]     dbg_ch,
    output wire [NB*R*PIX_W-1:0]   dbg_pix,
    output wire [NB*R*8-1:0]       dbg_data,
    output wire [NB*R*2-1:0]       dbg_img,
    // debug: 0 waiting for an image, 1 layers, 2 waiting for the pool; the layer whose
    // span runs (it changes when the previous layer's last slot ends)
    output wire [1:0]             dbg_phase,
    output wire [T_W-1:0]         dbg_tile
);
    localparam integer TGT_W  = 1 + COL_W + LANE_W + 2 * TAP_W + A_W + LANE_W + 1;
    localparam integer CELL_W = C * (8 + SEL_W);
    localparam integer BANK_W = ACC_W + TGT_W;
    localparam integer WM_W   = CELL_W + NB * BANK_W;
    localparam integer INFO_W = 2 * PIX_W + Y_W + X_W + 4 + N_W + RB_W + ROW_W + 1 +
                                LAYER_W + 2 + 6 + 8 + Y_W + X_W + S_W + 2 * LK_W + 2;
    localparam integer TOK_W  = 4 + INFO_W;
    // The token's cut bit (ccc_token_gen's layout).
    localparam integer TOK_CUT = 4 + 2 * PIX_W + Y_W + X_W + 3;
    localparam integer TOK_SWAP = TOK_CUT - 1;

    // ------------------------------------------------------------------ schedule
    wire [T_W-1:0]        rom_tile;
    wire [LAYER_W-1:0]    r_layer;
    wire                  r_first, r_last, r_final, r_ffirst, r_reopen, r_mirror;
    wire [1:0]            r_mode;
    wire [N_W-1:0]        r_row0, r_row0_b;
    wire [RB_W-1:0]       r_rblk, r_rblk_b;
    wire [ROW_W:0]        r_rows, r_rows_b;
    wire [PIX_W:0]        r_pixels, r_slots;
    wire [X_W-1:0]        r_wo;
    wire [A_W-1:0]        r_rbase;
    wire [LANE_W-1:0]     r_rkm1, r_rstep;
    wire [S_W-1:0]        r_wsmask;
    wire [LK_W-1:0]       r_wlk, r_wla;
    wire [PIX_W-1:0]      r_wwo;
    wire [Y_W-1:0]        r_wlh;
    wire [X_W-1:0]        r_wlw;
    wire signed [5:0]     r_shift;
    wire [7:0]            r_clamp;
    wire                  r_pool;
    wire [TP_W-1:0]       r_tp;
    wire [2:0]            r_delta;
    wire [GAP_W-1:0]      r_gap;

    ccc_sched u_sched (
        .tile(rom_tile), .layer(r_layer), .first(r_first), .last(r_last),
        .final_layer(r_final), .ffirst(r_ffirst), .reopen(r_reopen), .mode(r_mode),
        .row0(r_row0), .row0_b(r_row0_b), .rblk(r_rblk), .rblk_b(r_rblk_b), .rows(r_rows),
        .rows_b(r_rows_b), .pixels(r_pixels), .slots(r_slots), .wo(r_wo), .rbase(r_rbase),
        .rkm1(r_rkm1), .rstep(r_rstep), .wsmask(r_wsmask), .wlk(r_wlk), .wla(r_wla),
        .wwo(r_wwo), .wlh(r_wlh), .wlw(r_wlw), .mirror(r_mirror), .shift(r_shift),
        .clamp(r_clamp), .pool(r_pool), .tp(r_tp), .delta(r_delta), .gap(r_gap)
    );

    // ------------------------------------------------------------------ controller
    wire              in_full, in_take, in_reopen, in_busy;
    wire              pool_free, cls_start, img_end;
    wire              ld_go;
    wire [T_W-1:0]    ld_go_tile;
    wire              go0, swap0, go1, swap1, req_cut, req_l0;
    // The first layer reads its own input buffers, when it has them.
    wire              req_inbuf = (IN_D > 0) && req_l0;
    wire [A_W-1:0]    addr0, addr1;
    wire [LANE_W-1:0] amt0, amt1;
    wire [PIX_W-1:0]  t0_pix, t0_cpix, t1_pix, t1_cpix;
    wire [Y_W-1:0]    t0_y, t1_y;
    wire              t0_first, t0_last;
    wire [X_W-1:0]    t0_x, t1_x;
    wire [LAYER_W-1:0] c_layer;
    wire              c_first, c_last, c_final, c_mirror;
    wire [N_W-1:0]    c_row0, c_row0_b;
    wire [RB_W-1:0]   c_rblk, c_rblk_b;
    wire [ROW_W:0]    c_rows, c_rows_b;
    wire signed [5:0] c_shift;
    wire [7:0]        c_clamp;
    wire [Y_W-1:0]    c_wlh;
    wire [X_W-1:0]    c_wlw;
    wire [S_W-1:0]    c_wsmask;
    wire [LK_W-1:0]   c_wlk, c_wla;
    wire              running;
    wire [1:0]        c_img;

    ccc_ctrl #(
        .NT(NT), .T_W(T_W), .A_W(A_W), .PIX_W(PIX_W), .Y_W(Y_W), .X_W(X_W),
        .N_W(N_W), .RB_W(RB_W), .ROW_W(ROW_W), .LANE_W(LANE_W), .LK_W(LK_W), .TP_W(TP_W),
        .GAP_W(GAP_W), .LAYER_W(LAYER_W), .S_W(S_W), .LOAD_AT(LOAD_AT), .REOPEN(REOPEN),
        .CLS_DLY(CLS_DLY)
    ) u_ctrl (
        .clk(clk), .rst(rst), .rom_tile(rom_tile),
        .r_layer(r_layer), .r_first(r_first), .r_last(r_last), .r_final(r_final),
        .r_ffirst(r_ffirst), .r_reopen(r_reopen), .r_mode(r_mode), .r_row0(r_row0),
        .r_row0_b(r_row0_b), .r_rblk(r_rblk), .r_rblk_b(r_rblk_b), .r_rows(r_rows),
        .r_rows_b(r_rows_b), .r_pixels(r_pixels), .r_slots(r_slots), .r_wo(r_wo),
        .r_rbase(r_rbase), .r_rkm1(r_rkm1), .r_rstep(r_rstep), .r_wsmask(r_wsmask),
        .r_wlk(r_wlk), .r_wla(r_wla), .r_wwo(r_wwo), .r_wlh(r_wlh), .r_wlw(r_wlw),
        .r_mirror(r_mirror), .r_shift(r_shift), .r_clamp(r_clamp), .r_pool(r_pool), .r_tp(r_tp),
        .r_delta(r_delta), .r_gap(r_gap),
        .in_full(in_full), .in_take(in_take), .in_reopen(in_reopen),
        .pool_free(pool_free), .cls_start(cls_start), .img_end(img_end),
        .ld_go(ld_go), .ld_go_tile(ld_go_tile),
        .go0(go0), .swap0(swap0), .addr0(addr0), .amt0(amt0), .cut(req_cut),
        .inbuf(req_l0), .t0_pix(t0_pix), .t0_cpix(t0_cpix), .t0_first(t0_first),
        .t0_last(t0_last), .t0_y(t0_y), .t0_x(t0_x),
        .go1(go1), .swap1(swap1), .addr1(addr1), .amt1(amt1), .t1_pix(t1_pix),
        .t1_cpix(t1_cpix), .t1_y(t1_y), .t1_x(t1_x),
        .c_layer(c_layer), .c_first(c_first), .c_last(c_last), .c_final(c_final),
        .c_row0(c_row0), .c_row0_b(c_row0_b), .c_rblk(c_rblk), .c_rblk_b(c_rblk_b),
        .c_rows(c_rows), .c_rows_b(c_rows_b), .c_mirror(c_mirror), .c_shift(c_shift),
        .c_clamp(c_clamp), .c_wlh(c_wlh), .c_wlw(c_wlw), .c_wsmask(c_wsmask),
        .c_wlk(c_wlk), .c_wla(c_wla), .c_img(c_img), .c_tile(dbg_tile), .phase(dbg_phase),
        .running(running)
    );

    // ------------------------------------------------------------------ weight loader
    wire [WM_W-1:0] wm_rdata;
    wire            ld_en_w, ld_pre_w, unused_ld_busy, unused_loaded;
    wire [T_W-1:0]  unused_ld_tile;
    ccc_loader #(
        .R(R), .NT(NT), .T_W(T_W), .WM_AW(WM_AW), .WORD_W(WM_W), .WM_FILE(WM_FILE),
        .BANK_DEPTH(WM_BANK)
    ) u_loader (
        .clk(clk), .rst(rst), .wl_en(wl_en), .wl_addr(wl_addr), .wl_data(wl_data),
        .go(ld_go), .go_tile(ld_go_tile), .consume(1'b0),
        .ld_busy(unused_ld_busy), .ld_en(ld_en_w), .ld_pre(ld_pre_w), .ld_word(wm_rdata),
        .loaded(unused_loaded), .ld_tile(unused_ld_tile)
    );
    wire unused_loader = ^{unused_ld_busy, unused_loaded, unused_ld_tile};

    // The load enable drives every shadow register: one registered copy per column (its
    // R cells) and per row unit (its bias and target shadows), each its own ccc_rep_reg so
    // that yosys does not merge them back into one net across the chip; the word
    // registered beside.
    // The cells' enables over two levels, a copy of the loader's own per column, then one
    // per column and block of LD_RB rows (ECP5 16x16 at 0d187a2: one enable per column,
    // 176 clock enables across the chip, was a 9.7-11.3 ns route on the critical path).
    localparam integer LD_RB  = 4;
    localparam integer LD_BLK = (R + LD_RB - 1) / LD_RB;
    wire [C-1:0]        ld_pre_col_q;
    wire [C*LD_BLK-1:0] ld_en_col_q;
    wire [NB*R-1:0]     ld_en_row_q;
    reg [WM_W-1:0]  ld_word_q;
    always @(posedge clk) ld_word_q <= wm_rdata;
    genvar gk, gl;
    generate
        for (gk = 0; gk < C; gk = gk + 1) begin : g_ld_col
            ccc_rep_reg u_pre (.clk(clk), .rst(rst), .d(ld_pre_w), .q(ld_pre_col_q[gk]));
            for (gl = 0; gl < LD_BLK; gl = gl + 1) begin : g_blk
                ccc_rep_reg u_rep (
                    .clk(clk), .rst(rst), .d(ld_pre_col_q[gk]),
                    .q(ld_en_col_q[gk*LD_BLK + gl])
                );
            end
        end
        for (gk = 0; gk < NB * R; gk = gk + 1) begin : g_ld_row
            ccc_rep_reg u_rep (.clk(clk), .rst(rst), .d(ld_en_w), .q(ld_en_row_q[gk]));
        end
    endgenerate

    // ------------------------------------------------------------------ tokens
    wire [TOK_W-1:0] tok_s0, tok_s1;
    ccc_token_gen #(
        .PIX_W(PIX_W), .Y_W(Y_W), .X_W(X_W), .N_W(N_W), .RB_W(RB_W), .ROW_W(ROW_W),
        .LAYER_W(LAYER_W), .S_W(S_W), .LK_W(LK_W)
    ) u_tok0 (
        .clk(clk), .rst(rst), .go(go0), .swap(swap0), .pix(t0_pix), .cpix(t0_cpix),
        .y(t0_y), .x(t0_x), .first(t0_first), .last(t0_last), .cut(req_cut), .row0(c_row0),
        .rblk(c_rblk), .rows(c_rows), .layer(c_layer), .final_layer(c_final),
        .mirror(c_mirror), .shift(c_shift), .clamp(c_clamp), .map_h(c_wlh), .map_w(c_wlw),
        .smask(c_wsmask), .lk(c_wlk), .la(c_wla), .img(c_img), .tok(tok_s0)
    );
    generate
        if (NB > 1) begin : g_tok1
            ccc_token_gen #(
                .PIX_W(PIX_W), .Y_W(Y_W), .X_W(X_W), .N_W(N_W), .RB_W(RB_W), .ROW_W(ROW_W),
                .LAYER_W(LAYER_W), .S_W(S_W), .LK_W(LK_W)
            ) u_tok1 (
                .clk(clk), .rst(rst), .go(go1), .swap(swap1), .pix(t1_pix), .cpix(t1_cpix),
                .y(t1_y), .x(t1_x), .first(c_first), .last(c_last), .cut(1'b1),
                .row0(c_row0_b), .rblk(c_rblk_b), .rows(c_rows_b), .layer(c_layer),
                .final_layer(c_final), .mirror(c_mirror), .shift(c_shift), .clamp(c_clamp),
                .map_h(c_wlh), .map_w(c_wlw), .smask(c_wsmask), .lk(c_wlk), .la(c_wla),
                .img(c_img), .tok(tok_s1)
            );
        end else begin : g_no_tok1
            assign tok_s1 = {TOK_W{1'b0}};
            // Segment 0's tokens take first / last per request (t0_first, t0_last).
            wire unused_seg1 = ^{go1, swap1, t1_pix, t1_cpix, t1_y, t1_x, c_row0_b, c_rblk_b,
                                 c_rows_b, addr1, amt1, tok_s1, c_first, c_last};
        end
    endgenerate

    // The token line follows the request chain: C stages, so a token reaches a row end
    // with its bit-plane's sums. Two-segment tokens (cut) leave at stage SPLIT for bank 0;
    // segment 1's enter there.
    reg [C*TOK_W-1:0] line_q;
    wire [TOK_W-1:0]  tok_bank [0:NB-1];
    genvar gs;
    generate
        for (gs = 0; gs < C; gs = gs + 1) begin : g_line
            wire [TOK_W-1:0] in_tok;
            if (gs == 0) begin : g_first
                assign in_tok = tok_s0;
            end else if (NB > 1 && gs == SPLIT) begin : g_inject
                wire [TOK_W-1:0] prev = line_q[(gs-1)*TOK_W +: TOK_W];
                assign in_tok = tok_s1[0] ? tok_s1
                              : (prev[TOK_CUT] ? {TOK_W{1'b0}} : prev);
            end else begin : g_chain
                assign in_tok = line_q[(gs-1)*TOK_W +: TOK_W];
            end
            // Only the valid and swap bits need a reset (the swap flag is a register
            // enable in the row units): the fields are data.
            always @(posedge clk) begin
                line_q[gs*TOK_W +: TOK_W] <= in_tok;
                if (rst) begin
                    line_q[gs*TOK_W] <= 1'b0;
                    line_q[gs*TOK_W + TOK_SWAP] <= 1'b0;
                end
            end
        end
        if (NB > 1) begin : g_bank0_tok
            wire [TOK_W-1:0] at_split = line_q[(SPLIT-1)*TOK_W +: TOK_W];
            // Segment 1's tokens pass bank 0 by: neither valid nor swapping there.
            assign tok_bank[0] = {at_split[TOK_W-1:TOK_SWAP+1],
                                  at_split[TOK_SWAP] & at_split[TOK_CUT],
                                  at_split[TOK_SWAP-1:1], at_split[0] & at_split[TOK_CUT]};
        end
        assign tok_bank[NB-1] = line_q[(C-1)*TOK_W +: TOK_W];
    endgenerate

    // ------------------------------------------------------------------ clearing
    // Shift-on-write never writes a tap's zero padding: those words must read as zero.
    // Rather than trust a RAM's power-on contents, every tap-buffer and input-buffer
    // word is written with zero after reset (CLR_D cycles, one address per cycle in all
    // columns at once), and the input stays closed meanwhile. The schedule counts these
    // cycles into the first image's latency (src/schedule.rs, clear_cycles). One enable
    // register per column, so the clear does not fan out from one flip-flop to every
    // write port.
    localparam integer CLR_D = (IN_D > A_D) ? IN_D : A_D;
    reg            clr_on_q;
    reg [A_W-1:0]  clr_addr_q;
    wire           clr_on_d = clr_on_q && (clr_addr_q != CLR_D[A_W-1:0] - 1'b1);
    wire [C-1:0]   clr_col_q;
    always @(posedge clk) begin
        if (rst) begin
            clr_on_q   <= 1'b1;
            clr_addr_q <= {A_W{1'b0}};
        end else begin
            clr_on_q <= clr_on_d;
            if (clr_on_q) clr_addr_q <= clr_addr_q + 1'b1;
        end
    end
    generate
        for (gk = 0; gk < C; gk = gk + 1) begin : g_clr_col
            ccc_rep_reg #(.INIT(1'b1)) u_rep (
                .clk(clk), .rst(rst), .d(clr_on_d), .q(clr_col_q[gk])
            );
        end
    endgenerate

    // ------------------------------------------------------------------ columns
    wire [C-1:0]          cw_we;
    wire [C*ALPHA-1:0]    cw_be;
    wire [C*A_W-1:0]      cw_addr;
    wire [C*ALPHA*8-1:0]  cw_data;
    wire [C-1:0]          iw_we;
    wire [C*ALPHA-1:0]    iw_be;
    wire [C*A_W-1:0]      iw_addr;
    wire [C*8-1:0]        iw_data;
    wire [C:0]            cg_go, cg_swap, cg_cut, cg_inbuf;
    wire [(C+1)*A_W-1:0]  cg_addr;
    wire [(C+1)*LANE_W-1:0] cg_amt;
    wire [C*ALPHA-1:0]    arr_act;
    wire [C-1:0]          arr_swap;
    wire [C-1:0]          arr_cut;
    assign cg_go[0] = go0;
    assign cg_addr[0 +: A_W] = addr0;
    assign cg_amt[0 +: LANE_W] = amt0;
    assign cg_swap[0] = swap0;
    assign cg_cut[0] = req_cut;
    assign cg_inbuf[0] = req_inbuf;

    genvar gc, gr, gb;
    generate
        for (gc = 0; gc < C; gc = gc + 1) begin : g_col
            // Column SPLIT takes segment 1's requests, and drops the chain's two-segment
            // ones (they belong to segment 0).
            wire              f_go, f_swap, f_cut, f_inbuf;
            wire [A_W-1:0]    f_addr;
            wire [LANE_W-1:0] f_amt;
            if (NB > 1 && gc == SPLIT && gc > 0) begin : g_inject
                assign f_go    = go1 | (cg_go[gc] & ~cg_cut[gc]);
                assign f_swap  = go1 ? swap1 : cg_swap[gc];
                assign f_cut   = go1 | cg_cut[gc];
                assign f_inbuf = go1 ? req_inbuf : cg_inbuf[gc];
                assign f_addr  = go1 ? addr1 : cg_addr[gc*A_W +: A_W];
                assign f_amt   = go1 ? amt1 : cg_amt[gc*LANE_W +: LANE_W];
            end else begin : g_chain
                assign f_go    = cg_go[gc];
                assign f_swap  = cg_swap[gc];
                assign f_cut   = cg_cut[gc];
                assign f_inbuf = cg_inbuf[gc];
                assign f_addr  = cg_addr[gc*A_W +: A_W];
                assign f_amt   = cg_amt[gc*LANE_W +: LANE_W];
            end
            wire              re, in_re;
            wire [A_W-1:0]    raddr;
            wire [ALPHA*8-1:0] rdata, in_rdata;
            ccc_col_feed #(.ALPHA(ALPHA), .ADDR_W(A_W), .LANE_W(LANE_W)) u_feed (
                .clk(clk), .rst(rst),
                .go_in(f_go), .addr_in(f_addr), .amt_in(f_amt), .swap_in(f_swap),
                .cut_in(f_cut), .inbuf_in(f_inbuf),
                .go_out(cg_go[gc+1]), .addr_out(cg_addr[(gc+1)*A_W +: A_W]),
                .amt_out(cg_amt[(gc+1)*LANE_W +: LANE_W]), .swap_out(cg_swap[gc+1]),
                .cut_out(cg_cut[gc+1]), .inbuf_out(cg_inbuf[gc+1]),
                .mem_re(re), .in_re(in_re), .mem_raddr(raddr), .mem_rdata(rdata),
                .in_rdata(in_rdata),
                .act(arr_act[gc*ALPHA +: ALPHA]), .act_swap(arr_swap[gc]),
                .act_cut(arr_cut[gc])
            );
            // Without input buffers the input writer shares the tap buffer's write port;
            // the schedule keeps the row writes and the input stream apart in time
            // (src/schedule.rs reopen_point).
            wire              a_we;
            wire [ALPHA-1:0]  a_be;
            wire [A_W-1:0]    a_addr;
            wire [ALPHA*8-1:0] a_data;
            if (IN_D == 0) begin : g_shared_port
                wire iw = iw_we[gc];
                assign a_we   = cw_we[gc] | iw;
                assign a_be   = iw ? iw_be[gc*ALPHA +: ALPHA] : cw_be[gc*ALPHA +: ALPHA];
                assign a_addr = iw ? iw_addr[gc*A_W +: A_W] : cw_addr[gc*A_W +: A_W];
                assign a_data = iw ? {ALPHA{iw_data[gc*8 +: 8]}} : cw_data[gc*ALPHA*8 +: ALPHA*8];
`ifndef SYNTHESIS
                always @(posedge clk) begin
                    if (!rst && cw_we[gc] && iw)
                        $fatal(1, "ccc_core: a row write and an input write meet at column %0d",
                               gc);
                end
`endif
            end else begin : g_own_port
                assign a_we   = cw_we[gc];
                assign a_be   = cw_be[gc*ALPHA +: ALPHA];
                assign a_addr = cw_addr[gc*A_W +: A_W];
                assign a_data = cw_data[gc*ALPHA*8 +: ALPHA*8];
            end
            wire clr = clr_col_q[gc];
            ccc_sdp_ram #(
                .WIDTH(ALPHA * 8), .BYTES(ALPHA), .DEPTH(A_D), .ADDR_W(A_W), .INIT_FILE("")
            ) u_amem (
                .clk(clk), .we(a_we | clr), .wbe(a_be | {ALPHA{clr}}),
                .waddr(clr ? clr_addr_q : a_addr), .wdata(clr ? {ALPHA*8{1'b0}} : a_data),
                .re(re), .raddr(raddr), .rdata(rdata)
            );
            if (IN_D > 0 && IN_COLS[gc]) begin : g_inbuf
                ccc_sdp_ram #(
                    .WIDTH(ALPHA * 8), .BYTES(ALPHA), .DEPTH(IN_D), .ADDR_W(A_W),
                    .INIT_FILE("")
                ) u_imem (
                    .clk(clk), .we(iw_we[gc] | clr), .wbe(iw_be[gc*ALPHA +: ALPHA] | {ALPHA{clr}}),
                    .waddr(clr ? clr_addr_q : iw_addr[gc*A_W +: A_W]),
                    .wdata(clr ? {ALPHA*8{1'b0}} : {ALPHA{iw_data[gc*8 +: 8]}}),
                    .re(in_re), .raddr(raddr), .rdata(in_rdata)
                );
            end else if (IN_D > 0) begin : g_no_inbuf
                assign in_rdata = {ALPHA*8{1'b0}};
                wire unused_in = ^{in_re, iw_we[gc], iw_be[gc*ALPHA +: ALPHA],
                                   iw_addr[gc*A_W +: A_W]};
            end else begin : g_in_shared
                assign in_rdata = {ALPHA*8{1'b0}};
                wire unused_in = in_re;
            end
        end
    endgenerate
    wire unused_chain_end = ^{cg_go[C], cg_addr[C*A_W +: A_W], cg_amt[C*LANE_W +: LANE_W],
                              cg_swap[C], cg_cut[C], cg_inbuf[C], arr_cut};

    // ------------------------------------------------------------------ array
    wire [C*8-1:0]      arr_ld_w;
    wire [C*SEL_W-1:0]  arr_ld_sel;
    wire [R*PSUM_W-1:0] arr_psum, arr_psum_mid;
    generate
        for (gc = 0; gc < C; gc = gc + 1) begin : g_ld
            assign arr_ld_w[gc*8 +: 8] = ld_word_q[gc*(8+SEL_W) + SEL_W +: 8];
            assign arr_ld_sel[gc*SEL_W +: SEL_W] = ld_word_q[gc*(8+SEL_W) +: SEL_W];
        end
    endgenerate

    ccc_mx_array #(
        .ROWS(R), .COLS(C), .ALPHA(ALPHA), .SEL_W(SEL_W), .PSUM_W(PSUM_W), .SPLIT(SPLIT),
        .LD_RB(LD_RB)
    ) u_array (
        .clk(clk), .rst(rst), .ld_en(ld_en_col_q), .ld_w_in(arr_ld_w),
        .ld_sel_in(arr_ld_sel), .act_in(arr_act), .swap_in(arr_swap),
        .cut_in(SPLIT > 0 ? arr_cut[SPLIT] : 1'b0),
        .psum_out(arr_psum), .psum_mid(arr_psum_mid)
    );

    // ------------------------------------------------------------------ row ends
    wire [NB*R-1:0]        ro_valid;
    wire [NB*R*8-1:0]      ro_act;
    wire [NB*R*ACC_W-1:0]  ro_acc;
    wire [NB*R*RB_W-1:0]   ro_rblk;
    wire [NB*R-1:0]        ro_final;
    wire [NB*R-1:0]        rw_valid;
    wire [NB*R*COL_W-1:0]  rw_col;
    wire [NB*R*LANE_W-1:0] rw_lane;
    wire [NB*R*A_W-1:0]    rw_addr;
    wire [NB*R-1:0]        rw_mirror;
    generate
        for (gb = 0; gb < NB; gb = gb + 1) begin : g_bank
            wire [(R+1)*TOK_W-1:0] tok;
            wire [(R+1)*ACC_W-1:0] bias;
            wire [(R+1)*TGT_W-1:0] tgt;
            wire [R*PSUM_W-1:0]    psum = (NB > 1 && gb == 0) ? arr_psum_mid : arr_psum;
            assign tok[0 +: TOK_W]   = tok_bank[gb];
            assign bias[0 +: ACC_W]  = ld_word_q[CELL_W + gb*BANK_W +: ACC_W];
            assign tgt[0 +: TGT_W]   = ld_word_q[CELL_W + gb*BANK_W + ACC_W +: TGT_W];
            for (gr = 0; gr < R; gr = gr + 1) begin : g_row
                localparam integer K = gb * R + gr;
                ccc_row_unit #(
                    .ROW(gr), .ROW_W(ROW_W), .PSUM_W(PSUM_W), .ACC_W(ACC_W), .PIX_W(PIX_W), .Y_W(Y_W),
                    .X_W(X_W), .N_W(N_W), .RB_W(RB_W), .LAYER_W(LAYER_W), .PSUM_D(PSUM_D),
                    .PSUM_AW(PSUM_AW), .A_W(A_W), .COL_W(COL_W), .LANE_W(LANE_W),
                    .S_W(S_W), .LK_W(LK_W), .TAP_W(TAP_W), .LOGITS(HEAD_ARRAY)
                ) u_row (
                    .clk(clk), .rst(rst),
                    .tok_in(tok[gr*TOK_W +: TOK_W]), .tok_out(tok[(gr+1)*TOK_W +: TOK_W]),
                    .psum(psum[gr*PSUM_W +: PSUM_W]),
                    .ld_en(ld_en_row_q[K]), .ld_bias_in(bias[gr*ACC_W +: ACC_W]),
                    .ld_bias_out(bias[(gr+1)*ACC_W +: ACC_W]),
                    .ld_tgt_in(tgt[gr*TGT_W +: TGT_W]),
                    .ld_tgt_out(tgt[(gr+1)*TGT_W +: TGT_W]),
                    .out_valid(ro_valid[K]), .out_act(ro_act[K*8 +: 8]),
                    .out_acc(ro_acc[K*ACC_W +: ACC_W]),
                    .out_layer(dbg_layer[K*LAYER_W +: LAYER_W]),
                    .out_ch(dbg_ch[K*N_W +: N_W]), .out_rblk(ro_rblk[K*RB_W +: RB_W]),
                    .out_pix(dbg_pix[K*PIX_W +: PIX_W]), .out_final(ro_final[K]),
                    .out_img(dbg_img[K*2 +: 2]),
                    .wr_valid(rw_valid[K]), .wr_col(rw_col[K*COL_W +: COL_W]),
                    .wr_lane(rw_lane[K*LANE_W +: LANE_W]), .wr_addr(rw_addr[K*A_W +: A_W]),
                    .wr_mirror(rw_mirror[K])
                );
            end
            wire unused_bank_end = ^{tok[R*TOK_W +: TOK_W], bias[R*ACC_W +: ACC_W],
                                     tgt[R*TGT_W +: TGT_W]};
        end
    endgenerate
    assign dbg_valid = ro_valid;
    assign dbg_data  = ro_act;

    // ------------------------------------------------------------------ writes
    ccc_write_merge #(
        .R(R), .NB(NB), .C(C), .SPLIT(SPLIT), .ALPHA(ALPHA), .A_W(A_W), .COL_W(COL_W),
        .LANE_W(LANE_W), .L0(WRITE_L0)
    ) u_merge (
        .clk(clk), .rst(rst),
        .rw_valid(rw_valid), .rw_col(rw_col), .rw_lane(rw_lane), .rw_addr(rw_addr),
        .rw_byte(ro_act), .rw_mirror(rw_mirror),
        .cw_we(cw_we), .cw_be(cw_be), .cw_addr(cw_addr), .cw_data(cw_data)
    );

    // The input port behind a skid stage: no path from s_axis into the writer's
    // targets, and s_axis_tready straight from a flip-flop (gated by reset).
    wire       in_valid, in_ready, in_last;
    wire [7:0] in_data;
    ccc_skid #(.W(9)) u_in_skid (
        .clk(clk), .rst(rst),
        .s_valid(s_axis_tvalid), .s_ready(s_axis_tready), .s_data({s_axis_tlast, s_axis_tdata}),
        .m_valid(in_valid), .m_ready(in_ready), .m_data({in_last, in_data})
    );

    ccc_input #(
        .C(C), .ALPHA(ALPHA), .A_W(A_W), .PIX_W(PIX_W), .Y_W(Y_W), .X_W(X_W), .N_W(N_W),
        .MAP_AW(MAP_AW), .LANE_W(LANE_W), .WPC_W(WPC_W), .S_W(S_W), .LK_W(LK_W),
        .TAP_W(TAP_W), .IN_C(IN_C), .IN_H(IN_H), .IN_W(IN_W), .IN_WPC(IN_WPC), .IN_SMASK(IN_SMASK),
        .IN_LK(IN_LK), .IN_LA(IN_LA), .IN_LH(IN_LH), .IN_LW(IN_LW), .IN_WO(IN_WO),
        .SPLIT(SPLIT), .IN_MODE(IN_MODE)
    ) u_input (
        .clk(clk), .rst(rst),
        .s_axis_tvalid(in_valid), .s_axis_tready(in_ready),
        .s_axis_tdata(in_data), .s_axis_tlast(in_last), .hold(clr_on_q),
        .err(in_err), .err_clear(in_err_clear),
        .take(in_take), .reopen(in_reopen), .full(in_full), .busy(in_busy),
        .mem_we(iw_we), .mem_be(iw_be), .mem_waddr(iw_addr), .mem_wdata(iw_data)
    );

    // ------------------------------------------------------------------ classifier
    // The pool holds an image's sums from its last layer's end until the classifier has
    // read them.
    reg pool_pend_q;
    wire        cls_busy, pool_done;
    wire        cls_valid, cls_ready, cls_last;
    wire [31:0] cls_data;
    always @(posedge clk) begin
        if (rst) pool_pend_q <= 1'b0;
        else if (img_end) pool_pend_q <= 1'b1;
        else if (pool_done) pool_pend_q <= 1'b0;
    end
    assign pool_free = !pool_pend_q;

    // The classifier may still be sending the previous image's result when the next
    // image's pool is complete (the output stream stalled): the start waits for it here.
    // Meanwhile the pool holds that image's sums and the following image stops before
    // its last layer (pool_free): the output buffer is one result plus one pool.
    reg  cls_req_q;
    wire cls_go = (cls_start || cls_req_q) && !cls_busy;
    always @(posedge clk) begin
        if (rst) cls_req_q <= 1'b0;
        else if (cls_go) cls_req_q <= 1'b0;
        else if (cls_start) cls_req_q <= 1'b1;
    end

    generate
        if (HEAD_ARRAY != 0) begin : g_logits
            ccc_logits #(
                .R(R), .NB(NB), .RB_W(RB_W), .CLS(CLS), .CLS_W(CLS_W), .ACC_W(ACC_W)
            ) u_cls (
                .clk(clk), .rst(rst),
                .lg_valid(ro_valid & ro_final), .lg_val(ro_acc), .lg_blk(ro_rblk),
                .start(cls_go), .busy(cls_busy), .pool_done(pool_done),
                .out_valid(cls_valid), .out_ready(cls_ready), .out_data(cls_data),
                .out_last(cls_last)
            );
        end else begin : g_cls
            ccc_classifier #(
                .CH(CH), .R(R), .NB(NB), .RB_W(RB_W), .CLS(CLS), .CLS_W(CLS_W),
                .POOL_W(POOL_W), .LOGIT_W(LOGIT_W), .NL(HL), .HP(HP), .HN_W(HN_W), .HD_W(HD_W),
                .NW(HW_N), .NBS(HB_N), .CLS_IN(CLS_IN),
                .W_FILE(CW_FILE), .B_FILE(CB_FILE), .L_FILE(CL_FILE)
            ) u_cls (
                .clk(clk), .rst(rst),
                .add_valid(ro_valid & ro_final), .add_val(ro_act), .add_blk(ro_rblk),
                .start(cls_go), .busy(cls_busy), .pool_done(pool_done),
                .out_valid(cls_valid), .out_ready(cls_ready), .out_data(cls_data),
                .out_last(cls_last)
            );
            wire unused_acc = ^ro_acc;
        end
    endgenerate

    // The output stream leaves through a skid stage, so `m_axis_tready` drives one
    // flip-flop instead of the enables of the classifier's logit shift register. `done`
    // follows the image's last beat.
    ccc_skid #(.W(33)) u_out_skid (
        .clk(clk), .rst(rst),
        .s_valid(cls_valid), .s_ready(cls_ready), .s_data({cls_last, cls_data}),
        .m_valid(m_axis_tvalid), .m_ready(m_axis_tready), .m_data({m_axis_tlast, m_axis_tdata})
    );
    reg done_q;
    always @(posedge clk) begin
        if (rst) done_q <= 1'b0;
        else done_q <= m_axis_tvalid && m_axis_tready && m_axis_tlast;
    end
    assign done = done_q;

    assign busy = clr_on_q || running || in_busy || cls_busy || m_axis_tvalid;
endmodule

`default_nettype wire
