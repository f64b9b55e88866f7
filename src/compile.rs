//! The pipeline driver: ingest → lower → quantize → pack → schedule → report, as one
//! typed value ([`Compiled`]) that the writers (and the RTL emitter) consume.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::dataset::Dataset;
use crate::fit::{self, Target};
use crate::lower::{Decomposition, LoweredNet, lower_with};
use crate::model;
use crate::output::{OutDir, OutTensor, safetensors_bytes};
use crate::pack::group::{MAX_ALPHA, Strategy, check_gamma};
use crate::pack::network::{PackOptions, PackedNet, pack_network};
use crate::quant::{QNet, quantize};
use crate::reference::evaluate;
use crate::report::{self, Report};
use crate::rtl::design::{self, HwDesign, Provenance};
use crate::schedule::{ArrayShape, Schedule, schedule};

/// Largest array side accepted (far beyond any FPGA; keeps the arithmetic sane).
pub const MAX_ARRAY_SIDE: usize = 4096;
/// γ when neither the command line nor the graph gives one (the seeds' value).
pub const DEFAULT_GAMMA: f64 = 1.75;

/// Everything that selects how a model is compiled.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CompileOptions {
    pub graph: Option<PathBuf>,
    pub rows: usize,
    pub cols: usize,
    /// One α for all layers, or one per conv layer; `None`: the graph's, else 1.
    pub alpha: Option<Vec<usize>>,
    pub gamma: Option<f64>,
    pub strategy: Strategy,
    pub section: usize,
    pub dense: bool,
    pub act_frac: u32,
    /// Also emit OUT/rtl (the accelerator's Verilog and memory images).
    pub rtl: bool,
    /// The model's input is pixel / S (255 for torchvision's `ToTensor`); `None`: ccc's
    /// own pixel / 256. Folded into the first conv's weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_scale: Option<f64>,
    /// Group every layer anew, also those whose model stores a grouping.
    #[serde(default)]
    pub regroup: bool,
    /// How decomposed convs run on the array.
    #[serde(default)]
    pub decomposed: Decomposition,
    /// MAC lanes of the head unit; `None`: [`crate::schedule::head_lanes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_lanes: Option<usize>,
    /// Run the head's linear layers on the array, combined at this α
    /// ([`crate::quant::QNet::head_layers`]); `None`: on the head unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_on_array: Option<usize>,
}

impl Default for CompileOptions {
    /// What `ccc compile MODEL` does with no options: a 32x32 array, α and γ from the
    /// graph, the default grouping strategy, inner activations at 2^-5, RTL emitted.
    fn default() -> Self {
        CompileOptions {
            graph: None,
            rows: 32,
            cols: 32,
            alpha: None,
            gamma: None,
            strategy: Strategy::default(),
            section: 0,
            dense: false,
            act_frac: crate::quant::DEFAULT_ACT_FRAC,
            rtl: true,
            input_scale: None,
            regroup: false,
            decomposed: Decomposition::default(),
            head_lanes: None,
            head_on_array: None,
        }
    }
}

/// How an output directory was made (OUT/compile.json).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CompileRecord {
    pub model: PathBuf,
    pub options: CompileOptions,
}

impl CompileRecord {
    pub fn read(out: &Path) -> Result<Self> {
        let p = out.join("compile.json");
        let text = std::fs::read_to_string(&p).with_context(|| {
            format!(
                "reading {} (is {} a `ccc compile` output?)",
                p.display(),
                out.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }
}

/// The compiled model: every stage's output.
pub struct Compiled {
    pub source: PathBuf,
    pub options: CompileOptions,
    pub lowered: LoweredNet,
    pub qnet: QNet,
    pub packed: PackedNet,
    pub schedule: Schedule,
    /// The accelerator's design (with `options.rtl`).
    pub design: Option<HwDesign>,
    pub report: Report,
    /// A model with decomposed convs compiled with the other mapping (its design built
    /// when this one's is, its RTL never written), which the report compares against
    /// this one.
    pub alternative: Option<Box<Compiled>>,
    /// The model compiled with the other mapping of its head ([`CompileOptions::
    /// other_head_mapping`]), for the report's comparison; `None` where the array cannot
    /// take the head (the report says why).
    pub head_alternative: Option<Box<Compiled>>,
}

pub fn check_array(rows: usize, cols: usize) -> Result<ArrayShape> {
    for (what, v) in [("--rows", rows), ("--cols", cols)] {
        if v == 0 || v > MAX_ARRAY_SIDE {
            bail!("{what} = {v} is out of range (1..={MAX_ARRAY_SIDE})");
        }
    }
    Ok(ArrayShape { rows, cols })
}

/// Resolves per-layer α: command line (one value or one per layer), else the graph's
/// `alpha` on each conv, else 1 (no combining).
pub fn resolve_alphas(cli: Option<&[usize]>, net: &LoweredNet) -> Result<Vec<usize>> {
    let n = net.layers.len();
    let alphas = match cli {
        Some([a]) => vec![*a; n],
        Some(list) if list.len() == n => list.to_vec(),
        Some(list) => bail!(
            "--alpha has {} values but the model has {n} conv layers (give one value, or one per layer)",
            list.len()
        ),
        None => net.layers.iter().map(|l| l.alpha.unwrap_or(1)).collect(),
    };
    for (i, &a) in alphas.iter().enumerate() {
        if a == 0 || a > MAX_ALPHA {
            bail!(
                "alpha = {a} for conv layer {i} (graph layer {}) is out of range (1..={MAX_ALPHA})",
                net.layers[i].conv_index
            );
        }
    }
    Ok(alphas)
}

/// Loads and lowers a model (the float network every other form derives from).
pub fn load_lowered(path: &Path, graph: Option<&Path>) -> Result<LoweredNet> {
    load_scaled(path, graph, None, Decomposition::default())
}

/// [`load_lowered`] for a model whose input is pixel / `input_scale`, its decomposed
/// convs lowered as `decomposition` says.
pub fn load_scaled(
    path: &Path,
    graph: Option<&Path>,
    input_scale: Option<f64>,
    decomposition: Decomposition,
) -> Result<LoweredNet> {
    let mut net = model::load(path, graph)?;
    if let Some(s) = input_scale {
        if !(s.is_finite() && s > 0.0) {
            bail!("--input-scale {s} must be a positive number");
        }
        // ccc's pixel p is p / 2^INPUT_FRAC; the model expects p / s.
        net.scale_first_conv(f64::from(1u32 << crate::quant::INPUT_FRAC) / s)?;
    }
    Ok(lower_with(&net, decomposition)?)
}

pub fn pack_options(lowered: &LoweredNet, o: &CompileOptions) -> Result<PackOptions> {
    let gamma = match (o.gamma, lowered.gamma) {
        (Some(g), _) => check_gamma(g).context("--gamma")?,
        (None, Some(g)) => {
            check_gamma(g).with_context(|| format!("{}: packing.gamma", lowered.path.display()))?
        }
        (None, None) => DEFAULT_GAMMA,
    };
    Ok(PackOptions {
        alphas: resolve_alphas(o.alpha.as_deref(), lowered)?,
        gamma,
        strategy: o.strategy,
        section: o.section,
        dense: o.dense,
        regroup: o.regroup,
        head_on_array: o.head_on_array,
    })
}

impl CompileOptions {
    /// The same options with the head on the head unit if it is on the array, and on the
    /// array (dense: α 1) if not; the head unit with the lanes the compiler picks.
    pub fn other_head_mapping(&self) -> CompileOptions {
        CompileOptions {
            head_on_array: match self.head_on_array {
                Some(_) => None,
                None => Some(1),
            },
            head_lanes: None,
            ..self.clone()
        }
    }

    /// The head's mapping, as the report names it.
    pub fn head_mapping_name(&self) -> String {
        match self.head_on_array {
            None => "head unit".into(),
            Some(a) => format!("array (α {a})"),
        }
    }

    /// The same options with the other mapping of the decomposed convs. A per-layer α
    /// list counts the selected mapping's layers; the other mapping takes the graph's.
    pub fn other_mapping(&self) -> CompileOptions {
        CompileOptions {
            decomposed: self.decomposed.other(),
            alpha: self.alpha.clone().filter(|a| a.len() == 1),
            ..self.clone()
        }
    }
}

pub fn compile(path: &Path, o: &CompileOptions) -> Result<Compiled> {
    let mut c = compile_one(path, o)?;
    if c.lowered.decomposed > 0 {
        let other = o.decomposed.other();
        let alt = compile_one(path, &o.other_mapping()).with_context(|| {
            format!(
                "compiling {} with the other mapping of its decomposed convs",
                path.display()
            )
        })?;
        c.report.decomposition = Some(vec![
            report::MappingRow::of(&c.report, o.decomposed.name(), true),
            report::MappingRow::of(&alt.report, other.name(), false),
        ]);
        c.alternative = Some(Box::new(alt));
    }
    let other = o.other_head_mapping();
    let this_row = report::MappingRow::of(&c.report, o.head_mapping_name(), true);
    c.report.head_mapping = Some(match compile_one(path, &other) {
        Ok(alt) => {
            let row = report::MappingRow::of(&alt.report, other.head_mapping_name(), false);
            c.head_alternative = Some(Box::new(alt));
            report::HeadMapping {
                rows: vec![this_row, row],
                other_error: None,
            }
        }
        // The head unit takes every head the array does: only the array can refuse one.
        Err(e) if o.head_on_array.is_none() => report::HeadMapping {
            rows: vec![this_row],
            other_error: Some(format!("{e:#}")),
        },
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "compiling {} with the head on the head unit",
                    path.display()
                )
            });
        }
    });
    Ok(c)
}

/// [`compile`] with one mapping of the decomposed convs.
fn compile_one(path: &Path, o: &CompileOptions) -> Result<Compiled> {
    let array = check_array(o.rows, o.cols)?;
    let lowered = load_scaled(path, o.graph.as_deref(), o.input_scale, o.decomposed)?;
    let qnet = quantize(&lowered, o.act_frac)?;
    let popts = pack_options(&lowered, o)?;
    let packed = pack_network(&qnet, &popts)?;
    if let (Some(n), Some(_)) = (o.head_lanes, o.head_on_array) {
        bail!(
            "{}: --head-lanes {n} with --head-on-array: the head runs on the array, there \
             is no head unit",
            path.display()
        );
    }
    if let Some(n) = o.head_lanes {
        crate::schedule::check_head_lanes(&packed, n)
            .with_context(|| format!("{}: --head-lanes {n}", path.display()))?;
    }
    let mut schedule = schedule(&packed, array, o.head_lanes);
    // The dense baseline (same array, no combining) for the report's comparison.
    let dense = if popts.dense {
        packed.clone()
    } else {
        pack_network(
            &qnet,
            &PackOptions {
                dense: true,
                ..popts.clone()
            },
        )?
    };
    let mut dense_schedule = crate::schedule::schedule(&dense, array, o.head_lanes);
    let designs = if o.rtl {
        let prov = provenance(path, o, &packed.name);
        let design = design::build(&packed, &schedule, prov.clone())?;
        // The dense baseline's design only feeds the fit model's comparison; a baseline
        // the RTL cannot hold just has no prediction.
        let dense_design = design::build(&dense, &dense_schedule, prov).ok();
        // The hardware clears its buffers after reset: the first image waits for it.
        schedule.set_clear_cycles(&packed, design.capacity.clear_cycles());
        if let Some(dd) = &dense_design {
            dense_schedule.set_clear_cycles(&dense, dd.capacity.clear_cycles());
        }
        Some((design, dense_design))
    } else {
        None
    };
    let mut report = report::build(
        &packed,
        &schedule,
        &dense_schedule,
        &path.display().to_string(),
    );
    let design = designs.map(|(design, dense_design)| {
        report.fpga = Some(crate::fpga_report::FpgaSection {
            prediction: fit::predict(&design, dense_design.as_ref(), None),
            interval_cycles: schedule.interval,
            measured: None,
            memory: [fit::Family::Ice40, fit::Family::Ecp5]
                .into_iter()
                .map(|f| fit::memory_budget(&packed, &design, f))
                .collect(),
        });
        design
    });
    Ok(Compiled {
        source: path.to_path_buf(),
        options: o.clone(),
        lowered,
        qnet,
        packed,
        schedule,
        design,
        report,
        alternative: None,
        head_alternative: None,
    })
}

#[derive(Serialize)]
struct PackedMeta<'a> {
    format: &'static str,
    generator: String,
    net: &'a PackedNet,
    array: ArrayShape,
}

/// The packed network as safetensors: per layer (physical row order) `weight` i8 [N,G],
/// `selector` u8 [N,G], `bias` i32 [N], `taps` i32 [T,3] (channel, dy, dx),
/// `group_offsets` i32 [G+1], `row_perm` i32 [N] (a filter repeated: a row copy); the
/// classifier's `weight` i8 and `bias` i32 (an MLP head's hidden layers `head.{i}.weight`
/// and `head.{i}.bias` before it); all scalar parameters as JSON under the `ccc.packed`
/// metadata key.
pub fn packed_safetensors(net: &PackedNet, array: ArrayShape) -> Result<Vec<u8>> {
    let mut t: Vec<(String, OutTensor)> = Vec::new();
    let as_i32 = |v: usize| i32::try_from(v).expect("sizes fit i32 (bounded at ingest)");
    for (i, l) in net.layers.iter().enumerate() {
        let (n, g) = l.weight.dim();
        let p = format!("layers.{i}");
        t.push((
            format!("{p}.weight"),
            OutTensor::i8(&[n, g], l.weight.iter().map(|&v| v as i8)),
        ));
        t.push((
            format!("{p}.selector"),
            OutTensor::u8(&[n, g], l.selector.iter().copied()),
        ));
        t.push((
            format!("{p}.bias"),
            OutTensor::i32(&[n], l.bias.iter().copied()),
        ));
        t.push((
            format!("{p}.taps"),
            OutTensor::i32(
                &[l.taps.len(), 3],
                l.taps
                    .iter()
                    .flat_map(|tp| [as_i32(tp.channel), tp.dy as i32, tp.dx as i32]),
            ),
        ));
        t.push((
            format!("{p}.group_offsets"),
            OutTensor::i32(&[g + 1], l.group_offsets.iter().map(|&v| as_i32(v))),
        ));
        t.push((
            format!("{p}.row_perm"),
            OutTensor::i32(&[n], l.row_perm.iter().map(|&v| as_i32(v))),
        ));
    }
    let c = &net.classifier;
    for (i, h) in c.hidden.iter().enumerate() {
        t.push((
            format!("head.{i}.weight"),
            OutTensor::i8(
                &[h.weight.nrows(), h.weight.ncols()],
                h.weight.iter().map(|&v| v as i8),
            ),
        ));
        t.push((
            format!("head.{i}.bias"),
            OutTensor::i32(&[h.bias.len()], h.bias.iter().copied()),
        ));
    }
    t.push((
        "classifier.weight".into(),
        OutTensor::i8(
            &[c.weight.nrows(), c.weight.ncols()],
            c.weight.iter().map(|&v| v as i8),
        ),
    ));
    t.push((
        "classifier.bias".into(),
        OutTensor::i32(&[c.bias.len()], c.bias.iter().copied()),
    ));
    let meta = serde_json::to_string(&PackedMeta {
        format: "ccc.packed/1",
        generator: format!("ccc {}", env!("CARGO_PKG_VERSION")),
        net,
        array,
    })
    .context("serializing packed metadata")?;
    safetensors_bytes(&t, Some(("ccc.packed", meta)))
}

/// Writes OUT/report.json, OUT/report.md, OUT/packed.safetensors, OUT/schedule.json,
/// OUT/plots/ (SVG pictures), OUT/scalesim/ (SCALE-Sim topologies) and, with `rtl`,
/// OUT/rtl/ into a staged output directory (the caller commits it).
pub fn write_outputs(c: &Compiled, out: &OutDir, rtl: bool) -> Result<()> {
    // What `ccc simulate OUT` needs to rebuild the reference for this output.
    // Absolute, so that `ccc simulate OUT` works from any directory.
    let record = CompileRecord {
        model: c.source.canonicalize().unwrap_or_else(|_| c.source.clone()),
        options: c.options.clone(),
    };
    out.write(
        "compile.json",
        (serde_json::to_string_pretty(&record)? + "\n").as_bytes(),
    )?;
    if let Some(d) = c.design.as_ref().filter(|_| rtl) {
        crate::rtl::emit::write(d, out)?;
        crate::rtl::sim::write_drivers(d, out)?;
    }
    out.write("report.json", c.report.to_json().as_bytes())?;
    out.write("report.md", c.report.to_markdown().as_bytes())?;
    out.write(
        "packed.safetensors",
        &packed_safetensors(&c.packed, c.schedule.array)?,
    )?;
    out.write(
        "schedule.json",
        (serde_json::to_string_pretty(&c.schedule)? + "\n").as_bytes(),
    )?;
    let plots = crate::plots::files(&c.qnet, &c.packed, &c.schedule, &c.report)?;
    for (name, text) in plots
        .into_iter()
        .chain(crate::scalesim::files(&c.packed, c.schedule.array))
    {
        out.write(&name, text.as_bytes())?;
    }
    Ok(())
}

/// The model path as headers show it: as given when relative, else relative to the
/// working directory when under it, else its file name (generated files never hold an
/// absolute path).
fn display_source(path: &Path) -> String {
    if path.is_relative() {
        return path.display().to_string();
    }
    std::env::current_dir()
        .ok()
        .and_then(|d| path.strip_prefix(d).ok().map(Path::to_path_buf))
        .or_else(|| path.file_name().map(PathBuf::from))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// The `ccc compile` command that regenerates a design compiled with `o`: every option
/// that shapes the output (the output directory does not).
pub fn regenerate_command(path: &Path, o: &CompileOptions) -> String {
    let mut c = format!(
        "ccc compile {} --rows {} --cols {}",
        display_source(path),
        o.rows,
        o.cols
    );
    if let Some(g) = &o.graph {
        c += &format!(" --graph {}", display_source(g));
    }
    if let Some(a) = &o.alpha {
        let list: Vec<String> = a.iter().map(usize::to_string).collect();
        c += &format!(" --alpha {}", list.join(","));
    }
    if let Some(g) = o.gamma {
        c += &format!(" --gamma {g}");
    }
    c += &format!(" --strategy {}", o.strategy);
    if o.section != 0 {
        c += &format!(" --section {}", o.section);
    }
    if o.dense {
        c += " --dense";
    }
    c += &format!(" --act-frac {}", o.act_frac);
    if let Some(s) = o.input_scale {
        c += &format!(" --input-scale {s}");
    }
    if o.regroup {
        c += " --regroup";
    }
    c
}

/// Where a design compiled from `path` with `o` comes from, for its headers.
fn provenance(path: &Path, o: &CompileOptions, model: &str) -> Provenance {
    Provenance {
        model: model.to_string(),
        source: display_source(path),
        command: regenerate_command(path, o),
    }
}

/// Refuses a design that does not fit `t` (before anything is written); otherwise
/// records the target in the report's FPGA section. Returns the fit line to show.
pub fn check_target(c: &mut Compiled, t: Target) -> Result<String> {
    let design = c.design.as_ref().with_context(|| {
        format!(
            "--target {} needs the RTL (compile without --no-rtl)",
            t.name()
        )
    })?;
    let e = fit::check(&c.packed, design, t)?;
    let d = t.device();
    let need = fit::device_need(&e);
    if let Some(f) = c.report.fpga.as_mut() {
        f.prediction.target = Some(t);
    }
    let crowded = [
        need.lut as f64 / d.lut as f64,
        need.dff as f64 / d.dff as f64,
    ]
    .into_iter()
    .any(|share| share > fit::PLACE_WARN);
    Ok(format!(
        "fits {}: {} {} / {}, {} FF / {}, {} BRAM / {} (fit model){}",
        d.name,
        need.lut,
        fit::logic_name(d.family),
        d.lut,
        need.dff,
        d.dff,
        need.bram,
        d.bram,
        if crowded {
            format!(
                "; warning: above {:.0}% of the device's logic or flip-flops, where nextpnr's placer has failed (docs/FPGA.md)",
                100.0 * fit::PLACE_WARN
            )
        } else {
            String::new()
        }
    ))
}

/// Measures float / 8-bit / packed accuracy on `d` into the report.
pub fn measure_accuracy(c: &mut Compiled, d: &Dataset, dataset: &str) -> Result<()> {
    let i = c.qnet.input;
    d.check_input(&c.source, [i.c, i.h, i.w])?;
    let a = evaluate(
        &c.lowered, &c.qnet, &c.packed, &d.images, &d.labels, dataset,
    );
    let packed_accuracy = |alt: &Compiled| {
        evaluate(
            &alt.lowered,
            &alt.qnet,
            &alt.packed,
            &d.images,
            &d.labels,
            dataset,
        )
        .packed
    };
    // The other mappings (of the decomposed convs, of the head) beside this one.
    let others = [
        (c.report.decomposition.as_mut(), c.alternative.as_deref()),
        (
            c.report.head_mapping.as_mut().map(|h| &mut h.rows),
            c.head_alternative.as_deref(),
        ),
    ];
    for (rows, alt) in others {
        let Some(rows) = rows else { continue };
        rows[0].accuracy = Some(a.packed);
        if let (Some(row), Some(alt)) = (rows.get_mut(1), alt) {
            row.accuracy = Some(packed_accuracy(alt));
        }
    }
    c.report.accuracy = Some(a);
    Ok(())
}

/// Recompiles the model of an output directory exactly as OUT/compile.json records it,
/// and refuses when the result differs from what OUT holds (the model or ccc changed
/// since): what `ccc simulate` and `ccc fpga-report` start from.
pub fn reload(out: &Path) -> Result<Compiled> {
    let record = CompileRecord::read(out)?;
    let c = compile(&record.model, &record.options)?;
    let stale = || {
        anyhow::anyhow!(
            "{} is stale: {} no longer compiles to the same packed network and design; run `ccc compile` again",
            out.display(),
            record.model.display()
        )
    };
    let on_disk = std::fs::read(out.join("packed.safetensors"))
        .with_context(|| format!("reading {}/packed.safetensors", out.display()))?;
    if packed_safetensors(&c.packed, c.schedule.array)? != on_disk {
        return Err(stale());
    }
    if let Some(d) = &c.design {
        let path = out.join("rtl").join(crate::rtl::emit::DESIGN_FILE);
        // The hardware, not where it was compiled from (compile.json records the model's
        // absolute path; the headers name it as the user did).
        let same = HwDesign::read(&path)
            .is_ok_and(|o| o.capacity == d.capacity && o.contents == d.contents);
        if !same {
            return Err(stale());
        }
    }
    Ok(c)
}
