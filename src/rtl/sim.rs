//! RTL simulation: writes the drivers next to the emitted Verilog (OUT/tb: an Icarus
//! testbench, a Verilator C++ driver and a Makefile), builds and runs them on images,
//! and parses what they print (activations, outputs, phase events). The build and run
//! commands are written once ([`build_command`], [`run_command`]) and serve both the
//! runs here and OUT/tb/Makefile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::design::{Capacity, HwDesign};
use super::emit::sim_files;
use crate::output::OutDir;

pub const TB_VERILOG: &str = include_str!("../../testbench/tb_ccc_top.v");
pub const TB_CPP: &str = include_str!("../../testbench/ccc_tb.cpp");
/// ccc's behavioural model of the ECP5 `DP16KD` block RAM: yosys ships an empty module,
/// so an ECP5 netlist simulated with yosys's models alone reads zeros from every block
/// RAM. Embedded so that `ccc simulate` finds it from any working directory.
pub const DP16KD_MODEL: &str = include_str!("../../testbench/ecp5/DP16KD.v");

/// Cycles after which a simulation gives up (a design that never finishes).
pub const CYCLE_LIMIT: u64 = 200_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Simulator {
    Verilator,
    Icarus,
}

/// How one simulation is built and run besides the design and its images.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Write a waveform (VCD) here.
    pub vcd: Option<PathBuf>,
    /// Simulate a post-synthesis netlist instead of OUT/rtl ([`netlist_sources`]).
    pub netlist: Option<NetlistSources>,
    /// Icarus only: load the weight memory through the load port during reset, instead
    /// of relying on its initial image.
    pub weight_load: Option<WeightLoad>,
    /// How the testbench drives the ports (framing, stalls, a reset pulse).
    pub stream: StreamOptions,
    /// What the memories hold at power-on: zero (the simulators' default) or random.
    pub power_on: PowerOn,
}

/// How the testbench drives the streams beyond "always valid, always ready".
#[derive(Clone, Debug, Default)]
pub struct StreamOptions {
    /// Beats of each packet (default: every packet one image). Packet k sends image k's
    /// beats, cut short or followed by filler beats; the accelerator must treat it as
    /// [`framed_image`] says.
    pub lens: Option<Vec<usize>>,
    /// Seed of the random gaps and stalls.
    pub seed: u64,
    /// Percent of cycles with `s_axis_tvalid` low / `m_axis_tready` low.
    pub in_gap: u8,
    pub out_stall: u8,
    /// A reset pulse in the middle of the run.
    pub reset: Option<ResetPulse>,
    /// Pulse `in_err_clear` at this cycle.
    pub err_clear_at: Option<u64>,
    /// Keep `m_axis_tready` low until this cycle.
    pub out_hold: Option<u64>,
}

impl StreamOptions {
    /// The testbench options; packet lengths are read from `tb`/[`LENS_FILE`].
    fn plusargs(&self, tb: &str) -> Vec<String> {
        let mut a = Vec::new();
        if self.lens.is_some() {
            a.push(format!("+lens={tb}/{LENS_FILE}"));
        }
        if self.in_gap > 0 || self.out_stall > 0 {
            a.push(format!("+seed={}", self.seed));
            a.push(format!("+in_gap={}", self.in_gap));
            a.push(format!("+out_stall={}", self.out_stall));
        }
        if let Some(r) = &self.reset {
            a.push(format!("+rst_at={}", r.at));
            a.push(format!("+rst_len={}", r.len));
            a.push(format!("+resume={}", r.resume));
        }
        if let Some(c) = self.err_clear_at {
            a.push(format!("+clr_at={c}"));
        }
        if let Some(c) = self.out_hold {
            a.push(format!("+out_hold={c}"));
        }
        a
    }
}

/// Where [`run`] writes the packet lengths (in OUT/tb).
pub const LENS_FILE: &str = "lens.hex";

/// `rst` raised for `len` cycles at cycle `at`; afterwards the testbench streams again from
/// packet `resume` and counts images from 0 (what it printed before is dropped).
#[derive(Clone, Copy, Debug)]
pub struct ResetPulse {
    pub at: u64,
    pub len: u64,
    pub resume: usize,
}

/// What the simulated memories hold at power-on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PowerOn {
    /// Zero (Verilator's default; Icarus starts uninitialised memories at X).
    #[default]
    Default,
    /// Random: Verilator built with `--x-initial unique` and run with
    /// `+verilator+rand+reset+2 +verilator+seed+SEED` (every register and memory);
    /// Icarus with CCC_RANDOM_INIT (every RAM without a memory image filled by `$random`).
    Random(u64),
}

/// The beats packet `len` long carries for `image` (in stream order): the image cut short,
/// or followed by filler beats.
pub fn packet_beats(stream_order: &[u8], len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            stream_order
                .get(i)
                .copied()
                .unwrap_or(0xa5 ^ (i as u8).wrapping_mul(29))
        })
        .collect()
}

/// The image the accelerator computes from a packet of `len` beats (stream order): a short
/// packet completed with zero beats, a long one cut at the image's size.
pub fn framed_image(stream_order: &[u8], len: usize) -> Vec<u8> {
    let n = stream_order.len();
    let mut v: Vec<u8> = stream_order[..len.min(n)].to_vec();
    v.resize(n, 0);
    v
}

/// A weight-memory image to write through the load port.
#[derive(Clone, Debug)]
pub struct WeightLoad {
    /// Hex, one word per line.
    pub file: PathBuf,
    pub words: usize,
}

/// The Verilog macros both testbenches are built with.
fn defines(cap: &Capacity) -> Vec<(&'static str, usize)> {
    vec![
        ("WM_AW", cap.widths.wm_aw),
        ("WM_W", cap.word.width),
        ("LAYER_W", cap.widths.layer_w),
        ("T_W", cap.widths.t_w),
        ("N_W", cap.widths.n_w),
        ("PIX_W", cap.widths.pix_w),
        ("NBR", cap.banks * cap.rows),
    ]
}

/// Program and arguments that build simulator `sim` for `sources` (Verilog files,
/// without the testbench), run in OUT/tb. `includes` are `include` search directories.
pub fn build_command(
    sim: Simulator,
    cap: &Capacity,
    sources: &[String],
    includes: &[String],
    o: &RunOptions,
) -> (String, Vec<String>) {
    let mut a: Vec<String> = Vec::new();
    match sim {
        Simulator::Icarus => {
            // The vendor cell models that netlists need use SystemVerilog constructs.
            a.push(
                if o.netlist.is_some() {
                    "-g2012"
                } else {
                    "-g2005"
                }
                .into(),
            );
            a.extend(["-s", "tb_ccc_top"].map(String::from));
            a.extend(defines(cap).iter().map(|(k, v)| format!("-D{k}={v}")));
            if matches!(o.power_on, PowerOn::Random(_)) {
                a.push("-DCCC_RANDOM_INIT".into());
            }
            for d in includes {
                a.extend(["-I".to_string(), d.clone()]);
            }
            a.extend(["-o", "tb.vvp"].map(String::from));
            a.extend(sources.iter().cloned());
            a.push("tb_ccc_top.v".into());
            ("iverilog".into(), a)
        }
        Simulator::Verilator => {
            a.extend(
                [
                    "--cc",
                    "--exe",
                    "--build",
                    "-O2",
                    "-j",
                    "2",
                    "-Wno-fatal",
                    "--top-module",
                    "ccc_top",
                    "-o",
                    "Vccc_top",
                ]
                .map(String::from),
            );
            if o.vcd.is_some() {
                a.push("--trace".into());
            }
            if matches!(o.power_on, PowerOn::Random(_)) {
                a.extend(["--x-initial", "unique", "--x-assign", "unique"].map(String::from));
            }
            if o.netlist.is_some() {
                // yosys's iCE40 models give some inputs defaults (`input WCLKE = 1'b1`),
                // which Verilator 5.0 cannot parse; the netlists connect every port.
                a.push("+define+NO_ICE40_DEFAULT_ASSIGNMENTS".into());
            }
            a.extend(includes.iter().map(|d| format!("-I{d}")));
            a.push("-CFLAGS".into());
            a.push(
                defines(cap)
                    .iter()
                    .filter(|(k, _)| !k.starts_with("WM"))
                    .map(|(k, v)| format!("-D{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            a.extend(sources.iter().cloned());
            a.push("ccc_tb.cpp".into());
            ("verilator".into(), a)
        }
    }
}

/// Program and arguments that run the built simulator `sim` in OUT/rtl over `n` images
/// of `bytes` bytes in `images` (hex, one byte per line). Paths are as given.
pub fn run_command(
    sim: Simulator,
    tb: &str,
    images: &str,
    n: &str,
    bytes: &str,
    o: &RunOptions,
) -> (String, Vec<String>) {
    match sim {
        Simulator::Icarus => {
            let mut a = vec![
                "-n".to_string(),
                format!("{tb}/tb.vvp"),
                format!("+file={images}"),
                format!("+images={n}"),
                format!("+bytes={bytes}"),
                format!("+limit={CYCLE_LIMIT}"),
            ];
            if let Some(v) = &o.vcd {
                a.push(format!("+vcd={}", v.display()));
            }
            if let Some(w) = &o.weight_load {
                a.push(format!("+wload={}", w.file.display()));
                a.push(format!("+wwords={}", w.words));
            }
            a.extend(o.stream.plusargs(tb));
            ("vvp".into(), a)
        }
        Simulator::Verilator => {
            let mut a = vec![
                images.to_string(),
                n.to_string(),
                bytes.to_string(),
                CYCLE_LIMIT.to_string(),
            ];
            if let Some(v) = &o.vcd {
                a.push(v.display().to_string());
            }
            a.extend(o.stream.plusargs(tb));
            if let PowerOn::Random(seed) = o.power_on {
                a.push("+verilator+rand+reset+2".into());
                a.push(format!("+verilator+seed+{seed}"));
            }
            (format!("{tb}/obj_dir/Vccc_top"), a)
        }
    }
}

/// `verilator --lint-only -Wall` over the emitted accelerator, run in OUT/rtl.
pub fn lint_command() -> (String, Vec<String>) {
    let mut a: Vec<String> = ["--lint-only", "-Wall", "--top-module", "ccc_top"]
        .map(String::from)
        .to_vec();
    a.extend(sim_files());
    ("verilator".into(), a)
}

fn shell_line((prog, args): &(String, Vec<String>)) -> String {
    let quote = |a: &String| {
        if a.contains(char::is_whitespace) {
            format!("'{a}'")
        } else {
            a.clone()
        }
    };
    std::iter::once(prog.clone())
        .chain(args.iter().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// OUT/tb/Makefile: the same commands [`run`] uses, for a user at a shell.
fn makefile(d: &HwDesign) -> String {
    let cap = &d.capacity;
    let rtl: Vec<String> = sim_files().iter().map(|f| format!("../rtl/{f}")).collect();
    let none = RunOptions::default();
    let run = |sim| {
        shell_line(&run_command(
            sim,
            "../tb",
            "../tb/$(IMAGES)",
            "$(N)",
            "$(BYTES)",
            &none,
        ))
    };
    let lint = {
        let (p, a) = lint_command();
        shell_line(&(p, a))
    };
    format!(
        "# Builds and runs the testbenches of the accelerator in ../rtl (written by ccc from\n\
         # ../rtl/rtl.json; `ccc simulate` runs the same commands and compares the results).\n\
         # Usage (from OUT/tb): make verilator | make icarus | make lint\n\
         #   IMAGES=images.hex (one hex byte per line, y, x, channel order) N=<images>.\n\
         RTL    := {rtl}\n\
         IMAGES ?= images.hex\n\
         N      ?= 1\n\
         BYTES  := {bytes}\n\
         \n\
         .PHONY: verilator icarus lint\n\
         obj_dir/Vccc_top: $(RTL) ccc_tb.cpp\n\
         \t{vbuild}\n\
         \n\
         verilator: obj_dir/Vccc_top\n\
         \tcd ../rtl && {vrun}\n\
         \n\
         tb.vvp: $(RTL) tb_ccc_top.v\n\
         \t{ibuild}\n\
         \n\
         icarus: tb.vvp\n\
         \tcd ../rtl && {irun}\n\
         \n\
         lint:\n\
         \tcd ../rtl && {lint}\n",
        rtl = rtl.join(" "),
        bytes = d.image_bytes(),
        vbuild = shell_line(&build_command(
            Simulator::Verilator,
            cap,
            &["$(RTL)".into()],
            &[],
            &none
        )),
        ibuild = shell_line(&build_command(
            Simulator::Icarus,
            cap,
            &["$(RTL)".into()],
            &[],
            &none
        )),
        vrun = run(Simulator::Verilator),
        irun = run(Simulator::Icarus),
    )
}

/// Writes OUT/tb/{tb_ccc_top.v, ccc_tb.cpp, Makefile} for design `d`.
pub fn write_drivers(d: &HwDesign, out: &OutDir) -> Result<()> {
    out.write("tb/tb_ccc_top.v", TB_VERILOG.as_bytes())?;
    out.write("tb/ccc_tb.cpp", TB_CPP.as_bytes())?;
    out.write("tb/Makefile", makefile(d).as_bytes())?;
    Ok(())
}

/// What one simulator run printed, parsed.
#[derive(Debug, Default)]
pub struct SimRun {
    /// (image, layer) -> (physical channel, pixel) -> value
    pub acts: BTreeMap<(usize, usize), BTreeMap<(usize, usize), u8>>,
    /// image -> logits then class index
    pub outputs: BTreeMap<usize, Vec<i64>>,
    /// (cycle, phase, layer) events
    pub events: Vec<(u64, u8, usize)>,
    /// image -> cycle it finished
    pub done: BTreeMap<usize, u64>,
    pub timeout: bool,
    /// (cycle, flags) whenever `in_err` changed.
    pub errors: Vec<(u64, u8)>,
    /// Cycles of the reset pulses seen (what came before the last one was dropped).
    pub resets: Vec<u64>,
    /// Cycles on which `s_axis_tready` was high while `rst` was.
    pub ready_in_reset: Vec<i64>,
    /// Seconds spent compiling the simulator and running it.
    pub build_secs: f64,
    pub run_secs: f64,
}

fn run_cmd(dir: &Path, (prog, args): &(String, Vec<String>), what: &str) -> Result<String> {
    let o = Command::new(prog)
        .current_dir(dir)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {what} (`{prog}`; is it installed?)"))?;
    if !o.status.success() {
        bail!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// One image (C x H x W) in the order the input stream sends it: y, x, channel.
pub fn stream_order(d: &HwDesign, img: &[u8]) -> Vec<u8> {
    let i = &d.contents.input;
    let (c, h, w) = (i.c, i.h, i.w);
    let mut v = Vec::with_capacity(c * h * w);
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                v.push(img[(ch * h + y) * w + x]);
            }
        }
    }
    v
}

/// The inverse of [`stream_order`].
pub fn from_stream_order(d: &HwDesign, beats: &[u8]) -> Vec<u8> {
    let i = &d.contents.input;
    let (c, h, w) = (i.c, i.h, i.w);
    let mut v = vec![0u8; c * h * w];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                v[(ch * h + y) * w + x] = beats[(y * w + x) * c + ch];
            }
        }
    }
    v
}

/// Images (each C x H x W) as the input stream sends them: one hex byte per line, in
/// y, x, channel order; packet k of `lens[k]` beats when given ([`packet_beats`]).
pub fn images_hex(d: &HwDesign, images: &[Vec<u8>], lens: Option<&[usize]>) -> String {
    let mut hex = String::new();
    for (k, img) in images.iter().enumerate() {
        let beats = stream_order(d, img);
        let len = lens.and_then(|l| l.get(k).copied()).unwrap_or(beats.len());
        for b in packet_beats(&beats, len) {
            hex.push_str(&format!("{b:02x}\n"));
        }
    }
    hex
}

/// The Verilog that simulates a post-synthesis netlist: the netlist and its cell models,
/// and the directories their `include`s search besides the files' own.
#[derive(Clone, Debug, Default)]
pub struct NetlistSources {
    pub files: Vec<PathBuf>,
    pub include_dirs: Vec<PathBuf>,
}

/// Builds and runs one simulator over `images` (each C x H x W in the model's input
/// order; streamed as y, x, channel) on the design in OUT (or the netlist `o` names);
/// returns what it printed, parsed.
pub fn run(
    out: &Path,
    d: &HwDesign,
    images: &[Vec<u8>],
    sim: Simulator,
    o: &RunOptions,
) -> Result<SimRun> {
    if o.weight_load.is_some() && sim != Simulator::Icarus {
        bail!("loading weights through the load port is simulated with Icarus only");
    }
    // The simulators run in OUT/tb and OUT/rtl, so relative paths would break.
    let out = &out
        .canonicalize()
        .with_context(|| format!("{} not found", out.display()))?;
    let tb = out.join("tb");
    let rtl = out.join("rtl");
    let sources: Vec<PathBuf> = match &o.netlist {
        Some(n) => n
            .files
            .iter()
            .map(|f| std::path::absolute(f).with_context(|| format!("resolving {}", f.display())))
            .collect::<Result<_>>()?,
        None => sim_files().iter().map(|f| rtl.join(f)).collect(),
    };
    let images_path = tb.join("images.hex");
    let lens = o.stream.lens.as_deref();
    if let Some(l) = lens
        && (l.len() != images.len() || l.contains(&0))
    {
        bail!(
            "{} packet lengths for {} images (each at least one beat)",
            l.len(),
            images.len()
        );
    }
    std::fs::write(&images_path, images_hex(d, images, lens)).context("writing tb/images.hex")?;
    if let Some(l) = lens {
        let text: String = l.iter().map(|n| format!("{n:x}\n")).collect();
        std::fs::write(tb.join(LENS_FILE), text).context("writing tb/lens.hex")?;
    }
    let mut includes = include_dirs(&sources);
    if let Some(n) = &o.netlist {
        includes.extend(n.include_dirs.iter().cloned());
    }
    let text =
        |p: &[PathBuf]| -> Vec<String> { p.iter().map(|f| f.display().to_string()).collect() };
    let t_build = std::time::Instant::now();
    let build = build_command(sim, &d.capacity, &text(&sources), &text(&includes), o);
    run_cmd(&tb, &build, &format!("{sim:?} build"))?;
    let build_secs = t_build.elapsed().as_secs_f64();
    let t_run = std::time::Instant::now();
    let tb_s = tb.display().to_string();
    let runc = run_command(
        sim,
        &tb_s,
        &images_path.display().to_string(),
        &images.len().to_string(),
        &d.image_bytes().to_string(),
        o,
    );
    let printed = run_cmd(&rtl, &runc, &format!("the {sim:?} model"))?;
    let mut r = parse(&printed)?;
    r.build_secs = build_secs;
    r.run_secs = t_run.elapsed().as_secs_f64();
    Ok(r)
}

/// The files that simulate OUT/fpga/netlist_FAMILY.v (written by `make postsynth-sim`
/// or `tools/fpga-flow.sh netlist`): the netlist and, for iCE40 and ECP5, yosys's
/// simulation models of the vendor cells it instantiates. For ECP5 these are written
/// into OUT/fpga (see [`write_ecp5_models`]).
pub fn netlist_sources(out: &Path, family: &str) -> Result<NetlistSources> {
    let netlist = out.join("fpga").join(format!("netlist_{family}.v"));
    if !netlist.exists() {
        bail!(
            "{} missing: run `make postsynth-sim OUT={}` (or tools/fpga-flow.sh netlist) first",
            netlist.display(),
            out.display()
        );
    }
    let mut sources = NetlistSources {
        files: vec![netlist],
        include_dirs: Vec::new(),
    };
    match family {
        "ice40" => {
            let cells = yosys_datdir()?.join("ice40").join("cells_sim.v");
            if !cells.exists() {
                bail!("{} missing (yosys's ice40 cell models)", cells.display());
            }
            sources.files.push(cells);
        }
        "ecp5" => {
            let ecp5 = yosys_datdir()?.join("ecp5");
            let (cells, model) = write_ecp5_models(&out.join("fpga"), &ecp5)?;
            sources.files.extend([cells, model]);
            // The copy of cells_sim.v still includes cells_ff.vh and cells_io.vh.
            sources.include_dirs.push(ecp5);
        }
        _ => {}
    }
    Ok(sources)
}

/// File names, in the directory given to [`write_ecp5_models`], of yosys's ECP5 cell
/// models without `DP16KD` and of ccc's `DP16KD` model.
pub const ECP5_CELLS_FILE: &str = "ecp5_cells_sim.v";
pub const DP16KD_FILE: &str = "ecp5_dp16kd.v";

/// Writes into `dir` the ECP5 cell models a netlist simulation needs: yosys's
/// `ECP5_DIR/cells_sim.v` with its `DP16KD` module removed ([`ECP5_CELLS_FILE`]; it
/// still includes cells_ff.vh and cells_io.vh from ECP5_DIR) and [`DP16KD_MODEL`]
/// ([`DP16KD_FILE`]). yosys's DP16KD is replaced even where a later yosys gives it a
/// body: ours is the one tests/ecp5_bram.rs checks against yosys's block RAM mapping.
/// Returns the two paths.
pub fn write_ecp5_models(dir: &Path, ecp5_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let cells = ecp5_dir.join("cells_sim.v");
    let text = std::fs::read_to_string(&cells).with_context(|| {
        format!(
            "reading {} (yosys's ECP5 cell models; is yosys installed with its data files?)",
            cells.display()
        )
    })?;
    let filtered = without_module(&text, "DP16KD")
        .with_context(|| format!("removing yosys's DP16KD from {}", cells.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cells_out = dir.join(ECP5_CELLS_FILE);
    let header = format!(
        "// {} without its DP16KD module (an empty one in yosys), written by `ccc simulate`;\n\
         // DP16KD is simulated by {DP16KD_FILE}, ccc's model.\n",
        cells.display()
    );
    std::fs::write(&cells_out, header + &filtered)
        .with_context(|| format!("writing {}", cells_out.display()))?;
    let model_out = dir.join(DP16KD_FILE);
    std::fs::write(&model_out, DP16KD_MODEL)
        .with_context(|| format!("writing {}", model_out.display()))?;
    Ok((cells_out, model_out))
}

/// Byte ranges of every definition of module `name` in Verilog `text`, each from the
/// start of its `module` line to the end of its `endmodule` line. Line-based, as yosys's
/// cell libraries put each `module` and `endmodule` on a line of its own.
fn module_spans(text: &str, name: &str) -> Result<Vec<std::ops::Range<usize>>> {
    let opens = |l: &str| {
        l.trim_start()
            .strip_prefix("module")
            .filter(|r| r.starts_with(char::is_whitespace))
            .and_then(|r| r.trim_start().strip_prefix(name))
            .map(str::trim_start)
            .is_some_and(|r| r.is_empty() || r.starts_with(['(', '#', ';']))
    };
    let mut spans = Vec::new();
    let mut open: Option<usize> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let end = at + line.len();
        if open.is_none() && opens(line) {
            open = Some(at);
        }
        if let Some(start) = open
            && line.trim_start().starts_with("endmodule")
        {
            spans.push(start..end);
            open = None;
        }
        at = end;
    }
    if open.is_some() {
        bail!("module {name} has no endmodule");
    }
    Ok(spans)
}

/// `text` without the definition of module `name`. A missing module is not an error
/// (nothing clashes with ours); one that cannot be cut out cleanly is, since the
/// simulators would then see two.
fn without_module(text: &str, name: &str) -> Result<String> {
    let spans = module_spans(text, name)?;
    if spans.len() > 1 {
        bail!("module {name} is defined {} times", spans.len());
    }
    let mut kept = text.to_string();
    if let Some(span) = spans.into_iter().next() {
        kept.replace_range(span, "");
    }
    Ok(kept)
}

/// The one definition of module `name` in Verilog `text` (e.g. a primitive's simulation
/// model cut from a yosys cell library).
pub fn module_text(text: &str, name: &str) -> Result<String> {
    match module_spans(text, name)?.as_slice() {
        [span] => Ok(text[span.clone()].to_string()),
        [] => bail!("module {name} is not defined"),
        spans => bail!("module {name} is defined {} times", spans.len()),
    }
}

/// The directories of the sources, for the `include`s of yosys's cell models (the ECP5
/// ones include `cells_ff.vh` and `cells_io.vh` from beside them).
fn include_dirs(sources: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = sources
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// yosys's data directory: `yosys-config --datdir` where the development package is
/// installed, else PREFIX/share/yosys beside the `yosys` binary on PATH (Debian's `yosys`
/// package ships the cell models without `yosys-config`).
pub fn yosys_datdir() -> Result<PathBuf> {
    if let Ok(o) = Command::new("yosys-config").arg("--datdir").output()
        && o.status.success()
    {
        return Ok(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("yosys"))
        .find(|b| b.is_file())
        .and_then(|b| {
            let prefix = b.canonicalize().ok()?.parent()?.parent()?.to_path_buf();
            Some(prefix.join("share").join("yosys"))
        })
        .filter(|d| d.is_dir())
        .context("cannot find yosys's data directory: neither `yosys-config --datdir` nor PREFIX/share/yosys beside `yosys` on PATH")
}

pub fn parse(text: &str) -> Result<SimRun> {
    let mut r = SimRun::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> Result<i64> {
            f.get(i)
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("bad simulator line `{line}`"))
        };
        match f.first().copied() {
            Some("DBG") => {
                let (img, l, ch, pix, v) = (num(1)?, num(2)?, num(3)?, num(4)?, num(5)?);
                r.acts
                    .entry((img as usize, l as usize))
                    .or_default()
                    .insert((ch as usize, pix as usize), v as u8);
            }
            Some("OUT") => {
                let (img, v) = (num(1)?, num(3)?);
                r.outputs.entry(img as usize).or_default().push(v);
            }
            Some("EV") => r
                .events
                .push((num(1)? as u64, num(2)? as u8, num(3)? as usize)),
            Some("DONE") => {
                r.done.insert(num(1)? as usize, num(2)? as u64);
            }
            Some("TIMEOUT") => r.timeout = true,
            Some("ERR") => r.errors.push((num(1)? as u64, num(2)? as u8)),
            Some("READY_IN_RESET") => r.ready_in_reset.push(num(1)?),
            Some("RESET") => {
                // Everything before a reset pulse belongs to images the reset abandoned;
                // what the port did (errors, ready during reset) is kept.
                r.resets.push(num(1)? as u64);
                r = SimRun {
                    errors: std::mem::take(&mut r.errors),
                    resets: std::mem::take(&mut r.resets),
                    ready_in_reset: std::mem::take(&mut r.ready_in_reset),
                    ..SimRun::default()
                };
            }
            _ => {}
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_text_cuts_one_definition() {
        let text = "module SB_LUT4 (output O);\n  assign O = 1'b0;\nendmodule\nmodule SB_LUT4X(y);\nendmodule\n";
        assert_eq!(
            module_text(text, "SB_LUT4").unwrap(),
            "module SB_LUT4 (output O);\n  assign O = 1'b0;\nendmodule\n"
        );
        assert!(module_text(text, "SB_CARRY").is_err());
        assert!(module_text(&format!("{text}{text}"), "SB_LUT4").is_err());
    }

    #[test]
    fn without_module_cuts_exactly_that_module() {
        let text = "module A(x);\nendmodule\nmodule DP16KD(\n  input a);\n\tparameter P = 1;\nendmodule\nmodule DP16KDX(y);\nendmodule\n`include \"cells_ff.vh\"\n";
        let kept = without_module(text, "DP16KD").unwrap();
        assert_eq!(
            kept,
            "module A(x);\nendmodule\nmodule DP16KDX(y);\nendmodule\n`include \"cells_ff.vh\"\n"
        );
        // Absent: nothing to cut.
        assert_eq!(without_module(&kept, "DP16KD").unwrap(), kept);
        assert!(without_module("module DP16KD (a);\n", "DP16KD").is_err());
        assert!(
            without_module(
                "module DP16KD;\nendmodule\nmodule DP16KD;\nendmodule\n",
                "DP16KD"
            )
            .is_err()
        );
    }

    #[test]
    fn the_dp16kd_model_declares_what_yosys_declares() {
        // Same module name and the parameters yosys's write_verilog sets on DP16KD.
        assert!(DP16KD_MODEL.contains("\nmodule DP16KD(\n"));
        for p in [
            "DATA_WIDTH_A",
            "DATA_WIDTH_B",
            "REGMODE_A",
            "RESETMODE",
            "ASYNC_RESET_RELEASE",
            "CSDECODE_B",
            "WRITEMODE_A",
            "CLKAMUX",
            "CLKBMUX",
            "GSR",
            "INITVAL_00",
            "INITVAL_3F",
            "INIT_DATA",
        ] {
            assert!(
                DP16KD_MODEL.contains(&format!("\tparameter {p} = ")),
                "{p} missing"
            );
        }
    }
}
