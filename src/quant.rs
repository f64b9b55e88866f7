//! Quantization (docs/DESIGN.md §5): int8 weights with one power-of-two scale per layer,
//! uint8 activations at 2^-f, int32 biases at the accumulator scale, and the classifier
//! with the 1/(H·W) pooling factor folded in. Also the scalar arithmetic every integer
//! consumer (reference, packer, RTL emitter) must share: rounding, requantize, clamp.

use anyhow::{Context, Result, bail};
use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::lower::{Activation, Dims, LoweredLayer, LoweredNet, Tap};

/// Fraction bits of the input image (pixel p means p/256).
pub const INPUT_FRAC: u32 = 8;
/// Default fraction bits of inner activations.
pub const DEFAULT_ACT_FRAC: u32 = 5;
/// Largest requantize shift of a hidden linear layer (the head's requantizer: a rounding
/// right shift of the accumulator, never a left shift).
pub const MAX_HEAD_SHIFT: i32 = 30;
/// Zero point of a signed activation stored as uint8 ([`Activation::Offset`]): value
/// z / 2^f is stored as z + 128, clamped to 0..=255.
pub const OFFSET_ZERO: i32 = 128;

#[derive(Clone, Debug, Serialize)]
pub struct QLayer {
    pub conv_index: usize,
    pub weight_name: String,
    pub input: Dims,
    pub output: Dims,
    pub stride: usize,
    pub taps: Vec<Tap>,
    /// N x T, values in [-127, 127].
    #[serde(skip)]
    pub weight: Array2<i32>,
    /// The BN-folded float weights the integers came from; packing ranks by them.
    #[serde(skip)]
    pub float_weight: Array2<f64>,
    pub bias: Vec<i32>,
    /// Weight scale 2^-k.
    pub k: i32,
    pub f_in: u32,
    pub f_out: u32,
    pub act: Activation,
    /// Upper clamp of the output (lower is 0).
    pub clamp_max: i32,
    pub alpha: Option<usize>,
    /// The model's stored grouping of `taps`, if any (pre-defined sparsity).
    #[serde(skip)]
    pub groups: Option<crate::model::Groups>,
    /// Zero point of the inputs ([`OFFSET_ZERO`] after a basis stage, else 0). `bias`
    /// already subtracts `in_zero · Σ weight` per row; a packer that drops weights adds
    /// their share back ([`QLayer::bias_without`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub in_zero: i32,
    /// The head's first linear layer on the array ([`QNet::head_layers`]): the global
    /// average pool folded in. It runs as a 1x1 conv over the last conv's map whose
    /// accumulators carry on from one output pixel to the next (the bias once, at the
    /// first), so that its last pixel holds bias + W·(pooled sums), exactly what the
    /// head unit computes from the sums.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pool: bool,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

impl QLayer {
    /// Row r's bias when the weights `kept(r, t)` rejects are dropped (pruned by column
    /// combining): with a nonzero input zero point, every weight carries its share of the
    /// bias correction, which leaves with it.
    pub fn bias_without(&self, r: usize, kept: impl Fn(usize) -> bool) -> i32 {
        let dropped: i64 = self
            .weight
            .row(r)
            .iter()
            .enumerate()
            .filter(|&(t, _)| !kept(t))
            .map(|(_, &w)| i64::from(w))
            .sum();
        (i64::from(self.bias[r]) + i64::from(self.in_zero) * dropped) as i32
    }

    /// Right shift of the requantizer (negative: left shift).
    pub fn shift(&self) -> i32 {
        self.k + self.f_in as i32 - self.f_out as i32
    }

    /// Output pixels whose values the next layer reads: the last one of a pool layer
    /// (the others hold partial sums), else all.
    pub fn result_pixels(&self) -> std::ops::Range<usize> {
        let p = self.output.pixels();
        if self.pool { p - 1..p } else { 0..p }
    }
}

/// A hidden linear layer of the MLP head: acc = bias + Σ w·x over its inputs (the
/// pooled sums for the first, else the previous hidden layer's uint8 outputs), then
/// requantize and clamp like a conv layer.
#[derive(Clone, Debug, Serialize)]
pub struct QLinear {
    pub linear_index: usize,
    pub weight_name: String,
    /// [out, in]; the first hidden layer's with the pooling factor folded in.
    #[serde(skip)]
    pub weight: Array2<i32>,
    pub bias: Vec<i32>,
    pub k: i32,
    pub f_in: u32,
    pub f_out: u32,
    pub act: Activation,
    pub clamp_max: i32,
    /// Width of the unsigned inputs (the pool's for the first, else 8).
    pub in_bits: u32,
}

impl QLinear {
    /// Right shift of the requantizer (the head's is never a left shift).
    pub fn shift(&self) -> i32 {
        self.k + self.f_in as i32 - self.f_out as i32
    }

    /// The layer's outputs for inputs `x`.
    pub fn run(&self, x: &[i64]) -> Vec<i64> {
        dense_acc(&self.weight, &self.bias, x)
            .map(|acc| i64::from(requantize(acc, self.shift(), self.clamp_max)))
            .collect()
    }
}

/// bias + W·x per output row, exact.
fn dense_acc<'a>(
    w: &'a Array2<i32>,
    bias: &'a [i32],
    x: &'a [i64],
) -> impl Iterator<Item = i64> + 'a {
    w.rows().into_iter().zip(bias).map(move |(row, &b)| {
        i64::from(b)
            + row
                .iter()
                .zip(x)
                .map(|(&w, &v)| i64::from(w) * v)
                .sum::<i64>()
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct QClassifier {
    /// Graph index of the classifier's `linear` layer.
    pub linear_index: usize,
    pub weight_name: String,
    /// [classes, inputs]: over the pooled sums with the pooling factor folded in, or
    /// over the last hidden layer's outputs.
    #[serde(skip)]
    pub weight: Array2<i32>,
    pub bias: Vec<i32>,
    pub k: i32,
    /// Fraction bits of the classifier's inputs.
    pub f_in: u32,
    /// Width of the unsigned pooled sums: 8 + ⌈log2 HW⌉.
    pub in_bits: u32,
    pub pool_input: Dims,
    /// The MLP head's hidden layers, pool side first; empty for a linear classifier.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<QLinear>,
}

impl QClassifier {
    /// The weight matrix that reads the pooled sums.
    pub fn pool_weight(&self) -> &Array2<i32> {
        self.hidden.first().map_or(&self.weight, |h| &h.weight)
    }

    pub fn pool_weight_mut(&mut self) -> &mut Array2<i32> {
        match self.hidden.first_mut() {
            Some(h) => &mut h.weight,
            None => &mut self.weight,
        }
    }

    /// Every linear layer's weights, pool side first, the classifier last.
    pub fn weights(&self) -> impl Iterator<Item = &Array2<i32>> {
        self.hidden.iter().map(|h| &h.weight).chain([&self.weight])
    }

    /// Nonzero weights of the whole head (its MACs per image).
    pub fn nonzeros(&self) -> usize {
        self.weights()
            .map(|w| w.iter().filter(|&&v| v != 0).count())
            .sum()
    }

    /// The logits for the pooled sums `sums`.
    pub fn logits(&self, sums: &[i64]) -> Vec<i32> {
        let mut x = sums.to_vec();
        for h in &self.hidden {
            x = h.run(&x);
        }
        // Bounded at quantization time, so the hardware's int32 logit is exact.
        dense_acc(&self.weight, &self.bias, &x)
            .map(|acc| acc as i32)
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct QNet {
    pub name: String,
    pub classes: usize,
    pub input: Dims,
    pub layers: Vec<QLayer>,
    pub classifier: QClassifier,
}

impl QNet {
    /// The head as array layers (`--head-on-array`, docs/DESIGN.md §10): each linear
    /// layer a 1x1 conv. The pooled sums (8 + ⌈log2 HW⌉ bits) never enter the array:
    /// the first linear layer runs over the last conv's H x W map as a [`QLayer::pool`]
    /// layer, Σ_p W·x_p = W·Σ_p x_p, so its last pixel holds the head unit's accumulator
    /// bit for bit (the integer sum is exact in any order) and the 8-bit activations are
    /// all it reads. The next layer reads that last pixel (tap offset (H − 1, W − 1)) and
    /// has one output pixel, as have the layers after it. The classifier's activation is
    /// [`Activation::Logits`].
    pub fn head_layers(&self) -> Vec<QLayer> {
        let c = &self.classifier;
        let map = c.pool_input;
        struct Dense<'a> {
            index: usize,
            name: &'a str,
            weight: &'a Array2<i32>,
            bias: &'a [i32],
            k: i32,
            f_in: u32,
            f_out: u32,
            act: Activation,
            clamp_max: i32,
        }
        let dense = c
            .hidden
            .iter()
            .map(|h| Dense {
                index: h.linear_index,
                name: &h.weight_name,
                weight: &h.weight,
                bias: &h.bias,
                k: h.k,
                f_in: h.f_in,
                f_out: h.f_out,
                act: h.act,
                clamp_max: h.clamp_max,
            })
            .chain([Dense {
                index: c.linear_index,
                name: &c.weight_name,
                weight: &c.weight,
                bias: &c.bias,
                k: c.k,
                f_in: c.f_in,
                f_out: 0,
                act: Activation::Logits,
                clamp_max: clamp_max(Activation::Logits, 0),
            }]);
        let mut input = map;
        dense
            .enumerate()
            .map(|(i, d)| {
                let (n, t) = d.weight.dim();
                let (output, (dy, dx)) = match i {
                    0 => (Dims { c: n, ..map }, (0, 0)),
                    1 => (
                        Dims { c: n, h: 1, w: 1 },
                        (map.h as i64 - 1, map.w as i64 - 1),
                    ),
                    _ => (Dims { c: n, h: 1, w: 1 }, (0, 0)),
                };
                let q = QLayer {
                    conv_index: d.index,
                    weight_name: d.name.to_string(),
                    input: Dims { c: t, ..input },
                    output,
                    stride: 1,
                    taps: (0..t).map(|channel| Tap { channel, dy, dx }).collect(),
                    weight: d.weight.clone(),
                    // Packing ranks kept weights by magnitude; the integers rank as the
                    // float weights they came from (one scale per layer).
                    float_weight: d.weight.mapv(f64::from),
                    bias: d.bias.to_vec(),
                    k: d.k,
                    f_in: d.f_in,
                    f_out: d.f_out,
                    act: d.act,
                    clamp_max: d.clamp_max,
                    alpha: None,
                    groups: None,
                    in_zero: 0,
                    pool: i == 0,
                };
                input = output;
                q
            })
            .collect()
    }
}

/// Round half away from zero, as the contract requires (f64::round does exactly this).
pub fn round_half_away(x: f64) -> f64 {
    x.round()
}

/// Largest k with max_abs·2^k ≤ 127; 0 for an all-zero tensor.
pub fn weight_exponent(max_abs: f64) -> i32 {
    if max_abs == 0.0 {
        return 0;
    }
    let mut k = (127.0 / max_abs).log2().floor() as i32;
    // log2 can land one off near exact powers; settle with exact power-of-two products.
    while max_abs * 2f64.powi(k + 1) <= 127.0 {
        k += 1;
    }
    while max_abs * 2f64.powi(k) > 127.0 {
        k -= 1;
    }
    k
}

/// Requantize an accumulator: rounding arithmetic right shift (or left shift), then clamp.
pub fn requantize(acc: i64, shift: i32, clamp_max: i32) -> i32 {
    let y = if shift > 0 {
        (acc + (1i64 << (shift - 1))) >> shift
    } else {
        acc << (-shift)
    };
    y.clamp(0, clamp_max as i64) as i32
}

pub fn clamp_max(act: Activation, f_out: u32) -> i32 {
    match act {
        Activation::Relu6 => (6i64 << f_out).min(255) as i32,
        Activation::Relu | Activation::Offset => 255,
        // Never requantized (logits leave as int32): no clamp applies; the hardware's
        // clamp field (8 bits) holds its largest value.
        Activation::Logits => 255,
    }
}

/// Fraction bits of a basis stage's signed output: the most that keep its worst case,
/// `max_in` · the largest row's Σ|w| of `weight`, within ±127 (so it never saturates),
/// at most 16.
pub fn offset_frac(weight: &Array2<f64>, max_in: f64) -> u32 {
    let row_l1 = weight
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max);
    offset_frac_of(row_l1 * max_in)
}

/// [`offset_frac`] for a worst-case |output| `bound`.
pub fn offset_frac_of(bound: f64) -> u32 {
    let mut f = 0;
    while f < 16 && bound * 2f64.powi(f as i32 + 1) <= 127.0 {
        f += 1;
    }
    f
}

/// Bits needed for a pooled sum of `pixels` uint8 values: 8 + ⌈log2 HW⌉.
pub fn pool_bits(pixels: usize) -> u32 {
    8 + (pixels.max(1) as u64).next_power_of_two().trailing_zeros()
}

fn quantize_matrix(w: &Array2<f64>, k: i32) -> Array2<i32> {
    let s = 2f64.powi(k);
    w.mapv(|v| round_half_away(v * s).clamp(-127.0, 127.0) as i32)
}

fn quantize_bias(b: &Array1<f64>, exp: i32, what: &dyn Fn() -> String) -> Result<Vec<i32>> {
    let s = 2f64.powi(exp);
    b.iter()
        .enumerate()
        .map(|(i, &v)| {
            let q = round_half_away(v * s);
            if q < i32::MIN as f64 || q > i32::MAX as f64 {
                bail!(
                    "{}: bias[{i}] = {v} does not fit int32 at scale 2^-{exp}",
                    what()
                );
            }
            Ok(q as i32)
        })
        .collect()
}

/// Worst-case |accumulator| of each row of `w` for inputs in 0..=max_in: |bias| +
/// Σ|w|·max_in. Every partial sum of the row (any subset of its terms) lies within it.
pub fn accumulator_bounds<'a>(
    w: &'a Array2<i32>,
    bias: &'a [i32],
    max_in: u64,
) -> impl Iterator<Item = u64> + 'a {
    w.rows().into_iter().zip(bias).map(move |(row, &b)| {
        b.unsigned_abs() as u64
            + row
                .iter()
                .map(|&v| v.unsigned_abs() as u64 * max_in)
                .sum::<u64>()
    })
}

/// Worst-case |accumulator| of each row must fit int32, so that the hardware's 32-bit
/// accumulator never wraps and the reference needs no wrapping semantics.
fn check_accumulator(
    w: &Array2<i32>,
    bias: &[i32],
    max_in: u64,
    what: &dyn Fn() -> String,
) -> Result<()> {
    for (r, bound) in accumulator_bounds(w, bias, max_in).enumerate() {
        if bound > i32::MAX as u64 {
            bail!(
                "{}: row {r} can reach |acc| = {bound}, beyond int32; the network is too wide for the 32-bit accumulator",
                what()
            );
        }
    }
    Ok(())
}

/// What the bias adds so that the requantizer's output carries the zero point
/// [`OFFSET_ZERO`]: +128 after a right shift by `shift` is +128·2^shift before it (the
/// rounding shift commutes with adding whole multiples of 2^shift); before a left shift,
/// 128 / 2^-shift, whole for shifts down to -7. None below.
pub fn offset_bias(shift: i32) -> Option<i64> {
    let z = i64::from(OFFSET_ZERO);
    match shift {
        0.. => Some(z << shift),
        -7..0 => Some(z >> -shift),
        _ => None,
    }
}

/// Quantizes one layer whose inputs have `f_in` fraction bits and zero point `in_zero`.
pub fn quantize_layer(
    l: &LoweredLayer,
    f_in: u32,
    in_zero: i32,
    f_out: u32,
    model: &str,
) -> Result<QLayer> {
    let what = || {
        format!(
            "{model}: layer {} (conv, tensor `{}`)",
            l.conv_index, l.weight_name
        )
    };
    let max_abs = l.weight.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let k = weight_exponent(max_abs);
    let weight = quantize_matrix(&l.weight, k);
    let mut bias = quantize_bias(&l.bias, k + f_in as i32, &what)?;
    let shift = k + f_in as i32 - f_out as i32;
    for (r, b) in bias.iter_mut().enumerate() {
        let mut v = i64::from(*b);
        if l.act == Activation::Offset {
            v += offset_bias(shift).with_context(|| {
                format!(
                    "{}: requantize shift {shift} is below -7, so the zero point {OFFSET_ZERO} of the signed output cannot be folded into the bias",
                    what()
                )
            })?;
        }
        v -= i64::from(in_zero) * weight.row(r).iter().map(|&w| i64::from(w)).sum::<i64>();
        *b = i32::try_from(v).map_err(|_| {
            anyhow::anyhow!(
                "{}: bias[{r}] = {v} after folding the zero points does not fit int32",
                what()
            )
        })?;
    }
    check_accumulator(&weight, &bias, 255, &what)?;
    Ok(QLayer {
        conv_index: l.conv_index,
        weight_name: l.weight_name.clone(),
        input: l.input,
        output: l.output,
        stride: l.stride,
        taps: l.taps.clone(),
        weight,
        float_weight: l.weight.clone(),
        bias,
        k,
        f_in,
        f_out,
        act: l.act,
        clamp_max: clamp_max(l.act, f_out),
        alpha: l.alpha,
        groups: l.groups.clone(),
        in_zero,
        pool: false,
    })
}

/// A linear layer's int8 weights (scaled by `fold` first), int32 bias at the
/// accumulator's scale and weight exponent k, its accumulator checked for inputs up to
/// `max_in`.
fn quantize_dense(
    w: &Array2<f64>,
    b: &Array1<f64>,
    fold: f64,
    f_in: u32,
    max_in: u64,
    what: &dyn Fn() -> String,
) -> Result<(Array2<i32>, Vec<i32>, i32)> {
    let folded = w.mapv(|v| v * fold);
    let k = weight_exponent(folded.iter().fold(0.0f64, |m, v| m.max(v.abs())));
    let weight = quantize_matrix(&folded, k);
    let bias = quantize_bias(b, k + f_in as i32, what)?;
    check_accumulator(&weight, &bias, max_in, what)?;
    Ok((weight, bias, k))
}

pub fn quantize(net: &LoweredNet, act_frac: u32) -> Result<QNet> {
    if act_frac > 16 {
        bail!("activation fraction bits {act_frac} is out of range (0..=16)");
    }
    let model = net.path.display().to_string();
    let mut f_in = INPUT_FRAC;
    let mut in_zero = 0;
    // Largest input value (float) of the next layer: the image's, then each clamp's.
    let mut max_in = 255.0 / f64::from(1u32 << INPUT_FRAC);
    let mut layers = Vec::with_capacity(net.layers.len());
    for l in &net.layers {
        let signed = l.act == Activation::Offset;
        let f_out = if signed {
            offset_frac(&l.weight, max_in)
        } else {
            act_frac
        };
        let q = quantize_layer(l, f_in, in_zero, f_out, &model)?;
        // The next layer's inputs: their zero point, and their largest value above it.
        in_zero = if signed { OFFSET_ZERO } else { 0 };
        max_in = f64::from(q.clamp_max - in_zero) / 2f64.powi(f_out as i32);
        f_in = f_out;
        layers.push(q);
    }
    if in_zero != 0 {
        bail!("{model}: the classifier cannot read a basis stage's signed output");
    }
    let c = &net.classifier;
    let hw = c.pool_input.pixels();
    let linear_what =
        |index: usize, name: &str| format!("{model}: layer {index} (linear, tensor `{name}`)");
    // The first linear layer reads the pooled sums: 1/(H·W) folds into its weights.
    let mut fold = 1.0 / hw as f64;
    let mut max_in = 255 * hw as u64;
    let mut in_bits = pool_bits(hw);
    let mut hidden = Vec::with_capacity(c.hidden.len());
    for h in &c.hidden {
        let what = || linear_what(h.linear_index, &h.weight_name);
        let (weight, bias, k) = quantize_dense(&h.weight, &h.bias, fold, f_in, max_in, &what)?;
        let q = QLinear {
            linear_index: h.linear_index,
            weight_name: h.weight_name.clone(),
            weight,
            bias,
            k,
            f_in,
            f_out: act_frac,
            act: h.act,
            clamp_max: clamp_max(h.act, act_frac),
            in_bits,
        };
        if !(0..=MAX_HEAD_SHIFT).contains(&q.shift()) {
            bail!(
                "{}: requantize shift {} is outside 0..={MAX_HEAD_SHIFT}, the head's requantizer (its weights are too large or too small for its scale)",
                what(),
                q.shift()
            );
        }
        hidden.push(q);
        fold = 1.0;
        max_in = 255;
        in_bits = 8;
        f_in = act_frac;
    }
    let what = || linear_what(c.linear_index, &c.weight_name);
    let (weight, bias, k) = quantize_dense(&c.weight, &c.bias, fold, f_in, max_in, &what)?;
    Ok(QNet {
        name: net.name.clone(),
        classes: net.classes,
        input: net.input_dims(),
        layers,
        classifier: QClassifier {
            linear_index: c.linear_index,
            weight_name: c.weight_name.clone(),
            weight,
            bias,
            k,
            f_in,
            in_bits: pool_bits(hw),
            pool_input: c.pool_input,
            hidden,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exponent_examples() {
        assert_eq!(weight_exponent(1.0), 6); // 64 ≤ 127 < 128
        assert_eq!(weight_exponent(127.0), 0);
        assert_eq!(weight_exponent(127.5), -1);
        assert_eq!(weight_exponent(0.5), 7);
        assert_eq!(weight_exponent(0.4960937), 8); // 0.496·256 = 126.99
    }

    #[test]
    fn requantize_examples() {
        assert_eq!(requantize(7, 1, 255), 4); // 3.5 → 4
        assert_eq!(requantize(-7, 1, 255), 0); // clamps
        assert_eq!(requantize(5, 2, 255), 1); // 1.25 → 1
        assert_eq!(requantize(6, 2, 255), 2); // 1.5 → 2
        assert_eq!(requantize(3, -2, 255), 12);
        assert_eq!(requantize(1000, 0, 192), 192);
        assert_eq!(clamp_max(Activation::Relu6, 5), 192);
        assert_eq!(clamp_max(Activation::Relu6, 6), 255);
        assert_eq!(pool_bits(49), 14);
        assert_eq!(pool_bits(64), 14);
        assert_eq!(pool_bits(1), 8);
    }

    /// After a basis stage, a layer's bias carries -128·Σ w per row (its inputs hold
    /// value + 128); weights that column combining drops take their share with them.
    #[test]
    fn zero_point_fold_follows_the_kept_weights() {
        let l = LoweredLayer {
            conv_index: 3,
            act_index: 5,
            weight_name: "c".into(),
            input: Dims { c: 3, h: 1, w: 1 },
            output: Dims { c: 2, h: 1, w: 1 },
            stride: 1,
            taps: (0..3)
                .map(|c| Tap {
                    channel: c,
                    dy: 0,
                    dx: 0,
                })
                .collect(),
            weight: ndarray::arr2(&[[1.0, -0.5, 0.25], [0.0, 0.75, -1.0]]),
            bias: ndarray::arr1(&[0.5, -0.25]),
            act: Activation::Relu6,
            alpha: None,
            groups: None,
        };
        let q = quantize_layer(&l, 4, OFFSET_ZERO, 5, "m").unwrap();
        let plain = quantize_layer(&l, 4, 0, 5, "m").unwrap();
        assert_eq!(q.weight, plain.weight);
        for r in 0..2 {
            let sum: i32 = q.weight.row(r).sum();
            assert_eq!(q.bias[r], plain.bias[r] - 128 * sum);
            assert_eq!(q.bias_without(r, |_| true), q.bias[r]);
            // Dropping column 1: its weight's share of the fold comes back.
            assert_eq!(
                q.bias_without(r, |t| t != 1),
                q.bias[r] + 128 * q.weight[[r, 1]]
            );
            // Inputs z + 128 through the folded bias = inputs z through the plain one.
            let z = [7i64, -3, 12];
            let acc = |bias: i32, zp: i64| {
                i64::from(bias)
                    + q.weight
                        .row(r)
                        .iter()
                        .zip(&z)
                        .map(|(&w, &v)| i64::from(w) * (v + zp))
                        .sum::<i64>()
            };
            assert_eq!(acc(q.bias[r], 128), acc(plain.bias[r], 0));
        }
    }

    proptest! {
        /// Quantize→dequantize error is at most half a step, and the range is used:
        /// the largest weight lands in [64, 127].
        #[test]
        fn quantize_dequantize_bound(ws in proptest::collection::vec(-50.0f64..50.0, 1..64)) {
            let m = Array2::from_shape_vec((1, ws.len()), ws.clone()).unwrap();
            let max_abs = ws.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            prop_assume!(max_abs > 1e-12);
            let k = weight_exponent(max_abs);
            let q = quantize_matrix(&m, k);
            let step = 2f64.powi(-k);
            for (w, qv) in ws.iter().zip(q.iter()) {
                prop_assert!((*qv as f64 * step - w).abs() <= step / 2.0 + 1e-12);
                prop_assert!(qv.abs() <= 127);
            }
            let qmax = q.iter().map(|v| v.abs()).max().unwrap();
            prop_assert!((64..=127).contains(&qmax), "qmax {qmax}");
        }

        /// A basis stage's output: the requantized value plus the zero point, clamped to
        /// uint8, for every shift the bias can carry it at.
        #[test]
        fn offset_bias_adds_the_zero_point_after_requantizing(acc in -100_000i64..100_000, shift in -7i32..16) {
            let b = offset_bias(shift).unwrap();
            let signed = if shift > 0 { (acc + (1i64 << (shift - 1))) >> shift } else { acc << -shift };
            let want = (signed + i64::from(OFFSET_ZERO)).clamp(0, 255) as i32;
            prop_assert_eq!(requantize(acc + b, shift, 255), want);
        }

        /// Requantize equals round-half-up of acc / 2^shift, clamped.
        #[test]
        fn requantize_matches_rational(acc in -1_000_000i64..1_000_000, shift in -4i32..12, max in 1i32..256) {
            let exact = acc as f64 / 2f64.powi(shift);
            let want = (exact + 0.5).floor().clamp(0.0, max as f64) as i32;
            prop_assert_eq!(requantize(acc, shift, max), want);
        }
    }
}
