// ccc_row_unit — everything at the right end of one array row (hand-written primitive
// of ccc): the control token for this row (it arrives together with the row's
// bit-plane sums and moves on to the next row one cycle later), the shadow chain of the
// row's bias and write target (loaded with the weights, swapped with the tile's first
// bit-plane), the partial-sum memory for vertical tiling (one word per output pixel) and
// the row-end accumulate/requantize unit. A finished activation leaves on `out_*` two
// cycles after bit-plane 7, together with its shift-on-write request (`wr_*`): the
// column memory, byte lane and word address of the one next-layer tap that reads this
// row's channel, already displaced by that tap's (dy, dx) and placed in the reader's
// compact buffer (ccc_shift_target); no request when the position falls outside the
// map or off the reader's stride grid, or no tap reads the channel. Partial sums of
// non-final column blocks go to the psum memory instead.
`default_nettype none

module ccc_row_unit #(
    parameter integer PSUM_W  = 14,
    parameter integer PIX_W   = 10,
    parameter integer Y_W     = 5,
    parameter integer X_W     = 5,
    // Partial-sum words per row: the most output pixels of any layer tiled along groups
    // (partial sums live between its column blocks); 0 when no layer is.
    parameter integer PSUM_D  = 1024,
    parameter integer PSUM_AW = 10,
    parameter integer A_W     = 10,
    parameter integer COL_W   = 2,
    parameter integer LANE_W  = 3,
    parameter integer S_W     = 1,
    parameter integer LK_W    = 2,
    // {valid, col, lane, dy[7:0], dx[7:0], offset[A_W+LANE_W:0]}
    parameter integer TGT_W   = 1 + COL_W + LANE_W + 16 + A_W + LANE_W + 1
) (
    input  wire                     clk,
    input  wire                     rst,
    // control token in (from the row above; row 0: from the end of the column chain)
    input  wire                     tok_valid,
    input  wire [2:0]               tok_bit,
    input  wire [PIX_W-1:0]         tok_pix,
    input  wire [PIX_W-1:0]         tok_cpix,
    input  wire [Y_W-1:0]           tok_y,
    input  wire [X_W-1:0]           tok_x,
    input  wire                     tok_first,
    input  wire                     tok_last,
    input  wire                     tok_swap,
    // control token out (registered)
    output reg                      tok_valid_o,
    output reg  [2:0]               tok_bit_o,
    output reg  [PIX_W-1:0]         tok_pix_o,
    output reg  [PIX_W-1:0]         tok_cpix_o,
    output reg  [Y_W-1:0]           tok_y_o,
    output reg  [X_W-1:0]           tok_x_o,
    output reg                      tok_first_o,
    output reg                      tok_last_o,
    output reg                      tok_swap_o,
    // this row's bit-plane sum from the array
    input  wire signed [PSUM_W-1:0] psum,
    // bias shadow chain
    input  wire                     ld_en,
    input  wire [31:0]              ld_bias_in,
    output wire [31:0]              ld_bias_out,
    input  wire [TGT_W-1:0]         ld_tgt_in,
    output wire [TGT_W-1:0]         ld_tgt_out,
    // the next layer's buffers (ccc_shift_target): read limits, stride mask, packing
    input  wire [Y_W-1:0]           map_h,
    input  wire [X_W-1:0]           map_w,
    input  wire [S_W-1:0]           map_smask,
    input  wire [LK_W-1:0]          map_lk,
    input  wire [LK_W-1:0]          map_la,
    // layer constants (stable while a tile runs)
    input  wire signed [5:0]        shift,
    input  wire [7:0]               clamp_max,
    // finished activation of this row
    output reg                      out_valid,
    output reg  [7:0]               out_act,
    output reg  [Y_W-1:0]           out_y,
    output reg  [X_W-1:0]           out_x,
    output reg  [PIX_W-1:0]         out_pix,
    output reg                      wr_valid,
    output reg  [COL_W-1:0]         wr_col,
    output reg  [LANE_W-1:0]        wr_lane,
    output reg  [A_W-1:0]           wr_addr
);
    reg [31:0] bias_shadow_q;
    reg [31:0] bias_q;
    reg        first_q;
    reg [PIX_W-1:0] pix_q;
    reg [PIX_W-1:0] cpix_q;
    reg [Y_W-1:0]   y_q;
    reg [X_W-1:0]   x_q;

    assign ld_bias_out = bias_shadow_q;

    reg [TGT_W-1:0] tgt_shadow_q;
    reg [TGT_W-1:0] tgt_q;
    assign ld_tgt_out = tgt_shadow_q;
    wire                 t_valid  = tgt_q[TGT_W-1];
    wire [COL_W-1:0]     t_col    = tgt_q[TGT_W-2 -: COL_W];
    wire [LANE_W-1:0]    t_lane   = tgt_q[TGT_W-2-COL_W -: LANE_W];
    wire [7:0]           t_dy     = tgt_q[A_W+LANE_W+16 -: 8];
    wire [7:0]           t_dx     = tgt_q[A_W+LANE_W+8 -: 8];
    wire [A_W+LANE_W:0]  t_offset = tgt_q[A_W+LANE_W:0];
    // Displaced position of the finished pixel, and its word address and byte lane.
    wire                 in_map;
    wire [A_W-1:0]       taddr;
    wire [LANE_W-1:0]    lane_off;
    ccc_shift_target #(
        .Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W), .A_W(A_W), .LANE_W(LANE_W), .S_W(S_W),
        .LK_W(LK_W)
    ) u_target (
        .y(y_q), .x(x_q), .cpix(cpix_q), .h_lim(map_h), .w_lim(map_w), .dy(t_dy),
        .dx(t_dx), .offset(t_offset), .smask(map_smask), .lk(map_lk), .la(map_la),
        .in_map(in_map), .addr(taddr), .lane_off(lane_off)
    );

    // Partial sums: read at bit-plane 0, used at bit-plane 7, written after it.
    wire                   re_valid;
    wire                   re_last;
    wire signed [31:0]     re_acc;
    wire [7:0]             re_act;
    wire [31:0]            pmem_rdata;

    generate
        if (PSUM_D != 0) begin : g_psum
            // Only layers tiled along groups use it, and their pixels fit PSUM_AW bits.
            ccc_sdp_ram #(
                .WIDTH(32), .BYTES(1), .DEPTH(PSUM_D), .ADDR_W(PSUM_AW), .INIT_FILE("")
            ) u_pmem (
                .clk(clk),
                .we(re_valid & ~re_last),
                .wbe(1'b1),
                .waddr(pix_q[PSUM_AW-1:0]),
                .wdata(re_acc),
                .re(tok_valid & (tok_bit == 3'd0)),
                .raddr(tok_pix[PSUM_AW-1:0]),
                .rdata(pmem_rdata)
            );
        end else begin : g_no_psum
            assign pmem_rdata = 32'd0;
            // Only the psum memory reads these; Verilator skips names with "unused".
            wire unused_psum = ^{re_acc, tok_pix};
        end
    endgenerate

    // Sampled with bit-plane 7: bias_q and first_q were updated at bit-plane 0.
    wire signed [31:0] base = first_q ? bias_q : pmem_rdata;

    ccc_row_end #(.PSUM_W(PSUM_W), .ACC_W(32)) u_end (
        .clk(clk),
        .rst(rst),
        .in_valid(tok_valid),
        .in_bit(tok_bit),
        .psum(psum),
        .base(base),
        .last(tok_last),
        .shift(shift),
        .clamp_max(clamp_max),
        .out_valid(re_valid),
        .out_last(re_last),
        .out_acc(re_acc),
        .out_act(re_act)
    );

    always @(posedge clk) begin
        if (rst) begin
            tok_valid_o   <= 1'b0;
            tok_bit_o     <= 3'd0;
            tok_pix_o     <= {PIX_W{1'b0}};
            tok_cpix_o    <= {PIX_W{1'b0}};
            tok_y_o       <= {Y_W{1'b0}};
            tok_x_o       <= {X_W{1'b0}};
            tok_first_o   <= 1'b0;
            tok_last_o    <= 1'b0;
            tok_swap_o    <= 1'b0;
            bias_shadow_q <= 32'd0;
            bias_q        <= 32'd0;
            tgt_shadow_q  <= {TGT_W{1'b0}};
            tgt_q         <= {TGT_W{1'b0}};
            wr_valid      <= 1'b0;
            wr_col        <= {COL_W{1'b0}};
            wr_lane       <= {LANE_W{1'b0}};
            wr_addr       <= {A_W{1'b0}};
            first_q       <= 1'b0;
            pix_q         <= {PIX_W{1'b0}};
            cpix_q        <= {PIX_W{1'b0}};
            y_q           <= {Y_W{1'b0}};
            x_q           <= {X_W{1'b0}};
            out_valid     <= 1'b0;
            out_act       <= 8'd0;
            out_y         <= {Y_W{1'b0}};
            out_x         <= {X_W{1'b0}};
            out_pix       <= {PIX_W{1'b0}};
        end else begin
            tok_valid_o <= tok_valid;
            tok_bit_o   <= tok_bit;
            tok_pix_o   <= tok_pix;
            tok_cpix_o  <= tok_cpix;
            tok_y_o     <= tok_y;
            tok_x_o     <= tok_x;
            tok_first_o <= tok_first;
            tok_last_o  <= tok_last;
            tok_swap_o  <= tok_swap;
            if (ld_en) begin
                bias_shadow_q <= ld_bias_in;
                tgt_shadow_q  <= ld_tgt_in;
            end
            if (tok_swap) begin
                bias_q <= bias_shadow_q;
                tgt_q  <= tgt_shadow_q;
            end
            if (tok_valid && tok_bit == 3'd0) begin
                first_q <= tok_first;
                pix_q   <= tok_pix;
                cpix_q  <= tok_cpix;
                y_q     <= tok_y;
                x_q     <= tok_x;
            end
            out_valid <= re_valid & re_last;
            out_act   <= re_act;
            out_y     <= y_q;
            out_x     <= x_q;
            out_pix   <= pix_q;
            wr_valid  <= re_valid & re_last & t_valid & in_map;
            wr_col    <= t_col;
            // t_lane < alpha and lane_off is a multiple of alpha: OR is the sum.
            wr_lane   <= t_lane | lane_off;
            wr_addr   <= taddr;
        end
    end
endmodule

`default_nettype wire
