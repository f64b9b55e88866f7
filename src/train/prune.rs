//! Joint optimization's pruning (docs/DESIGN.md §9): the cubic magnitude-pruning schedule
//! and the column-combine step, which calls the compiler's own grouping and combining
//! (`pack::group::group_columns`, `pack::combine::combine`) so that what training
//! prunes is exactly what `ccc compile` will pack.

use anyhow::{Context, Result};
use ndarray::Array2;

use crate::pack::combine::{Grouping, combine};
use crate::pack::group::{GroupParams, Strategy, group_columns};

/// Number of prune steps, spread evenly over the first half of training (the seeds').
pub const PRUNE_STEPS: usize = 10;

/// Optimizer steps (1-based, in 1..=total/2) after which prune step 1..=10 runs.
pub fn prune_points(total_steps: usize) -> Vec<usize> {
    let half = total_steps / 2;
    (1..=PRUNE_STEPS)
        .map(|i| (half * i / PRUNE_STEPS).max(1))
        .collect()
}

/// Fraction of a layer's weights magnitude pruning targets at prune step `i` of 10:
/// the cubic ramp s_i = s·(1 − (1 − i/10)³) towards s = 1 − 1/α.
pub fn target_fraction(alpha: usize, step: usize) -> f64 {
    let s = 1.0 - 1.0 / alpha as f64;
    let r = step.min(PRUNE_STEPS) as f64 / PRUNE_STEPS as f64;
    s * (1.0 - (1.0 - r).powi(3))
}

/// α that prune step `i` of 10 combines with under `--alpha-ramp`: round(α^(i/10)),
/// from 1 (magnitude pruning alone) up to α at the last step. Combining at the full α
/// from the first step leaves every row one weight per group at once, which is nearly
/// all of the layer's pruning in one step; the ramp spreads it over the ten steps the
/// magnitude schedule already has, with retraining between them.
pub fn ramped_alpha(alpha: usize, step: usize) -> usize {
    let r = step.min(PRUNE_STEPS) as f64 / PRUNE_STEPS as f64;
    ((alpha as f64).powf(r).round() as usize).clamp(1, alpha.max(1))
}

/// What one layer's prune step did.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneResult {
    /// 0/1 mask, N x T.
    pub mask: Array2<f64>,
    /// The compiler's grouping of the magnitude-pruned matrix; under `mask` each row
    /// has at most one nonzero per group.
    pub grouping: Grouping,
    /// Weights removed by magnitude pruning and by combining.
    pub magnitude_pruned: usize,
    pub combine_pruned: usize,
}

/// Magnitude-prunes `w` (already masked) to `fraction` zeros, then groups its columns
/// with α, γ and column-combine prunes the rest of the conflicts.
pub fn prune_layer(
    w: &Array2<f64>,
    alpha: usize,
    gamma: f64,
    fraction: f64,
    strategy: Strategy,
) -> Result<PruneResult> {
    let total = w.len();
    let zero_target = ((fraction * total as f64).round() as usize).min(total);
    let mut mags: Vec<f64> = w.iter().map(|v| v.abs()).collect();
    let already = mags.iter().filter(|&&m| m == 0.0).count();
    let mut m = w.clone();
    let mut magnitude_pruned = 0;
    if zero_target > already {
        // The k-th smallest magnitude is the threshold; ties at the threshold are cut in
        // index order so the count is exact and deterministic.
        let k = zero_target - 1;
        mags.select_nth_unstable_by(k, f64::total_cmp);
        let thr = mags[k];
        let below = w.iter().filter(|v| v.abs() < thr).count();
        let mut at_thr_budget = zero_target - below;
        for v in m.iter_mut() {
            let a = v.abs();
            if a == 0.0 {
                continue;
            }
            if a < thr || (a == thr && at_thr_budget > 0) {
                if a == thr {
                    at_thr_budget -= 1;
                }
                *v = 0.0;
                magnitude_pruned += 1;
            }
        }
    }
    let params = GroupParams::new(alpha, gamma).with_strategy(strategy);
    let grouping = group_columns(m.view(), &params)
        .with_context(|| format!("grouping columns with alpha {alpha}, gamma {gamma}"))?;
    let combined = combine(m.view(), &grouping);
    let mut mask = Array2::<f64>::zeros(w.dim());
    for ((r, _), src) in combined.source.indexed_iter() {
        if let Some(c) = src {
            mask[[r, *c]] = 1.0;
        }
    }
    // Combining keeps only nonzero weights, so the mask lies within the magnitude mask.
    Ok(PruneResult {
        mask,
        grouping,
        magnitude_pruned,
        combine_pruned: combined.stats.pruned_count,
    })
}

/// Array columns (groups) the layer would occupy if packed now: the compiler's grouping
/// of its current nonzero pattern.
pub fn groups_now(w: &Array2<f64>, alpha: usize, gamma: f64, strategy: Strategy) -> Result<usize> {
    let params = GroupParams::new(alpha, gamma).with_strategy(strategy);
    Ok(group_columns(w.view(), &params)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_cubic_and_reaches_one_minus_one_over_alpha() {
        assert_eq!(target_fraction(8, 0), 0.0);
        assert!((target_fraction(8, 10) - 0.875).abs() < 1e-12);
        // Cubic: most of the pruning happens early.
        assert!(target_fraction(8, 5) > 0.8 * 0.875);
        let pts = prune_points(1000);
        assert_eq!(pts.len(), 10);
        assert_eq!(*pts.last().unwrap(), 500);
        assert!(pts.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn alpha_ramp_climbs_from_one_to_alpha() {
        let ramp = |a| {
            (1..=PRUNE_STEPS)
                .map(|i| ramped_alpha(a, i))
                .collect::<Vec<_>>()
        };
        assert_eq!(ramp(8), [1, 2, 2, 2, 3, 3, 4, 5, 6, 8]);
        assert_eq!(ramp(4), [1, 1, 2, 2, 2, 2, 3, 3, 3, 4]);
        assert_eq!(ramp(2), [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
        assert_eq!(ramp(1), [1; 10]);
        // Past the last step it stays at α.
        assert_eq!(ramped_alpha(8, 12), 8);
        // α 1 steps prune by magnitude alone: combining one column per group cuts nothing.
        let w = Array2::from_shape_fn((8, 12), |(r, c)| ((r * 7 + c * 5) % 11) as f64 - 5.0);
        let p = prune_layer(&w, 1, 1.75, 0.25, Strategy::Auto).unwrap();
        assert_eq!(p.combine_pruned, 0);
        assert_eq!(p.grouping.len(), 12);
    }

    #[test]
    fn prune_layer_leaves_a_conflict_free_grouping() {
        let w = Array2::from_shape_fn((16, 24), |(r, c)| ((r * 31 + c * 17) % 23) as f64 - 11.0);
        let p = prune_layer(&w, 4, 0.5, 0.75 * 0.5, Strategy::Auto).unwrap();
        let masked = &w * &p.mask;
        // Under the mask every row keeps at most one weight per group (what the MX
        // cell's selector can express), and groups respect α.
        for members in &p.grouping.groups {
            assert!(members.len() <= 4);
            for r in 0..16 {
                assert!(members.iter().filter(|&&c| masked[[r, c]] != 0.0).count() <= 1);
            }
        }
        // Magnitude pruning removed about the requested fraction.
        let zeros = w.len() - masked.iter().filter(|v| **v != 0.0).count();
        assert!(zeros >= (0.375 * w.len() as f64) as usize);
        assert_eq!(
            p.magnitude_pruned + p.combine_pruned,
            zeros - w.iter().filter(|v| **v == 0.0).count()
        );
    }
}
