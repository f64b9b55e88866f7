// ccc_shift_target — where shift-on-write puts one value (hand-written primitive of ccc).
//
// A value produced at (y, x) of the map a layer reads goes to the buffer of tap
// (dy, dx) at position (y - dy, x - dx). Tap buffers are compact: the reading layer
// (stride s, a power of two) only ever reads positions (yo * s, xo * s), so only those
// are stored, in the reader's output order q = yo * wo + xo, and ALPHA / alpha
// consecutive q share one word (byte lanes (q mod k) * alpha + lane, k = 2^lk words'
// worth of pixels, alpha = 2^la). `in_map` says the position exists and lies on the
// reader's grid; `addr` and `lane_off` say where it goes. The caller supplies
// cpix = (y >> log2 s) * wo + (x >> log2 s), and the compiler's offset folds in the
// buffer base (in pixels) and the tap's -floor(d / s) steps, so q = cpix + offset.
// Shared by the input writer (one per column) and every row unit. The displaced position
// and the buffer index are registered before the bounds compare and the word split
// (two carry chains are too long for one cycle together), so the outputs follow the
// inputs by one cycle (the row units hold a pixel for eight cycles and pay no latency
// for it; the writer carries its slot fields beside). With IN_MAP_REG = 1 the bounds
// compares are registered too and `in_map` follows the inputs by two cycles (the row
// units: the compare against limits that come from a far-away token register was the
// ECP5 critical path at 6c2030d).
`default_nettype none

module ccc_shift_target #(
    parameter integer Y_W    = 5,
    parameter integer X_W    = 5,
    parameter integer PIX_W  = 10,
    parameter integer A_W    = 10,
    parameter integer LANE_W = 3,
    parameter integer S_W    = 1,
    parameter integer LK_W   = 2,
    // Signed width of the tap offsets (the model's widest): the displacement and the
    // bounds compares are Y_W + TAP_W + 1 bits wide.
    parameter integer TAP_W  = 8,
    parameter integer IN_MAP_REG = 0
) (
    input  wire                  clk,
    input  wire [Y_W-1:0]        y,
    input  wire [X_W-1:0]        x,
    input  wire [PIX_W-1:0]      cpix,
    // positions beyond these are never read: (ho - 1) * s + 1, (wo - 1) * s + 1
    input  wire [Y_W-1:0]        h_lim,
    input  wire [X_W-1:0]        w_lim,
    input  wire [TAP_W-1:0]      dy,
    input  wire [TAP_W-1:0]      dx,
    input  wire [A_W+LANE_W:0]   offset,
    input  wire [S_W-1:0]        smask,
    input  wire [LK_W-1:0]       lk,
    input  wire [LK_W-1:0]       la,
    // The reader's buffer is split by pixel parity over two column segments (its layer
    // runs even and odd pixels side by side): position q goes to index q >> 1 of the
    // segment q mod 2 (`odd`). The compiler then folds twice the buffer base into offset.
    input  wire                  halve,
    output wire                  in_map,
    output wire [A_W-1:0]        addr,
    output wire [LANE_W-1:0]     lane_off,
    output wire                  odd
);
    localparam integer QW = A_W + LANE_W;
    localparam integer TY_W = Y_W + TAP_W + 1;
    localparam integer TX_W = X_W + TAP_W + 1;
    wire signed [TY_W-1:0] ty_d = $signed({{(TAP_W + 1) {1'b0}}, y}) -
                                  $signed({{(Y_W + 1) {dy[TAP_W-1]}}, dy});
    wire signed [TX_W-1:0] tx_d = $signed({{(TAP_W + 1) {1'b0}}, x}) -
                                  $signed({{(X_W + 1) {dx[TAP_W-1]}}, dx});
    // On the reader's grid: y - dy and x - dx are multiples of s.
    wire [Y_W+S_W-1:0] y_ext = {{S_W{1'b0}}, y};
    wire [X_W+S_W-1:0] x_ext = {{S_W{1'b0}}, x};
    // The offsets sign-extended, in case the stride mask is wider than they are.
    wire [TAP_W+S_W-1:0] dy_ext = {{S_W{dy[TAP_W-1]}}, dy};
    wire [TAP_W+S_W-1:0] dx_ext = {{S_W{dx[TAP_W-1]}}, dx};
    wire on_grid_d = (((y_ext[S_W-1:0] ^ dy_ext[S_W-1:0]) | (x_ext[S_W-1:0] ^ dx_ext[S_W-1:0])) &
                      smask) == {S_W{1'b0}};
    // Targets are in range by construction, so the sum's top (sign) bit is never used.
    wire [QW:0]       raw_d = {{(QW + 1 - PIX_W) {1'b0}}, cpix} + offset;
    reg signed [TY_W-1:0] ty_q;
    reg signed [TX_W-1:0] tx_q;
    reg                  on_grid_q, halve_q;
    reg [QW:0]           raw_q;
    reg [Y_W-1:0]        h_q;
    reg [X_W-1:0]        w_q;
    reg [LK_W-1:0]       lk_q, la_q;
    always @(posedge clk) begin
        ty_q      <= ty_d;
        tx_q      <= tx_d;
        on_grid_q <= on_grid_d;
        raw_q     <= raw_d;
        h_q       <= h_lim;
        w_q       <= w_lim;
        lk_q      <= lk;
        la_q      <= la;
        halve_q   <= halve;
    end
    wire in_y = (ty_q >= 0) && (ty_q < $signed({{(TAP_W + 1) {1'b0}}, h_q}));
    wire in_x = (tx_q >= 0) && (tx_q < $signed({{(TAP_W + 1) {1'b0}}, w_q}));
    generate
        if (IN_MAP_REG != 0) begin : g_in_map_reg
            reg grid_q2, in_y_q, in_x_q;
            always @(posedge clk) begin
                grid_q2 <= on_grid_q;
                in_y_q  <= in_y;
                in_x_q  <= in_x;
            end
            assign in_map = grid_q2 && in_y_q && in_x_q;
        end else begin : g_in_map
            assign in_map = on_grid_q && in_y && in_x;
        end
    endgenerate
    wire [QW:0]       sum   = halve_q ? {1'b0, raw_q[QW:1]} : raw_q;
    wire [QW-1:0]     word  = sum[QW-1:0] >> lk_q;
    wire [LANE_W-1:0] kmask = ~({LANE_W{1'b1}} << lk_q);
    assign addr     = word[A_W-1:0];
    assign lane_off = (sum[LANE_W-1:0] & kmask) << la_q;
    assign odd      = halve_q & raw_q[0];
    wire unused_sum = ^{sum[QW], word[QW-1:A_W], y_ext[Y_W+S_W-1:S_W],
                        x_ext[X_W+S_W-1:S_W], dy_ext[TAP_W+S_W-1:S_W], dx_ext[TAP_W+S_W-1:S_W]};
endmodule

`default_nettype wire
