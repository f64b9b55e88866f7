// ccc_classifier — global average pool and linear classifier (hand-written primitive
// of ccc).
//
// While the last layer runs, every activation it produces is added into its channel's
// pool sum. Several rows can finish on the same cycle, so each channel has its own
// accumulator register, fed by the one array row that computes it (channel ch is row
// ch mod R of some row block). On `start`, it computes
// logit[k] = bias[k] + sum_ch w[k][ch] * pool[ch] with one MAC per cycle (the 1/(H*W)
// factor is folded into w by the compiler), clears the pool sums for the next image,
// keeps the argmax (lowest index on ties), and streams the int32 logits in class order,
// then the class index (with `out_last`).
module ccc_classifier #(
    parameter integer CH      = 4,
    parameter integer CH_W    = 2,
    parameter integer R       = 4,
    parameter integer N_W     = 4,
    parameter integer CLS     = 10,
    parameter integer CLS_W   = 4,
    parameter integer POOL_W  = 14,
    parameter         W_FILE  = "",
    parameter         B_FILE  = ""
) (
    input  wire              clk,
    input  wire              rst,
    // one activation per array row: row r holds channel add_row0 + r
    input  wire [R-1:0]      add_valid,
    input  wire [8*R-1:0]    add_val,
    input  wire [N_W-1:0]    add_row0,
    input  wire              start,
    output wire              busy,
    output reg               out_valid,
    input  wire              out_ready,
    output reg  [31:0]       out_data,
    output reg               out_last,
    output reg               done
);
    localparam integer NW = CLS * CH;
    // Counters are CLS_W bits wide so they can hold CLS itself; the per-class arrays are
    // indexed with only the bits a class number needs.
    localparam integer IDX_W = (CLS > 1) ? $clog2(CLS) : 1;

    reg signed [7:0]  w_rom [0:NW-1];
    reg signed [31:0] b_rom [0:CLS-1];
    wire [CH*POOL_W-1:0] pool_flat;
    reg               pool_clear_q;
    reg signed [31:0] logit_q [0:CLS-1];

    initial begin
        // Guarded so that tools elaborating the module alone (default parameters) work.
        if (W_FILE != "") $readmemh(W_FILE, w_rom);
        if (B_FILE != "") $readmemh(B_FILE, b_rom);
    end

    genvar gch;
    generate
        for (gch = 0; gch < CH; gch = gch + 1) begin : g_pool
            localparam integer ROW = gch % R;
            reg [POOL_W-1:0] sum_q;
            wire [N_W:0] chan = {1'b0, add_row0} + ROW[N_W:0];
            wire hit = add_valid[ROW] && (chan == gch[N_W:0]);
            always @(posedge clk) begin
                if (rst || pool_clear_q) sum_q <= {POOL_W{1'b0}};
                else if (hit) sum_q <= sum_q + {{(POOL_W - 8) {1'b0}}, add_val[ROW*8 +: 8]};
            end
            assign pool_flat[gch*POOL_W +: POOL_W] = sum_q;
        end
    endgenerate

    localparam [1:0] S_IDLE = 2'd0, S_MAC = 2'd1, S_OUT = 2'd2;
    reg [1:0]        state_q;
    reg [CLS_W-1:0]  k_q;
    reg [CH_W-1:0]   ch_q;
    reg              mac_valid_q;
    reg              mac_lastch_q;
    reg [CLS_W-1:0]  mac_k_q;
    reg [CH_W-1:0]   mac_ch_q;
    reg signed [7:0] mac_w_q;
    reg [POOL_W-1:0] pool_rd_q;
    reg signed [31:0] acc_q;
    reg [CLS_W-1:0]  best_q;
    reg [CLS_W:0]    out_i_q;

    assign busy = (state_q != S_IDLE);

    wire signed [31:0] product =
        $signed({{24{mac_w_q[7]}}, mac_w_q}) * $signed({{(32 - POOL_W) {1'b0}}, pool_rd_q});
    wire signed [31:0] acc_d = (mac_ch_q == {CH_W{1'b0}}) ? b_rom[mac_k_q[IDX_W-1:0]] + product
                                                         : acc_q + product;

    always @(posedge clk) begin
        if (rst) begin
            state_q      <= S_IDLE;
            k_q          <= {CLS_W{1'b0}};
            ch_q         <= {CH_W{1'b0}};
            mac_valid_q  <= 1'b0;
            mac_lastch_q <= 1'b0;
            mac_k_q      <= {CLS_W{1'b0}};
            mac_ch_q     <= {CH_W{1'b0}};
            mac_w_q      <= 8'sd0;
            pool_rd_q    <= {POOL_W{1'b0}};
            acc_q        <= 32'sd0;
            best_q       <= {CLS_W{1'b0}};
            out_i_q      <= {(CLS_W + 1) {1'b0}};
            pool_clear_q <= 1'b0;
            out_valid    <= 1'b0;
            out_data     <= 32'd0;
            out_last     <= 1'b0;
            done         <= 1'b0;
        end else begin
            done         <= 1'b0;
            pool_clear_q <= 1'b0;
            mac_valid_q  <= 1'b0;
            case (state_q)
                S_IDLE: begin
                    if (start) begin
                        state_q <= S_MAC;
                        k_q     <= {CLS_W{1'b0}};
                        ch_q    <= {CH_W{1'b0}};
                    end
                end
                S_MAC: begin
                    // Issue the read of (k, ch); the MAC happens next cycle.
                    if (k_q != CLS[CLS_W-1:0]) begin
                        pool_rd_q    <= pool_flat[ch_q*POOL_W +: POOL_W];
                        mac_w_q      <= w_rom[k_q * CH + {{(32 - CH_W) {1'b0}}, ch_q}];
                        mac_valid_q  <= 1'b1;
                        mac_k_q      <= k_q;
                        mac_ch_q     <= ch_q;
                        mac_lastch_q <= (ch_q == CH[CH_W-1:0] - 1'b1);
                        if (ch_q == CH[CH_W-1:0] - 1'b1) begin
                            ch_q <= {CH_W{1'b0}};
                            k_q  <= k_q + 1'b1;
                        end else begin
                            ch_q <= ch_q + 1'b1;
                        end
                    end
                    if (mac_valid_q) begin
                        acc_q <= acc_d;
                        if (mac_lastch_q) begin
                            logit_q[mac_k_q[IDX_W-1:0]] <= acc_d;
                            if (mac_k_q == {CLS_W{1'b0}} || acc_d > logit_q[best_q[IDX_W-1:0]]) best_q <= mac_k_q;
                            if (mac_k_q == CLS[CLS_W-1:0] - 1'b1) begin
                                state_q      <= S_OUT;
                                pool_clear_q <= 1'b1;
                                out_i_q <= {(CLS_W + 1) {1'b0}};
                            end
                        end
                    end
                end
                default: begin  // S_OUT
                    if (!out_valid || out_ready) begin
                        if (out_i_q <= CLS[CLS_W:0]) begin
                            out_valid <= 1'b1;
                            out_data  <= (out_i_q == CLS[CLS_W:0])
                                ? {{(32 - CLS_W) {1'b0}}, best_q}
                                : logit_q[out_i_q[IDX_W-1:0]];
                            out_last  <= (out_i_q == CLS[CLS_W:0]);
                            out_i_q   <= out_i_q + 1'b1;
                        end else begin
                            out_valid <= 1'b0;
                            out_last  <= 1'b0;
                            state_q   <= S_IDLE;
                            done      <= 1'b1;
                        end
                    end
                end
            endcase
        end
    end
endmodule
