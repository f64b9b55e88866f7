// ccc_classifier — global average pool and linear classifier (hand-written primitive
// of ccc).
//
// While the last layer runs, every activation it produces is added into its channel's
// pool sum. Several rows can finish on the same cycle, and channel ch is always computed
// by array row ch mod R, in row block ch / R (in either row-end bank); so each row keeps
// the sums of its own channels in a small memory of D = ceil(CH / R) words, addressed by
// the row block, which comes with each activation. The schedule never lets the two banks'
// row r finish on one cycle, so one read-modify-write per row and cycle needs no
// arbitration, and the memories map to LUT RAM (ECP5) or a few flip-flops per word. The
// adds are registered once on the way in, then read and written in two stages.
// A live bit per word stands in for clearing it: a word that has not been written since
// the last clear reads as 0, so reset and the end-of-image clear take one cycle.
//
// On `start`, it runs the head's NL linear layers one after another, one input per
// cycle into HP MAC lanes (HP outputs at a time, a block): layer 0 reads the pool sums (the 1/(H*W) factor is folded into its weights by
// the compiler), in order with counters rather than an indexed multiplexer over all CH
// sums, and then clears them for the next image (`pool_done`: the pool may take it now);
// a hidden layer (an MLP head) requantizes each output (rounding right shift, clamp) into
// one half of a small ping-pong memory that the next layer reads; the last layer, the
// classifier, computes logit[k] = bias[k] + sum_i w[k][i] * x[i], keeps the argmax
// (lowest index on ties) and streams the int32 logits in class order from a shift
// register, then the class index (with `out_last`). A layer starts once the one before
// has written its last output (a few cycles of drain), so no read meets a pending write.
// Per layer the table L_FILE gives {clamp, shift, outputs, inputs}; the weights and biases
// of all layers follow each other in W_FILE and B_FILE, one word per block and input (HP
// weights, lane 0 in the low byte) and one per block (HP biases), outputs past a layer's
// last padded with zeros. With HP > 1 a block's HP sums finish together and leave one per
// cycle from a shift register (the compiler keeps HP <= every layer's inputs, so a block
// has left before the next one finishes); with HP = 1 they go on directly. The array
// computes the next image meanwhile.
`default_nettype none

module ccc_classifier #(
    parameter integer CH      = 4,
    parameter integer R       = 4,
    parameter integer NB      = 1,
    parameter integer RB_W    = 2,
    parameter integer CLS     = 10,
    parameter integer CLS_W   = 4,
    parameter integer POOL_W  = 14,
    // Accumulator and logit width: the compiler's bound on every partial logit (<= 32,
    // > POOL_W + 8); logits leave sign-extended to 32 bits.
    parameter integer LOGIT_W = 32,
    // The head: NL linear layers (1: the classifier alone), counts up to 2^HN_W - 1,
    // hidden outputs up to 2^HD_W per layer, NW weights and NBS biases in all.
    parameter integer NL      = 1,
    // MAC lanes: a power of two.
    parameter integer HP      = 1,
    parameter integer HN_W    = 4,
    parameter integer HD_W    = 1,
    parameter integer NW      = CLS * CH,
    parameter integer NBS     = CLS,
    parameter integer CLS_IN  = CH,
    parameter         W_FILE  = "",
    parameter         B_FILE  = "",
    parameter         L_FILE  = ""
) (
    input  wire              clk,
    input  wire              rst,
    // one activation per row of each bank (bank-major): row r of row block add_blk holds
    // channel add_blk * R + r
    input  wire [NB*R-1:0]      add_valid,
    input  wire [NB*8*R-1:0]    add_val,
    input  wire [NB*RB_W*R-1:0] add_blk,
    input  wire              start,
    output wire              busy,
    output wire              pool_done,
    output reg               out_valid,
    input  wire              out_ready,
    output reg  [31:0]       out_data,
    output reg               out_last
);
    localparam integer NW_W   = (NW > 1) ? $clog2(NW) : 1;
    localparam integer NBS_W  = (NBS > 1) ? $clog2(NBS) : 1;
    localparam integer NL_W   = (NL > 1) ? $clog2(NL) : 1;
    // A layer table word: {clamp[7:0], shift[4:0], outputs, inputs}.
    localparam integer LT_W   = 13 + 2 * HN_W;
    localparam integer D      = (CH + R - 1) / R;
    localparam integer D_W    = (D > 1) ? $clog2(D) : 1;
    localparam [D-1:0] HOT1   = 1;
    localparam integer R_W    = (R > 1) ? $clog2(R) : 1;
    localparam integer HP_W   = (HP > 1) ? $clog2(HP) : 0;

    reg [8*HP-1:0]       w_rom [0:NW-1];
    reg [LOGIT_W*HP-1:0] b_rom [0:NBS-1];
    reg [LT_W-1:0]    l_rom [0:NL-1];
    reg               pool_clear_q;

    initial begin
        // Guarded so that tools elaborating the module alone (default parameters) work;
        // without a table, the one layer is CLS x CH.
        if (W_FILE != "") $readmemh(W_FILE, w_rom);
        if (B_FILE != "") $readmemh(B_FILE, b_rom);
        if (L_FILE != "") $readmemh(L_FILE, l_rom);
        else l_rom[0] = {13'd0, CLS[HN_W-1:0], CH[HN_W-1:0]};
    end

    localparam [1:0] S_IDLE = 2'd0, S_MAC = 2'd1, S_OUT = 2'd2, S_DRAIN = 2'd3;
    reg [1:0]        state_q;
    // k_q counts blocks (of HP outputs).
    reg [HN_W-1:0]   k_q;
    reg [HN_W-1:0]   ch_q;
    // The layer running and its table entry, registered when it starts: the loop's
    // compares are against these (nin_m2_q: inputs - 2, nout_m1_q: outputs - 1).
    reg [NL_W-1:0]   lyr_q;
    reg              lst_q, first_lyr_q, nin_one_q;
    // With one layer these are constants, so synthesis drops the hidden layers' logic.
    wire             in_first = (NL == 1) || first_lyr_q;
    wire             in_last  = (NL == 1) || lst_q;
    reg [HN_W-1:0]   nin_m2_q, nout_m1_q, nblk_m1_q;
    // With one layer the loop's bounds are constants too (as before MLP heads: no
    // register and no table read on the loop's compares).
    localparam integer CLS_M1 = CLS - 1;
    localparam integer CLS_B1 = (CLS - 1) / HP;
    localparam integer CH_M2  = (CH >= 2) ? CH - 2 : 0;
    wire [HN_W-1:0]  nout_m1 = (NL == 1) ? CLS_M1[HN_W-1:0] : nout_m1_q;
    wire [HN_W-1:0]  nblk_m1 = (NL == 1) ? CLS_B1[HN_W-1:0] : nblk_m1_q;
    wire [HN_W-1:0]  nin_m2  = (NL == 1) ? CH_M2[HN_W-1:0] : nin_m2_q;
    wire             nin_one = (NL == 1) ? (CH == 1) : nin_one_q;
    reg [4:0]        shift_q;
    reg [7:0]        clamp_q;
    reg [NBS_W-1:0]  bidx_q;
    // Set from `start` until layer 0 has read the pool (the pool's adds must wait).
    reg              pool_rd_q;
    reg [R_W-1:0]    rrow_q;
    reg [D_W-1:0]    rblk_q;
    reg [NW_W-1:0]   waddr_q;
    // The MAC pipeline, one stage per register: m0 the reads (the weight from block
    // RAM; each row's pool word into that row's own register, b_old_q, with the row
    // index beside), m1 the operands again, the pool word picked from the rows'
    // registers (so the LUT-RAM read and the row multiplexer are a cycle apart, and
    // neither meets the multiply), mp the product, m2 the product again and the bias,
    // m3 the sum, m4 the argmax (below). The multiplier has a register on each side and
    // its product a second one (ECP5 16x16 at 7146cfa, seed 3: the MULT18X18D placed
    // 47 rows from both its operand and product registers, 3.7 + 3.9 + 3.9 ns, was the
    // critical path); the stage adds a cycle to the MAC loop (CLS_MAC_EXTRA).
    // Only the valid bits are reset: every stage's data is qualified by them.
    reg              mac_valid_q, m1_valid_q, mp_valid_q, m2_valid_q, m3_valid_q;
    reg              mac_lastch_q, m1_last_q, mp_last_q, m2_last_q, m3_last_q;
    reg              mac_first_q, m1_first_q, mp_first_q, m2_first_q;
    reg [HN_W-1:0]   mac_k_q, m1_k_q, mp_k_q, m2_k_q, m3_k_q;
    reg [NBS_W-1:0]  mac_b_q, m1_b_q, mp_b_q;
    reg [8*HP-1:0]   mac_w_q;
    reg [R_W-1:0]    mac_row_q;
    // A hidden layer's input, read beside the weight (layer 0 reads the pool instead).
    reg [7:0]        mac_h_q;
    reg [POOL_W-1:0] m1_p_q;
    reg [LOGIT_W*HP-1:0] m2_bias_q;
    // Each lane's sum (lane l in bits [l*LOGIT_W +: LOGIT_W]).
    wire [LOGIT_W*HP-1:0] acc_all;
    // The finished outputs, one a cycle, in output order: d_k is the output's index.
    wire                     d_valid;
    wire [HN_W-1:0]          d_k;
    wire signed [LOGIT_W-1:0] d_val;
    reg [HN_W-1:0]   best_q;
    reg signed [LOGIT_W-1:0] best_val_q;
    reg [CLS_W:0]    out_i_q;
    reg              o_more_q, o_cls_q;
    // The argmax stage (m4): the compare of the finished logit (d_val) with the
    // best so far is registered, and the best is updated a cycle later from copies, so
    // the two 24-bit carry chains no longer drive best's clock enables (ECP5 16x16 at
    // 71ead9e: that was the critical path).
    reg              m4_valid_q, m4_take_q;
    reg [HN_W-1:0]   m4_k_q;
    reg signed [LOGIT_W-1:0] m4_val_q;
    wire signed [LOGIT_W-1:0] best_cmp;
    // Logits in class order, class 0 in the low word: each completed logit enters at the
    // top and every output takes the low word, both shifting one word down.
    reg  [LOGIT_W*CLS-1:0] logit_q;
    wire [LOGIT_W*CLS-1:0] logit_shifted;

    assign busy = (state_q != S_IDLE);
    assign pool_done = pool_clear_q;

    wire [POOL_W-1:0] row_sum [0:R-1];
    // Each row's word as read a cycle earlier (its b_old_q).
    wire [POOL_W-1:0] row_rd [0:R-1];

    // The MACs' pool word (rblk_q) as a next-state function, so that every row's read
    // address register can take it (ECP5 16x16 at 7eee6cd: the one rblk_q driving all
    // rows' read multiplexers was a 4.6 ns route on the critical path).
    reg [D_W-1:0] rblk_d;
    always @(posedge clk) begin
        if (rst) rblk_q <= {D_W{1'b0}};
        else rblk_q <= rblk_d;
    end
    // The loop's ends are flags updated with their counters (run_q: k < CLS, chl_q: the
    // last channel, rl_q: the last row), so rblk_d is a few gates over registers (ECP5
    // 16x16 at b34792c: k_q's compare, merged with the start logic, then rblk_d into the
    // rows' copies, was the critical path). The loop always ends on word 0, so rblk_q
    // is 0 whenever the classifier is idle and `start` need not clear it.
    reg run_q, chl_q, rl_q;
    localparam integer R_M2  = (R >= 2) ? R - 2 : 0;
    always @(*) begin
        rblk_d = rblk_q;
        if (state_q == S_MAC && run_q && in_first) begin
            if (chl_q) rblk_d = {D_W{1'b0}};
            else if (rl_q) rblk_d = rblk_q + 1'b1;
        end
    end
`ifndef SYNTHESIS
    always @(posedge clk) begin
        if (!rst && state_q == S_IDLE && rblk_q != {D_W{1'b0}})
            $fatal(1, "ccc_classifier: idle with pool word index %0d", rblk_q);
    end
`endif

    genvar gr;
    generate
        for (gr = 0; gr < R; gr = gr + 1) begin : g_row
            // This row's add from whichever bank has one (never both on one cycle).
            reg              a_valid_q;
            reg [7:0]        a_val_q;
            reg [D_W-1:0]    a_blk_q;
            integer          bk;
            // a_blk_q is the read port's address: the add's word, or the MACs' word
            // (rblk_d) when no add comes, chosen before the register, so that the
            // LUT-RAM read starts from a flip-flop (ECP5 16x16 at 792edb3, seed 3:
            // a_valid_q -> the address multiplexer -> the read -> the live mask was the
            // critical path).
            always @(posedge clk) begin
                a_valid_q <= 1'b0;
                a_blk_q   <= rblk_d;
                for (bk = 0; bk < NB; bk = bk + 1) begin
                    if (add_valid[bk*R + gr]) begin
                        a_valid_q <= !rst;
                        a_val_q   <= add_val[(bk*R + gr)*8 +: 8];
                        a_blk_q   <= add_blk[(bk*R + gr)*RB_W +: D_W];
                    end
                end
            end
            // The add is a read-modify-write in two stages: read the word (stage b),
            // write the sum a cycle later from registers, so the write port has no
            // multiplexer in front of it. A row's adds to one word come a pixel period
            // (>= 8 cycles) apart, so the write is always in before the next read of it.
            // The one read port serves the adds and the MACs, which never overlap (the
            // next image's last layer starts after the MACs have read the pool); its
            // address is chosen by a register, not by a state compare. Simulation checks
            // both premises. LUT RAM on ECP5, flip-flops on iCE40 (no LUT RAM there, and
            // iCE40 designs need every block RAM for the tap buffers).
`ifdef CCC_ICE40
            (* ram_style = "logic" *)
`else
            (* ram_style = "distributed" *)
`endif
            reg [POOL_W-1:0] sum_mem [0:D-1];
            reg [D-1:0]      live_q;
            reg              b_valid_q;
            reg [7:0]        b_val_q;
            reg [D_W-1:0]    b_blk_q;
            // b_blk_q decoded a stage early: marking the word live is then an OR of
            // registers (ECP5 16x16 at 2a55b09: the decode in front of live_q, a carry
            // chain and three LUT levels, was the critical path).
            reg [D-1:0]      b_hot_q;
            // The word as read and its live bit; the mask is applied after the register.
            reg [POOL_W-1:0] b_old_q;
            reg              b_live_q;
            wire [POOL_W-1:0] b_word = b_live_q ? b_old_q : {POOL_W{1'b0}};
            integer          m;
            initial begin
                // Only so that netlist simulators start from 0s rather than Xs: live_q
                // already masks every word that has not been written.
                for (m = 0; m < D; m = m + 1) sum_mem[m] = {POOL_W{1'b0}};
            end
            assign row_sum[gr] = sum_mem[a_blk_q];
            assign row_rd[gr] = b_word;
            always @(posedge clk) begin
                b_val_q  <= a_val_q;
                b_blk_q  <= a_blk_q;
                b_hot_q  <= HOT1 << a_blk_q;
                b_old_q  <= row_sum[gr];
                b_live_q <= live_q[a_blk_q];
                if (b_valid_q)
                    sum_mem[b_blk_q] <= b_word + {{(POOL_W - 8) {1'b0}}, b_val_q};
            end
            always @(posedge clk) begin
                if (rst || pool_clear_q) live_q <= {D{1'b0}};
                else if (b_valid_q) live_q <= live_q | b_hot_q;
                if (rst) b_valid_q <= 1'b0;
                else b_valid_q <= a_valid_q;
            end
`ifndef SYNTHESIS
            always @(posedge clk) begin
                if (!rst && a_valid_q && b_valid_q && a_blk_q == b_blk_q)
                    $fatal(1, "ccc_classifier: row %0d adds to pool word %0d on consecutive cycles", gr, a_blk_q);
                if (!rst && a_valid_q && pool_rd_q)
                    $fatal(1, "ccc_classifier: row %0d adds to the pool while the MACs read it", gr);
            end
`endif
        end
    endgenerate

    genvar gl;
    generate
        for (gl = 0; gl < HP; gl = gl + 1) begin : g_lane
            reg signed [7:0]         m1_w_q;
            reg signed [LOGIT_W-1:0] mp_prod_q, m2_prod_q, acc_q;
            wire signed [LOGIT_W-1:0] bias = m2_bias_q[gl*LOGIT_W +: LOGIT_W];
            wire signed [LOGIT_W-1:0] product =
                $signed({{(LOGIT_W - 8) {m1_w_q[7]}}, m1_w_q}) *
                $signed({{(LOGIT_W - POOL_W) {1'b0}}, m1_p_q});
            always @(posedge clk) begin
                m1_w_q    <= mac_w_q[gl*8 +: 8];
                mp_prod_q <= product;
                m2_prod_q <= mp_prod_q;
                if (m2_valid_q) acc_q <= (m2_first_q ? bias : acc_q) + m2_prod_q;
            end
            assign acc_all[gl*LOGIT_W +: LOGIT_W] = acc_q;
        end
    endgenerate

    // A block's sums are complete at m3. One lane: on as they are. Lanes: into a shift
    // register that hands one a cycle to the requantizer / argmax / logits, lane 0
    // first, until the layer's last output (lanes past it hold padding).
    generate
        if (HP == 1) begin : g_one_lane
            assign d_valid = m3_valid_q && m3_last_q;
            assign d_k     = m3_k_q;
            assign d_val   = acc_all;
        end else begin : g_lanes
            reg [LOGIT_W*HP-1:0] dq_q;
            reg [HN_W-1:0]       dk_q;
            reg [HP_W-1:0]       dl_q;
            reg                  dv_q;
            always @(posedge clk) begin
                if (m3_valid_q && m3_last_q) begin
                    dq_q <= acc_all;
                    dk_q <= m3_k_q << HP_W;
                end else begin
                    dq_q <= dq_q >> LOGIT_W;
                    dk_q <= dk_q + 1'b1;
                end
            end
            always @(posedge clk) begin
                if (rst) begin
                    dv_q <= 1'b0;
                    dl_q <= {HP_W{1'b0}};
                end else if (m3_valid_q && m3_last_q) begin
                    dv_q <= 1'b1;
                    dl_q <= {HP_W{1'b0}};
                end else if (dv_q) begin
                    dv_q <= (dl_q != {HP_W{1'b1}}) && (dk_q != nout_m1);
                    dl_q <= dl_q + 1'b1;
                end
            end
            assign d_valid = dv_q;
            assign d_k     = dk_q;
            assign d_val   = dq_q[LOGIT_W-1:0];
`ifndef SYNTHESIS
            always @(posedge clk) begin
                if (!rst && m3_valid_q && m3_last_q && dv_q && dk_q != nout_m1 &&
                    dl_q != {HP_W{1'b1}})
                    $fatal(1, "ccc_classifier: a block finished before the last one left");
            end
`endif
        end
    endgenerate

    always @(posedge clk) begin
        m1_p_q    <= in_first ? row_rd[mac_row_q] : {{(POOL_W - 8) {1'b0}}, mac_h_q};
        m1_b_q    <= mac_b_q;
        mp_b_q    <= m1_b_q;
        m1_first_q <= mac_first_q;
        m1_last_q <= mac_lastch_q;
        m1_k_q    <= mac_k_q;
        mp_first_q <= m1_first_q;
        mp_last_q <= m1_last_q;
        mp_k_q    <= m1_k_q;
        m2_bias_q <= b_rom[mp_b_q];
        m2_first_q <= mp_first_q;
        m2_last_q <= mp_last_q;
        m2_k_q    <= mp_k_q;
        m3_last_q <= m2_last_q;
        m3_k_q    <= m2_k_q;
        if (rst) begin
            m1_valid_q <= 1'b0;
            mp_valid_q <= 1'b0;
            m2_valid_q <= 1'b0;
            m3_valid_q <= 1'b0;
        end else begin
            m1_valid_q <= mac_valid_q;
            mp_valid_q <= m1_valid_q;
            m2_valid_q <= mp_valid_q;
            m3_valid_q <= m2_valid_q;
        end
    end

    // With one lane, logits finish CLS_IN cycles apart (the classifier's inputs), so for
    // CLS_IN >= 2 the best is updated before the next compare reads it; a single input, or
    // lanes (a block's logits leave on consecutive cycles), need the update forwarded.
    generate
        if (CLS_IN > 1 && HP == 1) begin : g_best_cmp
            assign best_cmp = best_val_q;
        end else begin : g_best_fwd
            assign best_cmp = (m4_valid_q && m4_take_q) ? m4_val_q : best_val_q;
        end
    endgenerate
    always @(posedge clk) begin
        m4_take_q <= (d_k == {HN_W{1'b0}}) || (d_val > best_cmp);
        m4_k_q    <= d_k;
        m4_val_q  <= d_val;
        if (rst) m4_valid_q <= 1'b0;
        else m4_valid_q <= d_valid && state_q == S_MAC && in_last;
        if (m4_valid_q && m4_take_q) begin
            best_q     <= m4_k_q;
            best_val_q <= m4_val_q;
        end
    end

    // A hidden layer's finished output (d_val): the rounding right shift by the
    // layer's shift and the clamp to 0..clamp, in two registered stages (h3: the
    // rounding add; h4: the shift, the compares and the clamp; ECP5 8x8 with 4 head
    // lanes at 7bb39da: the add, shift and compares in one cycle were the critical path,
    // 11.5 ns), then written into the half of the ping-pong memory this layer writes
    // (lyr_q[0]); the next layer reads the other half. The drain state waits for the last
    // write, so reads never race writes.
    wire signed [LOGIT_W:0] h_sum = {d_val[LOGIT_W-1], d_val} + rnd_q;
    reg signed [LOGIT_W:0]  h3_sum_q;
    wire signed [LOGIT_W:0] h_shr = h3_sum_q >>> shift_q;
    wire                    h_neg = h_shr[LOGIT_W];
    wire                    h_big = (h_shr[LOGIT_W-1:8] != {(LOGIT_W - 8) {1'b0}})
                                    || (h_shr[7:0] > clamp_q);
    reg signed [LOGIT_W:0]  rnd_q;
    reg                     h3_valid_q, h3_last_q, h4_valid_q, h4_last_q;
    reg [HD_W-1:0]          h3_k_q, h4_k_q;
    reg [7:0]               h4_val_q;
    reg [7:0]               h_mem [0:2**(HD_W+1)-1];
`ifdef CCC_RANDOM_INIT
    // Power-on contents for the tests that check no result depends on them (a layer
    // reads only what the one before wrote this image).
    integer hm;
    initial for (hm = 0; hm < 2**(HD_W+1); hm = hm + 1) h_mem[hm] = $random;
`endif
    always @(posedge clk) begin
        h3_sum_q  <= h_sum;
        h3_k_q    <= d_k[HD_W-1:0];
        h3_last_q <= (d_k == nout_m1);
        h4_val_q  <= h_neg ? 8'd0 : (h_big ? clamp_q : h_shr[7:0]);
        h4_k_q    <= h3_k_q;
        h4_last_q <= h3_last_q;
        if (rst) begin
            h3_valid_q <= 1'b0;
            h4_valid_q <= 1'b0;
        end else begin
            h3_valid_q <= d_valid && !in_last;
            h4_valid_q <= h3_valid_q;
        end
        if (h4_valid_q) h_mem[{lyr_q[0], h4_k_q}] <= h4_val_q;
    end

    // While the logits leave, the word shifted in at the top is never read.
    generate
        if (CLS > 1) begin : g_logit_shift
            assign logit_shifted = {d_val, logit_q[LOGIT_W*CLS-1:LOGIT_W]};
        end else begin : g_logit_one
            assign logit_shifted = d_val;
        end
    endgenerate

    // Layer n's table entry, taken into the loop's registers when it starts.
    wire [NL_W-1:0] lyr_n = lyr_q + 1'b1;
    wire [LT_W-1:0] lt = l_rom[state_q == S_IDLE ? {NL_W{1'b0}} : lyr_n];
    wire [HN_W-1:0] lt_nin  = lt[HN_W-1:0];
    wire [HN_W-1:0] lt_nout = lt[2*HN_W-1:HN_W];
    wire [4:0]      lt_shift = lt[2*HN_W+4:2*HN_W];
    wire [7:0]      lt_clamp = lt[2*HN_W+12:2*HN_W+5];
    // Starts layer lyr_n: counters to its first MAC, its table into the loop's registers.
    task begin_layer;
        begin
            lyr_q     <= (state_q == S_IDLE) ? {NL_W{1'b0}} : lyr_n;
            first_lyr_q <= (state_q == S_IDLE);
            lst_q     <= (state_q == S_IDLE) ? (NL == 1) : (lyr_n == NL[NL_W-1:0] - 1'b1);
            k_q       <= {HN_W{1'b0}};
            ch_q      <= {HN_W{1'b0}};
            rrow_q    <= {R_W{1'b0}};
            run_q     <= 1'b1;
            nin_one_q <= (lt_nin == {{(HN_W - 1) {1'b0}}, 1'b1});
            chl_q     <= (lt_nin == {{(HN_W - 1) {1'b0}}, 1'b1});
            rl_q      <= (R == 1);
            nin_m2_q  <= lt_nin - {{(HN_W - 2) {1'b0}}, 2'd2};
            nout_m1_q <= lt_nout - 1'b1;
            nblk_m1_q <= (lt_nout - 1'b1) >> HP_W;
            shift_q   <= lt_shift;
            clamp_q   <= lt_clamp;
            rnd_q     <= (lt_shift == 5'd0) ? {(LOGIT_W + 1) {1'b0}}
                                            : ({{LOGIT_W {1'b0}}, 1'b1} << (lt_shift - 1'b1));
        end
    endtask

    always @(posedge clk) begin
        if (rst) begin
            state_q      <= S_IDLE;
            k_q          <= {HN_W{1'b0}};
            ch_q         <= {HN_W{1'b0}};
            rrow_q       <= {R_W{1'b0}};
            waddr_q      <= {NW_W{1'b0}};
            bidx_q       <= {NBS_W{1'b0}};
            lyr_q        <= {NL_W{1'b0}};
            first_lyr_q  <= 1'b1;
            lst_q        <= 1'b0;
            pool_rd_q    <= 1'b0;
            run_q        <= 1'b0;
            chl_q        <= 1'b0;
            rl_q         <= 1'b0;
            o_more_q     <= 1'b0;
            o_cls_q      <= 1'b0;
            mac_valid_q  <= 1'b0;
            out_i_q      <= {(CLS_W + 1) {1'b0}};
            pool_clear_q <= 1'b0;
            out_valid    <= 1'b0;
            out_last     <= 1'b0;
        end else begin
            pool_clear_q <= 1'b0;
            mac_valid_q  <= 1'b0;
            case (state_q)
                S_IDLE: begin
                    if (start) begin
                        state_q   <= S_MAC;
                        waddr_q   <= {NW_W{1'b0}};
                        bidx_q    <= {NBS_W{1'b0}};
                        pool_rd_q <= 1'b1;
                        begin_layer;
                    end
                end
                S_MAC, S_DRAIN: begin
                    // Issue the read of (k, i); the MAC happens next cycle. In layer 0
                    // input i is word rblk_q of pool row rrow_q; w[k][i] is word waddr_q.
                    if (run_q) begin
                        mac_row_q    <= rrow_q;
                        mac_w_q      <= w_rom[waddr_q];
                        mac_h_q      <= h_mem[{!lyr_q[0], ch_q[HD_W-1:0]}];
                        mac_b_q      <= bidx_q;
                        waddr_q      <= waddr_q + 1'b1;
                        mac_valid_q  <= 1'b1;
                        mac_k_q      <= k_q;
                        mac_first_q  <= (ch_q == {HN_W{1'b0}});
                        mac_lastch_q <= chl_q;
                        if (chl_q) begin
                            ch_q   <= {HN_W{1'b0}};
                            rrow_q <= {R_W{1'b0}};
                            k_q    <= k_q + 1'b1;
                            bidx_q <= bidx_q + 1'b1;
                            run_q  <= (k_q != nblk_m1);
                            chl_q  <= nin_one;
                            rl_q   <= (R == 1);
                            if (k_q == nblk_m1 && !in_last) state_q <= S_DRAIN;
                        end else begin
                            ch_q  <= ch_q + 1'b1;
                            chl_q <= (ch_q == nin_m2);
                            if (rl_q) begin
                                rrow_q <= {R_W{1'b0}};
                                rl_q   <= (R == 1);
                            end else begin
                                rrow_q <= rrow_q + 1'b1;
                                rl_q   <= (rrow_q == R_M2[R_W-1:0]);
                            end
                        end
                    end
                    if (d_valid && in_last) logit_q <= logit_shifted;
                    // Layer 0's last block has read the pool: the pool is free.
                    if (m3_valid_q && m3_last_q && m3_k_q == nblk_m1 && in_first) begin
                        pool_clear_q <= 1'b1;
                        pool_rd_q    <= 1'b0;
                    end
                    // A hidden layer's last output is in the memory: the next layer.
                    if (state_q == S_DRAIN && h4_valid_q && h4_last_q) begin
                        state_q <= S_MAC;
                        begin_layer;
                    end
                    // The argmax (below) takes the finished logit a cycle later; it
                    // is read only after the CLS logit beats, so the output starts now.
                    if (d_valid && in_last) begin
                        if (d_k == nout_m1) begin
                            state_q      <= S_OUT;
                            out_i_q      <= {(CLS_W + 1) {1'b0}};
                            o_more_q     <= 1'b1;
                            o_cls_q      <= 1'b0;
                        end
                    end
                end
                default: begin  // S_OUT
                    // o_more_q: out_i_q <= CLS; o_cls_q: out_i_q == CLS (the class
                    // index's beat), both updated with out_i_q, so that the logits' shift
                    // enable (LOGIT_W * CLS flip-flops) meets no compare (ECP5 16x16 at
                    // b34792c, heap placer: out_i_q's compare in front of it).
                    if (!out_valid || out_ready) begin
                        if (o_more_q) begin
                            out_valid <= 1'b1;
                            out_data  <= o_cls_q
                                ? {{(32 - HN_W) {1'b0}}, best_q}
                                : {{(32 - LOGIT_W) {logit_q[LOGIT_W-1]}},
                                   logit_q[LOGIT_W-1:0]};
                            if (!o_cls_q) logit_q <= logit_shifted;
                            out_last  <= o_cls_q;
                            out_i_q   <= out_i_q + 1'b1;
                            o_cls_q   <= (out_i_q == CLS[CLS_W:0] - 1'b1);
                            o_more_q  <= !o_cls_q;
                        end else begin
                            out_valid <= 1'b0;
                            out_last  <= 1'b0;
                            state_q   <= S_IDLE;
                        end
                    end
                end
            endcase
        end
    end
endmodule

`default_nettype wire
