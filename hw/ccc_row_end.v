// ccc_row_end — row-end unit of the MX array (hand-written primitive of ccc).
//
// One per array row and row-end bank. The array delivers, one per cycle and LSB first,
// the 8 bit-plane sums of a pixel for this row (signed PSUM_W bits each). The unit
// shift-accumulates them and adds `base` (the bias on a row block's first column block,
// the stored partial sum on later ones: vertical tiling), then either hands the 32-bit
// partial sum back (`last` = 0) or requantizes and clamps it to a uint8 activation
// (`last` = 1, ccc_requant's two halves), exactly as ccc's integer reference does:
//   shift > 0: y = (acc + 2^(shift-1)) >>> shift ; shift <= 0: y = acc << -shift
//   y = min(max(y, 0), clamp_max)
// Four register stages after bit-plane 7, so the Horner adder, the 32-bit add of the
// base and each half of the requantizer get a cycle of their own:
//   s1 (edge of bit-plane 7): the bit-plane sum and the base (sampled there, so a
//      partial-sum read issued at bit-plane 0 is in time);
//   s2: acc = sum + base (`acc_valid`, the partial sum to store);
//   s3: the requantizer's shifter window (ccc_requant_window);
//   s4: the clamped activation (ccc_requant_clamp, `out_valid`).
// `shift` and `clamp_max` are sampled with bit-plane 7 and held until the next pixel's
// (at least 8 cycles: one pixel per row every tp >= 8 cycles, src/schedule.rs): they
// travel with the pixel's control token, so consecutive pixels may be of two layers.
`default_nettype none

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
    output reg                      acc_valid,
    output reg                      acc_last,
    output reg  signed [ACC_W-1:0]  acc,
    output reg                      out_valid,
    output reg  [7:0]               out_act
);
    // Shift-accumulate LSB first without a barrel shifter (Horner): r_b = (r_(b-1) >>> 1)
    // + psum_b, and bit 0 of each r_b is final (later bit-planes only add above it), so
    // it moves to lo_q. After bit-plane 7 the sum is {r_7, lo}. |r_b| <= 2^PSUM_W, so
    // PSUM_W + 1 bits hold it.
    localparam integer R_W = PSUM_W + 1;

    reg  signed [R_W-1:0]   r_q;
    reg         [5:0]       lo_q;
    wire signed [R_W-1:0]   psum_ext = {psum[PSUM_W-1], psum};
    wire signed [R_W-1:0]   r_d = (in_bit == 3'd0) ? psum_ext : (r_q >>> 1) + psum_ext;
    wire signed [ACC_W-1:0] sum7 = {{(ACC_W - R_W - 7) {r_d[R_W-1]}}, r_d, r_q[0], lo_q};
    wire                    bit7 = in_valid && in_bit == 3'd7;

    // Datapath registers carry no reset: only the valid bits (control) do.
    reg                     s1_valid_q, s1_last_q;
    reg signed [ACC_W-1:0]  s1_sum_q, s1_base_q;
    reg signed [5:0]        h_shift_q;
    reg [7:0]               h_clamp_q;
    wire [7:0]              act_d;
    // The requantizer in two stages: its shifter window from acc, then the clamp.
    wire [8:0]              win_d;
    wire                    hi_d, neg_d;
    reg  [8:0]              s3_win_q;
    reg                     s3_hi_q, s3_neg_q, s3_valid_q;

    ccc_requant_window #(
        .ACC_W(ACC_W)
    ) u_window (
        .acc(acc), .shift(h_shift_q), .window(win_d), .hi(hi_d), .neg(neg_d)
    );

    ccc_requant_clamp u_clamp (
        .window(s3_win_q), .hi(s3_hi_q), .neg(s3_neg_q), .clamp_max(h_clamp_q),
        .act(act_d)
    );

    always @(posedge clk) begin
        if (in_valid) begin
            r_q  <= r_d;
            // lo_q[b-1] takes bit 0 of r_(b-1) at bit-plane b (bits 1..6).
            lo_q <= {r_q[0], lo_q[5:1]};
        end
        s1_sum_q   <= sum7;
        s1_base_q  <= base;
        s1_last_q  <= last;
        // The layer's shift and clamp, taken with bit-plane 7 and held: the next pixel's
        // bit-plane 7 comes at least 8 cycles later, after this one has left stage 3.
        if (bit7) begin
            h_shift_q <= shift;
            h_clamp_q <= clamp_max;
        end
        acc        <= s1_sum_q + s1_base_q;
        acc_last   <= s1_last_q;
        s3_win_q   <= win_d;
        s3_hi_q    <= hi_d;
        s3_neg_q   <= neg_d;
        out_act    <= act_d;
    end

    always @(posedge clk) begin
        if (rst) begin
            s1_valid_q <= 1'b0;
            acc_valid  <= 1'b0;
            s3_valid_q <= 1'b0;
            out_valid  <= 1'b0;
        end else begin
            s1_valid_q <= bit7;
            acc_valid  <= s1_valid_q;
            s3_valid_q <= acc_valid && acc_last;
            out_valid  <= s3_valid_q;
        end
    end
endmodule

`default_nettype wire
