//! Network-level invariants of packing, as property tests over random shift-CNNs
//! written in the real model format.

mod common;

use ccc::compile::{self, CompileOptions, packed_safetensors};
use ccc::pack::group::{Strategy as PackStrategy, conflict_budget};
use ccc::pack::network::apply_permutation;
use ccc::reference::run_float;
use ccc::testgen::{self, BlockSpec, GenDtype, GenSpec, StemSpec};
use proptest::prelude::*;

fn spec_strategy() -> impl Strategy<Value = (GenSpec, Vec<usize>, f64, PackStrategy, usize, usize)>
{
    (
        any::<u64>(),
        1usize..=3,
        6usize..=12,
        prop::collection::vec((2usize..=20, 1usize..=2, 1usize..=9), 1..=3),
        0.05f64..0.9,
        0.0f64..2.5,
        prop_oneof![Just(PackStrategy::Reference), Just(PackStrategy::Auto)],
        1usize..=9,
        1usize..=9,
        any::<bool>(),
    )
        .prop_map(
            |(seed, ch, side, blocks, density, gamma, strategy, rows, cols, stem)| {
                let alphas: Vec<usize> = std::iter::once(1)
                    .filter(|_| stem)
                    .chain(blocks.iter().map(|b| b.2))
                    .collect();
                let spec = GenSpec {
                    name: "prop".into(),
                    channels: ch,
                    height: side,
                    width: side + 1,
                    classes: 4,
                    stem: stem.then_some(StemSpec {
                        out: 5,
                        k: 3,
                        stride: 1,
                        padding: 1,
                    }),
                    blocks: blocks
                        .iter()
                        .map(|&(out, stride, _)| BlockSpec::shift(out, stride, None))
                        .collect(),
                    density,
                    batchnorm: seed % 2 == 0,
                    relu6: seed % 3 != 0,
                    gamma: None,
                    dtype: GenDtype::F32,
                    seed,
                    head: match seed % 5 {
                        1 => vec![7],
                        3 => vec![5, 3],
                        _ => Vec::new(),
                    },
                };
                (spec, alphas, gamma, strategy, rows, cols)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn packing_invariants_hold_and_nothing_but_combining_changes_outputs(
        (spec, alphas, gamma, strategy, rows, cols) in spec_strategy()
    ) {
        let d = tempfile::tempdir().unwrap();
        let m = common::write_model(d.path(), "m.safetensors", &spec);
        let o = CompileOptions {
            rows,
            cols,
            alpha: Some(alphas.clone()),
            gamma: Some(gamma),
            strategy,
            rtl: false,
            ..CompileOptions::default()
        };
        let c = compile::compile(&m, &o).unwrap();
        for ((pl, ql), &alpha) in c.packed.layers.iter().zip(&c.qnet.layers).zip(&alphas) {
            let n = ql.weight.nrows();
            let budget = conflict_budget(n, gamma);
            let mut seen = vec![false; ql.weight.ncols()];
            for group in &pl.groups {
                // Groups hold at most α columns, each nonzero column exactly once.
                prop_assert!(!group.is_empty() && group.len() <= alpha);
                let mut conflicts = 0;
                for r in 0..n {
                    let nz = group.iter().filter(|&&col| ql.weight[[r, col]] != 0).count();
                    conflicts += nz.saturating_sub(1);
                }
                prop_assert!(conflicts <= budget, "conflicts {conflicts} > budget {budget}");
                for &col in group {
                    prop_assert!(!seen[col]);
                    seen[col] = true;
                }
            }
            for (col, &grouped) in seen.iter().enumerate() {
                let nonzero = ql.weight.column(col).iter().any(|&v| v != 0);
                prop_assert_eq!(grouped, nonzero);
            }
            // After combining, each (row, group) keeps at most one weight: the decoded
            // matrix has at most one nonzero per row inside each group's tap range.
            let dec = pl.decode();
            for r in 0..n {
                for g in 0..pl.groups_len() {
                    let k = (pl.group_offsets[g]..pl.group_offsets[g + 1])
                        .filter(|&t| dec[[r, t]] != 0)
                        .count();
                    prop_assert!(k <= 1);
                }
            }
            prop_assert_eq!(pl.stats.nnz_after + pl.stats.pruned_count, pl.stats.nnz_before);
        }
        // Row permutation changes no integer output (dumps compared in model order) and
        // no float output.
        let perms: Vec<Vec<usize>> = c.packed.layers.iter().map(|l| l.row_perm.clone()).collect();
        let mut identity = c.packed.clone();
        apply_permutation(&mut identity, &perms.iter().map(|p| ccc::lower::invert(p)).collect::<Vec<_>>());
        let (a, b) = (c.packed.reference(), identity.reference());
        let float_perm = c.lowered.permuted(&perms);
        for s in 0..2 {
            let img = testgen::random_image(spec.channels, spec.height, spec.width, s);
            prop_assert_eq!(a.run_model_order(&img, true), b.run(&img, true));
            prop_assert_eq!(run_float(&c.lowered, &img), run_float(&float_perm, &img));
        }
        // Determinism: compiling again gives byte-identical packed output.
        let again = compile::compile(&m, &o).unwrap();
        prop_assert_eq!(
            packed_safetensors(&c.packed, c.schedule.array).unwrap(),
            packed_safetensors(&again.packed, again.schedule.array).unwrap()
        );
        prop_assert_eq!(c.report.to_json(), again.report.to_json());
    }
}

/// Networks with KxK convs after the first layer: (spec, rows, cols).
fn kxk_strategy() -> impl Strategy<Value = (GenSpec, usize, usize)> {
    (
        any::<u64>(),
        1usize..=2,
        5usize..=9,
        prop::collection::vec((2usize..=9, 1usize..=2, 1usize..=4, 0usize..=2), 1..=3),
        0.2f64..0.9,
        1usize..=6,
        1usize..=6,
    )
        .prop_map(|(seed, ch, side, blocks, density, rows, cols)| {
            // Maps stay at least 3x3 (a shift of one must not move a whole map out of
            // view): a block that would shrink them below that becomes a stride-1 shift
            // block.
            let (mut h, mut w) = (side, side + 2);
            let blocks: Vec<BlockSpec> = blocks
                .iter()
                .map(|&(out, stride, k, pad)| {
                    let pad = pad.min(k - 1);
                    let b = BlockSpec {
                        k,
                        padding: if k > 1 { pad } else { 0 },
                        ..BlockSpec::shift(out, stride, None)
                    };
                    let span =
                        |n: usize| (n + 2 * b.padding).checked_sub(b.k).map(|v| v / stride + 1);
                    let b = match (span(h), span(w)) {
                        (Some(ho), Some(wo)) if ho >= 3 && wo >= 3 => b,
                        _ => BlockSpec::shift(out, 1, None),
                    };
                    let span = |n: usize| (n + 2 * b.padding - b.k) / b.stride + 1;
                    (h, w) = (span(h), span(w));
                    b
                })
                .collect();
            let spec = GenSpec {
                name: "kxk".into(),
                channels: ch,
                height: side,
                width: side + 2,
                classes: 3,
                stem: Some(StemSpec {
                    out: 4,
                    k: 3,
                    stride: 1,
                    padding: 1,
                }),
                blocks,
                density,
                batchnorm: seed % 2 == 0,
                relu6: true,
                gamma: None,
                dtype: GenDtype::F32,
                seed,
                head: match seed % 5 {
                    1 => vec![7],
                    3 => vec![5, 3],
                    _ => Vec::new(),
                },
            };
            (spec, rows, cols)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    /// A KxK conv after the first layer reads a channel through several taps; the packer
    /// gives each tap a row of its own (copies of the filter), and nothing else changes:
    /// every tap reads its own row, a copy holds its filter's weights, bias and values, and
    /// uncombined (α 1, γ 0) the network's outputs equal the quantized model's.
    #[test]
    fn row_copies_give_every_tap_its_own_row_and_change_no_output(
        (spec, rows, cols) in kxk_strategy()
    ) {
        let d = tempfile::tempdir().unwrap();
        let m = common::write_model(d.path(), "m.safetensors", &spec);
        let layers = 1 + spec.blocks.len();
        let o = CompileOptions {
            rows,
            cols,
            alpha: Some(vec![1; layers]),
            gamma: Some(0.0),
            rtl: false,
            ..CompileOptions::default()
        };
        let c = compile::compile(&m, &o).unwrap();
        let net = &c.packed;
        for l in 0..net.layers.len() {
            let pl = &net.layers[l];
            prop_assert_eq!(pl.filters(), c.qnet.layers[l].output.c);
            if let Some(next) = net.layers.get(l + 1) {
                prop_assert_eq!(next.input.c, pl.rows());
                for us in next.readers(pl.rows()) {
                    prop_assert!(us.len() <= 1, "a row read by {} taps", us.len());
                }
            }
            for r in 0..pl.rows() {
                let first = pl.row_perm.iter().position(|&o| o == pl.row_perm[r]).unwrap();
                prop_assert_eq!(pl.is_copy(r), first != r);
                prop_assert_eq!(pl.weight.row(r), pl.weight.row(first));
                prop_assert_eq!(pl.bias[r], pl.bias[first]);
            }
        }
        let reference = net.reference();
        for s in 0..2 {
            let img = testgen::random_image(spec.channels, spec.height, spec.width, s);
            let packed = reference.run(&img, true);
            for (map, pl) in packed.layers.iter().zip(&net.layers) {
                for r in 0..pl.rows() {
                    let first = pl.row_perm.iter().position(|&o| o == pl.row_perm[r]).unwrap();
                    prop_assert_eq!(map.index_axis(ndarray::Axis(0), r), map.index_axis(ndarray::Axis(0), first));
                }
            }
            let model = c.qnet.run(&img, false);
            prop_assert_eq!(&packed.logits, &model.logits);
            prop_assert_eq!(packed.class, model.class);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// A decomposed conv (kernel decomposition) lowered as basis + coefficient stages
    /// computes in float exactly what its expanded KxK conv computes; its basis stage, block
    /// diagonal, combines at the layer's α without pruning anything; and uncombined (α 1,
    /// γ 0) the packed network's integers equal the quantized model's, the basis stage's
    /// zero point folded into the next bias included.
    #[test]
    fn decomposed_convs_equal_their_expanded_conv_and_pack_cleanly(
        ((mut spec, rows, cols), bases, alpha) in (kxk_strategy(), 1usize..=4, 2usize..=4)
    ) {
        let mut any = false;
        for b in spec.blocks.iter_mut().filter(|b| b.k > 1) {
            b.bases = bases;
            b.alpha = Some(alpha);
            any = true;
        }
        prop_assume!(any);
        let d = tempfile::tempdir().unwrap();
        let m = common::write_model(d.path(), "m.safetensors", &spec);
        let o = CompileOptions { rows, cols, rtl: false, ..CompileOptions::default() };
        let c = compile::compile(&m, &o).unwrap();
        let alt = c.alternative.as_ref().expect("the other mapping");
        prop_assert_eq!(alt.lowered.decomposition, ccc::lower::Decomposition::Expanded);
        for s in 0..2 {
            let img = testgen::random_image(spec.channels, spec.height, spec.width, s);
            let (a, b) = (run_float(&c.lowered, &img), run_float(&alt.lowered, &img));
            for (x, y) in a.iter().zip(&b) {
                prop_assert!((x - y).abs() <= 1e-9 * (1.0 + y.abs()), "stages {x} vs expanded {y}");
            }
        }
        for (pl, ql) in c.packed.layers.iter().zip(&c.qnet.layers) {
            if ql.act == ccc::lower::Activation::Offset {
                prop_assert_eq!(pl.stats.pruned_count, 0, "basis stage `{}` pruned", ql.weight_name);
            }
        }
        let layers = c.lowered.layers.len();
        let plain = compile::compile(
            &m,
            &CompileOptions { alpha: Some(vec![1; layers]), gamma: Some(0.0), ..o },
        )
        .unwrap();
        let reference = plain.packed.reference();
        for s in 0..2 {
            let img = testgen::random_image(spec.channels, spec.height, spec.width, s);
            let model = plain.qnet.run(&img, false);
            let packed = reference.run(&img, false);
            prop_assert_eq!(&packed.logits, &model.logits);
        }
    }
}
