// ccc_tb.cpp — Verilator driver for an emitted ccc_top (written into OUT/tb by ccc).
// Same protocol and output as tb_ccc_top.v:
//   ./Vccc_top <images.hex> <n_images> <bytes_per_image> [limit] [vcd]
// prints DBG / OUT / EV / DONE lines; run in OUT/rtl so memory images load by name.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "Vccc_top.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

// Built with -DNBR=<row ends: banks x rows> and the debug fields' widths -DPIX_W, -DN_W,
// -DLAYER_W (see OUT/tb/Makefile).

// Bits [lsb, lsb + w) of a Verilated signal: narrow ones are plain integers, wide ones
// are arrays of 32-bit words.
static uint64_t field(uint64_t v, int lsb, int w) {
    return (v >> lsb) & (w >= 64 ? ~0ull : ((1ull << w) - 1));
}
template <std::size_t N>
static uint64_t field(const VlWide<N>& v, int lsb, int w) {
    uint64_t r = 0;
    for (int i = 0; i < w; i++) {
        const int b = lsb + i;
        if ((v[b / 32] >> (b % 32)) & 1u) r |= 1ull << i;
    }
    return r;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s images.hex n_images bytes_per_image [limit] [vcd]\n", argv[0]);
        return 2;
    }
    Verilated::commandArgs(1, argv);
    std::vector<unsigned> pixels;
    {
        std::ifstream f(argv[1]);
        std::string line;
        while (std::getline(f, line)) {
            if (!line.empty()) pixels.push_back(std::stoul(line, nullptr, 16));
        }
    }
    const long n_images = std::atol(argv[2]);
    const long bytes = std::atol(argv[3]);
    const long limit = argc > 4 ? std::atol(argv[4]) : 100000000L;
    if ((long)pixels.size() < n_images * bytes) {
        std::fprintf(stderr, "images file has %zu bytes, need %ld\n", pixels.size(), n_images * bytes);
        return 2;
    }
    auto* top = new Vccc_top;
#if VM_TRACE
    VerilatedVcdC* tfp = nullptr;
    if (argc > 5) {
        Verilated::traceEverOn(true);
        tfp = new VerilatedVcdC;
        top->trace(tfp, 99);
        tfp->open(argv[5]);
    }
#endif
    long in_idx = 0, out_img = 0, out_idx = 0, cycle = 0;
    std::vector<long> img_of(NBR, 0);
    uint64_t t = 0;
    int last_phase = 3, last_tile = -1;
    top->rst = 1;
    top->clk = 0;
    top->m_axis_tready = 1;
    top->wl_en = 0;
    auto tick = [&]() {
        top->clk = 1;
        top->eval();
#if VM_TRACE
        if (tfp) tfp->dump(t++);
#endif
        top->clk = 0;
        top->eval();
#if VM_TRACE
        if (tfp) tfp->dump(t++);
#endif
    };
    for (int i = 0; i < 3; i++) {
        top->s_axis_tvalid = 0;
        tick();
    }
    top->rst = 0;
    while (out_img < n_images) {
        // Inputs for this cycle, then sample outputs as the clock edge will see them.
        top->s_axis_tvalid = in_idx < n_images * bytes;
        top->s_axis_tdata = top->s_axis_tvalid ? pixels[in_idx] : 0;
        top->eval();
        const bool fire = top->s_axis_tvalid && top->s_axis_tready;
        for (int r = 0; r < NBR; r++) {
            if (field(top->dbg_valid, r, 1)) {
                // Images advance by less than 4 between two outputs of one row end.
                const long img2 = (long)field(top->dbg_img, r * 2, 2);
                img_of[r] += (img2 - img_of[r]) & 3;
                std::printf("DBG %ld %u %u %u %u\n", img_of[r],
                            (unsigned)field(top->dbg_layer, r * LAYER_W, LAYER_W),
                            (unsigned)field(top->dbg_ch, r * N_W, N_W),
                            (unsigned)field(top->dbg_pix, r * PIX_W, PIX_W),
                            (unsigned)field(top->dbg_data, r * 8, 8));
            }
        }
        if (top->dbg_phase != last_phase || (int)top->dbg_tile != last_tile) {
            std::printf("EV %ld %u %u\n", cycle, (unsigned)top->dbg_phase, (unsigned)top->dbg_tile);
            last_phase = top->dbg_phase;
            last_tile = top->dbg_tile;
        }
        bool finished = false;
        if (top->m_axis_tvalid) {
            std::printf("OUT %ld %ld %d\n", out_img, out_idx, (int)top->m_axis_tdata);
            out_idx = top->m_axis_tlast ? 0 : out_idx + 1;
        }
        if (top->done) {
            std::printf("DONE %ld %ld\n", out_img, cycle);
            finished = true;
        }
        tick();
        cycle++;
        if (fire) in_idx++;
        if (finished) out_img++;
        if (cycle > limit) {
            std::printf("TIMEOUT %ld\n", cycle);
            break;
        }
    }
#if VM_TRACE
    if (tfp) tfp->close();
#endif
    top->final();
    delete top;
    return 0;
}
