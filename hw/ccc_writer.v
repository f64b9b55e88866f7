// ccc_writer — shift-on-write (hand-written primitive of ccc).
//
// Every activation a layer produces (and every input pixel) is written into the tap
// buffers of the layer that reads it, already displaced by that tap's (dy, dx): tap u
// at position (y - dy, x - dx) of the map, zero elsewhere (never-written words stay
// zero). The compiler's write map lists, per channel, WPC entries (1 for 1x1 readers,
// K*K for the first conv): {valid, column, lane, dy, dx, base - (dy*w + dx)}; the
// target word address is then that offset plus the source pixel index. One request
// is accepted per cycle when WPC is 1; a request with WPC > 1 holds `req_ready` low
// while its entries are issued, one per cycle. The map itself is a combinational ROM
// outside (map_index -> map_entry); writes leave two cycles after their entry.
module ccc_writer #(
    parameter integer C      = 4,
    parameter integer ALPHA  = 8,
    parameter integer A_W    = 10,
    parameter integer N_W    = 8,
    parameter integer Y_W    = 5,
    parameter integer X_W    = 5,
    parameter integer PIX_W  = 10,
    parameter integer MAP_AW = 8,
    parameter integer COL_W  = 2,
    parameter integer LANE_W = 3,
    parameter integer WPC_W  = 4
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire                   req_valid,
    output wire                   req_ready,
    input  wire [N_W-1:0]         req_chan,
    input  wire [Y_W-1:0]         req_y,
    input  wire [X_W-1:0]         req_x,
    input  wire [PIX_W-1:0]       req_pix,
    input  wire [7:0]             req_val,
    input  wire [MAP_AW-1:0]      req_map_base,
    input  wire [WPC_W-1:0]       req_wpc,
    input  wire [Y_W-1:0]         req_h,
    input  wire [X_W-1:0]         req_w,
    // write-map ROM
    output wire [MAP_AW-1:0]      map_index,
    input  wire                   map_valid,
    input  wire [COL_W-1:0]       map_col,
    input  wire [LANE_W-1:0]      map_lane,
    input  wire signed [7:0]      map_dy,
    input  wire signed [7:0]      map_dx,
    input  wire signed [A_W:0]    map_offset,
    // column memory write port (address and data shared; one column enabled)
    output reg  [C-1:0]           mem_we,
    output reg  [ALPHA-1:0]       mem_be,
    output reg  [A_W-1:0]         mem_waddr,
    output reg  [ALPHA*8-1:0]     mem_wdata,
    output wire                   busy
);
    // Request being expanded into its map entries.
    reg [WPC_W-1:0]   left_q;
    reg [MAP_AW-1:0]  idx_q;
    reg [Y_W-1:0]     y_q;
    reg [X_W-1:0]     x_q;
    reg [PIX_W-1:0]   pix_q;
    reg [7:0]         val_q;
    reg [Y_W-1:0]     h_q;
    reg [X_W-1:0]     w_q;
    reg               pend_q;

    assign req_ready = (left_q == {WPC_W{1'b0}});
    assign busy = !req_ready || pend_q || (mem_we != {C{1'b0}});

    wire accept = req_valid && req_ready;
    // The entry looked up this cycle: the first of a new request, or the next of the
    // current one.
    wire [MAP_AW+N_W+WPC_W-1:0] chan_entry = req_chan * req_wpc;
    wire [MAP_AW-1:0] first_index = req_map_base + chan_entry[MAP_AW-1:0];
    wire unused_chan_entry = ^chan_entry[MAP_AW+N_W+WPC_W-1:MAP_AW];
    assign map_index = accept ? first_index : idx_q;
    wire [Y_W-1:0]   cur_y   = accept ? req_y   : y_q;
    wire [X_W-1:0]   cur_x   = accept ? req_x   : x_q;
    wire [PIX_W-1:0] cur_pix = accept ? req_pix : pix_q;
    wire [7:0]       cur_val = accept ? req_val : val_q;
    wire [Y_W-1:0]   cur_h   = accept ? req_h   : h_q;
    wire [X_W-1:0]   cur_w   = accept ? req_w   : w_q;
    wire             cur_on  = accept || (left_q != {WPC_W{1'b0}});

    // Bounds of the displaced position, in signed arithmetic wide enough for both.
    wire signed [Y_W+8:0] ty = $signed({9'd0, cur_y}) - {{(Y_W + 1) {map_dy[7]}}, map_dy};
    wire signed [X_W+8:0] tx = $signed({9'd0, cur_x}) - {{(X_W + 1) {map_dx[7]}}, map_dx};
    wire in_y = (ty >= 0) && (ty < $signed({9'd0, cur_h}));
    wire in_x = (tx >= 0) && (tx < $signed({9'd0, cur_w}));
    // In range by construction (the compiler sized A_W for every target), so the low
    // A_W bits are the address.
    wire [A_W:0] taddr = {{(A_W + 1 - PIX_W) {1'b0}}, cur_pix} + map_offset;
    wire unused_taddr_sign = taddr[A_W];

    integer j;
    always @(posedge clk) begin
        if (rst) begin
            left_q    <= {WPC_W{1'b0}};
            idx_q     <= {MAP_AW{1'b0}};
            y_q       <= {Y_W{1'b0}};
            x_q       <= {X_W{1'b0}};
            pix_q     <= {PIX_W{1'b0}};
            val_q     <= 8'd0;
            h_q       <= {Y_W{1'b0}};
            w_q       <= {X_W{1'b0}};
            pend_q    <= 1'b0;
            mem_we    <= {C{1'b0}};
            mem_be    <= {ALPHA{1'b0}};
            mem_waddr <= {A_W{1'b0}};
            mem_wdata <= {ALPHA*8{1'b0}};
        end else begin
            if (accept) begin
                left_q <= req_wpc - 1'b1;
                y_q    <= req_y;
                x_q    <= req_x;
                pix_q  <= req_pix;
                val_q  <= req_val;
                h_q    <= req_h;
                w_q    <= req_w;
            end else if (left_q != {WPC_W{1'b0}}) begin
                left_q <= left_q - 1'b1;
            end
            idx_q  <= map_index + 1'b1;
            pend_q <= cur_on;
            mem_we <= {C{1'b0}};
            if (cur_on && map_valid && in_y && in_x) begin
                mem_we[map_col] <= 1'b1;
                mem_waddr <= taddr[A_W-1:0];
                for (j = 0; j < ALPHA; j = j + 1) begin
                    mem_be[j] <= (map_lane == j[LANE_W-1:0]);
                    mem_wdata[8*j +: 8] <= cur_val;
                end
            end
        end
    end
endmodule
