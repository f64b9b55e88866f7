//! Packs a whole quantized network: column combining per layer (the grouping and
//! pruning of [`super::group`] / [`super::combine`]), the packed tap order, and the row
//! permutation that makes each group of layer l+1 read contiguous channel slots of
//! layer l. The result is the *physical* network the hardware holds.

use anyhow::{Context, Result, bail};
use ndarray::{Array2, Array3, Axis};
use rayon::prelude::*;
use serde::Serialize;

use super::combine::{CombineStats, combine};
use super::group::{GroupParams, Grouping, MAX_ALPHA, Strategy, group_columns};
use crate::lower::{Activation, Dims, Tap, invert};
use crate::quant::{QClassifier, QLayer, QNet};
use crate::reference::{IntLayer, IntResult, run_int};

#[derive(Clone, Debug, Serialize)]
pub struct PackOptions {
    /// α per layer.
    pub alphas: Vec<usize>,
    pub gamma: f64,
    pub strategy: Strategy,
    /// Column section size (the authors' memory-saving split); 0 = off.
    pub section: usize,
    /// Dense baseline: no combining, every nonzero column its own array column.
    pub dense: bool,
}

/// One layer in physical form.
#[derive(Clone, Debug, Serialize)]
pub struct PackedLayer {
    pub conv_index: usize,
    pub weight_name: String,
    pub input: Dims,
    pub output: Dims,
    pub stride: usize,
    pub act: Activation,
    pub k: i32,
    pub f_in: u32,
    pub f_out: u32,
    pub shift: i32,
    pub clamp_max: i32,
    pub alpha: usize,
    /// Packed taps: group g reads `taps[group_offsets[g]..group_offsets[g + 1]]`; tap
    /// channels name the previous layer's *physical* slots.
    pub taps: Vec<Tap>,
    pub group_offsets: Vec<usize>,
    /// N x G int8 values; row i is physical row i.
    #[serde(skip)]
    pub weight: Array2<i32>,
    /// N x G: which member of the group each kept weight reads (0 where nothing kept).
    #[serde(skip)]
    pub selector: Array2<u8>,
    pub bias: Vec<i32>,
    /// Physical row i holds original filter `row_perm[i]`.
    pub row_perm: Vec<usize>,
    /// Grouping in the lowered layer's tap indices (before relabelling), for reports.
    pub groups: Vec<Vec<usize>>,
    pub stats: CombineStats,
    /// Nonzero weights of the unpacked 8-bit layer (the dense-baseline count).
    pub nnz_unpacked: usize,
    /// Columns of the unpacked layer with any nonzero.
    pub nonzero_columns: usize,
    /// Columns of the unpacked layer (T), all-zero ones included.
    pub taps_total: usize,
}

impl PackedLayer {
    pub fn groups_len(&self) -> usize {
        self.group_offsets.len() - 1
    }

    /// Rows (filters) N.
    pub fn rows(&self) -> usize {
        self.output.c
    }

    /// Group holding packed tap `u`.
    pub fn group_of(&self, u: usize) -> usize {
        self.group_offsets.partition_point(|&o| o <= u) - 1
    }

    /// For each of the previous layer's `channels` output channels (or input channels),
    /// the packed taps of this layer that read it, in tap (so group) order.
    pub fn readers(&self, channels: usize) -> Vec<Vec<usize>> {
        let mut r = vec![Vec::new(); channels];
        for (u, t) in self.taps.iter().enumerate() {
            r[t.channel].push(u);
        }
        r
    }

    /// Decodes the packed form into an N x T weight matrix over `self.taps`: the matrix
    /// the MX cells compute, read back through the selectors.
    pub fn decode(&self) -> Array2<i32> {
        let mut w = Array2::zeros((self.rows(), self.taps.len()));
        for r in 0..self.rows() {
            for g in 0..self.groups_len() {
                let v = self.weight[[r, g]];
                if v != 0 {
                    w[[r, self.group_offsets[g] + self.selector[[r, g]] as usize]] = v;
                }
            }
        }
        w
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PackedNet {
    pub name: String,
    pub classes: usize,
    pub input: Dims,
    pub layers: Vec<PackedLayer>,
    pub classifier: QClassifier,
    pub options: PackOptions,
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
            })
            .collect();
        run_int(&layers, &self.net.classifier, image, dump)
    }

    /// Like [`Self::run`], with dumped maps put back in the model's channel order.
    pub fn run_model_order(&self, image: &[u8], dump: bool) -> IntResult {
        let mut r = self.run(image, dump);
        for (map, l) in r.layers.iter_mut().zip(&self.net.layers) {
            *map = unpermute(map, &l.row_perm);
        }
        r
    }
}

/// Undoes a row permutation on a C x H x W map: slot i holds original channel perm[i].
pub fn unpermute(map: &Array3<u8>, perm: &[usize]) -> Array3<u8> {
    map.select(Axis(0), &invert(perm))
}

impl PackedNet {
    pub fn reference(&self) -> PackedReference<'_> {
        PackedReference {
            net: self,
            weights: self.layers.iter().map(PackedLayer::decode).collect(),
        }
    }
}

/// Dense baseline grouping: each nonzero column alone, in column order.
fn singleton_grouping(m: &Array2<f64>) -> Grouping {
    Grouping {
        groups: (0..m.ncols())
            .filter(|&c| m.column(c).iter().any(|&v| v != 0.0))
            .map(|c| vec![c])
            .collect(),
    }
}

/// Combines one layer in the lowered tap order (no permutation yet).
fn pack_layer(q: &QLayer, alpha: usize, opts: &PackOptions, model: &str) -> Result<PackedLayer> {
    let what = || {
        format!(
            "{model}: layer {} (conv, tensor `{}`)",
            q.conv_index, q.weight_name
        )
    };
    // Group on the integer sparsity pattern (a weight that rounds to 0 costs nothing in
    // hardware), ranking kept weights by their float magnitude.
    let m = Array2::from_shape_fn(q.weight.dim(), |(r, c)| {
        if q.weight[[r, c]] == 0 {
            0.0
        } else {
            q.float_weight[[r, c]]
        }
    });
    let grouping = if opts.dense {
        singleton_grouping(&m)
    } else {
        let params = GroupParams {
            alpha,
            gamma: opts.gamma,
            section: opts.section,
            strategy: opts.strategy,
        };
        group_columns(m.view(), &params).with_context(what)?
    };
    let combined = combine(m.view(), &grouping);
    let (n, g_count) = (q.output.c, grouping.groups.len());
    let mut weight = Array2::zeros((n, g_count));
    let mut taps = Vec::new();
    let mut group_offsets = vec![0];
    for (g, members) in grouping.groups.iter().enumerate() {
        taps.extend(members.iter().map(|&c| q.taps[c]));
        group_offsets.push(taps.len());
        for r in 0..n {
            if let Some(col) = combined.source[[r, g]] {
                weight[[r, g]] = q.weight[[r, col]];
            }
        }
    }
    let nnz_unpacked = q.weight.iter().filter(|&&v| v != 0).count();
    Ok(PackedLayer {
        conv_index: q.conv_index,
        weight_name: q.weight_name.clone(),
        input: q.input,
        output: q.output,
        stride: q.stride,
        act: q.act,
        k: q.k,
        f_in: q.f_in,
        f_out: q.f_out,
        shift: q.shift(),
        clamp_max: q.clamp_max,
        alpha: if opts.dense { 1 } else { alpha },
        taps,
        group_offsets,
        weight,
        selector: combined.selector,
        bias: q.bias.clone(),
        row_perm: (0..n).collect(),
        groups: grouping.groups,
        stats: combined.stats.clone(),
        nnz_unpacked,
        nonzero_columns: combined.stats.nonzero_columns,
        taps_total: q.taps.len(),
    })
}

/// Output-channel order of layer l that lets layer l+1's groups read contiguous slots:
/// channels in order of first use by the next layer's packed taps, unused ones last.
pub fn contiguous_order(channels: usize, next_taps: &[Tap]) -> Vec<usize> {
    let mut seen = vec![false; channels];
    let mut order = Vec::with_capacity(channels);
    for t in next_taps {
        if !seen[t.channel] {
            seen[t.channel] = true;
            order.push(t.channel);
        }
    }
    order.extend((0..channels).filter(|&c| !seen[c]));
    order
}

/// Applies row permutations (slot i of layer l holds original channel perms[l][i]).
pub fn apply_permutation(net: &mut PackedNet, perms: &[Vec<usize>]) {
    for (l, perm) in perms.iter().enumerate().take(net.layers.len()) {
        let inv = invert(perm);
        let layer = &mut net.layers[l];
        layer.weight = layer.weight.select(Axis(0), perm);
        layer.selector = layer.selector.select(Axis(0), perm);
        layer.bias = perm.iter().map(|&o| layer.bias[o]).collect();
        layer.row_perm = perm.iter().map(|&o| layer.row_perm[o]).collect();
        if let Some(next) = net.layers.get_mut(l + 1) {
            for t in &mut next.taps {
                t.channel = inv[t.channel];
            }
        } else {
            net.classifier.weight = net.classifier.weight.select(Axis(1), perm);
        }
    }
}

/// Packs every layer, then permutes rows so cascaded layers read contiguous slots.
/// The last layer keeps the model's channel order (the classifier reads them all).
pub fn pack_network(q: &QNet, opts: &PackOptions) -> Result<PackedNet> {
    if opts.alphas.len() != q.layers.len() {
        bail!(
            "{} alphas given for {} conv layers",
            opts.alphas.len(),
            q.layers.len()
        );
    }
    if let Some(&a) = opts.alphas.iter().find(|&&a| a == 0 || a > MAX_ALPHA) {
        bail!("alpha = {a} is out of range (1..={MAX_ALPHA})");
    }
    if !(opts.gamma.is_finite() && opts.gamma >= 0.0) {
        bail!("gamma = {} must be a finite number >= 0", opts.gamma);
    }
    let model = q.name.clone();
    let layers = q
        .layers
        .par_iter()
        .zip(&opts.alphas)
        .map(|(l, &a)| pack_layer(l, a, opts, &model))
        .collect::<Result<Vec<_>>>()?;
    let mut net = PackedNet {
        name: q.name.clone(),
        classes: q.classes,
        input: q.input,
        layers,
        classifier: q.classifier.clone(),
        options: opts.clone(),
    };
    let perms: Vec<Vec<usize>> = (0..net.layers.len())
        .map(|l| match net.layers.get(l + 1) {
            Some(next) => contiguous_order(net.layers[l].output.c, &next.taps),
            None => (0..net.layers[l].output.c).collect(),
        })
        .collect();
    apply_permutation(&mut net, &perms);
    Ok(net)
}
