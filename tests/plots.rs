//! The pictures and SCALE-Sim topologies `ccc compile` writes: every SVG renders to
//! pixels (resvg) at the size it states and is not blank, the bytes are deterministic,
//! and the topologies hold the packed network's GEMM shapes.

mod common;

use std::path::Path;

use ccc::compile::{self, CompileOptions};
use ccc::output::OutDir;
use ccc::testgen::{BlockSpec, GenSpec, StemSpec};

/// Renders `text` and returns (stated size, rendered size, share of non-white pixels).
/// With CCC_PLOTS_PNG=DIR the picture is also written there as PNG, to look at.
fn render(name: &str, text: &str) -> ((u32, u32), (u32, u32), f64) {
    let stated = |attr: &str| -> u32 {
        let at = text
            .find(&format!("{attr}=\""))
            .unwrap_or_else(|| panic!("{name}: no {attr}"));
        let rest = &text[at + attr.len() + 2..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    let size = (stated("width"), stated("height"));
    let tree = resvg::usvg::Tree::from_str(text, &resvg::usvg::Options::default())
        .unwrap_or_else(|e| panic!("{name} does not parse as SVG: {e}"));
    let s = tree.size().to_int_size();
    let mut pix = resvg::tiny_skia::Pixmap::new(s.width(), s.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::identity(),
        &mut pix.as_mut(),
    );
    let inked = pix
        .pixels()
        .iter()
        .filter(|p| (p.red(), p.green(), p.blue()) != (255, 255, 255) && p.alpha() > 0)
        .count();
    if let Some(dir) = std::env::var_os("CCC_PLOTS_PNG") {
        let png = Path::new(&dir).join(name.replace(".svg", ".png"));
        pix.save_png(&png).unwrap();
    }
    (
        size,
        (s.width(), s.height()),
        inked as f64 / pix.pixels().len() as f64,
    )
}

fn spec() -> GenSpec {
    GenSpec {
        name: "plots".into(),
        channels: 1,
        height: 10,
        width: 9,
        classes: 4,
        stem: Some(StemSpec {
            out: 6,
            k: 3,
            stride: 1,
            padding: 1,
        }),
        blocks: vec![
            BlockSpec::shift(20, 2, Some(4)),
            BlockSpec::shift(12, 1, Some(3)),
        ],
        density: 0.35,
        gamma: Some(1.0),
        ..GenSpec::small(3)
    }
}

fn compile_to(dir: &Path, model: &Path) -> std::path::PathBuf {
    let o = CompileOptions {
        rows: 4,
        cols: 4,
        rtl: false,
        ..CompileOptions::default()
    };
    let c = compile::compile(model, &o).unwrap();
    let out = dir.join("out");
    let staged = OutDir::begin(&out).unwrap();
    compile::write_outputs(&c, &staged, false).unwrap();
    staged.commit().unwrap()
}

#[test]
fn every_plot_renders_at_its_size_and_is_deterministic() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &spec());
    let a = compile_to(&d.path().join("a"), &m);
    let b = compile_to(&d.path().join("b"), &m);
    let mut names: Vec<String> = std::fs::read_dir(a.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cycles.svg",
            "layer0-matrix.svg",
            "layer1-matrix.svg",
            "layer2-matrix.svg",
            "utilization.svg"
        ]
    );
    for n in &names {
        let text = std::fs::read_to_string(a.join("plots").join(n)).unwrap();
        let again = std::fs::read_to_string(b.join("plots").join(n)).unwrap();
        assert!(text == again, "{n}: two compiles gave different bytes");
        let (stated, rendered, inked) = render(n, &text);
        assert_eq!(
            stated, rendered,
            "{n}: rendered at another size than it states"
        );
        assert!(stated.0 >= 400 && stated.1 >= 150, "{n}: {stated:?}");
        assert!(
            inked > 0.01,
            "{n}: only {:.3}% of the pixels are drawn",
            inked * 100.0
        );
    }
    // The matrix of a combined layer marks the packed matrix's tiles and reports pruning.
    let l1 = std::fs::read_to_string(a.join("plots/layer1-matrix.svg")).unwrap();
    assert!(l1.contains("pruned by combining"), "{l1}");
    assert!(
        l1.contains("stroke=\"#FF7F0E\""),
        "no tile outline in layer1-matrix.svg"
    );
}

#[test]
fn the_sweep_plot_and_the_docs_example_render() {
    let d = tempfile::tempdir().unwrap();
    let docs = common::repo().join("docs");
    std::fs::copy(docs.join("sweep/sweep.json"), d.path().join("sweep.json")).unwrap();
    ccc::train::sweep::replot(d.path()).unwrap();
    let text = std::fs::read_to_string(d.path().join("sweep.svg")).unwrap();
    let (stated, rendered, inked) = render("sweep.svg", &text);
    assert_eq!(stated, rendered);
    assert_eq!(stated, (900, 420));
    assert!(inked > 0.01, "sweep.svg is blank");
    assert!(
        text == std::fs::read_to_string(docs.join("sweep/sweep.svg")).unwrap(),
        "docs/sweep/sweep.svg is stale: run `ccc sweep-plot docs/sweep`"
    );
    let example = std::fs::read_to_string(docs.join("plots/layer2-matrix.svg")).unwrap();
    let (stated, rendered, inked) = render("docs-layer2-matrix.svg", &example);
    assert_eq!(stated, rendered);
    assert!(inked > 0.01, "docs/plots/layer2-matrix.svg is blank");
}

#[test]
fn scalesim_topologies_hold_the_gemm_shapes() {
    let d = tempfile::tempdir().unwrap();
    let m = common::write_model(d.path(), "m.safetensors", &spec());
    let out = compile_to(d.path(), &m);
    let c = compile::compile(
        &m,
        &CompileOptions {
            rows: 4,
            cols: 4,
            rtl: false,
            ..CompileOptions::default()
        },
    )
    .unwrap();
    let dense = std::fs::read_to_string(out.join("scalesim/dense.csv")).unwrap();
    let packed = std::fs::read_to_string(out.join("scalesim/packed.csv")).unwrap();
    for (text, form) in [(&dense, "dense"), (&packed, "packed")] {
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("Layer, M, N, K,"));
        for (i, (line, l)) in lines.zip(&c.packed.layers).enumerate() {
            let k = if form == "dense" {
                l.taps_total
            } else {
                l.groups_len()
            };
            assert_eq!(
                line,
                format!("layer{i}, {}, {}, {k},", l.output.pixels(), l.rows()),
                "{form} row {i}"
            );
        }
    }
    assert_eq!(dense.lines().count(), c.packed.layers.len() + 1);
    // Column combining shrinks K wherever α > 1.
    assert_ne!(dense, packed);
    let cfg = std::fs::read_to_string(out.join("scalesim/scale.cfg")).unwrap();
    assert!(
        cfg.contains("ArrayHeight:    4") && cfg.contains("Dataflow : ws"),
        "{cfg}"
    );
}

#[test]
fn the_comparison_table_and_plot() {
    use ccc::compare::{Entry, compare, markdown, plot};
    let d = tempfile::tempdir().unwrap();
    let a = common::write_model(d.path(), "a.safetensors", &spec());
    let b = common::write_model(
        d.path(),
        "b.safetensors",
        &GenSpec {
            density: 0.2,
            ..spec()
        },
    );
    let images: Vec<Vec<u8>> = (0..12)
        .map(|i| ccc::testgen::random_image(1, 10, 9, 500 + i))
        .collect();
    let test = ccc::dataset::Dataset {
        channels: 1,
        height: 10,
        width: 9,
        labels: (0..12).map(|i| (i % 4) as u8).collect(),
        images,
    };
    // Kernel decomposition: a 3x3 block as 2 basis kernels and coefficients.
    let dec = common::write_model(
        d.path(),
        "dec.safetensors",
        &GenSpec {
            blocks: vec![BlockSpec {
                k: 3,
                padding: 1,
                bases: 2,
                ..BlockSpec::shift(12, 1, Some(3))
            }],
            ..spec()
        },
    );
    let entries: Vec<Entry> = vec![
        format!("sparse={}", a.display()).parse().unwrap(),
        format!("sparser={}", b.display()).parse().unwrap(),
        format!("dec={}", dec.display()).parse().unwrap(),
    ];
    let opts = CompileOptions {
        rows: 4,
        cols: 4,
        ..CompileOptions::default()
    };
    let fam = ccc::fit::Family::Ecp5;
    let rows = compare(&entries, &opts, &test, "synthetic", fam).unwrap();
    // The decomposed model in both mappings.
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2].label, "dec (stages)");
    assert_eq!(rows[3].label, "dec (expanded)");
    // One budget, two hardware costs: the basis kernels count once as weights, but the
    // basis stage repeats them per channel.
    assert_eq!(rows[2].weights, rows[3].weights);
    let net = ccc::model::load(&dec, None).unwrap();
    let ccc::model::Op::DecomposedConv(dc) = &net.layers[3].op else {
        panic!("layer 3 is the decomposed conv")
    };
    let stem = 6 * 9;
    let nz = dc.coeff.iter().filter(|&&v| v != 0.0).count();
    assert_eq!(rows[2].weights, stem + nz + 2 * 9);
    // Each row is what `ccc compile` reports for that model.
    for (r, m) in rows.iter().zip([&a, &b]) {
        let c = compile::compile(m, &opts).unwrap();
        assert_eq!(r.tiles, c.report.packed.tiles);
        assert_eq!(r.cycles, c.report.packed.cycles);
        assert_eq!(r.conv_nonzeros, c.report.packed.nonzeros);
        assert_eq!(r.images, 12);
        assert!(r.lut4 > 0 && r.ff > 0);
        assert_eq!(r.training_seconds, None);
    }
    assert!(rows[1].conv_nonzeros < rows[0].conv_nonzeros);
    let md = markdown(&rows, (4, 4), "synthetic");
    assert!(
        md.contains("| sparse |") && md.contains("| sparser |"),
        "{md}"
    );
    let svg = plot(&rows, "test").unwrap();
    let (stated, rendered, inked) = render(&svg.name, &svg.text);
    assert_eq!(stated, rendered);
    assert!(inked > 0.01, "the comparison plot is blank");
    assert_eq!(plot(&rows, "test").unwrap().text, svg.text);
    // A label given twice is refused.
    let twice = vec![entries[0].clone(), entries[0].clone()];
    let e = compare(&twice, &opts, &test, "synthetic", fam).unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
}
