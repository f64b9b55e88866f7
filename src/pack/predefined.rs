//! Pre-defined sparsity (docs/DESIGN.md §10, after Dey, Chugg and Beerel): a connection
//! pattern fixed before training that is clash-free for the array by construction.
//!
//! This module owns the construction and its checks. A junction is a filter matrix
//! F (N rows = output channels, T columns = taps, K·K·C of them for a KxK conv) or a
//! linear layer's weight. The pattern gives every row the same fan-in f and comes with a
//! grouping of the columns into G = ⌈T/α⌉ groups of at most α columns in which no row has
//! two nonzeros — so column combining with that grouping prunes nothing, and a packed
//! column holds one weight in every row that reaches its group.
//!
//! The construction is the interleaver of the sources: every edge (row r, its j-th
//! connection) gets a memory index — the group, `σ[(r·f + j) mod G]` — and an address
//! inside it — the group's next member in round-robin order from a seeded offset. The f
//! consecutive indices of one row are distinct because f ≤ G (no clash); the modulo walk
//! gives every group ⌊N·f/G⌋ or ⌈N·f/G⌉ edges and the round robin spreads a group's edges
//! over its members (fan-out balanced within one). Column order, group sizes (which
//! differ by at most one) and offsets come from a ChaCha8 generator seeded by the
//! caller, so the same seed gives the same pattern on every machine.
//!
//! The grouping travels with the mask (the `groups` tensor of a conv in the model file):
//! the compiler's greedy packer at γ = 0 finds it from the mask alone on most shapes but
//! not all (28 x 121 at α 3, fan-in 28: 43 groups against the construction's 41).

use ndarray::Array2;
use rand::RngExt;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::combine::Grouping;
use super::group::MAX_ALPHA;

/// Why a pattern cannot be built (callers report it against the layer they were building).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PredefinedError {
    #[error("a junction needs at least one row and one column (got {rows} x {cols})")]
    Empty { rows: usize, cols: usize },
    #[error("alpha {0} is out of range (1..={MAX_ALPHA})")]
    BadAlpha(usize),
    #[error(
        "fan-in {fan_in} does not fit: {cols} columns in groups of at most alpha = {alpha} make {groups} groups, and a row may reach each group once (fan-in 1..={groups}, density at most {max_density:.4})"
    )]
    FanIn {
        fan_in: usize,
        cols: usize,
        alpha: usize,
        groups: usize,
        max_density: f64,
    },
    #[error("density {0} must be a number in (0, 1]")]
    BadDensity(f64),
}

/// A junction's connection pattern and the grouping that makes it clash-free.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// N x T: true where a weight exists.
    pub mask: Array2<bool>,
    /// Group of every column (T entries, each < `groups`).
    pub group_of: Vec<usize>,
    pub groups: usize,
    /// Nonzeros per row.
    pub fan_in: usize,
}

/// Groups a junction of `cols` columns needs at α: ⌈T/α⌉.
pub fn group_count(cols: usize, alpha: usize) -> usize {
    cols.div_ceil(alpha.max(1))
}

/// The fan-in that gives `density` on `cols` columns: round(D·T), at least 1.
pub fn fan_in_for(cols: usize, density: f64) -> Result<usize, PredefinedError> {
    if !(density.is_finite() && density > 0.0 && density <= 1.0) {
        return Err(PredefinedError::BadDensity(density));
    }
    Ok(((density * cols as f64).round() as usize).clamp(1, cols.max(1)))
}

/// Builds the pattern of an N x T junction with groups of at most `alpha` columns and
/// `fan_in` nonzeros per row, deterministically from `seed`.
pub fn construct(
    rows: usize,
    cols: usize,
    alpha: usize,
    fan_in: usize,
    seed: u64,
) -> Result<Pattern, PredefinedError> {
    if rows == 0 || cols == 0 {
        return Err(PredefinedError::Empty { rows, cols });
    }
    if alpha == 0 || alpha > MAX_ALPHA {
        return Err(PredefinedError::BadAlpha(alpha));
    }
    let groups = group_count(cols, alpha);
    if fan_in == 0 || fan_in > groups {
        return Err(PredefinedError::FanIn {
            fan_in,
            cols,
            alpha,
            groups,
            max_density: groups as f64 / cols as f64,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Columns in seeded order, cut into G groups whose sizes differ by at most one (all
    // ≤ α since G = ⌈T/α⌉).
    let mut order: Vec<usize> = (0..cols).collect();
    order.shuffle(&mut rng);
    let (base, extra) = (cols / groups, cols % groups);
    let mut members = Vec::with_capacity(groups);
    let mut at = 0;
    for g in 0..groups {
        let size = base + usize::from(g < extra);
        members.push(order[at..at + size].to_vec());
        at += size;
    }
    let mut group_of = vec![0; cols];
    for (g, m) in members.iter().enumerate() {
        for &c in m {
            group_of[c] = g;
        }
    }
    // Memory index of edge e = r·f + j: σ[e mod G]; address: the group's round robin.
    let mut sigma: Vec<usize> = (0..groups).collect();
    sigma.shuffle(&mut rng);
    let mut next: Vec<usize> = members
        .iter()
        .map(|m| rng.random_range(0..m.len()))
        .collect();
    let mut mask = Array2::from_elem((rows, cols), false);
    for r in 0..rows {
        for j in 0..fan_in {
            let g = sigma[(r * fan_in + j) % groups];
            let m = &members[g];
            let c = m[next[g] % m.len()];
            next[g] += 1;
            mask[[r, c]] = true;
        }
    }
    Ok(Pattern {
        mask,
        group_of,
        groups,
        fan_in,
    })
}

impl Pattern {
    /// The grouping as the packer takes it: members of each group in column order.
    pub fn grouping(&self) -> Grouping {
        grouping_from_labels(&self.group_of, self.groups)
    }
}

/// Groups from per-column labels (empty groups dropped, members in column order).
pub fn grouping_from_labels(group_of: &[usize], groups: usize) -> Grouping {
    let mut g: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (c, &l) in group_of.iter().enumerate() {
        g[l].push(c);
    }
    g.retain(|m| !m.is_empty());
    Grouping { groups: g }
}

/// The groups of per-column `labels` restricted to the columns of `m` that hold a nonzero
/// (the packer never groups an all-zero column), empty groups dropped: how a stored
/// grouping packs.
pub fn nonzero_grouping(m: &Array2<f64>, labels: &[usize]) -> Grouping {
    let groups = labels.iter().max().map_or(0, |&g| g + 1);
    let mut grouping = grouping_from_labels(labels, groups);
    for members in &mut grouping.groups {
        members.retain(|&c| m.column(c).iter().any(|&v| v != 0.0));
    }
    grouping.groups.retain(|g| !g.is_empty());
    grouping
}

/// The grouping of a decomposed conv's basis stage (C channels x `kk` taps, columns
/// c·kk + t; rows (c, m) read only channel c's taps): columns in tap-major order
/// (t·C + c) cut into runs of min(α, C), so no group holds two columns of one channel and
/// nothing clashes. ⌈C·kk / min(α, C)⌉ groups, the fewest a clash-free grouping can have.
pub fn basis_labels(channels: usize, kk: usize, alpha: usize) -> Vec<usize> {
    let run = alpha.min(channels).max(1);
    (0..channels * kk)
        .map(|col| ((col % kk) * channels + col / kk) / run)
        .collect()
}

/// [`basis_labels`]' grouping of a basis stage's matrix `m` (`channels` input channels,
/// columns c·kk + t), restricted to its nonzero columns.
pub fn basis_grouping(m: &Array2<f64>, channels: usize, alpha: usize) -> Grouping {
    nonzero_grouping(m, &basis_labels(channels, m.ncols() / channels, alpha))
}

/// Rows in which group `g` of `grouping` holds two or more nonzeros of `m`: a stored
/// grouping that is not clash-free for the weights it comes with.
pub fn clashes(m: &Array2<f64>, grouping: &Grouping) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (g, members) in grouping.groups.iter().enumerate() {
        for r in 0..m.nrows() {
            if members.iter().filter(|&&c| m[[r, c]] != 0.0).count() > 1 {
                out.push((r, g));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::combine::combine;
    use proptest::prelude::*;

    fn as_f64(p: &Pattern) -> Array2<f64> {
        p.mask.mapv(|b| if b { 1.0 } else { 0.0 })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Clash-free, the stated fan-in and density, groups within α, balanced fan-out,
        /// and the same bytes for the same seed.
        #[test]
        fn patterns_are_clash_free_with_the_stated_fan_in(
            rows in 1usize..80, cols in 1usize..300, alpha in 1usize..16, frac in 0.0f64..=1.0,
            seed in any::<u64>(),
        ) {
            let groups = group_count(cols, alpha);
            let fan_in = 1 + ((groups - 1) as f64 * frac) as usize;
            let p = construct(rows, cols, alpha, fan_in, seed).unwrap();
            prop_assert_eq!(p.groups, groups);
            for r in 0..rows {
                prop_assert_eq!(p.mask.row(r).iter().filter(|&&b| b).count(), fan_in);
            }
            let nnz = p.mask.iter().filter(|&&b| b).count();
            prop_assert_eq!(nnz, rows * fan_in);
            let g = p.grouping();
            prop_assert!(g.groups.iter().all(|m| m.len() <= alpha));
            prop_assert_eq!(g.groups.iter().map(Vec::len).sum::<usize>(), cols);
            prop_assert!(clashes(&as_f64(&p), &g).is_empty());
            // Combining with the construction's grouping prunes nothing.
            let c = combine(as_f64(&p).view(), &g);
            prop_assert_eq!(c.stats.pruned_count, 0);
            // Within a group, members' fan-outs differ by at most one.
            for m in &g.groups {
                let outs: Vec<usize> = m.iter().map(|&c| p.mask.column(c).iter().filter(|&&b| b).count()).collect();
                prop_assert!(outs.iter().max().unwrap() - outs.iter().min().unwrap() <= 1);
            }
            prop_assert_eq!(&construct(rows, cols, alpha, fan_in, seed).unwrap(), &p);
        }
    }

    #[test]
    fn density_one_over_alpha_fills_every_packed_cell() {
        let (n, t, a) = (64, 128, 8);
        let f = fan_in_for(t, 1.0 / a as f64).unwrap();
        assert_eq!(f, 16);
        let p = construct(n, t, a, f, 7).unwrap();
        let g = p.grouping();
        assert_eq!(g.groups.len(), 16);
        let c = combine(as_f64(&p).view(), &g);
        // Every (row, group) cell holds a weight: utilization D·α = 1.
        assert!(c.source.iter().all(Option::is_some));
    }

    #[test]
    fn a_fan_in_past_the_group_count_is_refused() {
        let e = construct(8, 100, 8, 14, 1).unwrap_err();
        assert!(
            matches!(e, PredefinedError::FanIn { groups: 13, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("fan-in 1..=13"), "{e}");
        assert!(fan_in_for(10, 0.0).is_err());
        assert!(fan_in_for(10, 1.5).is_err());
    }

    #[test]
    fn seeds_give_different_patterns() {
        let a = construct(32, 64, 4, 16, 1).unwrap();
        let b = construct(32, 64, 4, 16, 2).unwrap();
        assert_ne!(a, b);
    }
}
