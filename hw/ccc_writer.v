// ccc_writer — shift-on-write of the input image (hand-written primitive of ccc).
//
// Every input pixel is written into the tap buffers of the first layer, already
// displaced by each tap's (dy, dx): tap u at position (y - dy, x - dx) of the map, zero
// elsewhere (never-written words stay zero), in the first layer's compact buffers
// (ccc_shift_target). The compiler's write map gives, per channel and phase, one slot
// per array column: {valid, lane, dy, dx, offset}. All taps of a phase are in
// different columns and are written in the same cycle (a KxK first layer usually needs
// one phase: its K*K taps sit in K*K different columns); a pixel takes `req_phases`
// cycles, during which `req_ready` is low. Writes leave three cycles after their phase, into
// the columns' input buffers, which nothing else writes. When the first layer runs on
// two column segments (SPLIT > 0), its taps' columns are below SPLIT and a write also
// goes to column + SPLIT: always (MODE 1, two row blocks side by side read the same
// data) or instead, for odd positions (MODE 2, even and odd pixels side by side: the
// buffer is split by pixel parity).
`default_nettype none

module ccc_writer #(
    parameter integer C      = 4,
    parameter integer ALPHA  = 8,
    parameter integer A_W    = 10,
    parameter integer Y_W    = 5,
    parameter integer X_W    = 5,
    parameter integer PIX_W  = 10,
    parameter integer MAP_AW = 8,
    parameter integer LANE_W = 3,
    parameter integer PH_W   = 4,
    parameter integer S_W    = 1,
    parameter integer LK_W   = 2,
    parameter integer TAP_W  = 8,
    parameter integer SPLIT  = 0,
    parameter integer MODE   = 0
) (
    input  wire                   clk,
    input  wire                   rst,
    input  wire                   req_valid,
    output wire                   req_ready,
    // the write map's index of the pixel's channel's first phase (channel * phases)
    input  wire [MAP_AW-1:0]      req_first,
    input  wire [Y_W-1:0]         req_y,
    input  wire [X_W-1:0]         req_x,
    input  wire [PIX_W-1:0]       req_cpix,
    input  wire [7:0]             req_val,
    input  wire [PH_W-1:0]        req_phases,
    input  wire [Y_W-1:0]         req_h,
    input  wire [X_W-1:0]         req_w,
    input  wire [S_W-1:0]         req_smask,
    input  wire [LK_W-1:0]        req_lk,
    input  wire [LK_W-1:0]        req_la,
    // write-map ROM: index = channel * phases + phase -> one slot per column
    output wire [MAP_AW-1:0]      map_index,
    input  wire [C-1:0]           map_valid,
    input  wire [C*LANE_W-1:0]    map_lane,
    input  wire [C*TAP_W-1:0]     map_dy,
    input  wire [C*TAP_W-1:0]     map_dx,
    input  wire [C*(A_W+LANE_W+1)-1:0] map_offset,
    // column memory write ports
    output reg  [C-1:0]           mem_we,
    output reg  [C*ALPHA-1:0]     mem_be,
    output reg  [C*A_W-1:0]       mem_waddr,
    // the written byte, one copy per column memory (every lane of a write carries it)
    output wire [C*8-1:0]         mem_wdata,
    output wire                   busy
);
    reg [PH_W-1:0]   left_q;
    reg [MAP_AW-1:0] idx_q;
    reg [Y_W-1:0]    y_q;
    reg [X_W-1:0]    x_q;
    reg [PIX_W-1:0]  pix_q;
    reg [7:0]        val_q;
    reg [Y_W-1:0]    h_q;
    reg [X_W-1:0]    w_q;

    // Ready is a flag updated with the phase counter (left_q == 0 next cycle), and the
    // channel's first map index comes in precomputed, so that the handshake is a few
    // gates over registers in front of the map index (ECP5 16x16 at 792edb3, seed 1:
    // left_q's compare -> the input's accept -> the index multiplexer -> idx_q was the
    // critical path).
    reg ready_q;
    assign req_ready = ready_q;

    wire accept = req_valid && req_ready;
    assign map_index = accept ? req_first : idx_q;
    wire [Y_W-1:0]   cur_y   = accept ? req_y   : y_q;
    wire [X_W-1:0]   cur_x   = accept ? req_x   : x_q;
    wire [PIX_W-1:0] cur_pix = accept ? req_cpix : pix_q;
    wire [7:0]       cur_val = accept ? req_val : val_q;
    wire [Y_W-1:0]   cur_h   = accept ? req_h   : h_q;
    wire [X_W-1:0]   cur_w   = accept ? req_w   : w_q;
    // A phase is on while the accepted pixel has phases left (ready_q low).
    wire             cur_on  = accept || !ready_q;

    // One register stage between the write-map ROM and the shift targets: the phase's
    // map entry and pixel are taken here, the targets and write enables computed from
    // them the next cycle (so no path runs from the stream's handshake through the ROM
    // into the address arithmetic). Only the stage's valid bit is reset.
    reg                       p_on_q;
    reg [C-1:0]               p_valid_q;
    reg [C*LANE_W-1:0]        p_lane_q;
    reg [C*TAP_W-1:0]         p_dy_q, p_dx_q;
    reg [C*(A_W+LANE_W+1)-1:0] p_offset_q;
    reg [Y_W-1:0]             p_y_q, p_h_q;
    reg [X_W-1:0]             p_x_q, p_w_q;
    reg [PIX_W-1:0]           p_pix_q;
    reg [7:0]                 p_val_q;
    reg                       q_on_q, t_on_q, w_on_q;
    // Busy until the last phase has left the write stage, whether or not that phase
    // wrote anything (so `full` comes a fixed number of cycles after the last beat).
    assign busy = !req_ready || p_on_q || q_on_q || t_on_q || w_on_q;
    always @(posedge clk) begin
        if (rst) begin
            p_on_q <= 1'b0;
            q_on_q <= 1'b0;
            t_on_q <= 1'b0;
            w_on_q <= 1'b0;
        end else begin
            p_on_q <= cur_on;
            q_on_q <= p_on_q;
            t_on_q <= q_on_q;
            w_on_q <= t_on_q;
        end
        p_valid_q  <= map_valid;
        p_lane_q   <= map_lane;
        p_dy_q     <= map_dy;
        p_dx_q     <= map_dx;
        p_offset_q <= map_offset;
        p_y_q      <= cur_y;
        p_x_q      <= cur_x;
        p_pix_q    <= cur_pix;
        p_val_q    <= cur_val;
        p_h_q      <= cur_h;
        p_w_q      <= cur_w;
    end

    // The shift targets register the displaced position inside (the displacement's
    // subtraction and the bounds compare are two carry chains, too long for one cycle
    // together); the slot's own fields follow them through stage q.
    reg [C-1:0]        q_valid_q;
    reg [C*LANE_W-1:0] q_lane_q;
    reg [7:0]          q_val_q;
    always @(posedge clk) begin
        q_valid_q <= p_valid_q;
        q_lane_q  <= p_lane_q;
        q_val_q   <= p_val_q;
    end

    // Per column: whether the displaced position exists, its word address and byte lane.
    wire [C-1:0]        slot_ok;
    wire [C-1:0]        slot_odd;
    wire [C*A_W-1:0]    slot_addr;
    wire [C*LANE_W-1:0] slot_lane;
    genvar gc;
    generate
        for (gc = 0; gc < C; gc = gc + 1) begin : g_slot
            wire in_map;
            wire [LANE_W-1:0] lane_off;
            ccc_shift_target #(
                .Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W), .A_W(A_W), .LANE_W(LANE_W), .S_W(S_W),
                .LK_W(LK_W), .TAP_W(TAP_W)
            ) u_target (
                .clk(clk), .y(p_y_q), .x(p_x_q), .cpix(p_pix_q), .h_lim(p_h_q), .w_lim(p_w_q),
                .dy(p_dy_q[gc*TAP_W +: TAP_W]), .dx(p_dx_q[gc*TAP_W +: TAP_W]),
                .offset(p_offset_q[gc*(A_W+LANE_W+1) +: A_W+LANE_W+1]),
                .smask(req_smask), .lk(req_lk), .la(req_la), .halve(MODE == 2),
                .in_map(in_map), .addr(slot_addr[gc*A_W +: A_W]), .lane_off(lane_off),
                .odd(slot_odd[gc])
            );
            assign slot_ok[gc] = q_on_q && q_valid_q[gc] && in_map;
            // map_lane < alpha and lane_off is a multiple of alpha: OR is the sum.
            assign slot_lane[gc*LANE_W +: LANE_W] = q_lane_q[gc*LANE_W +: LANE_W] | lane_off;
        end
    endgenerate

    // The targets are registered before they are routed to columns: the displacement's
    // subtraction and the map-bounds compare (two carry chains) and the column enables
    // were one path into the tap buffers' write ports (ECP5 critical path at 16x16).
    reg [C-1:0]        t_ok_q, t_odd_q;
    reg [C*A_W-1:0]    t_addr_q;
    reg [C*LANE_W-1:0] t_lane_q;
    reg [7:0]          t_val_q;
    always @(posedge clk) begin
        t_ok_q   <= slot_ok;
        t_odd_q  <= slot_odd;
        t_addr_q <= slot_addr;
        t_lane_q <= slot_lane;
        t_val_q  <= q_val_q;
    end

    // Where each slot's write goes: its column, and with a split its mirror or, for odd
    // positions, only the mirror.
    reg [C-1:0]        col_we;
    reg [C*A_W-1:0]    col_addr;
    reg [C*LANE_W-1:0] col_lane;
    integer m;
    always @(*) begin
        col_we   = {C{1'b0}};
        col_addr = t_addr_q;
        col_lane = t_lane_q;
        for (m = 0; m < C; m = m + 1) begin
            if (MODE == 0) begin
                col_we[m] = t_ok_q[m];
            end else if (m < SPLIT) begin
                col_we[m] = t_ok_q[m] && !(MODE == 2 && t_odd_q[m]);
                if (m + SPLIT < C) begin
                    col_we[m + SPLIT] = t_ok_q[m] && (MODE == 1 || t_odd_q[m]);
                    col_addr[(m + SPLIT)*A_W +: A_W] = t_addr_q[m*A_W +: A_W];
                    col_lane[(m + SPLIT)*LANE_W +: LANE_W] = t_lane_q[m*LANE_W +: LANE_W];
                end
            end
        end
    end

    integer j, k;
    always @(posedge clk) begin
        if (rst) begin
            left_q    <= {PH_W{1'b0}};
            ready_q   <= 1'b1;
            idx_q     <= {MAP_AW{1'b0}};
            mem_we    <= {C{1'b0}};
        end else begin
            if (accept) begin
                left_q  <= req_phases - 1'b1;
                ready_q <= (req_phases == {{(PH_W - 1) {1'b0}}, 1'b1});
            end else if (!ready_q) begin
                left_q  <= left_q - 1'b1;
                ready_q <= (left_q == {{(PH_W - 1) {1'b0}}, 1'b1});
            end
            idx_q  <= map_index + 1'b1;
            mem_we <= col_we;
        end
    end

    // The pixel's description and the write's data need no reset.
    always @(posedge clk) begin
        if (accept) begin
            y_q   <= req_y;
            x_q   <= req_x;
            pix_q <= req_cpix;
            val_q <= req_val;
            h_q   <= req_h;
            w_q   <= req_w;
        end
        mem_waddr <= col_addr;
        for (k = 0; k < C; k = k + 1) begin
            for (j = 0; j < ALPHA; j = j + 1)
                mem_be[k*ALPHA + j] <= (col_lane[k*LANE_W +: LANE_W] == j[LANE_W-1:0]);
        end
    end
    // One register per column memory (ECP5 16x16 at af32dbe, seed 1: the one shared data
    // register, 7.3 ns from the column memory's write multiplexer and 5.1 ns more to its
    // DP16KD, was the critical path); same cycle as the shared register it replaces.
    genvar gw;
    generate
        for (gw = 0; gw < C; gw = gw + 1) begin : g_wdata
            ccc_rep_data #(.W(8)) u_wdata (
                .clk(clk), .d(t_val_q), .q(mem_wdata[gw*8 +: 8])
            );
        end
    endgenerate
endmodule

`default_nettype wire
