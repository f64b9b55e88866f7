// ccc_requant_clamp — second half of the requantizer (hand-written primitive of ccc):
// floor plus round bit of ccc_requant_window's window, clamped to [0, clamp_max].
`default_nettype none

module ccc_requant_clamp (
    input  wire [8:0] window,
    input  wire       hi,
    input  wire       neg,
    input  wire [7:0] clamp_max,
    output wire [7:0] act
);
    // floor + round bit: at most 256, so 9 bits hold it.
    wire [8:0] y = {1'b0, window[8:1]} + {8'd0, window[0]};
    assign act = neg ? 8'd0 : (hi || y > {1'b0, clamp_max}) ? clamp_max : y[7:0];

endmodule

`default_nettype wire
