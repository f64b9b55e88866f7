//! `ccc compare`: sparse-CNN methods side by side on one array (docs/DESIGN.md §10).
//!
//! Owns the comparison table — for every given model (a dense baseline, a
//! column-combined model, a pre-defined-sparsity model, …): float and 8-bit packed
//! accuracy on a test set, nonzero weights, tiles, cycles per image, utilization, MAC
//! efficiency, the fit model's LUT4 / flip-flop / block-RAM prediction for the
//! accelerator and the training time its `.train.json` recorded — and its picture,
//! accuracy against cycles with one point per method. Every number comes from the same
//! compile path `ccc compile` takes, so the rows are comparable.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use serde::Serialize;

use crate::compile::{self, CompileOptions};
use crate::dataset::Dataset;
use crate::fit::{self, Family};
use crate::model::Op;
use crate::plots::Svg;
use crate::reference::evaluate;

/// One model to compare, under a label of the user's choosing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub label: String,
    pub model: PathBuf,
}

impl std::str::FromStr for Entry {
    type Err = String;

    /// `LABEL=MODEL`, or `MODEL` (the label is the file stem).
    fn from_str(s: &str) -> Result<Self, String> {
        let (label, model) = match s.split_once('=') {
            Some((l, m)) if !l.is_empty() && !m.is_empty() => (l.to_string(), PathBuf::from(m)),
            Some(_) => return Err(format!("`{s}`: expected LABEL=MODEL")),
            None => {
                let p = PathBuf::from(s);
                let stem = p
                    .file_stem()
                    .map(|x| x.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("`{s}` names no file"))?;
                (stem, p)
            }
        };
        Ok(Entry { label, model })
    }
}

/// The measured and predicted figures of one model.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub label: String,
    pub model: String,
    pub images: usize,
    pub float_accuracy: f64,
    pub packed_accuracy: f64,
    /// The budget: nonzero conv parameters of the model (a decomposed conv's
    /// coefficients and basis kernels, each kernel counted once).
    pub weights: usize,
    /// Nonzero 8-bit conv weights after packing (MACs per output pixel), and the
    /// classifier's (every linear layer's, for an MLP head).
    pub conv_nonzeros: usize,
    pub classifier_nonzeros: usize,
    pub tiles: usize,
    /// Steady-state cycles per image (the interval).
    pub cycles: u64,
    pub utilization: f64,
    pub mac_efficiency: f64,
    /// The fit model's flattened prediction for the accelerator on `family`.
    pub family: Family,
    pub lut4: u64,
    pub ff: u64,
    pub bram: u64,
    /// From the model's `.train.json`: wall time of all epochs and the threads used.
    pub training_seconds: Option<f64>,
    pub training_threads: Option<usize>,
}

/// Compiles and evaluates every entry on `test` with `opts` (array, packing).
pub fn compare(
    entries: &[Entry],
    opts: &CompileOptions,
    test: &Dataset,
    dataset: &str,
    family: Family,
) -> Result<Vec<Row>> {
    if entries.is_empty() {
        bail!("nothing to compare: give one or more LABEL=MODEL");
    }
    let mut seen = std::collections::BTreeSet::new();
    for e in entries {
        if !seen.insert(e.label.as_str()) {
            bail!("label `{}` is given twice", e.label);
        }
    }
    let opts = CompileOptions {
        rtl: true,
        ..opts.clone()
    };
    let mut rows = Vec::new();
    for e in entries {
        let what = || format!("comparing `{}` ({})", e.label, e.model.display());
        let c = compile::compile(&e.model, &opts).with_context(what)?;
        match &c.alternative {
            // Both mappings of a decomposed model (one compile builds both), each
            // labelled with its mapping.
            Some(alt) => {
                let label = |o: &CompileOptions| format!("{} ({})", e.label, o.decomposed.name());
                rows.push(row(e, &c, label(&opts), test, dataset, family).with_context(what)?);
                let other = label(&opts.other_mapping());
                rows.push(row(e, alt, other, test, dataset, family).with_context(what)?);
            }
            None => {
                rows.push(row(e, &c, e.label.clone(), test, dataset, family).with_context(what)?)
            }
        }
    }
    Ok(rows)
}

/// Nonzero conv parameters of a model file ([`Row::weights`]).
fn model_weights(path: &Path) -> Result<usize> {
    let net = crate::model::load(path, None)?;
    let nz = |v: &mut dyn Iterator<Item = &f64>| v.filter(|&&w| w != 0.0).count();
    Ok(net
        .layers
        .iter()
        .map(|l| match &l.op {
            Op::Conv(c) => nz(&mut c.weight.iter()),
            Op::DecomposedConv(d) => nz(&mut d.coeff.iter()) + nz(&mut d.basis.iter()),
            _ => 0,
        })
        .sum())
}

/// The row of entry `e` compiled as `c`.
fn row(
    e: &Entry,
    c: &compile::Compiled,
    label: String,
    test: &Dataset,
    dataset: &str,
    family: Family,
) -> Result<Row> {
    let acc = evaluate(
        &c.lowered,
        &c.qnet,
        &c.packed,
        &test.images,
        &test.labels,
        dataset,
    );
    let design = c
        .design
        .as_ref()
        .context("the accelerator's design was not built")?;
    let res = fit::flattened(&fit::estimate(&design.capacity, family));
    let (training_seconds, training_threads) = training_time(&e.model)?;
    let r = &c.report;
    Ok(Row {
        label,
        model: e.model.display().to_string(),
        images: acc.images,
        float_accuracy: acc.float,
        packed_accuracy: acc.packed,
        weights: model_weights(&e.model)?,
        conv_nonzeros: r.packed.nonzeros,
        classifier_nonzeros: c.packed.classifier.nonzeros(),
        tiles: r.packed.tiles,
        cycles: r.packed.cycles,
        utilization: r.packed.utilization,
        mac_efficiency: r.packed.mac_efficiency,
        family,
        lut4: res.lut,
        ff: res.dff,
        bram: res.bram,
        training_seconds,
        training_threads,
    })
}

/// The training time recorded next to a model, if `ccc train` wrote it.
fn training_time(model: &Path) -> Result<(Option<f64>, Option<usize>)> {
    let p = crate::train::log_path(model);
    if !p.exists() {
        return Ok((None, None));
    }
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", p.display()))?;
    let secs = v["epochs"]
        .as_array()
        .map(|es| es.iter().filter_map(|e| e["seconds"].as_f64()).sum::<f64>());
    let threads = v["threads"].as_u64().map(|t| t as usize);
    Ok((secs, threads))
}

/// The table as Markdown.
pub fn markdown(rows: &[Row], rows_cols: (usize, usize), dataset: &str) -> String {
    let mut s = String::new();
    let images = rows.first().map_or(0, |r| r.images);
    let fam = rows.first().map_or("", |r| family_name(r.family));
    s.push_str(&format!(
        "Methods on a {}x{} array; accuracy on {images} {dataset} images; LUT4 / FF / BRAM: the fit model's prediction for the accelerator on {fam} (flattened synthesis).\n\n",
        rows_cols.0, rows_cols.1
    ));
    s.push_str("| method | float | 8-bit packed | conv weights | MACs / pixel (convs + classifier) | tiles | cycles / image | utilization | MAC efficiency | LUT4 | FF | BRAM | training |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let train = match (r.training_seconds, r.training_threads) {
            (Some(t), Some(n)) => format!(
                "{:.1} min ({n} thread{})",
                t / 60.0,
                if n == 1 { "" } else { "s" }
            ),
            (Some(t), None) => format!("{:.1} min", t / 60.0),
            _ => "—".into(),
        };
        s.push_str(&format!(
            "| {} | {:.2}% | {:.2}% | {} | {} + {} | {} | {} | {:.3} | {:.1}% | {} | {} | {} | {} |\n",
            r.label,
            100.0 * r.float_accuracy,
            100.0 * r.packed_accuracy,
            r.weights,
            r.conv_nonzeros,
            r.classifier_nonzeros,
            r.tiles,
            r.cycles,
            r.utilization,
            100.0 * r.mac_efficiency,
            r.lut4,
            r.ff,
            r.bram,
            train
        ));
    }
    s
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Generic => "generic 4-LUTs",
        Family::Ice40 => "iCE40",
        Family::Ecp5 => "ECP5",
    }
}

/// Accuracy (8-bit packed) against cycles per image, one labelled point per method.
pub fn plot(rows: &[Row], title: &str) -> Result<Svg> {
    let name = "accuracy-vs-cycles.svg".to_string();
    let (w, h) = (720u32, 460u32);
    let mut text = String::new();
    let err = |e: &dyn std::fmt::Debug| anyhow::anyhow!("drawing {name}: {e:?}");
    {
        let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let xmax = rows.iter().map(|r| r.cycles).max().unwrap_or(1) as f64 * 1.15;
        let accs: Vec<f64> = rows.iter().map(|r| 100.0 * r.packed_accuracy).collect();
        let lo = accs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = accs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.2).max(0.5);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..xmax, (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("cycles per image (steady state)")
            .y_desc("8-bit packed accuracy (%)")
            .draw()
            .map_err(|e| err(&e))?;
        // Labels go right of their points, each moved the least (a line up or down at
        // a time) to clear the labels already placed: methods often land close together.
        let mut placed: Vec<(i32, i32, i32)> = Vec::new(); // (x0, x1, y) in pixels
        const LINE: i32 = 15;
        for (r, acc) in rows.iter().zip(&accs) {
            let p = (r.cycles as f64, *acc);
            let label = format!("{} ({} tiles)", r.label, r.tiles);
            let (px, py) = chart.backend_coord(&p);
            let (x0, x1) = (px + 8, px + 8 + 7 * label.chars().count() as i32);
            let free = |y: i32| {
                !placed
                    .iter()
                    .any(|&(a0, a1, b)| x0 < a1 && a0 < x1 && (y - b).abs() < LINE)
            };
            let y = (0..)
                .map(|k: i32| py - 6 + if k % 2 == 0 { k / 2 } else { -(k + 1) / 2 } * LINE)
                .find(|&y| free(y))
                .expect("a free line exists");
            placed.push((x0, x1, y));
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(p)
                        + Circle::new((0, 0), 5, BLUE.filled())
                        + Text::new(label, (8, y - py), ("sans-serif", 13).into_font()),
                ))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(Svg {
        name,
        width: w,
        height: h,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_with_and_without_labels() {
        let e: Entry = "cc=models/a.safetensors".parse().unwrap();
        assert_eq!(e.label, "cc");
        let e: Entry = "models/dense.safetensors".parse().unwrap();
        assert_eq!(e.label, "dense");
        assert!("=x".parse::<Entry>().is_err());
    }
}
