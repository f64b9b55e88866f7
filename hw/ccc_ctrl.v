// ccc_ctrl — the tile controller (hand-written primitive of ccc): runs the compiled
// schedule one tile after another, image after image, without draining between them.
//
// Each tile streams `slots` pixel requests, one every `tp` cycles. Its first request
// comes `gap` cycles after the previous tile's last slot ended; the compiler chose every
// gap (src/schedule.rs) so that weights are loaded, data written, partial sums stored and
// write ports free in time — the controller only counts. Two waits are not known to the
// compiler: an image's first tile waits for the image (`in_full`), and the last layer's
// first tile for the pool (`pool_free`: the classifier of the previous image has read its
// sums). A tile starts the cycle after its gap has passed and its wait is over.
//
// Requests: segment 0's at column 0 (`go0`, ...), segment 1's at the segment boundary
// column (`go1`, ...) `delta` cycles into each slot, for two-segment tiles: `Rows` (two
// row blocks, the same pixel) or `Pixels` (even pixels on segment 0, odd on segment 1).
// Each request comes with its token fields (`t0_*`, `t1_*`: the pixel and the tile's and
// layer's constants) for ccc_token_gen. The next tile's weights start loading LOAD_AT
// cycles into a tile. The schedule ROM is read one tile ahead and registered.
`default_nettype none

module ccc_ctrl #(
    parameter integer NT       = 1,
    parameter integer T_W      = 1,
    parameter integer A_W      = 10,
    parameter integer PIX_W    = 10,
    parameter integer Y_W      = 5,
    parameter integer X_W      = 5,
    parameter integer N_W      = 8,
    parameter integer RB_W     = 4,
    parameter integer ROW_W    = 2,
    parameter integer LANE_W   = 3,
    parameter integer LK_W     = 2,
    parameter integer TP_W     = 8,
    parameter integer GAP_W    = 16,
    parameter integer LAYER_W  = 2,
    parameter integer S_W      = 1,
    // src/schedule.rs pipe::load_at(rows, cols)
    parameter integer LOAD_AT  = 16,
    // cycles after the first layer's last slot / the last layer's last slot at which the
    // input may take the next image / the classifier may start (Schedule::reopen_delay,
    // Schedule::cls_delay)
    parameter integer REOPEN   = 0,
    parameter integer CLS_DLY  = 0
) (
    input  wire               clk,
    input  wire               rst,
    // schedule ROM (ccc_sched), read one tile ahead
    output wire [T_W-1:0]     rom_tile,
    input  wire [LAYER_W-1:0] r_layer,
    input  wire               r_first,
    input  wire               r_last,
    input  wire               r_final,
    input  wire               r_ffirst,
    input  wire               r_reopen,
    input  wire [1:0]         r_mode,
    input  wire [N_W-1:0]     r_row0,
    input  wire [N_W-1:0]     r_row0_b,
    input  wire [RB_W-1:0]    r_rblk,
    input  wire [RB_W-1:0]    r_rblk_b,
    input  wire [ROW_W:0]     r_rows,
    input  wire [ROW_W:0]     r_rows_b,
    input  wire [PIX_W:0]     r_pixels,
    input  wire [PIX_W:0]     r_slots,
    input  wire [X_W-1:0]     r_wo,
    input  wire [A_W-1:0]     r_rbase,
    input  wire [LANE_W-1:0]  r_rkm1,
    input  wire [LANE_W-1:0]  r_rstep,
    input  wire [S_W-1:0]     r_wsmask,
    input  wire [LK_W-1:0]    r_wlk,
    input  wire [LK_W-1:0]    r_wla,
    input  wire [PIX_W-1:0]   r_wwo,
    input  wire [Y_W-1:0]     r_wlh,
    input  wire [X_W-1:0]     r_wlw,
    input  wire               r_mirror,
    input  wire signed [5:0]  r_shift,
    input  wire [7:0]         r_clamp,
    input  wire               r_pool,
    input  wire [TP_W-1:0]    r_tp,
    input  wire [2:0]         r_delta,
    input  wire [GAP_W-1:0]   r_gap,
    // input stream and classifier
    input  wire               in_full,
    output wire               in_take,
    output reg                in_reopen,
    input  wire               pool_free,
    output reg                cls_start,
    output wire               img_end,
    // weight loader
    output wire               ld_go,
    output wire [T_W-1:0]     ld_go_tile,
    // segment 0's requests (column 0) and their token fields
    output wire               go0,
    output wire               swap0,
    output wire [A_W-1:0]     addr0,
    output wire [LANE_W-1:0]  amt0,
    output wire               cut,
    output wire               inbuf,
    output wire [PIX_W-1:0]   t0_pix,
    output wire [PIX_W-1:0]   t0_cpix,
    // segment 0's first / last column-block flags for the request: the tile's, except in
    // a pool layer's tile, whose pixels carry one running sum: first only with its first
    // pixel, last only with its last
    output wire               t0_first,
    output wire               t0_last,
    output wire [Y_W-1:0]     t0_y,
    output wire [X_W-1:0]     t0_x,
    // segment 1's requests (the boundary column) and their pixel
    output reg                go1,
    output reg                swap1,
    output wire [A_W-1:0]     addr1,
    output wire [LANE_W-1:0]  amt1,
    output wire [PIX_W-1:0]   t1_pix,
    output wire [PIX_W-1:0]   t1_cpix,
    output wire [Y_W-1:0]     t1_y,
    output wire [X_W-1:0]     t1_x,
    // the running tile's constants, for both segments' tokens
    output reg  [LAYER_W-1:0] c_layer,
    output reg                c_first,
    output reg                c_last,
    output reg                c_final,
    output reg  [N_W-1:0]     c_row0,
    output reg  [N_W-1:0]     c_row0_b,
    output reg  [RB_W-1:0]    c_rblk,
    output reg  [RB_W-1:0]    c_rblk_b,
    output reg  [ROW_W:0]     c_rows,
    output reg  [ROW_W:0]     c_rows_b,
    output reg                c_mirror,
    output reg  signed [5:0]  c_shift,
    output reg  [7:0]         c_clamp,
    output reg  [Y_W-1:0]     c_wlh,
    output reg  [X_W-1:0]     c_wlw,
    output reg  [S_W-1:0]     c_wsmask,
    output reg  [LK_W-1:0]    c_wlk,
    output reg  [LK_W-1:0]    c_wla,
    // the running image's number, mod 4, and tile
    output reg  [1:0]         c_img,
    output wire [T_W-1:0]     c_tile,
    // 0: waiting for an image, 1: layers, 2: waiting for the pool
    output wire [1:0]         phase,
    output wire               running
);
    localparam [1:0] M_SINGLE = 2'd0, M_ROWS = 2'd1, M_PIXELS = 2'd2;

    // ---------------------------------------------------------------- the next tile
    // nxt_* is the schedule row of tile nxt_tile_q, registered; cur <= nxt at a switch,
    // and the ROM moves on to the tile after.
    reg [T_W-1:0]     tile_q;
    reg [T_W-1:0]     nxt_tile_q;
    wire [T_W-1:0]    after_nxt = (nxt_tile_q == NT[T_W-1:0] - 1'b1) ? {T_W{1'b0}}
                                                                     : nxt_tile_q + 1'b1;
    // After reset: fetch tile 0's row (2), make it the running tile (1), run (0).
    reg [1:0]         init_q;
    reg [LAYER_W-1:0] n_layer;
    reg               n_first, n_last, n_final, n_ffirst, n_reopen;
    reg [1:0]         n_mode;
    reg [N_W-1:0]     n_row0, n_row0_b;
    reg [RB_W-1:0]    n_rblk, n_rblk_b;
    reg [ROW_W:0]     n_rows, n_rows_b;
    reg [PIX_W:0]     n_pixels, n_slots;
    reg [X_W-1:0]     n_wo;
    reg [A_W-1:0]     n_rbase;
    reg [LANE_W-1:0]  n_rkm1, n_rstep;
    reg [S_W-1:0]     n_wsmask;
    reg [LK_W-1:0]    n_wlk, n_wla;
    reg [PIX_W-1:0]   n_wwo;
    reg [Y_W-1:0]     n_wlh;
    reg [X_W-1:0]     n_wlw;
    reg               n_mirror;
    reg signed [5:0]  n_shift;
    reg [7:0]         n_clamp;
    reg               n_pool, c_pool;
    reg [TP_W-1:0]    n_tp;
    reg [2:0]         n_delta;
    reg [GAP_W-1:0]   n_gap;
    // the next row's compares, registered with it so that no carry chain or wide
    // compare sits in front of begin_tile
    reg               n_gap0, n_gap_le1;
    assign rom_tile = nxt_tile_q;

    // ---------------------------------------------------------------- the running tile
    reg               c_ffirst, c_reopen;
    reg [1:0]         c_mode;
    reg [PIX_W:0]     c_pixels;
    // the output row's last x (wo - 1), registered with the row
    reg [X_W-1:0]     c_wom1;
    reg [LANE_W-1:0]  c_rkm1, c_rstep;
    reg [PIX_W-1:0]   c_wwo;
    reg [2:0]         c_delta;
    reg [TP_W-1:0]    c_tpm2;
    reg [PIX_W:0]     c_slotsm2;

    // Segment 1's request and pixel: the same word as segment 0's, and the same pixel
    // (Rows) or the next one (Pixels, captured after the second walker step).
    reg [A_W-1:0]    h_addr_q;
    reg [LANE_W-1:0] h_amt_q;
    reg [PIX_W-1:0]  h_pix_q, h_cpix_q;
    reg [Y_W-1:0]    h_y_q;
    reg [X_W-1:0]    h_x_q;
    localparam [1:0] S_WAIT = 2'd0, S_STREAM = 2'd1;
    reg [1:0]        state_q;
    reg [GAP_W-1:0]  wait_q;
    reg [TP_W-1:0]   cyc_q;
    reg [PIX_W:0]    slot_q;
    // the pixel walker: index, position and grid index of the next pixel to request
    reg [PIX_W:0]    pix_q;
    reg [Y_W-1:0]    y_q;
    reg [X_W-1:0]    x_q;
    wire [PIX_W-1:0] cpix;
    // read side: word address, pixel within the word and its lane offset
    reg [A_W-1:0]    addr_q;
    reg [LANE_W-1:0] sub_q;
    reg [LANE_W-1:0] amt_q;
    // Flags kept equal to compares of the counters above (cyc_q == 0, cyc_q == tp - 1,
    // slot_q == slots - 1, wait_q <= 1, tile_q == 0 / NT - 1, nxt_tile_q == 0), so that
    // the tile switch (tile_end, begin_tile) is decided by registers and a few gates.
    reg              cyc0_q, cyc_last_q, slot_last_q, wait_le1_q;
    reg              first_tile_q, last_tile_q, n_first_tile_q;
    reg [15:0]       since_q;
    reg [7:0]        reopen_q;
    reg [7:0]        clsdly_q;
    reg              reopen_on_q, clsdly_on_q;

    wire streaming = (state_q == S_STREAM);
    wire first_tile = first_tile_q;
    wire cond = (!first_tile || in_full) && (!c_ffirst || pool_free);
    wire slot_end = streaming && cyc_last_q;
    wire tile_end = slot_end && slot_last_q;
    // The next row becomes the running one (cur <= nxt).
    wire load_cur = tile_end || (init_q == 2'd1);
    wire starting = (state_q == S_WAIT) && (init_q == 2'd0) && wait_le1_q && cond;
    // The next tile may follow without a bubble: decided in the last cycle of this one.
    wire n_first_tile = n_first_tile_q;
    wire n_cond = (!n_first_tile || in_full) && (!n_ffirst || pool_free);
    wire chain = tile_end && n_gap0 && n_cond;
    wire nxt_last = (nxt_tile_q == NT[T_W-1:0] - 1'b1);
    // A tile's first slot: its first cycle of streaming.
    wire begin_tile = starting || chain;

    assign go0   = streaming && cyc0_q;
    assign swap0 = go0 && (slot_q == {(PIX_W + 1) {1'b0}});
    assign addr0 = addr_q;
    assign amt0  = amt_q;
    assign cut   = (c_mode != M_SINGLE);
    assign inbuf = (c_layer == {LAYER_W{1'b0}});
    // A pool layer's pixels all use partial-sum word 0 (its running sum).
    assign t0_pix  = c_pool ? {PIX_W{1'b0}} : pix_q[PIX_W-1:0];
    assign t0_first = c_first && (!c_pool || swap0);
    assign t0_last  = c_last && (!c_pool || slot_last_q);
    assign t0_cpix = cpix;
    assign t0_y    = y_q;
    assign t0_x    = x_q;
    assign in_take = begin_tile && (chain ? n_first_tile : first_tile);
    assign img_end = tile_end && last_tile_q;
    assign ld_go      = (since_q == LOAD_AT[15:0]);
    // The tile after the one whose start began the count: taken at that start, since a
    // tile shorter than LOAD_AT cycles has ended by the time the load begins, and
    // nxt_tile_q has moved on to the tile after next (which the load fetched instead:
    // a wrong tile's weights for the next image's first tile, or for any tile after one
    // of one or two pixels).
    reg  [T_W-1:0]    ld_tile_q;
    assign ld_go_tile = ld_tile_q;
    assign running    = streaming || !first_tile;
    assign c_tile     = tile_q;
    assign phase = (state_q == S_WAIT && wait_le1_q && !cond)
                   ? (first_tile ? 2'd0 : 2'd2) : 2'd1;

    // Pixels mode steps the walker twice per slot: pixel 2k at cycle 0 (segment 0's),
    // 2k + 1 at cycle 1 (segment 1's).
    wire step = streaming && (cyc0_q || (c_mode == M_PIXELS && cyc_q == 1));
    wire last_x = (x_q == c_wom1);

    ccc_grid_index #(.Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W), .S_W(S_W)) u_out_grid (
        .clk(clk), .rst(rst),
        .clear(load_cur),
        .step(step), .y(y_q), .x(x_q), .row_end(last_x),
        .smask(c_wsmask), .wo(c_wwo), .cpix(cpix)
    );

    always @(posedge clk) begin
        if (rst) begin
            state_q     <= S_WAIT;
            wait_q      <= {GAP_W{1'b0}};
            tile_q      <= {T_W{1'b0}};
            nxt_tile_q  <= {T_W{1'b0}};
            init_q      <= 2'd2;
            cyc_q       <= {TP_W{1'b0}};
            slot_q      <= {(PIX_W + 1) {1'b0}};
            cyc0_q      <= 1'b1;
            cyc_last_q  <= 1'b0;
            slot_last_q <= 1'b0;
            wait_le1_q  <= 1'b1;
            first_tile_q   <= 1'b1;
            last_tile_q    <= (NT == 1);
            n_first_tile_q <= 1'b1;
            since_q     <= 16'hffff;
            reopen_on_q <= 1'b0;
            clsdly_on_q <= 1'b0;
            in_reopen   <= 1'b0;
            cls_start   <= 1'b0;
            go1         <= 1'b0;
            swap1       <= 1'b0;
            c_img       <= 2'd3;
        end else begin
            if (in_take) c_img <= c_img + 1'b1;
            in_reopen <= 1'b0;
            cls_start <= 1'b0;
            if (init_q != 2'd0) init_q <= init_q - 1'b1;
            if (init_q == 2'd1) begin
                nxt_tile_q     <= after_nxt;
                n_first_tile_q <= nxt_last;
            end
            if (since_q != 16'hffff) since_q <= since_q + 1'b1;

            // The slot and cycle counters restart when the next row becomes the running
            // one (load_cur: the last cycle of a tile, or after reset), not when the tile
            // starts: begin_tile waits on the input and the pool, and sat, fanned out to
            // every counter's reset, on the critical path (ECP5 16x16 at 7eee6cd, seed
            // 3). A waiting tile's counters are not read before it starts.
            if (load_cur) begin
                cyc_q      <= {TP_W{1'b0}};
                slot_q     <= {(PIX_W + 1) {1'b0}};
                cyc0_q     <= 1'b1;
                // tp >= 8 (src/schedule.rs), so a slot's first cycle is never its last
                cyc_last_q <= 1'b0;
                slot_last_q <= (n_slots == {{PIX_W{1'b0}}, 1'b1});
            end else if (streaming) begin
                if (cyc_last_q) begin
                    cyc_q       <= {TP_W{1'b0}};
                    slot_q      <= slot_q + 1'b1;
                    cyc0_q      <= 1'b1;
                    cyc_last_q  <= 1'b0;
                    slot_last_q <= (slot_q == c_slotsm2);
                end else begin
                    cyc_q      <= cyc_q + 1'b1;
                    cyc0_q     <= 1'b0;
                    cyc_last_q <= (cyc_q == c_tpm2);
                end
            end else if (wait_q != {GAP_W{1'b0}}) begin
                wait_q     <= wait_q - 1'b1;
                wait_le1_q <= (wait_q <= {{(GAP_W - 2) {1'b0}}, 2'd2});
            end
            if (begin_tile) begin
                state_q   <= S_STREAM;
                since_q   <= 16'd0;
                // Chained, nxt_tile_q moves on this same edge.
                ld_tile_q <= chain ? after_nxt : nxt_tile_q;
            end
            if (tile_end) begin
                tile_q         <= nxt_tile_q;
                nxt_tile_q     <= after_nxt;
                first_tile_q   <= n_first_tile_q;
                last_tile_q    <= nxt_last;
                n_first_tile_q <= nxt_last;
                if (!chain) begin
                    state_q    <= S_WAIT;
                    wait_q     <= n_gap;
                    wait_le1_q <= n_gap_le1;
                end
                if (c_reopen) reopen_on_q <= 1'b1;
                if (last_tile_q) clsdly_on_q <= 1'b1;
            end
            if (reopen_on_q) begin
                if (reopen_q == 8'd0) begin
                    in_reopen   <= 1'b1;
                    reopen_on_q <= 1'b0;
                end
            end
            if (clsdly_on_q) begin
                if (clsdly_q == 8'd0) begin
                    cls_start   <= 1'b1;
                    clsdly_on_q <= 1'b0;
                end
            end
            // Segment 1: delta cycles (>= 1; >= 2 for Pixels) into each slot, when the
            // slot has a pixel or a row block there.
            go1   <= 1'b0;
            swap1 <= 1'b0;
            if (state_q == S_STREAM && c_mode != M_SINGLE &&
                cyc_q + 1'b1 == {{(TP_W - 3) {1'b0}}, c_delta} &&
                (c_mode == M_ROWS ? c_rows_b != {(ROW_W + 1) {1'b0}}
                                  : {1'b0, h_pix_q} < c_pixels)) begin
                go1   <= 1'b1;
                swap1 <= (slot_q == {(PIX_W + 1) {1'b0}});
            end
        end
    end

    // Countdowns from the end of the first / last layer.
    always @(posedge clk) begin
        if (tile_end && c_reopen) reopen_q <= REOPEN[7:0];
        else if (reopen_q != 8'd0) reopen_q <= reopen_q - 1'b1;
        if (tile_end && last_tile_q) clsdly_q <= CLS_DLY[7:0];
        else if (clsdly_q != 8'd0) clsdly_q <= clsdly_q - 1'b1;
    end

    // Schedule rows: nxt from the ROM every cycle (it changes one cycle after the ROM's
    // address), cur from nxt at every switch (tiles last 8 cycles or more).
    always @(posedge clk) begin
        begin
            n_layer <= r_layer; n_first <= r_first; n_last <= r_last; n_final <= r_final;
            n_ffirst <= r_ffirst; n_reopen <= r_reopen; n_mode <= r_mode;
            n_row0 <= r_row0; n_row0_b <= r_row0_b; n_rblk <= r_rblk; n_rblk_b <= r_rblk_b;
            n_rows <= r_rows; n_rows_b <= r_rows_b; n_pixels <= r_pixels; n_slots <= r_slots;
            n_wo <= r_wo; n_rbase <= r_rbase; n_rkm1 <= r_rkm1; n_rstep <= r_rstep;
            n_wsmask <= r_wsmask; n_wlk <= r_wlk; n_wla <= r_wla; n_wwo <= r_wwo;
            n_wlh <= r_wlh; n_wlw <= r_wlw; n_mirror <= r_mirror; n_shift <= r_shift;
            n_clamp <= r_clamp; n_pool <= r_pool; n_tp <= r_tp; n_delta <= r_delta; n_gap <= r_gap;
            n_gap0 <= (r_gap == {GAP_W{1'b0}});
            n_gap_le1 <= (r_gap <= {{(GAP_W - 1) {1'b0}}, 1'b1});
        end
    end
    always @(posedge clk) begin
        if (load_cur) begin
            c_layer <= n_layer; c_first <= n_first; c_last <= n_last; c_final <= n_final;
            c_ffirst <= n_ffirst; c_reopen <= n_reopen; c_mode <= n_mode;
            c_row0 <= n_row0; c_row0_b <= n_row0_b; c_rblk <= n_rblk; c_rblk_b <= n_rblk_b;
            c_rows <= n_rows; c_rows_b <= n_rows_b; c_pixels <= n_pixels;
            c_wom1 <= n_wo - 1'b1; c_rkm1 <= n_rkm1; c_rstep <= n_rstep;
            c_wsmask <= n_wsmask; c_wlk <= n_wlk; c_wla <= n_wla; c_wwo <= n_wwo;
            c_wlh <= n_wlh; c_wlw <= n_wlw; c_mirror <= n_mirror; c_shift <= n_shift;
            c_clamp <= n_clamp; c_pool <= n_pool; c_delta <= n_delta;
            c_tpm2 <= n_tp - {{(TP_W - 2) {1'b0}}, 2'd2};
            c_slotsm2 <= n_slots - {{(PIX_W - 1) {1'b0}}, 2'd2};
        end
    end

    // The pixel walker and the read addresses: restart with every row (load_cur, as the
    // counters), step per pixel.
    always @(posedge clk) begin
        if (load_cur) begin
            pix_q  <= {(PIX_W + 1) {1'b0}};
            y_q    <= {Y_W{1'b0}};
            x_q    <= {X_W{1'b0}};
            addr_q <= n_rbase;
            sub_q  <= {LANE_W{1'b0}};
            amt_q  <= {LANE_W{1'b0}};
        end else begin
            if (step) begin
                pix_q <= pix_q + 1'b1;
                if (last_x) begin
                    x_q <= {X_W{1'b0}};
                    y_q <= y_q + 1'b1;
                end else begin
                    x_q <= x_q + 1'b1;
                end
            end
            if (go0) begin
                // This layer's pixels are consecutive in its compact buffers, rkm1 + 1 of
                // them per word, rstep lanes apart (per segment in Pixels mode).
                if (sub_q == c_rkm1) begin
                    sub_q  <= {LANE_W{1'b0}};
                    amt_q  <= {LANE_W{1'b0}};
                    addr_q <= addr_q + 1'b1;
                end else begin
                    sub_q <= sub_q + 1'b1;
                    amt_q <= amt_q + c_rstep;
                end
            end
        end
    end

    always @(posedge clk) begin
        if (go0) begin
            h_addr_q <= addr_q;
            h_amt_q  <= amt_q;
        end
        if (go0 || (c_mode == M_PIXELS && state_q == S_STREAM && cyc_q == 1)) begin
            h_pix_q  <= pix_q[PIX_W-1:0];
            h_cpix_q <= cpix;
            h_y_q    <= y_q;
            h_x_q    <= x_q;
        end
    end
    assign addr1   = h_addr_q;
    assign amt1    = h_amt_q;
    assign t1_pix  = h_pix_q;
    assign t1_cpix = h_cpix_q;
    assign t1_y    = h_y_q;
    assign t1_x    = h_x_q;
endmodule

`default_nettype wire
