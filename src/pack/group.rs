//! Column grouping: which columns of a layer's filter matrix share one array column.
//!
//! This module owns the grouping half of column combining (docs/DESIGN.md §4): the
//! admissibility rule (at most α columns, at most ⌊γ·N⌋ conflicts), the authors'
//! greedy procedure reproduced exactly ([`Strategy::Reference`]), the default
//! [`Strategy::Auto`] that is never worse than it, and a magnitude-aware best-fit
//! ([`Strategy::BestFit`]) kept selectable for comparison. Pruning and the packed
//! matrix live in [`super::combine`].
//!
//! Matrix convention: F is N x T (rows = filters, columns = taps); an entry that is
//! exactly `0.0` is structurally zero. All-zero columns are never grouped.
//!
//! Everything here is deterministic: candidate scans run in fixed orders, ties are
//! broken by index, no hash-map order is involved, and rayon only maps independent
//! pieces (columns, sections, starting points) whose results are collected in order.

use std::fmt;
use std::str::FromStr;

use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bitset::RowSet;
use super::combine::{self, Grouping};

/// Largest accepted α: a selector names a column of its group in 8 bits.
pub const MAX_ALPHA: usize = 256;

/// How columns are grouped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The authors' greedy procedure, reproduced exactly (groups, members and order).
    Reference,
    /// Default: the best of several constructions refined by local search, accepted
    /// only where it is at least as good as `Reference` on both group count and
    /// pruned L1 magnitude (otherwise the `Reference` grouping is returned).
    #[default]
    Auto,
    /// Magnitude-aware best-fit decreasing into ⌈T/α⌉ initial groups (more are opened
    /// when nothing fits), then local search; no guarantee relative to `Reference`.
    BestFit,
}

impl Strategy {
    /// Every strategy, in a fixed order (for CLIs, reports and tests).
    pub const ALL: [Strategy; 3] = [Strategy::Reference, Strategy::Auto, Strategy::BestFit];

    /// The name used on the command line and in serialized output.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Reference => "reference",
            Strategy::Auto => "auto",
            Strategy::BestFit => "best-fit",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = PackError;

    fn from_str(s: &str) -> Result<Self, PackError> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        Strategy::ALL
            .into_iter()
            .find(|st| st.name() == key || (key == "bestfit" && *st == Strategy::BestFit))
            .ok_or_else(|| PackError::UnknownStrategy(s.to_string()))
    }
}

/// Parameters of one layer's grouping.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupParams {
    /// Maximum number of columns per group (1..=[`MAX_ALPHA`]).
    pub alpha: usize,
    /// Conflict budget per row: a group may prune at most ⌊γ·N⌋ weights.
    pub gamma: f64,
    /// Group consecutive blocks of this many (original) columns independently; 0 = off.
    pub section: usize,
    /// Which grouping procedure to run.
    pub strategy: Strategy,
}

impl GroupParams {
    /// α and γ with sections off and the default strategy.
    pub fn new(alpha: usize, gamma: f64) -> Self {
        Self {
            alpha,
            gamma,
            section: 0,
            strategy: Strategy::default(),
        }
    }

    /// The same parameters with another strategy.
    pub fn with_strategy(self, strategy: Strategy) -> Self {
        Self { strategy, ..self }
    }

    /// The same parameters with another section length (0 = off).
    pub fn with_section(self, section: usize) -> Self {
        Self { section, ..self }
    }

    /// Checks the user-supplied values.
    pub fn validate(&self) -> Result<(), PackError> {
        if self.alpha == 0 {
            return Err(PackError::ZeroAlpha);
        }
        if self.alpha > MAX_ALPHA {
            return Err(PackError::AlphaTooLarge(self.alpha));
        }
        check_gamma(self.gamma)?;
        Ok(())
    }
}

/// γ as given (command line, graph, training options), checked in this one place.
pub fn check_gamma(gamma: f64) -> Result<f64, PackError> {
    if gamma.is_finite() && gamma >= 0.0 {
        Ok(gamma)
    } else {
        Err(PackError::BadGamma(gamma))
    }
}

/// Why a grouping could not be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PackError {
    #[error("alpha (columns per group) must be at least 1")]
    ZeroAlpha,
    #[error("alpha {0} exceeds the maximum of {MAX_ALPHA} (selectors are 8-bit)")]
    AlphaTooLarge(usize),
    #[error("gamma = {0} must be a finite number >= 0")]
    BadGamma(f64),
    #[error("unknown grouping strategy {0:?} (expected reference, auto or best-fit)")]
    UnknownStrategy(String),
    #[error("weight at row {row}, column {col} is not finite")]
    NonFiniteWeight { row: usize, col: usize },
}

/// The per-group conflict budget ⌊γ·N⌋ (N = all rows of F, empty ones included).
pub fn conflict_budget(rows: usize, gamma: f64) -> usize {
    // `as` saturates, so an absurdly large γ just means "no limit".
    (gamma * rows as f64).floor().max(0.0) as usize
}

/// Groups the nonzero columns of `m` (N x T) with the chosen strategy.
pub fn group_columns(m: ArrayView2<f64>, p: &GroupParams) -> Result<Grouping, PackError> {
    p.validate()?;
    check_finite(m)?;
    let budget = conflict_budget(m.nrows(), p.gamma);
    let blocks = Block::split(m, p.section);
    // (groups, reference groups where the strategy needs them) per block.
    type BlockResult = (Vec<Vec<usize>>, Vec<Vec<usize>>);
    let per_block: Vec<BlockResult> = blocks
        .par_iter()
        .map(|b| match p.strategy {
            Strategy::Reference => (
                b.to_original(reference_block(b, p.alpha, budget)),
                Vec::new(),
            ),
            Strategy::Auto => auto_block(m, b, p.alpha, budget),
            Strategy::BestFit => {
                let bins = b.len().div_ceil(p.alpha);
                let mut s = Search::new(b, p.alpha, budget, best_fit(b, p.alpha, budget, bins).0);
                s.local_search(f64::NEG_INFINITY);
                (b.to_original(s.into_groups()), Vec::new())
            }
        })
        .collect();
    let (mut groups, reference): (Vec<_>, Vec<_>) = per_block.into_iter().unzip();
    let mut groups = Grouping {
        groups: groups.drain(..).flatten().collect(),
    };
    if p.strategy != Strategy::Reference {
        canonical_order(&mut groups.groups);
    }
    if p.strategy == Strategy::Auto {
        // Blocks are accepted one by one, and sums in another order may differ in the
        // last ulp: the guarantee is checked again on the whole layer, as callers see it.
        let reference = Grouping {
            groups: reference.into_iter().flatten().collect(),
        };
        if !no_worse(m, &groups, &reference) {
            return Ok(reference);
        }
    }
    Ok(groups)
}

/// The authors' procedure restated naively, the way their code computes it: dense
/// per-row counts per group, and the full group x group conflict and metric matrices
/// recomputed after every merge (O(G²·N) per merge). Kept to check `Reference`
/// against it and to measure the speedup.
#[doc(hidden)]
pub fn reference_naive(m: ArrayView2<f64>, p: &GroupParams) -> Result<Grouping, PackError> {
    p.validate()?;
    check_finite(m)?;
    let (n, t) = m.dim();
    let budget = conflict_budget(n, p.gamma);
    let nonempty: Vec<u32> = (0..n)
        .map(|r| u32::from(m.row(r).iter().any(|&w| w != 0.0)))
        .collect();
    let section = if p.section == 0 { t.max(1) } else { p.section };
    let mut out = Vec::new();
    for start in (0..t).step_by(section) {
        let mut groups: Vec<Vec<usize>> = (start..(start + section).min(t))
            .filter(|&c| m.column(c).iter().any(|&w| w != 0.0))
            .map(|c| vec![c])
            .collect();
        let mut counts: Vec<Vec<u32>> = groups
            .iter()
            .map(|g| {
                m.column(g[0])
                    .iter()
                    .map(|&w| u32::from(w != 0.0))
                    .collect()
            })
            .collect();
        loop {
            let k = groups.len();
            // (conflicts of the union, rows left empty by both) for every ordered pair.
            let mut dist = vec![(usize::MAX, usize::MAX); k * k];
            for i in 0..k {
                for j in 0..k {
                    if i == j {
                        continue;
                    }
                    let (mut conflicts, mut empty) = (0usize, 0usize);
                    for ((&a, &b), &ne) in counts[i].iter().zip(&counts[j]).zip(&nonempty) {
                        let s = a + b;
                        conflicts += s.saturating_sub(1) as usize;
                        empty += (ne * u32::from(s == 0)) as usize;
                    }
                    dist[i * k + j] = (conflicts, empty);
                }
            }
            let admissible = |i: usize, j: usize| {
                i != j
                    && groups[i].len() + groups[j].len() <= p.alpha
                    && dist[i * k + j].0 <= budget
            };
            let Some(c1) = (0..k).find(|&i| (0..k).any(|j| admissible(i, j))) else {
                break;
            };
            let c2 = (0..k)
                .filter(|&j| admissible(c1, j))
                .min_by_key(|&j| (dist[c1 * k + j].1, j))
                .expect("c1 has an admissible partner");
            let g2 = groups.remove(c2);
            let n2 = counts.remove(c2);
            let c1 = if c2 < c1 { c1 - 1 } else { c1 };
            groups[c1].extend(g2);
            for (a, b) in counts[c1].iter_mut().zip(n2) {
                *a += b;
            }
        }
        out.extend(groups);
    }
    Ok(Grouping { groups: out })
}

fn check_finite(m: ArrayView2<f64>) -> Result<(), PackError> {
    match m.indexed_iter().find(|(_, w)| !w.is_finite()) {
        Some(((row, col), _)) => Err(PackError::NonFiniteWeight { row, col }),
        None => Ok(()),
    }
}

/// Whether `a` has no more groups and no more pruned L1 than `b`.
fn no_worse(m: ArrayView2<f64>, a: &Grouping, b: &Grouping) -> bool {
    a.len() <= b.len() && combine::pruned_l1(m, &a.groups) <= combine::pruned_l1(m, &b.groups)
}

fn canonical_order(groups: &mut [Vec<usize>]) {
    for g in groups.iter_mut() {
        g.sort_unstable();
    }
    groups.sort_unstable_by_key(|g| g.first().copied());
}

/// A column's nonzeros as (row, |w|), in row order.
type Entries = Vec<(u32, f64)>;

/// The nonzero columns of one section, re-indexed `0..k` in column order.
struct Block {
    /// Original column index of each local column.
    cols: Vec<usize>,
    /// Rows of F.
    n: usize,
    rows: Vec<RowSet>,
    /// (row, |w|) of each nonzero, in row order.
    ent: Vec<Entries>,
}

impl Block {
    fn split(m: ArrayView2<f64>, section: usize) -> Vec<Block> {
        let t = m.ncols();
        let section = if section == 0 { t.max(1) } else { section };
        (0..t)
            .step_by(section)
            .map(|start| Block::new(m, start..(start + section).min(t)))
            .filter(|b| !b.cols.is_empty())
            .collect()
    }

    fn new(m: ArrayView2<f64>, range: std::ops::Range<usize>) -> Block {
        let n = m.nrows();
        let per: Vec<(usize, RowSet, Entries)> = range
            .into_par_iter()
            .filter_map(|c| {
                let col = m.column(c);
                let ent: Entries = col
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| **w != 0.0)
                    .map(|(r, w)| (r as u32, w.abs()))
                    .collect();
                if ent.is_empty() {
                    return None;
                }
                let mut rows = RowSet::new(n);
                for &(r, _) in &ent {
                    rows.insert(r as usize);
                }
                Some((c, rows, ent))
            })
            .collect();
        let mut b = Block {
            cols: Vec::with_capacity(per.len()),
            n,
            rows: Vec::with_capacity(per.len()),
            ent: Vec::with_capacity(per.len()),
        };
        for (c, rows, ent) in per {
            b.cols.push(c);
            b.rows.push(rows);
            b.ent.push(ent);
        }
        b
    }

    fn len(&self) -> usize {
        self.cols.len()
    }

    fn nnz(&self, c: usize) -> usize {
        self.ent[c].len()
    }

    fn to_original(&self, groups: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
        groups
            .into_iter()
            .map(|g| g.into_iter().map(|c| self.cols[c]).collect())
            .collect()
    }
}

/// The authors' procedure on one block, in local indices.
///
/// Restated: open a group with the first unabsorbed column and keep absorbing the
/// admissible singleton that leaves the fewest nonempty rows uncovered (ties: lowest
/// column) until none fits. This is the pairwise formulation exactly, because a closed
/// group can never become admissible again: its candidates only shrink and the
/// growing group only gains rows and conflicts.
fn reference_block(b: &Block, alpha: usize, budget: usize) -> Vec<Vec<usize>> {
    let k = b.len();
    let mut used = vec![false; k];
    let mut out = Vec::new();
    for start in 0..k {
        if used[start] {
            continue;
        }
        used[start] = true;
        let mut members = vec![start];
        let mut rows = b.rows[start].clone();
        let mut conflicts = 0usize;
        let mut cand: Vec<usize> = (start + 1..k).filter(|&i| !used[i]).collect();
        while members.len() < alpha && !cand.is_empty() {
            // Minimising the rows left empty = maximising |rows(c) \ rows(g)|. A
            // candidate over budget now stays over budget, so it is dropped for good.
            let mut best: Option<(usize, usize, usize)> = None;
            let mut kept = 0;
            for idx in 0..cand.len() {
                let c = cand[idx];
                let inter = rows.and_count(&b.rows[c]);
                if conflicts + inter > budget {
                    continue;
                }
                let new_rows = b.nnz(c) - inter;
                if best.is_none_or(|(bn, _, _)| new_rows > bn) {
                    best = Some((new_rows, kept, inter));
                }
                cand[kept] = c;
                kept += 1;
            }
            cand.truncate(kept);
            let Some((_, pos, inter)) = best else { break };
            let c = cand.remove(pos);
            used[c] = true;
            members.push(c);
            rows.union_with(&b.rows[c]);
            conflicts += inter;
        }
        out.push(members);
    }
    out
}

/// Where a local search starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// The reference grouping itself.
    Reference,
    /// [`best_fit`] with this many groups open from the start.
    BestFit(usize),
}

/// Blocks whose size·nnz is at most this refine every start and keep the best result;
/// larger ones refine only the best start (the results differ by a few per cent at
/// most, the time by the number of starts).
const MULTI_START_WORK: usize = 1 << 26;

/// `Auto` on one block: several starting groupings refined by local search; the best
/// one that is at least as good as the reference on both counts wins. Returns it and
/// the reference grouping, both in original column indices.
fn auto_block(
    m: ArrayView2<f64>,
    b: &Block,
    alpha: usize,
    budget: usize,
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let reference = reference_block(b, alpha, budget);
    if alpha == 1 {
        // Singletons only: nothing to choose.
        let r = b.to_original(reference);
        return (r.clone(), r);
    }
    let score = |g: &[Vec<usize>]| {
        let orig = b.to_original(g.to_vec());
        (orig.len(), combine::pruned_l1(m, &orig))
    };
    let (ref_len, ref_l1) = score(&reference);
    // Open-on-demand best fit aims at fewer groups where γ limits them. Where α limits
    // them it fills groups one after the other; K-bin best fit (K = the least possible
    // count, or the reference's) spreads the heavy columns over all groups, which is
    // what lowers pruned L1 there.
    let mut starts = vec![
        Start::Reference,
        Start::BestFit(0),
        Start::BestFit(b.len().div_ceil(alpha)),
        Start::BestFit(ref_len),
    ];
    starts.dedup();
    let mut built: Vec<(Vec<Vec<usize>>, f64)> = starts
        .par_iter()
        .map(|&start| match start {
            Start::Reference => (reference.clone(), ref_l1),
            Start::BestFit(bins) => best_fit(b, alpha, budget, bins),
        })
        .collect();
    let work = b.len() * b.ent.iter().map(Vec::len).sum::<usize>();
    if work > MULTI_START_WORK {
        // Stable min: the first of equal starts wins.
        let first_best = (0..built.len())
            .min_by(|&i, &j| {
                let (x, y) = (&built[i], &built[j]);
                x.0.len().cmp(&y.0.len()).then(x.1.total_cmp(&y.1))
            })
            .unwrap_or(0);
        built = vec![built.swap_remove(first_best)];
    }
    let candidates: Vec<Vec<Vec<usize>>> = built
        .into_par_iter()
        .map(|(groups, _)| {
            let mut s = Search::new(b, alpha, budget, groups);
            s.local_search(ref_l1);
            s.into_groups()
        })
        .collect();
    let mut best = None;
    let mut best_score = (ref_len, ref_l1);
    for cand in candidates {
        let s = score(&cand);
        let pareto = s.0 <= ref_len && s.1 <= ref_l1;
        let better = s.0 < best_score.0 || (s.0 == best_score.0 && s.1 < best_score.1);
        if pareto && better {
            best = Some(cand);
            best_score = s;
        }
    }
    let reference = b.to_original(reference);
    match best {
        Some(g) => (b.to_original(g), reference),
        None => (reference.clone(), reference),
    }
}

/// Magnitude-aware best fit: columns by nnz descending, each into the admissible group
/// where it adds the least pruned magnitude (ties: lowest group), else a new group.
/// `bins` empty groups are open from the start. Returns the groups (local indices)
/// and their pruned magnitude.
fn best_fit(b: &Block, alpha: usize, budget: usize, bins: usize) -> (Vec<Vec<usize>>, f64) {
    let mut order: Vec<usize> = (0..b.len()).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(b.nnz(c)), c));
    let mut groups: Vec<Group> = vec![Group::new(b.n); bins];
    // Groups with room, in index order; full groups drop out of the scan for good.
    let mut open: Vec<usize> = (0..bins).collect();
    let mut pruned = 0.0;
    for c in order {
        let mut best: Option<(f64, usize)> = None;
        for &h in &open {
            let grp = &groups[h];
            if grp.conflicts + grp.rows.and_count(&b.rows[c]) > budget {
                continue;
            }
            let cost = grp.cost(b, c);
            if best.is_none_or(|(bc, _)| cost < bc) {
                best = Some((cost, h));
            }
        }
        let h = match best {
            Some((cost, h)) => {
                pruned += cost;
                h
            }
            None => {
                groups.push(Group::new(b.n));
                open.push(groups.len() - 1);
                groups.len() - 1
            }
        };
        groups[h].push(b, c);
        if groups[h].members.len() == alpha {
            open.retain(|&x| x != h);
        }
    }
    let members = groups
        .into_iter()
        .map(|g| g.members)
        .filter(|m| !m.is_empty())
        .collect();
    (members, pruned)
}

/// Inserts `x` into `list` (sorted by (key, index), at most `cap` long) if it is among
/// the `cap` smallest.
fn keep_smallest(list: &mut Vec<(f64, usize)>, x: (f64, usize), cap: usize) {
    if list.len() < cap || x.0 < list[list.len() - 1].0 {
        let at = list.partition_point(|y| y.0 <= x.0);
        list.insert(at, x);
        list.truncate(cap);
    }
}

/// One group under local search, with the per-row top-2 magnitudes that make the
/// gain of removing a column and the cost of adding one O(nnz(column)).
#[derive(Clone)]
struct Group {
    members: Vec<usize>,
    rows: RowSet,
    /// Rows with two or more nonzeros in the group.
    multi: RowSet,
    conflicts: usize,
    max1: Vec<f64>,
    max2: Vec<f64>,
    /// Pruned L1 of the group = Σ members' L1 − Σ_r max1[r].
    pruned: f64,
}

impl Group {
    fn new(n: usize) -> Self {
        Self {
            members: Vec::new(),
            rows: RowSet::new(n),
            multi: RowSet::new(n),
            conflicts: 0,
            max1: vec![0.0; n],
            max2: vec![0.0; n],
            pruned: 0.0,
        }
    }

    fn push(&mut self, b: &Block, c: usize) {
        self.members.push(c);
        for &(r, w) in &b.ent[c] {
            let r = r as usize;
            if self.rows.contains(r) {
                self.multi.insert(r);
                self.conflicts += 1;
            } else {
                self.rows.insert(r);
            }
            let (m1, m2) = (&mut self.max1[r], &mut self.max2[r]);
            if w > *m1 {
                *m2 = *m1;
                *m1 = w;
            } else if w > *m2 {
                *m2 = w;
            }
        }
    }

    fn rebuild(&mut self, b: &Block) {
        let members = std::mem::take(&mut self.members);
        for r in self.rows.iter() {
            self.max1[r] = 0.0;
            self.max2[r] = 0.0;
        }
        self.rows.clear();
        self.multi.clear();
        self.conflicts = 0;
        for &c in &members {
            self.push(b, c);
        }
        let l1: f64 = members
            .iter()
            .flat_map(|&c| b.ent[c].iter().map(|e| e.1))
            .sum();
        let kept: f64 = self.rows.iter().map(|r| self.max1[r]).sum();
        self.pruned = l1 - kept;
        self.members = members;
    }

    /// Pruned magnitude added by putting column `c` into this group.
    #[inline]
    fn cost(&self, b: &Block, c: usize) -> f64 {
        b.ent[c]
            .iter()
            .map(|&(r, w)| w.min(self.max1[r as usize]))
            .sum()
    }

    fn fits(&self, b: &Block, c: usize, alpha: usize, budget: usize) -> bool {
        self.members.len() < alpha && self.conflicts + self.rows.and_count(&b.rows[c]) <= budget
    }
}

/// A grouping of one block being improved in place (local column indices).
struct Search<'a> {
    b: &'a Block,
    alpha: usize,
    budget: usize,
    groups: Vec<Group>,
    /// Group of each column.
    of: Vec<usize>,
    /// Pruned magnitude saved by taking each column out of its group.
    gain: Vec<f64>,
    /// conflicts(g ∖ c) for each column c in group g.
    conf_without: Vec<usize>,
    /// rows(g ∖ c) for each column c in group g.
    rows_without: Vec<RowSet>,
    /// `k x N`: for column c of group g, max |w| per row over g ∖ c. With it, the
    /// cost of another column joining g in c's place is one sparse pass.
    excl: Vec<f64>,
    /// Improvements smaller than this are noise (keeps the search from cycling).
    tol: f64,
}

/// An improving step found by the search.
#[derive(Clone, Copy, Debug)]
enum Step {
    Move { c: usize, to: usize },
    Swap { c: usize, d: usize },
}

/// Groups per column whose members are tried as swap partners: enough to find most
/// improving swaps, few enough that a pass costs
/// O(T·(G·N/64 + (SCREEN_GROUPS + SWAP_GROUPS·α)·nnz(column))).
const SWAP_GROUPS: usize = 8;
/// Groups screened by row overlap before exact costs pick the SWAP_GROUPS.
const SCREEN_GROUPS: usize = 2 * SWAP_GROUPS;
/// Upper bound on search rounds (a dissolve phase and a pass over all columns each).
const MAX_ROUNDS: usize = 40;
/// A round that lowers the pruned magnitude by less than this fraction is the last:
/// later rounds find ever smaller crumbs at the same cost.
const MIN_ROUND_GAIN: f64 = 1e-3;

impl<'a> Search<'a> {
    fn new(b: &'a Block, alpha: usize, budget: usize, groups: Vec<Vec<usize>>) -> Self {
        let k = b.len();
        let total: f64 = b.ent.iter().flatten().map(|e| e.1).sum();
        let nnz: usize = b.ent.iter().map(Vec::len).sum();
        let mut s = Search {
            b,
            alpha,
            budget,
            groups: groups
                .into_iter()
                .map(|members| Group {
                    members,
                    ..Group::new(b.n)
                })
                .collect(),
            of: vec![usize::MAX; k],
            gain: vec![0.0; k],
            conf_without: vec![0; k],
            rows_without: vec![RowSet::new(b.n); k],
            excl: vec![0.0; k * b.n],
            tol: 1e-9 * total / nnz.max(1) as f64,
        };
        for g in 0..s.groups.len() {
            s.refresh(g);
        }
        s
    }

    fn pruned(&self) -> f64 {
        self.groups.iter().map(|g| g.pruned).sum()
    }

    /// Recomputes group `g` and the per-member quantities that depend on it.
    fn refresh(&mut self, g: usize) {
        let b = self.b;
        let n = b.n;
        self.groups[g].rebuild(b);
        let grp = &self.groups[g];
        for &c in &grp.members {
            self.of[c] = g;
            self.conf_without[c] = grp.conflicts - grp.multi.and_count(&b.rows[c]);
            let rw = &mut self.rows_without[c];
            for (((o, &gr), &cr), &mu) in rw
                .words_mut()
                .iter_mut()
                .zip(grp.rows.words())
                .zip(b.rows[c].words())
                .zip(grp.multi.words())
            {
                // A row stays covered unless c was its only nonzero.
                *o = gr & !(cr & !mu);
            }
            let ex = &mut self.excl[c * n..(c + 1) * n];
            ex.copy_from_slice(&grp.max1);
            let mut gain = 0.0;
            for &(r, w) in &b.ent[c] {
                let r = r as usize;
                if w == grp.max1[r] {
                    // c holds the maximum (or ties it, and then max2 is the same value).
                    ex[r] = grp.max2[r];
                }
                gain += w.min(ex[r]);
            }
            self.gain[c] = gain;
        }
    }

    /// Pruned magnitude that `d` adds to the group of `c` once `c` has left it.
    #[inline]
    fn cost_without(&self, d: usize, c: usize) -> f64 {
        let n = self.b.n;
        let ex = &self.excl[c * n..(c + 1) * n];
        self.b.ent[d]
            .iter()
            .map(|&(r, w)| w.min(ex[r as usize]))
            .sum()
    }

    fn swap_fits(&self, c: usize, d: usize) -> bool {
        self.conf_without[c] + self.rows_without[c].and_count(&self.b.rows[d]) <= self.budget
            && self.conf_without[d] + self.rows_without[d].and_count(&self.b.rows[c]) <= self.budget
    }

    /// The best improving move or swap of column `c`, if any beats the tolerance.
    /// Ties go to the first found: moves in group order, then swaps.
    fn best_step(&self, c: usize) -> Option<(f64, Step)> {
        let b = self.b;
        let g = self.of[c];
        // A move out of a singleton empties the group: the dissolve phase's business.
        let can_move = self.groups[g].members.len() > 1;
        let mut best: Option<(f64, Step)> = None;
        let mut consider = |delta: f64, step: Step| {
            if best.is_none_or(|(bd, _)| delta < bd) {
                best = Some((delta, step));
            }
        };
        // Swap partners come from the SWAP_GROUPS groups where c would be pruned least.
        // Exact costs for every group would dominate the pass, so groups are first
        // screened by how many rows they share with c (a popcount).
        let mut screened: Vec<(f64, usize)> = Vec::with_capacity(SCREEN_GROUPS + 1);
        for (h, grp) in self.groups.iter().enumerate() {
            if h == g {
                continue;
            }
            let overlap = grp.rows.and_count(&b.rows[c]);
            if can_move && grp.members.len() < self.alpha && grp.conflicts + overlap <= self.budget
            {
                consider(grp.cost(b, c) - self.gain[c], Step::Move { c, to: h });
            }
            keep_smallest(&mut screened, (overlap as f64, h), SCREEN_GROUPS);
        }
        let mut near: Vec<(f64, usize)> = Vec::with_capacity(SWAP_GROUPS + 1);
        for &(_, h) in &screened {
            keep_smallest(&mut near, (self.groups[h].cost(b, c), h), SWAP_GROUPS);
        }
        for &(_, h) in &near {
            for &d in &self.groups[h].members {
                if !self.swap_fits(c, d) {
                    continue;
                }
                let delta =
                    self.cost_without(d, c) + self.cost_without(c, d) - self.gain[c] - self.gain[d];
                consider(delta, Step::Swap { c, d });
            }
        }
        best.filter(|x| x.0 < -self.tol)
    }

    fn apply(&mut self, step: Step) {
        match step {
            Step::Move { c, to } => {
                let from = self.of[c];
                self.groups[from].members.retain(|&x| x != c);
                self.groups[to].members.push(c);
                self.refresh(from);
                self.refresh(to);
            }
            Step::Swap { c, d } => {
                let (g, h) = (self.of[c], self.of[d]);
                for x in self.groups[g].members.iter_mut() {
                    if *x == c {
                        *x = d;
                    }
                }
                for x in self.groups[h].members.iter_mut() {
                    if *x == d {
                        *x = c;
                    }
                }
                self.refresh(g);
                self.refresh(h);
            }
        }
    }

    /// One pass over all columns, applying each column's best improving step.
    fn improve_pass(&mut self) -> bool {
        let mut changed = false;
        for c in 0..self.b.len() {
            if let Some((_, step)) = self.best_step(c) {
                self.apply(step);
                changed = true;
            }
        }
        changed
    }

    /// Tries to empty whole groups (smallest first) by moving each member to the
    /// admissible group where it costs least. A success lowers the group count; it is
    /// kept only while the total pruned magnitude stays at most `max_pruned`.
    fn dissolve_phase(&mut self, max_pruned: f64) -> bool {
        let mut changed = false;
        let mut order = self.dissolve_order();
        let mut i = 0;
        while i < order.len() {
            let victim = order[i];
            i += 1;
            if self.try_dissolve(victim, max_pruned) {
                changed = true;
                self.groups.remove(victim);
                for g in victim..self.groups.len() {
                    for &c in &self.groups[g].members {
                        self.of[c] = g;
                    }
                }
                order = self.dissolve_order();
                i = 0;
            }
        }
        changed
    }

    fn dissolve_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        order.sort_by_key(|&g| (self.groups[g].members.len(), g));
        order
    }

    fn try_dissolve(&mut self, victim: usize, max_pruned: f64) -> bool {
        let size = self.groups[victim].members.len();
        let room: usize = self
            .groups
            .iter()
            .enumerate()
            .filter(|&(h, _)| h != victim)
            .map(|(_, grp)| self.alpha - grp.members.len())
            .sum();
        if room < size {
            return false;
        }
        let mut members = self.groups[victim].members.clone();
        members.sort_by_key(|&c| (std::cmp::Reverse(self.b.nnz(c)), c));
        let mut placed = Vec::new();
        let mut ok = true;
        for c in members {
            let (b, alpha, budget) = (self.b, self.alpha, self.budget);
            let mut target: Option<(f64, usize)> = None;
            for (h, grp) in self.groups.iter().enumerate() {
                if h == victim || !grp.fits(b, c, alpha, budget) {
                    continue;
                }
                let cost = grp.cost(b, c);
                if target.is_none_or(|(bc, _)| cost < bc) {
                    target = Some((cost, h));
                }
            }
            let Some((_, h)) = target else {
                ok = false;
                break;
            };
            self.apply(Step::Move { c, to: h });
            placed.push(c);
        }
        if ok && self.pruned() <= max_pruned {
            return true;
        }
        for &c in placed.iter().rev() {
            self.apply(Step::Move { c, to: victim });
        }
        false
    }

    /// Dissolves groups and applies improving steps until a round gains (almost)
    /// nothing. Dissolving may raise the pruned total up to `max_pruned` (pass the
    /// current total or less to never trade magnitude for groups).
    fn local_search(&mut self, max_pruned: f64) {
        if self.alpha < 2 {
            return;
        }
        for _ in 0..MAX_ROUNDS {
            let before = (self.groups.len(), self.pruned());
            let limit = max_pruned.max(before.1);
            let dissolved = self.dissolve_phase(limit);
            let improved = self.improve_pass();
            let after = self.pruned();
            if !dissolved && (!improved || before.1 - after <= MIN_ROUND_GAIN * before.1) {
                break;
            }
        }
    }

    fn into_groups(self) -> Vec<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = self
            .groups
            .into_iter()
            .map(|g| g.members)
            .filter(|m| !m.is_empty())
            .collect();
        canonical_order(&mut groups);
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn budget_is_floor() {
        assert_eq!(conflict_budget(16, 0.5), 8);
        assert_eq!(conflict_budget(16, 1.75), 28);
        assert_eq!(conflict_budget(10, 0.15), 1);
        assert_eq!(conflict_budget(0, 3.0), 0);
        assert_eq!(conflict_budget(7, 0.0), 0);
    }

    #[test]
    fn strategy_names_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(s.to_string().parse::<Strategy>(), Ok(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
        }
        assert_eq!(" Best_Fit ".parse::<Strategy>(), Ok(Strategy::BestFit));
        assert_eq!(Strategy::default(), Strategy::Auto);
        assert!(matches!(
            "greedy".parse::<Strategy>(),
            Err(PackError::UnknownStrategy(s)) if s == "greedy"
        ));
    }

    #[test]
    fn bad_params_are_typed_errors() {
        let m = Array2::<f64>::ones((2, 2));
        let e = |a, g| group_columns(m.view(), &GroupParams::new(a, g)).unwrap_err();
        assert_eq!(e(0, 1.0), PackError::ZeroAlpha);
        assert_eq!(e(257, 1.0), PackError::AlphaTooLarge(257));
        assert!(matches!(e(4, -0.5), PackError::BadGamma(_)));
        assert!(matches!(e(4, f64::NAN), PackError::BadGamma(_)));
        assert!(matches!(e(4, f64::INFINITY), PackError::BadGamma(_)));
        let mut bad = Array2::<f64>::zeros((3, 3));
        bad[[1, 2]] = f64::NAN;
        assert_eq!(
            group_columns(bad.view(), &GroupParams::new(2, 1.0)).unwrap_err(),
            PackError::NonFiniteWeight { row: 1, col: 2 }
        );
    }

    #[test]
    fn empty_and_zero_matrices() {
        for shape in [(0, 0), (0, 5), (5, 0), (4, 6)] {
            let m = Array2::<f64>::zeros(shape);
            for s in Strategy::ALL {
                let g = group_columns(m.view(), &GroupParams::new(4, 1.0).with_strategy(s));
                assert_eq!(g, Ok(Grouping::default()));
            }
        }
    }

    #[test]
    fn reference_small_example() {
        // Columns 0 and 1 are disjoint, 2 overlaps both on row 0, 3 is all zero.
        let m = array![
            [1.0, 0.0, 5.0, 0.0],
            [0.0, 2.0, 0.0, 0.0],
            [3.0, 0.0, 0.0, 0.0],
        ];
        let p = GroupParams::new(2, 0.0).with_strategy(Strategy::Reference);
        let g = group_columns(m.view(), &p).unwrap();
        assert_eq!(g.groups, vec![vec![0, 1], vec![2]]);
        assert_eq!(reference_naive(m.view(), &p).unwrap(), g);
        // With one conflict allowed, 0 prefers 1 (covers all rows) over 2.
        let p = GroupParams::new(3, 0.34).with_strategy(Strategy::Reference);
        let g = group_columns(m.view(), &p).unwrap();
        assert_eq!(g.groups, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn sections_split_original_columns() {
        // Four disjoint columns; a section of 2 forbids merging across the boundary.
        let m = Array2::from_shape_fn((4, 4), |(r, c)| if r == c { 1.0 } else { 0.0 });
        let p = GroupParams::new(4, 0.0)
            .with_strategy(Strategy::Reference)
            .with_section(2);
        assert_eq!(
            group_columns(m.view(), &p).unwrap().groups,
            vec![vec![0, 1], vec![2, 3]]
        );
        assert_eq!(
            group_columns(m.view(), &p.with_section(0)).unwrap().groups,
            vec![vec![0, 1, 2, 3]]
        );
    }

    #[test]
    fn auto_lowers_pruned_magnitude_when_it_can() {
        // Reference pairs 0 with 1 (first of equals); pairing 0 with 2 prunes less.
        let m = array![[1.0, 5.0, 0.1]];
        let base = GroupParams::new(2, 1.0);
        let r = group_columns(m.view(), &base.with_strategy(Strategy::Reference)).unwrap();
        let a = group_columns(m.view(), &base).unwrap();
        let pr = combine::pruned_l1(m.view(), &r.groups);
        let pa = combine::pruned_l1(m.view(), &a.groups);
        assert_eq!(a.len(), r.len());
        assert!(pa < pr, "auto {pa} reference {pr}");
    }
}

#[cfg(test)]
mod proptests {
    use super::Strategy;
    use super::*;
    use crate::pack::combine::{combine, group_conflicts};
    use ndarray::Array2;
    use proptest::prelude::*;
    use proptest::strategy::Strategy as _;

    /// A sparse N x T matrix with a random density; magnitudes come partly from a tiny
    /// set so that ties (kept-weight and merge-metric) are common.
    fn matrix() -> impl proptest::strategy::Strategy<Value = Array2<f64>> {
        (1usize..28, 1usize..36, 0.0f64..1.0).prop_flat_map(|(n, t, density)| {
            let entry = (
                0.0f64..1.0,
                prop_oneof![
                    Just(1.0),
                    Just(-1.0),
                    Just(0.5),
                    (-3.0f64..3.0).prop_filter("nonzero", |v| *v != 0.0)
                ],
            );
            proptest::collection::vec(entry, n * t).prop_map(move |v| {
                Array2::from_shape_fn((n, t), |(r, c)| {
                    let (u, w) = v[r * t + c];
                    if u < density { w } else { 0.0 }
                })
            })
        })
    }

    fn params() -> impl proptest::strategy::Strategy<Value = (usize, f64, usize)> {
        (
            1usize..=16,
            0.0f64..3.0,
            prop_oneof![Just(0usize), 1usize..12],
        )
    }

    fn check_valid(m: &Array2<f64>, g: &Grouping, p: &GroupParams) -> Result<(), TestCaseError> {
        let (n, t) = m.dim();
        let budget = conflict_budget(n, p.gamma);
        let nonzero: Vec<usize> = (0..t)
            .filter(|&c| m.column(c).iter().any(|&w| w != 0.0))
            .collect();
        let mut seen: Vec<usize> = g.groups.iter().flatten().copied().collect();
        seen.sort_unstable();
        prop_assert_eq!(&seen, &nonzero, "not a partition of the nonzero columns");
        for members in &g.groups {
            prop_assert!(!members.is_empty() && members.len() <= p.alpha);
            prop_assert!(group_conflicts(m.view(), members) <= budget);
            if let Some(block) = members[0].checked_div(p.section) {
                prop_assert!(members.iter().all(|&c| c / p.section == block));
            }
        }
        Ok(())
    }

    fn check_combined(m: &Array2<f64>, g: &Grouping) -> Result<(), TestCaseError> {
        let c = combine(m.view(), g);
        let s = &c.stats;
        prop_assert_eq!(s.nnz_after + s.pruned_count, s.nnz_before);
        prop_assert_eq!(s.groups, g.len());
        prop_assert_eq!(s.nonzero_columns, g.column_count());
        let mut kept_l1 = 0.0;
        for (gi, members) in g.groups.iter().enumerate() {
            let mut conflicts = 0;
            for r in 0..m.nrows() {
                let nz: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&k| m[[r, k]] != 0.0)
                    .collect();
                conflicts += nz.len().saturating_sub(1);
                // The kept weight: largest |w|, lowest column on ties.
                let expect = nz
                    .iter()
                    .copied()
                    .min_by(|&a, &b| m[[r, b]].abs().total_cmp(&m[[r, a]].abs()).then(a.cmp(&b)));
                prop_assert_eq!(c.source[[r, gi]], expect);
                match expect {
                    Some(k) => {
                        prop_assert_eq!(c.weights[[r, gi]], m[[r, k]]);
                        prop_assert_eq!(members[c.selector[[r, gi]] as usize], k);
                        kept_l1 += m[[r, k]].abs();
                    }
                    None => {
                        prop_assert_eq!(c.weights[[r, gi]], 0.0);
                        prop_assert_eq!(c.selector[[r, gi]], 0);
                    }
                }
            }
            prop_assert_eq!(s.conflicts[gi], conflicts);
        }
        let expect = s.total_l1 - kept_l1;
        prop_assert!((s.pruned_l1 - expect).abs() <= 1e-9 * (1.0 + s.total_l1));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_strategy_is_valid_and_deterministic(
            m in matrix(), (alpha, gamma, section) in params()
        ) {
            for s in Strategy::ALL {
                let p = GroupParams { alpha, gamma, section, strategy: s };
                let g = group_columns(m.view(), &p).unwrap();
                check_valid(&m, &g, &p)?;
                check_combined(&m, &g)?;
                prop_assert_eq!(&group_columns(m.view(), &p).unwrap(), &g, "{} not deterministic", s);
            }
        }

        #[test]
        fn reference_equals_naive_restatement(
            m in matrix(), (alpha, gamma, section) in params()
        ) {
            let p = GroupParams { alpha, gamma, section, strategy: Strategy::Reference };
            prop_assert_eq!(group_columns(m.view(), &p).unwrap(), reference_naive(m.view(), &p).unwrap());
        }

        #[test]
        fn auto_is_never_worse_than_reference(
            m in matrix(), (alpha, gamma, section) in params()
        ) {
            let p = GroupParams { alpha, gamma, section, strategy: Strategy::Reference };
            let r = combine(m.view(), &group_columns(m.view(), &p).unwrap()).stats;
            let a = group_columns(m.view(), &p.with_strategy(Strategy::Auto)).unwrap();
            let a = combine(m.view(), &a).stats;
            prop_assert!(a.groups <= r.groups);
            prop_assert!(a.pruned_l1 <= r.pruned_l1, "auto {} > reference {}", a.pruned_l1, r.pruned_l1);
        }
    }

    #[test]
    fn auto_measurably_beats_reference_on_a_random_layer() {
        // Deterministic pseudo-random 96 x 160, density ~0.3 (no RNG crate needed).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let m = Array2::from_shape_simple_fn((96, 160), || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            if u < 0.3 { u - 0.15 } else { 0.0 }
        });
        let p = GroupParams::new(8, 1.75);
        let r = combine(
            m.view(),
            &group_columns(m.view(), &p.with_strategy(Strategy::Reference)).unwrap(),
        )
        .stats;
        let a = combine(m.view(), &group_columns(m.view(), &p).unwrap()).stats;
        assert!(a.groups <= r.groups);
        assert!(
            a.pruned_l1 < 0.97 * r.pruned_l1,
            "auto {} vs reference {}",
            a.pruned_l1,
            r.pruned_l1
        );
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let mut x: u64 = 12345;
        let m = Array2::from_shape_simple_fn((64, 300), || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            if u < 0.2 { u - 0.1 } else { 0.0 }
        });
        for s in Strategy::ALL {
            let p = GroupParams::new(6, 1.0).with_strategy(s).with_section(128);
            let run = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| group_columns(m.view(), &p).unwrap())
            };
            assert_eq!(run(1), run(3), "{s}");
        }
    }
}
