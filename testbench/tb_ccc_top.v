// tb_ccc_top — Icarus testbench for an emitted ccc_top (written into OUT/tb by ccc).
// Streams +images=N packets from +file=PATH (one hex byte per line, each image in
// y, x, channel order, tlast on each packet's last beat) and prints what ccc's
// comparison reads:
//   DBG <image> <layer> <channel> <pixel> <value>   every activation a layer produces
//                                                   (image: from the row end's 2-bit
//                                                   image number, counted on per row end)
//   OUT <image> <index> <value>                      logits, then the class index (each
//                                                   word as the output handshake takes it)
//   EV <cycle> <phase> <tile>                        whenever phase or running tile changes
//   DONE <image> <cycle>
//   ERR <cycle> <flags>                              whenever in_err changes
//   RESET <cycle>                                    the last cycle of a +rst_at pulse
//   READY_IN_RESET <cycle>                           s_axis_tready high while rst is
// Runs in OUT/rtl so the memory images load by name. Options (the Verilator driver,
// ccc_tb.cpp, reads the same ones):
//   +bytes=B        beats per packet (the image size), unless +lens=FILE gives each
//                   packet's length (hex, one per line): shorter or longer packets test
//                   the framing
//   +seed=S +in_gap=P +out_stall=P   drop s_axis_tvalid / m_axis_tready on P% of the
//                   cycles, at random (a raised tvalid stays up until taken)
//   +rst_at=C +rst_len=L +resume=K   raise rst for L cycles at cycle C, then stream
//                   again from packet K, counting images from 0
//   +clr_at=C       pulse in_err_clear at cycle C
//   +out_hold=C     keep m_axis_tready low until cycle C
//   +vcd=FILE       waveforms
//   +wload=FILE +wwords=N   write N weight-memory words through the load port (during
//                   reset, before the loader reads tile 0) instead of relying on
//                   the weight-memory images
`timescale 1ns / 1ps
`default_nettype none

module tb_ccc_top;
    reg clk = 1'b0;
    reg rst = 1'b1;
    reg [7:0] pixels [0:1048575];
    reg       lastbeat [0:1048575];
    reg [31:0] lens [0:65535];
    reg [`WM_W-1:0] wwords [0:65535];
    reg wl_en = 1'b0;
    reg [`WM_AW-1:0] wl_addr = 0;
    reg [`WM_W-1:0] wl_data = 0;
    integer n_wwords, wi;
    reg [1023:0] wpath;
    reg [1023:0] path;
    reg [1023:0] lpath;
    reg [1023:0] vcd;
    integer n_images, image_bytes, limit, total, pk, b;
    integer in_idx, out_img, out_idx;
    integer cycle;
    integer seed, in_gap, out_stall;
    integer rst_at, rst_len, resume, clr_at, out_hold;
    integer resume_idx;
    integer expect;
    reg started = 1'b0;
    reg gate_q = 1'b1;
    reg ready_q = 1'b1;
    reg err_clear = 1'b0;
    reg [1:0] last_err;
    reg [1:0] last_phase;
    integer last_tile;
    integer img_of [0:`NBR-1];

    wire s_ready, m_valid, m_last, busy, done;
    wire [1:0] in_err;
    wire [31:0] m_data;
    wire [`NBR-1:0] dbg_valid;
    wire [1:0] dbg_phase;
    wire [31:0] dbg_tile;
    wire [`NBR*`LAYER_W-1:0] dbg_layer;
    wire [`NBR*`N_W-1:0] dbg_ch;
    wire [`NBR*`PIX_W-1:0] dbg_pix;
    wire [`NBR*8-1:0] dbg_data;
    wire [`NBR*2-1:0] dbg_img;
    integer ri, img;
    wire s_valid = (in_idx < total) && gate_q && !rst;

    ccc_top dut (
        .clk(clk), .rst(rst),
        .s_axis_tvalid(s_valid), .s_axis_tready(s_ready), .s_axis_tdata(pixels[in_idx]),
        .s_axis_tlast(lastbeat[in_idx]), .in_err(in_err), .in_err_clear(err_clear),
        .m_axis_tvalid(m_valid), .m_axis_tready(ready_q), .m_axis_tdata(m_data),
        .m_axis_tlast(m_last), .busy(busy), .done(done),
        .wl_en(wl_en), .wl_addr(wl_addr), .wl_data(wl_data),
        .dbg_valid(dbg_valid), .dbg_layer(dbg_layer), .dbg_ch(dbg_ch),
        .dbg_pix(dbg_pix), .dbg_data(dbg_data), .dbg_img(dbg_img), .dbg_phase(dbg_phase),
        .dbg_tile(dbg_tile[`T_W-1:0])
    );
    assign dbg_tile[31:`T_W] = 0;

    always #5 clk = ~clk;

    // A reset pulse in the middle of the run: the accelerator must come back and compute
    // the packets streamed after it.
    always @(posedge clk) begin
        if (started && rst_len > 0 && cycle == rst_at) rst <= 1'b1;
        if (started && rst_len > 0 && cycle == rst_at + rst_len) begin
            rst <= 1'b0;
            $display("RESET %0d", cycle);
        end
        err_clear <= (cycle + 1 == clr_at);
    end

    always @(posedge clk) begin
        if (rst && s_ready) $display("READY_IN_RESET %0d", cycle);
        if (started) cycle <= cycle + 1;
        if (rst && started) begin
            // Inside the pulse: start again from packet `resume`, images counted anew.
            in_idx <= resume_idx;
            out_img <= 0;
            out_idx <= 0;
            for (ri = 0; ri < `NBR; ri = ri + 1) img_of[ri] = 0;
            gate_q <= 1'b1;
        end else if (!rst) begin
            if (s_valid && s_ready) in_idx <= in_idx + 1;
            // tvalid may drop only after its beat was taken (AXI-Stream).
            gate_q <= (s_valid && !s_ready) ? 1'b1 : (($random(seed) & 32'h7fffffff) % 100 >= in_gap);
            ready_q <= (($random(seed) & 32'h7fffffff) % 100 >= out_stall) && (cycle + 1 >= out_hold);
            for (ri = 0; ri < `NBR; ri = ri + 1) begin
                if (dbg_valid[ri]) begin
                    // Images advance by less than 4 between two outputs of one row end.
                    img = img_of[ri] + ((dbg_img[ri*2 +: 2] - img_of[ri]) & 3);
                    img_of[ri] = img;
                    $display("DBG %0d %0d %0d %0d %0d", img, dbg_layer[ri*`LAYER_W +: `LAYER_W],
                             dbg_ch[ri*`N_W +: `N_W], dbg_pix[ri*`PIX_W +: `PIX_W],
                             dbg_data[ri*8 +: 8]);
                end
            end
            if (dbg_phase != last_phase || dbg_tile != last_tile) begin
                $display("EV %0d %0d %0d", cycle, dbg_phase, dbg_tile);
                last_phase <= dbg_phase;
                last_tile <= dbg_tile;
            end
            if (in_err != last_err) begin
                $display("ERR %0d %0d", cycle, in_err);
                last_err <= in_err;
            end
            if (m_valid && ready_q) begin
                $display("OUT %0d %0d %0d", out_img, out_idx, $signed(m_data));
                out_idx <= m_last ? 0 : out_idx + 1;
            end
            if (done) begin
                $display("DONE %0d %0d", out_img, cycle);
                out_img <= out_img + 1;
                if (out_img + 1 == expect) $finish;
            end
            if (cycle > limit) begin
                $display("TIMEOUT %0d", cycle);
                $finish;
            end
        end
    end

    initial begin
        if (!$value$plusargs("file=%s", path)) begin
            $display("FATAL missing +file=PATH");
            $finish;
        end
        if (!$value$plusargs("images=%d", n_images)) n_images = 1;
        if (!$value$plusargs("bytes=%d", image_bytes)) image_bytes = 1;
        if (!$value$plusargs("limit=%d", limit)) limit = 100000000;
        if (!$value$plusargs("seed=%d", seed)) seed = 1;
        if (!$value$plusargs("in_gap=%d", in_gap)) in_gap = 0;
        if (!$value$plusargs("out_stall=%d", out_stall)) out_stall = 0;
        if (!$value$plusargs("rst_at=%d", rst_at)) rst_at = 0;
        if (!$value$plusargs("rst_len=%d", rst_len)) rst_len = 0;
        if (!$value$plusargs("resume=%d", resume)) resume = 0;
        if (!$value$plusargs("clr_at=%d", clr_at)) clr_at = -1;
        if (!$value$plusargs("out_hold=%d", out_hold)) out_hold = 0;
        ready_q = (out_hold == 0);
        if ($value$plusargs("vcd=%s", vcd)) begin
            $dumpfile(vcd);
            $dumpvars(0, tb_ccc_top);
        end
        if ($value$plusargs("lens=%s", lpath)) begin
            $readmemh(lpath, lens, 0, n_images - 1);
        end else begin
            for (pk = 0; pk < n_images; pk = pk + 1) lens[pk] = image_bytes;
        end
        total = 0;
        resume_idx = 0;
        for (pk = 0; pk < n_images; pk = pk + 1) begin
            if (pk == resume) resume_idx = total;
            for (b = 0; b < lens[pk]; b = b + 1) lastbeat[total + b] = (b == lens[pk] - 1);
            total = total + lens[pk];
        end
        lastbeat[total] = 1'b0;
        expect = (rst_len > 0) ? n_images - resume : n_images;
        $readmemh(path, pixels, 0, total - 1);
        in_idx = 0; out_img = 0; out_idx = 0; cycle = 0; last_phase = 2'd3; last_tile = -1;
        last_err = 2'd0;
        for (ri = 0; ri < `NBR; ri = ri + 1) img_of[ri] = 0;
        repeat (3) @(posedge clk);
        if ($value$plusargs("wload=%s", wpath)) begin
            if (!$value$plusargs("wwords=%d", n_wwords)) n_wwords = 0;
            $readmemh(wpath, wwords, 0, n_wwords - 1);
            for (wi = 0; wi < n_wwords; wi = wi + 1) begin
                @(negedge clk);
                wl_en = 1'b1;
                wl_addr = wi[`WM_AW-1:0];
                wl_data = wwords[wi];
            end
            @(negedge clk);
            wl_en = 1'b0;
        end
        rst <= 1'b0;
        started <= 1'b1;
    end
endmodule

`default_nettype wire
