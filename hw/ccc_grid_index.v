// ccc_grid_index — a raster-order pixel's index on a stride grid (hand-written primitive
// of ccc): cpix = (y >> log2 s) * wo + (x >> log2 s), kept by counting as the pixel
// advances, so no multiplier. This is the `cpix` that ccc_shift_target turns into a
// compact tap-buffer position; the input path (first layer's grid) and the controller
// (the next layer's grid, per tile) each keep one.
`default_nettype none

module ccc_grid_index #(
    parameter integer Y_W   = 5,
    parameter integer X_W   = 5,
    parameter integer PIX_W = 10,
    parameter integer S_W   = 1
) (
    input  wire               clk,
    input  wire               rst,
    // back to pixel (0, 0); wins over `step`
    input  wire               clear,
    // move from pixel (y, x) to the next one in raster order; `row_end`: x is the last
    input  wire               step,
    input  wire [Y_W-1:0]     y,
    input  wire [X_W-1:0]     x,
    input  wire               row_end,
    // grid stride - 1 (a power of two minus one) and the grid's width
    input  wire [S_W-1:0]     smask,
    input  wire [PIX_W-1:0]   wo,
    output reg  [PIX_W-1:0]   cpix
);
    reg [PIX_W-1:0] crow_q;  // (y >> log2 s) * wo
    wire [Y_W+S_W-1:0] mask_ye = {{Y_W{1'b0}}, smask};
    wire [X_W+S_W-1:0] mask_xe = {{X_W{1'b0}}, smask};
    wire unused_mask = ^{mask_ye[Y_W+S_W-1:Y_W], mask_xe[X_W+S_W-1:X_W]};
    wire y_on_grid = ((y + 1'b1) & mask_ye[Y_W-1:0]) == {Y_W{1'b0}};
    wire x_on_grid = ((x + 1'b1) & mask_xe[X_W-1:0]) == {X_W{1'b0}};

    always @(posedge clk) begin
        if (rst || clear) begin
            cpix   <= {PIX_W{1'b0}};
            crow_q <= {PIX_W{1'b0}};
        end else if (step) begin
            if (row_end) begin
                // one more grid row when y + 1 is on it
                if (y_on_grid) begin
                    crow_q <= crow_q + wo;
                    cpix   <= crow_q + wo;
                end else begin
                    cpix <= crow_q;
                end
            end else if (x_on_grid) begin
                cpix <= cpix + 1'b1;
            end
        end
    end
endmodule

`default_nettype wire
