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
// The two halves are ccc_requant_window and ccc_requant_clamp; this module composes
// them combinationally (the row end registers between them).
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
    wire [8:0] window;
    wire       hi, neg;

    ccc_requant_window #(
        .ACC_W(ACC_W)
    ) u_window (
        .acc(acc), .shift(shift), .window(window), .hi(hi), .neg(neg)
    );

    ccc_requant_clamp u_clamp (
        .window(window), .hi(hi), .neg(neg), .clamp_max(clamp_max), .act(act)
    );

endmodule

`default_nettype wire
