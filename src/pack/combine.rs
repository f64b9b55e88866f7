//! Column-combine pruning: from a grouping to the packed N x G matrix and its metrics.
//!
//! This module owns the second half of column combining (docs/DESIGN.md §4): in each group,
//! each row keeps only its largest-magnitude weight (ties: lowest original column), and
//! the packed entry records which member it came from (the MX cell's selector). It also
//! owns the packing metrics that reports and strategy comparisons use; `pruned_l1` here
//! is the single definition of "pruned magnitude", so a strategy that compares itself
//! against another (as `Auto` does against `Reference`) sees exactly what reports show.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// A partition of a layer's nonzero columns into groups.
///
/// Groups are listed in creation order and members in merge order for `Reference`;
/// other strategies list members in increasing column order and groups by their
/// first member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    pub groups: Vec<Vec<usize>>,
}

impl Grouping {
    /// Number of groups (array columns the layer needs).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there is no group (the matrix had no nonzero).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Number of grouped columns.
    pub fn column_count(&self) -> usize {
        self.groups.iter().map(Vec::len).sum()
    }

    /// For each of `cols` columns, the index of its group (`None` if ungrouped).
    pub fn group_of(&self, cols: usize) -> Vec<Option<usize>> {
        let mut of = vec![None; cols];
        for (g, members) in self.groups.iter().enumerate() {
            for &c in members {
                if let Some(slot) = of.get_mut(c) {
                    *slot = Some(g);
                }
            }
        }
        of
    }
}

/// A layer's filter matrix after column combining.
#[derive(Clone, Debug, PartialEq)]
pub struct Combined {
    /// N x G packed weights; 0 where row r keeps nothing in group g.
    pub weights: Array2<f64>,
    /// N x G: the original column whose weight was kept at (r, g).
    pub source: Array2<Option<usize>>,
    /// N x G: index of the kept column in the group's member list (0 where nothing is kept).
    pub selector: Array2<u8>,
    pub stats: CombineStats,
}

impl Combined {
    /// The original column whose weight row `r` keeps in group `g`, if any.
    ///
    /// # Panics
    /// If `(r, g)` is outside the N x G packed matrix.
    pub fn kept(&self, r: usize, g: usize) -> Option<usize> {
        self.source[[r, g]]
    }
}

/// Packing metrics of one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CombineStats {
    /// Rows of F (filters).
    pub rows: usize,
    /// Nonzeros of F.
    pub nnz_before: usize,
    /// Nonzeros kept in the packed matrix.
    pub nnz_after: usize,
    /// Weights removed by combining (Σ conflicts).
    pub pruned_count: usize,
    /// Σ |w| over the removed weights.
    pub pruned_l1: f64,
    /// Σ |w| over F.
    pub total_l1: f64,
    /// Conflicts of each group (= weights it prunes), in group order.
    pub conflicts: Vec<usize>,
    /// Number of groups (packed columns).
    pub groups: usize,
    /// Columns of F with at least one nonzero (the unpacked column count).
    pub nonzero_columns: usize,
}

impl CombineStats {
    /// Fraction of F's L1 magnitude removed by combining (0 for an all-zero F).
    pub fn pruned_l1_fraction(&self) -> f64 {
        if self.total_l1 > 0.0 {
            self.pruned_l1 / self.total_l1
        } else {
            0.0
        }
    }

    /// Fraction of F's nonzeros removed by combining.
    pub fn pruned_fraction(&self) -> f64 {
        if self.nnz_before > 0 {
            self.pruned_count as f64 / self.nnz_before as f64
        } else {
            0.0
        }
    }
}

/// Applies column-combine pruning to `m` (N x T) under grouping `g`.
///
/// `g` is expected to partition the nonzero columns of `m` (every grouping from
/// [`super::group::group_columns`] does); then `nnz_after + pruned_count == nnz_before`.
/// A nonzero column in no group is neither kept nor counted as pruned.
///
/// # Panics
/// If a group names a column `>= T` or has more than 256 members (selectors are 8-bit);
/// both are bugs in the caller, not properties of the data.
pub fn combine(m: ArrayView2<f64>, g: &Grouping) -> Combined {
    let (n, t) = m.dim();
    let ng = g.groups.len();
    let mut weights = Array2::<f64>::zeros((n, ng));
    let mut source = Array2::<Option<usize>>::from_elem((n, ng), None);
    let mut selector = Array2::<u8>::zeros((n, ng));
    let mut conflicts = Vec::with_capacity(ng);
    let mut nnz_after = 0;
    for (gi, members) in g.groups.iter().enumerate() {
        check_group(members, t);
        let mut group_conflicts = 0;
        for r in 0..n {
            let (kept, nonzeros) = keep(m, members, r);
            if let Some(k) = kept {
                let c = members[k];
                weights[[r, gi]] = m[[r, c]];
                source[[r, gi]] = Some(c);
                // check_group bounds the member count, so k fits.
                selector[[r, gi]] = k as u8;
                nnz_after += 1;
                group_conflicts += nonzeros - 1;
            }
        }
        conflicts.push(group_conflicts);
    }
    let nnz_before = m.iter().filter(|&&w| w != 0.0).count();
    let total_l1 = m.iter().map(|w| w.abs()).sum();
    let nonzero_columns = m
        .columns()
        .into_iter()
        .filter(|col| col.iter().any(|&w| w != 0.0))
        .count();
    let stats = CombineStats {
        rows: n,
        nnz_before,
        nnz_after,
        pruned_count: conflicts.iter().sum(),
        pruned_l1: pruned_l1(m, &g.groups),
        total_l1,
        conflicts,
        groups: ng,
        nonzero_columns,
    };
    Combined {
        weights,
        source,
        selector,
        stats,
    }
}

/// Σ |w| of the weights that combining prunes under `groups`.
///
/// The one definition used by [`combine`] and by strategies comparing groupings: the
/// summation order is fixed (groups, then rows, then members) so equal groupings give
/// bit-equal sums.
///
/// # Panics
/// Under the same conditions as [`combine`].
pub fn pruned_l1(m: ArrayView2<f64>, groups: &[Vec<usize>]) -> f64 {
    let (n, t) = m.dim();
    let mut pruned = 0.0;
    for members in groups {
        check_group(members, t);
        for r in 0..n {
            let (kept, _) = keep(m, members, r);
            let Some(k) = kept else { continue };
            for (i, &c) in members.iter().enumerate() {
                let w = m[[r, c]];
                if i != k && w != 0.0 {
                    pruned += w.abs();
                }
            }
        }
    }
    pruned
}

/// Conflicts of one group: Σ_r max(0, n_r − 1), the weights combining it prunes.
pub fn group_conflicts(m: ArrayView2<f64>, members: &[usize]) -> usize {
    (0..m.nrows())
        .map(|r| {
            let k = members.iter().filter(|&&c| m[[r, c]] != 0.0).count();
            k.saturating_sub(1)
        })
        .sum()
}

fn check_group(members: &[usize], t: usize) {
    assert!(
        members.len() <= 256,
        "group of {} columns exceeds 8-bit selectors",
        members.len()
    );
    if let Some(&c) = members.iter().find(|&&c| c >= t) {
        panic!("group names column {c} but the matrix has {t} columns");
    }
}

/// For row `r` of a group: the member index whose weight is kept (largest |w|, ties to
/// the lowest original column) and how many members are nonzero there.
#[inline]
fn keep(m: ArrayView2<f64>, members: &[usize], r: usize) -> (Option<usize>, usize) {
    let mut best: Option<(usize, f64, usize)> = None; // (member idx, |w|, column)
    let mut nonzeros = 0;
    for (i, &c) in members.iter().enumerate() {
        let w = m[[r, c]];
        if w == 0.0 {
            continue;
        }
        nonzeros += 1;
        let a = w.abs();
        if best.is_none_or(|(_, ba, bc)| a > ba || (a == ba && c < bc)) {
            best = Some((i, a, c));
        }
    }
    (best.map(|b| b.0), nonzeros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn keeps_largest_magnitude_lowest_column_on_ties() {
        let m = array![
            [1.0, -3.0, 2.0, 0.0],
            [2.0, 0.0, -2.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 4.0, 0.0],
        ];
        // Member order differs from column order: the tie at row 1 still goes to column 0.
        let g = Grouping {
            groups: vec![vec![2, 0, 1]],
        };
        let c = combine(m.view(), &g);
        assert_eq!(c.weights.column(0).to_vec(), vec![-3.0, 2.0, 0.0, 4.0]);
        assert_eq!(
            c.source.column(0).to_vec(),
            vec![Some(1), Some(0), None, Some(2)]
        );
        assert_eq!(c.selector.column(0).to_vec(), vec![2, 1, 0, 0]);
        assert_eq!((c.kept(0, 0), c.kept(2, 0)), (Some(1), None));
        let s = &c.stats;
        assert_eq!((s.nnz_before, s.nnz_after, s.pruned_count), (6, 3, 3));
        assert_eq!(s.conflicts, vec![3]);
        assert_eq!(s.pruned_l1, 1.0 + 2.0 + 2.0);
        assert_eq!(s.total_l1, 14.0);
        assert_eq!((s.groups, s.nonzero_columns, s.rows), (1, 3, 4));
        assert!((s.pruned_l1_fraction() - 5.0 / 14.0).abs() < 1e-15);
        assert_eq!(s.pruned_fraction(), 0.5);
        assert_eq!(group_conflicts(m.view(), &[0, 1, 2]), 3);
    }

    #[test]
    fn singleton_groups_prune_nothing() {
        let m = array![[1.0, 0.0], [0.0, -2.0]];
        let g = Grouping {
            groups: vec![vec![0], vec![1]],
        };
        let c = combine(m.view(), &g);
        assert_eq!(c.weights, m);
        assert_eq!(c.stats.pruned_count, 0);
        assert_eq!(c.stats.pruned_l1, 0.0);
        assert_eq!(c.stats.pruned_l1_fraction(), 0.0);
    }

    #[test]
    fn empty_grouping() {
        let m = Array2::<f64>::zeros((3, 2));
        let c = combine(m.view(), &Grouping::default());
        assert_eq!(c.weights.dim(), (3, 0));
        assert_eq!(c.stats.nnz_before, 0);
        assert_eq!(c.stats.pruned_l1_fraction(), 0.0);
        assert_eq!(c.stats.pruned_fraction(), 0.0);
    }

    #[test]
    #[should_panic(expected = "column 5")]
    fn out_of_range_column_panics() {
        let m = Array2::<f64>::ones((2, 2));
        combine(
            m.view(),
            &Grouping {
                groups: vec![vec![5]],
            },
        );
    }

    #[test]
    fn stats_serialize() {
        let m = array![[1.0, 2.0]];
        let g = Grouping {
            groups: vec![vec![0, 1]],
        };
        let json = serde_json::to_value(combine(m.view(), &g).stats).unwrap();
        assert_eq!(json["pruned_count"], 1);
        assert_eq!(json["conflicts"], serde_json::json!([1]));
    }
}
