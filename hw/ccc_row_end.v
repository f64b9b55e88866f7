// ccc_row_end — row-end unit of the MX array (hand-written primitive of ccc).
//
// One per array row. The array delivers, one per cycle and LSB first, the 8 bit-plane
// sums of a pixel for this row (signed PSUM_W bits each). The unit shift-accumulates
// them and adds `base` (the bias on a row block's first column block, the stored
// partial sum on later ones: vertical tiling), which is sampled with bit-plane 7 so a
// partial-sum memory read issued at bit-plane 0 is in time; it then either hands the 32-bit
// partial sum back (`last` = 0) or requantizes and clamps it to a uint8 activation
// (`last` = 1), exactly as ccc's integer reference does:
//   shift > 0: y = (acc + 2^(shift-1)) >>> shift ; shift <= 0: y = acc << -shift
//   y = min(max(y, 0), clamp_max)
// Latency: the result is valid one cycle after bit-plane 7 is accepted.
module ccc_row_end #(
    parameter integer PSUM_W = 14,
    parameter integer ACC_W  = 32
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire                     in_valid,
    input  wire [2:0]               in_bit,
    input  wire signed [PSUM_W-1:0] psum,
    input  wire signed [ACC_W-1:0]  base,
    input  wire                     last,
    // requantizer shift, two's complement in [-16, 31]
    input  wire signed [5:0]        shift,
    input  wire [7:0]               clamp_max,
    output reg                      out_valid,
    output reg                      out_last,
    output reg  signed [ACC_W-1:0]  out_acc,
    output reg  [7:0]               out_act
);
    // Wide enough for acc << 16 and for the rounding add without overflow.
    localparam integer WIDE_W = ACC_W + 17;

    reg  signed [ACC_W-1:0] acc_q;
    wire signed [ACC_W-1:0] psum_ext = {{(ACC_W - PSUM_W) {psum[PSUM_W-1]}}, psum};
    wire signed [ACC_W-1:0] start = (in_bit == 3'd0) ? {ACC_W{1'b0}} : acc_q;
    wire signed [ACC_W-1:0] sum_d = start + (psum_ext <<< in_bit);
    wire signed [ACC_W-1:0] acc_d = (in_bit == 3'd7) ? sum_d + base : sum_d;

    // Requantize the completed accumulator (combinational; registered below).
    wire signed [WIDE_W-1:0] acc_wide = {{(WIDE_W - ACC_W) {acc_d[ACC_W-1]}}, acc_d};
    wire        [4:0]        rshift = shift[4:0];
    wire        [4:0]        lshift = 5'd0 - shift[4:0];
    wire signed [WIDE_W-1:0] round_bias = (shift > 6'sd0)
        ? ({{(WIDE_W - 1) {1'b0}}, 1'b1} <<< (rshift - 5'd1))
        : {WIDE_W{1'b0}};
    wire signed [WIDE_W-1:0] scaled = (shift > 6'sd0)
        ? ((acc_wide + round_bias) >>> rshift)
        : (acc_wide <<< lshift);
    wire signed [WIDE_W-1:0] clamp_wide = {{(WIDE_W - 8) {1'b0}}, clamp_max};
    wire        [7:0]        act_d = (scaled < 0) ? 8'd0
        : (scaled > clamp_wide) ? clamp_max : scaled[7:0];

    always @(posedge clk) begin
        if (rst) begin
            acc_q     <= {ACC_W{1'b0}};
            out_valid <= 1'b0;
            out_last  <= 1'b0;
            out_acc   <= {ACC_W{1'b0}};
            out_act   <= 8'd0;
        end else begin
            out_valid <= 1'b0;
            if (in_valid) begin
                acc_q <= acc_d;
                if (in_bit == 3'd7) begin
                    out_valid <= 1'b1;
                    out_last  <= last;
                    out_acc   <= acc_d;
                    out_act   <= act_d;
                end
            end
        end
    end
endmodule
