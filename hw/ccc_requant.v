// ccc_requant — requantizer of one row end (hand-written primitive of ccc).
//
// Combinational. Maps a finished int32 accumulator to a uint8 activation exactly as
// ccc's integer reference does (docs/DESIGN.md §5, src/quant.rs `requantize`):
//   shift > 0: y = (acc + 2^(shift-1)) >>> shift ; shift <= 0: y = acc << -shift
//   act = min(max(y, 0), clamp_max)                       shift in [-16, 31]
// The straightforward form needs a bidirectional 49-bit barrel shifter, a 49-bit
// rounding adder and two 49-bit comparators (~790 SB_LUT4 per row). Only 8 bits of y
// survive the clamp, so this form computes just those and whether y overflows them:
//   with X = acc * 2^16 and t = shift + 16 in [0, 47], y = (X >>> t) + X[t-1]
//   (floor plus the round bit; the low 16 bits of X are zero, so the round bit is 0 for
//   every left shift), and y >= 256 when acc >= 0 and any bit of acc at or above
//   t - 8 is set.
// A 9-bit window of X (bits t+7 .. t-1) then comes out of a log shifter that drops
// what it will not need after each stage. tests/rtl_primitives.rs proves this module
// equal to the straightforward form (yosys, every input in range) and simulates it
// against the reference.
`default_nettype none

module ccc_requant #(
    parameter integer ACC_W = 32
) (
    input  wire signed [ACC_W-1:0] acc,
    // two's complement in [-16, 31]
    input  wire signed [5:0]       shift,
    input  wire [7:0]              clamp_max,
    output wire [7:0]              act
);
    // Output width after each stage: the final 9 bits plus the largest shift still to
    // come (W_k = W_(k-1) + 2^(k-1), so each stage reads only what the one before made).
    localparam integer W5 = 9 + 31;
    localparam integer W4 = 9 + 15;
    localparam integer W3 = 9 + 7;
    localparam integer W2 = 9 + 3;
    localparam integer W1 = 9 + 1;
    // X with the round bit below it, zero-padded to what the first stage reads.
    localparam integer X_W = 32 + W5;

    wire [5:0] t = shift + 6'sd16;

    // x[i] = X[i - 1]: bit 0 of the window is the round bit.
    wire [X_W-1:0] x = {{(X_W - ACC_W - 17) {1'b0}}, acc, 17'd0};
    wire [W5-1:0]  s5 = t[5] ? x[32 +: W5] : x[0 +: W5];
    wire [W4-1:0]  s4 = t[4] ? s5[16 +: W4] : s5[0 +: W4];
    wire [W3-1:0]  s3 = t[3] ? s4[8 +: W3] : s4[0 +: W3];
    wire [W2-1:0]  s2 = t[2] ? s3[4 +: W2] : s3[0 +: W2];
    wire [W1-1:0]  s1 = t[1] ? s2[2 +: W1] : s2[0 +: W1];
    wire [8:0]     s0 = t[0] ? s1[1 +: 9] : s1[0 +: 9];

    // Overflow above the window: any bit of acc at or above k = max(t - 8, 0) (only
    // asked when acc >= 0; k > 31 masks every bit). The mask is a thermometer decode.
    wire [5:0]       k = (t < 6'd8) ? 6'd0 : t - 6'd8;
    wire [ACC_W-1:0] above = {ACC_W{1'b1}} << k;
    wire             hi = |(acc & above);

    // floor + round bit: at most 256, so 9 bits hold it.
    wire [8:0] y = {1'b0, s0[8:1]} + {8'd0, s0[0]};
    assign act = acc[ACC_W-1] ? 8'd0
        : (hi || y > {1'b0, clamp_max}) ? clamp_max : y[7:0];

endmodule

`default_nettype wire
