//! Compares the grouping strategies on seeded random sparse matrices and prints a
//! markdown table: groups, pruned weights, pruned L1 fraction and wall time.
//!
//! `cargo run --release --example strategy_compare [-- --quick]`
//!
//! Two kinds of matrix: `bern` (each entry nonzero with probability d, Gaussian value)
//! and `pruned` (a Gaussian matrix with per-filter and per-tap scales, magnitude-pruned
//! to density d, as a trained layer after pruning looks).

use std::time::Instant;

use ccc::pack::combine::combine;
use ccc::pack::group::{GroupParams, Strategy, group_columns};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy)]
enum Kind {
    Bern,
    Pruned,
}

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u: f64 = rng.random();
    let v: f64 = rng.random();
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn matrix(kind: Kind, rows: usize, cols: usize, density: f64, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match kind {
        Kind::Bern => Array2::from_shape_simple_fn((rows, cols), || {
            if rng.random_bool(density) {
                gaussian(&mut rng)
            } else {
                0.0
            }
        }),
        Kind::Pruned => {
            let rs: Vec<f64> = (0..rows).map(|_| 0.5 + rng.random::<f64>()).collect();
            let cs: Vec<f64> = (0..cols)
                .map(|_| 0.25 + 1.5 * rng.random::<f64>())
                .collect();
            let mut m = Array2::from_shape_fn((rows, cols), |(r, c)| rs[r] * cs[c])
                .mapv(|s| s * gaussian(&mut rng));
            let mut mags: Vec<f64> = m.iter().map(|w| w.abs()).collect();
            mags.sort_by(|a, b| b.total_cmp(a));
            let keep = ((density * mags.len() as f64).round() as usize).max(1);
            let threshold = mags[keep - 1];
            m.mapv_inplace(|w| if w.abs() >= threshold { w } else { 0.0 });
            m
        }
    }
}

struct Row {
    label: String,
    nnz: usize,
    cols: usize,
    results: Vec<(Strategy, usize, usize, f64, f64)>,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // (kind, rows, cols, density, alpha, gamma, section)
    let mut grid: Vec<(Kind, usize, usize, f64, usize, f64, usize)> = vec![
        (Kind::Bern, 512, 512, 0.3, 8, 1.75, 0),
        (Kind::Bern, 512, 512, 0.3, 8, 0.5, 0),
        (Kind::Bern, 512, 512, 0.1, 8, 1.75, 0),
        (Kind::Bern, 512, 512, 0.1, 16, 0.5, 0),
        (Kind::Pruned, 512, 512, 0.3, 8, 1.75, 0),
        (Kind::Pruned, 256, 1152, 0.125, 8, 1.75, 0),
        (Kind::Pruned, 256, 1152, 0.125, 8, 0.5, 0),
        (Kind::Pruned, 128, 576, 0.05, 16, 0.25, 0),
        (Kind::Pruned, 64, 128, 0.2, 4, 1.0, 0),
        (Kind::Pruned, 512, 4608, 0.1, 8, 1.75, 0),
        (Kind::Pruned, 512, 4608, 0.1, 8, 1.75, 256),
    ];
    if !quick {
        grid.push((Kind::Bern, 2048, 2048, 0.3, 8, 1.75, 0));
    }
    let strategies = Strategy::ALL;
    let mut rows = Vec::new();
    for (i, &(kind, n, t, d, alpha, gamma, section)) in grid.iter().enumerate() {
        let m = matrix(kind, n, t, d, 1000 + i as u64);
        let name = match kind {
            Kind::Bern => "bern",
            Kind::Pruned => "pruned",
        };
        let mut row = Row {
            label: if section > 0 {
                format!("{name} {n}x{t} d{d} α{alpha} γ{gamma} s{section}")
            } else {
                format!("{name} {n}x{t} d{d} α{alpha} γ{gamma}")
            },
            nnz: 0,
            cols: 0,
            results: Vec::new(),
        };
        for s in strategies {
            let p = GroupParams::new(alpha, gamma)
                .with_strategy(s)
                .with_section(section);
            let start = Instant::now();
            let g = group_columns(m.view(), &p).expect("valid parameters");
            let secs = start.elapsed().as_secs_f64();
            let st = combine(m.view(), &g).stats;
            row.nnz = st.nnz_before;
            row.cols = st.nonzero_columns;
            row.results
                .push((s, st.groups, st.pruned_count, st.pruned_l1_fraction(), secs));
        }
        rows.push(row);
    }
    print!("| matrix | nnz | cols |");
    for s in strategies {
        print!(" {s} groups | {s} pruned | {s} L1 % | {s} ms |");
    }
    println!();
    print!("|---|---:|---:|");
    for _ in strategies {
        print!("---:|---:|---:|---:|");
    }
    println!();
    for r in &rows {
        print!("| {} | {} | {} |", r.label, r.nnz, r.cols);
        for &(_, groups, pruned, l1, secs) in &r.results {
            print!(
                " {groups} | {pruned} | {:.3} | {:.1} |",
                100.0 * l1,
                1e3 * secs
            );
        }
        println!();
    }
}
