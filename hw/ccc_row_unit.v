// ccc_row_unit — everything at the right end of one array row of one row-end bank
// (hand-written primitive of ccc).
//
// The row's control token arrives together with the row's bit-plane sums and moves on
// to the next row one cycle later. It carries everything about its pixel that this unit
// needs — position, grid index, the tile's first/last column block, the layer's
// requantizer and next-layer buffer layout — so pixels of consecutive tiles and layers
// follow each other through the rows without a bubble. The unit keeps the shadow chain of
// the row's bias and write target (loaded with the weights, swapped with the tile's
// first bit-plane), the partial-sum memory for vertical tiling (one word per output
// pixel) and the row end (ccc_row_end, three stages).
//
// Pipeline: token bit-plane 0 at cycle X0 (the swap, the partial-sum read), bit-plane 7
// at X0 + 7; the write target of the finished pixel is worked out from the bit-plane-7
// token and held beside the row end's stages; outputs (`out_*`, `wr_*`) are valid in
// cycle X0 + 10, as `out_valid` / `wr_valid` say (src/schedule.rs `pipe::OUT` = 12
// counts from the request). The write
// request names the column memory, byte lane and word address of the one next-layer tap
// that reads this row's channel, already displaced by that tap's (dy, dx) and placed in
// the reader's compact buffer (ccc_shift_target); none when the position falls outside
// the map or off the reader's stride grid, no tap reads the channel, or the row holds no
// filter of this tile. Partial sums of non-final column blocks go to the psum memory.
`default_nettype none

module ccc_row_unit #(
    // this row's index in the array
    parameter integer ROW     = 0,
    parameter integer ROW_W   = 3,
    parameter integer PSUM_W  = 14,
    // Accumulator, partial-sum and bias width: wide enough for every partial sum of the
    // model (the compiler's bound), so that nothing wraps.
    parameter integer ACC_W   = 32,
    parameter integer PIX_W   = 10,
    parameter integer Y_W     = 5,
    parameter integer X_W     = 5,
    parameter integer N_W     = 8,
    parameter integer RB_W    = 4,
    parameter integer LAYER_W = 2,
    // Partial-sum words per row: the most output pixels of any layer tiled along groups
    // (partial sums live between its column blocks); 0 when no layer is.
    parameter integer PSUM_D  = 1024,
    parameter integer PSUM_AW = 10,
    parameter integer A_W     = 10,
    parameter integer COL_W   = 2,
    parameter integer LANE_W  = 3,
    parameter integer S_W     = 1,
    parameter integer LK_W    = 2,
    parameter integer TAP_W   = 8,
    // The row's int32 accumulator as well (out_acc): a head run on the array, whose last
    // layer's accumulators are the logits.
    parameter integer LOGITS  = 0,
    parameter integer TOK_W   = 4 + 2 * PIX_W + Y_W + X_W + 4 + N_W + RB_W + ROW_W + 1 +
                                LAYER_W + 2 + 6 + 8 + Y_W + X_W + S_W + 2 * LK_W + 2,
    // {valid, col, lane, dy[TAP_W-1:0], dx[TAP_W-1:0], offset[A_W+LANE_W:0]}
    parameter integer TGT_W   = 1 + COL_W + LANE_W + 2 * TAP_W + A_W + LANE_W + 1
) (
    input  wire                     clk,
    input  wire                     rst,
    // the token from the row above (or the token line), and on to the row below; the
    // layout is ccc_token_gen's
    input  wire [TOK_W-1:0]         tok_in,
    output reg  [TOK_W-1:0]         tok_out,
    // this row's bit-plane sum from the array
    input  wire signed [PSUM_W-1:0] psum,
    // bias and write-target shadow chains
    input  wire                     ld_en,
    input  wire [ACC_W-1:0]         ld_bias_in,
    output wire [ACC_W-1:0]         ld_bias_out,
    input  wire [TGT_W-1:0]         ld_tgt_in,
    output wire [TGT_W-1:0]         ld_tgt_out,
    // the finished activation of this row
    output reg                      out_valid,
    output wire [7:0]               out_act,
    // with out_valid when LOGITS: the accumulator out_act was requantized from
    output wire [ACC_W-1:0]         out_acc,
    output wire [LAYER_W-1:0]       out_layer,
    output wire [N_W-1:0]           out_ch,
    output wire [RB_W-1:0]          out_rblk,
    output wire [PIX_W-1:0]         out_pix,
    output wire                     out_final,
    output wire [1:0]               out_img,
    output reg                      wr_valid,
    output wire [COL_W-1:0]         wr_col,
    output wire [LANE_W-1:0]        wr_lane,
    output wire [A_W-1:0]           wr_addr,
    output wire                     wr_mirror
);
    // tok_in's fields, in ccc_token_gen's order.
    localparam integer O_PIX   = 4;
    localparam integer O_CPIX  = O_PIX + PIX_W;
    localparam integer O_Y     = O_CPIX + PIX_W;
    localparam integer O_X     = O_Y + Y_W;
    localparam integer O_FIRST = O_X + X_W;
    localparam integer O_ROW0  = O_FIRST + 4;
    localparam integer O_RBLK  = O_ROW0 + N_W;
    localparam integer O_ROWS  = O_RBLK + RB_W;
    localparam integer O_LAYER = O_ROWS + ROW_W + 1;
    localparam integer O_FINAL = O_LAYER + LAYER_W;
    localparam integer O_SHIFT = O_FINAL + 2;
    localparam integer O_CLAMP = O_SHIFT + 6;
    localparam integer O_MAPH  = O_CLAMP + 8;
    localparam integer O_MAPW  = O_MAPH + Y_W;
    localparam integer O_SMASK = O_MAPW + X_W;
    localparam integer O_LK    = O_SMASK + S_W;
    localparam integer O_LA    = O_LK + LK_W;
    localparam integer O_IMG   = O_LA + LK_W;
    wire                t_valid  = tok_in[0];
    wire [2:0]          t_bit    = tok_in[3:1];
    wire [PIX_W-1:0]    t_pix    = tok_in[O_PIX +: PIX_W];
    wire [PIX_W-1:0]    t_cpix   = tok_in[O_CPIX +: PIX_W];
    wire [Y_W-1:0]      t_y      = tok_in[O_Y +: Y_W];
    wire [X_W-1:0]      t_x      = tok_in[O_X +: X_W];
    wire                t_first  = tok_in[O_FIRST];
    wire                t_last   = tok_in[O_FIRST + 1];
    wire                t_swap   = tok_in[O_FIRST + 2];
    wire [N_W-1:0]      t_row0   = tok_in[O_ROW0 +: N_W];
    wire [RB_W-1:0]     t_rblk   = tok_in[O_RBLK +: RB_W];
    wire [ROW_W:0]      t_rows   = tok_in[O_ROWS +: ROW_W + 1];
    wire [LAYER_W-1:0]  t_layer  = tok_in[O_LAYER +: LAYER_W];
    wire                t_final  = tok_in[O_FINAL];
    wire                t_mirror = tok_in[O_FINAL + 1];
    wire signed [5:0]   t_shift  = tok_in[O_SHIFT +: 6];
    wire [7:0]          t_clamp  = tok_in[O_CLAMP +: 8];
    wire [Y_W-1:0]      t_map_h  = tok_in[O_MAPH +: Y_W];
    wire [X_W-1:0]      t_map_w  = tok_in[O_MAPW +: X_W];
    wire [S_W-1:0]      t_smask  = tok_in[O_SMASK +: S_W];
    wire [LK_W-1:0]     t_lk     = tok_in[O_LK +: LK_W];
    wire [LK_W-1:0]     t_la     = tok_in[O_LA +: LK_W];
    wire [1:0]          t_img    = tok_in[O_IMG +: 2];
    // The cut bit only routes tokens in the token line.
    wire                unused_cut = tok_in[O_FIRST + 3];

    reg [ACC_W-1:0] bias_shadow_q;
    reg [ACC_W-1:0] bias_q;
    reg [TGT_W-1:0] tgt_shadow_q;
    reg [TGT_W-1:0] tgt_q;
    assign ld_bias_out = bias_shadow_q;
    assign ld_tgt_out  = tgt_shadow_q;

    wire                g_valid  = tgt_q[TGT_W-1];
    wire [COL_W-1:0]    g_col    = tgt_q[TGT_W-2 -: COL_W];
    wire [LANE_W-1:0]   g_lane   = tgt_q[TGT_W-2-COL_W -: LANE_W];
    wire [TAP_W-1:0]    g_dy     = tgt_q[A_W+LANE_W+2*TAP_W -: TAP_W];
    wire [TAP_W-1:0]    g_dx     = tgt_q[A_W+LANE_W+TAP_W -: TAP_W];
    wire [A_W+LANE_W:0] g_offset = tgt_q[A_W+LANE_W:0];

    // Where the finished pixel goes. A pixel's eight tokens (bit-planes 0..7) pass on
    // consecutive cycles with the same position and layout fields and, from bit-plane
    // 1 on, the same target registers, so the target is worked out from the
    // bit-plane-5 token over two register stages (the shift target's own, then s0) and
    // is ready with bit-plane 7: two carry chains (displacement, bounds compare) that
    // were one path into s1 cost no latency this way.
    wire                in_map;
    wire [A_W-1:0]      taddr;
    wire [LANE_W-1:0]   lane_off;
    wire                unused_odd;
    reg                 s0_in_map_q;
    reg [A_W-1:0]       s0_addr_q;
    reg [LANE_W-1:0]    s0_lane_off_q;
    always @(posedge clk) begin
        s0_in_map_q   <= in_map;
        s0_addr_q     <= taddr;
        s0_lane_off_q <= lane_off;
    end
    // in_map a stage later than the address (IN_MAP_REG): from the bit-plane-4 token,
    // the same pixel's fields.
    ccc_shift_target #(
        .Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W), .A_W(A_W), .LANE_W(LANE_W), .S_W(S_W),
        .LK_W(LK_W), .TAP_W(TAP_W), .IN_MAP_REG(1)
    ) u_target (
        .clk(clk), .y(t_y), .x(t_x), .cpix(t_cpix), .h_lim(t_map_h), .w_lim(t_map_w), .dy(g_dy),
        .dx(g_dx), .offset(g_offset), .smask(t_smask), .lk(t_lk), .la(t_la), .halve(1'b0),
        .in_map(in_map), .addr(taddr), .lane_off(lane_off), .odd(unused_odd)
    );

    // This row holds a filter of the pixel's tile.
    wire keep = ({{(32 - ROW_W - 1) {1'b0}}, t_rows} > ROW);
    wire bit0 = t_valid && t_bit == 3'd0;
    wire bit7 = t_valid && t_bit == 3'd7;

    // Partial sums: read at bit-plane 0, used at bit-plane 7, written from the row end's
    // second stage.
    wire                   acc_valid;
    wire                   acc_last;
    wire signed [ACC_W-1:0] acc;
    wire [ACC_W-1:0]       pmem_rdata;

    // What the finished pixel is: taken once, from the bit-plane-7 token, and held. A
    // row's bit-plane-7 tokens come at least tp >= 8 cycles apart and the row end's
    // outputs leave 4 cycles after theirs (the psum write after 2), so one register per
    // field serves every stage where a pipeline of four copies did (fewer flip-flops:
    // the row units were the largest flip-flop term after the cells at 32x32).
    reg               s1_keep_q, s2_keep_q;
    reg               s1_wr_q, s2_wr_q;
    reg [COL_W-1:0]   h_col_q;
    reg [LANE_W-1:0]  h_lane_q;
    reg [A_W-1:0]     h_addr_q;
    reg               h_mirror_q;
    reg [LAYER_W-1:0] h_layer_q;
    reg [N_W-1:0]     h_ch_q;
    reg [RB_W-1:0]    h_rblk_q;
    reg               h_final_q;
    reg [1:0]         h_img_q;
    reg [PIX_W-1:0]   h_pix_q;
    reg               s3_out_q, s3_wr_q;

    generate
        if (PSUM_D != 0) begin : g_psum
            // Only layers tiled along groups use it, and their pixels fit PSUM_AW bits.
            ccc_sdp_ram #(
                .WIDTH(ACC_W), .BYTES(1), .DEPTH(PSUM_D), .ADDR_W(PSUM_AW), .INIT_FILE("")
            ) u_pmem (
                .clk(clk),
                .we(acc_valid & ~acc_last),
                .wbe(1'b1),
                .waddr(h_pix_q[PSUM_AW-1:0]),
                .wdata(acc),
                .re(bit0),
                .raddr(t_pix[PSUM_AW-1:0]),
                .rdata(pmem_rdata)
            );
        end else begin : g_no_psum
            assign pmem_rdata = {ACC_W{1'b0}};
            // Only the psum memory reads these; Verilator skips names with "unused".
            wire unused_psum = ^acc;
        end
    endgenerate

    wire signed [ACC_W-1:0] base = t_first ? bias_q : pmem_rdata;
    wire               re_valid;
    wire [7:0]         re_act;

    ccc_row_end #(.PSUM_W(PSUM_W), .ACC_W(ACC_W)) u_end (
        .clk(clk),
        .rst(rst),
        .in_valid(t_valid),
        .in_bit(t_bit),
        .psum(psum),
        .base(base),
        .last(t_last),
        .shift(t_shift),
        .clamp_max(t_clamp),
        .acc_valid(acc_valid),
        .acc_last(acc_last),
        .acc(acc),
        .out_valid(re_valid),
        .out_act(re_act)
    );


    // The shadow chains and the swapped copies are control state of the tile in flight:
    // reset. The token, the pixel's description and the outputs' data are not.
    always @(posedge clk) begin
        if (rst) begin
            bias_shadow_q <= {ACC_W{1'b0}};
            bias_q        <= {ACC_W{1'b0}};
            tgt_shadow_q  <= {TGT_W{1'b0}};
            tgt_q         <= {TGT_W{1'b0}};
        end else begin
            if (ld_en) begin
                bias_shadow_q <= ld_bias_in;
                tgt_shadow_q  <= ld_tgt_in;
            end
            // The token's swap flag is set only on a valid bit-plane 0 (ccc_token_gen),
            // so it is the enable itself, straight from the previous row's register.
            if (t_swap) begin
                bias_q <= bias_shadow_q;
                tgt_q  <= tgt_shadow_q;
            end
        end
    end

    always @(posedge clk) begin
        tok_out   <= tok_in;
        s1_keep_q <= keep;
        s1_wr_q   <= keep && g_valid && s0_in_map_q && !t_final;
        s2_keep_q <= s1_keep_q;
        s2_wr_q   <= s1_wr_q;
        if (bit7) begin
            h_col_q    <= g_col;
            // g_lane < alpha and lane_off is a multiple of alpha: OR is the sum.
            h_lane_q   <= g_lane | s0_lane_off_q;
            h_addr_q   <= s0_addr_q;
            h_mirror_q <= t_mirror;
            h_layer_q  <= t_layer;
            h_ch_q     <= t_row0 + ROW[N_W-1:0];
            h_rblk_q   <= t_rblk;
            h_final_q  <= t_final;
            h_img_q    <= t_img;
            h_pix_q    <= t_pix;
        end
    end
    assign out_layer = h_layer_q;
    assign out_ch    = h_ch_q;
    assign out_rblk  = h_rblk_q;
    assign out_pix   = h_pix_q;
    assign out_final = h_final_q;
    assign out_img   = h_img_q;
    assign wr_col    = h_col_q;
    assign wr_lane   = h_lane_q;
    assign wr_addr   = h_addr_q;
    assign wr_mirror = h_mirror_q;

    // The finished accumulator, held from the row end's second stage until out_valid
    // (two cycles later; the next comes tp >= 8 cycles after it).
    generate
        if (LOGITS != 0) begin : g_logits
            reg [ACC_W-1:0] h_acc_q;
            always @(posedge clk) begin
                if (acc_valid && acc_last) h_acc_q <= acc;
            end
            assign out_acc = h_acc_q;
        end else begin : g_no_logits
            assign out_acc = {ACC_W{1'b0}};
        end
    endgenerate

    // The row end's fourth stage is the activation; the pixel's description is held
    // beside it. Only the valid bits are control state (reset).
    assign out_act = re_act;
    wire unused_re_valid = re_valid;
    always @(posedge clk) begin
        if (rst) begin
            s3_out_q  <= 1'b0;
            s3_wr_q   <= 1'b0;
            out_valid <= 1'b0;
            wr_valid  <= 1'b0;
        end else begin
            s3_out_q  <= acc_valid && acc_last && s2_keep_q;
            s3_wr_q   <= acc_valid && acc_last && s2_keep_q && s2_wr_q;
            out_valid <= s3_out_q;
            wr_valid  <= s3_wr_q;
        end
    end
endmodule

`default_nettype wire
