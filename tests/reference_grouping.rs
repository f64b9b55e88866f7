//! `Strategy::Reference` against the authors' grouping, case by case
//! (tests/data/reference-grouping.json: membership and order of every group, and the
//! nonzero counts before and after column-combine pruning).

use ccc::pack::combine::combine;
use ccc::pack::group::{GroupParams, Strategy, group_columns, reference_naive};
use ndarray::Array2;
use serde::Deserialize;

#[derive(Deserialize)]
struct Data {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    seed: u64,
    rows: usize,
    cols: usize,
    alpha: usize,
    gamma: f64,
    section: usize,
    weights: Vec<Vec<f64>>,
    groups: Vec<Vec<usize>>,
    nnz_before: usize,
    nnz_after: usize,
}

impl Case {
    fn matrix(&self) -> Array2<f64> {
        assert_eq!(
            self.weights.len(),
            self.rows,
            "case {}: row count",
            self.seed
        );
        assert!(self.weights.iter().all(|r| r.len() == self.cols));
        Array2::from_shape_fn((self.rows, self.cols), |(r, c)| self.weights[r][c])
    }

    fn params(&self, strategy: Strategy) -> GroupParams {
        GroupParams {
            alpha: self.alpha,
            gamma: self.gamma,
            section: self.section,
            strategy,
        }
    }
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/reference-grouping.json"
    );
    let text = std::fs::read_to_string(path).expect("read reference-grouping.json");
    let data: Data = serde_json::from_str(&text).expect("parse reference-grouping.json");
    assert!(!data.cases.is_empty());
    data.cases
}

#[test]
fn reference_reproduces_every_case() {
    for case in cases() {
        let m = case.matrix();
        let g = group_columns(m.view(), &case.params(Strategy::Reference)).unwrap();
        assert_eq!(g.groups, case.groups, "case seed {}: groups", case.seed);
        let stats = combine(m.view(), &g).stats;
        assert_eq!(stats.nnz_before, case.nnz_before, "case seed {}", case.seed);
        assert_eq!(stats.nnz_after, case.nnz_after, "case seed {}", case.seed);
        assert_eq!(stats.nnz_after + stats.pruned_count, stats.nnz_before);
    }
}

#[test]
fn naive_restatement_reproduces_every_case() {
    for case in cases() {
        let m = case.matrix();
        let g = reference_naive(m.view(), &case.params(Strategy::Reference)).unwrap();
        assert_eq!(g.groups, case.groups, "case seed {}: groups", case.seed);
    }
}

#[test]
fn other_strategies_are_never_worse_where_guaranteed() {
    for case in cases() {
        let m = case.matrix();
        let r = combine(m.view(), &case.groups_as_grouping()).stats;
        let a = group_columns(m.view(), &case.params(Strategy::Auto)).unwrap();
        let a = combine(m.view(), &a).stats;
        assert!(a.groups <= r.groups, "case seed {}", case.seed);
        assert!(a.pruned_l1 <= r.pruned_l1, "case seed {}", case.seed);
        // Best fit carries no guarantee, but must still produce a valid grouping.
        let b = group_columns(m.view(), &case.params(Strategy::BestFit)).unwrap();
        assert_eq!(
            b.column_count(),
            r.nonzero_columns,
            "case seed {}",
            case.seed
        );
    }
}

impl Case {
    fn groups_as_grouping(&self) -> ccc::pack::combine::Grouping {
        ccc::pack::combine::Grouping {
            groups: self.groups.clone(),
        }
    }
}
