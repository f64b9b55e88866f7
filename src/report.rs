//! Reports (docs/DESIGN.md §4 metrics): per layer and for the whole network, the unpacked
//! baseline (nonzero columns only) next to the packed network — nonzeros, columns or
//! groups, tiles, utilization efficiency, pruned weights and L1 fraction, conflicts — and
//! the array's time (docs/DESIGN.md §11): cycles, MAC efficiency and where the packed
//! network's cell-cycles go, rendered as JSON and Markdown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::pack::network::PackedNet;
use crate::reference::Accuracy;
use crate::schedule::{ArrayShape, Breakdown, Mode, Schedule, tile_count};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub nonzeros: usize,
    /// Array columns needed: nonzero columns (unpacked) or groups (packed).
    pub columns: usize,
    pub tiles: usize,
    pub utilization: f64,
    pub pruned: usize,
    pub pruned_l1_fraction: f64,
    pub conflicts: usize,
    pub max_group_conflicts: usize,
    /// A layer: its steady-state span (the gap before its first tile included); the
    /// network: the interval between images.
    pub cycles: u64,
    /// Nonzero MACs over the array's peak in those cycles (docs/DESIGN.md §11).
    pub mac_efficiency: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerReport {
    pub layer: usize,
    pub conv_index: usize,
    pub weight: String,
    /// Filter matrix N x T (taps, including all-zero columns); N counts the array rows,
    /// `copies` of them repeating a filter for the next layer's KxK taps.
    pub rows: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub copies: usize,
    pub taps: usize,
    pub input: String,
    pub output: String,
    pub stride: usize,
    pub alpha: usize,
    pub k: i32,
    pub f_in: u32,
    pub f_out: u32,
    pub requant_shift: i32,
    pub clamp_max: i32,
    pub unpacked: Metrics,
    pub packed: Metrics,
    /// How the packed layer uses the columns, and its cell-cycles.
    pub mode: Mode,
    pub breakdown: Breakdown,
}

/// One number for the unpacked baseline and the packed network.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Both {
    pub unpacked: u64,
    pub packed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub generator: String,
    pub model: String,
    pub source: String,
    pub array: ArrayShape,
    pub gamma: f64,
    pub strategy: String,
    pub section: usize,
    pub dense: bool,
    pub layers: Vec<LayerReport>,
    /// The classifier (beside the array) and streaming one image in: both overlap other
    /// work in the steady state.
    pub classifier_cycles: u64,
    /// MAC lanes of the head unit (outputs computed side by side).
    #[serde(default = "crate::schedule::one_lane")]
    pub head_lanes: usize,
    pub input_cycles: u64,
    /// The first image's cycles from its first input beat to its class (after reset, the
    /// memory clearing included).
    pub latency: Both,
    /// Cycles after reset in which the hardware clears its buffers (0 without RTL).
    #[serde(default)]
    pub clear_cycles: Both,
    /// The totals' `cycles` are the intervals.
    pub unpacked: Metrics,
    pub packed: Metrics,
    /// The packed network's cell-cycles over one interval.
    pub breakdown: Breakdown,
    pub tile_reduction: f64,
    /// Present when compiled or evaluated with a dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
    /// Predicted (and, after the flows, measured) FPGA resources; with the RTL only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fpga: Option<crate::fpga_report::FpgaSection>,
    /// A model with decomposed convs: this compile's mapping of them, then the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decomposition: Option<Vec<MappingRow>>,
    /// The head's linear layers on the array (`--head-on-array`), counted in `layers`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub head_on_array: usize,
    /// The head on the head unit and on the array: this compile's mapping, then the
    /// other (or why the array cannot take the head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_mapping: Option<HeadMapping>,
    /// An MLP head's linear layers (hidden layers, then the classifier); empty for a
    /// linear classifier alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub head: Vec<HeadRow>,
}

/// Both mappings of the head, or this one and why the other fails.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeadMapping {
    pub rows: Vec<MappingRow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_error: Option<String>,
}

/// One linear layer of an MLP head, as the head unit runs it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeadRow {
    /// Graph index and weight tensor.
    pub layer: usize,
    pub weight: String,
    pub inputs: usize,
    pub outputs: usize,
    pub nonzeros: usize,
    /// `relu6`/`relu` for a hidden layer, `logits` for the classifier.
    pub output: String,
    /// Requantize shift of a hidden layer.
    pub shift: Option<i32>,
    /// MAC cycles on the head unit (one per input and block of lanes outputs, zeros
    /// included).
    pub cycles: u64,
}

/// One mapping of a part of the model (its decomposed convs, its head; docs/DESIGN.md
/// §10), whole network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MappingRow {
    /// `stages` / `expanded` for decomposed convs; `head unit` / `array (α A)` for the
    /// head.
    pub mapping: String,
    /// The mapping this compile (its RTL, its packed network) uses.
    pub selected: bool,
    /// Layers on the array.
    pub layers: usize,
    pub packed: Metrics,
    pub latency: u64,
    /// 8-bit packed accuracy, with a dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// The fit model's ECP5 prediction for the whole accelerator, with the RTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecp5: Option<crate::fit::Resources>,
}

impl MappingRow {
    pub fn of(r: &Report, mapping: impl Into<String>, selected: bool) -> Self {
        MappingRow {
            mapping: mapping.into(),
            selected,
            layers: r.layers.len(),
            packed: r.packed.clone(),
            latency: r.latency.packed,
            accuracy: None,
            ecp5: r.fpga.as_ref().and_then(|f| {
                f.prediction
                    .packed
                    .iter()
                    .find(|e| e.family == crate::fit::Family::Ecp5)
                    .map(|e| e.total)
            }),
        }
    }
}

fn utilization(nnz: usize, tiles: usize, a: ArrayShape) -> f64 {
    if tiles == 0 {
        0.0
    } else {
        nnz as f64 / (tiles * a.rows * a.cols) as f64
    }
}

/// Metrics of layer `i`: the dense baseline (every nonzero column its own array column)
/// and the packed network `net`, each with the cycles of its own exact schedule.
fn layer_metrics(
    net: &PackedNet,
    sched: &Schedule,
    dense_sched: &Schedule,
    i: usize,
) -> (Metrics, Metrics) {
    let a = sched.array;
    let l = &net.layers[i];
    let n = l.rows();
    let ut = tile_count(n, l.nonzero_columns, a);
    let unpacked = Metrics {
        nonzeros: l.nnz_unpacked,
        columns: l.nonzero_columns,
        tiles: ut,
        utilization: utilization(l.nnz_unpacked, ut, a),
        cycles: dense_sched.layers[i].cycles,
        mac_efficiency: dense_sched.layers[i].breakdown.efficiency(a),
        ..Metrics::default()
    };
    let s = &l.stats;
    let g = l.groups_len();
    let pt = tile_count(n, g, a);
    let packed = Metrics {
        nonzeros: s.nnz_after,
        columns: g,
        tiles: pt,
        utilization: utilization(s.nnz_after, pt, a),
        pruned: s.pruned_count,
        pruned_l1_fraction: s.pruned_l1_fraction(),
        conflicts: s.conflicts.iter().sum(),
        max_group_conflicts: s.conflicts.iter().copied().max().unwrap_or(0),
        cycles: sched.layers[i].cycles,
        mac_efficiency: sched.layers[i].breakdown.efficiency(a),
    };
    (unpacked, packed)
}

fn total(ms: &[&Metrics], sched: &Schedule, l1: (f64, f64)) -> Metrics {
    let a = sched.array;
    let nonzeros = ms.iter().map(|m| m.nonzeros).sum();
    let tiles = ms.iter().map(|m| m.tiles).sum();
    Metrics {
        nonzeros,
        columns: ms.iter().map(|m| m.columns).sum(),
        tiles,
        utilization: utilization(nonzeros, tiles, a),
        pruned: ms.iter().map(|m| m.pruned).sum(),
        pruned_l1_fraction: if l1.1 > 0.0 { l1.0 / l1.1 } else { 0.0 },
        conflicts: ms.iter().map(|m| m.conflicts).sum(),
        max_group_conflicts: ms.iter().map(|m| m.max_group_conflicts).max().unwrap_or(0),
        cycles: sched.interval,
        mac_efficiency: sched.breakdown.efficiency(a),
    }
}

/// The report of `net` under its schedule `sched`, next to the dense baseline's schedule
/// on the same array.
pub fn build(net: &PackedNet, sched: &Schedule, dense_sched: &Schedule, source: &str) -> Report {
    let a = sched.array;
    let mut layers = Vec::new();
    for (i, l) in net.layers.iter().enumerate() {
        let (unpacked, packed) = layer_metrics(net, sched, dense_sched, i);
        layers.push(LayerReport {
            layer: i,
            conv_index: l.conv_index,
            weight: l.weight_name.clone(),
            rows: l.rows(),
            copies: l.rows() - l.filters(),
            taps: l.taps_total,
            // The model's channels: row copies are the hardware's, not the model's.
            input: format!(
                "{}x{}x{}",
                i.checked_sub(1)
                    .map_or(l.input.c, |p| net.layers[p].filters()),
                l.input.h,
                l.input.w
            ),
            output: format!("{}x{}x{}", l.filters(), l.output.h, l.output.w),
            stride: l.stride,
            alpha: l.alpha,
            k: l.k,
            f_in: l.f_in,
            f_out: l.f_out,
            requant_shift: l.shift,
            clamp_max: l.clamp_max,
            unpacked,
            packed,
            mode: sched.layers[i].mode,
            breakdown: sched.layers[i].breakdown.clone(),
        });
    }
    let cls = sched.classifier_cycles;
    let l1 = net.layers.iter().fold((0.0, 0.0), |(p, t), l| {
        (p + l.stats.pruned_l1, t + l.stats.total_l1)
    });
    let unpacked = total(
        &layers.iter().map(|l| &l.unpacked).collect::<Vec<_>>(),
        dense_sched,
        (0.0, l1.1),
    );
    let packed = total(
        &layers.iter().map(|l| &l.packed).collect::<Vec<_>>(),
        sched,
        l1,
    );
    Report {
        generator: format!("ccc {}", env!("CARGO_PKG_VERSION")),
        model: net.name.clone(),
        source: source.to_string(),
        array: a,
        gamma: net.options.gamma,
        strategy: net.options.strategy.to_string(),
        section: net.options.section,
        dense: net.options.dense,
        tile_reduction: if packed.tiles > 0 {
            unpacked.tiles as f64 / packed.tiles as f64
        } else {
            0.0
        },
        layers,
        accuracy: None,
        fpga: None,
        decomposition: None,
        head_on_array: net.layers.iter().skip_while(|l| !l.pool).count(),
        head_mapping: None,
        head: head_rows(net, sched.head_lanes),
        classifier_cycles: cls,
        head_lanes: sched.head_lanes,
        input_cycles: if net.layers.is_empty() {
            0
        } else {
            sched.input_cycles
        },
        clear_cycles: Both {
            unpacked: dense_sched.clear_cycles,
            packed: sched.clear_cycles,
        },
        latency: Both {
            unpacked: dense_sched.latency,
            packed: sched.latency,
        },
        unpacked,
        packed,
        breakdown: sched.breakdown.clone(),
    }
}

/// The rows of [`Report::head`].
fn head_rows(net: &PackedNet, lanes: usize) -> Vec<HeadRow> {
    let c = &net.classifier;
    if c.hidden.is_empty() || net.layers.iter().any(|l| l.pool) {
        return Vec::new();
    }
    let row = |layer: usize, weight: &str, w: &ndarray::Array2<i32>, output: String, shift| {
        let (outputs, inputs) = w.dim();
        HeadRow {
            layer,
            weight: weight.to_string(),
            inputs,
            outputs,
            nonzeros: w.iter().filter(|&&v| v != 0).count(),
            output,
            shift,
            cycles: (outputs.div_ceil(lanes) * inputs) as u64,
        }
    };
    c.hidden
        .iter()
        .map(|h| {
            let act = format!("{:?}", h.act).to_lowercase();
            row(
                h.linear_index,
                &h.weight_name,
                &h.weight,
                act,
                Some(h.shift()),
            )
        })
        .chain([row(
            c.linear_index,
            &c.weight_name,
            &c.weight,
            "logits".into(),
            None,
        )])
        .collect()
}

impl Report {
    /// The few lines `ccc compile` and `ccc eval` print.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} on a {}x{} array ({}, γ = {})",
            self.model,
            match self.head_on_array {
                0 => format!("{} conv layers", self.layers.len()),
                h => format!("{} conv and {h} linear layers", self.layers.len() - h),
            },
            self.array.rows,
            self.array.cols,
            if self.dense {
                "dense baseline".to_string()
            } else {
                format!("strategy {}", self.strategy)
            },
            self.gamma
        );
        for (name, m) in [("unpacked", &self.unpacked), ("packed", &self.packed)] {
            let _ = writeln!(
                s,
                "  {name:>8}: {:>7} nonzeros  {:>5} columns  {:>5} tiles  utilization {:.3}  pruned {} ({:.2}% of L1)  {} cycles/image ({:.1}% MAC efficiency), latency {}",
                m.nonzeros,
                m.columns,
                m.tiles,
                m.utilization,
                m.pruned,
                100.0 * m.pruned_l1_fraction,
                m.cycles,
                100.0 * m.mac_efficiency,
                if name == "packed" {
                    self.latency.packed
                } else {
                    self.latency.unpacked
                }
            );
        }
        let copies: usize = self.layers.iter().map(|l| l.copies).sum();
        if copies > 0 {
            let share = self
                .breakdown
                .share(self.breakdown.replication as f64, self.array);
            let _ = writeln!(
                s,
                "  {copies} row copies give the KxK convs' taps a row each: {:.1}% of the packed cell-cycles (write copies)",
                100.0 * share
            );
        }
        if let Some(h) = &self.head_mapping {
            match (h.rows.get(1), &h.other_error) {
                (Some(o), _) => {
                    let _ = writeln!(
                        s,
                        "  head {} instead: {} cycles/image, latency {}",
                        head_mapping_phrase(&o.mapping),
                        o.packed.cycles,
                        o.latency
                    );
                }
                (None, Some(e)) => {
                    let _ = writeln!(s, "  the head cannot run on the array: {e}");
                }
                (None, None) => {}
            }
        }
        if let Some(a) = &self.accuracy {
            let _ = writeln!(s, "{}", accuracy_text(a, self.dense));
        }
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes") + "\n"
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let a = self.array;
        let _ = writeln!(s, "# ccc report: {}\n", self.model);
        let _ = writeln!(
            s,
            "Generated by {} from `{}` for a {}x{} array; strategy `{}`, γ = {}, section = {}{}.\n",
            self.generator,
            self.source,
            a.rows,
            a.cols,
            self.strategy,
            self.gamma,
            if self.section == 0 {
                "off".to_string()
            } else {
                self.section.to_string()
            },
            if self.dense {
                " — dense baseline (no combining)"
            } else {
                ""
            }
        );
        let _ = writeln!(s, "## Whole network\n");
        let _ = writeln!(
            s,
            "| | nonzeros | columns | tiles | utilization | pruned | pruned L1 | conflicts | cycles | MAC eff. |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (name, m) in [("unpacked", &self.unpacked), ("packed", &self.packed)] {
            let _ = writeln!(s, "{}", metrics_row(name, m));
        }
        let _ = writeln!(
            s,
            "\nTiles: {:.2}x fewer after packing. Cycles are per image in the steady state \
             (images stream back to back: the next image's input and the previous image's \
             classifier, {} and {} cycles, overlap the layers); the first image after reset \
             takes {} cycles from its first input beat to its class ({} unpacked), {} of them \
             ({} unpacked) clearing the buffers after reset (memory clearing, once per \
             reset: no result depends on what a RAM holds at power-on). MAC efficiency: \
             nonzero MACs over the array's peak (one 8-bit MAC per cell every 8 cycles).\n",
            self.tile_reduction,
            self.input_cycles,
            self.classifier_cycles,
            self.latency.packed,
            self.latency.unpacked,
            self.clear_cycles.packed,
            self.clear_cycles.unpacked
        );
        // The last layer waited for the pool: the head is the slower part.
        let a_cells = (self.array.rows * self.array.cols) as i64;
        if let Some(wait) = self
            .layers
            .last()
            .map(|l| l.breakdown.pool_classifier / a_cells)
            .filter(|&w| w > 0)
        {
            let _ = writeln!(
                s,
                "The head (the pool's sums through its linear layers to the class, one MAC per \
                 cycle beside the array: {} cycles) is slower than the packed layers, so it sets \
                 the interval: their last layer waits {wait} cycles per image for the pool (the \
                 pool/classifier column).\n",
                self.classifier_cycles
            );
        }
        let _ = writeln!(s, "## Where the packed array's time goes\n");
        let _ = writeln!(s, "{}", breakdown_table(&self.layers, &self.breakdown, a));
        if let Some(acc) = &self.accuracy {
            let _ = writeln!(s, "## Accuracy\n\n{}\n", accuracy_text(acc, self.dense));
        }
        let _ = writeln!(s, "## Layers\n");
        let _ = writeln!(
            s,
            "| layer | weight | N x T | in → out | stride | α | k | shift | | nonzeros | columns | tiles | utilization | pruned | pruned L1 | conflicts | cycles | MAC eff. |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for l in &self.layers {
            let nt = if l.copies > 0 {
                format!("{} ({} copies) x {}", l.rows, l.copies, l.taps)
            } else {
                format!("{}x{}", l.rows, l.taps)
            };
            let head = format!(
                "| {} | `{}` | {} | {} → {} | {} | {} | {} | {} ",
                l.layer, l.weight, nt, l.input, l.output, l.stride, l.alpha, l.k, l.requant_shift
            );
            let _ = writeln!(s, "{head}{}", metrics_row("unpacked", &l.unpacked));
            let _ = writeln!(s, "| | | | | | | | {}", metrics_row("packed", &l.packed));
        }
        if let Some(rows) = &self.decomposition {
            let _ = writeln!(s, "\n{}", decomposition_table(rows));
        }
        if let Some(h) = &self.head_mapping {
            let _ = writeln!(s, "\n{}", head_mapping_table(h));
        }
        if !self.head.is_empty() {
            let _ = writeln!(
                s,
                "\n## MLP head\n\nOn the head unit beside the array, layer after layer, on {} \
                 ({} cycles per image with the output words; the packed interval is {}).\n\n\
                 | layer | weight | in → out | nonzeros | output | shift | MAC cycles |\n\
                 |---:|---|---:|---:|---|---:|---:|",
                if self.head_lanes == 1 {
                    "one MAC (one weight per cycle)".to_string()
                } else {
                    format!(
                        "{} MAC lanes ({} outputs at a time)",
                        self.head_lanes, self.head_lanes
                    )
                },
                self.classifier_cycles,
                self.packed.cycles
            );
            for h in &self.head {
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {} → {} | {} | {} | {} | {} |",
                    h.layer,
                    h.weight,
                    h.inputs,
                    h.outputs,
                    h.nonzeros,
                    h.output,
                    h.shift.map_or("-".into(), |v| v.to_string()),
                    h.cycles
                );
            }
        }
        if let Some(f) = &self.fpga {
            let _ = writeln!(s, "\n{}", f.to_markdown());
        }
        s
    }
}

/// "on the head unit" / "on the array (α 2)", from a [`MappingRow::mapping`] name.
fn head_mapping_phrase(name: &str) -> String {
    format!("on the {name}")
}

/// The two mappings of the head side by side.
fn head_mapping_table(h: &HeadMapping) -> String {
    let mut s = String::from(
        "## Head: on the head unit or on the array\n\n\
         | head on the | layers on the array | nonzeros | tiles | cycles | MAC eff. | latency | ECP5 LUT4 | ECP5 FF | ECP5 BRAM | 8-bit packed accuracy |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &h.rows {
        let m = &r.packed;
        let (lut, ff, bram) = r.ecp5.map_or(("-".into(), "-".into(), "-".into()), |e| {
            (e.lut.to_string(), e.dff.to_string(), e.bram.to_string())
        });
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | {} | {} | {:.1}% | {} | {lut} | {ff} | {bram} | {} |",
            r.mapping,
            if r.selected { " (this design)" } else { "" },
            r.layers,
            m.nonzeros,
            m.tiles,
            m.cycles,
            100.0 * m.mac_efficiency,
            r.latency,
            r.accuracy
                .map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a))
        );
    }
    if let Some(e) = &h.other_error {
        let _ = writeln!(s, "\nThe head cannot run on the array: {e}.");
    }
    s += "\nHead unit: the pool and the linear layers on their own MAC lanes beside the \
          array, overlapping the next image's layers (its nonzeros are not in the array's \
          count). Array (`ccc compile --head-on-array[=α]`): the first linear layer \
          accumulates over the last conv's pixels (the pool folded in, one output pixel), \
          the classifier's accumulators are the logits; no head unit, the array's time \
          grows by the head's tiles. Both compute the same logits at α 1 \
          (docs/DESIGN.md §10).\n";
    s
}

/// The two mappings of the decomposed convs side by side.
fn decomposition_table(rows: &[MappingRow]) -> String {
    let mut s = String::from(
        "## Decomposed convs: basis + coefficient stages against the expanded KxK conv\n\n\
         | mapping | layers | nonzeros | columns | tiles | utilization | pruned | cycles | MAC eff. | latency | 8-bit packed accuracy |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let m = &r.packed;
        let name = &r.mapping;
        let _ = writeln!(
            s,
            "| {name}{} | {} | {} | {} | {} | {:.3} | {} | {} | {:.1}% | {} | {} |",
            if r.selected { " (this design)" } else { "" },
            r.layers,
            m.nonzeros,
            m.columns,
            m.tiles,
            m.utilization,
            m.pruned,
            m.cycles,
            100.0 * m.mac_efficiency,
            r.latency,
            r.accuracy
                .map_or("-".to_string(), |a| format!("{:.2}%", 100.0 * a))
        );
    }
    s += "\nStages: the basis stage (each input channel convolved with the M basis kernels, \
          a block-diagonal matrix that combines without conflicts) writes C·M signed values \
          as uint8 with zero point 128; the coefficient stage is a 1x1 conv over them. \
          Expanded: the KxK conv the coefficients and basis make, combined over its taps \
          (conflicts pruned). `ccc compile --decomposed` picks one; nonzeros count MACs \
          per output pixel (the basis stage repeats each basis kernel per input channel).\n";
    s
}

fn metrics_row(name: &str, m: &Metrics) -> String {
    format!(
        "| {name} | {} | {} | {} | {:.3} | {} | {:.4} | {} | {} | {:.1}% |",
        m.nonzeros,
        m.columns,
        m.tiles,
        m.utilization,
        m.pruned,
        m.pruned_l1_fraction,
        m.conflicts,
        m.cycles,
        100.0 * m.mac_efficiency
    )
}

/// The cycle-loss breakdown (docs/DESIGN.md §11) per layer and in total, as shares of the
/// cell-cycles: the columns add up to 100%.
fn breakdown_table(layers: &[LayerReport], total: &Breakdown, a: ArrayShape) -> String {
    let mut s = String::from(
        "| layer | mode | cycles | useful | fill/drain | idle cols | idle rows | zero weights | period | write copies | pool/classifier | waiting input |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let row = |name: String, mode: &str, b: &Breakdown| {
        let pct = |v: f64| format!("{:.1}%", 100.0 * b.share(v, a));
        format!(
            "| {name} | {mode} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            b.cycles,
            pct((8 * b.macs) as f64),
            pct(b.fill_drain as f64),
            pct(b.idle_columns as f64),
            pct(b.idle_rows as f64),
            pct(b.zero_weights as f64),
            pct(b.period_stretch as f64),
            pct(b.replication as f64),
            pct(b.pool_classifier as f64),
            pct((b.waiting_io + b.memory_clearing) as f64),
        )
    };
    for l in layers {
        let mode = match l.mode {
            Mode::Single => "single",
            Mode::Rows => "rows",
            Mode::Pixels => "pixels",
        };
        s += &row(l.layer.to_string(), mode, &l.breakdown);
    }
    s += &row("**all**".into(), "", total);
    s
}

/// Accuracy lines shared by the CLI summary and report.md.
pub fn accuracy_text(a: &Accuracy, dense: bool) -> String {
    format!(
        "{images} images of {ds}:\n\
         - float (f64, unquantized, unpacked): {f:.2}%\n\
         - 8-bit unpacked: {u:.2}%\n\
         - 8-bit packed ({form}): {p:.2}%\n\
         - unpacked/packed class agreement: {ag}/{images}",
        images = a.images,
        ds = a.dataset,
        f = 100.0 * a.float,
        u = 100.0 * a.unpacked,
        p = 100.0 * a.packed,
        form = if dense {
            "dense baseline"
        } else {
            "column-combined"
        },
        ag = a.agreement,
    )
}

/// `ccc fpga-report OUT`: adds what the FPGA flows left in OUT/fpga to the report of a
/// `ccc compile --rtl` output, next to the fit model's prediction, and rewrites
/// OUT/report.json and OUT/report.md from it.
pub fn update_fpga(out: &std::path::Path) -> anyhow::Result<Report> {
    use anyhow::Context as _;
    let path = out.join("report.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is {} a `ccc compile` output?)",
            path.display(),
            out.display()
        )
    })?;
    let mut report: Report = serde_json::from_str(&text).with_context(|| {
        format!(
            "parsing {} (written by another ccc version? run `ccc compile` again)",
            path.display()
        )
    })?;
    let Some(section) = report.fpga.as_mut() else {
        anyhow::bail!("{} was compiled without RTL: no FPGA flows", out.display());
    };
    section.measured = crate::fpga_report::measure(out)?;
    crate::output::write_file_atomic(&path, report.to_json().as_bytes())?;
    crate::output::write_file_atomic(&out.join("report.md"), report.to_markdown().as_bytes())?;
    Ok(report)
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}
