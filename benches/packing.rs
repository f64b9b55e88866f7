//! Column grouping speed: the authors' procedure restated naively vs `Reference`
//! (same result, bitsets + popcount) vs the default `Auto`, on seeded random matrices.
//!
//! `cargo bench --bench packing`

use std::hint::black_box;
use std::time::Duration;

use ccc::pack::group::{GroupParams, Strategy, group_columns, reference_naive};
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Each entry nonzero with probability `density`, value uniform in ±[0.01, 1).
fn random_sparse(rows: usize, cols: usize, density: f64, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || {
        if rng.random_bool(density) {
            let mag = rng.random_range(0.01..1.0);
            if rng.random_bool(0.5) { mag } else { -mag }
        } else {
            0.0
        }
    })
}

fn bench_512(c: &mut Criterion) {
    let m = random_sparse(512, 512, 0.3, 42);
    let p = GroupParams::new(8, 1.75);
    let mut g = c.benchmark_group("group 512x512 d0.3 a8 g1.75");
    g.sample_size(20);
    g.bench_function("reference", |b| {
        let p = p.with_strategy(Strategy::Reference);
        b.iter(|| group_columns(black_box(m.view()), &p).expect("valid params"))
    });
    g.bench_function("auto", |b| {
        b.iter(|| group_columns(black_box(m.view()), &p).expect("valid params"))
    });
    // About ten seconds per run: criterion's minimum of ten samples.
    g.sample_size(10).measurement_time(Duration::from_secs(100));
    g.bench_function("naive", |b| {
        let p = p.with_strategy(Strategy::Reference);
        b.iter(|| reference_naive(black_box(m.view()), &p).expect("valid params"))
    });
    g.finish();
}

fn bench_2048(c: &mut Criterion) {
    // The naive restatement is left out here: it would take minutes per run.
    let m = random_sparse(2048, 2048, 0.3, 43);
    let p = GroupParams::new(8, 1.75);
    let mut g = c.benchmark_group("group 2048x2048 d0.3 a8 g1.75");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("reference", |b| {
        let p = p.with_strategy(Strategy::Reference);
        b.iter(|| group_columns(black_box(m.view()), &p).expect("valid params"))
    });
    g.bench_function("auto", |b| {
        b.iter(|| group_columns(black_box(m.view()), &p).expect("valid params"))
    });
    g.finish();
}

criterion_group!(benches, bench_512, bench_2048);
criterion_main!(benches);
