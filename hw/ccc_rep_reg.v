// ccc_rep_reg — one copy of a replicated control register (hand-written primitive of ccc).
//
// A control signal that reaches thousands of enables (the weight load's shadow-register
// enables, the clear after reset) is registered once per column or row, so that each copy
// drives a local net. Yosys merges flip-flops with the same input, `keep` on the register
// notwithstanding (measured with yosys 0.23: synth_ecp5 left one flip-flop driving every
// column's and row's enables, a 15.6 ns route across the LFE5U-85F at 16x16). A module
// kept as its own hierarchy is never merged with its twins; nextpnr flattens it.
`default_nettype none

(* keep_hierarchy *)
module ccc_rep_reg #(
    parameter [0:0] INIT = 1'b0
) (
    input  wire clk,
    input  wire rst,
    input  wire d,
    output reg  q
);
    always @(posedge clk) begin
        if (rst) q <= INIT;
        else q <= d;
    end
endmodule

`default_nettype wire
