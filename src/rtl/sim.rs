//! RTL simulation: writes the drivers next to the emitted Verilog (OUT/tb: an Icarus
//! testbench, a Verilator C++ driver and a Makefile), builds and runs them on images,
//! and compares every activation, logit and class with the bit-exact integer
//! reference; also measures cycles per layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::emit::RtlInfo;
use crate::output::OutDir;
use crate::pack::network::PackedNet;

pub const TB_VERILOG: &str = include_str!("../../testbench/tb_ccc_top.v");
pub const TB_CPP: &str = include_str!("../../testbench/ccc_tb.cpp");
/// ccc's behavioural model of the ECP5 `DP16KD` block RAM: yosys ships an empty module,
/// so an ECP5 netlist simulated with yosys's models alone reads zeros from every block
/// RAM. Embedded so that `ccc simulate` finds it from any working directory.
pub const DP16KD_MODEL: &str = include_str!("../../testbench/ecp5/DP16KD.v");

const TB_MAKEFILE: &str = r#"# Builds and runs the emitted accelerator's testbenches (written by ccc).
# Usage (from OUT/tb): make verilator | make icarus | make lint
#   IMAGES=images.hex N=1 BYTES=<bytes per image>; the run happens in ../rtl.
RTL      := $(sort $(wildcard ../rtl/*.v))
DEFS     := $(shell cat defines.txt)
IMAGES   ?= images.hex
N        ?= 1
BYTES    ?= 1

.PHONY: verilator icarus lint
obj_dir/Vccc_top: $(RTL) ccc_tb.cpp
	verilator --cc --exe --build -O2 -j 2 -Wno-fatal --top-module ccc_top -CFLAGS "$(filter -DROWS=% -DPIX_W=%,$(DEFS))" $(RTL) ccc_tb.cpp -o Vccc_top

verilator: obj_dir/Vccc_top
	cd ../rtl && ../tb/obj_dir/Vccc_top ../tb/$(IMAGES) $(N) $(BYTES)

tb.vvp: $(RTL) tb_ccc_top.v
	iverilog -g2005 -s tb_ccc_top $(DEFS) -o tb.vvp $(RTL) tb_ccc_top.v

icarus: tb.vvp
	cd ../rtl && vvp -n ../tb/tb.vvp +file=../tb/$(IMAGES) +images=$(N) +bytes=$(BYTES)

lint:
	verilator --lint-only -Wall --top-module ccc_top $(RTL)
"#;

/// Writes OUT/tb/{tb_ccc_top.v, ccc_tb.cpp, Makefile}. `defines.txt` is written by
/// [`write_defines`] once the RTL's widths are known.
pub fn write_drivers(out: &OutDir) -> Result<()> {
    out.write("tb/tb_ccc_top.v", TB_VERILOG.as_bytes())?;
    out.write("tb/ccc_tb.cpp", TB_CPP.as_bytes())?;
    out.write("tb/Makefile", TB_MAKEFILE.as_bytes())?;
    let info: RtlInfo = serde_json::from_slice(
        &std::fs::read(out.path().join("rtl/rtl.json")).context("reading rtl/rtl.json")?,
    )?;
    out.write("tb/defines.txt", defines(&info).as_bytes())?;
    Ok(())
}

fn defines(info: &RtlInfo) -> String {
    format!(
        "-DWM_AW={} -DWM_W={} -DLAYER_W={} -DN_W={} -DPIX_W={} -DROWS={}\n",
        info.wm_aw, info.wm_w, info.layer_w, info.n_w, info.pix_w, info.rows
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Simulator {
    Verilator,
    Icarus,
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
    /// Seconds spent compiling the simulator and running it.
    pub build_secs: f64,
    pub run_secs: f64,
}

fn run_cmd(cmd: &mut Command, what: &str) -> Result<String> {
    let o = cmd
        .output()
        .with_context(|| format!("cannot run {what} (is it installed?)"))?;
    if !o.status.success() {
        bail!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Images (each C x H x W) as the input stream sends them: one hex byte per line, in
/// y, x, channel order.
pub fn images_hex(info: &RtlInfo, images: &[Vec<u8>]) -> String {
    let (c, h, w) = (info.in_c, info.in_h, info.in_w);
    let mut hex = String::with_capacity(images.len() * c * h * w * 3);
    for img in images {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    hex.push_str(&format!("{:02x}\n", img[(ch * h + y) * w + x]));
                }
            }
        }
    }
    hex
}

/// Builds (if needed) and runs one simulator over `images` (each C x H x W in the
/// model's input order; streamed as y, x, channel). Returns the parsed output.
pub fn run(
    out: &Path,
    info: &RtlInfo,
    images: &[Vec<u8>],
    sim: Simulator,
    vcd: Option<&Path>,
) -> Result<SimRun> {
    run_sources(out, info, images, sim, vcd, None)
}

/// The Verilog that simulates a post-synthesis netlist: the netlist and its cell models,
/// and the directories their `include`s search besides the files' own.
#[derive(Clone, Debug, Default)]
pub struct NetlistSources {
    pub files: Vec<PathBuf>,
    pub include_dirs: Vec<PathBuf>,
}

/// [`run`] on other Verilog than OUT/rtl's: a post-synthesis netlist of `ccc_top` and
/// the simulation models of its cells (see [`netlist_sources`]).
pub fn run_sources(
    out: &Path,
    info: &RtlInfo,
    images: &[Vec<u8>],
    sim: Simulator,
    vcd: Option<&Path>,
    netlist: Option<&NetlistSources>,
) -> Result<SimRun> {
    // The simulators run in OUT/tb and OUT/rtl, so relative paths would break.
    let out = &out
        .canonicalize()
        .with_context(|| format!("{} not found", out.display()))?;
    let tb = out.join("tb");
    let rtl = out.join("rtl");
    let sources: Vec<PathBuf> = match netlist {
        Some(n) => n
            .files
            .iter()
            .map(|f| std::path::absolute(f).with_context(|| format!("resolving {}", f.display())))
            .collect::<Result<_>>()?,
        None => info.files.iter().map(|f| rtl.join(f)).collect(),
    };
    let images_path = tb.join("images.hex");
    std::fs::write(&images_path, images_hex(info, images)).context("writing tb/images.hex")?;
    let bytes = info.in_c * info.in_h * info.in_w;
    let limit = 200_000_000u64;
    let mut includes = include_dirs(&sources);
    if let Some(n) = netlist {
        includes.extend(n.include_dirs.iter().cloned());
    }
    let t_build = std::time::Instant::now();
    let (build_secs, t_run, text) = match sim {
        Simulator::Icarus => {
            let vvp = tb.join("tb.vvp");
            let mut cmd = Command::new("iverilog");
            // The vendor cell models that netlists need use SystemVerilog constructs.
            let generation = if netlist.is_some() {
                "-g2012"
            } else {
                "-g2005"
            };
            cmd.args([generation, "-s", "tb_ccc_top"]);
            for d in defines(info).split_whitespace() {
                cmd.arg(d);
            }
            for d in &includes {
                cmd.arg("-I").arg(d);
            }
            cmd.arg("-o")
                .arg(&vvp)
                .args(&sources)
                .arg(tb.join("tb_ccc_top.v"));
            run_cmd(&mut cmd, "iverilog")?;
            let build_secs = t_build.elapsed().as_secs_f64();
            let t_run = std::time::Instant::now();
            let mut cmd = Command::new("vvp");
            cmd.current_dir(&rtl)
                .arg("-n")
                .arg(&vvp)
                .arg(format!("+file={}", images_path.display()))
                .arg(format!("+images={}", images.len()))
                .arg(format!("+bytes={bytes}"))
                .arg(format!("+limit={limit}"));
            if let Some(v) = vcd {
                cmd.arg(format!("+vcd={}", v.display()));
            }
            (build_secs, t_run, run_cmd(&mut cmd, "vvp")?)
        }
        Simulator::Verilator => {
            let exe = tb.join("obj_dir/Vccc_top");
            let mut cmd = Command::new("verilator");
            cmd.current_dir(&tb).args([
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
            ]);
            if vcd.is_some() {
                cmd.arg("--trace");
            }
            if netlist.is_some() {
                // yosys's iCE40 models give some inputs defaults (`input WCLKE = 1'b1`),
                // which Verilator 5.0 cannot parse; the netlists connect every port.
                cmd.arg("+define+NO_ICE40_DEFAULT_ASSIGNMENTS");
            }
            for d in &includes {
                cmd.arg(format!("-I{}", d.display()));
            }
            cmd.arg("-CFLAGS")
                .arg(format!("-DROWS={} -DPIX_W={}", info.rows, info.pix_w));
            cmd.args(&sources).arg("ccc_tb.cpp");
            run_cmd(&mut cmd, "verilator")?;
            let build_secs = t_build.elapsed().as_secs_f64();
            let t_run = std::time::Instant::now();
            let mut cmd = Command::new(&exe);
            cmd.current_dir(&rtl)
                .arg(&images_path)
                .arg(images.len().to_string())
                .arg(bytes.to_string())
                .arg(limit.to_string());
            if let Some(v) = vcd {
                cmd.arg(v);
            }
            (build_secs, t_run, run_cmd(&mut cmd, "the Verilator model")?)
        }
    };
    let mut r = parse(&text)?;
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
            _ => {}
        }
    }
    Ok(r)
}

/// The first difference between the RTL and the reference, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Activation {
        image: usize,
        layer: usize,
        /// physical channel (row) and the model's channel it holds
        channel: usize,
        model_channel: usize,
        y: usize,
        x: usize,
        rtl: Option<u8>,
        reference: u8,
    },
    Output {
        image: usize,
        index: usize,
        rtl: Option<i64>,
        reference: i64,
    },
    Missing {
        image: usize,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Activation {
                image,
                layer,
                channel,
                model_channel,
                y,
                x,
                rtl,
                reference,
            } => write!(
                f,
                "image {image}: first difference at conv layer {layer}, channel {model_channel} (physical row {channel}), pixel (y={y}, x={x}): RTL {} vs reference {reference}",
                rtl.map_or("nothing".to_string(), |v| v.to_string())
            ),
            Mismatch::Output {
                image,
                index,
                rtl,
                reference,
            } => write!(
                f,
                "image {image}: output word {index} (logits in class order, then the class) is {} in RTL, {reference} in the reference",
                rtl.map_or("missing".to_string(), |v| v.to_string())
            ),
            Mismatch::Missing { image } => write!(f, "image {image}: the RTL produced no result"),
        }
    }
}

/// Compares a simulator run with the packed reference, image by image, layer by layer.
pub fn compare(net: &PackedNet, images: &[Vec<u8>], run: &SimRun) -> Vec<Mismatch> {
    let reference = net.reference();
    let mut found = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let want = reference.run(img, true);
        let mut first: Option<Mismatch> = None;
        for (l, map) in want.layers.iter().enumerate() {
            let got = run.acts.get(&(i, l));
            let (ch_n, h, w) = map.dim();
            'outer: for ch in 0..ch_n {
                for y in 0..h {
                    for x in 0..w {
                        let pix = y * w + x;
                        let g = got.and_then(|m| m.get(&(ch, pix))).copied();
                        if g != Some(map[[ch, y, x]]) {
                            first = Some(Mismatch::Activation {
                                image: i,
                                layer: l,
                                channel: ch,
                                model_channel: net.layers[l].row_perm[ch],
                                y,
                                x,
                                rtl: g,
                                reference: map[[ch, y, x]],
                            });
                            break 'outer;
                        }
                    }
                }
            }
            if first.is_some() {
                break;
            }
        }
        if first.is_none() {
            let mut want_out: Vec<i64> = want.logits.iter().map(|&v| v as i64).collect();
            want_out.push(want.class as i64);
            match run.outputs.get(&i) {
                None => first = Some(Mismatch::Missing { image: i }),
                Some(got) => {
                    for (k, &wv) in want_out.iter().enumerate() {
                        if got.get(k) != Some(&wv) {
                            first = Some(Mismatch::Output {
                                image: i,
                                index: k,
                                rtl: got.get(k).copied(),
                                reference: wv,
                            });
                            break;
                        }
                    }
                }
            }
        }
        found.extend(first);
    }
    found
}

/// Cycles of one image by phase: input, each conv layer, classifier + output.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MeasuredCycles {
    pub input: u64,
    pub layers: Vec<u64>,
    pub classifier: u64,
    pub total: u64,
}

/// Splits the first image's run into phases from the EV events.
pub fn measure(run: &SimRun, layers: usize) -> Option<MeasuredCycles> {
    let end = *run.done.get(&0)?;
    let mut m = MeasuredCycles {
        layers: vec![0; layers],
        ..Default::default()
    };
    let evs: Vec<&(u64, u8, usize)> = run.events.iter().filter(|e| e.0 <= end).collect();
    for (k, e) in evs.iter().enumerate() {
        let next = evs.get(k + 1).map_or(end + 1, |n| n.0);
        let span = next - e.0;
        match e.1 {
            0 => m.input += span,
            1 => {
                if let Some(l) = m.layers.get_mut(e.2) {
                    *l += span;
                }
            }
            _ => m.classifier += span,
        }
    }
    m.total = end + 1;
    Some(m)
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
