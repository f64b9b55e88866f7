// ccc_skid — a registered ready/valid stage with a skid register (hand-written primitive
// of ccc).
//
// Cuts every combinational path between an AXI-Stream port and the logic behind it:
// `s_ready` is a flip-flop, and `m_valid`/`m_data` come from flip-flops. Full rate: while
// the output stalls, the one beat already accepted waits in the skid register, and
// `s_ready` drops only on the cycle after that. `s_ready` is 0 while reset is high (gated
// by it, not only reset by it) and rises on the first cycle after it. Only the valid bits and `s_ready` are reset; the
// data registers are qualified by them.
`default_nettype none

module ccc_skid #(
    parameter integer W = 8
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         s_valid,
    output wire         s_ready,
    input  wire [W-1:0] s_data,
    output wire         m_valid,
    input  wire         m_ready,
    output wire [W-1:0] m_data
);
    reg         ready_q;
    reg         out_valid_q;
    reg [W-1:0] out_data_q;
    reg         skid_valid_q;
    reg [W-1:0] skid_data_q;

    wire take    = s_valid && ready_q;
    wire advance = m_ready || !out_valid_q;

    always @(posedge clk) begin
        if (rst) begin
            ready_q      <= 1'b0;
            out_valid_q  <= 1'b0;
            skid_valid_q <= 1'b0;
        end else begin
            if (advance) begin
                out_valid_q  <= skid_valid_q || take;
                skid_valid_q <= 1'b0;
            end else if (take) begin
                skid_valid_q <= 1'b1;
            end
            // Ready next cycle unless the skid register holds a beat then.
            ready_q <= advance || !(skid_valid_q || take);
        end
    end

    always @(posedge clk) begin
        if (advance) out_data_q <= skid_valid_q ? skid_data_q : s_data;
        if (!advance && take) skid_data_q <= s_data;
    end

    assign s_ready = ready_q && !rst;
    assign m_valid = out_valid_q;
    assign m_data  = out_data_q;
endmodule
