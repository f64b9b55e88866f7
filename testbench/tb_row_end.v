// Testbench for hw/ccc_row_end.v (driven by tests/rtl_primitives.rs).
// Reads VECTORS lines of: base shift clamp last psum0..psum7 (hex, two's complement)
// from +vectors=FILE and prints "acc act last" per case ("-" for a partial sum's act).
`timescale 1ns / 1ps
`default_nettype none

module tb_row_end;
    localparam integer PSUM_W = 14;
    localparam integer N_WORDS = 12;
    reg clk = 1'b0;
    reg rst = 1'b1;
    reg in_valid = 1'b0;
    reg [2:0] in_bit = 3'd0;
    reg signed [PSUM_W-1:0] psum = 0;
    reg signed [31:0] base = 0;
    reg last = 1'b0;
    reg signed [5:0] shift = 0;
    reg [7:0] clamp_max = 8'd0;
    wire acc_valid, acc_last, out_valid;
    wire signed [31:0] acc;
    wire [7:0] out_act;
    reg [31:0] mem [0:65535];
    reg [1023:0] path;
    integer n, i, b;
    // The accumulated sum of a last column block, waiting for its activation two cycles
    // later (the requantizer's window, then its clamp).
    reg pend = 1'b0, pend2 = 1'b0;
    reg signed [31:0] pend_acc, pend2_acc;

    ccc_row_end #(.PSUM_W(PSUM_W), .ACC_W(32)) dut (
        .clk(clk), .rst(rst), .in_valid(in_valid), .in_bit(in_bit), .psum(psum),
        .base(base), .last(last), .shift(shift), .clamp_max(clamp_max),
        .acc_valid(acc_valid), .acc_last(acc_last), .acc(acc), .out_valid(out_valid),
        .out_act(out_act)
    );

    always #5 clk = ~clk;

    // Per case "acc act last": a partial sum (last = 0) has no activation ("-"); an
    // activation must follow its sum by exactly two cycles.
    always @(posedge clk) begin
        if (out_valid != pend2) $display("ERR activation %0d two cycles after its sum", out_valid);
        if (out_valid) $display("%0d %0d 1", pend2_acc, out_act);
        pend <= acc_valid && acc_last;
        pend_acc <= acc;
        pend2 <= pend;
        pend2_acc <= pend_acc;
        if (acc_valid && !acc_last) $display("%0d - 0", acc);
    end

    initial begin
        if (!$value$plusargs("vectors=%s", path)) begin
            $display("FATAL missing +vectors=FILE");
            $finish;
        end
        if (!$value$plusargs("n=%d", n)) n = 0;
        $readmemh(path, mem, 0, n * N_WORDS - 1);
        @(posedge clk);
        @(posedge clk);
        rst <= 1'b0;
        for (i = 0; i < n; i = i + 1) begin
            for (b = 0; b < 8; b = b + 1) begin
                @(negedge clk);
                in_valid = 1'b1;
                in_bit = b[2:0];
                // base only matters with bit-plane 7; poison it elsewhere.
                base = (b == 7) ? mem[i * N_WORDS + 0] : 32'h5a5a5a5a;
                shift = mem[i * N_WORDS + 1][5:0];
                clamp_max = mem[i * N_WORDS + 2][7:0];
                last = mem[i * N_WORDS + 3][0];
                psum = mem[i * N_WORDS + 4 + b][PSUM_W-1:0];
            end
        end
        @(negedge clk);
        in_valid = 1'b0;
        repeat (6) @(posedge clk);
        $finish;
    end
endmodule

`default_nettype wire
