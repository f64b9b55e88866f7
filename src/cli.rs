//! Command line: parses arguments and wires the pipeline stages together. No stage
//! logic lives here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::compile::{self, CompileOptions, Compiled};
use crate::dataset::{self, Dataset, Split};
use crate::output::{OutDir, OutTensor, safetensors_bytes, write_file_atomic};
use crate::pack::group::Strategy;
use crate::quant::DEFAULT_ACT_FRAC;
use crate::reference::evaluate;
use crate::report;
use crate::testgen::{self, BlockSpec, GenDtype, GenSpec, StemSpec};

#[derive(Parser)]
#[command(
    name = "ccc",
    version,
    about = "Column-combining compiler: packs sparse CNNs onto bit-serial systolic arrays"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Compile a model for an R x C array: quantize, pack, tile, schedule, emit the
    /// accelerator; write OUT/report.{json,md}, OUT/packed.safetensors,
    /// OUT/schedule.json, OUT/compile.json, OUT/rtl/ (Verilog, memory images) and
    /// OUT/tb/ (Icarus and Verilator drivers).
    Compile {
        model: PathBuf,
        #[command(flatten)]
        opts: PackArgs,
        /// With --dataset: also measure float / 8-bit / packed accuracy into the report.
        #[command(flatten)]
        data: DataArgs,
        /// Output directory (replaced atomically).
        #[arg(short, long, default_value = "out")]
        out: PathBuf,
        /// Refuse (before writing anything) a design that the fit model says does not
        /// fit this FPGA, naming the exceeded resource and the largest array that fits.
        #[arg(long, value_enum)]
        target: Option<crate::fit::Target>,
    },
    /// Add what the FPGA flows measured (OUT/fpga: yosys utilisation, nextpnr Fmax and
    /// utilisation, run times) next to the fit model's prediction in OUT/report.{json,md}.
    FpgaReport { out: PathBuf },
    /// Accuracy of the float, 8-bit unpacked and 8-bit packed networks on a dataset.
    Eval {
        model: PathBuf,
        #[command(flatten)]
        opts: PackArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Run the bit-exact integer reference on images; print logits and class, and
    /// optionally dump every layer's activations.
    Infer {
        model: PathBuf,
        #[command(flatten)]
        opts: PackArgs,
        #[command(flatten)]
        data: DataArgs,
        /// Use N seeded random images instead of a dataset.
        #[arg(long, value_name = "N")]
        random: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Which integer network form to run.
        #[arg(long, value_enum, default_value_t = Form::Packed)]
        form: Form,
        /// Write inputs, every layer's output (model channel order), pooled sums and
        /// logits to this safetensors file.
        #[arg(long, value_name = "FILE")]
        dump: Option<PathBuf>,
    },
    /// Simulate the emitted RTL of OUT (from `ccc compile`) on images and compare every
    /// activation, logit and class with the bit-exact reference; report cycles.
    Simulate {
        out: PathBuf,
        /// Number of images (Fashion-MNIST test images when the model takes 1x28x28 and
        /// the dataset is installed, else seeded random images).
        #[arg(long, default_value_t = 1)]
        images: usize,
        #[arg(long, value_enum, default_value_t = SimChoice::Both)]
        simulator: SimChoice,
        /// Write a waveform (VCD) of the run.
        #[arg(long, value_name = "FILE")]
        vcd: Option<PathBuf>,
        #[arg(long, default_value = dataset::DEFAULT_FASHION_MNIST_DIR)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Simulate the post-synthesis netlist OUT/fpga/netlist_FAMILY.v (generic, ice40,
        /// ecp5; `make postsynth-sim` writes it) instead of OUT/rtl. ECP5 block RAMs run on
        /// ccc's DP16KD model, written to OUT/fpga with yosys's other cell models.
        #[arg(long, value_name = "FAMILY")]
        netlist: Option<String>,
    },
    /// Print a model's layers, shapes and sparsity.
    Inspect {
        model: PathBuf,
        #[arg(long)]
        graph: Option<PathBuf>,
    },
    /// Train a shift-CNN with column combining (prune → combine → retrain) on CPU and
    /// write it in the model format `compile` reads, plus `<OUT>.train.json`.
    Train {
        #[command(flatten)]
        args: TrainArgs,
        /// Model file to write.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Train every α × γ of a grid (from --load, typically a trained dense model) and
    /// write OUT/sweep.{json,md,csv,svg} with the models.
    Sweep {
        #[command(flatten)]
        args: TrainArgs,
        /// α values (applied to every block stage; the stem stays dense).
        #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
        alphas: Vec<usize>,
        /// γ values.
        #[arg(long, value_delimiter = ',', default_value = "0.5,1,1.75")]
        gammas: Vec<f64>,
        /// Output directory (replaced atomically).
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Rewrite DIR/sweep.{md,csv,svg} from DIR/sweep.json (no training).
    SweepPlot { dir: PathBuf },
    /// Write a random sparse shift-CNN in the model format (for tests and benchmarks).
    GenModel {
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Input as C,H,W.
        #[arg(long, default_value = "1,12,12", value_delimiter = ',')]
        input: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// Dense KxK stem conv as OUT,K,STRIDE,PADDING; "none" for no stem.
        #[arg(long, default_value = "8,3,1,1")]
        stem: String,
        /// Shift blocks as OUT:STRIDE:ALPHA, comma separated (ALPHA may be omitted).
        #[arg(long, default_value = "16:2:4,24:1:4")]
        blocks: String,
        #[arg(long, default_value_t = 0.3)]
        density: f64,
        #[arg(long)]
        gamma: Option<f64>,
        #[arg(long, value_enum, default_value_t = GenDtype::F32)]
        dtype: GenDtype,
        /// Use ReLU instead of ReLU6.
        #[arg(long)]
        relu: bool,
        /// Conv biases instead of batchnorm.
        #[arg(long)]
        no_batchnorm: bool,
    },
}

/// Architecture and optimization options of `train` and `sweep` (the seeds' flags).
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    #[arg(long, value_enum, default_value_t = DatasetName::FashionMnist)]
    pub dataset: DatasetName,
    #[arg(long, default_value = dataset::DEFAULT_FASHION_MNIST_DIR)]
    pub data_dir: PathBuf,
    /// Channels per stage.
    #[arg(long, value_delimiter = ',', default_value = "32,64,128,256")]
    pub filters: Vec<usize>,
    /// Convs per stage (the first conv of stage 0 is the dense KxK stem).
    #[arg(long, value_delimiter = ',', default_value = "1,1,2,2")]
    pub layers: Vec<usize>,
    /// Stride of each stage's first conv.
    #[arg(long, value_delimiter = ',', default_value = "1,2,2,2")]
    pub strides: Vec<usize>,
    /// α per stage (1 = dense; the stem is always dense).
    #[arg(long, value_delimiter = ',', default_value = "1,8,8,8")]
    pub groups: Vec<usize>,
    /// Stem kernel size K (odd; "same" padding).
    #[arg(long, default_value_t = 3)]
    pub stem_kernel: usize,
    /// γ, the conflict budget per row used when combining.
    #[arg(long, default_value_t = 1.75)]
    pub gamma: f64,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Peak learning rate (cosine decay to 0).
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// L1 penalty on conv weights until the last prune step.
    #[arg(long, default_value_t = 1e-5)]
    pub l1_penalty: f64,
    /// Train on this per-class fraction of the training set.
    #[arg(long, default_value_t = 1.0)]
    pub sample_ratio: f64,
    /// Fine-tune the last --qat-epochs epochs with §5 fake quantization.
    #[arg(long)]
    pub quant_aware: bool,
    #[arg(long, default_value_t = 2)]
    pub qat_epochs: usize,
    /// Start from a trained model of the same architecture (the retraining path).
    #[arg(long)]
    pub load: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Column-grouping strategy (the compiler's).
    #[arg(long, default_value_t = Strategy::default())]
    pub strategy: Strategy,
    /// Array for the tile counts reported while training.
    #[arg(long, default_value_t = 32)]
    pub rows: usize,
    #[arg(long, default_value_t = 32)]
    pub cols: usize,
    /// Use only the first N training images (smoke tests).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Evaluate on only the first N test images.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Model name in the graph.
    #[arg(long, default_value = "fmnist-shift")]
    pub name: String,
    /// Augment: flip each training image horizontally with probability 1/2.
    #[arg(long)]
    pub flip: bool,
    /// Augment: translate each training image by up to N pixels per axis (zero fill).
    #[arg(long, default_value_t = 0)]
    pub translate: usize,
    /// Label smoothing ε of the cross entropy on the labels.
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// Distill from this trained model (same stages, dense): its softened outputs are
    /// the soft targets.
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Weight of the soft-target loss when distilling (the labels' loss gets 1 − w).
    #[arg(long, default_value_t = 0.9)]
    pub distill_weight: f64,
    /// Softmax temperature T of distillation (the soft loss is scaled by T²).
    #[arg(long, default_value_t = 4.0)]
    pub temperature: f64,
    /// Images per epoch, cycling through reshuffled passes over the (subsampled)
    /// training set; default one pass.
    #[arg(long)]
    pub epoch_images: Option<usize>,
}

impl TrainArgs {
    pub fn options(&self) -> Result<crate::train::TrainOptions> {
        let DatasetName::FashionMnist = self.dataset;
        let arch = crate::train::net::Arch::from_stages(
            [1, 28, 28],
            10,
            self.stem_kernel,
            &self.filters,
            &self.layers,
            &self.strides,
            &self.groups,
        )?;
        Ok(crate::train::TrainOptions {
            arch,
            gamma: self.gamma,
            epochs: self.epochs,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            l1_penalty: self.l1_penalty,
            sample_ratio: self.sample_ratio,
            qat_epochs: if self.quant_aware { self.qat_epochs } else { 0 },
            strategy: self.strategy,
            seed: self.seed,
            load: self.load.clone(),
            rows: self.rows,
            cols: self.cols,
            eval_limit: self.eval_limit,
            name: self.name.clone(),
            progress: true,
            augment: crate::train::Augment {
                flip: self.flip,
                translate: self.translate,
            },
            label_smoothing: self.label_smoothing,
            teacher: self.teacher.as_ref().map(|m| crate::train::Teacher {
                model: m.clone(),
                weight: self.distill_weight,
                temperature: self.temperature,
            }),
            epoch_images: self.epoch_images,
        })
    }

    fn data(&self) -> Result<(Dataset, Dataset)> {
        crate::train::load_data(&self.data_dir, self.train_limit)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SimChoice {
    Verilator,
    Icarus,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Form {
    /// 8-bit, column-combined (what the array computes).
    Packed,
    /// 8-bit, before packing.
    Unpacked,
}

/// Options shared by every command that compiles.
#[derive(Args, Clone, Debug)]
pub struct PackArgs {
    /// Graph TOML overriding the model's embedded `ccc.graph`.
    #[arg(long)]
    pub graph: Option<PathBuf>,
    /// Array rows R (filters per tile).
    #[arg(long, default_value_t = 32)]
    pub rows: usize,
    /// Array columns C (groups per tile).
    #[arg(long, default_value_t = 32)]
    pub cols: usize,
    /// α: one value for every conv, or one per conv layer (comma separated).
    /// Default: each conv's `alpha` in the graph, else 1.
    #[arg(long, value_delimiter = ',')]
    pub alpha: Option<Vec<usize>>,
    /// γ, the conflict budget per row. Default: the graph's, else 1.75.
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Column-grouping strategy.
    #[arg(long, default_value_t = Strategy::default())]
    pub strategy: Strategy,
    /// Group columns in sections of this many (the authors' memory-saving split; 0 = off).
    #[arg(long, default_value_t = 0)]
    pub section: usize,
    /// Dense baseline: no combining, each nonzero column its own array column.
    #[arg(long)]
    pub dense: bool,
    /// Fraction bits f of inner activations (uint8 at scale 2^-f).
    #[arg(long, default_value_t = DEFAULT_ACT_FRAC)]
    pub act_frac: u32,
    /// Skip the RTL (OUT/rtl, OUT/tb): reports and packed weights only.
    #[arg(long)]
    pub no_rtl: bool,
}

impl PackArgs {
    pub fn options(&self) -> CompileOptions {
        CompileOptions {
            graph: self.graph.clone(),
            rows: self.rows,
            cols: self.cols,
            alpha: self.alpha.clone(),
            gamma: self.gamma,
            strategy: self.strategy,
            section: self.section,
            dense: self.dense,
            act_frac: self.act_frac,
            rtl: !self.no_rtl,
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Dataset to read (IDX files).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetName>,
    /// Directory holding the IDX files.
    #[arg(long, default_value = dataset::DEFAULT_FASHION_MNIST_DIR)]
    pub data_dir: PathBuf,
    /// Use only the first N test images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// First test image to use.
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DatasetName {
    FashionMnist,
}

impl DataArgs {
    fn load(&self) -> Result<Dataset> {
        let Some(DatasetName::FashionMnist) = self.dataset else {
            bail!("no dataset given: pass --dataset fashion-mnist");
        };
        let need = self.limit.map(|l| l + self.skip);
        let mut d = dataset::load_mnist_like(&self.data_dir, Split::Test, need)?;
        d.images.drain(..self.skip.min(d.images.len()));
        d.labels.drain(..self.skip.min(d.labels.len()));
        Ok(d)
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Compile {
            model,
            opts,
            data,
            out,
            target,
        } => cmd_compile(&model, &opts, &data, &out, target),
        Command::FpgaReport { out } => cmd_fpga_report(&out),
        Command::Eval { model, opts, data } => cmd_eval(&model, &opts, &data),
        Command::Infer {
            model,
            opts,
            data,
            random,
            seed,
            form,
            dump,
        } => cmd_infer(&model, &opts, &data, random, seed, form, dump.as_deref()),
        Command::Inspect { model, graph } => cmd_inspect(&model, graph.as_deref()),
        Command::Simulate {
            out,
            images,
            simulator,
            vcd,
            data_dir,
            seed,
            netlist,
        } => cmd_simulate(
            &out,
            images,
            simulator,
            vcd.as_deref(),
            &data_dir,
            seed,
            netlist.as_deref(),
        ),
        Command::Train { args, out } => {
            let o = args.options()?;
            let (tr, te) = args.data()?;
            crate::train::train(&o, &tr, &te, &out)?;
            println!(
                "wrote {} and {}",
                out.display(),
                crate::train::log_path(&out).display()
            );
            Ok(())
        }
        Command::Sweep {
            args,
            alphas,
            gammas,
            out,
        } => cmd_sweep(&args, &alphas, &gammas, &out),
        Command::SweepPlot { dir } => {
            crate::train::sweep::replot(&dir)?;
            println!("wrote {}/sweep.{{md,csv,svg}}", dir.display());
            Ok(())
        }
        Command::GenModel {
            out,
            seed,
            input,
            classes,
            stem,
            blocks,
            density,
            gamma,
            dtype,
            relu,
            no_batchnorm,
        } => {
            let spec = gen_spec(
                &out,
                seed,
                &input,
                classes,
                &stem,
                &blocks,
                density,
                gamma,
                dtype,
                relu,
                no_batchnorm,
            )?;
            testgen::write(&spec, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

fn cmd_compile(
    model: &Path,
    opts: &PackArgs,
    data: &DataArgs,
    out: &Path,
    target: Option<crate::fit::Target>,
) -> Result<()> {
    let t0 = Instant::now();
    // Stage the output first: an unwritable destination fails before any work.
    let dir = OutDir::begin(out)?;
    let mut c = compile::compile(model, &opts.options())?;
    if let Some(t) = target {
        check_target(&mut c, t)?;
    }
    if data.dataset.is_some() {
        measure_accuracy(&mut c, data)?;
    }
    compile::write_outputs(&c, &dir, opts.options().rtl)?;
    let out = dir.commit()?;
    print_summary(&c);
    println!(
        "wrote {}/{{report.json,report.md,packed.safetensors,schedule.json,compile.json{}}} in {:.2} s",
        out.display(),
        if opts.no_rtl { "" } else { ",rtl/,tb/" },
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Refuses a design that does not fit `t` (before anything is written); otherwise
/// records the target in the report's FPGA section and prints the prediction.
fn check_target(c: &mut Compiled, t: crate::fit::Target) -> Result<()> {
    use crate::fit;
    let a = c.schedule.array;
    let p = fit::params_for(&c.packed, a).with_context(|| {
        format!(
            "--target {} needs the RTL, which this model cannot have (see `ccc compile --no-rtl`)",
            t.name()
        )
    })?;
    let e = fit::check(&c.packed, &p, t)?;
    let d = t.device();
    let need = fit::device_need(&e);
    println!(
        "fits {}: {} LUT4 (logic and carry) / {}, {} FF / {}, {} BRAM / {} (fit model)",
        d.name, need.lut, d.lut, need.dff, d.dff, need.bram, d.bram
    );
    if let Some(f) = c.report.fpga.as_mut() {
        f.prediction.target = Some(t);
    }
    Ok(())
}

fn cmd_fpga_report(out: &Path) -> Result<()> {
    let record = compile::CompileRecord::read(out)?;
    let c = compile::compile(&record.model, &record.options)?;
    let report_json = out.join("report.json");
    let text = std::fs::read_to_string(&report_json)
        .with_context(|| format!("reading {}", report_json.display()))?;
    let mut old: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing {}", report_json.display()))?;
    let mut report = c.report.clone();
    let Some(mut section) = report.fpga.take() else {
        bail!("{} was compiled without RTL: no FPGA flows", out.display());
    };
    // Keep the target `compile --target` checked, if any.
    section.prediction.target = old
        .pointer("/fpga/prediction/target")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    section.measured = crate::fpga_report::measure(out)?;
    let fpga_json = serde_json::to_value(&section)?;
    if let Some(obj) = old.as_object_mut() {
        obj.insert("fpga".into(), fpga_json);
    }
    write_file_atomic(
        &report_json,
        (serde_json::to_string_pretty(&old)? + "\n").as_bytes(),
    )?;
    // report.md: everything before the FPGA section stays as `compile` wrote it.
    let md_path = out.join("report.md");
    let md = std::fs::read_to_string(&md_path)
        .with_context(|| format!("reading {}", md_path.display()))?;
    let head = md.split("\n## FPGA resources").next().unwrap_or(&md);
    let md = format!(
        "{}\n{}",
        head.trim_end_matches('\n').to_string() + "\n",
        section.to_markdown()
    );
    write_file_atomic(&md_path, md.as_bytes())?;
    print!("{}", section.to_markdown());
    Ok(())
}

fn print_summary(c: &Compiled) {
    let r = &c.report;
    println!(
        "{}: {} conv layers on a {}x{} array ({}, γ = {})",
        r.model,
        r.layers.len(),
        r.array.rows,
        r.array.cols,
        if r.dense {
            "dense baseline".to_string()
        } else {
            format!("strategy {}", r.strategy)
        },
        r.gamma
    );
    for (name, m) in [("unpacked", &r.unpacked), ("packed", &r.packed)] {
        println!(
            "  {name:>8}: {:>7} nonzeros  {:>5} columns  {:>5} tiles  utilization {:.3}  pruned {} ({:.2}% of L1)  {} cycles",
            m.nonzeros,
            m.columns,
            m.tiles,
            m.utilization,
            m.pruned,
            100.0 * m.pruned_l1_fraction,
            m.cycles
        );
    }
    if let Some(a) = &r.accuracy {
        println!("{}", report::accuracy_text(a, r.dense));
    }
}

fn check_dataset_shape(c: &Compiled, d: &Dataset) -> Result<()> {
    let i = &c.qnet.input;
    if (i.c, i.h, i.w) != (d.channels, d.height, d.width) {
        bail!(
            "{}: the model takes {}x{}x{} inputs but the dataset has {}x{}x{} images",
            c.source.display(),
            i.c,
            i.h,
            i.w,
            d.channels,
            d.height,
            d.width
        );
    }
    Ok(())
}

fn measure_accuracy(c: &mut Compiled, data: &DataArgs) -> Result<()> {
    let d = data.load()?;
    check_dataset_shape(c, &d)?;
    let t0 = Instant::now();
    let acc = evaluate(
        &c.lowered,
        &c.qnet,
        &c.packed,
        &d.images,
        &d.labels,
        "fashion-mnist test",
    );
    eprintln!(
        "evaluated {} images in {:.1} s",
        acc.images,
        t0.elapsed().as_secs_f64()
    );
    c.report.accuracy = Some(acc);
    Ok(())
}

fn cmd_eval(model: &Path, opts: &PackArgs, data: &DataArgs) -> Result<()> {
    let mut c = compile::compile(model, &opts.options())?;
    measure_accuracy(&mut c, data)?;
    print_summary(&c);
    Ok(())
}

#[derive(Serialize)]
struct InferLine {
    image: usize,
    label: Option<u8>,
    class: usize,
    logits: Vec<i32>,
}

fn cmd_infer(
    model: &Path,
    opts: &PackArgs,
    data: &DataArgs,
    random: Option<usize>,
    seed: u64,
    form: Form,
    dump: Option<&Path>,
) -> Result<()> {
    let c = compile::compile(model, &opts.options())?;
    let i = c.qnet.input;
    let (images, labels): (Vec<Vec<u8>>, Vec<Option<u8>>) = match random {
        Some(n) => (
            (0..n)
                .map(|k| testgen::random_image(i.c, i.h, i.w, seed.wrapping_add(k as u64)))
                .collect(),
            vec![None; n],
        ),
        None => {
            let d = data.load()?;
            check_dataset_shape(&c, &d)?;
            (d.images, d.labels.into_iter().map(Some).collect())
        }
    };
    let packed = c.packed.reference();
    let want_dump = dump.is_some();
    let mut tensors: Vec<(String, OutTensor)> = Vec::new();
    for (k, (img, label)) in images.iter().zip(&labels).enumerate() {
        let r = match form {
            Form::Packed => packed.run_model_order(img, want_dump),
            Form::Unpacked => c.qnet.run(img, want_dump),
        };
        let line = InferLine {
            image: data.skip + k,
            label: *label,
            class: r.class,
            logits: r.logits.clone(),
        };
        println!("{}", serde_json::to_string(&line)?);
        if want_dump {
            let p = format!("image{k}");
            tensors.push((
                format!("{p}.input"),
                OutTensor::u8(&[i.c, i.h, i.w], img.iter().copied()),
            ));
            for (l, map) in r.layers.iter().enumerate() {
                let (ch, h, w) = map.dim();
                tensors.push((
                    format!("{p}.layer{l}"),
                    OutTensor::u8(&[ch, h, w], map.iter().copied()),
                ));
            }
            tensors.push((
                format!("{p}.sums"),
                OutTensor::i64(&[r.sums.len()], r.sums.iter().copied()),
            ));
            tensors.push((
                format!("{p}.logits"),
                OutTensor::i32(&[r.logits.len()], r.logits.iter().copied()),
            ));
        }
    }
    if let Some(path) = dump {
        let meta = serde_json::json!({
            "format": "ccc.activations/1",
            "model": c.packed.name,
            "form": format!("{form:?}").to_lowercase(),
            "images": images.len(),
            "layers": c.packed.layers.len(),
            "channel_order": "model",
        })
        .to_string();
        write_file_atomic(
            path,
            &safetensors_bytes(&tensors, Some(("ccc.activations", meta)))?,
        )
        .with_context(|| format!("writing activation dump {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn cmd_simulate(
    out: &Path,
    n: usize,
    which: SimChoice,
    vcd: Option<&Path>,
    data_dir: &Path,
    seed: u64,
    netlist: Option<&str>,
) -> Result<()> {
    use crate::rtl::sim::{self, Simulator};
    let netlist_files = netlist
        .map(|fam| sim::netlist_sources(out, fam))
        .transpose()?;
    // The simulators run inside OUT, so a relative waveform path is made absolute here.
    let vcd = vcd
        .map(std::path::absolute)
        .transpose()
        .context("resolving the --vcd path")?;
    let vcd = vcd.as_deref();
    let record = compile::CompileRecord::read(out)?;
    let c = compile::compile(&record.model, &record.options)?;
    let fresh = compile::packed_safetensors(&c.packed, c.schedule.array)?;
    let on_disk = std::fs::read(out.join("packed.safetensors"))
        .with_context(|| format!("reading {}/packed.safetensors", out.display()))?;
    if fresh != on_disk {
        bail!(
            "{} is stale: {} no longer compiles to the same packed network; run `ccc compile` again",
            out.display(),
            record.model.display()
        );
    }
    let info: crate::rtl::emit::RtlInfo =
        serde_json::from_slice(&std::fs::read(out.join("rtl/rtl.json")).with_context(|| {
            format!(
                "{}/rtl/rtl.json missing: compiled with --no-rtl?",
                out.display()
            )
        })?)?;
    let i = c.qnet.input;
    let (images, source) =
        if (i.c, i.h, i.w) == (1, 28, 28) && data_dir.join("t10k-images-idx3-ubyte.gz").exists() {
            let d = dataset::load_mnist_like(data_dir, Split::Test, Some(n))?;
            (d.images, "Fashion-MNIST test images")
        } else {
            (
                (0..n)
                    .map(|k| testgen::random_image(i.c, i.h, i.w, seed.wrapping_add(k as u64)))
                    .collect(),
                "seeded random images",
            )
        };
    let sims: Vec<Simulator> = match which {
        SimChoice::Verilator => vec![Simulator::Verilator],
        SimChoice::Icarus => vec![Simulator::Icarus],
        SimChoice::Both => vec![Simulator::Verilator, Simulator::Icarus],
    };
    let mut failed = false;
    for s in sims {
        let run = sim::run_sources(out, &info, &images, s, vcd, netlist_files.as_ref())?;
        let mismatches = sim::compare(&c.packed, &images, &run);
        println!(
            "{s:?}: {} {source}, {} mismatching (build {:.1} s, run {:.1} s)",
            images.len(),
            mismatches.len(),
            run.build_secs,
            run.run_secs
        );
        if run.timeout {
            println!("  TIMEOUT: the design did not finish");
            failed = true;
        }
        for m in mismatches.iter().take(5) {
            println!("  {m}");
        }
        failed |= !mismatches.is_empty();
        if let Some(m) = sim::measure(&run, c.packed.layers.len()) {
            let cyc = m.total;
            println!(
                "  cycles per inference: {} measured, {} predicted ({:.0} simulated cycles/s)",
                cyc,
                c.schedule.total_cycles,
                cyc as f64 * images.len() as f64 / run.run_secs.max(1e-9)
            );
            println!(
                "    input   : {:>9} measured {:>9} predicted",
                m.input, c.schedule.input_cycles
            );
            for (l, (mc, ls)) in m.layers.iter().zip(&c.schedule.layers).enumerate() {
                println!(
                    "    layer {l:<2}: {mc:>9} measured {:>9} predicted",
                    ls.cycles
                );
            }
            println!(
                "    classify: {:>9} measured {:>9} predicted",
                m.classifier, c.schedule.classifier_cycles
            );
            if let (Some(a), Some(b)) = (run.done.get(&0), run.done.get(&1)) {
                println!(
                    "  images finish {} cycles apart (the next input streams in during the later layers)",
                    b - a
                );
            }
        }
    }
    if failed {
        bail!("RTL and reference disagree");
    }
    println!("bit-exact: every activation, logit and class matches the reference");
    Ok(())
}

fn cmd_inspect(model: &Path, graph: Option<&Path>) -> Result<()> {
    let net = crate::model::load(model, graph)?;
    let lowered = crate::lower::lower(&net)?;
    println!(
        "{}: {} classes, input {}x{}x{}, {} graph layers, {} conv layers",
        net.name,
        net.classes,
        net.input.channels,
        net.input.height,
        net.input.width,
        net.layers.len(),
        lowered.layers.len()
    );
    for (i, l) in lowered.layers.iter().enumerate() {
        let nnz = l.weight.iter().filter(|&&v| v != 0.0).count();
        let cols = (0..l.weight.ncols())
            .filter(|&c| l.weight.column(c).iter().any(|&v| v != 0.0))
            .count();
        println!(
            "  conv {i} (graph layer {}, `{}`): {}x{}x{} -> {}x{}x{}, stride {}, filter matrix {}x{}, {} nonzeros ({:.1}%), {} nonzero columns, alpha {}",
            l.conv_index,
            l.weight_name,
            l.input.c,
            l.input.h,
            l.input.w,
            l.output.c,
            l.output.h,
            l.output.w,
            l.stride,
            l.weight.nrows(),
            l.weight.ncols(),
            nnz,
            100.0 * nnz as f64 / l.weight.len().max(1) as f64,
            cols,
            l.alpha.map_or("-".to_string(), |a| a.to_string())
        );
    }
    let c = &lowered.classifier;
    println!(
        "  avgpool over {}x{}x{} + linear `{}` {}x{}",
        c.pool_input.c,
        c.pool_input.h,
        c.pool_input.w,
        c.weight_name,
        c.weight.nrows(),
        c.weight.ncols()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn gen_spec(
    out: &Path,
    seed: u64,
    input: &[usize],
    classes: usize,
    stem: &str,
    blocks: &str,
    density: f64,
    gamma: Option<f64>,
    dtype: GenDtype,
    relu: bool,
    no_batchnorm: bool,
) -> Result<GenSpec> {
    let [channels, height, width] = input else {
        bail!("--input takes C,H,W");
    };
    let stem = if stem == "none" {
        None
    } else {
        let v: Vec<usize> = stem
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .with_context(|| format!("--stem: `{s}` is not a number"))
            })
            .collect::<Result<_>>()?;
        let [out, k, stride, padding] = v[..] else {
            bail!("--stem takes OUT,K,STRIDE,PADDING or none");
        };
        Some(StemSpec {
            out,
            k,
            stride,
            padding,
        })
    };
    let blocks = blocks
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|b| {
            let v: Vec<usize> = b
                .split(':')
                .map(|s| {
                    s.trim()
                        .parse()
                        .with_context(|| format!("--blocks: `{b}` is not OUT:STRIDE[:ALPHA]"))
                })
                .collect::<Result<_>>()?;
            match v[..] {
                [out, stride] => Ok(BlockSpec {
                    out,
                    stride,
                    alpha: None,
                }),
                [out, stride, alpha] => Ok(BlockSpec {
                    out,
                    stride,
                    alpha: Some(alpha),
                }),
                _ => bail!("--blocks: `{b}` is not OUT:STRIDE[:ALPHA]"),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(GenSpec {
        name: out.file_stem().map_or("generated".to_string(), |s| {
            s.to_string_lossy().into_owned()
        }),
        channels: *channels,
        height: *height,
        width: *width,
        classes,
        stem,
        blocks,
        density,
        batchnorm: !no_batchnorm,
        relu6: !relu,
        gamma,
        dtype,
        seed,
    })
}

fn cmd_sweep(args: &TrainArgs, alphas: &[usize], gammas: &[f64], out: &Path) -> Result<()> {
    if alphas.is_empty() || gammas.is_empty() {
        bail!("--alphas and --gammas need at least one value each");
    }
    // The grid sets α; --groups only has to name the stages.
    let mut args = args.clone();
    args.groups = vec![1; args.filters.len()];
    let base = args.options()?;
    let (tr, te) = args.data()?;
    let baseline = match &base.load {
        Some(p) => Some(crate::train::final_eval(p, &base, &te)?),
        None => None,
    };
    let s = crate::train::sweep::run(&base, alphas, gammas, baseline, &tr, &te, out)?;
    print!("{}", crate::train::sweep::markdown(&s));
    println!("wrote {}/sweep.{{json,md,csv,svg}}", out.display());
    Ok(())
}
