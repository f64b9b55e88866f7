// ccc_tb.cpp — Verilator driver for an emitted ccc_top (written into OUT/tb by ccc).
// Same protocol, options and output as tb_ccc_top.v:
//   ./Vccc_top <images.hex> <n_images> <bytes_per_image> [limit] [vcd] [+options]
// prints DBG / OUT / EV / DONE / ERR / RESET lines; run in OUT/rtl so memory images load
// by name. Options as in tb_ccc_top.v: +lens=FILE, +seed=S +in_gap=P +out_stall=P,
// +rst_at=C +rst_len=L +resume=K, +clr_at=C, +out_hold=C (and Verilator's own +verilator+... ones).
#include <cstdint>
#include <cstdio>
#include <random>
#include <cstdlib>
#include <fstream>
#include <string>
#include <algorithm>
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

// The value of +NAME=V on the command line, or `def`.
static long plusarg(const char* name, long def) {
    const std::string key = std::string(name) + "=";
    const char* m = Verilated::commandArgsPlusMatch(key.c_str());
    if (!m || !*m) return def;
    const std::string s(m);
    const std::size_t eq = s.find('=');
    return std::strtol(s.c_str() + eq + 1, nullptr, 0);
}
static std::string plusarg_str(const char* name) {
    const std::string key = std::string(name) + "=";
    const char* m = Verilated::commandArgsPlusMatch(key.c_str());
    if (!m || !*m) return "";
    const std::string s(m);
    return s.substr(s.find('=') + 1);
}

int main(int argc, char** argv) {
    // Positional arguments first, then +options.
    int npos = 1;
    while (npos < argc && argv[npos][0] != '+') npos++;
    Verilated::commandArgs(argc, argv);
    argc = npos;
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s images.hex n_images bytes_per_image [limit] [vcd]\n", argv[0]);
        return 2;
    }
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
    std::vector<long> lens(n_images, bytes);
    const std::string lpath = plusarg_str("lens");
    if (!lpath.empty()) {
        std::ifstream f(lpath);
        std::string line;
        for (long k = 0; k < n_images && std::getline(f, line);) {
            if (!line.empty()) lens[k++] = std::stol(line, nullptr, 16);
        }
    }
    std::vector<bool> lastbeat;
    long resume_idx = 0;
    const long resume = plusarg("resume", 0);
    for (long k = 0; k < n_images; k++) {
        if (k == resume) resume_idx = (long)lastbeat.size();
        for (long b = 0; b < lens[k]; b++) lastbeat.push_back(b == lens[k] - 1);
    }
    const long total = (long)lastbeat.size();
    if ((long)pixels.size() < total) {
        std::fprintf(stderr, "images file has %zu bytes, need %ld\n", pixels.size(), total);
        return 2;
    }
    std::mt19937 rng((unsigned)plusarg("seed", 1));
    const long in_gap = plusarg("in_gap", 0), out_stall = plusarg("out_stall", 0);
    const long rst_at = plusarg("rst_at", 0), rst_len = plusarg("rst_len", 0);
    const long clr_at = plusarg("clr_at", -1);
    const long out_hold = plusarg("out_hold", 0);
    const long expect = rst_len > 0 ? n_images - resume : n_images;
    auto pct = [&]() { return (long)(rng() % 100); };
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
    int last_phase = 3, last_tile = -1, last_err = 0;
    bool gate = true, ready = out_hold == 0;
    top->rst = 1;
    top->clk = 0;
    top->m_axis_tready = 1;
    top->wl_en = 0;
    top->in_err_clear = 0;
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
        top->eval();
        if (top->s_axis_tready) std::printf("READY_IN_RESET %d\n", i - 3);
        tick();
    }
    top->rst = 0;
    while (out_img < expect) {
        // A reset pulse in the middle of the run: stream again from packet `resume`.
        const bool in_pulse = rst_len > 0 && cycle >= rst_at && cycle < rst_at + rst_len;
        top->rst = in_pulse;
        if (rst_len > 0 && cycle == rst_at + rst_len) std::printf("RESET %ld\n", cycle - 1);
        top->in_err_clear = (cycle == clr_at);
        // Inputs for this cycle, then sample outputs as the clock edge will see them.
        top->s_axis_tvalid = !in_pulse && in_idx < total && gate;
        top->s_axis_tdata = in_idx < total ? pixels[in_idx] : 0;
        top->s_axis_tlast = in_idx < total ? lastbeat[in_idx] : 0;
        top->m_axis_tready = ready;
        top->eval();
        if (top->rst && top->s_axis_tready) std::printf("READY_IN_RESET %ld\n", cycle);
        if (in_pulse) {
            in_idx = resume_idx;
            out_img = 0;
            out_idx = 0;
            std::fill(img_of.begin(), img_of.end(), 0);
            gate = true;
            tick();
            cycle++;
            continue;
        }
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
        if ((int)top->in_err != last_err) {
            std::printf("ERR %ld %u\n", cycle, (unsigned)top->in_err);
            last_err = top->in_err;
        }
        bool finished = false;
        if (top->m_axis_tvalid && top->m_axis_tready) {
            std::printf("OUT %ld %ld %d\n", out_img, out_idx, (int)top->m_axis_tdata);
            out_idx = top->m_axis_tlast ? 0 : out_idx + 1;
        }
        if (top->done) {
            std::printf("DONE %ld %ld\n", out_img, cycle);
            finished = true;
        }
        // tvalid may drop only after its beat was taken (AXI-Stream).
        const bool held = top->s_axis_tvalid && !top->s_axis_tready;
        tick();
        cycle++;
        if (fire) in_idx++;
        if (finished) out_img++;
        gate = held || pct() >= in_gap;
        ready = pct() >= out_stall && cycle >= out_hold;
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
