// ccc_ctrl — the tile controller (hand-written primitive of ccc): runs the compiled
// schedule one tile after another for each image.
//
//   WAITIN   an image is in the first layer's buffers: take it, go to tile 0
//   WAITLOAD the tile's weights are in the shadow registers (the loader says so): start
//   STREAM   one pixel request every TP cycles (`go`), P pixels; the first carries the
//            swap token. Read addresses walk the tile's compact buffer: rkm1 + 1 pixels
//            per word, rstep lanes apart. The next tile's load starts LOAD_AT cycles in,
//            once the swap token has passed every cell.
//   DRAIN    DRAIN cycles for the systolic pipeline, row ends and writers to empty; after
//            the first layer's last tile the input may take the next image; after the
//            last layer's, the classifier starts
//   CLASSIFY until the classifier has sent the logits and the class
// Also keeps the running pixel's index on the next layer's grid (`cpix`, for the rows'
// shift-on-write). Timing is mirrored by the cycle model in src/schedule.rs.
`default_nettype none

module ccc_ctrl #(
    parameter integer R       = 4,
    parameter integer C       = 4,
    parameter integer NT      = 1,
    parameter integer T_W     = 1,
    parameter integer A_W     = 10,
    parameter integer PIX_W   = 10,
    parameter integer Y_W     = 5,
    parameter integer X_W     = 5,
    parameter integer LANE_W  = 3,
    parameter integer TP_W    = 8,
    parameter integer LAYER_W = 2,
    parameter integer S_W     = 1
) (
    input  wire               clk,
    input  wire               rst,
    // the running tile's schedule row
    output wire [T_W-1:0]     tile,
    input  wire [LAYER_W-1:0] s_layer,
    input  wire               s_final,
    input  wire               s_layer_end,
    input  wire [PIX_W:0]     s_pixels,
    input  wire [X_W-1:0]     s_wo,
    input  wire [A_W-1:0]     s_rbase,
    input  wire [LANE_W-1:0]  s_rkm1,
    input  wire [LANE_W-1:0]  s_rstep,
    input  wire [S_W-1:0]     s_wsmask,
    input  wire [PIX_W-1:0]   s_wwo,
    input  wire [TP_W-1:0]    s_tp,
    // input stream: an image is waiting / take it / the buffers may take the next
    input  wire               in_full,
    output wire               in_take,
    output wire               in_reopen,
    // weight loader
    input  wire               loaded,
    input  wire [T_W-1:0]     ld_tile,
    output wire               ld_go,
    output wire [T_W-1:0]     ld_go_tile,
    output wire               ld_consume,
    // pixel requests to column 0 and the token generator
    output wire               go,
    output wire               swap,
    output wire [PIX_W-1:0]   pix,
    output wire [PIX_W-1:0]   cpix,
    output wire [Y_W-1:0]     y,
    output wire [X_W-1:0]     x,
    output wire [A_W-1:0]     addr,
    output wire [LANE_W-1:0]  amt,
    // classifier
    output wire               cls_start,
    input  wire               cls_done,
    output wire               running,
    // 0 input, 1 layers, 2 classifier/output
    output wire [1:0]         phase
);
    localparam integer DRAIN = R + C + 16;
    // The next tile's weights may start shifting in once the swap token has passed the
    // last cell: 1 cycle of feed latency (the token leads bit-plane 0 by one) + (C - 1) +
    // (R - 1), plus margin.
    localparam integer LOAD_AT_I = R + C + 4;
    localparam [15:0] LOAD_AT = LOAD_AT_I[15:0];

    localparam [2:0] S_WAITIN = 3'd0, S_WAITLOAD = 3'd1, S_STREAM = 3'd2, S_DRAIN = 3'd3,
                     S_CLASSIFY = 3'd4;
    reg [2:0]        state_q, state_d;
    reg [T_W-1:0]    tile_q, tile_d;
    reg [TP_W-1:0]   cyc_q, cyc_d;
    reg [PIX_W:0]    pix_q, pix_d;
    reg [Y_W-1:0]    y_q, y_d;
    reg [X_W-1:0]    x_q, x_d;
    // read side: word address, pixel within the word and its lane offset
    reg [A_W-1:0]    addr_q, addr_d;
    reg [LANE_W-1:0] sub_q, sub_d;
    reg [LANE_W-1:0] amt_q, amt_d;
    reg [15:0]       since_q, since_d;
    reg [15:0]       drain_q, drain_d;
    reg              cls_start_q, cls_start_d;

    wire [T_W-1:0] next_tile = (tile_q == NT[T_W-1:0] - 1'b1) ? {T_W{1'b0}} : tile_q + 1'b1;
    wire ready = (state_q == S_WAITLOAD) && loaded && ld_tile == tile_q;
    wire drain_end = (state_q == S_DRAIN) && (drain_q == 16'd1);

    assign go         = (state_q == S_STREAM) && (cyc_q == {TP_W{1'b0}});
    assign swap       = go && (pix_q == {(PIX_W + 1) {1'b0}});
    assign in_take    = (state_q == S_WAITIN) && in_full;
    assign in_reopen  = drain_end && s_layer == {LAYER_W{1'b0}} && s_layer_end;
    assign ld_go      = (state_q == S_STREAM || state_q == S_DRAIN) && since_q == LOAD_AT;
    assign ld_go_tile = next_tile;
    assign ld_consume = ready;

    always @(*) begin
        state_d     = state_q;
        tile_d      = tile_q;
        cyc_d       = cyc_q;
        pix_d       = pix_q;
        y_d         = y_q;
        x_d         = x_q;
        addr_d      = addr_q;
        sub_d       = sub_q;
        amt_d       = amt_q;
        since_d     = since_q;
        drain_d     = drain_q;
        cls_start_d = 1'b0;
        case (state_q)
            S_WAITIN: begin
                if (in_full) begin
                    tile_d  = {T_W{1'b0}};
                    state_d = S_WAITLOAD;
                end
            end
            S_WAITLOAD: begin
                if (ready) begin
                    state_d = S_STREAM;
                    cyc_d   = {TP_W{1'b0}};
                    pix_d   = {(PIX_W + 1) {1'b0}};
                    y_d     = {Y_W{1'b0}};
                    x_d     = {X_W{1'b0}};
                    addr_d  = s_rbase;
                    sub_d   = {LANE_W{1'b0}};
                    amt_d   = {LANE_W{1'b0}};
                    since_d = 16'd0;
                end
            end
            S_STREAM: begin
                since_d = since_q + 1'b1;
                if (cyc_q == s_tp - 1'b1) begin
                    cyc_d = {TP_W{1'b0}};
                    if (pix_q == s_pixels) begin
                        state_d = S_DRAIN;
                        drain_d = DRAIN[15:0];
                    end
                end else begin
                    cyc_d = cyc_q + 1'b1;
                end
                if (go) begin
                    pix_d = pix_q + 1'b1;
                    // This layer's pixels are consecutive in its compact buffers,
                    // rkm1 + 1 of them per word, rstep lanes apart.
                    if (sub_q == s_rkm1) begin
                        sub_d  = {LANE_W{1'b0}};
                        amt_d  = {LANE_W{1'b0}};
                        addr_d = addr_q + 1'b1;
                    end else begin
                        sub_d = sub_q + 1'b1;
                        amt_d = amt_q + s_rstep;
                    end
                    if (x_q == s_wo - 1'b1) begin
                        x_d = {X_W{1'b0}};
                        y_d = y_q + 1'b1;
                    end else begin
                        x_d = x_q + 1'b1;
                    end
                end
            end
            S_DRAIN: begin
                since_d = since_q + 1'b1;
                drain_d = drain_q - 1'b1;
                if (drain_end) begin
                    if (s_final && s_layer_end) begin
                        state_d     = S_CLASSIFY;
                        cls_start_d = 1'b1;
                    end else begin
                        tile_d  = next_tile;
                        state_d = S_WAITLOAD;
                    end
                end
            end
            default: begin  // S_CLASSIFY: wait for the logits to leave
                if (cls_done) begin
                    state_d = S_WAITIN;
                    tile_d  = {T_W{1'b0}};
                end
            end
        endcase
    end

    always @(posedge clk) begin
        if (rst) begin
            state_q     <= S_WAITIN;
            tile_q      <= {T_W{1'b0}};
            cyc_q       <= {TP_W{1'b0}};
            pix_q       <= {(PIX_W + 1) {1'b0}};
            y_q         <= {Y_W{1'b0}};
            x_q         <= {X_W{1'b0}};
            addr_q      <= {A_W{1'b0}};
            sub_q       <= {LANE_W{1'b0}};
            amt_q       <= {LANE_W{1'b0}};
            since_q     <= 16'd0;
            drain_q     <= 16'd0;
            cls_start_q <= 1'b0;
        end else begin
            state_q     <= state_d;
            tile_q      <= tile_d;
            cyc_q       <= cyc_d;
            pix_q       <= pix_d;
            y_q         <= y_d;
            x_q         <= x_d;
            addr_q      <= addr_d;
            sub_q       <= sub_d;
            amt_q       <= amt_d;
            since_q     <= since_d;
            drain_q     <= drain_d;
            cls_start_q <= cls_start_d;
        end
    end

    // This tile's output pixels on the next layer's grid (back to 0 as a tile starts).
    ccc_grid_index #(.Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W), .S_W(S_W)) u_out_grid (
        .clk(clk), .rst(rst),
        .clear(ready),
        .step(go), .y(y_q), .x(x_q), .row_end(x_q == s_wo - 1'b1),
        .smask(s_wsmask), .wo(s_wwo), .cpix(cpix)
    );

    assign tile      = tile_q;
    assign pix       = pix_q[PIX_W-1:0];
    assign y         = y_q;
    assign x         = x_q;
    assign addr      = addr_q;
    assign amt       = amt_q;
    assign cls_start = cls_start_q;
    assign running   = state_q != S_WAITIN;
    assign phase     = (state_q == S_WAITIN) ? 2'd0 : (state_q == S_CLASSIFY) ? 2'd2 : 2'd1;
endmodule

`default_nettype wire
