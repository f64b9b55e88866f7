//! Command line: parses arguments and wires the pipeline stages together. No stage
//! logic lives here.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::compile::{self, CompileOptions};
use crate::dataset::{self, Dataset};
use crate::lower::Decomposition;
use crate::output::{OutDir, write_file_atomic};
use crate::pack::group::Strategy;
use crate::quant::DEFAULT_ACT_FRAC;
use crate::reference::{Form, Inference, activations_dump, run_form};
use crate::testgen::{self, BlockList, GenDtype, GenSpec, StemChoice};
use crate::verify;

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
    /// Compare sparse-CNN methods on one array: for each LABEL=MODEL, float and 8-bit
    /// packed accuracy, nonzeros, tiles, cycles, utilization, MAC efficiency, the fit
    /// model's LUT4/FF/BRAM and the recorded training time; writes OUT/comparison.md,
    /// OUT/comparison.json and OUT/accuracy-vs-cycles.svg.
    Compare {
        /// LABEL=MODEL (or MODEL: the file stem is the label), one per method.
        #[arg(required = true)]
        entries: Vec<crate::compare::Entry>,
        #[command(flatten)]
        opts: PackArgs,
        #[command(flatten)]
        data: DataArgs,
        /// FPGA family of the resource prediction.
        #[arg(long, value_enum, default_value_t = crate::fit::Family::Ecp5)]
        family: crate::fit::Family,
        /// Output directory (replaced atomically).
        #[arg(short, long, default_value = "out-compare")]
        out: PathBuf,
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
        /// Print the float reference's logits (f64, unquantized, unpacked) instead of the
        /// integer network's: what an ONNX engine's logits compare with.
        #[arg(long)]
        float: bool,
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
        #[command(flatten)]
        model: GenArgs,
    },
}

/// The random model of `gen-model`.
#[derive(Args, Clone, Debug)]
pub struct GenArgs {
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Input as C,H,W.
    #[arg(long, default_value = "1,12,12", value_delimiter = ',')]
    pub input: Vec<usize>,
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Dense KxK stem conv as OUT,K,STRIDE,PADDING; "none" for no stem.
    #[arg(long, default_value = "8,3,1,1")]
    pub stem: StemChoice,
    /// Blocks, comma separated: OUT:STRIDE[:ALPHA] a shift + 1x1 conv, OUT:STRIDE[:ALPHA]:kK[:pPAD]
    /// a KxK conv padded by PAD.
    #[arg(long, default_value = "16:2:4,24:1:4")]
    pub blocks: BlockList,
    #[arg(long, default_value_t = 0.3)]
    pub density: f64,
    #[arg(long)]
    pub gamma: Option<f64>,
    #[arg(long, value_enum, default_value_t = GenDtype::F32)]
    pub dtype: GenDtype,
    /// Use ReLU instead of ReLU6.
    #[arg(long)]
    pub relu: bool,
    /// Conv biases instead of batchnorm.
    #[arg(long)]
    pub no_batchnorm: bool,
    /// An MLP head: hidden linear layers of these widths (comma separated) between the
    /// pool and the classifier.
    #[arg(long, value_delimiter = ',')]
    pub head: Vec<usize>,
}

impl GenArgs {
    /// The generator's spec, named after the file it goes to.
    pub fn spec(&self, out: &Path) -> Result<GenSpec> {
        let [channels, height, width] = self.input[..] else {
            bail!("--input takes C,H,W");
        };
        Ok(GenSpec {
            name: out.file_stem().map_or("generated".to_string(), |s| {
                s.to_string_lossy().into_owned()
            }),
            channels,
            height,
            width,
            classes: self.classes,
            stem: self.stem.0.clone(),
            blocks: self.blocks.0.clone(),
            density: self.density,
            batchnorm: !self.no_batchnorm,
            relu6: !self.relu,
            gamma: self.gamma,
            dtype: self.dtype,
            seed: self.seed,
            head: self.head.clone(),
        })
    }
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
    /// α per conv, stem first (overrides --groups; the stem's must be 1). Lets a layer
    /// whose filter matrix has few columns keep a smaller α at the same tile count
    /// (e.g. 64 taps on 32 columns: α 2 fills the tile that α 4 half-fills).
    #[arg(long, value_delimiter = ',')]
    pub layer_groups: Option<Vec<usize>>,
    /// Stem kernel size K (odd; "same" padding).
    #[arg(long, default_value_t = 3)]
    pub stem_kernel: usize,
    /// Stop after this many epochs of the schedule, leaving the checkpoint `OUT.ckpt`
    /// (written after every epoch) for `--resume`.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Go on from `OUT.ckpt` (same options otherwise); the model ends byte-identical to
    /// an uninterrupted run's.
    #[arg(long)]
    pub resume: bool,
    /// Kernel size of the blocks: 1 for shift + 1x1 blocks (the paper's network), an odd
    /// K for KxK convs ("same" padding, no shift; a VGG-style network).
    #[arg(long, default_value_t = 1)]
    pub block_kernel: usize,
    /// Kernel decomposition (ESCALATE): every KxK block learns M basis kernels shared by
    /// its input channels and sparse coefficients, pruned and combined like a conv's
    /// weights, and is written as a `decomposed_conv` (needs --block-kernel 3 or more).
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub decompose: usize,
    /// An MLP head: hidden linear layers (ReLU6 after each) of these widths, comma
    /// separated, between the pool and the classifier.
    #[arg(long, value_delimiter = ',')]
    pub head: Vec<usize>,
    /// γ, the conflict budget per row used when combining.
    #[arg(long, default_value_t = 1.75)]
    pub gamma: f64,
    /// Combine with a growing α over the ten prune steps (round(α^(i/10)) at step i)
    /// instead of the full α from the first, so that combining prunes gradually too.
    #[arg(long)]
    pub alpha_ramp: bool,
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
    /// How the combined convs (α > 1) get sparse: `combine` prunes during training
    /// (joint optimization); `predefined` fixes a clash-free connection pattern per conv
    /// before training (docs/DESIGN.md §10) that training never changes.
    #[arg(long, value_enum, default_value_t = Sparsity::Combine)]
    pub sparsity: Sparsity,
    /// `--sparsity predefined`: density of every conv with α > 1 (fan-in round(D·T),
    /// at most ⌈T/α⌉). Default: fan-in ⌈T/α⌉, which fills every packed column.
    #[arg(long)]
    pub density: Option<f64>,
    /// `--sparsity predefined`: density of the classifier (grouped at α = ⌊1/D⌋).
    /// Default: dense.
    #[arg(long)]
    pub classifier_density: Option<f64>,
}

/// `ccc train --sparsity`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sparsity {
    Combine,
    Predefined,
}

impl TrainArgs {
    /// The training options for data `train` (its image shape and classes set the
    /// network's input and classifier).
    pub fn options(&self, train: &Dataset) -> Result<crate::train::TrainOptions> {
        let DatasetName::FashionMnist = self.dataset;
        let arch = crate::train::net::Arch::from_stages(
            [train.channels, train.height, train.width],
            train.classes(),
            self.stem_kernel,
            &self.filters,
            &self.layers,
            &self.strides,
            &self.groups,
        )?
        .with_block_kernel(self.block_kernel)?
        .with_decompose(self.decompose)?
        .with_head(&self.head)?;
        let arch = match &self.layer_groups {
            Some(alphas) => arch.with_layer_alphas(alphas)?,
            None => arch,
        };
        let predefined = match self.sparsity {
            Sparsity::Predefined if self.decompose > 0 => {
                bail!("--sparsity predefined and --decompose do not combine (choose one method)")
            }
            Sparsity::Predefined => Some(crate::train::Predefined {
                density: self.density,
                classifier_density: self.classifier_density,
            }),
            Sparsity::Combine => {
                if self.density.is_some() || self.classifier_density.is_some() {
                    bail!("--density and --classifier-density need --sparsity predefined");
                }
                None
            }
        };
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
            predefined,
            stop_after: self.stop_after,
            resume: self.resume,
            alpha_ramp: self.alpha_ramp,
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
    /// The model reads pixel / S (255 for a model trained on torchvision's ToTensor);
    /// folded exactly into the first conv. Default: ccc's pixel / 256.
    #[arg(long, value_name = "S")]
    pub input_scale: Option<f64>,
    /// Group every layer with --strategy and --gamma, also those whose model stores a
    /// grouping (`groups`, written by `ccc train --sparsity predefined`).
    #[arg(long)]
    pub regroup: bool,
    /// How a `decomposed_conv` runs: `stages` (basis stage, then a 1x1 coefficient
    /// stage) or `expanded` (the KxK conv it computes). The report compares both.
    #[arg(long, value_enum, default_value_t = Decomposition::Stages)]
    pub decomposed: Decomposition,
    /// MAC lanes of the head unit (outputs computed side by side: 1, 2, 4 or 8, at most
    /// every head layer's inputs). Default: the fewest that keep the head from setting
    /// the interval.
    #[arg(long, value_name = "N")]
    pub head_lanes: Option<usize>,
    /// Run the head's linear layers on the array instead of the head unit, combined at
    /// α (1: dense; a layer's stored mask is kept either way). The pool is folded into
    /// the first linear layer (docs/DESIGN.md §10).
    #[arg(long, value_name = "ALPHA", num_args = 0..=1, default_missing_value = "1")]
    pub head_on_array: Option<usize>,
}

impl PackArgs {
    /// The options of a command that runs the reference only (no RTL).
    fn reference_options(&self) -> CompileOptions {
        CompileOptions {
            rtl: false,
            ..self.options()
        }
    }

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
            input_scale: self.input_scale,
            regroup: self.regroup,
            decomposed: self.decomposed,
            head_lanes: self.head_lanes,
            head_on_array: self.head_on_array,
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
        dataset::load_test(&self.data_dir, self.skip, self.limit)
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
        Command::Compare {
            entries,
            opts,
            data,
            family,
            out,
        } => {
            let dir = crate::output::OutDir::begin(&out)?;
            let d = data.load()?;
            let name = "fashion-mnist test";
            let rows = crate::compare::compare(&entries, &opts.options(), &d, name, family)?;
            let md = crate::compare::markdown(&rows, (opts.rows, opts.cols), name);
            let svg = crate::compare::plot(
                &rows,
                &format!(
                    "8-bit packed accuracy against cycles, {}x{} array",
                    opts.rows, opts.cols
                ),
            )?;
            dir.write("comparison.md", md.as_bytes())?;
            dir.write(
                "comparison.json",
                crate::output::json_text(&rows)?.as_bytes(),
            )?;
            dir.write(&svg.name, svg.text.as_bytes())?;
            let out = dir.commit()?;
            print!("{md}");
            eprintln!(
                "wrote {}/{{comparison.md,comparison.json,{}}}",
                out.display(),
                svg.name
            );
            Ok(())
        }
        Command::FpgaReport { out } => {
            let report = crate::report::update_fpga(&out)?;
            if let Some(f) = &report.fpga {
                print!("{}", f.to_markdown());
            }
            Ok(())
        }
        Command::Eval { model, opts, data } => {
            let mut c = compile::compile(model.as_path(), &opts.reference_options())?;
            let d = data.load()?;
            let t0 = Instant::now();
            compile::measure_accuracy(&mut c, &d, "fashion-mnist test")?;
            eprintln!(
                "evaluated {} images in {:.1} s",
                d.images.len(),
                t0.elapsed().as_secs_f64()
            );
            print!("{}", c.report.summary());
            Ok(())
        }
        Command::Infer {
            model,
            opts,
            data,
            random,
            seed,
            form,
            dump,
            float,
        } => cmd_infer(
            &model,
            &opts,
            &data,
            (random, seed),
            form,
            dump.as_deref(),
            float,
        ),
        Command::Inspect { model, graph } => {
            print!("{}", crate::lower::describe(&model, graph.as_deref())?);
            Ok(())
        }
        Command::Simulate {
            out,
            images,
            simulator,
            vcd,
            data_dir,
            seed,
            netlist,
        } => cmd_simulate(&out, images, simulator, vcd, &data_dir, seed, netlist),
        Command::Train { args, out } => {
            let (tr, te) = args.data()?;
            if crate::train::train_or_stop(&args.options(&tr)?, &tr, &te, &out)?.is_some() {
                println!(
                    "wrote {} and {}",
                    out.display(),
                    crate::train::log_path(&out).display()
                );
            }
            Ok(())
        }
        Command::Sweep {
            args,
            alphas,
            gammas,
            out,
        } => {
            // The grid sets α; --groups only has to name the stages.
            let mut args = args.clone();
            args.groups = vec![1; args.filters.len()];
            let (tr, te) = args.data()?;
            let s =
                crate::train::sweep::sweep(&args.options(&tr)?, &alphas, &gammas, &tr, &te, &out)?;
            print!("{}", crate::train::sweep::markdown(&s));
            println!("wrote {}/sweep.{{json,md,csv,svg}}", out.display());
            Ok(())
        }
        Command::SweepPlot { dir } => {
            crate::train::sweep::replot(&dir)?;
            println!("wrote {}/sweep.{{md,csv,svg}}", dir.display());
            Ok(())
        }
        Command::GenModel { out, model } => {
            testgen::write(&model.spec(&out)?, &out)?;
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
    let options = opts.options();
    let mut c = compile::compile(model, &options)?;
    if let Some(t) = target {
        println!("{}", compile::check_target(&mut c, t)?);
    }
    if data.dataset.is_some() {
        let d = data.load()?;
        let t1 = Instant::now();
        compile::measure_accuracy(&mut c, &d, "fashion-mnist test")?;
        eprintln!(
            "evaluated {} images in {:.1} s",
            d.images.len(),
            t1.elapsed().as_secs_f64()
        );
    }
    compile::write_outputs(&c, &dir, options.rtl)?;
    let out = dir.commit()?;
    print!("{}", c.report.summary());
    println!(
        "wrote {}/{{report.json,report.md,packed.safetensors,schedule.json,compile.json,plots/,scalesim/{}}} in {:.2} s",
        out.display(),
        if opts.no_rtl { "" } else { ",rtl/,tb/" },
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cmd_infer(
    model: &Path,
    opts: &PackArgs,
    data: &DataArgs,
    (random, seed): (Option<usize>, u64),
    form: Form,
    dump: Option<&Path>,
    float: bool,
) -> Result<()> {
    let c = compile::compile(model, &opts.reference_options())?;
    let i = c.qnet.input;
    let (images, labels): (Vec<Vec<u8>>, Vec<Option<u8>>) = match random {
        Some(n) => (
            testgen::random_images(i.c, i.h, i.w, n, seed),
            vec![None; n],
        ),
        None => {
            let d = data.load()?;
            d.check_input(model, [i.c, i.h, i.w])?;
            (d.images, d.labels.into_iter().map(Some).collect())
        }
    };
    let results = run_form(&c.qnet, &c.packed, form, &images, dump.is_some());
    for (k, ((r, label), img)) in results.iter().zip(&labels).zip(&images).enumerate() {
        if float {
            let logits = crate::reference::run_float(&c.lowered, img);
            let line = serde_json::json!({
                "image": data.skip + k,
                "label": label,
                "class": crate::reference::argmax(&logits),
                "logits": logits,
            });
            println!("{line}");
            continue;
        }
        let line = Inference {
            image: data.skip + k,
            label: *label,
            class: r.class,
            logits: r.logits.clone(),
        };
        println!("{}", serde_json::to_string(&line)?);
    }
    if let Some(path) = dump {
        let bytes = activations_dump(&c.packed.name, form, i, &images, &results)?;
        write_file_atomic(path, &bytes)
            .with_context(|| format!("writing activation dump {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn cmd_simulate(
    out: &Path,
    n: usize,
    which: SimChoice,
    vcd: Option<PathBuf>,
    data_dir: &Path,
    seed: u64,
    netlist: Option<String>,
) -> Result<()> {
    use crate::rtl::sim::{self, RunOptions, Simulator};
    let o = RunOptions {
        netlist: netlist
            .map(|fam| sim::netlist_sources(out, &fam))
            .transpose()?,
        // The simulators run inside OUT, so a relative waveform path is made absolute.
        vcd: vcd
            .map(std::path::absolute)
            .transpose()
            .context("resolving the --vcd path")?,
        ..RunOptions::default()
    };
    let c = compile::reload(out)?;
    let design = c.design.as_ref().with_context(|| {
        format!(
            "{} was compiled with --no-rtl: nothing to simulate",
            out.display()
        )
    })?;
    let (images, what) = verify::test_images(c.qnet.input, n, data_dir, seed)?;
    let sims = match which {
        SimChoice::Verilator => vec![Simulator::Verilator],
        SimChoice::Icarus => vec![Simulator::Icarus],
        SimChoice::Both => vec![Simulator::Verilator, Simulator::Icarus],
    };
    let (mut failed, mut inexact) = (false, false);
    for s in sims {
        let r = verify::check(out, &c.packed, &c.schedule, design, &images, s, &o)?;
        print!("{}", r.summary(what, &c.schedule));
        failed |= !r.passed();
        inexact |= r.passed() && !r.exact(&c.schedule);
    }
    if failed {
        bail!("RTL and reference disagree");
    }
    if inexact {
        bail!("bit-exact, but the measured cycles differ from the schedule's cycle model");
    }
    println!("bit-exact: every activation, logit and class matches the reference");
    Ok(())
}
