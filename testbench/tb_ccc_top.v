// tb_ccc_top — Icarus testbench for an emitted ccc_top (written into OUT/tb by ccc).
// Streams +images=N images from +file=PATH (one hex byte per line, each image in
// y, x, channel order), with the input and output streams always ready/valid, and
// prints what ccc's comparison reads:
//   DBG <image> <layer> <channel> <pixel> <value>   every activation a layer produces
//                                                   (image: from the row end's 2-bit
//                                                   image number, counted on per row end)
//   OUT <image> <index> <value>                      logits, then the class index
//   EV <cycle> <phase> <tile>                        whenever phase or running tile changes
//   DONE <image> <cycle>
// Runs in OUT/rtl so the memory images load by name. +vcd=FILE dumps waveforms.
// +wload=FILE +wwords=N writes N weight-memory words through the load port (during
// reset, before the loader reads tile 0) instead of relying on weights.hex.
`timescale 1ns / 1ps
`default_nettype none

module tb_ccc_top;
    reg clk = 1'b0;
    reg rst = 1'b1;
    reg [7:0] pixels [0:1048575];
    reg [`WM_W-1:0] wwords [0:65535];
    reg wl_en = 1'b0;
    reg [`WM_AW-1:0] wl_addr = 0;
    reg [`WM_W-1:0] wl_data = 0;
    integer n_wwords, wi;
    reg [1023:0] wpath;
    reg [1023:0] path;
    reg [1023:0] vcd;
    integer n_images, image_bytes, limit;
    integer in_idx, out_img, out_idx;
    integer cycle;
    reg [1:0] last_phase;
    integer last_tile;
    integer img_of [0:`NBR-1];

    wire s_ready, m_valid, m_last, busy, done;
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
    wire s_valid = (in_idx < n_images * image_bytes);

    ccc_top dut (
        .clk(clk), .rst(rst),
        .s_axis_tvalid(s_valid), .s_axis_tready(s_ready), .s_axis_tdata(pixels[in_idx]),
        .m_axis_tvalid(m_valid), .m_axis_tready(1'b1), .m_axis_tdata(m_data),
        .m_axis_tlast(m_last), .busy(busy), .done(done),
        .wl_en(wl_en), .wl_addr(wl_addr), .wl_data(wl_data),
        .dbg_valid(dbg_valid), .dbg_layer(dbg_layer), .dbg_ch(dbg_ch),
        .dbg_pix(dbg_pix), .dbg_data(dbg_data), .dbg_img(dbg_img), .dbg_phase(dbg_phase),
        .dbg_tile(dbg_tile[`T_W-1:0])
    );
    assign dbg_tile[31:`T_W] = 0;

    always #5 clk = ~clk;

    always @(posedge clk) begin
        if (!rst) begin
            cycle <= cycle + 1;
            if (s_valid && s_ready) in_idx <= in_idx + 1;
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
            if (m_valid) begin
                $display("OUT %0d %0d %0d", out_img, out_idx, $signed(m_data));
                out_idx <= m_last ? 0 : out_idx + 1;
            end
            if (done) begin
                $display("DONE %0d %0d", out_img, cycle);
                out_img <= out_img + 1;
                if (out_img + 1 == n_images) $finish;
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
        if ($value$plusargs("vcd=%s", vcd)) begin
            $dumpfile(vcd);
            $dumpvars(0, tb_ccc_top);
        end
        $readmemh(path, pixels, 0, n_images * image_bytes - 1);
        in_idx = 0; out_img = 0; out_idx = 0; cycle = 0; last_phase = 2'd3; last_tile = -1;
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
    end
endmodule

`default_nettype wire
