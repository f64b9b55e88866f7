// ccc_shift_target — where shift-on-write puts one value (hand-written primitive of ccc).
//
// A value produced at (y, x) of an h x w map, pixel index pix = y * w + x, goes to tap
// (dy, dx) at position (y - dy, x - dx): `in_map` says whether that position exists, and
// its word address is pix + offset, where the compiler's offset = buffer base -
// (dy * w + dx). Shared by the input writer (one per column) and every row unit.
module ccc_shift_target #(
    parameter integer Y_W   = 5,
    parameter integer X_W   = 5,
    parameter integer PIX_W = 10,
    parameter integer A_W   = 10
) (
    input  wire [Y_W-1:0]    y,
    input  wire [X_W-1:0]    x,
    input  wire [PIX_W-1:0]  pix,
    input  wire [Y_W-1:0]    h,
    input  wire [X_W-1:0]    w,
    input  wire [7:0]        dy,
    input  wire [7:0]        dx,
    input  wire [A_W:0]      offset,
    output wire              in_map,
    output wire [A_W-1:0]    addr
);
    wire signed [Y_W+8:0] ty = $signed({9'd0, y}) - $signed({{(Y_W + 1) {dy[7]}}, dy});
    wire signed [X_W+8:0] tx = $signed({9'd0, x}) - $signed({{(X_W + 1) {dx[7]}}, dx});
    assign in_map = (ty >= 0) && (ty < $signed({9'd0, h})) &&
                    (tx >= 0) && (tx < $signed({9'd0, w}));
    // Targets are in range by construction, so the sum's top (sign) bit is never used.
    wire [A_W:0] sum = {{(A_W + 1 - PIX_W) {1'b0}}, pix} + offset;
    assign addr = sum[A_W-1:0];
    wire unused_sum_sign = sum[A_W];
endmodule
