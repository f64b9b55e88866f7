// ccc_sdp_ram — simple dual-port RAM (hand-written primitive of ccc): one write port
// with per-byte enables, one synchronous read port, in the pattern yosys infers as
// block RAM (iCE40 SB_RAM40_4K, ECP5 DP16KD). Contents start from INIT_FILE (hex) when
// given, else zero: the zero fill of shift-on-write relies on never-written words
// staying zero.
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
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    integer i;

    initial begin
        if (INIT_FILE != "") begin
            $readmemh(INIT_FILE, mem);
        end else begin
            for (i = 0; i < DEPTH; i = i + 1) mem[i] = {WIDTH{1'b0}};
        end
        rdata = {WIDTH{1'b0}};
    end

    genvar b;
    generate
        for (b = 0; b < BYTES; b = b + 1) begin : g_lane
            always @(posedge clk) begin
                if (we && wbe[b]) mem[waddr][b*LANE_W +: LANE_W] <= wdata[b*LANE_W +: LANE_W];
            end
        end
    endgenerate

    always @(posedge clk) begin
        if (re) rdata <= mem[raddr];
    end
endmodule
