//! Lowering (docs/DESIGN.md §3): turns the float [`Network`] into a chain of 1x1 layers
//! over *virtual channels* (taps), folds batchnorm into the conv before it, and checks
//! that the layer sequence is one the array can run.
//!
//! Accepted structure: `([shift] conv|decomposed_conv [batchnorm] relu6|relu)* avgpool
//! linear`. A shift may only precede a 1x1 conv (a shift before a padded KxK conv
//! zero-fills twice, which one (dy, dx) per tap cannot express). A decomposed conv lowers
//! to two layers (basis stage, coefficient stage) or to the KxK conv it computes
//! ([`Decomposition`]).

use std::path::PathBuf;

use ndarray::{Array1, Array2, Axis};
use serde::Serialize;

use crate::error::ModelError;
use crate::model::{Conv, DecomposedConv, Groups, InputSpec, Network, Op};

/// One column of a layer's filter matrix: input `channel` read at (y·s + dy, x·s + dx).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Tap {
    pub channel: usize,
    pub dy: i64,
    pub dx: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu6,
    Relu,
    /// No activation: the signed output of a decomposed conv's basis stage ([`basis_stage`],
    /// the only layer that has it; the packer groups it with
    /// [`crate::pack::predefined::basis_labels`], which never clashes). Stored as uint8
    /// with zero point [`crate::quant::OFFSET_ZERO`], which the next layer's bias absorbs
    /// (docs/DESIGN.md §10).
    Offset,
    /// None, and no requantizer either: the layer's int32 accumulators are the network's
    /// logits. Only the classifier run on the array has it ([`crate::quant::QNet::head_layers`]).
    Logits,
}

/// How a `decomposed_conv` runs on the array (`ccc compile --decomposed`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Decomposition {
    /// Basis stage (each input channel convolved with the M basis kernels: C·M signed
    /// channels) then coefficient stage (a 1x1 conv over them).
    #[default]
    Stages,
    /// The KxK conv whose kernels the coefficients and basis make.
    Expanded,
}

impl Decomposition {
    /// The mapping this one is compared against.
    pub fn other(self) -> Self {
        match self {
            Decomposition::Stages => Decomposition::Expanded,
            Decomposition::Expanded => Decomposition::Stages,
        }
    }

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Decomposition::Stages => "stages",
            Decomposition::Expanded => "expanded",
        }
    }
}

/// Feature-map shape (channels, height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Dims {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    pub fn pixels(&self) -> usize {
        self.h * self.w
    }
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A conv block as a 1x1 convolution over taps: out = act(F · taps + bias).
#[derive(Clone, Debug)]
pub struct LoweredLayer {
    /// Graph index of the conv, for messages and reports.
    pub conv_index: usize,
    /// Graph index of the activation that closes the block.
    pub act_index: usize,
    pub weight_name: String,
    pub input: Dims,
    pub output: Dims,
    pub stride: usize,
    pub taps: Vec<Tap>,
    /// N x T filter matrix, batchnorm folded in (f64).
    pub weight: Array2<f64>,
    pub bias: Array1<f64>,
    pub act: Activation,
    pub alpha: Option<usize>,
    /// The model's stored grouping of `taps`, if any (pre-defined sparsity).
    pub groups: Option<crate::model::Groups>,
}

/// A linear layer of an MLP head: between the pool and the classifier, closed by its
/// activation (docs/DESIGN.md §10).
#[derive(Clone, Debug)]
pub struct LoweredLinear {
    pub linear_index: usize,
    pub weight_name: String,
    /// [out, in]; the first one's still without the 1/(H·W) pooling factor.
    pub weight: Array2<f64>,
    pub bias: Array1<f64>,
    pub act: Activation,
}

/// Global average pool, the MLP head's hidden linear layers (if any), the classifier.
#[derive(Clone, Debug)]
pub struct LoweredClassifier {
    pub linear_index: usize,
    pub weight_name: String,
    /// [classes, inputs]: the pooled channels, still without the 1/(H·W) pooling factor,
    /// or the last hidden layer's outputs.
    pub weight: Array2<f64>,
    pub bias: Array1<f64>,
    /// Shape of the map the pool reduces.
    pub pool_input: Dims,
    /// The hidden linear layers, in order; empty for a plain linear classifier.
    pub hidden: Vec<LoweredLinear>,
}

impl LoweredClassifier {
    /// The weight that reads the pooled channels (its columns follow the last conv's
    /// channel order).
    pub fn pool_weight_mut(&mut self) -> &mut Array2<f64> {
        match self.hidden.first_mut() {
            Some(h) => &mut h.weight,
            None => &mut self.weight,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LoweredNet {
    pub name: String,
    pub classes: usize,
    pub input: InputSpec,
    pub gamma: Option<f64>,
    pub layers: Vec<LoweredLayer>,
    pub classifier: LoweredClassifier,
    pub path: PathBuf,
    /// Decomposed convs in the model, and how they were lowered.
    pub decomposed: usize,
    pub decomposition: Decomposition,
}

impl LoweredNet {
    pub fn input_dims(&self) -> Dims {
        Dims {
            c: self.input.channels,
            h: self.input.height,
            w: self.input.width,
        }
    }
}

/// [`lower_with`] the default mapping of decomposed convs.
pub fn lower(net: &Network) -> Result<LoweredNet, ModelError> {
    lower_with(net, Decomposition::default())
}

/// The basis stage of a decomposed conv as a conv layer: output channel c·M + m is input
/// channel c convolved with basis kernel m, so the filter matrix (rows (c, m), columns
/// (c, tap)) is block diagonal. Each basis kernel is scaled to unit L1 norm (its
/// coefficients take the inverse factor, the product is unchanged), so that every basis
/// output has the same worst-case range and one 8-bit scale suits them all.
fn basis_stage(d: &DecomposedConv, index: usize, dims: Dims) -> (LoweredLayer, Conv) {
    let (m, k, _) = d.basis.dim();
    let c = dims.c;
    let kk = k * k;
    let norms: Vec<f64> = (0..m)
        .map(|b| d.basis.index_axis(Axis(0), b).iter().map(|v| v.abs()).sum())
        .collect();
    let scale = |b: usize| if norms[b] > 0.0 { norms[b] } else { 1.0 };
    let p = d.padding as i64;
    let mut taps = Vec::with_capacity(c * kk);
    for ch in 0..c {
        for t in 0..kk as i64 {
            taps.push(Tap {
                channel: ch,
                dy: t / k as i64 - p,
                dx: t % k as i64 - p,
            });
        }
    }
    let mut weight = Array2::zeros((c * m, c * kk));
    for ch in 0..c {
        for b in 0..m {
            for t in 0..kk {
                weight[[ch * m + b, ch * kk + t]] = d.basis[[b, t / k, t % k]] / scale(b);
            }
        }
    }
    let output = Dims {
        c: c * m,
        h: (dims.h + 2 * d.padding - k) / d.stride + 1,
        w: (dims.w + 2 * d.padding - k) / d.stride + 1,
    };
    let basis = LoweredLayer {
        conv_index: index,
        act_index: index,
        weight_name: d.basis_name.clone(),
        input: dims,
        output,
        stride: d.stride,
        taps,
        weight,
        bias: Array1::zeros(c * m),
        act: Activation::Offset,
        alpha: d.alpha,
        groups: None,
    };
    let (n, cm) = d.coeff.dim();
    let coeff = Array2::from_shape_fn((n, cm), |(o, j)| d.coeff[[o, j]] * scale(j % m));
    let conv = Conv {
        weight_name: d.weight_name.clone(),
        weight: coeff
            .into_shape_with_order((n, cm, 1, 1))
            .expect("contiguous coefficients"),
        bias: d.bias.clone(),
        stride: 1,
        padding: 0,
        alpha: d.alpha,
        groups: None::<Groups>,
    };
    (basis, conv)
}

pub fn lower_with(net: &Network, decomposition: Decomposition) -> Result<LoweredNet, ModelError> {
    let path = net.path.clone();
    let unsupported = |layer: usize, kind: &str, reason: String| ModelError::Unsupported {
        path: path.clone(),
        layer,
        kind: kind.to_string(),
        reason,
    };
    let mut dims = Dims {
        c: net.input.channels,
        h: net.input.height,
        w: net.input.width,
    };
    let mut layers = Vec::new();
    let mut i = 0;
    let ops = &net.layers;
    while i < ops.len() {
        let layer = &ops[i];
        match &layer.op {
            Op::Shift(_) | Op::Conv(_) | Op::DecomposedConv(_) => {
                let shift = if let Op::Shift(s) = &layer.op {
                    i += 1;
                    match ops.get(i).map(|l| &l.op) {
                        Some(Op::Conv(_)) => Some((layer.index, s)),
                        Some(Op::DecomposedConv(_)) => {
                            return Err(unsupported(
                                layer.index,
                                "shift",
                                "a shift may not precede a decomposed conv (a KxK conv)".into(),
                            ));
                        }
                        Some(other) => {
                            return Err(unsupported(
                                layer.index,
                                "shift",
                                format!(
                                    "a shift must be followed by a 1x1 conv, found {}",
                                    other.kind()
                                ),
                            ));
                        }
                        None => {
                            return Err(unsupported(
                                layer.index,
                                "shift",
                                "a shift cannot end the network".into(),
                            ));
                        }
                    }
                } else {
                    None
                };
                let conv_layer = &ops[i];
                let staged;
                let conv = match &conv_layer.op {
                    Op::Conv(conv) => conv,
                    Op::DecomposedConv(d) => {
                        debug_assert_eq!(d.coeff.ncols(), dims.c * d.bases(), "checked at ingest");
                        staged = match decomposition {
                            Decomposition::Stages => {
                                let (basis, coeff) = basis_stage(d, conv_layer.index, dims);
                                dims = basis.output;
                                layers.push(basis);
                                coeff
                            }
                            Decomposition::Expanded => d.as_conv(),
                        };
                        &staged
                    }
                    _ => unreachable!("checked above"),
                };
                let (n, cin, k, _) = conv.weight.dim();
                if let Some((shift_index, _)) = shift
                    && k != 1
                {
                    return Err(unsupported(
                        conv_layer.index,
                        "conv",
                        format!(
                            "the shift at layer {shift_index} precedes a {k}x{k} conv; shifts may only precede 1x1 convs"
                        ),
                    ));
                }
                let p = conv.padding as i64;
                let mut taps = Vec::with_capacity(cin * k * k);
                for c in 0..cin {
                    let (sy, sx) = shift.map_or((0, 0), |(_, s)| s.shifts[c]);
                    for ky in 0..k as i64 {
                        for kx in 0..k as i64 {
                            taps.push(Tap {
                                channel: c,
                                dy: ky - p + sy,
                                dx: kx - p + sx,
                            });
                        }
                    }
                }
                // PyTorch's weight.view(out, -1) order: (in, ky, kx) — the same as `taps`.
                let mut weight = conv
                    .weight
                    .clone()
                    .into_shape_with_order((n, cin * k * k))
                    .expect("contiguous conv weight");
                let mut bias = conv.bias.clone().unwrap_or_else(|| Array1::zeros(n));
                let output = Dims {
                    c: n,
                    h: (dims.h + 2 * conv.padding - k) / conv.stride + 1,
                    w: (dims.w + 2 * conv.padding - k) / conv.stride + 1,
                };
                i += 1;
                if let Some(Op::BatchNorm(bn)) = ops.get(i).map(|l| &l.op) {
                    // Fold in f64: w' = w·γ/σ, b' = (b − μ)·γ/σ + β.
                    for r in 0..n {
                        let scale = bn.weight[r] / (bn.var[r] + bn.eps).sqrt();
                        weight.row_mut(r).mapv_inplace(|w| w * scale);
                        bias[r] = (bias[r] - bn.mean[r]) * scale + bn.bias[r];
                    }
                    i += 1;
                }
                let (act, act_index) = match ops.get(i) {
                    Some(l) if matches!(l.op, Op::Relu6) => (Activation::Relu6, l.index),
                    Some(l) if matches!(l.op, Op::Relu) => (Activation::Relu, l.index),
                    other => {
                        return Err(unsupported(
                            conv_layer.index,
                            "conv",
                            format!(
                                "a conv (with optional batchnorm) must be followed by relu6 or relu, because activations are uint8; found {}",
                                other.map_or("the end of the network", |l| l.op.kind())
                            ),
                        ));
                    }
                };
                i += 1;
                for (what, finite) in [
                    ("weight", weight.iter().all(|x| x.is_finite())),
                    ("bias", bias.iter().all(|x| x.is_finite())),
                ] {
                    if !finite {
                        return Err(ModelError::BadTensor {
                            path: path.clone(),
                            layer: conv_layer.index,
                            kind: "conv".into(),
                            tensor: conv.weight_name.clone(),
                            reason: format!("folding batchnorm made the {what} non-finite"),
                        });
                    }
                }
                layers.push(LoweredLayer {
                    conv_index: conv_layer.index,
                    act_index,
                    weight_name: conv.weight_name.clone(),
                    input: dims,
                    output,
                    stride: conv.stride,
                    taps,
                    weight,
                    bias,
                    act,
                    alpha: conv.alpha,
                    groups: conv.groups.clone(),
                });
                dims = output;
            }
            Op::AvgPool => {
                let pool_input = dims;
                let HeadOps {
                    hidden,
                    classifier_index: lin_index,
                    classifier: lin,
                } = lower_head(&ops[i + 1..], &unsupported)?;
                let classes = lin.weight.len_of(Axis(0));
                return Ok(LoweredNet {
                    name: net.name.clone(),
                    classes,
                    input: net.input.clone(),
                    gamma: net.gamma,
                    layers,
                    classifier: LoweredClassifier {
                        linear_index: lin_index,
                        weight_name: lin.weight_name.clone(),
                        weight: lin.weight.clone(),
                        bias: lin.bias.clone().unwrap_or_else(|| Array1::zeros(classes)),
                        pool_input,
                        hidden,
                    },
                    path: net.path.clone(),
                    decomposed: net
                        .layers
                        .iter()
                        .filter(|l| matches!(l.op, Op::DecomposedConv(_)))
                        .count(),
                    decomposition,
                });
            }
            other => {
                return Err(unsupported(
                    layer.index,
                    other.kind(),
                    match other {
                        Op::BatchNorm(_) => "batchnorm must directly follow a conv".into(),
                        Op::Relu6 | Op::Relu => {
                            "an activation must close a conv block (conv [batchnorm] relu)".into()
                        }
                        _ => "a linear layer must follow a global avgpool".into(),
                    },
                ));
            }
        }
    }
    Err(ModelError::Graph {
        path,
        reason: "the network has no `avgpool` + `linear` classifier at its end".into(),
    })
}

/// What follows the pool: the MLP head's hidden layers and the classifier.
struct HeadOps<'a> {
    hidden: Vec<LoweredLinear>,
    /// The classifier's index in the model's graph.
    classifier_index: usize,
    classifier: &'a crate::model::Linear,
}

/// The layers after the pool: `(linear (relu|relu6))* linear`.
fn lower_head<'a>(
    ops: &'a [crate::model::Layer],
    unsupported: &dyn Fn(usize, &str, String) -> ModelError,
) -> Result<HeadOps<'a>, ModelError> {
    let mut hidden = Vec::new();
    let mut i = 0;
    loop {
        let Some(layer) = ops.get(i) else {
            let (index, kind) = ops
                .last()
                .map_or((0, "avgpool"), |l| (l.index, l.op.kind()));
            return Err(unsupported(
                index,
                kind,
                "the network must end with a linear classifier after avgpool".into(),
            ));
        };
        let Op::Linear(lin) = &layer.op else {
            return Err(unsupported(
                layer.index,
                layer.op.kind(),
                "after avgpool only linear layers may follow, with relu or relu6 between them"
                    .into(),
            ));
        };
        let act = match ops.get(i + 1).map(|l| &l.op) {
            None => {
                return Ok(HeadOps {
                    hidden,
                    classifier_index: layer.index,
                    classifier: lin,
                });
            }
            Some(Op::Relu6) => Activation::Relu6,
            Some(Op::Relu) => Activation::Relu,
            Some(other) => {
                return Err(unsupported(
                    ops[i + 1].index,
                    other.kind(),
                    "a hidden linear layer must be closed by relu or relu6 (an MLP head)".into(),
                ));
            }
        };
        let out = lin.weight.nrows();
        hidden.push(LoweredLinear {
            linear_index: layer.index,
            weight_name: lin.weight_name.clone(),
            weight: lin.weight.clone(),
            bias: lin.bias.clone().unwrap_or_else(|| Array1::zeros(out)),
            act,
        });
        i += 2;
    }
}

/// A conv layer whose output channels can be reordered (the row permutation of
/// docs/DESIGN.md §4) and whose input taps can be relabelled to follow the previous layer's.
pub trait ChannelOrder {
    /// Moves output channel `perm[i]` to slot `i` (filters, bias, and anything else
    /// indexed by output channel).
    fn permute_outputs(&mut self, perm: &[usize]);
    /// The taps whose `channel` names the previous layer's output slots.
    fn taps_mut(&mut self) -> &mut [Tap];
}

/// Reorders every layer's output channels by `perms` (`perms[l][i]`: the channel of
/// layer l that moves to slot i) and relabels what reads them — the next layer's taps,
/// or the classifier's input columns `cls_weight` after the last layer — so the network
/// computes the same values. Tap order is kept, so float sums are bit-identical. The one
/// implementation behind the float network's and the packed network's permutation.
pub fn permute_channels<L: ChannelOrder, W: Clone>(
    layers: &mut [L],
    cls_weight: &mut Array2<W>,
    perms: &[Vec<usize>],
) {
    let n = layers.len();
    for (l, perm) in perms.iter().enumerate().take(n) {
        layers[l].permute_outputs(perm);
        let inv = invert(perm);
        if l + 1 < n {
            for t in layers[l + 1].taps_mut() {
                t.channel = inv[t.channel];
            }
        } else {
            *cls_weight = cls_weight.select(Axis(1), perm);
        }
    }
}

impl ChannelOrder for LoweredLayer {
    fn permute_outputs(&mut self, perm: &[usize]) {
        self.weight = self.weight.select(Axis(0), perm);
        self.bias = self.bias.select(Axis(0), perm);
    }

    fn taps_mut(&mut self) -> &mut [Tap] {
        &mut self.taps
    }
}

impl LoweredNet {
    /// The same network with its output channels reordered ([`permute_channels`]).
    pub fn permuted(&self, perms: &[Vec<usize>]) -> LoweredNet {
        let mut out = self.clone();
        permute_channels(&mut out.layers, out.classifier.pool_weight_mut(), perms);
        out
    }
}

/// What `ccc inspect` prints: a model's layers, shapes and sparsity.
pub fn describe(path: &std::path::Path, graph: Option<&std::path::Path>) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let net = crate::model::load(path, graph)?;
    let lowered = lower(&net)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
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
        let _ = writeln!(
            s,
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
    let mut head = format!(
        "  avgpool over {}x{}x{}",
        c.pool_input.c, c.pool_input.h, c.pool_input.w
    );
    for h in &c.hidden {
        let _ = write!(
            head,
            " + linear `{}` {}x{} {:?}",
            h.weight_name,
            h.weight.nrows(),
            h.weight.ncols(),
            h.act
        );
    }
    let _ = writeln!(
        s,
        "{head} + linear `{}` {}x{}",
        c.weight_name,
        c.weight.nrows(),
        c.weight.ncols()
    );
    Ok(s)
}

/// Inverse of a permutation given as "slot i holds element perm[i]".
pub fn invert(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (slot, &orig) in perm.iter().enumerate() {
        inv[orig] = slot;
    }
    inv
}
