// ccc_rep_data — one copy of a replicated data register (hand-written primitive of ccc).
//
// A data word that every column memory writes (the input writer's byte) is registered
// once per column, so that each copy can sit by its memory and the route across the die
// comes before the register instead of after it. Kept as its own hierarchy for the reason
// ccc_rep_reg gives (yosys merges flip-flops with the same input); no reset: the copies
// carry data, qualified by the write enables beside them.
`default_nettype none

(* keep_hierarchy *)
module ccc_rep_data #(
    parameter integer W = 8
) (
    input  wire         clk,
    input  wire [W-1:0] d,
    output reg  [W-1:0] q
);
    always @(posedge clk) q <= d;
endmodule

`default_nettype wire
