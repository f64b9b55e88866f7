// ccc_input — the input stream (hand-written primitive of ccc): takes an image's beats
// (one uint8 each, order y, x, channel) while the first layer's tap buffers are open to
// it, and writes every beat through ccc_writer into each first-layer tap that reads its
// channel (shift-on-write; the compiled ccc_wmap says where). When the last beat is
// written the image is `full`: it waits in the buffers until the controller `take`s it,
// and the buffers stay closed until the controller `reopen`s them once the first layer
// has read that image, so the next image streams in during the later layers.
// The writes go to the columns' input buffers, which only the first layer reads, so no
// row write ever holds the stream up: a beat is refused (`s_axis_tready` low) only while
// the writer is busy with the phases of the previous one, while the buffers hold an
// image, while the memories are being cleared (`hold`), and during reset.
//
// Framing (`s_axis_tlast`, docs/ACCELERATOR.md "Input stream"): every packet the sender
// ends with tlast yields exactly one image, so the sender and the accelerator never fall
// out of step. A packet that ends early (tlast before the image's last beat) is completed
// with zero beats, written here without taking anything from the port, and sets
// `err[0]`; a packet that runs long is cut at the image's last beat and its excess beats
// are taken and dropped up to its tlast, which sets `err[1]`. Both flags stay set until
// `err_clear` (or reset); the next packet starts a new image either way.
`default_nettype none

module ccc_input #(
    parameter integer C        = 4,
    parameter integer ALPHA    = 8,
    parameter integer A_W      = 10,
    parameter integer PIX_W    = 10,
    parameter integer Y_W      = 5,
    parameter integer X_W      = 5,
    parameter integer N_W      = 8,
    parameter integer MAP_AW   = 8,
    parameter integer LANE_W   = 3,
    parameter integer TAP_W    = 8,
    parameter integer WPC_W    = 4,
    parameter integer S_W      = 1,
    parameter integer LK_W     = 2,
    parameter integer IN_C     = 1,
    parameter integer IN_H     = 8,
    parameter integer IN_W     = 8,
    parameter integer IN_WPC   = 9,
    // the first layer's compact buffers: stride mask, packing, read limits, output width
    parameter integer IN_SMASK = 0,
    parameter integer IN_LK    = 0,
    parameter integer IN_LA    = 0,
    parameter integer IN_LH    = 8,
    parameter integer IN_LW    = 8,
    parameter integer IN_WO    = 8,
    // the first layer on two column segments: 0 no, 1 two row blocks, 2 even/odd pixels
    parameter integer SPLIT    = 0,
    parameter integer IN_MODE  = 0
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 s_axis_tvalid,
    output wire                 s_axis_tready,
    input  wire [7:0]           s_axis_tdata,
    input  wire                 s_axis_tlast,
    // the memories are being cleared: take nothing
    input  wire                 hold,
    // sticky framing errors: [0] a packet ended early, [1] a packet ran long
    output wire [1:0]           err,
    input  wire                 err_clear,
    // the controller takes the waiting image / the buffers may take the next one
    input  wire                 take,
    input  wire                 reopen,
    output wire                 full,
    // an image is streaming in or waiting
    output wire                 busy,
    // writes into the columns' input buffers
    output wire [C-1:0]         mem_we,
    output wire [C*ALPHA-1:0]   mem_be,
    output wire [C*A_W-1:0]     mem_waddr,
    output wire [C*8-1:0]       mem_wdata
);
    reg              busy_q, busy_d;
    reg              done_q, done_d;
    reg              open_q, open_d;
    reg              full_q, full_d;
    // completing a short packet with zero beats / dropping a long one's excess
    reg              pad_q, pad_d;
    reg              drop_q, drop_d;
    reg [1:0]        err_q, err_d;
    reg [N_W-1:0]    c_q, c_d;
    // c_q * IN_WPC, the channel's first write-map index, kept with c_q (no multiplier
    // in front of the writer's map index)
    reg [MAP_AW-1:0] cf_q, cf_d;
    reg [Y_W-1:0]    y_q, y_d;
    reg [X_W-1:0]    x_q, x_d;
    wire [PIX_W-1:0] cpix;
    wire             wr_ready, wr_busy;

    // The buffers take a beat: from the port, or a zero beat of a short packet's rest.
    wire accept = open_q && !done_q && !full_q && !hold && wr_ready;
    wire take_port = !rst && !pad_q && (drop_q || accept);
    wire port_fire = take_port && s_axis_tvalid;
    wire fire = !rst && accept && (pad_q || (s_axis_tvalid && !drop_q));
    wire [7:0] beat = pad_q ? 8'd0 : s_axis_tdata;
    assign s_axis_tready = take_port;

    wire last_c = (c_q == IN_C[N_W-1:0] - 1'b1);
    wire last_x = (x_q == IN_W[X_W-1:0] - 1'b1);
    wire last_y = (y_q == IN_H[Y_W-1:0] - 1'b1);
    wire last_beat = last_c && last_x && last_y;
    // The last beat has been written: the image waits for the controller.
    wire close = done_q && !wr_busy;

    always @(*) begin
        busy_d = busy_q;
        done_d = done_q;
        open_d = open_q;
        full_d = full_q;
        pad_d  = pad_q;
        drop_d = drop_q;
        err_d  = err_clear ? 2'b00 : err_q;
        c_d    = c_q;
        cf_d   = cf_q;
        y_d    = y_q;
        x_d    = x_q;
        if (fire) begin
            busy_d = 1'b1;
            if (last_c) begin
                c_d  = {N_W{1'b0}};
                cf_d = {MAP_AW{1'b0}};
                if (last_x) begin
                    x_d = {X_W{1'b0}};
                    if (last_y) begin
                        y_d    = {Y_W{1'b0}};
                        done_d = 1'b1;
                    end else begin
                        y_d = y_q + 1'b1;
                    end
                end else begin
                    x_d = x_q + 1'b1;
                end
            end else begin
                c_d  = c_q + 1'b1;
                cf_d = cf_q + IN_WPC[MAP_AW-1:0];
            end
            if (pad_q) begin
                if (last_beat) pad_d = 1'b0;
            end else if (s_axis_tlast && !last_beat) begin
                pad_d    = 1'b1;
                err_d[0] = 1'b1;
            end else if (!s_axis_tlast && last_beat) begin
                drop_d   = 1'b1;
                err_d[1] = 1'b1;
            end
        end else if (port_fire && drop_q && s_axis_tlast) begin
            drop_d = 1'b0;
        end
        if (close) begin
            done_d = 1'b0;
            open_d = 1'b0;
            full_d = 1'b1;
        end
        if (take) begin
            full_d = 1'b0;
            busy_d = 1'b0;
        end
        if (reopen) open_d = 1'b1;
    end

    always @(posedge clk) begin
        if (rst) begin
            busy_q <= 1'b0;
            done_q <= 1'b0;
            open_q <= 1'b1;
            full_q <= 1'b0;
            pad_q  <= 1'b0;
            drop_q <= 1'b0;
            err_q  <= 2'b00;
            c_q    <= {N_W{1'b0}};
            cf_q   <= {MAP_AW{1'b0}};
            y_q    <= {Y_W{1'b0}};
            x_q    <= {X_W{1'b0}};
        end else begin
            busy_q <= busy_d;
            done_q <= done_d;
            open_q <= open_d;
            full_q <= full_d;
            pad_q  <= pad_d;
            drop_q <= drop_d;
            err_q  <= err_d;
            c_q    <= c_d;
            cf_q   <= cf_d;
            y_q    <= y_d;
            x_q    <= x_d;
        end
    end
    assign full = full_q;
    assign busy = busy_q || pad_q;
    assign err  = err_q;

    // This pixel's index on the first layer's grid (back to 0 after the image's last).
    wire pix_step = fire && last_c;
    ccc_grid_index #(.Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W), .S_W(S_W)) u_grid (
        .clk(clk), .rst(rst),
        .clear(pix_step && last_x && last_y),
        .step(pix_step), .y(y_q), .x(x_q), .row_end(last_x),
        .smask(IN_SMASK[S_W-1:0]), .wo(IN_WO[PIX_W-1:0]), .cpix(cpix)
    );

    wire [MAP_AW-1:0]           map_index;
    wire [C-1:0]                map_valid;
    wire [C*LANE_W-1:0]         map_lane;
    wire [C*TAP_W-1:0]          map_dy, map_dx;
    wire [C*(A_W+LANE_W+1)-1:0] map_offset;

    ccc_wmap u_wmap (
        .index(map_index), .valid(map_valid), .lane(map_lane),
        .dy(map_dy), .dx(map_dx), .offset(map_offset)
    );

    ccc_writer #(
        .C(C), .ALPHA(ALPHA), .A_W(A_W), .Y_W(Y_W), .X_W(X_W), .PIX_W(PIX_W),
        .MAP_AW(MAP_AW), .LANE_W(LANE_W), .PH_W(WPC_W), .S_W(S_W), .LK_W(LK_W),
        .TAP_W(TAP_W), .SPLIT(SPLIT), .MODE(IN_MODE)
    ) u_writer (
        .clk(clk), .rst(rst), .req_valid(fire), .req_ready(wr_ready),
        .req_first(cf_q), .req_y(y_q), .req_x(x_q), .req_cpix(cpix),
        .req_val(beat),
        .req_phases(IN_WPC[WPC_W-1:0]), .req_h(IN_LH[Y_W-1:0]), .req_w(IN_LW[X_W-1:0]),
        .req_smask(IN_SMASK[S_W-1:0]), .req_lk(IN_LK[LK_W-1:0]), .req_la(IN_LA[LK_W-1:0]),
        .map_index(map_index), .map_valid(map_valid), .map_lane(map_lane),
        .map_dy(map_dy), .map_dx(map_dx), .map_offset(map_offset),
        .mem_we(mem_we), .mem_be(mem_be), .mem_waddr(mem_waddr), .mem_wdata(mem_wdata),
        .busy(wr_busy)
    );
endmodule

`default_nettype wire
