// ccc_token_gen — the row control tokens of a tile's pixels (hand-written primitive of
// ccc).
//
// For each pixel request (`go`), eight tokens, one per bit-plane, leave 2 cycles later in
// step with column 0's bit-planes (the column feed's RAM read and output register), each
// {valid, bit, pix, cpix, y, x, first, last, swap}. They pass a delay line of C stages,
// so they reach row 0 together with row 0's bit-plane sums (column 0's bit-plane t comes
// out of the array at t + C), and then travel down the rows with the sums.
`default_nettype none

module ccc_token_gen #(
    parameter integer C     = 4,
    parameter integer PIX_W = 10,
    parameter integer Y_W   = 5,
    parameter integer X_W   = 5,
    parameter integer TOK_W = 1 + 3 + PIX_W + PIX_W + Y_W + X_W + 3
) (
    input  wire             clk,
    input  wire             rst,
    // a pixel request: its index, its next-layer grid index, its position, whether it
    // is the tile's first (swap), and the tile's first/last column block flags
    input  wire             go,
    input  wire             swap,
    input  wire [PIX_W-1:0] pix,
    input  wire [PIX_W-1:0] cpix,
    input  wire [Y_W-1:0]   y,
    input  wire [X_W-1:0]   x,
    input  wire             first,
    input  wire             last,
    // the token row 0 sees
    output wire [TOK_W-1:0] tok
);
    reg              go_q;
    reg [PIX_W-1:0]  pix_q, pix_d;
    reg [PIX_W-1:0]  cpix_q, cpix_d;
    reg [Y_W-1:0]    y_q, y_d;
    reg [X_W-1:0]    x_q, x_d;
    reg              swap_q, swap_d;
    reg              on_q, on_d;
    reg [2:0]        bit_q, bit_d;

    always @(*) begin
        pix_d  = pix_q;
        cpix_d = cpix_q;
        y_d    = y_q;
        x_d    = x_q;
        swap_d = swap_q;
        on_d   = on_q;
        bit_d  = bit_q;
        if (go) begin
            pix_d  = pix;
            cpix_d = cpix;
            y_d    = y;
            x_d    = x;
            swap_d = swap;
        end
        if (go_q) begin
            on_d  = 1'b1;
            bit_d = 3'd0;
        end else if (on_q) begin
            bit_d = bit_q + 1'b1;
            if (bit_q == 3'd7) on_d = 1'b0;
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            go_q   <= 1'b0;
            pix_q  <= {PIX_W{1'b0}};
            cpix_q <= {PIX_W{1'b0}};
            y_q    <= {Y_W{1'b0}};
            x_q    <= {X_W{1'b0}};
            swap_q <= 1'b0;
            on_q   <= 1'b0;
            bit_q  <= 3'd0;
        end else begin
            go_q   <= go;
            pix_q  <= pix_d;
            cpix_q <= cpix_d;
            y_q    <= y_d;
            x_q    <= x_d;
            swap_q <= swap_d;
            on_q   <= on_d;
            bit_q  <= bit_d;
        end
    end

    // first/last are the running tile's (stable while it streams), sampled as the token
    // leaves, as the rows expect.
    wire [TOK_W-1:0] tok0 = {on_q, bit_q, pix_q, cpix_q, y_q, x_q, first, last,
                             on_q && swap_q && bit_q == 3'd0};

    // C stages: a flat vector, not an array, so synthesis keeps it as plain registers.
    reg [C*TOK_W-1:0] line_q;
    generate
        if (C == 1) begin : g_line1
            always @(posedge clk) line_q <= rst ? {TOK_W{1'b0}} : tok0;
        end else begin : g_line
            always @(posedge clk)
                line_q <= rst ? {C*TOK_W{1'b0}} : {line_q[(C-1)*TOK_W-1:0], tok0};
        end
    endgenerate
    assign tok = line_q[(C-1)*TOK_W +: TOK_W];
endmodule

`default_nettype wire
