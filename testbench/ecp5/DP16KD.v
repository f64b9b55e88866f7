// DP16KD: behavioural simulation model of the Lattice ECP5 16 Kbit block RAM, written for
// ccc to simulate yosys `synth_ecp5` netlists (`ccc simulate OUT --netlist ecp5`).
//
// yosys (0.23 through 0.70) ships DP16KD in share/yosys/ecp5/cells_sim.v as an empty
// module, so a netlist simulated with it reads zeros from every block RAM. This model
// replaces it. It follows how yosys maps memories onto DP16KD (ecp5/brams.txt and
// brams_map.v, and memory_libmap's INIT packing), checked against yosys's own memory
// semantics by tests/ecp5_bram.rs; it is not Lattice's vendor model, so it checks the
// synthesis, not the silicon.
//
// Storage: 1024 words of 18 bits (two 9-bit bytes). INITVAL_xx slot i (bits i*20 +: 18)
// is word xx*16+i. Per port, by DATA_WIDTH:
//   36  word pair 2w (low half: DIA/DOA) and 2w+1 (high half: DIB/DOB), w = AD[13:5];
//       byte enables AD[3:0] for bits [8:0], [17:9], [26:18], [35:27]. Only as yosys
//       uses it (pseudo-dual-port): port A writes, port B reads.
//   18  word AD[13:4]; byte enables AD[1:0] for bits [8:0] and [17:9].
//   9   word AD[13:4], byte AD[3].
//   4, 2, 1  word AD[13:4], byte AD[3], then the 8 data bits of the byte (the ninth is
//       not addressable): nibble AD[2], pair AD[2:1], bit AD[2:0].
// Per port: CE gates reads and writes; CS pins must equal CSDECODE; a write happens when
// WE is high (with its byte enables); WRITEMODE says what a write cycle reads: NORMAL
// nothing (the output holds), WRITETHROUGH the new word, READBEFOREWRITE the old one.
// RST clears the output: at the clock edge whatever CE says (RESETMODE SYNC), or at once
// (ASYNC); writes in the same cycle still happen. REGMODE NOREG only (OCE is then unused);
// the control pins' *MUX = "INV" inverts them.
// When both ports act at one clock edge on the same bits, the silicon leaves the result
// undefined, and so does this model: a read of bits the other port writes returns X, and
// two writes to the same bits leave the words they write X (the ports count as sharing
// an edge when the other port's clock is high at this port's rising edge, as when one
// net drives both; collisions between unrelated clocks are not modelled).
// Anything else (OUTREG, a data or address pin inverted, an unknown mode, a port B write
// beside a 36-bit port A) stops the simulation with $fatal naming it, at time 0 for a
// parameter, rather than simulate wrongly. GSR and timing are not modelled.
// Verilog-2005 (Icarus -g2005, Verilator 5).

// String parameters compare at their own widths, OCE and GSR mean nothing without an
// output register or a global reset, and each port writes the shared array from its own
// clock: all as intended.
/* verilator lint_off WIDTH */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNUSEDPARAM */
/* verilator lint_off MULTIDRIVEN */
`default_nettype none

module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,

  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
	parameter DATA_WIDTH_A = 18;
	parameter DATA_WIDTH_B = 18;
	parameter REGMODE_A = "NOREG";
	parameter REGMODE_B = "NOREG";
	parameter RESETMODE = "SYNC";
	parameter ASYNC_RESET_RELEASE = "SYNC";
	parameter CSDECODE_A = "0b000";
	parameter CSDECODE_B = "0b000";
	parameter WRITEMODE_A = "NORMAL";
	parameter WRITEMODE_B = "NORMAL";
	parameter DIA17MUX = "DIA17";
	parameter DIA16MUX = "DIA16";
	parameter DIA15MUX = "DIA15";
	parameter DIA14MUX = "DIA14";
	parameter DIA13MUX = "DIA13";
	parameter DIA12MUX = "DIA12";
	parameter DIA11MUX = "DIA11";
	parameter DIA10MUX = "DIA10";
	parameter DIA9MUX = "DIA9";
	parameter DIA8MUX = "DIA8";
	parameter DIA7MUX = "DIA7";
	parameter DIA6MUX = "DIA6";
	parameter DIA5MUX = "DIA5";
	parameter DIA4MUX = "DIA4";
	parameter DIA3MUX = "DIA3";
	parameter DIA2MUX = "DIA2";
	parameter DIA1MUX = "DIA1";
	parameter DIA0MUX = "DIA0";
	parameter ADA13MUX = "ADA13";
	parameter ADA12MUX = "ADA12";
	parameter ADA11MUX = "ADA11";
	parameter ADA10MUX = "ADA10";
	parameter ADA9MUX = "ADA9";
	parameter ADA8MUX = "ADA8";
	parameter ADA7MUX = "ADA7";
	parameter ADA6MUX = "ADA6";
	parameter ADA5MUX = "ADA5";
	parameter ADA4MUX = "ADA4";
	parameter ADA3MUX = "ADA3";
	parameter ADA2MUX = "ADA2";
	parameter ADA1MUX = "ADA1";
	parameter ADA0MUX = "ADA0";
	parameter CEAMUX = "CEA";
	parameter OCEAMUX = "OCEA";
	parameter CLKAMUX = "CLKA";
	parameter WEAMUX = "WEA";
	parameter RSTAMUX = "RSTA";
	parameter CSA2MUX = "CSA2";
	parameter CSA1MUX = "CSA1";
	parameter CSA0MUX = "CSA0";
	parameter DOA17MUX = "DOA17";
	parameter DOA16MUX = "DOA16";
	parameter DOA15MUX = "DOA15";
	parameter DOA14MUX = "DOA14";
	parameter DOA13MUX = "DOA13";
	parameter DOA12MUX = "DOA12";
	parameter DOA11MUX = "DOA11";
	parameter DOA10MUX = "DOA10";
	parameter DOA9MUX = "DOA9";
	parameter DOA8MUX = "DOA8";
	parameter DOA7MUX = "DOA7";
	parameter DOA6MUX = "DOA6";
	parameter DOA5MUX = "DOA5";
	parameter DOA4MUX = "DOA4";
	parameter DOA3MUX = "DOA3";
	parameter DOA2MUX = "DOA2";
	parameter DOA1MUX = "DOA1";
	parameter DOA0MUX = "DOA0";
	parameter DIB17MUX = "DIB17";
	parameter DIB16MUX = "DIB16";
	parameter DIB15MUX = "DIB15";
	parameter DIB14MUX = "DIB14";
	parameter DIB13MUX = "DIB13";
	parameter DIB12MUX = "DIB12";
	parameter DIB11MUX = "DIB11";
	parameter DIB10MUX = "DIB10";
	parameter DIB9MUX = "DIB9";
	parameter DIB8MUX = "DIB8";
	parameter DIB7MUX = "DIB7";
	parameter DIB6MUX = "DIB6";
	parameter DIB5MUX = "DIB5";
	parameter DIB4MUX = "DIB4";
	parameter DIB3MUX = "DIB3";
	parameter DIB2MUX = "DIB2";
	parameter DIB1MUX = "DIB1";
	parameter DIB0MUX = "DIB0";
	parameter ADB13MUX = "ADB13";
	parameter ADB12MUX = "ADB12";
	parameter ADB11MUX = "ADB11";
	parameter ADB10MUX = "ADB10";
	parameter ADB9MUX = "ADB9";
	parameter ADB8MUX = "ADB8";
	parameter ADB7MUX = "ADB7";
	parameter ADB6MUX = "ADB6";
	parameter ADB5MUX = "ADB5";
	parameter ADB4MUX = "ADB4";
	parameter ADB3MUX = "ADB3";
	parameter ADB2MUX = "ADB2";
	parameter ADB1MUX = "ADB1";
	parameter ADB0MUX = "ADB0";
	parameter CEBMUX = "CEB";
	parameter OCEBMUX = "OCEB";
	parameter CLKBMUX = "CLKB";
	parameter WEBMUX = "WEB";
	parameter RSTBMUX = "RSTB";
	parameter CSB2MUX = "CSB2";
	parameter CSB1MUX = "CSB1";
	parameter CSB0MUX = "CSB0";
	parameter DOB17MUX = "DOB17";
	parameter DOB16MUX = "DOB16";
	parameter DOB15MUX = "DOB15";
	parameter DOB14MUX = "DOB14";
	parameter DOB13MUX = "DOB13";
	parameter DOB12MUX = "DOB12";
	parameter DOB11MUX = "DOB11";
	parameter DOB10MUX = "DOB10";
	parameter DOB9MUX = "DOB9";
	parameter DOB8MUX = "DOB8";
	parameter DOB7MUX = "DOB7";
	parameter DOB6MUX = "DOB6";
	parameter DOB5MUX = "DOB5";
	parameter DOB4MUX = "DOB4";
	parameter DOB3MUX = "DOB3";
	parameter DOB2MUX = "DOB2";
	parameter DOB1MUX = "DOB1";
	parameter DOB0MUX = "DOB0";
	parameter WID = 0;
	parameter GSR = "ENABLED";
	parameter INITVAL_00 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_01 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_02 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_03 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_04 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_05 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_06 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_07 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_08 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_09 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_0A = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_0B = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_0C = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_0D = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_0E = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_0F = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_10 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_11 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_12 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_13 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_14 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_15 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_16 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_17 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_18 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_19 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_1A = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_1B = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_1C = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_1D = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_1E = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_1F = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_20 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_21 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_22 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_23 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_24 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_25 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_26 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_27 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_28 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_29 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_2A = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_2B = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_2C = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_2D = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_2E = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_2F = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_30 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_31 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_32 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_33 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_34 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_35 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_36 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_37 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_38 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_39 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_3A = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_3B = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_3C = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_3D = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_3E = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INITVAL_3F = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
	parameter INIT_DATA = "STATIC";

    localparam [5:0] WA = DATA_WIDTH_A;
    localparam [5:0] WB = DATA_WIDTH_B;
    localparam A36 = DATA_WIDTH_A == 36;
    localparam B36 = DATA_WIDTH_B == 36;
    localparam NORMAL_A = WRITEMODE_A == "NORMAL";
    localparam NORMAL_B = WRITEMODE_B == "NORMAL";
    localparam THROUGH_A = WRITEMODE_A == "WRITETHROUGH";
    localparam THROUGH_B = WRITEMODE_B == "WRITETHROUGH";
    localparam ASYNC = RESETMODE == "ASYNC";

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9,
                       DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9,
                       DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4,
                       ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4,
                       ADB3, ADB2, ADB1, ADB0};

    wire clka = CLKA ^ (CLKAMUX == "INV");
    wire clkb = CLKB ^ (CLKBMUX == "INV");
    wire cea = CEA ^ (CEAMUX == "INV");
    wire ceb = CEB ^ (CEBMUX == "INV");
    wire wea = WEA ^ (WEAMUX == "INV");
    wire web = WEB ^ (WEBMUX == "INV");
    wire rsta = RSTA ^ (RSTAMUX == "INV");
    wire rstb = RSTB ^ (RSTBMUX == "INV");
    wire [2:0] csa = {CSA2 ^ (CSA2MUX == "INV"), CSA1 ^ (CSA1MUX == "INV"), CSA0 ^ (CSA0MUX == "INV")};
    wire [2:0] csb = {CSB2 ^ (CSB2MUX == "INV"), CSB1 ^ (CSB1MUX == "INV"), CSB0 ^ (CSB0MUX == "INV")};

    // CSDECODE "0bXYZ": {ok, X, Y, Z}; the port is selected when {CS2, CS1, CS0} == XYZ.
    function [3:0] csdecode;
        input [63:0] s;
        begin
            csdecode[2:0] = {s[23:16] == "1", s[15:8] == "1", s[7:0] == "1"};
            csdecode[3] = s[63:40] == 0 && s[39:24] == "0b"
                && (s[23:16] == "0" || s[23:16] == "1") && (s[15:8] == "0" || s[15:8] == "1")
                && (s[7:0] == "0" || s[7:0] == "1");
        end
    endfunction
    localparam [3:0] CSDEC_A = csdecode(CSDECODE_A);
    localparam [3:0] CSDEC_B = csdecode(CSDECODE_B);

    wire ena = cea && csa == CSDEC_A[2:0];
    wire enb = ceb && csb == CSDEC_B[2:0];
    // The asynchronous reset's sensitivity; a constant 0 in SYNC mode.
    wire arsta = ASYNC && rsta;
    wire arstb = ASYNC && rstb;

    reg [17:0] mem [0:1023];
    reg [17:0] qa;  // port A's read data (below 36 bits)
    reg [35:0] qb;  // port B's read data (36 bits: DOB, DOA)

    // Bits of a port's word: the low bits of DI/DO, placed at offset() within the word.
    function [17:0] lowmask;
        input [5:0] width;
        case (width)
            6'd9: lowmask = 18'h001ff;
            6'd4: lowmask = 18'h0000f;
            6'd2: lowmask = 18'h00003;
            6'd1: lowmask = 18'h00001;
            default: lowmask = 18'h3ffff;
        endcase
    endfunction

    function [4:0] offset;
        input [5:0] width;
        input [13:0] ad;
        case (width)
            6'd9: offset = ad[3] ? 5'd9 : 5'd0;
            6'd4: offset = (ad[3] ? 5'd9 : 5'd0) + {2'd0, ad[2], 2'd0};
            6'd2: offset = (ad[3] ? 5'd9 : 5'd0) + {2'd0, ad[2:1], 1'b0};
            6'd1: offset = (ad[3] ? 5'd9 : 5'd0) + {2'd0, ad[2:0]};
            default: offset = 5'd0;
        endcase
    endfunction

    // The words an access touches and which of their bits: {word1, mask1, word0, mask0}
    // (mask1 is zero below 36 bits). For a write (wr) the x18/x36 byte enables apply.
    function [55:0] span;
        input [5:0] width;
        input [13:0] ad;
        input wr;
        case (width)
            6'd36: span = {ad[13:5], 1'b1, wr ? {{9{ad[3]}}, {9{ad[2]}}} : 18'h3ffff,
                           ad[13:5], 1'b0, wr ? {{9{ad[1]}}, {9{ad[0]}}} : 18'h3ffff};
            6'd18: span = {10'd0, 18'd0, ad[13:4], wr ? {{9{ad[1]}}, {9{ad[0]}}} : 18'h3ffff};
            default: span = {10'd0, 18'd0, ad[13:4], lowmask(width) << offset(width, ad)};
        endcase
    endfunction

    // Does access r touch a bit that access w writes?
    function hits;
        input [55:0] r;
        input [55:0] w;
        hits = (r[27:18] == w[27:18] && |(r[17:0] & w[17:0]))
            || (r[27:18] == w[55:46] && |(r[17:0] & w[45:28]))
            || (r[55:46] == w[27:18] && |(r[45:28] & w[17:0]))
            || (r[55:46] == w[55:46] && |(r[45:28] & w[45:28]));
    endfunction

    // A port's write data placed in its word (below 36 bits).
    function [17:0] place;
        input [5:0] width;
        input [13:0] ad;
        input [17:0] di;
        place = (di & lowmask(width)) << offset(width, ad);
    endfunction

    function [17:0] extract;
        input [5:0] width;
        input [13:0] ad;
        input [17:0] word;
        extract = (word >> offset(width, ad)) & lowmask(width);
    endfunction

    function [17:0] merge;
        input [17:0] old;
        input [17:0] data;
        input [17:0] mask;
        merge = (old & ~mask) | (data & mask);
    endfunction

    integer i, j;
    reg [319:0] iv;
    initial begin
        for (i = 0; i < 64; i = i + 1) begin
            iv = initval(i[5:0]);
            for (j = 0; j < 16; j = j + 1) mem[i * 16 + j] = iv[j * 20 +: 18];
        end
        qa = 18'd0;
        qb = 36'd0;
    end

    // Writes are non-blocking: they land after every read of this edge, so neither port's
    // read depends on the order in which the simulator runs the two ports. The other
    // port is looked at only when it writes at this edge (function calls are what costs
    // in an event simulator).
    always @(posedge clka) begin : port_a_write
        reg [55:0] s;
        reg clash;
        if (ena && wea) begin
            s = span(WA, ada, 1'b1);
            clash = 1'b0;
            if (clkb && enb && web) clash = hits(s, span(WB, adb, 1'b1));
            if (|s[17:0])
                mem[s[27:18]] <= clash ? 18'bx
                    : merge(mem[s[27:18]], A36 ? dia : place(WA, ada, dia), s[17:0]);
            if (|s[45:28])
                mem[s[55:46]] <= clash ? 18'bx : merge(mem[s[55:46]], dib, s[45:28]);
        end
    end

    always @(posedge clkb) begin : port_b_write
        reg [55:0] s;
        reg clash;
        if (enb && web) begin
            if (A36)
                $fatal(1, "DP16KD %m: port B writes, but with DATA_WIDTH_A = 36 DIB is port A's data (pseudo-dual-port: port B only reads)");
            s = span(WB, adb, 1'b1);
            clash = 1'b0;
            if (clka && ena && wea) clash = hits(s, span(WA, ada, 1'b1));
            if (|s[17:0])
                mem[s[27:18]] <= clash ? 18'bx : merge(mem[s[27:18]], place(WB, adb, dib), s[17:0]);
        end
    end

    always @(posedge clka or posedge arsta) begin : port_a_read
        reg [55:0] r, s;
        reg [17:0] word;
        reg clash;
        if (rsta) begin
            qa <= 18'd0;
        end else if (!A36 && ena && (!wea || !NORMAL_A)) begin
            r = span(WA, ada, 1'b0);
            word = mem[r[27:18]];
            if (wea && THROUGH_A) begin
                s = span(WA, ada, 1'b1);
                word = merge(word, place(WA, ada, dia), s[17:0]);
            end
            clash = 1'b0;
            if (clkb && enb && web) clash = hits(r, span(WB, adb, 1'b1));
            qa <= clash ? 18'bx : extract(WA, ada, word);
        end
    end

    always @(posedge clkb or posedge arstb) begin : port_b_read
        reg [55:0] r, s;
        reg [17:0] word;
        reg clash;
        if (rstb) begin
            qb <= 36'd0;
        end else if (enb && (!web || !NORMAL_B)) begin
            r = span(WB, adb, 1'b0);
            word = mem[r[27:18]];
            if (web && THROUGH_B) begin
                s = span(WB, adb, 1'b1);
                word = merge(word, place(WB, adb, dib), s[17:0]);
            end
            clash = 1'b0;
            if (clka && ena && wea) clash = hits(r, span(WA, ada, 1'b1));
            if (clash) qb <= 36'bx;
            else if (B36) qb <= {mem[r[55:46]], word};
            else qb <= {18'd0, extract(WB, adb, word)};
        end
    end

    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9,
            DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = B36 ? qb[17:0] : A36 ? 18'bx : qa;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9,
            DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = B36 ? qb[35:18] : qb[17:0];

    // Anything this model does not simulate stops it at time 0.
    task pin_mux;
        input [8*8-1:0] name;
        input [8*8-1:0] value;
        input [8*8-1:0] plain;
        input inv_ok;
        if (value != plain && !(inv_ok && value == "INV"))
            $fatal(1, "DP16KD %m: %0s = \"%0s\" is not modelled (only \"%0s\"%0s)",
                   name, value, plain, inv_ok ? " or \"INV\"" : "");
    endtask

    initial begin
        if (!(DATA_WIDTH_A == 1 || DATA_WIDTH_A == 2 || DATA_WIDTH_A == 4 || DATA_WIDTH_A == 9
              || DATA_WIDTH_A == 18 || DATA_WIDTH_A == 36))
            $fatal(1, "DP16KD %m: DATA_WIDTH_A = %0d is not an ECP5 width (1, 2, 4, 9, 18, 36)", DATA_WIDTH_A);
        if (!(DATA_WIDTH_B == 1 || DATA_WIDTH_B == 2 || DATA_WIDTH_B == 4 || DATA_WIDTH_B == 9
              || DATA_WIDTH_B == 18 || DATA_WIDTH_B == 36))
            $fatal(1, "DP16KD %m: DATA_WIDTH_B = %0d is not an ECP5 width (1, 2, 4, 9, 18, 36)", DATA_WIDTH_B);
        if (B36 && !A36)
            $fatal(1, "DP16KD %m: DATA_WIDTH_B = 36 with DATA_WIDTH_A = %0d is not modelled (a 36-bit read drives DOA and DOB; only the pseudo-dual-port form, both 36 or A 36, is)", DATA_WIDTH_A);
        if (REGMODE_A != "NOREG")
            $fatal(1, "DP16KD %m: REGMODE_A = \"%0s\" is not modelled (only \"NOREG\", as yosys maps)", REGMODE_A);
        if (REGMODE_B != "NOREG")
            $fatal(1, "DP16KD %m: REGMODE_B = \"%0s\" is not modelled (only \"NOREG\", as yosys maps)", REGMODE_B);
        if (RESETMODE != "SYNC" && RESETMODE != "ASYNC")
            $fatal(1, "DP16KD %m: RESETMODE = \"%0s\" is not SYNC or ASYNC", RESETMODE);
        if (ASYNC_RESET_RELEASE != "SYNC" && ASYNC_RESET_RELEASE != "ASYNC")
            $fatal(1, "DP16KD %m: ASYNC_RESET_RELEASE = \"%0s\" is not SYNC or ASYNC", ASYNC_RESET_RELEASE);
        if (WRITEMODE_A != "NORMAL" && WRITEMODE_A != "WRITETHROUGH" && WRITEMODE_A != "READBEFOREWRITE")
            $fatal(1, "DP16KD %m: WRITEMODE_A = \"%0s\" is not NORMAL, WRITETHROUGH or READBEFOREWRITE", WRITEMODE_A);
        if (WRITEMODE_B != "NORMAL" && WRITEMODE_B != "WRITETHROUGH" && WRITEMODE_B != "READBEFOREWRITE")
            $fatal(1, "DP16KD %m: WRITEMODE_B = \"%0s\" is not NORMAL, WRITETHROUGH or READBEFOREWRITE", WRITEMODE_B);
        if (!CSDEC_A[3])
            $fatal(1, "DP16KD %m: CSDECODE_A = \"%0s\" is not of the form \"0bXYZ\"", CSDECODE_A);
        if (!CSDEC_B[3])
            $fatal(1, "DP16KD %m: CSDECODE_B = \"%0s\" is not of the form \"0bXYZ\"", CSDECODE_B);
        if (INIT_DATA != "STATIC")
            $fatal(1, "DP16KD %m: INIT_DATA = \"%0s\" is not modelled (only \"STATIC\")", INIT_DATA);
    end

    initial begin
        pin_mux("DIA17MUX", DIA17MUX, "DIA17", 0); pin_mux("DIA16MUX", DIA16MUX, "DIA16", 0); pin_mux("DIA15MUX", DIA15MUX, "DIA15", 0);
        pin_mux("DIA14MUX", DIA14MUX, "DIA14", 0); pin_mux("DIA13MUX", DIA13MUX, "DIA13", 0); pin_mux("DIA12MUX", DIA12MUX, "DIA12", 0);
        pin_mux("DIA11MUX", DIA11MUX, "DIA11", 0); pin_mux("DIA10MUX", DIA10MUX, "DIA10", 0); pin_mux("DIA9MUX", DIA9MUX, "DIA9", 0);
        pin_mux("DIA8MUX", DIA8MUX, "DIA8", 0); pin_mux("DIA7MUX", DIA7MUX, "DIA7", 0); pin_mux("DIA6MUX", DIA6MUX, "DIA6", 0);
        pin_mux("DIA5MUX", DIA5MUX, "DIA5", 0); pin_mux("DIA4MUX", DIA4MUX, "DIA4", 0); pin_mux("DIA3MUX", DIA3MUX, "DIA3", 0);
        pin_mux("DIA2MUX", DIA2MUX, "DIA2", 0); pin_mux("DIA1MUX", DIA1MUX, "DIA1", 0); pin_mux("DIA0MUX", DIA0MUX, "DIA0", 0);
        pin_mux("ADA13MUX", ADA13MUX, "ADA13", 0); pin_mux("ADA12MUX", ADA12MUX, "ADA12", 0); pin_mux("ADA11MUX", ADA11MUX, "ADA11", 0);
        pin_mux("ADA10MUX", ADA10MUX, "ADA10", 0); pin_mux("ADA9MUX", ADA9MUX, "ADA9", 0); pin_mux("ADA8MUX", ADA8MUX, "ADA8", 0);
        pin_mux("ADA7MUX", ADA7MUX, "ADA7", 0); pin_mux("ADA6MUX", ADA6MUX, "ADA6", 0); pin_mux("ADA5MUX", ADA5MUX, "ADA5", 0);
        pin_mux("ADA4MUX", ADA4MUX, "ADA4", 0); pin_mux("ADA3MUX", ADA3MUX, "ADA3", 0); pin_mux("ADA2MUX", ADA2MUX, "ADA2", 0);
        pin_mux("ADA1MUX", ADA1MUX, "ADA1", 0); pin_mux("ADA0MUX", ADA0MUX, "ADA0", 0); pin_mux("CEAMUX", CEAMUX, "CEA", 1);
        pin_mux("OCEAMUX", OCEAMUX, "OCEA", 1); pin_mux("CLKAMUX", CLKAMUX, "CLKA", 1); pin_mux("WEAMUX", WEAMUX, "WEA", 1);
        pin_mux("RSTAMUX", RSTAMUX, "RSTA", 1); pin_mux("CSA2MUX", CSA2MUX, "CSA2", 1); pin_mux("CSA1MUX", CSA1MUX, "CSA1", 1);
        pin_mux("CSA0MUX", CSA0MUX, "CSA0", 1); pin_mux("DOA17MUX", DOA17MUX, "DOA17", 0); pin_mux("DOA16MUX", DOA16MUX, "DOA16", 0);
        pin_mux("DOA15MUX", DOA15MUX, "DOA15", 0); pin_mux("DOA14MUX", DOA14MUX, "DOA14", 0); pin_mux("DOA13MUX", DOA13MUX, "DOA13", 0);
        pin_mux("DOA12MUX", DOA12MUX, "DOA12", 0); pin_mux("DOA11MUX", DOA11MUX, "DOA11", 0); pin_mux("DOA10MUX", DOA10MUX, "DOA10", 0);
        pin_mux("DOA9MUX", DOA9MUX, "DOA9", 0); pin_mux("DOA8MUX", DOA8MUX, "DOA8", 0); pin_mux("DOA7MUX", DOA7MUX, "DOA7", 0);
        pin_mux("DOA6MUX", DOA6MUX, "DOA6", 0); pin_mux("DOA5MUX", DOA5MUX, "DOA5", 0); pin_mux("DOA4MUX", DOA4MUX, "DOA4", 0);
        pin_mux("DOA3MUX", DOA3MUX, "DOA3", 0); pin_mux("DOA2MUX", DOA2MUX, "DOA2", 0); pin_mux("DOA1MUX", DOA1MUX, "DOA1", 0);
        pin_mux("DOA0MUX", DOA0MUX, "DOA0", 0); pin_mux("DIB17MUX", DIB17MUX, "DIB17", 0); pin_mux("DIB16MUX", DIB16MUX, "DIB16", 0);
        pin_mux("DIB15MUX", DIB15MUX, "DIB15", 0); pin_mux("DIB14MUX", DIB14MUX, "DIB14", 0); pin_mux("DIB13MUX", DIB13MUX, "DIB13", 0);
        pin_mux("DIB12MUX", DIB12MUX, "DIB12", 0); pin_mux("DIB11MUX", DIB11MUX, "DIB11", 0); pin_mux("DIB10MUX", DIB10MUX, "DIB10", 0);
        pin_mux("DIB9MUX", DIB9MUX, "DIB9", 0); pin_mux("DIB8MUX", DIB8MUX, "DIB8", 0); pin_mux("DIB7MUX", DIB7MUX, "DIB7", 0);
        pin_mux("DIB6MUX", DIB6MUX, "DIB6", 0); pin_mux("DIB5MUX", DIB5MUX, "DIB5", 0); pin_mux("DIB4MUX", DIB4MUX, "DIB4", 0);
        pin_mux("DIB3MUX", DIB3MUX, "DIB3", 0); pin_mux("DIB2MUX", DIB2MUX, "DIB2", 0); pin_mux("DIB1MUX", DIB1MUX, "DIB1", 0);
        pin_mux("DIB0MUX", DIB0MUX, "DIB0", 0); pin_mux("ADB13MUX", ADB13MUX, "ADB13", 0); pin_mux("ADB12MUX", ADB12MUX, "ADB12", 0);
        pin_mux("ADB11MUX", ADB11MUX, "ADB11", 0); pin_mux("ADB10MUX", ADB10MUX, "ADB10", 0); pin_mux("ADB9MUX", ADB9MUX, "ADB9", 0);
        pin_mux("ADB8MUX", ADB8MUX, "ADB8", 0); pin_mux("ADB7MUX", ADB7MUX, "ADB7", 0); pin_mux("ADB6MUX", ADB6MUX, "ADB6", 0);
        pin_mux("ADB5MUX", ADB5MUX, "ADB5", 0); pin_mux("ADB4MUX", ADB4MUX, "ADB4", 0); pin_mux("ADB3MUX", ADB3MUX, "ADB3", 0);
        pin_mux("ADB2MUX", ADB2MUX, "ADB2", 0); pin_mux("ADB1MUX", ADB1MUX, "ADB1", 0); pin_mux("ADB0MUX", ADB0MUX, "ADB0", 0);
        pin_mux("CEBMUX", CEBMUX, "CEB", 1); pin_mux("OCEBMUX", OCEBMUX, "OCEB", 1); pin_mux("CLKBMUX", CLKBMUX, "CLKB", 1);
        pin_mux("WEBMUX", WEBMUX, "WEB", 1); pin_mux("RSTBMUX", RSTBMUX, "RSTB", 1); pin_mux("CSB2MUX", CSB2MUX, "CSB2", 1);
        pin_mux("CSB1MUX", CSB1MUX, "CSB1", 1); pin_mux("CSB0MUX", CSB0MUX, "CSB0", 1); pin_mux("DOB17MUX", DOB17MUX, "DOB17", 0);
        pin_mux("DOB16MUX", DOB16MUX, "DOB16", 0); pin_mux("DOB15MUX", DOB15MUX, "DOB15", 0); pin_mux("DOB14MUX", DOB14MUX, "DOB14", 0);
        pin_mux("DOB13MUX", DOB13MUX, "DOB13", 0); pin_mux("DOB12MUX", DOB12MUX, "DOB12", 0); pin_mux("DOB11MUX", DOB11MUX, "DOB11", 0);
        pin_mux("DOB10MUX", DOB10MUX, "DOB10", 0); pin_mux("DOB9MUX", DOB9MUX, "DOB9", 0); pin_mux("DOB8MUX", DOB8MUX, "DOB8", 0);
        pin_mux("DOB7MUX", DOB7MUX, "DOB7", 0); pin_mux("DOB6MUX", DOB6MUX, "DOB6", 0); pin_mux("DOB5MUX", DOB5MUX, "DOB5", 0);
        pin_mux("DOB4MUX", DOB4MUX, "DOB4", 0); pin_mux("DOB3MUX", DOB3MUX, "DOB3", 0); pin_mux("DOB2MUX", DOB2MUX, "DOB2", 0);
        pin_mux("DOB1MUX", DOB1MUX, "DOB1", 0); pin_mux("DOB0MUX", DOB0MUX, "DOB0", 0);
    end

    // INITVAL_xx holds 18-bit words xx*16 .. xx*16+15, word i in bits [i*20 +: 18].
    function [319:0] initval;
        input [5:0] idx;
        case (idx)
            6'h00: initval = INITVAL_00;
            6'h01: initval = INITVAL_01;
            6'h02: initval = INITVAL_02;
            6'h03: initval = INITVAL_03;
            6'h04: initval = INITVAL_04;
            6'h05: initval = INITVAL_05;
            6'h06: initval = INITVAL_06;
            6'h07: initval = INITVAL_07;
            6'h08: initval = INITVAL_08;
            6'h09: initval = INITVAL_09;
            6'h0A: initval = INITVAL_0A;
            6'h0B: initval = INITVAL_0B;
            6'h0C: initval = INITVAL_0C;
            6'h0D: initval = INITVAL_0D;
            6'h0E: initval = INITVAL_0E;
            6'h0F: initval = INITVAL_0F;
            6'h10: initval = INITVAL_10;
            6'h11: initval = INITVAL_11;
            6'h12: initval = INITVAL_12;
            6'h13: initval = INITVAL_13;
            6'h14: initval = INITVAL_14;
            6'h15: initval = INITVAL_15;
            6'h16: initval = INITVAL_16;
            6'h17: initval = INITVAL_17;
            6'h18: initval = INITVAL_18;
            6'h19: initval = INITVAL_19;
            6'h1A: initval = INITVAL_1A;
            6'h1B: initval = INITVAL_1B;
            6'h1C: initval = INITVAL_1C;
            6'h1D: initval = INITVAL_1D;
            6'h1E: initval = INITVAL_1E;
            6'h1F: initval = INITVAL_1F;
            6'h20: initval = INITVAL_20;
            6'h21: initval = INITVAL_21;
            6'h22: initval = INITVAL_22;
            6'h23: initval = INITVAL_23;
            6'h24: initval = INITVAL_24;
            6'h25: initval = INITVAL_25;
            6'h26: initval = INITVAL_26;
            6'h27: initval = INITVAL_27;
            6'h28: initval = INITVAL_28;
            6'h29: initval = INITVAL_29;
            6'h2A: initval = INITVAL_2A;
            6'h2B: initval = INITVAL_2B;
            6'h2C: initval = INITVAL_2C;
            6'h2D: initval = INITVAL_2D;
            6'h2E: initval = INITVAL_2E;
            6'h2F: initval = INITVAL_2F;
            6'h30: initval = INITVAL_30;
            6'h31: initval = INITVAL_31;
            6'h32: initval = INITVAL_32;
            6'h33: initval = INITVAL_33;
            6'h34: initval = INITVAL_34;
            6'h35: initval = INITVAL_35;
            6'h36: initval = INITVAL_36;
            6'h37: initval = INITVAL_37;
            6'h38: initval = INITVAL_38;
            6'h39: initval = INITVAL_39;
            6'h3A: initval = INITVAL_3A;
            6'h3B: initval = INITVAL_3B;
            6'h3C: initval = INITVAL_3C;
            6'h3D: initval = INITVAL_3D;
            6'h3E: initval = INITVAL_3E;
            6'h3F: initval = INITVAL_3F;
        endcase
    endfunction
endmodule
/* verilator lint_on MULTIDRIVEN */
/* verilator lint_on UNUSEDPARAM */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on WIDTH */

`default_nettype wire
