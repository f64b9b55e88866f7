// ccc_logits — the logits of a head run on the array: argmax and output stream
// (hand-written primitive of ccc).
//
// With the head's linear layers on the array (ccc compile --head-on-array) the last
// layer's row ends deliver the classifier's int32 accumulators themselves, one per row
// and bank as each row finishes: row r of row block `blk` holds class blk * R + r. Each
// class has a register, written by the one row that computes it (in either bank). On
// `start` (the last layer's tiles have ended) the logits move into the output shift
// register, which frees the class registers for the next image at once (`pool_done`),
// and leave in class order, one per accepted beat, then the class index with
// `out_last`. The argmax (lowest index on ties) is taken from each logit as it leaves,
// so the class index is ready the beat after the last logit. This replaces
// ccc_classifier (pool, MAC lanes) in such designs.
`default_nettype none

module ccc_logits #(
    parameter integer R     = 4,
    parameter integer NB    = 1,
    parameter integer RB_W  = 2,
    parameter integer CLS   = 10,
    parameter integer CLS_W = 4,
    // accumulator width of the row ends (<= 32); logits leave sign-extended to 32 bits
    parameter integer ACC_W = 32
) (
    input  wire                  clk,
    input  wire                  rst,
    // one accumulator per row of each bank (bank-major), with its row block
    input  wire [NB*R-1:0]       lg_valid,
    input  wire [NB*ACC_W*R-1:0] lg_val,
    input  wire [NB*RB_W*R-1:0]  lg_blk,
    input  wire                  start,
    output wire                  busy,
    output wire                  pool_done,
    output reg                   out_valid,
    input  wire                  out_ready,
    output reg  [31:0]           out_data,
    output reg                   out_last
);
    reg [ACC_W-1:0] cls_q [0:CLS-1];
    reg [ACC_W-1:0] sh_q  [0:CLS-1];
    reg             out_q;
    reg             done_q;
    reg [CLS_W:0]   out_i_q;
    reg             o_cls_q;
    reg [CLS_W-1:0] best_q;
    reg signed [ACC_W-1:0] best_val_q;

    // Class k's register: row k mod R of row block k / R, in whichever bank ran it.
    genvar gk, gb;
    generate
        for (gk = 0; gk < CLS; gk = gk + 1) begin : g_cls
            localparam integer ROW = gk % R;
            localparam integer BLK = gk / R;
            wire [NB-1:0]       hit;
            wire [ACC_W-1:0]    val;
            wire [NB*ACC_W-1:0] pick;
            for (gb = 0; gb < NB; gb = gb + 1) begin : g_bank
                localparam integer I = gb * R + ROW;
                assign hit[gb] = lg_valid[I] && (lg_blk[I*RB_W +: RB_W] == BLK[RB_W-1:0]);
                assign pick[gb*ACC_W +: ACC_W] = hit[gb] ? lg_val[I*ACC_W +: ACC_W]
                                                         : {ACC_W{1'b0}};
            end
            // At most one bank finishes a row block's row on a cycle: OR is the select.
            if (NB == 1) begin : g_one
                assign val = pick;
            end else begin : g_two
                assign val = pick[0 +: ACC_W] | pick[ACC_W +: ACC_W];
            end
            always @(posedge clk) begin
                if (|hit) cls_q[gk] <= val;
            end
        end
    endgenerate

    wire signed [ACC_W-1:0] head = sh_q[0];
    assign busy      = out_q;
    assign pool_done = done_q;

    integer k;
    always @(posedge clk) begin
        if (start && !out_q) begin
            for (k = 0; k < CLS; k = k + 1) sh_q[k] <= cls_q[k];
        end else if (out_q && !o_cls_q && (!out_valid || out_ready)) begin
            for (k = 0; k + 1 < CLS; k = k + 1) sh_q[k] <= sh_q[k + 1];
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            out_q      <= 1'b0;
            done_q     <= 1'b0;
            out_i_q    <= {(CLS_W + 1) {1'b0}};
            o_cls_q    <= 1'b0;
            out_valid  <= 1'b0;
            out_last   <= 1'b0;
        end else begin
            done_q <= 1'b0;
            if (!out_q) begin
                if (start) begin
                    out_q   <= 1'b1;
                    done_q  <= 1'b1;
                    out_i_q <= {(CLS_W + 1) {1'b0}};
                    o_cls_q <= 1'b0;
                end
            end else if (!out_valid || out_ready) begin
                if (o_cls_q && out_last) begin
                    // The class index has been taken.
                    out_valid <= 1'b0;
                    out_last  <= 1'b0;
                    out_q     <= 1'b0;
                end else begin
                    out_valid <= 1'b1;
                    out_data  <= o_cls_q ? {{(32 - CLS_W) {1'b0}}, best_q}
                                         : {{(32 - ACC_W) {head[ACC_W-1]}}, head};
                    out_last  <= o_cls_q;
                    out_i_q   <= out_i_q + 1'b1;
                    o_cls_q   <= o_cls_q || (out_i_q == CLS[CLS_W:0] - 1'b1);
                end
            end
        end
    end

    // The argmax over the logits as they leave (data, no reset: the first logit sets it).
    always @(posedge clk) begin
        if (out_q && !o_cls_q && (!out_valid || out_ready)) begin
            if (out_i_q == {(CLS_W + 1) {1'b0}} || head > best_val_q) begin
                best_q     <= out_i_q[CLS_W-1:0];
                best_val_q <= head;
            end
        end
    end
endmodule

`default_nettype wire
