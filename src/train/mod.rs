//! `ccc train`: joint optimization of a shift-CNN with column combining (docs/DESIGN.md §9)
//! on CPU with candle. Owns the training loop (SGD with momentum, weight decay, cosine
//! learning rate, L1 penalty), the prune schedule's placement in it, quantization-aware
//! fine-tuning, per-class subsampling, augmentation, label smoothing, distillation from
//! a teacher model, the training log and the final evaluation by the compiler itself
//! (float / 8-bit / packed accuracy, tiles).

pub mod checkpoint;
pub mod fused;
pub mod net;
pub mod prune;
pub mod shift;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor, Var};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::compile::{self, CompileOptions};
use crate::dataset::{self, Dataset, Split};
use crate::output::write_file_atomic;
use crate::pack::group::Strategy;
use crate::pack::predefined;
use crate::reference::{Accuracy, evaluate};
use net::{Arch, MaskOf, Mode, ShiftNet, batch_tensor, predictions};

/// Everything `ccc train` needs besides the data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    pub arch: Arch,
    pub gamma: f64,
    pub epochs: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    /// L1 penalty on conv weights, applied until the last prune step.
    pub l1_penalty: f64,
    /// Per-class fraction of the training set used.
    pub sample_ratio: f64,
    /// Fake-quantized fine-tuning epochs at the end (0 = off).
    pub qat_epochs: usize,
    pub strategy: Strategy,
    pub seed: u64,
    pub load: Option<PathBuf>,
    /// Array used for the tile counts shown while training and in the final report.
    pub rows: usize,
    pub cols: usize,
    /// Test images evaluated after each epoch and at the end (None = all).
    pub eval_limit: Option<usize>,
    pub name: String,
    /// Show a progress bar (off for sweeps running in parallel).
    pub progress: bool,
    /// Training-time augmentation of each drawn image.
    #[serde(default)]
    pub augment: Augment,
    /// Label smoothing ε of the hard-label loss (0 = plain cross entropy).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Distillation from a trained model (soft targets).
    #[serde(default)]
    pub teacher: Option<Teacher>,
    /// Images drawn per epoch, cycling through reshuffled passes over the (subsampled)
    /// training set (None = one pass). Lets runs on different data fractions take the
    /// same optimizer steps and the same schedule.
    #[serde(default)]
    pub epoch_images: Option<usize>,
    /// Pre-defined sparsity (docs/DESIGN.md §10): connection patterns built before
    /// training and never changed by it, in place of joint optimization's pruning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predefined: Option<Predefined>,
    /// Stop after this many epochs of the schedule (`--stop-after`): a run split into
    /// parts, each going on with `resume`, ends with the same bytes as one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after: Option<usize>,
    /// Go on from the checkpoint next to the output ([`checkpoint_path`], `--resume`),
    /// written after every epoch by a run with the same options.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    /// Raise each layer's α over the prune steps (`--alpha-ramp`,
    /// [`prune::ramped_alpha`]) instead of combining at the full α from the first step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alpha_ramp: bool,
}

/// The densities of `--sparsity predefined`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Predefined {
    /// Density of every conv with α > 1; None: the largest clash-free one, fan-in
    /// ⌈T/α⌉ (1/α where α divides T), which fills every packed column.
    pub density: Option<f64>,
    /// Density of the classifier, grouped at α = ⌊1/D⌋; None: dense.
    pub classifier_density: Option<f64>,
}

/// Random horizontal flip and translation, drawn per image from the seeded RNG.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    pub flip: bool,
    /// Largest displacement in pixels along each axis (zero fill).
    pub translate: usize,
}

impl Augment {
    pub fn active(&self) -> bool {
        self.flip || self.translate > 0
    }

    /// One augmented copy of a C x H x W image.
    fn apply(&self, img: &[u8], c: usize, h: usize, w: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let flip = self.flip && rng.random_bool(0.5);
        let t = self.translate as i64;
        let (ty, tx) = if t > 0 {
            (rng.random_range(-t..=t), rng.random_range(-t..=t))
        } else {
            (0, 0)
        };
        let mut out = vec![0u8; img.len()];
        for ch in 0..c {
            let plane = &img[ch * h * w..(ch + 1) * h * w];
            let dst = &mut out[ch * h * w..(ch + 1) * h * w];
            for y in 0..h {
                let sy = y as i64 - ty;
                if sy < 0 || sy >= h as i64 {
                    continue;
                }
                for x in 0..w {
                    let fx = if flip { w - 1 - x } else { x };
                    let sx = fx as i64 - tx;
                    if sx >= 0 && sx < w as i64 {
                        dst[y * w + x] = plane[sy as usize * w + sx as usize];
                    }
                }
            }
        }
        out
    }
}

/// Knowledge distillation: loss = (1 − weight)·CE(labels) + weight·T²·KL(softmax(t/T) ‖
/// softmax(s/T)), the teacher evaluated on the same (augmented) batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Teacher {
    pub model: PathBuf,
    pub weight: f64,
    pub temperature: f64,
}

impl TrainOptions {
    /// Whether any layer is column-combined (α > 1), i.e. whether training prunes.
    pub fn combines(&self) -> bool {
        self.arch.convs.iter().any(|c| c.alpha > 1)
    }

    /// Whether training prunes: joint optimization of a combined network (pre-defined
    /// patterns are fixed).
    pub fn prunes(&self) -> bool {
        self.combines() && self.predefined.is_none()
    }
}

/// Seed of junction `i`'s pre-defined pattern (the classifier: `usize::MAX`).
fn junction_seed(seed: u64, i: usize) -> u64 {
    seed ^ 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1)
}

/// Builds and fixes every pre-defined pattern of `net`; returns a line for the console.
fn fix_patterns(net: &mut ShiftNet, o: &TrainOptions, p: &Predefined) -> Result<String> {
    let mut parts = Vec::new();
    for i in 0..net.convs.len() {
        let s = net.convs[i].spec.clone();
        if s.alpha <= 1 {
            continue;
        }
        let t = s.taps();
        let what = || {
            format!(
                "--sparsity predefined: conv {i} ({} x {t}, alpha {})",
                s.out, s.alpha
            )
        };
        let fan_in = match p.density {
            Some(d) => predefined::fan_in_for(t, d).with_context(what)?,
            None => predefined::group_count(t, s.alpha),
        };
        let pat = predefined::construct(s.out, t, s.alpha, fan_in, junction_seed(o.seed, i))
            .with_context(what)?;
        net.fix_conv_pattern(i, &pat)?;
        parts.push(format!("conv {i} fan-in {fan_in}/{t}"));
    }
    if let Some(d) = p.classifier_density {
        let (classes, c) = net.fc_w.dims2()?;
        let what = || format!("--classifier-density {d}: classifier ({classes} x {c})");
        let fan_in = predefined::fan_in_for(c, d).with_context(what)?;
        let alpha = ((1.0 / d).floor() as usize).clamp(1, crate::pack::group::MAX_ALPHA);
        let pat =
            predefined::construct(classes, c, alpha, fan_in, junction_seed(o.seed, usize::MAX))
                .with_context(what)?;
        net.fix_classifier_pattern(&pat)?;
        parts.push(format!("classifier fan-in {fan_in}/{c}"));
    }
    Ok(parts.join(", "))
}

/// One epoch's line of the training log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub lr: f64,
    pub loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub nonzeros: usize,
    pub weights: usize,
    pub tiles: usize,
    pub quant_aware: bool,
    /// Wall time of the epoch, evaluation included.
    pub seconds: f64,
    /// Wall time of the optimizer steps alone.
    #[serde(default)]
    pub train_seconds: f64,
}

/// What training produced, written next to the model as `<model>.train.json`.
#[derive(Clone, Debug, Serialize)]
pub struct TrainLog {
    pub generator: String,
    pub options: TrainOptions,
    pub train_images: usize,
    /// Worker threads (rayon and the matmuls).
    pub threads: usize,
    pub epochs: Vec<EpochLog>,
    pub seconds_per_epoch: f64,
    /// The compiler's verdict on the written model.
    pub final_eval: FinalEval,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinalEval {
    pub accuracy: Accuracy,
    pub rows: usize,
    pub cols: usize,
    /// Tiles of the packed network and of the same model's dense baseline.
    pub packed_tiles: usize,
    pub unpacked_tiles: usize,
    pub packed_utilization: f64,
    pub unpacked_utilization: f64,
    pub nonzeros: usize,
    pub packed_cycles: u64,
}

/// Keeps `ratio` of each class (at least one image), chosen with the seeded RNG.
pub fn sample_per_class(d: &Dataset, ratio: f64, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let classes = d.labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in d.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut keep = Vec::new();
    for mut v in by_class {
        if v.is_empty() {
            continue;
        }
        v.shuffle(rng);
        let n = ((v.len() as f64 * ratio).round() as usize).clamp(1, v.len());
        keep.extend_from_slice(&v[..n]);
    }
    keep.sort_unstable();
    keep
}

/// glibc returns every freed ~15 MB activation to the kernel and maps it again on the
/// next step; with these thresholds an epoch measured ~3x faster (notes/training-on-cpu).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        // SAFETY: mallopt only changes allocator tuning parameters; called before the
        // training threads allocate.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

/// SGD with momentum and decoupled L1, as PyTorch's `SGD(momentum, weight_decay)` plus
/// the seeds' L1 term: v = μv + g + λ_wd·w + λ_1·sign(w); w -= lr·v; masks re-applied.
struct Sgd {
    params: Vec<(Var, bool, bool, Option<MaskOf>)>,
    velocity: Vec<Option<Tensor>>,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    /// `grads` in the order of the parameters (None: no gradient this step).
    fn step(&mut self, grads: &[Option<Tensor>], lr: f64, l1: f64, net: &ShiftNet) -> Result<()> {
        for (((var, decay, use_l1, mask), vel), g) in
            self.params.iter().zip(&mut self.velocity).zip(grads)
        {
            let Some(g) = g else {
                continue;
            };
            // Gradients carry their own op graph; detached, the optimizer state does not
            // chain every step's graph into the next (memory grew ~300 MB per step).
            let w = var.as_tensor().detach();
            let w = &w;
            let mut g = g.detach();
            if *decay && self.weight_decay > 0.0 {
                g = (g + (w * self.weight_decay)?)?;
            }
            if *use_l1 && l1 > 0.0 {
                g = (g + (w.sign()? * l1)?)?;
            }
            let v = match vel.take() {
                Some(v) => ((v * self.momentum)? + g)?,
                None => g,
            };
            let mut nw = (w - (&v * lr)?)?;
            if let Some(m) = mask.and_then(|i| net.mask(i)) {
                nw = (nw * m)?;
            }
            var.set(&nw)?;
            *vel = Some(v);
        }
        Ok(())
    }

    /// Zeroes the velocity of pruned weights so momentum cannot revive them.
    fn mask_velocity(&mut self, net: &ShiftNet) -> Result<()> {
        for ((_, _, _, mask), vel) in self.params.iter().zip(&mut self.velocity) {
            if let (Some(i), Some(v)) = (mask, vel.as_mut())
                && let Some(m) = net.mask(*i)
            {
                *v = (&*v * m)?;
            }
        }
        Ok(())
    }
}

fn cosine_lr(base: f64, step: usize, total: usize) -> f64 {
    base * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total.max(1) as f64).cos())
}

/// Float accuracy of the network on `d` (eval mode, or fake-quantized).
pub fn accuracy(net: &mut ShiftNet, d: &Dataset, mode: Mode, limit: Option<usize>) -> Result<f64> {
    let n = limit.map_or(d.images.len(), |l| l.min(d.images.len()));
    let mut correct = 0;
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let imgs: Vec<&[u8]> = d.images[start..end].iter().map(Vec::as_slice).collect();
        let x = batch_tensor(&imgs, d.channels, d.height, d.width, &net.device)?;
        let pred = predictions(&net.forward(&x, mode)?)?;
        correct += pred
            .iter()
            .zip(&d.labels[start..end])
            .filter(|(p, l)| **p == u32::from(**l))
            .count();
    }
    Ok(correct as f64 / n.max(1) as f64)
}

/// Tiles the network would need on the array if packed now (per layer ⌈N/R⌉·⌈G/C⌉,
/// G from the compiler's grouping; dense layers count their nonzero columns). N counts
/// the compiler's row copies: in front of a KxK block, a channel the block reads through
/// several nonzero taps takes a row per tap (pack::network::replicate_shared_reads). A
/// decomposed conv is two layers, as the compiler maps it by default: its basis stage
/// (C·M rows, block diagonal over the C·K·K taps) and its coefficient stage.
fn tiles_now(net: &ShiftNet, o: &TrainOptions) -> Result<usize> {
    let mut tiles = 0;
    let weights = (0..net.convs.len())
        .map(|i| net.weight_matrix(i))
        .collect::<Result<Vec<_>>>()?;
    let mut count =
        |rows: usize, groups: usize| tiles += rows.div_ceil(o.rows) * groups.div_ceil(o.cols);
    for (i, l) in net.convs.iter().enumerate() {
        let w = &weights[i];
        let g = match &l.groups {
            // A pre-defined layer packs with its own grouping (what the compiler does).
            Some(labels) => predefined::nonzero_grouping(w, labels).len(),
            None => prune::groups_now(w, l.spec.alpha, o.gamma, o.strategy)?,
        };
        if let Some(b) = l.basis_matrix()? {
            count(
                b.nrows(),
                predefined::basis_grouping(&b, l.spec.cin, l.spec.alpha).len(),
            );
        }
        let rows = match net.convs.get(i + 1) {
            Some(next) if next.basis.is_some() => {
                // The basis stage reads every channel through each nonzero basis tap.
                let b = next
                    .basis_matrix()?
                    .context("a decomposed conv has a basis")?;
                let kk = next.spec.k * next.spec.k;
                let read = (0..kk)
                    .filter(|&t| b.column(t).iter().any(|&v| v != 0.0))
                    .count();
                l.spec.out * read.max(1)
            }
            Some(next) if next.spec.k > 1 => {
                let kk = next.spec.k * next.spec.k;
                let nw = &weights[i + 1];
                (0..l.spec.out)
                    .map(|c| {
                        let read = (c * kk..(c + 1) * kk)
                            .filter(|&t| nw.column(t).iter().any(|&v| v != 0.0))
                            .count();
                        read.max(1)
                    })
                    .sum()
            }
            _ => l.spec.out,
        };
        count(rows, g);
    }
    Ok(tiles)
}

/// Loads the train and test splits (test limited by `eval_limit`).
pub fn load_data(dir: &Path, train_limit: Option<usize>) -> Result<(Dataset, Dataset)> {
    let train = dataset::load_mnist_like(dir, Split::Train, train_limit)?;
    let test = dataset::load_mnist_like(dir, Split::Test, None)?;
    Ok((train, test))
}

fn softmax_row(row: &[f32], temp: f64, out: &mut [f64]) {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v) / temp));
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (f64::from(v) / temp - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// The batch's mean loss and its gradient with respect to the logits [B, K]: cross
/// entropy on the labels (smoothed by ε), mixed with the teacher's soft targets when
/// distilling (the T² factor keeps the soft term's gradient on the hard term's scale).
fn loss_and_grad(
    logits: &Tensor,
    labels: &[u32],
    smoothing: f64,
    teacher: Option<(&Tensor, &Teacher)>,
) -> Result<(f64, Tensor)> {
    let (b, k) = logits.dims2()?;
    let s: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    let t: Option<Vec<f32>> = match teacher {
        Some((t, _)) => Some(t.flatten_all()?.to_vec1()?),
        None => None,
    };
    let (lambda, temp) = teacher.map_or((0.0, 1.0), |(_, t)| (t.weight, t.temperature));
    let mut grad = vec![0f32; b * k];
    let mut loss = 0.0;
    let (mut p, mut ps, mut pt) = (vec![0f64; k], vec![0f64; k], vec![0f64; k]);
    for i in 0..b {
        let row = &s[i * k..(i + 1) * k];
        softmax_row(row, 1.0, &mut p);
        let label = labels[i] as usize;
        let g = &mut grad[i * k..(i + 1) * k];
        for j in 0..k {
            let q = smoothing / k as f64 + if j == label { 1.0 - smoothing } else { 0.0 };
            loss -= (1.0 - lambda) * q * p[j].max(1e-30).ln();
            g[j] = ((1.0 - lambda) * (p[j] - q) / b as f64) as f32;
        }
        if let Some(t) = &t {
            softmax_row(row, temp, &mut ps);
            softmax_row(&t[i * k..(i + 1) * k], temp, &mut pt);
            for j in 0..k {
                // KL rather than cross entropy: the same gradient, and a logged loss
                // that reaches 0 when the student matches the teacher.
                if pt[j] > 0.0 {
                    loss += lambda * temp * temp * pt[j] * (pt[j].ln() - ps[j].max(1e-30).ln());
                }
                g[j] += (lambda * temp * (ps[j] - pt[j]) / b as f64) as f32;
            }
        }
    }
    Ok((
        loss / b as f64,
        Tensor::from_vec(grad, (b, k), logits.device())?,
    ))
}

/// The teacher network: the student's layout, dense, with the teacher model's weights.
/// A decomposed student may learn from a plain KxK teacher (the same network's dense
/// model, as the other methods do) or from a decomposed one.
fn load_teacher(o: &TrainOptions, t: &Teacher, dev: &Device) -> Result<ShiftNet> {
    let teacher = crate::model::load(&t.model, None)
        .with_context(|| format!("teacher {}", t.model.display()))?;
    let decomposed = teacher
        .layers
        .iter()
        .any(|l| matches!(l.op, crate::model::Op::DecomposedConv(_)));
    let mut arch = o.arch.clone();
    for c in &mut arch.convs {
        c.alpha = 1;
        if !decomposed {
            c.bases = 0;
        }
    }
    let mut net = ShiftNet::init(arch, o.seed, dev)?;
    net.load_from(&t.model)
        .with_context(|| format!("teacher {}", t.model.display()))?;
    Ok(net)
}

/// Trains to the end of the schedule, writes the model to `out` and `<out>.train.json`,
/// and returns the log; see [`train_or_stop`].
pub fn train(o: &TrainOptions, train: &Dataset, test: &Dataset, out: &Path) -> Result<TrainLog> {
    train_or_stop(o, train, test, out)?.with_context(|| {
        format!(
            "training stopped after {} epochs (--stop-after); the checkpoint is {}",
            o.stop_after.unwrap_or(0),
            checkpoint_path(out).display()
        )
    })
}

/// The loop's own state in a checkpoint (the tensors are [`checkpoint`]'s).
#[derive(Serialize, Deserialize)]
struct LoopState {
    options: serde_json::Value,
    epochs_done: usize,
    step: usize,
    prune_step: usize,
    /// Word positions of the data-order and augmentation streams (u128, as text).
    rng_pos: String,
    aug_pos: String,
    logs: Vec<EpochLog>,
}

/// `<model>.ckpt` next to the model: the last finished epoch's state, removed once the
/// model is written.
pub fn checkpoint_path(model: &Path) -> PathBuf {
    beside(model, ".ckpt")
}

/// `model`'s path with `suffix` appended (a file that belongs to the model).
fn beside(model: &Path, suffix: &str) -> PathBuf {
    let mut s = model.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The options as a checkpoint compares them: everything but how the run is split.
fn comparable_options(o: &TrainOptions) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(o)?;
    if let Some(m) = v.as_object_mut() {
        for k in ["stop_after", "resume", "progress"] {
            m.remove(k);
        }
    }
    Ok(v)
}

/// Trains `o` on `train` into `out`, evaluating on `test`; `None` when `o.stop_after`
/// stopped it before the end of the schedule (the checkpoint then holds the state). A
/// checkpoint is written after every epoch and `o.resume` goes on from it: the result
/// is byte-identical to an uninterrupted run.
pub fn train_or_stop(
    o: &TrainOptions,
    train: &Dataset,
    test: &Dataset,
    out: &Path,
) -> Result<Option<TrainLog>> {
    tune_malloc();
    if o.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if o.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if !(o.sample_ratio > 0.0 && o.sample_ratio <= 1.0) {
        bail!("--sample-ratio {} must be in (0, 1]", o.sample_ratio);
    }
    if o.qat_epochs > o.epochs {
        bail!(
            "--qat-epochs {} exceeds --epochs {}",
            o.qat_epochs,
            o.epochs
        );
    }
    let [c, h, w] = o.arch.input;
    if (train.channels, train.height, train.width) != (c, h, w) {
        bail!(
            "the dataset's images are {}x{}x{}, the architecture takes {c}x{h}x{w}",
            train.channels,
            train.height,
            train.width
        );
    }
    if !(0.0..1.0).contains(&o.label_smoothing) {
        bail!("--label-smoothing {} must be in [0, 1)", o.label_smoothing);
    }
    if let Some(t) = &o.teacher
        && (!(0.0..=1.0).contains(&t.weight) || t.temperature <= 0.0)
    {
        bail!(
            "--distill-weight {} must be in [0, 1] and --temperature {} positive",
            t.weight,
            t.temperature
        );
    }
    if o.epoch_images == Some(0) {
        bail!("--epoch-images must be at least 1");
    }
    let dev = Device::Cpu;
    let mut net = ShiftNet::init(o.arch.clone(), o.seed, &dev)?;
    let mut teacher = match &o.teacher {
        Some(t) => Some((load_teacher(o, t, &dev)?, t)),
        None => None,
    };
    // Its own stream, so that turning augmentation on leaves the data order unchanged.
    let mut aug_rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0xa06_a06);
    if let Some(p) = &o.load {
        net.load_from(p)?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x5eed_da7a);
    let subset = sample_per_class(train, o.sample_ratio, &mut rng);
    let epoch_len = o.epoch_images.unwrap_or(subset.len());
    let steps_per_epoch = epoch_len.div_ceil(o.batch_size);
    let total_steps = steps_per_epoch * o.epochs;
    if let Some(p) = &o.predefined {
        let line = fix_patterns(&mut net, o, p)?;
        eprintln!("ccc train: pre-defined sparsity, {line}");
    }
    let prune_at = if o.prunes() {
        prune::prune_points(total_steps)
    } else {
        Vec::new()
    };
    let last_prune = prune_at.last().copied().unwrap_or(0);
    let params = net.params();
    let mut sgd = Sgd {
        velocity: vec![None; params.len()],
        params,
        momentum: o.momentum,
        weight_decay: o.weight_decay,
    };
    let qat_from = o.epochs - o.qat_epochs;
    let mut logs = Vec::new();
    let mut step = 0;
    let mut prune_step = 0;
    // Shown on the progress bar; refreshed after each prune step and epoch.
    let (nz0, all0) = net.nonzeros()?;
    let mut sparsity = format!("nonzeros {nz0}/{all0} tiles {}", tiles_now(&net, o)?);
    let ckpt = checkpoint_path(out);
    // What a checkpoint records of the options, and a resume compares.
    let options = comparable_options(o)?;
    let mut start = 0;
    if o.resume {
        let (meta, velocity) = checkpoint::load(&ckpt, &mut net, sgd.params.len())
            .with_context(|| format!("--resume: {}", ckpt.display()))?;
        let s: LoopState = serde_json::from_str(&meta)
            .with_context(|| format!("{}: the loop state is not readable", ckpt.display()))?;
        if s.options != options {
            let (a, b) = (s.options.as_object(), options.as_object());
            let differ: Vec<String> = a
                .into_iter()
                .flatten()
                .filter(|(k, v)| b.and_then(|b| b.get(*k)) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect();
            bail!(
                "--resume: {} was written by a run with other options ({}); resume with the same options",
                ckpt.display(),
                differ.join(", ")
            );
        }
        let pos = |t: &str| -> Result<u128> {
            t.parse()
                .with_context(|| format!("{}: stream position `{t}`", ckpt.display()))
        };
        rng.set_word_pos(pos(&s.rng_pos)?);
        aug_rng.set_word_pos(pos(&s.aug_pos)?);
        sgd.velocity = velocity;
        (start, step, prune_step, logs) = (s.epochs_done, s.step, s.prune_step, s.logs);
        let (nz, all) = net.nonzeros()?;
        sparsity = format!("nonzeros {nz}/{all} tiles {}", tiles_now(&net, o)?);
        eprintln!(
            "ccc train: resuming from {} after epoch {start} of {}",
            ckpt.display(),
            o.epochs
        );
    }
    let end = o.stop_after.map_or(o.epochs, |n| n.min(o.epochs));
    eprintln!(
        "ccc train: {} images ({} per epoch in {} steps), {} epochs, {} convs, {} threads{}",
        subset.len(),
        epoch_len,
        steps_per_epoch,
        o.epochs,
        o.arch.convs.len(),
        rayon::current_num_threads(),
        if o.prunes() {
            format!(
                ", {} prune steps up to step {last_prune}",
                prune::PRUNE_STEPS
            )
        } else {
            String::new()
        }
    );
    for epoch in start..end {
        let t0 = Instant::now();
        let mode = if epoch >= qat_from && o.qat_epochs > 0 {
            Mode::Quant
        } else {
            Mode::Train
        };
        let mut order = Vec::with_capacity(epoch_len + subset.len());
        while order.len() < epoch_len {
            let mut pass = subset.clone();
            pass.shuffle(&mut rng);
            order.extend(pass);
        }
        order.truncate(epoch_len);
        let bar = if o.progress {
            ProgressBar::new(steps_per_epoch as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}",
            )
            .map_err(|e| anyhow::anyhow!("progress template: {e}"))?
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, o.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let mut lr = o.lr;
        for batch in order.chunks(o.batch_size) {
            lr = cosine_lr(o.lr, step, total_steps);
            let augmented: Vec<Vec<u8>>;
            let imgs: Vec<&[u8]> = if o.augment.active() {
                augmented = batch
                    .iter()
                    .map(|&i| o.augment.apply(&train.images[i], c, h, w, &mut aug_rng))
                    .collect();
                augmented.iter().map(Vec::as_slice).collect()
            } else {
                batch.iter().map(|&i| train.images[i].as_slice()).collect()
            };
            let labels: Vec<u32> = batch.iter().map(|&i| u32::from(train.labels[i])).collect();
            let x = batch_tensor(&imgs, c, h, w, &dev)?;
            let t_logits = match teacher.as_mut() {
                Some((t, _)) => Some(t.forward(&x, Mode::Eval)?.detach()),
                None => None,
            };
            let t_arg = t_logits.as_ref().zip(teacher.as_ref().map(|(_, t)| *t));
            let mut lv = 0.0;
            let (logits, grads) = if mode == Mode::Train {
                let (logits, g) = net.train_step(&x, |logits| {
                    let (l, d) = loss_and_grad(logits, &labels, o.label_smoothing, t_arg)?;
                    lv = l;
                    Ok(d)
                })?;
                (logits, g.into_iter().map(Some).collect::<Vec<_>>())
            } else {
                // Fake-quantized steps go through candle's autograd; sum(logits · dL/dlogits)
                // has the loss's gradient.
                let logits = net.forward(&x, mode)?;
                let (l, d) = loss_and_grad(&logits, &labels, o.label_smoothing, t_arg)?;
                lv = l;
                let store = (&logits * d)?.sum_all()?.backward()?;
                let g = sgd
                    .params
                    .iter()
                    .map(|p| store.get(p.0.as_tensor()).cloned())
                    .collect();
                (logits.detach(), g)
            };
            let l1 = if step < last_prune { o.l1_penalty } else { 0.0 };
            sgd.step(&grads, lr, l1, &net)?;
            step += 1;
            loss_sum += lv * batch.len() as f64;
            correct += predictions(&logits)?
                .iter()
                .zip(&labels)
                .filter(|(p, l)| p == l)
                .count();
            seen += batch.len();
            // Short runs can place several prune steps after the same optimizer step.
            while prune_at.get(prune_step) == Some(&step) {
                prune_step += 1;
                prune_now(&mut net, o, prune_step)?;
                sgd.mask_velocity(&net)?;
                let (nz, all) = net.nonzeros()?;
                let tiles = tiles_now(&net, o)?;
                sparsity = format!("nonzeros {nz}/{all} tiles {tiles}");
                bar.suspend(|| {
                    eprintln!(
                        "  prune step {prune_step}/{}: {nz}/{all} conv weights kept, {tiles} tiles at {}x{}",
                        prune::PRUNE_STEPS,
                        o.rows,
                        o.cols
                    )
                });
            }
            bar.set_message(format!(
                "loss {:.4} acc {:.4} lr {lr:.4} {sparsity}",
                loss_sum / seen as f64,
                correct as f64 / seen as f64
            ));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_seconds = t0.elapsed().as_secs_f64();
        let eval_mode = if mode == Mode::Quant {
            Mode::Quant
        } else {
            Mode::Eval
        };
        let test_acc = accuracy(&mut net, test, eval_mode, o.eval_limit)?;
        let (nonzeros, weights) = net.nonzeros()?;
        let tiles = tiles_now(&net, o)?;
        let log = EpochLog {
            epoch: epoch + 1,
            lr,
            loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test_accuracy: test_acc,
            nonzeros,
            weights,
            tiles,
            quant_aware: mode == Mode::Quant,
            seconds: t0.elapsed().as_secs_f64(),
            train_seconds,
        };
        eprintln!(
            "epoch {}/{}: loss {:.4} train acc {:.4} test acc {:.4}{} | nonzeros {}/{} | tiles@{}x{} {} | {:.1} s",
            log.epoch,
            o.epochs,
            log.loss,
            log.train_accuracy,
            log.test_accuracy,
            if log.quant_aware { " (fake-quant)" } else { "" },
            nonzeros,
            weights,
            o.rows,
            o.cols,
            tiles,
            log.seconds
        );
        logs.push(log);
        let state = LoopState {
            options: options.clone(),
            epochs_done: epoch + 1,
            step,
            prune_step,
            rng_pos: rng.get_word_pos().to_string(),
            aug_pos: aug_rng.get_word_pos().to_string(),
            logs: logs.clone(),
        };
        checkpoint::save(&ckpt, &net, &sgd.velocity, serde_json::to_string(&state)?)?;
    }
    if end < o.epochs {
        eprintln!(
            "ccc train: stopped after epoch {end} of {}; --resume goes on from {}",
            o.epochs,
            ckpt.display()
        );
        return Ok(None);
    }
    if o.predefined.is_some() {
        let moved = net.keep_connections()?;
        eprintln!("ccc train: {moved} fixed connections moved up to the smallest 8-bit weight");
    }
    net.export(&o.name, o.gamma, out)?;
    let final_eval = final_eval(out, o, test)?;
    eprintln!(
        "ccc train: wrote {} | test accuracy float {:.4}, 8-bit {:.4}, packed {:.4} | tiles@{}x{}: packed {} (utilization {:.3}), unpacked {}",
        out.display(),
        final_eval.accuracy.float,
        final_eval.accuracy.unpacked,
        final_eval.accuracy.packed,
        o.rows,
        o.cols,
        final_eval.packed_tiles,
        final_eval.packed_utilization,
        final_eval.unpacked_tiles
    );
    let log = TrainLog {
        generator: format!("ccc {}", env!("CARGO_PKG_VERSION")),
        options: o.clone(),
        train_images: subset.len(),
        threads: rayon::current_num_threads(),
        seconds_per_epoch: logs.iter().map(|l| l.seconds).sum::<f64>() / logs.len() as f64,
        epochs: logs,
        final_eval,
    };
    let json = serde_json::to_string_pretty(&log)?;
    write_file_atomic(&log_path(out), json.as_bytes())?;
    // The model is written: the checkpoint has served.
    match std::fs::remove_file(&ckpt) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", ckpt.display())),
    }
    Ok(Some(log))
}

/// `<model>.train.json` next to the model.
pub fn log_path(model: &Path) -> PathBuf {
    beside(model, ".train.json")
}

/// One prune step over every combinable layer: magnitude, then column combining.
fn prune_now(net: &mut ShiftNet, o: &TrainOptions, step: usize) -> Result<()> {
    for i in 0..net.convs.len() {
        let alpha = net.convs[i].spec.alpha;
        if alpha <= 1 {
            continue;
        }
        let w = net.weight_matrix(i)?;
        // With the α ramp combining alone prunes: magnitude pruning towards 1/α ahead of
        // it removed weights without regard to the groups, and the last step's combining
        // then left rows short of one weight per group (21 312 of 125 216 weights kept
        // against 26 828 without the ramp, on the shipped network).
        let (step_alpha, fraction) = if o.alpha_ramp {
            (prune::ramped_alpha(alpha, step), 0.0)
        } else {
            (alpha, prune::target_fraction(alpha, step))
        };
        let p = prune::prune_layer(&w, step_alpha, o.gamma, fraction, o.strategy)
            .with_context(|| format!("prune step {step}, conv {i}"))?;
        let (n, t) = p.mask.dim();
        let m = Tensor::from_vec(
            p.mask.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            (n, t),
            &net.device,
        )?;
        let l = &mut net.convs[i];
        l.w.set(&(l.w.as_tensor() * &m)?)?;
        l.mask = Some(m);
    }
    Ok(())
}

/// Compiles the written model (no RTL) and measures its three accuracies on the test
/// set: the numbers a user of `ccc compile --dataset` would see.
pub fn final_eval(model: &Path, o: &TrainOptions, test: &Dataset) -> Result<FinalEval> {
    let opts = CompileOptions {
        rows: o.rows,
        cols: o.cols,
        strategy: o.strategy,
        rtl: false,
        ..CompileOptions::default()
    };
    let c = compile::compile(model, &opts)
        .with_context(|| format!("compiling the trained model {}", model.display()))?;
    let n = o
        .eval_limit
        .map_or(test.images.len(), |l| l.min(test.images.len()));
    let accuracy = evaluate(
        &c.lowered,
        &c.qnet,
        &c.packed,
        &test.images[..n],
        &test.labels[..n],
        "fashion-mnist test",
    );
    let r = &c.report;
    Ok(FinalEval {
        accuracy,
        rows: o.rows,
        cols: o.cols,
        packed_tiles: r.packed.tiles,
        unpacked_tiles: r.unpacked.tiles,
        packed_utilization: r.packed.utilization,
        unpacked_utilization: r.unpacked.utilization,
        nonzeros: r.packed.nonzeros,
        packed_cycles: r.packed.cycles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let s = vec![0.3f32, -1.2, 2.0, 0.1, 1.5, 0.2, -0.4, 0.9];
        let t = Tensor::from_vec(
            vec![1.0f32, 0.5, -1.0, 2.0, 0.0, 0.3, 0.2, -2.0],
            (2, 4),
            &dev,
        )
        .unwrap();
        let teacher = Teacher {
            model: PathBuf::new(),
            weight: 0.6,
            temperature: 3.0,
        };
        let labels = [2u32, 0];
        let f = |v: &[f32]| -> (f64, Vec<f32>) {
            let l = Tensor::from_vec(v.to_vec(), (2, 4), &dev).unwrap();
            let (loss, g) = loss_and_grad(&l, &labels, 0.1, Some((&t, &teacher))).unwrap();
            (loss, g.flatten_all().unwrap().to_vec1().unwrap())
        };
        let (_, g) = f(&s);
        for k in 0..s.len() {
            let eps = 1e-3f32;
            let (mut p, mut m) = (s.clone(), s.clone());
            p[k] += eps;
            m[k] -= eps;
            let fd = (f(&p).0 - f(&m).0) / (2.0 * f64::from(eps));
            assert!((fd - f64::from(g[k])).abs() < 1e-4, "{k}: {fd} vs {}", g[k]);
        }
        // Without a teacher or smoothing: candle's cross entropy.
        let l = Tensor::from_vec(s.clone(), (2, 4), &dev).unwrap();
        let (loss, _) = loss_and_grad(&l, &labels, 0.0, None).unwrap();
        let y = Tensor::new(&labels[..], &dev).unwrap();
        let want = candle_nn::loss::cross_entropy(&l, &y).unwrap();
        assert!((loss - f64::from(want.to_scalar::<f32>().unwrap())).abs() < 1e-5);
    }

    #[test]
    fn augmentation_flips_and_translates() {
        let img: Vec<u8> = (0..12).map(|v| v as u8 + 1).collect(); // 1 x 3 x 4
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let flip = Augment {
            flip: true,
            translate: 0,
        };
        let mut flipped = 0;
        for _ in 0..20 {
            let out = flip.apply(&img, 1, 3, 4, &mut rng);
            let mirrored: Vec<u8> = img
                .chunks(4)
                .flat_map(|r| r.iter().rev().copied())
                .collect();
            assert!(out == img || out == mirrored);
            flipped += usize::from(out == mirrored);
        }
        assert!(flipped > 0 && flipped < 20);
        let shift = Augment {
            flip: false,
            translate: 1,
        };
        for _ in 0..20 {
            let out = shift.apply(&img, 1, 3, 4, &mut rng);
            // Some displacement in [-1, 1]^2 maps the image onto the output, zero fill.
            let ok = (-1i64..=1).any(|ty| {
                (-1i64..=1).any(|tx| {
                    (0..3i64).all(|y| {
                        (0..4i64).all(|x| {
                            let (sy, sx) = (y - ty, x - tx);
                            let want = if (0..3).contains(&sy) && (0..4).contains(&sx) {
                                img[(sy * 4 + sx) as usize]
                            } else {
                                0
                            };
                            out[(y * 4 + x) as usize] == want
                        })
                    })
                })
            });
            assert!(ok, "{out:?}");
        }
    }
}
