//! `ccc sweep`: the α × γ grid of joint optimizations from one starting point, with a
//! table (JSON, Markdown, CSV) and an SVG plot of accuracy against tiles and
//! utilization (SVG through plotters).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{FinalEval, TrainOptions, train};
use crate::dataset::Dataset;
use crate::output::OutDir;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepPoint {
    pub alpha: usize,
    pub gamma: f64,
    pub model: String,
    pub seconds: f64,
    pub eval: FinalEval,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sweep {
    pub generator: String,
    pub base: TrainOptions,
    /// The starting model's own numbers (α = 1 everywhere), when one was loaded.
    pub baseline: Option<FinalEval>,
    pub points: Vec<SweepPoint>,
}

/// `ccc sweep`: the grid from `base`, with the model `base` loads (if any) evaluated as
/// the baseline the points are compared with.
pub fn sweep(
    base: &TrainOptions,
    alphas: &[usize],
    gammas: &[f64],
    train_set: &Dataset,
    test: &Dataset,
    out: &Path,
) -> Result<Sweep> {
    if alphas.is_empty() || gammas.is_empty() {
        anyhow::bail!("--alphas and --gammas need at least one value each");
    }
    let baseline = match &base.load {
        Some(p) => Some(super::final_eval(p, base, test)?),
        None => None,
    };
    run(base, alphas, gammas, baseline, train_set, test, out)
}

/// Trains every (α, γ) of the grid from `base` (α applied to every block stage; the
/// stem stays dense) and writes models, table and plot into `out` atomically.
pub fn run(
    base: &TrainOptions,
    alphas: &[usize],
    gammas: &[f64],
    baseline: Option<FinalEval>,
    train_set: &Dataset,
    test: &Dataset,
    out: &Path,
) -> Result<Sweep> {
    let dir = OutDir::begin(out)?;
    let mut points = Vec::new();
    for &alpha in alphas {
        for &gamma in gammas {
            let mut o = base.clone();
            o.gamma = gamma;
            for (i, c) in o.arch.convs.iter_mut().enumerate() {
                if i > 0 {
                    c.alpha = alpha;
                }
            }
            o.name = format!("{}-a{alpha}-g{gamma}", base.name);
            let file = format!("a{alpha}-g{gamma}.safetensors");
            eprintln!("ccc sweep: alpha {alpha}, gamma {gamma}");
            let t0 = std::time::Instant::now();
            let log = train(&o, train_set, test, &dir.path().join(&file))
                .with_context(|| format!("sweep point alpha {alpha}, gamma {gamma}"))?;
            points.push(SweepPoint {
                alpha,
                gamma,
                model: file,
                seconds: t0.elapsed().as_secs_f64(),
                eval: log.final_eval,
            });
        }
    }
    let sweep = Sweep {
        generator: format!("ccc {}", env!("CARGO_PKG_VERSION")),
        base: base.clone(),
        baseline,
        points,
    };
    dir.write(
        "sweep.json",
        serde_json::to_string_pretty(&sweep)?.as_bytes(),
    )?;
    dir.write("sweep.md", markdown(&sweep).as_bytes())?;
    dir.write("sweep.csv", csv(&sweep).as_bytes())?;
    dir.write("sweep.svg", svg(&sweep)?.as_bytes())?;
    dir.commit()?;
    Ok(sweep)
}

/// Rewrites `dir/sweep.{md,csv,svg}` from `dir/sweep.json` (after a change to the
/// table or plot, without retraining).
pub fn replot(dir: &Path) -> Result<Sweep> {
    let p = dir.join("sweep.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let s: Sweep =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
    for (name, body) in [
        ("sweep.md", markdown(&s)),
        ("sweep.csv", csv(&s)),
        ("sweep.svg", svg(&s)?),
    ] {
        crate::output::write_file_atomic(&dir.join(name), body.as_bytes())?;
    }
    Ok(s)
}

pub fn markdown(s: &Sweep) -> String {
    let mut m = String::new();
    let b = &s.base;
    let _ = writeln!(
        m,
        "# α × γ sweep\n\n{} epochs, sample ratio {}, batch {}, lr {}, {}; tiles at {}x{}; accuracy on {} test images.\n",
        b.epochs,
        b.sample_ratio,
        b.batch_size,
        b.lr,
        b.load
            .as_ref()
            .map_or("from scratch".to_string(), |p| format!(
                "from {}",
                p.display()
            )),
        b.rows,
        b.cols,
        s.points.first().map_or(0, |p| p.eval.accuracy.images)
    );
    m.push_str("| α | γ | float | 8-bit | packed | tiles | dense-baseline tiles | utilization | nonzeros | s |\n|---|---|---|---|---|---|---|---|---|---|\n");
    if let Some(e) = &s.baseline {
        let _ = writeln!(m, "| {} |", cells("start", "—", e, None, 4).join(" | "));
    }
    for p in &s.points {
        let (a, g) = (p.alpha.to_string(), p.gamma.to_string());
        let _ = writeln!(
            m,
            "| {} |",
            cells(&a, &g, &p.eval, Some(p.seconds), 4).join(" | ")
        );
    }
    m.push_str("\n![accuracy vs tiles](sweep.svg)\n");
    m
}

/// One table row: α, γ, three accuracies (`digits` decimals), tiles, baseline tiles,
/// utilization, nonzeros, seconds.
fn cells(alpha: &str, gamma: &str, e: &FinalEval, secs: Option<f64>, digits: usize) -> Vec<String> {
    vec![
        alpha.to_string(),
        gamma.to_string(),
        format!("{:.digits$}", e.accuracy.float),
        format!("{:.digits$}", e.accuracy.unpacked),
        format!("{:.digits$}", e.accuracy.packed),
        e.packed_tiles.to_string(),
        e.unpacked_tiles.to_string(),
        format!("{:.3}", e.packed_utilization),
        e.nonzeros.to_string(),
        secs.map_or("—".to_string(), |s| format!("{s:.0}")),
    ]
}

pub fn csv(s: &Sweep) -> String {
    let mut c = String::from(
        "alpha,gamma,float,unpacked_8bit,packed_8bit,tiles,dense_tiles,utilization,nonzeros,seconds\n",
    );
    for p in &s.points {
        let (a, g) = (p.alpha.to_string(), p.gamma.to_string());
        let _ = writeln!(
            c,
            "{}",
            cells(&a, &g, &p.eval, Some(p.seconds), 6).join(",")
        );
    }
    c
}

/// Nice axis bounds: `lo`/`hi` widened to multiples of a round step.
fn axis(lo: f64, hi: f64) -> (f64, f64, f64) {
    let span = (hi - lo).abs().max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

/// Two panels: packed 8-bit accuracy vs tiles, and vs utilization; one marker per
/// (α, γ), labelled, coloured by α; the starting model as a dashed line. Drawn with
/// plotters' SVG backend, whose built-in text metrics need no system fonts.
pub fn svg(s: &Sweep) -> Result<String> {
    use plotters::prelude::*;
    const W: u32 = 900;
    const H: u32 = 420;
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    let mut alphas: Vec<usize> = s.points.iter().map(|p| p.alpha).collect();
    alphas.sort_unstable();
    alphas.dedup();
    let colour =
        |a: usize| colours[alphas.iter().position(|&x| x == a).unwrap_or(0) % colours.len()];
    let accs: Vec<f64> = s
        .points
        .iter()
        .map(|p| p.eval.accuracy.packed * 100.0)
        .chain(s.baseline.iter().map(|b| b.accuracy.float * 100.0))
        .collect();
    let (ylo, yhi, _) = axis(
        accs.iter().copied().fold(f64::INFINITY, f64::min),
        accs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    type Axis = Box<dyn Fn(&FinalEval) -> f64>;
    let panels: [(&str, Axis); 2] = [
        (
            "tiles at the array",
            Box::new(|e: &FinalEval| e.packed_tiles as f64),
        ),
        (
            "utilization",
            Box::new(|e: &FinalEval| e.packed_utilization),
        ),
    ];
    let err = |e: DrawingAreaErrorKind<std::io::Error>| anyhow::anyhow!("drawing sweep.svg: {e:?}");
    let mut out = String::new();
    {
        let full = SVGBackend::with_string(&mut out, (W, H)).into_drawing_area();
        full.fill(&WHITE).map_err(err)?;
        let title = format!(
            "column combining: accuracy vs array cost ({}x{} array)",
            s.base.rows, s.base.cols
        );
        let root = full.titled(&title, ("sans-serif", 15)).map_err(err)?;
        for ((label, xf), area) in panels.iter().zip(root.split_evenly((1, 2))) {
            let xs: Vec<f64> = s
                .points
                .iter()
                .map(|p| xf(&p.eval))
                .chain(s.baseline.iter().map(xf))
                .collect();
            let (xlo, xhi, _) = axis(
                xs.iter().copied().fold(f64::INFINITY, f64::min),
                xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            );
            let mut chart = ChartBuilder::on(&area)
                .margin(16)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(xlo..xhi.max(xlo + 1e-9), ylo..yhi.max(ylo + 1e-9))
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(*label)
                .y_desc("packed 8-bit test accuracy (%)")
                .y_label_formatter(&|y| format!("{y:.1}"))
                .draw()
                .map_err(err)?;
            if let Some(b) = &s.baseline {
                let yb = b.accuracy.float * 100.0;
                chart
                    .draw_series(DashedLineSeries::new(
                        [(xlo, yb), (xhi, yb)],
                        5,
                        4,
                        BLACK.into(),
                    ))
                    .map_err(err)?;
                chart
                    .draw_series([EmptyElement::at((xlo + 0.62 * (xhi - xlo), yb))
                        + Text::new("start model, float", (0, -14), ("sans-serif", 11))])
                    .map_err(err)?;
            }
            // Labels of coinciding or nearby points are stacked instead of overprinted.
            let mut placed: Vec<(i32, i32)> = Vec::new();
            for p in &s.points {
                let at = (xf(&p.eval), p.eval.accuracy.packed * 100.0);
                let (cx, cy) = chart.backend_coord(&at);
                let (lx, mut ly) = (cx + 7, cy - 14);
                while placed
                    .iter()
                    .any(|&(x, y)| (x - lx).abs() < 45 && (y - ly).abs() < 11)
                {
                    ly += 11;
                }
                placed.push((lx, ly));
                // The marker and its label as one element anchored at the point.
                let label = EmptyElement::at(at)
                    + Circle::new((0, 0), 5, colour(p.alpha).filled())
                    + Text::new(
                        format!("α{} γ{}", p.alpha, p.gamma),
                        (7, ly - cy),
                        ("sans-serif", 10),
                    );
                chart.draw_series([label]).map_err(err)?;
            }
        }
        full.present().map_err(err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_bounds_cover_the_data_with_round_steps() {
        let (lo, hi, step) = axis(83.2, 91.7);
        assert!(lo <= 83.2 && hi >= 91.7);
        assert_eq!(step, 2.0);
        assert_eq!((lo, hi), (82.0, 92.0));
    }
}
