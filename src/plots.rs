//! Pictures of what column combining did (OUT/plots/): per layer the filter matrix
//! before and after combining, tile utilization per layer, and the cycle breakdown per
//! layer. SVG through `plotters`; text is laid out with its built-in metrics (no system
//! fonts), so the bytes depend only on the compiled network.

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::pack::network::{PackedLayer, PackedNet};
use crate::quant::{QLayer, QNet};
use crate::report::Report;
use crate::schedule::{Breakdown, Schedule};

/// One rendered picture.
pub struct Svg {
    /// File name under OUT/plots.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub text: String,
}

const KEPT: RGBColor = RGBColor(31, 78, 121);
const PRUNED: RGBColor = RGBColor(214, 39, 40);
const BAND: RGBColor = RGBColor(236, 240, 246);
const TILE: RGBColor = RGBColor(255, 127, 14);
/// Colours of the stacked parts, in order of first appearance.
const PARTS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

fn plot_err<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow!("drawing {what}: {e:?}")
}

/// Renders `draw` on a `width` x `height` SVG.
fn svg(
    name: String,
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<Svg> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(&name))?;
        draw(&root)?;
        root.present().map_err(plot_err(&name))?;
    }
    Ok(Svg {
        name,
        width,
        height,
        text,
    })
}

/// Every picture of a compiled network.
pub fn render(
    qnet: &QNet,
    packed: &PackedNet,
    sched: &Schedule,
    report: &Report,
) -> Result<Vec<Svg>> {
    let mut out = Vec::new();
    for (i, (q, p)) in qnet.layers.iter().zip(&packed.layers).enumerate() {
        out.push(filter_matrix(i, q, p, sched)?);
    }
    out.push(utilization(report)?);
    out.push(cycles(&cycle_bars(sched), report)?);
    Ok(out)
}

/// OUT/plots/: every picture, as (path, contents).
pub fn files(
    qnet: &QNet,
    packed: &PackedNet,
    sched: &Schedule,
    report: &Report,
) -> Result<Vec<(String, String)>> {
    Ok(render(qnet, packed, sched, report)?
        .into_iter()
        .map(|s| (format!("plots/{}", s.name), s.text))
        .collect())
}

/// A cell of the filter matrix before combining.
#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Zero,
    Kept,
    Pruned,
}

/// The matrix before combining: physical rows, nonzero columns ordered by group.
/// Returns the cells and each group's column count.
fn before(q: &QLayer, p: &PackedLayer) -> (Vec<Vec<Cell>>, Vec<usize>) {
    let widths: Vec<usize> = p.groups.iter().map(Vec::len).collect();
    let rows = p
        .row_perm
        .iter()
        .enumerate()
        .map(|(r, &orig)| {
            let mut row = Vec::with_capacity(widths.iter().sum());
            for (g, members) in p.groups.iter().enumerate() {
                let kept = (p.weight[[r, g]] != 0).then(|| members[p.selector[[r, g]] as usize]);
                for &col in members {
                    row.push(match (q.weight[[orig, col]] != 0, kept == Some(col)) {
                        (_, true) => Cell::Kept,
                        (true, false) => Cell::Pruned,
                        (false, false) => Cell::Zero,
                    });
                }
            }
            row
        })
        .collect();
    (rows, widths)
}

/// Filled runs of `cell` in a row as (start, end) column ranges.
fn runs(row: &[Cell], cell: Cell) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &c) in row.iter().chain(std::iter::once(&Cell::Zero)).enumerate() {
        match (c == cell, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Layer `i`'s filter matrix before combining (kept and pruned weights, groups as
/// bands) beside the packed matrix (tiles outlined).
fn filter_matrix(i: usize, q: &QLayer, p: &PackedLayer, sched: &Schedule) -> Result<Svg> {
    let (cells, widths) = before(q, p);
    let n = p.rows();
    let cols: usize = widths.iter().sum();
    let g = p.groups_len();
    let a = sched.array;
    // Cells as large as fit ~640 px for the wider panel, 1..=12 px.
    let cell = (640 / cols.max(n).max(1)).clamp(1, 12) as i32;
    let (m, top, gap) = (20i32, 64i32, 40i32);
    let (bw, aw, h) = (cols as i32 * cell, g as i32 * cell, n as i32 * cell);
    let width = (2 * m + bw + gap + aw).max(520) as u32;
    let height = (top + h + 56) as u32;
    let name = format!("layer{i}-matrix.svg");
    svg(name.clone(), width, height, |root| {
        let e = plot_err(&name);
        let font = ("sans-serif", 13).into_font();
        let copies = n - p.filters();
        let rows = if copies > 0 {
            format!("{n} rows ({copies} copies for the next layer's taps)")
        } else {
            format!("{n} filters")
        };
        let title = format!(
            "layer {i} `{}`: {rows} x {} taps ({cols} nonzero) -> {g} groups, alpha {}",
            p.weight_name, p.taps_total, p.alpha
        );
        root.draw(&Text::new(title, (m, 8), font.clone()))
            .map_err(e)?;
        let sub = format!(
            "{} weights kept, {} pruned by combining (red); {} tiles of {}x{} (orange)",
            p.stats.nnz_after, p.stats.pruned_count, sched.layers[i].tiles, a.rows, a.cols
        );
        let small = ("sans-serif", 11).into_font();
        root.draw(&Text::new(sub, (m, 28), small.clone()))
            .map_err(plot_err(&name))?;
        root.draw(&Text::new(
            "before: columns by group",
            (m, top - 16),
            small.clone(),
        ))
        .map_err(plot_err(&name))?;
        let ax = m + bw + gap;
        root.draw(&Text::new(
            "after: one column per group",
            (ax, top - 16),
            small,
        ))
        .map_err(plot_err(&name))?;
        // Groups as alternating bands, so their boundaries show without a line per column.
        let mut x = m;
        for (k, &wd) in widths.iter().enumerate() {
            let x1 = x + wd as i32 * cell;
            if k % 2 == 1 {
                root.draw(&Rectangle::new([(x, top), (x1, top + h)], BAND.filled()))
                    .map_err(plot_err(&name))?;
            }
            x = x1;
        }
        for (r, row) in cells.iter().enumerate() {
            let y = top + r as i32 * cell;
            for (colour, kind) in [(KEPT, Cell::Kept), (PRUNED, Cell::Pruned)] {
                for (s, t) in runs(row, kind) {
                    root.draw(&Rectangle::new(
                        [(m + s as i32 * cell, y), (m + t as i32 * cell, y + cell)],
                        colour.filled(),
                    ))
                    .map_err(plot_err(&name))?;
                }
            }
        }
        root.draw(&Rectangle::new(
            [(m, top), (m + bw, top + h)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_err(&name))?;
        for r in 0..n {
            let row: Vec<Cell> = (0..g)
                .map(|k| {
                    if p.weight[[r, k]] != 0 {
                        Cell::Kept
                    } else {
                        Cell::Zero
                    }
                })
                .collect();
            let y = top + r as i32 * cell;
            for (s, t) in runs(&row, Cell::Kept) {
                root.draw(&Rectangle::new(
                    [(ax + s as i32 * cell, y), (ax + t as i32 * cell, y + cell)],
                    KEPT.filled(),
                ))
                .map_err(plot_err(&name))?;
            }
        }
        let l = &sched.layers[i];
        for t in &sched.tiles[l.first_tile..l.first_tile + l.tiles] {
            let (x0, y0) = (ax + t.col0 as i32 * cell, top + t.row0 as i32 * cell);
            let (x1, y1) = (x0 + t.cols as i32 * cell, y0 + t.rows as i32 * cell);
            root.draw(&Rectangle::new([(x0, y0), (x1, y1)], TILE.stroke_width(2)))
                .map_err(plot_err(&name))?;
        }
        let caption = format!(
            "{n} x {cols} -> {n} x {g}: {:.2}x fewer columns",
            cols as f64 / g.max(1) as f64
        );
        root.draw(&Text::new(
            caption,
            (m, top + h + 16),
            ("sans-serif", 11).into_font(),
        ))
        .map_err(plot_err(&name))?;
        Ok(())
    })
}

/// Utilization efficiency per layer, dense baseline beside column-combined.
fn utilization(report: &Report) -> Result<Svg> {
    let series: Vec<(&str, Vec<f64>)> = vec![
        (
            "dense baseline",
            report
                .layers
                .iter()
                .map(|l| l.unpacked.utilization)
                .collect(),
        ),
        (
            "column-combined",
            report.layers.iter().map(|l| l.packed.utilization).collect(),
        ),
    ];
    let labels: Vec<String> = report
        .layers
        .iter()
        .map(|l| {
            format!(
                "{} ({}/{} tiles)",
                l.layer, l.unpacked.tiles, l.packed.tiles
            )
        })
        .collect();
    let title = format!(
        "{}: utilization efficiency per layer on a {}x{} array",
        report.model, report.array.rows, report.array.cols
    );
    grouped_bars(
        "utilization.svg",
        &title,
        "nonzeros / (tiles x R x C)",
        &labels,
        &series,
        Some(1.0),
    )
}

/// Style of a category label centred under its bar.
fn under() -> TextStyle<'static> {
    TextStyle::from(("sans-serif", 11).into_font()).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Top,
    ))
}

fn grouped_bars(
    name: &str,
    title: &str,
    y_label: &str,
    labels: &[String],
    series: &[(&str, Vec<f64>)],
    y_max: Option<f64>,
) -> Result<Svg> {
    let (width, height) = ((160 + 110 * labels.len() as u32).max(560), 400);
    let top = y_max.unwrap_or_else(|| {
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0, f64::max)
            * 1.1
    });
    svg(name.to_string(), width, height, |root| {
        let e = || plot_err(name);
        let n = labels.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n, 0.0..top.max(1e-9))
            .map_err(e())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc("layer (dense / packed tiles)")
            .y_desc(y_label)
            .draw()
            .map_err(e())?;
        chart
            .draw_series(labels.iter().enumerate().map(|(i, l)| {
                EmptyElement::at((i as f64 + 0.5, 0.0)) + Text::new(l.clone(), (0, 6), under())
            }))
            .map_err(e())?;
        let k = series.len() as f64;
        for (s, (label, vals)) in series.iter().enumerate() {
            let colour = PARTS[s % PARTS.len()];
            chart
                .draw_series(vals.iter().enumerate().map(|(i, &v)| {
                    let x0 = i as f64 + 0.1 + 0.8 * s as f64 / k;
                    Rectangle::new([(x0, 0.0), (x0 + 0.8 / k, v)], colour.filled())
                }))
                .map_err(e())?
                .label(*label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(e())?;
        Ok(())
    })
}

/// One bar of the cycle breakdown: a span and its cycles in named parts.
#[derive(Clone, Debug, PartialEq)]
pub struct CycleBar {
    pub label: String,
    pub parts: Vec<(&'static str, u64)>,
}

impl CycleBar {
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|p| p.1).sum()
    }
}

/// A span's cycles split as its cell-cycle accounting splits them: each loss divided by
/// the array's cells (so a part is "cycles the whole array spent on it"), the useful
/// MACs taking the rest so the parts add up to the span exactly.
fn parts_of(b: &Breakdown, cells: u64) -> Vec<(&'static str, u64)> {
    let losses = [
        ("fill, drain, tile gaps", b.fill_drain),
        ("idle columns", b.idle_columns),
        ("idle rows", b.idle_rows),
        ("zero weights", b.zero_weights),
        ("pixel period > 8", b.period_stretch),
        ("write copies", b.replication),
        (
            "waiting for pool / classifier",
            b.pool_classifier.max(0) as u64,
        ),
        ("memory clearing", b.memory_clearing),
        ("waiting for I/O", b.waiting_io),
    ];
    let mut parts: Vec<(&'static str, u64)> =
        losses.iter().map(|&(n, v)| (n, v / cells.max(1))).collect();
    let lost: u64 = parts.iter().map(|p| p.1).sum();
    parts.insert(0, ("useful MACs", b.cycles.saturating_sub(lost)));
    parts
}

/// Per layer, its steady-state span split by where the array's cell-cycles go (the
/// schedule's loss breakdown, which the RTL simulation measures span for span).
pub fn cycle_bars(s: &Schedule) -> Vec<CycleBar> {
    let cells = (s.array.rows * s.array.cols) as u64;
    let mut bars: Vec<CycleBar> = s
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| CycleBar {
            label: format!("layer {i}"),
            parts: parts_of(&l.breakdown, cells),
        })
        .collect();
    let layers: u64 = s.layers.iter().map(|l| l.cycles).sum();
    if s.interval > layers {
        bars.push(CycleBar {
            label: "classifier".into(),
            parts: vec![("waiting for pool / classifier", s.interval - layers)],
        });
    }
    bars
}

/// Stacked bars of [`cycle_bars`].
fn cycles(bars: &[CycleBar], report: &Report) -> Result<Svg> {
    let name = "cycles.svg";
    let mut parts: Vec<&'static str> = Vec::new();
    for b in bars {
        for (p, _) in &b.parts {
            if !parts.contains(p) {
                parts.push(p);
            }
        }
    }
    let top = bars.iter().map(CycleBar::total).max().unwrap_or(1) as f64 * 1.15;
    let (width, height) = ((160 + 90 * bars.len() as u32).max(600), 420);
    let total: u64 = bars.iter().map(CycleBar::total).sum();
    let title = format!(
        "{}: {total} cycles between images on a {}x{} array (exact schedule)",
        report.model, report.array.rows, report.array.cols
    );
    svg(name.to_string(), width, height, |root| {
        let e = || plot_err(name);
        let n = bars.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..n, 0.0..top.max(1.0))
            .map_err(e())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("cycles")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(e())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                EmptyElement::at((i as f64 + 0.5, 0.0))
                    + Text::new(b.label.clone(), (0, 6), under())
            }))
            .map_err(e())?;
        for (s, part) in parts.iter().enumerate() {
            let colour = PARTS[s % PARTS.len()];
            let rects = bars.iter().enumerate().filter_map(|(i, b)| {
                let at = b.parts.iter().position(|(p, _)| p == part)?;
                let below: u64 = b.parts[..at].iter().map(|p| p.1).sum();
                let v = b.parts[at].1;
                (v > 0).then(|| {
                    Rectangle::new(
                        [
                            (i as f64 + 0.15, below as f64),
                            (i as f64 + 0.85, (below + v) as f64),
                        ],
                        colour.filled(),
                    )
                })
            });
            chart
                .draw_series(rects)
                .map_err(e())?
                .label(*part)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(e())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_each_filled_stretch_once() {
        use Cell::*;
        let row = [Kept, Kept, Zero, Pruned, Kept, Zero, Kept];
        assert_eq!(runs(&row, Kept), vec![(0, 2), (4, 5), (6, 7)]);
        assert_eq!(runs(&row, Pruned), vec![(3, 4)]);
        assert!(runs(&[Zero, Zero], Kept).is_empty());
    }
}
