// ccc_requant_window — first half of the requantizer (hand-written primitive of ccc):
// the log shifter's 9-bit window of X = acc * 2^16 at t = shift + 16 (bit 0 the round
// bit), whether acc has bits above it, and acc's sign. ccc_requant_clamp finishes it;
// ccc_requant composes the two (and is the form tests/rtl_primitives.rs proves), the
// row end puts a register between them.
`default_nettype none

module ccc_requant_window #(
    parameter integer ACC_W = 32
) (
    input  wire signed [ACC_W-1:0] acc,
    // two's complement in [-16, 31]
    input  wire signed [5:0]       shift,
    output wire [8:0]              window,
    output wire                    hi,
    output wire                    neg
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
    assign window = t[0] ? s1[1 +: 9] : s1[0 +: 9];

    // Overflow above the window: any bit of acc at or above k = max(t - 8, 0) (only
    // asked when acc >= 0; k > 31 masks every bit). The mask is a thermometer decode.
    wire [5:0]       k = (t < 6'd8) ? 6'd0 : t - 6'd8;
    wire [ACC_W-1:0] above = {ACC_W{1'b1}} << k;
    assign hi  = |(acc & above);
    assign neg = acc[ACC_W-1];

endmodule

`default_nettype wire
