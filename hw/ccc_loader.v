// ccc_loader — the weight memory and its loader (hand-written primitive of ccc).
//
// The weight memory holds one word per array row and tile ({write target, bias,
// columns' {weight, selector}}, WORD_W bits), tile t at words t*R .. t*R + R - 1, bottom
// row first; it starts from the images WM_FILE_bNN.hex (one per bank of BANK_DEPTH
// words) and can be rewritten through the load port (wl_*).
// A load reads a tile's R words, one per cycle: `ld_en` follows each read by two cycles
// (the read latency), so the array's shadow chains and the row units' bias/target chains
// shift in the words as they arrive. `loaded` rises after the last word and says which
// tile the shadow registers now hold (`ld_tile`); `consume` (the controller swapping to
// it) clears it. The first load (tile 0) starts by itself after reset; later ones start
// on `go` with the tile to fetch.
`default_nettype none

module ccc_loader #(
    parameter integer R      = 4,
    parameter integer NT     = 1,
    parameter integer T_W    = 1,
    parameter integer WM_AW  = 4,
    parameter integer WORD_W = 8,
    parameter         WM_FILE = "",
    // Words per bank, a power of two (the address's high bits pick the bank).
    parameter integer BANK_DEPTH = 512
) (
    input  wire              clk,
    input  wire              rst,
    // load port
    input  wire              wl_en,
    input  wire [WM_AW-1:0]  wl_addr,
    input  wire [WORD_W-1:0] wl_data,
    // start a load of tile `go_tile` (ignored while one runs)
    input  wire              go,
    input  wire [T_W-1:0]    go_tile,
    // the controller has taken the loaded tile
    input  wire              consume,
    output wire              ld_busy,
    output wire              ld_en,
    // ld_en a cycle early, for callers that replicate it over two register levels
    output wire              ld_pre,
    output wire [WORD_W-1:0] ld_word,
    output wire              loaded,
    output wire [T_W-1:0]    ld_tile
);
    reg              busy_q, busy_d;
    reg [T_W-1:0]    tile_q, tile_d;
    reg [WM_AW-1:0]  addr_q, addr_d;
    reg [15:0]       left_q, left_d;
    reg              rd_q, rd2_q;
    reg              loaded_q, loaded_d;
    // Tile 0 is fetched once after reset without being asked for.
    reg              need_q, need_d;

    wire start = !busy_q && (need_q || go);
    wire [T_W-1:0] start_tile = need_q ? {T_W{1'b0}} : go_tile;

    always @(*) begin
        busy_d   = busy_q;
        tile_d   = tile_q;
        addr_d   = addr_q;
        left_d   = left_q;
        need_d   = need_q;
        loaded_d = loaded_q;
        if (start) begin
            busy_d   = 1'b1;
            need_d   = 1'b0;
            tile_d   = start_tile;
            addr_d   = start_tile * R[WM_AW-1:0];
            left_d   = R[15:0];
            loaded_d = 1'b0;
        end else if (busy_q) begin
            addr_d = addr_q + 1'b1;
            left_d = left_q - 1'b1;
            if (left_q == 16'd1) busy_d = 1'b0;
        end
        // The last word has arrived (its read was two cycles ago); taking it wins.
        if (rd2_q && !rd_q) loaded_d = 1'b1;
        if (consume) loaded_d = 1'b0;
    end

    always @(posedge clk) begin
        if (rst) begin
            busy_q   <= 1'b0;
            tile_q   <= {T_W{1'b0}};
            addr_q   <= {WM_AW{1'b0}};
            left_q   <= 16'd0;
            rd_q     <= 1'b0;
            loaded_q <= 1'b0;
            need_q   <= 1'b1;
        end else begin
            busy_q   <= busy_d;
            tile_q   <= tile_d;
            addr_q   <= addr_d;
            left_q   <= left_d;
            rd_q     <= busy_q;
            loaded_q <= loaded_d;
            need_q   <= need_d;
        end
    end

    // The memory is cut into banks of BANK_DEPTH words, each read into its own register
    // before the multiplexer that joins them: a block RAM's clock-to-out plus the route
    // to a multiplexer spanning several of them was the critical path (ECP5, 16x16). A
    // single bank needs no multiplexer; its read address is registered instead, so that
    // the read latency (2) is the same for every depth.
    localparam integer BANKS  = (NT * R + BANK_DEPTH - 1) / BANK_DEPTH;
    // Bank b starts from the image WM_FILE + "_bNN.hex" (NN = b, two digits), as the
    // compiler writes them; no image when WM_FILE is empty.
    localparam integer BANK_AW = (BANKS > 1) ? $clog2(BANK_DEPTH) : WM_AW;
    localparam integer SEL_W  = (BANKS > 1) ? $clog2(BANKS) : 1;
    always @(posedge clk) begin
        if (rst) rd2_q <= 1'b0;
        else rd2_q <= rd_q;
    end
    generate
        if (BANKS == 1) begin : g_one
            reg             re_q;
            reg [WM_AW-1:0] raddr_q;
            always @(posedge clk) begin
                re_q    <= busy_q;
                raddr_q <= addr_q;
            end
            ccc_sdp_ram #(
                .WIDTH(WORD_W), .BYTES(1), .DEPTH(NT * R), .ADDR_W(WM_AW),
                .INIT_FILE((WM_FILE == "") ? "" : {WM_FILE, "_b00.hex"})
            ) u_wmem (
                .clk(clk), .we(wl_en), .wbe(1'b1), .waddr(wl_addr), .wdata(wl_data),
                .re(re_q), .raddr(raddr_q), .rdata(ld_word)
            );
        end else begin : g_banks
            wire [BANKS*WORD_W-1:0] bank_rdata;
            reg  [BANKS*WORD_W-1:0] bank_q;
            reg  [SEL_W-1:0]        sel_q;
            wire [SEL_W-1:0]        rsel = addr_q[WM_AW-1:BANK_AW];
            wire [SEL_W-1:0]        wsel = wl_addr[WM_AW-1:BANK_AW];
            genvar gb;
            for (gb = 0; gb < BANKS; gb = gb + 1) begin : g_bank
                localparam integer DEPTH_B =
                    (gb == BANKS - 1) ? NT * R - gb * BANK_DEPTH : BANK_DEPTH;
                localparam [7:0] TENS = 8'd48 + gb / 10;
                localparam [7:0] ONES = 8'd48 + gb % 10;
                ccc_sdp_ram #(
                    .WIDTH(WORD_W), .BYTES(1), .DEPTH(DEPTH_B), .ADDR_W(BANK_AW),
                    .INIT_FILE((WM_FILE == "") ? "" : {WM_FILE, "_b", TENS, ONES, ".hex"})
                ) u_wmem (
                    .clk(clk), .we(wl_en && wsel == gb[SEL_W-1:0]), .wbe(1'b1),
                    .waddr(wl_addr[BANK_AW-1:0]), .wdata(wl_data),
                    .re(busy_q && rsel == gb[SEL_W-1:0]), .raddr(addr_q[BANK_AW-1:0]),
                    .rdata(bank_rdata[gb*WORD_W +: WORD_W])
                );
            end
            // The bank select as an AND-OR over whole words with a registered one-hot
            // select. Written as an indexed part-select (bank_q[sel*WORD_W +: WORD_W]),
            // yosys 0.23 lowers it to a shifter over all BANKS*WORD_W bits for some word
            // widths: 13 507 LUT4 for this module on ECP5 at 7 banks of 138-bit words.
            reg [BANKS-1:0]  oh_q;
            reg [WORD_W-1:0] word_mux;
            integer b;
            always @(posedge clk) begin
                bank_q <= bank_rdata;
                sel_q  <= rsel;
                for (b = 0; b < BANKS; b = b + 1) oh_q[b] <= (sel_q == b[SEL_W-1:0]);
            end
            always @(*) begin
                word_mux = {WORD_W{1'b0}};
                for (b = 0; b < BANKS; b = b + 1) begin
                    word_mux = word_mux | (bank_q[b*WORD_W +: WORD_W] & {WORD_W{oh_q[b]}});
                end
            end
            assign ld_word = word_mux;
        end
    endgenerate

    assign ld_busy = busy_q;
    assign ld_en   = rd2_q;
    assign ld_pre  = rd_q;
    assign loaded  = loaded_q;
    assign ld_tile = tile_q;
endmodule

`default_nettype wire
