//! Software reference (docs/DESIGN.md §7.1): the float model (f64, unquantized, unpacked)
//! and the bit-exact integer network of §5, layer by layer. The RTL is judged against
//! [`run_int`]; every integer network form (unpacked, packed, dense) runs through it.

use ndarray::{Array2, Array3, Axis};

use crate::lower::{Activation, Dims, LoweredNet, Tap};
use crate::pack::network::{PackedLayer, PackedNet};
use crate::quant::{QClassifier, QNet, requantize};

/// Gathers the virtual channels of a layer: row t holds tap t over the output pixels
/// (y, x) as input[channel][y·s + dy][x·s + dx], zero outside the map. This is what the
/// hardware's shift-on-write buffer holds when the layer starts.
pub fn gather<T: Copy + Default>(
    input: &[T],
    dims: Dims,
    taps: &[Tap],
    stride: usize,
    out: Dims,
) -> Vec<T> {
    let p = out.pixels();
    let mut v = vec![T::default(); taps.len() * p];
    let (h, w) = (dims.h as i64, dims.w as i64);
    for (t, tap) in taps.iter().enumerate() {
        let plane = &input[tap.channel * dims.pixels()..(tap.channel + 1) * dims.pixels()];
        let row = &mut v[t * p..(t + 1) * p];
        for y in 0..out.h {
            let sy = (y * stride) as i64 + tap.dy;
            if sy < 0 || sy >= h {
                continue;
            }
            for x in 0..out.w {
                let sx = (x * stride) as i64 + tap.dx;
                if sx >= 0 && sx < w {
                    row[y * out.w + x] = plane[(sy * w + sx) as usize];
                }
            }
        }
    }
    v
}

/// One integer layer as the reference executes it: out = clamp(requant(bias + W·taps)).
pub struct IntLayer<'a> {
    pub input: Dims,
    pub output: Dims,
    pub stride: usize,
    pub taps: &'a [Tap],
    /// N x T over `taps`; zeros are skipped.
    pub weight: &'a Array2<i32>,
    pub bias: &'a [i32],
    pub shift: i32,
    pub clamp_max: i32,
    /// The accumulators carry on from pixel to pixel ([`crate::quant::QLayer::pool`]).
    pub pool: bool,
    /// The accumulators are the logits ([`Activation::Logits`]): nothing is requantized.
    pub logits: bool,
}

impl IntLayer<'_> {
    /// bias + W·taps per output row and pixel (N x P), running on over the pixels of a
    /// pool layer.
    pub fn accumulate(&self, input: &[u8]) -> Vec<i32> {
        let v = gather(input, self.input, self.taps, self.stride, self.output);
        let p = self.output.pixels();
        let n = self.output.c;
        let mut acc = vec![0i32; n * p];
        for r in 0..n {
            let row = &mut acc[r * p..(r + 1) * p];
            row.fill(if self.pool { 0 } else { self.bias[r] });
            for (t, &w) in self.weight.row(r).iter().enumerate() {
                if w == 0 {
                    continue;
                }
                // Quantization bounded |acc| below 2^31 for every partial sum (a pool
                // layer's too: its bound is the pooled sums'), so i32 cannot wrap; i32
                // keeps this loop vectorized.
                for (a, &x) in row.iter_mut().zip(&v[t * p..(t + 1) * p]) {
                    *a += w * x as i32;
                }
            }
            if self.pool {
                let mut run = self.bias[r];
                for a in row.iter_mut() {
                    run += *a;
                    *a = run;
                }
            }
        }
        acc
    }

    pub fn run(&self, input: &[u8]) -> Vec<u8> {
        self.accumulate(input)
            .into_iter()
            .map(|a| requantize(a as i64, self.shift, self.clamp_max) as u8)
            .collect()
    }
}

/// What one integer inference produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntResult {
    /// Each layer's output map (C x H x W, in the order that network form holds its
    /// channels), only when dumping was asked for.
    pub layers: Vec<Array3<u8>>,
    /// Per-channel exact sums of the last map (the classifier's inputs).
    pub sums: Vec<i64>,
    pub logits: Vec<i32>,
    pub class: usize,
}

/// Index of the largest value, lowest index on ties.
pub fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Per-channel exact sums of a C x H x W map (the global average pool before its 1/(H·W)).
pub fn pool_sums(map: &[u8], dims: Dims) -> Vec<i64> {
    let p = dims.pixels();
    (0..dims.c)
        .map(|ch| map[ch * p..(ch + 1) * p].iter().map(|&x| x as i64).sum())
        .collect()
}

pub fn classify(c: &QClassifier, last: &[u8], dims: Dims) -> (Vec<i64>, Vec<i32>) {
    let sums = pool_sums(last, dims);
    let logits = c.logits(&sums);
    (sums, logits)
}

/// Runs integer layers then the pool + classifier on one uint8 image (C x H x W); when
/// the head runs on the array (its layers among `layers`, the last one's accumulators
/// the logits), the pooled sums are still reported, from the pool layer's input.
pub fn run_int(
    layers: &[IntLayer],
    classifier: &QClassifier,
    image: &[u8],
    dump: bool,
) -> IntResult {
    let mut act = image.to_vec();
    let mut dims = layers.first().map_or(classifier.pool_input, |l| l.input);
    let mut dumps = Vec::new();
    let mut sums = None;
    for l in layers {
        if l.pool {
            sums = Some(pool_sums(&act, dims));
        }
        if l.logits {
            let acc = l.accumulate(&act);
            let p = l.output.pixels();
            // The last pixel's accumulators (a pool layer's running sums end there).
            let logits: Vec<i32> = (0..l.output.c).map(|r| acc[r * p + p - 1]).collect();
            return IntResult {
                layers: dumps,
                class: argmax(&logits),
                sums: sums.unwrap_or_default(),
                logits,
            };
        }
        act = l.run(&act);
        dims = l.output;
        if dump {
            dumps.push(
                Array3::from_shape_vec((dims.c, dims.h, dims.w), act.clone())
                    .expect("layer output matches its dims"),
            );
        }
    }
    let (sums, logits) = classify(classifier, &act, dims);
    IntResult {
        layers: dumps,
        class: argmax(&logits),
        sums,
        logits,
    }
}

impl QNet {
    /// The unpacked 8-bit network's layers, for [`run_int`].
    pub fn int_layers(&self) -> Vec<IntLayer<'_>> {
        self.layers
            .iter()
            .map(|l| IntLayer {
                input: l.input,
                output: l.output,
                stride: l.stride,
                taps: &l.taps,
                weight: &l.weight,
                bias: &l.bias,
                shift: l.shift(),
                clamp_max: l.clamp_max,
                pool: l.pool,
                logits: l.act == Activation::Logits,
            })
            .collect()
    }

    pub fn run(&self, image: &[u8], dump: bool) -> IntResult {
        run_int(&self.int_layers(), &self.classifier, image, dump)
    }
}

/// The decoded packed network, ready to run many images.
pub struct PackedReference<'a> {
    net: &'a PackedNet,
    weights: Vec<Array2<i32>>,
}

impl PackedReference<'_> {
    pub fn run(&self, image: &[u8], dump: bool) -> IntResult {
        let layers: Vec<IntLayer> = self
            .net
            .layers
            .iter()
            .zip(&self.weights)
            .map(|(l, w)| IntLayer {
                input: l.input,
                output: l.output,
                stride: l.stride,
                taps: &l.taps,
                weight: w,
                bias: &l.bias,
                shift: l.shift,
                clamp_max: l.clamp_max,
                pool: l.pool,
                logits: l.act == Activation::Logits,
            })
            .collect();
        run_int(&layers, &self.net.classifier, image, dump)
    }

    /// Like [`Self::run`], with dumped maps and pooled sums put back in the model's
    /// channel order.
    pub fn run_model_order(&self, image: &[u8], dump: bool) -> IntResult {
        let mut r = self.run(image, dump);
        for (map, l) in r.layers.iter_mut().zip(&self.net.layers) {
            *map = unpermute(map, &l.row_perm);
        }
        // With the head on the array the last conv's slots follow the pool layer's
        // groups (each channel has one slot: the pool layer reads it once).
        if let Some(i) = self.net.layers.iter().position(|l| l.pool)
            && let Some(prev) = i.checked_sub(1).map(|p| &self.net.layers[p])
        {
            let mut sums = vec![0; r.sums.len()];
            for (slot, &ch) in prev.row_perm.iter().enumerate() {
                sums[ch] = r.sums[slot];
            }
            r.sums = sums;
        }
        r
    }
}

/// Undoes a row permutation on a C x H x W map: slot i holds original channel perm[i].
/// Rows that copy a channel (`PackedLayer::copy`) hold the same values as its first slot,
/// which stands for it.
pub fn unpermute(map: &Array3<u8>, perm: &[usize]) -> Array3<u8> {
    let channels = perm.iter().max().map_or(0, |&m| m + 1);
    let mut first = vec![usize::MAX; channels];
    for (slot, &orig) in perm.iter().enumerate().rev() {
        first[orig] = slot;
    }
    debug_assert!(
        first.iter().all(|&s| s != usize::MAX),
        "a channel without a row"
    );
    map.select(Axis(0), &first)
}

impl PackedNet {
    pub fn reference(&self) -> PackedReference<'_> {
        PackedReference {
            net: self,
            weights: self.layers.iter().map(PackedLayer::decode).collect(),
        }
    }
}

/// Which integer network form to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// 8-bit, column-combined (what the array computes).
    Packed,
    /// 8-bit, before packing.
    Unpacked,
}

/// One image's integer inference, as `ccc infer` prints it (one JSON line each).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inference {
    pub image: usize,
    pub label: Option<u8>,
    pub class: usize,
    pub logits: Vec<i32>,
}

/// Runs `form` of the network on every image; maps are dumped (in the model's channel
/// order) when `dump` is set.
pub fn run_form(
    qnet: &QNet,
    packed: &PackedNet,
    form: Form,
    images: &[Vec<u8>],
    dump: bool,
) -> Vec<IntResult> {
    let reference = packed.reference();
    images
        .iter()
        .map(|img| match form {
            Form::Packed => reference.run_model_order(img, dump),
            Form::Unpacked => qnet.run(img, dump),
        })
        .collect()
}

/// The activation dump of `ccc infer --dump` (format `ccc.activations/1`): per image k,
/// `image{k}.input` u8 [C,H,W], `image{k}.layer{l}` u8 [C,H,W] for every conv layer in
/// the model's channel order, `image{k}.sums` i64 (pooled sums) and `image{k}.logits` i32;
/// metadata under `ccc.activations`.
pub fn activations_dump(
    model: &str,
    form: Form,
    input: Dims,
    images: &[Vec<u8>],
    results: &[IntResult],
) -> anyhow::Result<Vec<u8>> {
    use crate::output::{OutTensor, safetensors_bytes};
    let mut tensors: Vec<(String, OutTensor)> = Vec::new();
    for (k, (img, r)) in images.iter().zip(results).enumerate() {
        let p = format!("image{k}");
        tensors.push((
            format!("{p}.input"),
            OutTensor::u8(&[input.c, input.h, input.w], img.iter().copied()),
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
    let meta = serde_json::json!({
        "format": "ccc.activations/1",
        "model": model,
        "form": form,
        "images": images.len(),
        "layers": results.first().map_or(0, |r| r.layers.len()),
        "channel_order": "model",
    })
    .to_string();
    safetensors_bytes(&tensors, Some(("ccc.activations", meta)))
}

/// The float model on one image (pixels p/256): logits in f64.
pub fn run_float(net: &LoweredNet, image: &[u8]) -> Vec<f64> {
    let mut act: Vec<f64> = image.iter().map(|&p| p as f64 / 256.0).collect();
    let mut dims = net.input_dims();
    for l in &net.layers {
        let v = gather(&act, l.input, &l.taps, l.stride, l.output);
        let p = l.output.pixels();
        let mut out = vec![0.0f64; l.output.c * p];
        for r in 0..l.output.c {
            let o = &mut out[r * p..(r + 1) * p];
            o.fill(l.bias[r]);
            for (t, &w) in l.weight.row(r).iter().enumerate() {
                if w == 0.0 {
                    continue;
                }
                for (a, &x) in o.iter_mut().zip(&v[t * p..(t + 1) * p]) {
                    *a += w * x;
                }
            }
            for a in o.iter_mut() {
                *a = match l.act {
                    Activation::Relu6 => a.clamp(0.0, 6.0),
                    Activation::Relu => a.max(0.0),
                    Activation::Offset | Activation::Logits => *a,
                };
            }
        }
        act = out;
        dims = l.output;
    }
    let c = &net.classifier;
    let p = dims.pixels() as f64;
    let mut x: Vec<f64> = act
        .chunks_exact(dims.pixels())
        .map(|ch| ch.iter().sum::<f64>() / p)
        .collect();
    for h in &c.hidden {
        x = dense(&h.weight, &h.bias, &x);
        for v in &mut x {
            *v = match h.act {
                Activation::Relu6 => v.clamp(0.0, 6.0),
                _ => v.max(0.0),
            };
        }
    }
    dense(&c.weight, &c.bias, &x)
}

/// W·x + b.
fn dense(w: &ndarray::Array2<f64>, b: &ndarray::Array1<f64>, x: &[f64]) -> Vec<f64> {
    w.rows()
        .into_iter()
        .zip(b.iter())
        .map(|(row, &b)| b + row.iter().zip(x).map(|(w, m)| w * m).sum::<f64>())
        .collect()
}

/// Accuracy of the three network forms on a labelled image set.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Accuracy {
    pub dataset: String,
    pub images: usize,
    /// f64, unquantized, unpacked.
    pub float: f64,
    /// 8-bit, before packing.
    pub unpacked: f64,
    /// 8-bit, column-combined (or the dense baseline when compiled with --dense).
    pub packed: f64,
    /// Images where the unpacked and packed integer networks pick the same class.
    pub agreement: usize,
}

/// Runs the float model, the unpacked and the packed integer networks on every image
/// (in parallel; each image is independent, so the result is deterministic).
pub fn evaluate(
    lowered: &LoweredNet,
    qnet: &QNet,
    packed: &PackedNet,
    images: &[Vec<u8>],
    labels: &[u8],
    dataset: &str,
) -> Accuracy {
    use rayon::prelude::*;
    let packed = packed.reference();
    let preds: Vec<[usize; 3]> = images
        .par_iter()
        .map(|img| {
            [
                argmax(&run_float(lowered, img)),
                qnet.run(img, false).class,
                packed.run(img, false).class,
            ]
        })
        .collect();
    let n = preds.len().max(1) as f64;
    let acc = |k: usize| {
        preds
            .iter()
            .zip(labels)
            .filter(|(p, l)| p[k] == **l as usize)
            .count() as f64
            / n
    };
    Accuracy {
        dataset: dataset.to_string(),
        images: preds.len(),
        float: acc(0),
        unpacked: acc(1),
        packed: acc(2),
        agreement: preds.iter().filter(|p| p[1] == p[2]).count(),
    }
}
