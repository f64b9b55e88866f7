// ccc_token_gen — the row control tokens of one segment's pixel requests (hand-written
// primitive of ccc).
//
// For each request (`go`), eight tokens, one per bit-plane, leave 3 cycles later in step
// with the segment's first column's bit-planes (the column feed's RAM read, shift
// register load and output register). A token carries everything the row ends need about its pixel, so pixels of
// consecutive tiles and layers can follow each other through the rows: the pixel, its
// tile's first/last column block and filters, its layer's requantizer and where its
// results go. The fields are sampled with the request and held in a second register for
// the eight bit-planes, so a request every 8 cycles never overwrites a token in flight.
//
// Token layout, LSB first (ccc_row_unit unpacks the same): valid, bit[3], pix, cpix, y,
// x, first, last, swap, cut, row0, rblk, rows, layer, final, mirror, shift[6],
// clamp[8], map_h, map_w, smask, lk, la, img[2] (the image's number mod 4, so a
// testbench can tell which image an output belongs to).
`default_nettype none

module ccc_token_gen #(
    parameter integer PIX_W   = 10,
    parameter integer Y_W     = 5,
    parameter integer X_W     = 5,
    parameter integer N_W     = 8,
    parameter integer RB_W    = 4,
    parameter integer ROW_W   = 2,
    parameter integer LAYER_W = 2,
    parameter integer S_W     = 1,
    parameter integer LK_W    = 2,
    parameter integer INFO_W  = 2 * PIX_W + Y_W + X_W + 4 + N_W + RB_W + ROW_W + 1 +
                                LAYER_W + 2 + 6 + 8 + Y_W + X_W + S_W + 2 * LK_W + 2,
    parameter integer TOK_W   = 4 + INFO_W
) (
    input  wire               clk,
    input  wire               rst,
    input  wire               go,
    input  wire               swap,
    input  wire [PIX_W-1:0]   pix,
    input  wire [PIX_W-1:0]   cpix,
    input  wire [Y_W-1:0]     y,
    input  wire [X_W-1:0]     x,
    input  wire               first,
    input  wire               last,
    input  wire               cut,
    input  wire [N_W-1:0]     row0,
    input  wire [RB_W-1:0]    rblk,
    input  wire [ROW_W:0]     rows,
    input  wire [LAYER_W-1:0] layer,
    input  wire               final_layer,
    input  wire               mirror,
    input  wire signed [5:0]  shift,
    input  wire [7:0]         clamp,
    input  wire [Y_W-1:0]     map_h,
    input  wire [X_W-1:0]     map_w,
    input  wire [S_W-1:0]     smask,
    input  wire [LK_W-1:0]    lk,
    input  wire [LK_W-1:0]    la,
    input  wire [1:0]         img,
    output wire [TOK_W-1:0]   tok
);
    // Everything but {valid, bit}, in the layout order (swap last so the bit-plane-0 flag
    // can gate it).
    wire [INFO_W-1:0] info = {img, la, lk, smask, map_w, map_h, clamp, shift, mirror,
                              final_layer, layer, rows, rblk, row0, cut, 1'b0, last, first,
                              x, y, cpix, pix};
    reg  [INFO_W-1:0] a_q, b_q;
    reg               swap_a_q, swap_b_q;
    reg               go_q;
    reg               go2_q;
    reg               on_q;
    reg [2:0]         bit_q;

    always @(posedge clk) begin
        if (go) begin
            a_q      <= info;
            swap_a_q <= swap;
        end
        if (go2_q) begin
            b_q      <= a_q;
            swap_b_q <= swap_a_q;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            go_q  <= 1'b0;
            go2_q <= 1'b0;
            on_q  <= 1'b0;
            bit_q <= 3'd0;
        end else begin
            go_q  <= go;
            go2_q <= go_q;
            if (go2_q) begin
                on_q  <= 1'b1;
                bit_q <= 3'd0;
            end else if (on_q) begin
                bit_q <= bit_q + 1'b1;
                if (bit_q == 3'd7) on_q <= 1'b0;
            end
        end
    end

    // The swap flag (bit PIX_W*2 + Y_W + X_W + 2 of info) is set on the first pixel's
    // bit-plane 0 only.
    localparam integer SWAP_AT = 2 * PIX_W + Y_W + X_W + 2;
    // b_q's own swap bit (0 from `info`, but undefined before the first request) is
    // masked, so the flag is defined from reset on: the row units use it as the enable
    // of their bias and target registers without decoding valid and bit again.
    localparam [INFO_W-1:0] SWAP_BIT = {{(INFO_W - 1) {1'b0}}, 1'b1} << SWAP_AT;
    wire [INFO_W-1:0] held = (b_q & ~SWAP_BIT) | ((on_q && swap_b_q && bit_q == 3'd0) ? SWAP_BIT
                                                                                     : {INFO_W{1'b0}});
    assign tok = {held, bit_q, on_q};
endmodule

`default_nettype wire
