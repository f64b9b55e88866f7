// ccc_sdp_ram — simple dual-port RAM (hand-written primitive of ccc): one write port
// with per-byte enables, one synchronous read port, in the pattern yosys infers as
// block RAM (iCE40 SB_RAM40_4K, ECP5 DP16KD). Contents start from INIT_FILE (hex) when
// given; otherwise nothing is assumed about them: the accelerator clears every memory it
// reads before writing (ccc_core's clear after reset), so a simulation may start them
// random (CCC_RANDOM_INIT, or Verilator's --x-initial unique) or X. CCC_ZERO_INIT starts
// them at zero, as an FPGA's block RAM without an image is after configuration (for
// comparing the RTL with a vendor netlist).
`default_nettype none

module ccc_sdp_ram #(
    parameter integer WIDTH     = 8,
    parameter integer BYTES     = 1,
    parameter integer DEPTH     = 16,
    parameter integer ADDR_W    = 4,
    parameter         INIT_FILE = ""
) (
    input  wire              clk,
    input  wire              we,
    input  wire [BYTES-1:0]  wbe,
    input  wire [ADDR_W-1:0] waddr,
    input  wire [WIDTH-1:0]  wdata,
    input  wire              re,
    input  wire [ADDR_W-1:0] raddr,
    output reg  [WIDTH-1:0]  rdata
);
    localparam integer LANE_W = WIDTH / BYTES;
    // Addresses may be wider than the depth needs (the core sizes them to its pixel
    // indices); every address the accelerator issues is below DEPTH, so only the bits
    // that index the array are decoded.
    localparam integer MEM_AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    wire [MEM_AW-1:0] wa = waddr[MEM_AW-1:0];
    wire [MEM_AW-1:0] ra = raddr[MEM_AW-1:0];
    generate
        if (ADDR_W > MEM_AW) begin : g_addr_hi
            wire unused_addr_hi = ^{waddr[ADDR_W-1:MEM_AW], raddr[ADDR_W-1:MEM_AW]};
        end
    endgenerate
    // No port of the accelerator reads a word in the cycle it is written (tap-buffer
    // regions are read and written by different layers, the input of the next image
    // enters only after the first layer has read the last one, a partial sum is read
    // before it is rewritten, weights load before they stream). Saying so spares yosys
    // the read-during-write bypass it would otherwise build around every block RAM
    // (on iCE40 ~150 flip-flops and ~15 LUTs for a 64-bit tap buffer).
    (* no_rw_check *)
    reg [WIDTH-1:0] mem [0:DEPTH-1];

`ifdef CCC_RANDOM_INIT
    integer i, j;
    reg [WIDTH+31:0] rnd;
`elsif CCC_ZERO_INIT
    integer i;
`endif
    initial begin
        if (INIT_FILE != "") begin
            $readmemh(INIT_FILE, mem);
        end
`ifdef CCC_RANDOM_INIT
        // What a RAM may hold at power-on: anything.
        else begin
            for (i = 0; i < DEPTH; i = i + 1) begin
                for (j = 0; j < WIDTH; j = j + 32) rnd[j +: 32] = $random;
                mem[i] = rnd[WIDTH-1:0];
            end
        end
        for (j = 0; j < WIDTH; j = j + 32) rnd[j +: 32] = $random;
        rdata = rnd[WIDTH-1:0];
`elsif CCC_ZERO_INIT
        else begin
            for (i = 0; i < DEPTH; i = i + 1) mem[i] = {WIDTH{1'b0}};
        end
        rdata = {WIDTH{1'b0}};
`endif
    end

    genvar b;
    generate
        for (b = 0; b < BYTES; b = b + 1) begin : g_lane
            always @(posedge clk) begin
                if (we && wbe[b]) mem[wa][b*LANE_W +: LANE_W] <= wdata[b*LANE_W +: LANE_W];
            end
        end
    endgenerate

    always @(posedge clk) begin
        if (re) rdata <= mem[ra];
    end
endmodule

`default_nettype wire
