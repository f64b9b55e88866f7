//! Packs a whole quantized network: column combining per layer (the grouping and
//! pruning of [`super::group`] / [`super::combine`]), the packed tap order, and the row
//! permutation that makes each group of layer l+1 read contiguous channel slots of
//! layer l. The result is the *physical* network the hardware holds.

use anyhow::{Context, Result, bail};
use ndarray::{Array2, Axis};
use rayon::prelude::*;
use serde::Serialize;

use super::combine::{CombineStats, Grouping, combine};
use super::group::{GroupParams, MAX_ALPHA, Strategy, check_gamma, group_columns};
use super::predefined::{basis_grouping, clashes, nonzero_grouping};
use crate::lower::{Activation, ChannelOrder, Dims, Tap, permute_channels};
use crate::model::Groups;
use crate::quant::{QClassifier, QLayer, QNet};

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
    /// Group every layer with `strategy`, also those whose model stores a grouping.
    #[serde(default)]
    pub regroup: bool,
    /// Run the head's linear layers on the array, combined at this α
    /// ([`crate::quant::QNet::head_layers`]); `None`: on the head unit beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_on_array: Option<usize>,
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
    /// Physical row i repeats the filter of an earlier row, so that one more tap of the
    /// next layer gets the value written ([`replicate_shared_reads`]); its MACs are the
    /// write replication's cost, not useful work. Empty when no row is a copy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copy: Vec<bool>,
    /// Grouping in the lowered layer's tap indices (before relabelling), for reports.
    pub groups: Vec<Vec<usize>>,
    pub stats: CombineStats,
    /// Nonzero weights of the unpacked 8-bit layer (the dense-baseline count).
    pub nnz_unpacked: usize,
    /// Columns of the unpacked layer with any nonzero.
    pub nonzero_columns: usize,
    /// Columns of the unpacked layer (T), all-zero ones included.
    pub taps_total: usize,
    /// The head's first linear layer on the array ([`crate::quant::QLayer::pool`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pool: bool,
}

impl PackedLayer {
    pub fn groups_len(&self) -> usize {
        self.group_offsets.len() - 1
    }

    /// Rows (filters) N.
    pub fn rows(&self) -> usize {
        self.output.c
    }

    /// Whether physical row `r` is a copy ([`Self::copy`]).
    pub fn is_copy(&self, r: usize) -> bool {
        self.copy.get(r).copied().unwrap_or(false)
    }

    /// Rows that are not copies: the layer's filters.
    pub fn filters(&self) -> usize {
        self.rows() - self.copy.iter().filter(|&&c| c).count()
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

/// Dense baseline grouping: each nonzero column alone, in column order.
fn singleton_grouping(m: &Array2<f64>) -> Grouping {
    Grouping {
        groups: (0..m.ncols())
            .filter(|&c| m.column(c).iter().any(|&v| v != 0.0))
            .map(|c| vec![c])
            .collect(),
    }
}

/// A grouping stored in the model (pre-defined sparsity), restricted to the columns that
/// kept a nonzero, checked against α and against the weights: it must be clash-free, so
/// that combining with it prunes nothing.
fn stored_grouping(m: &Array2<f64>, stored: &Groups, alpha: usize) -> Result<Grouping> {
    let grouping = nonzero_grouping(m, &stored.labels);
    if let Some(big) = grouping.groups.iter().find(|g| g.len() > alpha) {
        bail!(
            "stored grouping `{}`: a group of {} columns with nonzeros (taps {:?}) exceeds alpha = {alpha}; compile with that layer's alpha >= {} or with --regroup",
            stored.tensor,
            big.len(),
            big,
            big.len()
        );
    }
    let clash = clashes(m, &grouping);
    if let Some(&(r, g)) = clash.first() {
        bail!(
            "stored grouping `{}` is not clash-free: {} (row, group) pairs hold two or more nonzeros, the first row {r} in the group of taps {:?}; compile with --regroup to group (and prune) anew",
            stored.tensor,
            clash.len(),
            grouping.groups[g]
        );
    }
    Ok(grouping)
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
    } else if q.act == Activation::Offset && !opts.regroup {
        // A basis stage: block diagonal, grouped by construction.
        basis_grouping(&m, q.input.c, alpha)
    } else if let (Some(stored), false) = (&q.groups, opts.regroup) {
        stored_grouping(&m, stored, alpha).with_context(what)?
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
    let mut kept = Array2::from_elem(q.weight.dim(), false);
    let mut taps = Vec::new();
    let mut group_offsets = vec![0];
    for (g, members) in grouping.groups.iter().enumerate() {
        taps.extend(members.iter().map(|&c| q.taps[c]));
        group_offsets.push(taps.len());
        for r in 0..n {
            if let Some(col) = combined.source[[r, g]] {
                weight[[r, g]] = q.weight[[r, col]];
                kept[[r, col]] = true;
            }
        }
    }
    let bias = (0..n)
        .map(|r| q.bias_without(r, |t| kept[[r, t]]))
        .collect();
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
        bias,
        row_perm: (0..n).collect(),
        copy: Vec::new(),
        groups: grouping.groups,
        stats: combined.stats.clone(),
        nnz_unpacked,
        nonzero_columns: combined.stats.nonzero_columns,
        taps_total: q.taps.len(),
        pool: q.pool,
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

impl ChannelOrder for PackedLayer {
    fn permute_outputs(&mut self, perm: &[usize]) {
        self.weight = self.weight.select(Axis(0), perm);
        self.selector = self.selector.select(Axis(0), perm);
        self.bias = perm.iter().map(|&o| self.bias[o]).collect();
        self.row_perm = perm.iter().map(|&o| self.row_perm[o]).collect();
        if !self.copy.is_empty() {
            self.copy = perm.iter().map(|&o| self.copy[o]).collect();
        }
    }

    fn taps_mut(&mut self) -> &mut [Tap] {
        &mut self.taps
    }
}

/// Gives every tap of the next layer its own row to write. An array row writes the value
/// it computes into one tap buffer (hw/ccc_row_unit.v: one write target per row), which
/// is all a shift + 1x1 network needs; a KxK conv after the first layer reads each channel
/// through up to K·K taps, so each further tap gets a copy of the row that computes it
/// (same filter, bias and requantization; [`PackedLayer::copy`]). Rows come in the order
/// of the taps that read them, as [`contiguous_order`] puts them, unread rows last. A
/// layer whose channels are each read by at most one tap is left as it is.
pub fn replicate_shared_reads(net: &mut PackedNet) {
    for l in 0..net.layers.len().saturating_sub(1) {
        let n = net.layers[l].rows();
        if net.layers[l + 1].readers(n).iter().all(|us| us.len() <= 1) {
            continue;
        }
        let mut sel = Vec::with_capacity(net.layers[l + 1].taps.len());
        let mut copy = Vec::with_capacity(sel.capacity());
        let mut seen = vec![false; n];
        let was_copy: Vec<bool> = (0..n).map(|c| net.layers[l].is_copy(c)).collect();
        for t in net.layers[l + 1].taps.iter_mut() {
            copy.push(seen[t.channel] || was_copy[t.channel]);
            seen[t.channel] = true;
            sel.push(t.channel);
            t.channel = sel.len() - 1;
        }
        for c in (0..n).filter(|&c| !seen[c]) {
            copy.push(was_copy[c]);
            sel.push(c);
        }
        let layer = &mut net.layers[l];
        layer.permute_outputs(&sel);
        layer.copy = copy;
        layer.output.c = sel.len();
        net.layers[l + 1].input.c = sel.len();
    }
}

/// Applies row permutations (slot i of layer l holds its channel perms[l][i]).
pub fn apply_permutation(net: &mut PackedNet, perms: &[Vec<usize>]) {
    match net
        .layers
        .iter()
        .position(|l| l.pool)
        .and_then(|p| p.checked_sub(1))
    {
        None => permute_channels(&mut net.layers, net.classifier.pool_weight_mut(), perms),
        Some(last_conv) => {
            // The head on the array ends with the logits layer, whose rows nothing reads:
            // no classifier follows it. The classifier field still describes the head
            // (reports count its MACs from it); its pooled inputs follow the last conv's
            // slots.
            let mut nothing = Array2::<i32>::zeros((0, net.classes));
            permute_channels(&mut net.layers, &mut nothing, perms);
            let w = net.classifier.pool_weight_mut();
            *w = w.select(Axis(1), &perms[last_conv]);
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
    check_gamma(opts.gamma)?;
    if let Some(a) = opts.head_on_array
        && (a == 0 || a > MAX_ALPHA)
    {
        bail!("the head's alpha = {a} is out of range (1..={MAX_ALPHA})");
    }
    let model = q.name.clone();
    let head = opts.head_on_array.map(|a| (q.head_layers(), a));
    let layers = q
        .layers
        .par_iter()
        .zip(&opts.alphas)
        .chain(
            head.iter()
                .flat_map(|(ls, a)| ls.iter().map(move |l| (l, a)))
                .collect::<Vec<_>>()
                .into_par_iter(),
        )
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
    replicate_shared_reads(&mut net);
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn stored(labels: &[usize]) -> Groups {
        Groups {
            tensor: "b1.conv.groups".into(),
            labels: labels.to_vec(),
        }
    }

    #[test]
    fn a_stored_grouping_is_used_as_given_without_its_empty_columns() {
        // Columns 0 and 2 share group 0, 1 and 3 group 1; column 4 is all zero.
        let m = array![[1.0, 0.0, 0.0, 2.0, 0.0], [0.0, 3.0, 4.0, 0.0, 0.0]];
        let g = stored_grouping(&m, &stored(&[0, 1, 0, 1, 2]), 2).unwrap();
        assert_eq!(g.groups, vec![vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn a_stored_grouping_that_clashes_or_exceeds_alpha_is_refused() {
        let m = array![[1.0, 5.0, 0.0], [0.0, 3.0, 4.0]];
        let e = stored_grouping(&m, &stored(&[0, 0, 1]), 2).unwrap_err();
        assert!(
            e.to_string().contains("not clash-free") && e.to_string().contains("b1.conv.groups"),
            "{e}"
        );
        let e = stored_grouping(&m, &stored(&[0, 0, 0]), 2).unwrap_err();
        assert!(e.to_string().contains("exceeds alpha = 2"), "{e}");
    }
}
