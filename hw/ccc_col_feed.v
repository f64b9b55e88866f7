// ccc_col_feed — input streamer for one array column (hand-written primitive of ccc).
//
// Columns are chained: a pixel request (go, addr, amt, swap, cut, inbuf) enters a
// segment's first column from the controller and moves one column per cycle, which is
// exactly the systolic skew the array needs. On a request the column reads one word
// (ALPHA activation bytes: the taps of the group this column holds, all at the same
// pixel address thanks to shift-on-write) from its tap buffer, or from its input buffer
// when the request is the first layer's (`inbuf`), and serializes it LSB first:
// bit-plane b of the request issued at time t leaves on `act` at t + 3 + b. The word read
// goes straight into the shift register and the lane shifter works from there: a block
// RAM's clock-to-output time (5.8 ns on an ECP5 DP16KD without its output register, which
// yosys does not map) then meets only the load multiplexer, not the lane shifter as well,
// for one cycle of latency and no extra flip-flops. `act_swap`
// is set one cycle ahead of bit-plane 0 of a tile's first pixel, at t + 2: the cells
// copy their shadow weights to the active registers on that edge, so the new weights are
// in place for bit-plane 0 without a shadow bypass in every cell's datapath
// (docs/MX_CELL.md). `act_cut` comes with the bit-planes of a request of a two-segment
// tile: at the segment boundary column it starts the partial sums from zero. Outside
// those 8 cycles `act` is 0, which adds nothing in the array.
// A layer with alpha < ALPHA packs several pixels in a word: lanes amt .. amt + alpha - 1
// hold this pixel's taps, and the bit-planes are shifted down by `amt` lanes so that the
// cells' selectors (0 .. alpha - 1) find them; the lanes above carry other pixels' bits,
// which no cell of that layer selects.
`default_nettype none

module ccc_col_feed #(
    parameter integer ALPHA  = 8,
    parameter integer ADDR_W = 10,
    parameter integer LANE_W = 3
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  go_in,
    input  wire [ADDR_W-1:0]     addr_in,
    input  wire [LANE_W-1:0]     amt_in,
    input  wire                  swap_in,
    input  wire                  cut_in,
    input  wire                  inbuf_in,
    output reg                   go_out,
    output reg  [ADDR_W-1:0]     addr_out,
    output reg  [LANE_W-1:0]     amt_out,
    output reg                   swap_out,
    output reg                   cut_out,
    output reg                   inbuf_out,
    // the column's tap buffer and input buffer (read ports)
    output wire                  mem_re,
    output wire                  in_re,
    output wire [ADDR_W-1:0]     mem_raddr,
    input  wire [ALPHA*8-1:0]    mem_rdata,
    input  wire [ALPHA*8-1:0]    in_rdata,
    output reg  [ALPHA-1:0]      act,
    output reg                   act_swap,
    output reg                   act_cut
);
    reg              load_q;
    reg              emit_q;
    reg              swap_q;
    reg              inbuf_q;
    reg              cut_rd_q;
    reg [ALPHA*8-1:0] shreg_q;
    reg [2:0]        left_q;
    reg              busy_q;
    reg [LANE_W-1:0] amt_rd_q;
    reg [LANE_W-1:0] amt_q;
    reg              cut_q;
    wire [ALPHA*8-1:0] rdata = inbuf_q ? in_rdata : mem_rdata;
    wire [ALPHA-1:0] sh_lsb;
    genvar gj;
    generate
        for (gj = 0; gj < ALPHA; gj = gj + 1) begin : g_lsb
            assign sh_lsb[gj] = shreg_q[8*gj];
        end
    endgenerate

    assign mem_re    = go_in && !inbuf_in;
    assign in_re     = go_in && inbuf_in;
    assign mem_raddr = addr_in;

    // The request chain and the 8-cycle sequencer are control (reset); the shift register
    // and the bits it drives out are data. The word of request t enters the shift register
    // at the end of t + 1 (load_q); bit-planes 0..7 go out from t + 2 (emit_q) on. A word
    // of the next request (8 cycles later) loads on the edge where bit-plane 7 leaves.
    integer j;
    always @(posedge clk) begin
        addr_out <= addr_in;
        amt_out  <= amt_in;
        amt_rd_q <= amt_in;
        inbuf_q  <= inbuf_in;
        cut_rd_q <= cut_in;
        if (load_q) begin
            amt_q   <= amt_rd_q;
            cut_q   <= cut_rd_q;
            shreg_q <= rdata;
        end else begin
            for (j = 0; j < ALPHA; j = j + 1) begin
                shreg_q[8*j +: 8] <= {1'b0, shreg_q[8*j+1 +: 7]};
            end
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            go_out    <= 1'b0;
            swap_out  <= 1'b0;
            cut_out   <= 1'b0;
            inbuf_out <= 1'b0;
            load_q    <= 1'b0;
            emit_q    <= 1'b0;
            swap_q    <= 1'b0;
            left_q    <= 3'd0;
            busy_q    <= 1'b0;
            act       <= {ALPHA{1'b0}};
            act_swap  <= 1'b0;
            act_cut   <= 1'b0;
        end else begin
            go_out    <= go_in;
            swap_out  <= swap_in;
            cut_out   <= cut_in;
            inbuf_out <= inbuf_in;
            load_q    <= go_in;
            emit_q    <= load_q;
            swap_q    <= go_in & swap_in;
            act_swap  <= swap_q;
            if (emit_q) begin
                act      <= sh_lsb >> amt_q;
                act_cut  <= cut_q;
                left_q   <= 3'd7;
                busy_q   <= 1'b1;
            end else if (busy_q) begin
                act     <= sh_lsb >> amt_q;
                left_q  <= left_q - 3'd1;
                busy_q  <= (left_q != 3'd1);
                act_cut <= cut_q;
            end else begin
                act     <= {ALPHA{1'b0}};
                act_cut <= 1'b0;
            end
        end
    end
endmodule

`default_nettype wire
