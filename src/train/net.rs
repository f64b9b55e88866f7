//! The trainable shift-CNN: a dense KxK stem conv, then shift + 1x1 conv blocks (or KxK
//! conv blocks: a VGG-style network), each conv followed by batchnorm and ReLU6, global
//! average pool and a linear classifier (the seeds' network family). Owns parameters,
//! forward passes (training, evaluation and fake-quantized), loading a trained model and
//! exporting the model format.

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{D, DType, Device, Tensor, Var};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::fused::{BiasRelu6, BnRelu6, BnStats, bn_relu6_backward, bn_relu6_forward, with_f32};
use super::shift::Shift;
use crate::model::{self, Op};
use crate::modelfile::ModelWriter;
use crate::output::OutTensor;
use crate::pack::predefined::Pattern;
use crate::quant::{DEFAULT_ACT_FRAC, weight_exponent};

/// BN epsilon and running-stat momentum (PyTorch's defaults, as in the seeds).
pub const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// One conv layer of the network as the trainer sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvSpec {
    pub out: usize,
    pub cin: usize,
    /// Kernel size: K for the stem; 1 for shift + 1x1 blocks, K for KxK blocks
    /// ([`Arch::with_block_kernel`]).
    pub k: usize,
    pub stride: usize,
    /// α of the layer (1 = dense, never combined).
    pub alpha: usize,
    /// Basis kernels M of a decomposed KxK conv (0: a plain conv); its trained, pruned
    /// and combined matrix is then the N x C·M coefficients ([`Arch::with_decompose`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bases: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl ConvSpec {
    /// Columns of the filter matrix (taps).
    pub fn taps(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// Columns of the trained matrix: the taps, or a decomposed conv's C·M coefficients.
    pub fn cols(&self) -> usize {
        if self.bases > 0 {
            self.cin * self.bases
        } else {
            self.taps()
        }
    }
}

/// The architecture: input, stem and blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    pub input: [usize; 3],
    pub classes: usize,
    /// convs[0] is the stem (KxK, "same" padding); the rest are shift + 1x1 blocks, or
    /// KxK convs ("same" padding) with [`Arch::with_block_kernel`].
    pub convs: Vec<ConvSpec>,
    /// Widths of an MLP head's hidden linear layers (ReLU6 after each) between the pool
    /// and the classifier ([`Arch::with_head`]); empty: a linear classifier (and absent
    /// from the JSON, as before MLP heads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub head: Vec<usize>,
}

impl Arch {
    /// The same network with an MLP head: hidden linear layers of these widths.
    pub fn with_head(mut self, widths: &[usize]) -> Result<Arch> {
        if widths.contains(&0) {
            bail!("--head {widths:?}: every hidden layer needs at least one output");
        }
        self.head = widths.to_vec();
        Ok(self)
    }

    /// The seeds' description: stage i has `layers[i]` convs of `filters[i]` channels,
    /// the first with stride `strides[i]`, all with α = `groups[i]`. The network's
    /// first conv is the dense KxK stem (α = 1 whatever `groups[0]` says: its filter
    /// matrix has only K·K·C_in columns).
    pub fn from_stages(
        input: [usize; 3],
        classes: usize,
        stem_kernel: usize,
        filters: &[usize],
        layers: &[usize],
        strides: &[usize],
        groups: &[usize],
    ) -> Result<Arch> {
        let n = filters.len();
        if n == 0 || layers.len() != n || strides.len() != n || groups.len() != n {
            bail!(
                "--filters, --layers, --strides and --groups need one value per stage (got {}, {}, {}, {})",
                n,
                layers.len(),
                strides.len(),
                groups.len()
            );
        }
        if stem_kernel.is_multiple_of(2) {
            bail!("--stem-kernel {stem_kernel} must be odd (\"same\" padding)");
        }
        let mut convs = Vec::new();
        let mut cin = input[0];
        for s in 0..n {
            if layers[s] == 0 || filters[s] == 0 || strides[s] == 0 || groups[s] == 0 {
                bail!("stage {s}: filters, layers, strides and groups must be at least 1");
            }
            for l in 0..layers[s] {
                let stem = convs.is_empty();
                convs.push(ConvSpec {
                    out: filters[s],
                    cin,
                    k: if stem { stem_kernel } else { 1 },
                    stride: if l == 0 { strides[s] } else { 1 },
                    alpha: if stem { 1 } else { groups[s] },
                    bases: 0,
                });
                cin = filters[s];
            }
        }
        Ok(Arch {
            input,
            classes,
            convs,
            head: Vec::new(),
        })
    }

    /// The same network with a KxK conv ("same" padding, no shift) in every block instead
    /// of shift + 1x1 (`--block-kernel`; 1 keeps the shift blocks): a VGG-style network,
    /// combined over its K·K·C taps.
    pub fn with_block_kernel(mut self, k: usize) -> Result<Arch> {
        if k == 0 || k.is_multiple_of(2) {
            bail!("--block-kernel {k} must be odd (\"same\" padding)");
        }
        for c in self.convs.iter_mut().skip(1) {
            c.k = k;
        }
        Ok(self)
    }

    /// The same network with every KxK block a decomposed conv of `m` basis kernels
    /// (`--decompose`, kernel decomposition as in ESCALATE; 0 keeps plain convs).
    pub fn with_decompose(mut self, m: usize) -> Result<Arch> {
        if m == 0 {
            return Ok(self);
        }
        if self.convs.iter().skip(1).any(|c| c.k == 1) {
            bail!("--decompose {m} needs KxK blocks (--block-kernel 3 or more)");
        }
        for c in self.convs.iter_mut().skip(1) {
            c.bases = m;
        }
        Ok(self)
    }

    /// The same network with α given per conv (stem first), e.g. from `--layer-groups`.
    pub fn with_layer_alphas(mut self, alphas: &[usize]) -> Result<Arch> {
        if alphas.len() != self.convs.len() {
            bail!(
                "--layer-groups needs one α per conv, stem first: {} convs, got {} values",
                self.convs.len(),
                alphas.len()
            );
        }
        if alphas[0] != 1 {
            bail!("--layer-groups: the stem is dense (α 1), got {}", alphas[0]);
        }
        for (i, (c, &a)) in self.convs.iter_mut().zip(alphas).enumerate() {
            if a == 0 {
                bail!("--layer-groups: conv {i} has α 0 (1 = dense)");
            }
            c.alpha = a;
        }
        Ok(self)
    }

    /// Output spatial size after each conv.
    pub fn sizes(&self) -> Vec<(usize, usize)> {
        let (mut h, mut w) = (self.input[1], self.input[2]);
        self.convs
            .iter()
            .map(|c| {
                h = h.div_ceil(c.stride);
                w = w.div_ceil(c.stride);
                (h, w)
            })
            .collect()
    }
}

/// Parameters of one conv + batchnorm.
pub struct ConvLayer {
    pub spec: ConvSpec,
    /// N x T filter matrix (T = taps; for the stem, column = c·K·K + ky·K + kx as in
    /// PyTorch's [out, in, k, k] flattened).
    pub w: Var,
    /// 0/1 N x T; None while the layer is unpruned.
    pub mask: Option<Tensor>,
    /// A decomposed conv's basis kernels, M x K·K (`w` then holds the coefficients).
    pub basis: Option<Var>,
    /// Pre-defined sparsity: the group of every tap (the pattern's clash-free grouping),
    /// exported with the mask so that the compiler packs with it.
    pub groups: Option<Vec<usize>>,
    pub gamma: Var,
    pub beta: Var,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    /// Per-input-channel shift of a shift + 1x1 block (None for the stem and KxK blocks).
    pub shifts: Option<Vec<(i32, i32)>>,
}

pub struct ShiftNet {
    pub arch: Arch,
    pub convs: Vec<ConvLayer>,
    /// The MLP head's hidden layers: weight [out, in] and bias [out], ReLU6 after each.
    pub hidden: Vec<(Var, Var)>,
    /// classes x C (or x the last hidden layer's width).
    pub fc_w: Var,
    pub fc_b: Var,
    /// 0/1 classes x C: the classifier's pre-defined connection pattern, if any.
    pub fc_mask: Option<Tensor>,
    pub device: Device,
}

/// Which mask a trainable parameter lives under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskOf {
    Conv(usize),
    Classifier,
}

/// How a forward pass treats batchnorm and quantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; running statistics are updated.
    Train,
    /// Running statistics, float.
    Eval,
    /// Running statistics folded into the weights, weights and activations fake-quantized
    /// with docs/DESIGN.md §5 (straight-through gradients): what the 8-bit hardware computes.
    Quant,
}

/// The K·K uniform shifts that gather a KxK conv's taps ("same" padding), tap ky·K + kx.
fn kxk_shifts(c: usize, k: usize, stride: usize) -> impl Iterator<Item = Shift> {
    let p = (k / 2) as i32;
    (0..k * k)
        .map(move |t| Shift::uniform(c, (t / k) as i32 - p, (t % k) as i32 - p).with_stride(stride))
}

/// A KxK conv's taps of `x` [C, B, H, W] at the output positions: [C·K·K, B, Ho, Wo],
/// column c·K·K + tap.
fn kxk_taps(x: &Tensor, k: usize, stride: usize) -> Result<Tensor> {
    let (c, b, _, _) = x.dims4()?;
    let v = kxk_shifts(c, k, stride)
        .map(|sh| sh.apply(x))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let (_, _, ho, wo) = v[0].dims4()?;
    // [C, K·K, B, Ho, Wo] so that column = c·K·K + tap.
    Ok(Tensor::stack(&v, 1)?.reshape((c * k * k, b, ho, wo))?)
}

/// The seeds' fixed shifts: the K·K = 9 directions of a 3x3 neighbourhood spread evenly
/// over the channels, in a seeded random order.
pub fn seeded_shifts(channels: usize, rng: &mut ChaCha8Rng) -> Vec<(i32, i32)> {
    let mut v: Vec<(i32, i32)> = (0..channels)
        .map(|c| {
            let d = (c % 9) as i32;
            (d / 3 - 1, d % 3 - 1)
        })
        .collect();
    v.shuffle(rng);
    v
}

/// Zeroes `w` outside the pattern; returns the pattern's 0/1 mask.
fn apply_pattern(w: &Var, p: &Pattern, dev: &Device, what: &str) -> Result<Tensor> {
    let v: Vec<f32> = p.mask.iter().map(|&b| f32::from(u8::from(b))).collect();
    let m = Tensor::from_vec(v, p.mask.dim(), dev)?;
    if m.dims() != w.as_tensor().dims() {
        bail!(
            "{what}: pattern {:?} does not match the weights {:?}",
            m.dims(),
            w.as_tensor().dims()
        );
    }
    w.set(&(w.as_tensor() * &m)?)?;
    Ok(m)
}

fn var_from(v: Vec<f32>, shape: &[usize], dev: &Device) -> Result<Var> {
    Ok(Var::from_tensor(&Tensor::from_vec(v, shape, dev)?)?)
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, bound: f64) -> Vec<f32> {
    (0..n)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect()
}

/// Straight-through estimator: `q` forward, identity gradient to `x`.
fn ste(x: &Tensor, q: &Tensor) -> Result<Tensor> {
    Ok((x + (q - x)?.detach())?)
}

/// Fake-quantizes a weight matrix to int8 with one power-of-two scale (§5).
fn fake_quant_weight(w: &Tensor) -> Result<Tensor> {
    let max = w.abs()?.max_all()?.to_scalar::<f32>()? as f64;
    if max == 0.0 {
        return Ok(w.clone());
    }
    let scale = 2f64.powi(weight_exponent(max));
    // f32::round is half away from zero, as §5 rounds.
    let q = (w.detach() * scale)?.round()?.clamp(-127f32, 127f32)?;
    ste(w, &(q / scale)?)
}

impl ShiftNet {
    /// A freshly initialised network (Kaiming-uniform convs, BN at identity), seeded.
    pub fn init(arch: Arch, seed: u64, device: &Device) -> Result<ShiftNet> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut convs = Vec::new();
        for (i, s) in arch.convs.iter().enumerate() {
            let t = s.cols();
            let shifts = (i > 0 && s.k == 1).then(|| seeded_shifts(s.cin, &mut rng));
            // Kaiming-uniform for the filter the layer computes: basis kernels of unit
            // expected L2 norm, coefficients with variance 2 / (C·M), so that the
            // expanded kernels have variance 2 / (C·K·K) as a plain conv's.
            let bound = (6.0 / t as f64).sqrt();
            let basis = if s.bases > 0 {
                let kk = s.k * s.k;
                let b = uniform(&mut rng, s.bases * kk, (3.0 / kk as f64).sqrt());
                Some(var_from(b, &[s.bases, kk], device)?)
            } else {
                None
            };
            convs.push(ConvLayer {
                spec: s.clone(),
                w: var_from(uniform(&mut rng, s.out * t, bound), &[s.out, t], device)?,
                mask: None,
                basis,
                groups: None,
                gamma: var_from(vec![1.0; s.out], &[s.out], device)?,
                beta: var_from(vec![0.0; s.out], &[s.out], device)?,
                running_mean: Tensor::zeros(s.out, DType::F32, device)?,
                running_var: Tensor::ones(s.out, DType::F32, device)?,
                shifts,
            });
        }
        let mut c = arch.convs.last().map_or(arch.input[0], |s| s.out);
        let mut hidden = Vec::with_capacity(arch.head.len());
        for &out in &arch.head {
            let bound = (1.0 / c as f64).sqrt();
            let w = var_from(uniform(&mut rng, out * c, bound), &[out, c], device)?;
            let b = var_from(uniform(&mut rng, out, bound), &[out], device)?;
            hidden.push((w, b));
            c = out;
        }
        let bound = (1.0 / c as f64).sqrt();
        let fc_w = var_from(
            uniform(&mut rng, arch.classes * c, bound),
            &[arch.classes, c],
            device,
        )?;
        let fc_b = var_from(
            uniform(&mut rng, arch.classes, bound),
            &[arch.classes],
            device,
        )?;
        Ok(ShiftNet {
            arch,
            convs,
            hidden,
            fc_w,
            fc_b,
            fc_mask: None,
            device: device.clone(),
        })
    }

    /// Replaces parameters, statistics and shifts with those of a trained model file of
    /// the same architecture (the retraining path). Zero weights become the mask.
    pub fn load_from(&mut self, path: &Path) -> Result<()> {
        let net = model::load(path, None)
            .with_context(|| format!("loading {} to continue training", path.display()))?;
        let mut convs = self.convs.iter_mut();
        let arch_convs = self.arch.convs.len();
        let mut next_conv = |index: usize, name: &str| {
            convs.next().with_context(|| {
                format!(
                    "{}: layer {index} ({name}): the model has more convs than the architecture given ({arch_convs})",
                    path.display()
                )
            })
        };
        let mut cur: Option<&mut ConvLayer> = None;
        let mut pending_shift: Option<Vec<(i32, i32)>> = None;
        let mut linears = Vec::new();
        for layer in &net.layers {
            match &layer.op {
                Op::Shift(s) => {
                    pending_shift = Some(
                        s.shifts
                            .iter()
                            .map(|&(dy, dx)| (dy as i32, dx as i32))
                            .collect(),
                    )
                }
                Op::DecomposedConv(d) => {
                    let l = next_conv(layer.index, &d.weight_name)?;
                    let s = &l.spec;
                    let (m, k, _) = d.basis.dim();
                    let (o, cm) = d.coeff.dim();
                    let Some(basis) = &l.basis else {
                        bail!(
                            "{}: layer {} ({}) is a decomposed conv; train it with --decompose {m}",
                            path.display(),
                            layer.index,
                            d.weight_name
                        );
                    };
                    if (o, cm, m, k, d.stride) != (s.out, s.cols(), s.bases, s.k, s.stride) {
                        bail!(
                            "{}: layer {} tensors {} / {}: {o} filters over {cm} coefficients of {m} {k}x{k} bases, stride {}, do not match the architecture's {} over {} of {} {}x{}, stride {}",
                            path.display(),
                            layer.index,
                            d.weight_name,
                            d.basis_name,
                            d.stride,
                            s.out,
                            s.cols(),
                            s.bases,
                            s.k,
                            s.k,
                            s.stride
                        );
                    }
                    let b: Vec<f32> = d.basis.iter().map(|&v| v as f32).collect();
                    basis.set(&Tensor::from_vec(b, (m, k * k), &self.device)?)?;
                    l.set_trained(d.coeff.iter(), d.bias.as_ref(), &self.device)?;
                    cur = Some(l);
                }
                Op::Conv(c) => {
                    let l = next_conv(layer.index, &c.weight_name)?;
                    let (o, i, kh, kw) = c.weight.dim();
                    let s = &l.spec;
                    if (o, i, kh, kw) != (s.out, s.cin, s.k, s.k)
                        || c.stride != s.stride
                        || s.bases > 0
                    {
                        bail!(
                            "{}: layer {} tensor {}: shape [{o}, {i}, {kh}, {kw}] stride {} does not match the architecture's [{}, {}, {}, {}] stride {} (pass the same --filters/--layers/--strides as the loaded model)",
                            path.display(),
                            layer.index,
                            c.weight_name,
                            c.stride,
                            s.out,
                            s.cin,
                            s.k,
                            s.k,
                            s.stride
                        );
                    }
                    l.set_trained(c.weight.iter(), c.bias.as_ref(), &self.device)?;
                    let s = &l.spec;
                    if s.k == 1 {
                        l.shifts =
                            Some(pending_shift.take().unwrap_or_else(|| vec![(0, 0); s.cin]));
                    }
                    cur = Some(l);
                }
                Op::BatchNorm(bn) => {
                    let Some(l) = cur.as_deref_mut() else {
                        bail!(
                            "{}: layer {}: batchnorm before any conv",
                            path.display(),
                            layer.index
                        );
                    };
                    let n = l.spec.out;
                    let f = |a: &ndarray::Array1<f64>| -> Result<Tensor> {
                        Ok(Tensor::from_vec(
                            a.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                            n,
                            &self.device,
                        )?)
                    };
                    l.gamma.set(&f(&bn.weight)?)?;
                    l.beta.set(&f(&bn.bias)?)?;
                    l.running_mean = f(&bn.mean)?;
                    l.running_var = f(&bn.var)?;
                }
                Op::Linear(lin) => linears.push(lin.clone()),
                Op::Relu6 | Op::Relu | Op::AvgPool => {}
            }
        }
        if convs.next().is_some() {
            bail!(
                "{}: the model has fewer convs than the architecture given ({})",
                path.display(),
                self.arch.convs.len()
            );
        }
        if linears.len() != self.hidden.len() + 1 {
            bail!(
                "{}: the model has {} linear layers, the architecture {} (pass the model's --head)",
                path.display(),
                linears.len(),
                self.hidden.len() + 1
            );
        }
        let layers: Vec<(Var, Var)> = self
            .hidden
            .iter()
            .cloned()
            .chain([(self.fc_w.clone(), self.fc_b.clone())])
            .collect();
        for (lin, (wv, bv)) in linears.iter().zip(layers) {
            let (o, i) = lin.weight.dim();
            if (o, i) != wv.dims2()? {
                bail!(
                    "{}: tensor {}: shape [{o}, {i}] does not match the architecture's {:?}",
                    path.display(),
                    lin.weight_name,
                    wv.dims2()?
                );
            }
            let w: Vec<f32> = lin.weight.iter().map(|&v| v as f32).collect();
            wv.set(&Tensor::from_vec(w, (o, i), &self.device)?)?;
            if let Some(b) = &lin.bias {
                let v: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                bv.set(&Tensor::from_vec(v, o, &self.device)?)?;
            }
        }
        Ok(())
    }

    /// Logits [B, classes] for a batch of images [B, C, H, W] (values p / 256).
    ///
    /// Activations are kept channel-major, [C, B, H, W]: a 1x1 conv is then one
    /// [N, T] x [T, B·H·W] matmul and batchnorm reduces along contiguous rows (with
    /// [B, C, H, W], the strided reductions cost more than the matmuls).
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut x = x.transpose(0, 1)?.contiguous()?;
        let frac = DEFAULT_ACT_FRAC;
        for l in &mut self.convs {
            let s = &l.spec;
            let (_, b, _, _) = x.dims4()?;
            // Gather the taps at the output positions: [T, B, Ho, Wo].
            let taps = match &l.shifts {
                None => kxk_taps(&x, s.k, s.stride)?,
                Some(sh) => Shift::new(sh.clone()).with_stride(s.stride).apply(&x)?,
            };
            let (t, _, ho, wo) = taps.dims4()?;
            let cols = taps.reshape((t, b * ho * wo))?;
            let a = match mode {
                Mode::Train => {
                    let y = l.filter(l.w.as_tensor())?.matmul(&cols)?; // [N, B·P]
                    let bn = BnRelu6::new(BN_EPS);
                    let a = y.apply_op3(l.gamma.as_tensor(), l.beta.as_tensor(), bn.clone())?;
                    let st = bn.stats();
                    let n = (b * ho * wo) as f64;
                    let unbias = n / (n - 1.0).max(1.0);
                    let dev = &self.device;
                    let m = Tensor::from_vec(st.mean, s.out, dev)?;
                    let v = (Tensor::from_vec(st.var, s.out, dev)? * unbias)?;
                    l.running_mean =
                        ((&l.running_mean * (1.0 - BN_MOMENTUM))? + (m * BN_MOMENTUM)?)?;
                    l.running_var = ((&l.running_var * (1.0 - BN_MOMENTUM))? + (v * BN_MOMENTUM)?)?;
                    a
                }
                Mode::Quant if l.basis.is_some() => l.quant_stages(&cols, frac)?,
                Mode::Eval | Mode::Quant => {
                    let (wf, bf) = l.folded()?;
                    let wf = if mode == Mode::Quant {
                        fake_quant_weight(&wf)?
                    } else {
                        wf
                    };
                    let act = BiasRelu6 {
                        frac: (mode == Mode::Quant).then_some(frac),
                    };
                    wf.matmul(&cols)?.apply_op2(&bf, act)?
                }
            };
            x = a.reshape((s.out, b, ho, wo))?;
        }
        let (c, b, h, w) = x.dims4()?;
        let mut pooled = x.reshape((c, b, h * w))?.mean(D::Minus1)?; // [C, B]
        // The hardware multiplies exact pixel sums by W / (H·W), quantized: the first
        // linear layer's weights carry the pooling factor.
        let mut fold = (h * w) as f64;
        let quant_w = |w: &Tensor, fold: f64| -> Result<Tensor> {
            Ok(if mode == Mode::Quant {
                (fake_quant_weight(&(w / fold)?)? * fold)?
            } else {
                w.clone()
            })
        };
        for (wv, bv) in &self.hidden {
            let z = quant_w(wv.as_tensor(), fold)?.matmul(&pooled)?; // [out, B]
            pooled = if mode == Mode::Quant {
                z.contiguous()?
                    .apply_op2(bv.as_tensor(), BiasRelu6 { frac: Some(frac) })?
            } else {
                z.broadcast_add(&bv.as_tensor().unsqueeze(1)?)?
                    .clamp(0f32, 6f32)?
            };
            fold = 1.0;
        }
        let fc = quant_w(self.fc_w.as_tensor(), fold)?;
        Ok(pooled
            .t()?
            .matmul(&fc.t()?)?
            .broadcast_add(self.fc_b.as_tensor())?)
    }

    /// One training-mode forward pass with a hand-written backward pass: returns the
    /// logits and the gradient of every parameter, in the order of [`Self::params`].
    /// `loss_grad` maps the logits to the gradient of the loss with respect to them.
    ///
    /// Equivalent to `forward(x, Mode::Train)` and candle's autograd (the tests compare
    /// them), without its cost: candle accumulates every node's gradient into a fresh
    /// zero tensor, a memset and an add over each activation, which on this network took
    /// about as long as the matmuls.
    pub fn train_step(
        &mut self,
        x: &Tensor,
        loss_grad: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        struct Saved {
            shift: Option<Shift>,
            in_hw: (usize, usize),
            cols: Tensor,
            /// The filter matrix the forward pass used ([`ConvLayer::filter`]).
            filter: Tensor,
            y: Tensor,
            a: Tensor,
            stats: BnStats,
        }
        let dev = self.device.clone();
        let mut x = x.detach().transpose(0, 1)?.contiguous()?;
        let mut saved: Vec<Saved> = Vec::with_capacity(self.convs.len());
        for l in &mut self.convs {
            let s = &l.spec;
            let (_, b, h, w) = x.dims4()?;
            let (shift, taps) = match &l.shifts {
                None => (None, kxk_taps(&x, s.k, s.stride)?),
                Some(sh) => {
                    let op = Shift::new(sh.clone()).with_stride(s.stride);
                    let t = op.apply(&x)?;
                    (Some(op), t)
                }
            };
            let (t, _, ho, wo) = taps.dims4()?;
            let m = b * ho * wo;
            let cols = taps.reshape((t, m))?;
            let filter = l.filter(&l.w.as_tensor().detach())?;
            let y = filter.matmul(&cols)?;
            let gamma: Vec<f32> = l.gamma.as_tensor().to_vec1()?;
            let beta: Vec<f32> = l.beta.as_tensor().to_vec1()?;
            let (a, stats) = with_f32(&y, |yv| {
                bn_relu6_forward(yv, s.out, m, &gamma, &beta, BN_EPS)
            })?;
            let a = Tensor::from_vec(a, (s.out, m), &dev)?;
            let unbias = m as f64 / (m as f64 - 1.0).max(1.0);
            let mean = Tensor::new(stats.mean.as_slice(), &dev)?;
            let var = (Tensor::new(stats.var.as_slice(), &dev)? * unbias)?;
            l.running_mean = ((&l.running_mean * (1.0 - BN_MOMENTUM))? + (mean * BN_MOMENTUM)?)?;
            l.running_var = ((&l.running_var * (1.0 - BN_MOMENTUM))? + (var * BN_MOMENTUM)?)?;
            x = a.reshape((s.out, b, ho, wo))?;
            saved.push(Saved {
                shift,
                in_hw: (h, w),
                cols,
                filter,
                y,
                a,
                stats,
            });
        }
        let (c, b, h, w) = x.dims4()?;
        let p = h * w;
        let pooled = x.reshape((c, b, p))?.mean(D::Minus1)?.t()?.contiguous()?; // [B, C]
        // The MLP head: each hidden layer's input and pre-activation, [B, in] and [B, out].
        let mut head: Vec<(Tensor, Tensor)> = Vec::with_capacity(self.hidden.len());
        let mut hx = pooled;
        for (wv, bv) in &self.hidden {
            let z = hx
                .matmul(&wv.as_tensor().detach().t()?)?
                .broadcast_add(&bv.as_tensor().detach())?;
            let next = z.clamp(0f32, 6f32)?;
            head.push((hx, z));
            hx = next;
        }
        let fc_w = self.fc_w.as_tensor().detach();
        let logits = hx
            .matmul(&fc_w.t()?)?
            .broadcast_add(&self.fc_b.as_tensor().detach())?;
        let dlogits = loss_grad(&logits)?.contiguous()?; // [B, K]
        let dfc_w = dlogits.t()?.matmul(&hx)?;
        let dfc_b = dlogits.sum(0)?;
        let mut dh = dlogits.matmul(&fc_w)?;
        let mut head_grads = Vec::with_capacity(2 * head.len());
        for ((wv, _), (hin, z)) in self.hidden.iter().zip(head).rev() {
            // ReLU6 passes the gradient where 0 < z < 6.
            let pass = z.gt(0f32)?.mul(&z.lt(6f32)?)?.to_dtype(DType::F32)?;
            let dz = (dh * pass)?;
            head_grads.push(dz.sum(0)?);
            head_grads.push(dz.t()?.matmul(&hin)?);
            dh = dz.matmul(&wv.as_tensor().detach())?;
        }
        head_grads.reverse();
        // d pooled [B, C] spread evenly over the P positions of each channel: [C, B·P].
        let dpool: Vec<f32> = dh.flatten_all()?.to_vec1()?;
        let mut da = vec![0f32; c * b * p];
        for (bi, row) in dpool.chunks_exact(c).enumerate() {
            for (ci, &g) in row.iter().enumerate() {
                da[(ci * b + bi) * p..(ci * b + bi + 1) * p].fill(g / p as f32);
            }
        }
        let mut da = Tensor::from_vec(da, (c, b * p), &dev)?;
        let mut grads: Vec<Tensor> = Vec::with_capacity(3 * self.convs.len() + 2);
        for (li, (l, sv)) in self.convs.iter().zip(saved).enumerate().rev() {
            let n = l.spec.out;
            let (_, m) = sv.y.dims2()?;
            let gamma: Vec<f32> = l.gamma.as_tensor().to_vec1()?;
            let (dy, dg, db) = with_f32(&sv.y, |y| {
                with_f32(&sv.a, |a| {
                    with_f32(&da, |g| {
                        bn_relu6_backward(y, a, g, n, m, &sv.stats, &gamma, BN_EPS)
                    })
                })
            })????;
            let dy = Tensor::from_vec(dy, (n, m), &dev)?;
            let mut dw = dy.matmul(&sv.cols.t()?)?;
            let filter = &sv.filter;
            let mut dbasis = None;
            if let Some(basis) = &l.basis {
                // W = A·B per (filter, channel): [N·C, M] x [M, K·K]. The filter's
                // gradient splits into the coefficients' and the basis kernels'.
                let (cin, kk, bases) = (l.spec.cin, l.spec.k * l.spec.k, l.spec.bases);
                let dw_rows = dw.reshape((n * cin, kk))?;
                let a = l.w.as_tensor().detach().reshape((n * cin, bases))?;
                dbasis = Some(a.t()?.matmul(&dw_rows)?);
                dw = dw_rows
                    .matmul(&basis.as_tensor().detach().t()?)?
                    .reshape((n, cin * bases))?;
            }
            if let Some(op) = &sv.shift {
                let dcols = filter.t()?.matmul(&dy)?; // [T, M]
                let cin = l.spec.cin;
                let (h, w) = sv.in_hw;
                let (ho, wo) = (h.div_ceil(l.spec.stride), w.div_ceil(l.spec.stride));
                let dx = op.backward(&dcols.reshape((cin, m / (ho * wo), ho, wo))?, h, w)?;
                da = dx.reshape((cin, m / (ho * wo) * h * w))?;
            } else if li > 0 {
                // A KxK block: tap (ky, kx) of channel c (column c·K·K + ky·K + kx) is a
                // uniform shift of the input, so the input's gradient sums the K·K
                // shifts' backward passes.
                let dcols = filter.t()?.matmul(&dy)?; // [T, M]
                let (cin, k, st) = (l.spec.cin, l.spec.k, l.spec.stride);
                let (h, w) = sv.in_hw;
                let (ho, wo) = (h.div_ceil(st), w.div_ceil(st));
                let bsz = m / (ho * wo);
                let d5 = dcols.reshape((cin, k * k, bsz, ho, wo))?;
                let mut dx: Option<Tensor> = None;
                for (t, op) in kxk_shifts(cin, k, st).enumerate() {
                    let g = d5.narrow(1, t, 1)?.squeeze(1)?.contiguous()?;
                    let d = op.backward(&g, h, w)?;
                    dx = Some(match dx {
                        None => d,
                        Some(acc) => (acc + d)?,
                    });
                }
                let dx = dx.context("a KxK block has K·K >= 1 taps")?;
                da = dx.reshape((cin, bsz * h * w))?;
            }
            if let Some(d) = dbasis {
                grads.push(d);
            }
            grads.push(Tensor::from_vec(db, n, &dev)?);
            grads.push(Tensor::from_vec(dg, n, &dev)?);
            grads.push(dw);
        }
        grads.reverse();
        grads.extend(head_grads);
        grads.push(dfc_w);
        grads.push(dfc_b);
        Ok((logits, grads))
    }

    /// Trainable parameters with (weight decay, L1, mask index) flags: conv weights get
    /// both decay and L1; BN parameters neither (as in the seeds); the classifier decay.
    pub fn params(&self) -> Vec<(Var, bool, bool, Option<MaskOf>)> {
        let mut v = Vec::new();
        for (i, l) in self.convs.iter().enumerate() {
            v.push((l.w.clone(), true, true, Some(MaskOf::Conv(i))));
            v.push((l.gamma.clone(), false, false, None));
            v.push((l.beta.clone(), false, false, None));
            if let Some(b) = &l.basis {
                // Decayed like the weights; never L1-pruned (the coefficients are).
                v.push((b.clone(), true, false, None));
            }
        }
        for (w, b) in &self.hidden {
            v.push((w.clone(), true, false, None));
            v.push((b.clone(), false, false, None));
        }
        v.push((self.fc_w.clone(), true, false, Some(MaskOf::Classifier)));
        v.push((self.fc_b.clone(), false, false, None));
        v
    }

    /// The mask a parameter lives under, if it has one now.
    pub fn mask(&self, m: MaskOf) -> Option<&Tensor> {
        match m {
            MaskOf::Conv(i) => self.convs[i].mask.as_ref(),
            MaskOf::Classifier => self.fc_mask.as_ref(),
        }
    }

    /// Pre-defined sparsity: fixes conv `i`'s connection pattern before training (the
    /// weights outside it are zeroed and stay zero).
    pub fn fix_conv_pattern(&mut self, i: usize, p: &Pattern) -> Result<()> {
        let l = &mut self.convs[i];
        l.mask = Some(apply_pattern(&l.w, p, &self.device, &format!("conv {i}"))?);
        l.groups = Some(p.group_of.clone());
        Ok(())
    }

    /// Pre-defined sparsity: every fixed connection whose weight the compiler's 8-bit
    /// rounding would make 0 (|w'|·2^k < ½ after folding batchnorm, k the layer's scale
    /// exponent, docs/DESIGN.md §5) is moved to ¾ of a step with its sign, so that it
    /// stays a weight in hardware (a change below one quantization step). Returns how
    /// many moved.
    pub fn keep_connections(&mut self) -> Result<usize> {
        let mut moved = 0;
        for l in &mut self.convs {
            let (Some(mask), Some(_)) = (&l.mask, &l.groups) else {
                continue;
            };
            let (n, t) = l.w.as_tensor().dims2()?;
            let mut w: Vec<f32> = l.w.as_tensor().flatten_all()?.to_vec1()?;
            let m: Vec<f32> = mask.flatten_all()?.to_vec1()?;
            let gamma: Vec<f32> = l.gamma.as_tensor().to_vec1()?;
            let var: Vec<f32> = l.running_var.to_vec1()?;
            // As the compiler folds (in f64, from the stored f32 values).
            let scale: Vec<f64> = (0..n)
                .map(|r| f64::from(gamma[r]) / (f64::from(var[r]) + BN_EPS).sqrt())
                .collect();
            let folded: Vec<f64> = (0..n * t).map(|i| f64::from(w[i]) * scale[i / t]).collect();
            let max = folded.iter().fold(0.0, |a: f64, v| a.max(v.abs()));
            let step = 2f64.powi(-weight_exponent(max));
            for i in 0..n * t {
                let s = scale[i / t];
                if m[i] != 0.0 && s != 0.0 && folded[i].abs() < 0.5 * step {
                    let sign = if w[i] < 0.0 { -1.0 } else { 1.0 };
                    w[i] = (sign * 0.75 * step / s.abs()) as f32;
                    moved += 1;
                }
            }
            l.w.set(&Tensor::from_vec(w, (n, t), &self.device)?)?;
        }
        Ok(moved)
    }

    /// Pre-defined sparsity of the classifier.
    pub fn fix_classifier_pattern(&mut self, p: &Pattern) -> Result<()> {
        self.fc_mask = Some(apply_pattern(&self.fc_w, p, &self.device, "classifier")?);
        Ok(())
    }

    /// Weight matrix of conv `i` as f64 (masked).
    pub fn weight_matrix(&self, i: usize) -> Result<Array2<f64>> {
        let l = &self.convs[i];
        let w = l.masked()?;
        let (n, t) = w.dims2()?;
        let v: Vec<f32> = w.flatten_all()?.to_vec1()?;
        Ok(Array2::from_shape_vec(
            (n, t),
            v.into_iter().map(f64::from).collect(),
        )?)
    }

    /// Nonzero conv weights (after masks; basis kernels included) and all conv weights.
    pub fn nonzeros(&self) -> Result<(usize, usize)> {
        let mut nz = 0;
        let mut all = 0;
        for l in &self.convs {
            let basis = l.basis.as_ref().map(|b| b.as_tensor().clone());
            for w in std::iter::once(l.masked()?).chain(basis) {
                nz += w
                    .ne(0f32)?
                    .to_dtype(DType::F32)?
                    .sum_all()?
                    .to_scalar::<f32>()? as usize;
                all += w.elem_count();
            }
        }
        Ok((nz, all))
    }

    /// Writes the model format (safetensors + `ccc.graph`) that `ccc compile` reads.
    pub fn export(&self, name: &str, gamma: f64, path: &Path) -> Result<()> {
        let mut m = ModelWriter::new(name, self.arch.classes, self.arch.input, Some(gamma));
        let f32s = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        for (i, l) in self.convs.iter().enumerate() {
            let s = &l.spec;
            let prefix = if i == 0 {
                "stem".to_string()
            } else {
                format!("b{i}")
            };
            if let Some(sh) = &l.shifts {
                let v: Vec<i32> = sh.iter().flat_map(|&(dy, dx)| [dy, dx]).collect();
                m.tensor(&format!("{prefix}.shift"), OutTensor::i32(&[s.cin, 2], v));
                m.shift(&format!("{prefix}.shift"));
            }
            let alpha = (s.alpha > 1).then_some(s.alpha);
            if let Some(b) = &l.basis {
                let bname = format!("{prefix}.conv.basis");
                m.tensor(
                    &bname,
                    OutTensor::f32(&[s.bases, s.k, s.k], f32s(b.as_tensor())?),
                );
                let cname = format!("{prefix}.conv.coeff");
                m.tensor(
                    &cname,
                    OutTensor::f32(&[s.out, s.cols()], f32s(&l.masked()?)?),
                );
                m.decomposed_conv(&bname, &cname, None, s.stride, s.k / 2, alpha);
            } else {
                let wname = format!("{prefix}.conv.weight");
                m.tensor(
                    &wname,
                    OutTensor::f32(&[s.out, s.cin, s.k, s.k], f32s(&l.masked()?)?),
                );
                m.conv(&wname, None, s.stride, s.k / 2, alpha);
            }
            if let (Some(mask), Some(groups)) = (&l.mask, &l.groups) {
                let mname = format!("{prefix}.conv.mask");
                m.tensor(
                    &mname,
                    OutTensor::f32(&[s.out, s.cin, s.k, s.k], f32s(mask)?),
                );
                m.layer_tensor("mask", &mname);
                let gname = format!("{prefix}.conv.groups");
                let labels = groups.iter().map(|&g| g as i32).collect::<Vec<i32>>();
                m.tensor(&gname, OutTensor::i32(&[s.cin, s.k, s.k], labels));
                m.layer_tensor("groups", &gname);
            }
            let bn = format!("{prefix}.bn");
            for (suffix, t) in [
                ("weight", l.gamma.as_tensor()),
                ("bias", l.beta.as_tensor()),
                ("running_mean", &l.running_mean),
                ("running_var", &l.running_var),
            ] {
                m.tensor(
                    &format!("{bn}.{suffix}"),
                    OutTensor::f32(&[s.out], f32s(t)?),
                );
            }
            m.batchnorm(&bn, BN_EPS);
            m.activation(true);
        }
        m.avgpool();
        for (i, (wv, bv)) in self.hidden.iter().enumerate() {
            let (o, c) = wv.dims2()?;
            let (wn, bn) = (format!("head.{i}.weight"), format!("head.{i}.bias"));
            m.tensor(&wn, OutTensor::f32(&[o, c], f32s(wv.as_tensor())?));
            m.tensor(&bn, OutTensor::f32(&[o], f32s(bv.as_tensor())?));
            m.linear(&wn, &bn);
            m.activation(true);
        }
        let (o, c) = self.fc_w.dims2()?;
        m.tensor(
            "fc.weight",
            OutTensor::f32(&[o, c], f32s(self.fc_w.as_tensor())?),
        );
        m.tensor(
            "fc.bias",
            OutTensor::f32(&[o], f32s(self.fc_b.as_tensor())?),
        );
        m.linear("fc.weight", "fc.bias");
        if let Some(mask) = &self.fc_mask {
            m.tensor("fc.mask", OutTensor::f32(&[o, c], f32s(mask)?));
            m.layer_tensor("mask", "fc.mask");
        }
        m.write(path)
            .with_context(|| format!("writing trained model {}", path.display()))
    }
}

impl ConvLayer {
    /// Takes a trained model's matrix (`w` row-major, N x [`ConvSpec::cols`]) and conv
    /// bias: zero weights of a combined layer become its mask, and a bias without
    /// batchnorm goes into beta (gamma stays 1).
    fn set_trained<'a>(
        &mut self,
        w: impl Iterator<Item = &'a f64>,
        bias: Option<&ndarray::Array1<f64>>,
        dev: &Device,
    ) -> Result<()> {
        let s = &self.spec;
        let w: Vec<f32> = w.map(|&v| v as f32).collect();
        let any_zero = w.contains(&0.0);
        let t = Tensor::from_vec(w, (s.out, s.cols()), dev)?;
        self.mask = if any_zero && s.alpha > 1 {
            Some(t.ne(0f32)?.to_dtype(DType::F32)?)
        } else {
            None
        };
        self.w.set(&t)?;
        if let Some(b) = bias {
            let v: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            self.beta.set(&Tensor::from_vec(v, s.out, dev)?)?;
        }
        Ok(())
    }

    /// The N x T filter matrix that `w` (the trained matrix, or a masked copy) makes: `w`
    /// itself, or a decomposed conv's kernels, Σ_m w[n, c·M + m] · basis[m].
    pub fn filter(&self, w: &Tensor) -> Result<Tensor> {
        let Some(basis) = &self.basis else {
            return Ok(w.clone());
        };
        let s = &self.spec;
        Ok(w.reshape((s.out * s.cin, s.bases))?
            .matmul(basis.as_tensor())?
            .reshape((s.out, s.taps()))?)
    }

    /// A decomposed conv fake-quantized as the compiler runs it by default
    /// (docs/DESIGN.md §10, `stages`): basis kernels scaled to unit L1 norm and
    /// quantized, the basis stage's signed output Z quantized at the compiler's fraction
    /// width (uint8 around zero point 128: −128..127 steps), then the coefficients (the
    /// inverse scales and batchnorm folded in, quantized) over Z, bias and ReLU6 at
    /// `frac`. Straight-through gradients. `cols` are the layer's taps, [C·K·K, B·P].
    fn quant_stages(&self, cols: &Tensor, frac: u32) -> Result<Tensor> {
        let s = &self.spec;
        let basis = self
            .basis
            .as_ref()
            .context("a decomposed conv has a basis")?;
        let kk = s.k * s.k;
        let b = basis.as_tensor();
        // Unit L1 norm per basis kernel (an all-zero kernel keeps scale 1).
        let norms = b.abs()?.sum_keepdim(1)?; // [M, 1]
        let ones = norms.ones_like()?;
        let norms = norms.eq(0f32)?.where_cond(&ones, &norms)?;
        let normalized = b.broadcast_div(&norms)?;
        let bq = fake_quant_weight(&normalized)?;
        // Z[c·M + m] = Σ_t Bq[m, t] · tap (c, t).
        let m_cols = cols.dim(1)?;
        let z = bq
            .unsqueeze(0)?
            .broadcast_as((s.cin, s.bases, kk))?
            .contiguous()?
            .matmul(&cols.reshape((s.cin, kk, m_cols))?)?
            .reshape((s.cin * s.bases, m_cols))?;
        // The compiler's fraction width: the worst case |Z| (the largest input, 6 after
        // ReLU6, times the largest row's Σ|w| of the normalized float basis) within 127.
        let row_l1 = normalized.abs()?.sum(1)?.max(0)?.to_scalar::<f32>()?;
        let relu6_max = crate::quant::clamp_max(crate::lower::Activation::Relu6, frac);
        let max_in = f64::from(relu6_max) / f64::from(1u32 << frac);
        let f_z = crate::quant::offset_frac_of(f64::from(row_l1) * max_in);
        let zs = 2f64.powi(f_z as i32);
        // Round half up, as the requantizer; −128..127 around the zero point.
        let zq = ((z.detach() * zs)? + 0.5)?
            .floor()?
            .clamp(-128f32, 127f32)?;
        let z = ste(&z, &(zq / zs)?)?;
        // Coefficients with the inverse scales, batchnorm folded, quantized.
        let scale = self
            .gamma
            .as_tensor()
            .broadcast_div(&(&self.running_var + BN_EPS)?.sqrt()?)?;
        let per_col = norms
            .reshape((1, 1, s.bases))?
            .broadcast_as((1, s.cin, s.bases))?
            .reshape((1, s.cin * s.bases))?;
        let a = self
            .w
            .as_tensor()
            .broadcast_mul(&per_col)?
            .broadcast_mul(&scale.reshape((s.out, 1))?)?;
        let bias = (self.beta.as_tensor() - (&self.running_mean * &scale)?)?;
        let act = BiasRelu6 { frac: Some(frac) };
        Ok(fake_quant_weight(&a)?.matmul(&z)?.apply_op2(&bias, act)?)
    }

    /// A decomposed conv's basis stage as the compiler lowers it: the C·M x C·K·K block
    /// diagonal matrix, row c·M + m holding basis kernel m over channel c's taps.
    pub fn basis_matrix(&self) -> Result<Option<Array2<f64>>> {
        let Some(basis) = &self.basis else {
            return Ok(None);
        };
        let s = &self.spec;
        let kk = s.k * s.k;
        let b: Vec<f32> = basis.as_tensor().flatten_all()?.to_vec1()?;
        Ok(Some(Array2::from_shape_fn(
            (s.cin * s.bases, s.cin * kk),
            |(r, t)| {
                if r / s.bases == t / kk {
                    f64::from(b[(r % s.bases) * kk + t % kk])
                } else {
                    0.0
                }
            },
        )))
    }

    pub fn masked(&self) -> Result<Tensor> {
        Ok(match &self.mask {
            Some(m) => (self.w.as_tensor() * m)?,
            None => self.w.as_tensor().clone(),
        })
    }

    /// Batchnorm (running statistics) folded into weights and bias, as the compiler
    /// folds it before quantizing.
    fn folded(&self) -> Result<(Tensor, Tensor)> {
        let scale = self
            .gamma
            .as_tensor()
            .broadcast_div(&(&self.running_var + BN_EPS)?.sqrt()?)?;
        let w = self
            .filter(self.w.as_tensor())?
            .broadcast_mul(&scale.reshape((self.spec.out, 1))?)?;
        let b = (self.beta.as_tensor() - (&self.running_mean * &scale)?)?;
        Ok((w, b))
    }
}

/// The first `n` images of a batch as a [B, 1, H, W] tensor of p / 256.
pub fn batch_tensor(
    images: &[&[u8]],
    c: usize,
    h: usize,
    w: usize,
    dev: &Device,
) -> Result<Tensor> {
    let mut v = Vec::with_capacity(images.len() * c * h * w);
    for img in images {
        v.extend(img.iter().map(|&p| f32::from(p) / 256.0));
    }
    Ok(Tensor::from_vec(v, (images.len(), c, h, w), dev)?)
}

/// Index of the largest logit per row.
pub fn predictions(logits: &Tensor) -> Result<Vec<u32>> {
    Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?)
}
