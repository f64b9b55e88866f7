//! FPGA section of the report: the fit model's prediction (src/fit.rs) next to what the
//! flows measured (yosys utilisation in OUT/fpga/synth_*.txt, per-module statistics in
//! OUT/fpga/hier_*.txt, nextpnr's JSON report with Fmax, run times), for the packed
//! design and its dense baseline on the same array. `ccc compile` writes the prediction;
//! `ccc fpga-report OUT` adds the measurements to OUT/report.{json,md}.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fit::{Estimate, Family, Prediction, Resources};

/// What place and route reported for one family.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pnr {
    pub device: String,
    /// Achieved / constrained frequency per clock, MHz.
    pub fmax_mhz: BTreeMap<String, (f64, f64)>,
    /// nextpnr's utilisation: cell type -> (used, available).
    pub utilization: BTreeMap<String, (u64, u64)>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Measured {
    /// yosys, flattened board-level top, per family.
    pub synth: BTreeMap<String, Resources>,
    /// yosys with hierarchy kept (ccc_top, ports included): whole design, per family.
    pub hier: BTreeMap<String, Resources>,
    /// yosys per module (hierarchy kept): one MX cell and the whole array, per family.
    pub cell: BTreeMap<String, Resources>,
    pub array: BTreeMap<String, Resources>,
    pub pnr: BTreeMap<String, Pnr>,
    pub failed_pnr: Vec<String>,
    /// Seconds per flow step (OUT/fpga/times.txt).
    pub seconds: BTreeMap<String, f64>,
    pub bitstreams: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FpgaSection {
    pub prediction: Prediction,
    /// Steady-state cycles between images (the schedule's interval): with a measured
    /// Fmax, inferences/s = Fmax / interval.
    #[serde(default)]
    pub interval_cycles: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    /// What the model needs stored against the block RAM taken, per family (iCE40, ECP5).
    #[serde(default)]
    pub memory: Vec<crate::fit::MemoryBudget>,
}

fn family_key(f: Family) -> &'static str {
    match f {
        Family::Generic => "generic",
        Family::Ice40 => "ice40",
        Family::Ecp5 => "ecp5",
    }
}

/// Cell counts of one yosys `stat` section: cell type -> count.
fn stat_cells(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 2
            && let Ok(n) = f[1].parse::<u64>()
        {
            m.insert(f[0].to_string(), n);
        }
    }
    m
}

/// Resources from yosys cell counts of `family`.
pub fn resources(family: &str, cells: &BTreeMap<String, u64>) -> Resources {
    let sum = |pred: &dyn Fn(&str) -> bool| -> u64 {
        cells.iter().filter(|(k, _)| pred(k)).map(|(_, v)| *v).sum()
    };
    match family {
        "ice40" => Resources {
            lut: sum(&|k| k == "SB_LUT4"),
            dff: sum(&|k| k.starts_with("SB_DFF")),
            carry: sum(&|k| k == "SB_CARRY"),
            bram: sum(&|k| k == "SB_RAM40_4K"),
            dsp: sum(&|k| k == "SB_MAC16"),
        },
        "ecp5" => Resources {
            lut: sum(&|k| k == "LUT4") + 2 * sum(&|k| k == "TRELLIS_DPR16X4"),
            dff: sum(&|k| k == "TRELLIS_FF"),
            carry: sum(&|k| k == "CCU2C"),
            bram: sum(&|k| k == "DP16KD"),
            dsp: sum(&|k| k == "MULT18X18D"),
        },
        _ => Resources {
            lut: sum(&|k| k == "$lut"),
            dff: sum(&|k| k.contains("DFF") || k.contains("dff")),
            carry: 0,
            bram: 0,
            dsp: sum(&|k| k.contains("$mul")),
        },
    }
}

/// Splits a yosys `stat` output into its `=== name ===` sections.
fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("=== ").and_then(|r| r.strip_suffix(" ===")) {
            out.push((name.to_string(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

/// One MX cell and the whole array from a per-module `stat -top` output.
fn cell_and_array(family: &str, text: &str) -> Option<(Resources, Resources)> {
    let secs = sections(text);
    let cell = secs.iter().find(|(n, _)| n.ends_with("ccc_mx_cell"))?;
    let cell_r = resources(family, &stat_cells(&cell.1));
    // Instances of the cell: the count after its name in the hierarchy listing.
    let n: u64 = secs
        .iter()
        .find(|(n, _)| n == "design hierarchy")?
        .1
        .lines()
        .find(|l| l.contains("ccc_mx_cell"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())?;
    Some((cell_r, cell_r * n))
}

/// Reads what the flows left in OUT/fpga (None when no flow ran).
pub fn measure(out: &Path) -> Result<Option<Measured>> {
    let dir = out.join("fpga");
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut m = Measured::default();
    for fam in ["generic", "ice40", "ecp5"] {
        let p = dir.join(format!("synth_{fam}.txt"));
        if let Ok(text) = std::fs::read_to_string(&p) {
            // The last section is the whole (flattened) design.
            let body = sections(&text)
                .last()
                .map(|s| s.1.clone())
                .unwrap_or(text.clone());
            m.synth
                .insert(fam.to_string(), resources(fam, &stat_cells(&body)));
        }
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("hier_{fam}.txt"))) {
            if let Some((_, body)) = sections(&text).last() {
                m.hier
                    .insert(fam.to_string(), resources(fam, &stat_cells(body)));
            }
            if let Some((c, a)) = cell_and_array(fam, &text) {
                m.cell.insert(fam.to_string(), c);
                m.array.insert(fam.to_string(), a);
            }
        }
        let rep = dir.join(format!("{fam}_pnr.json"));
        if let Ok(text) = std::fs::read_to_string(&rep) {
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", rep.display()))?;
            let mut pnr = Pnr {
                device: std::fs::read_to_string(dir.join(format!("{fam}_pnr.device")))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                fmax_mhz: BTreeMap::new(),
                utilization: BTreeMap::new(),
            };
            if let Some(f) = v.get("fmax").and_then(|f| f.as_object()) {
                for (clk, x) in f {
                    let g = |k: &str| x.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
                    pnr.fmax_mhz
                        .insert(clk.clone(), (g("achieved"), g("constraint")));
                }
            }
            if let Some(u) = v.get("utilization").and_then(|u| u.as_object()) {
                for (k, x) in u {
                    let g = |k: &str| x.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                    if g("used") > 0 {
                        pnr.utilization
                            .insert(k.clone(), (g("used"), g("available")));
                    }
                }
            }
            m.pnr.insert(fam.to_string(), pnr);
        }
        if let Ok(t) = std::fs::read_to_string(dir.join(format!("{fam}_pnr.failed"))) {
            m.failed_pnr.push(t.trim().to_string());
        }
    }
    if let Ok(t) = std::fs::read_to_string(dir.join("times.txt")) {
        for line in t.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [k, v] = f.as_slice()
                && let Ok(s) = v.parse::<f64>()
            {
                m.seconds.insert(k.to_string(), s);
            }
        }
    }
    for b in ["ice40.bin", "ecp5.bit"] {
        if dir.join(b).exists() {
            m.bitstreams.push(format!("fpga/{b}"));
        }
    }
    Ok(Some(m))
}

fn pct(pred: u64, meas: u64) -> String {
    if meas == 0 {
        if pred == 0 { "0%".into() } else { "–".into() }
    } else {
        format!("{:+.0}%", 100.0 * (pred as f64 - meas as f64) / meas as f64)
    }
}

fn est(v: &[Estimate], f: Family) -> Option<&Estimate> {
    v.iter().find(|e| e.family == f)
}

impl FpgaSection {
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let p = &self.prediction;
        let _ = writeln!(s, "## FPGA resources\n");
        let _ = writeln!(
            s,
            "Predicted by the fit model (`src/fit.rs`, calibrated against yosys 0.23){}; measured by `make synth` / `make pnr` (`docs/FPGA.md`). LUT4 on ECP5 include 2 per LUT-RAM (DPR16X4).\n",
            match p.target {
                Some(t) => format!(", checked against `--target {}`", t.name()),
                None => String::new(),
            }
        );
        let m = self.measured.as_ref();
        let _ = writeln!(
            s,
            "| family | | LUT4 | FF | carry | BRAM | DSP | Fmax (MHz) |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
        for e in &p.packed {
            let k = family_key(e.family);
            let t = &e.total;
            let _ = writeln!(
                s,
                "| {k} | predicted | {} | {} | {} | {} | {} | |",
                t.lut, t.dff, t.carry, t.bram, t.dsp
            );
            // The flattened prediction (the family's flattened share of the LUT4 sum); the error
            // against the flattened measurement is taken from it. The device check adds
            // the carries' LUT slots to it.
            let t = &crate::fit::flattened(e);
            if t.lut != e.total.lut {
                let _ = writeln!(
                    s,
                    "| {k} | predicted, flattened | {} | {} | {} | {} | {} | |",
                    t.lut, t.dff, t.carry, t.bram, t.dsp
                );
            }
            if let Some(r) = m.and_then(|m| m.hier.get(k)) {
                let _ = writeln!(
                    s,
                    "| {k} | measured, hierarchy kept | {} | {} | {} | {} | {} | |",
                    r.lut, r.dff, r.carry, r.bram, r.dsp
                );
            }
            if let Some(r) = m.and_then(|m| m.synth.get(k)) {
                let fmax = m
                    .and_then(|m| m.pnr.get(k))
                    .map(|p| {
                        p.fmax_mhz
                            .values()
                            .map(|(a, _)| format!("{a:.1}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "| {k} | measured | {} | {} | {} | {} | {} | {fmax} |",
                    r.lut, r.dff, r.carry, r.bram, r.dsp
                );
                let _ = writeln!(
                    s,
                    "| {k} | error | {} | {} | {} | {} | {} | |",
                    pct(t.lut, r.lut),
                    pct(t.dff, r.dff),
                    pct(t.carry, r.carry),
                    pct(t.bram, r.bram),
                    pct(t.dsp, r.dsp)
                );
            }
        }
        for b in &self.memory {
            let _ = writeln!(
                s,
                "\n### Memory: needed bits against block RAM ({}, predicted)\n\n{}",
                family_key(b.family),
                crate::fit::memory_markdown(b)
            );
        }
        // Per cell and per array.
        let _ = writeln!(
            s,
            "\n### Per cell and per array\n\n| family | | LUT4 per cell | FF per cell | array LUT4 | array FF |\n|---|---|---:|---:|---:|---:|"
        );
        for e in &p.packed {
            let k = family_key(e.family);
            if let Some(c) = e.component("cell") {
                let _ = writeln!(
                    s,
                    "| {k} | predicted | {} | {} | {} | {} |",
                    c.each.lut, c.each.dff, c.total.lut, c.total.dff
                );
            }
            if let (Some(c), Some(a)) = (
                m.and_then(|m| m.cell.get(k)),
                m.and_then(|m| m.array.get(k)),
            ) {
                let _ = writeln!(
                    s,
                    "| {k} | measured (hierarchy kept) | {} | {} | {} | {} |",
                    c.lut, c.dff, a.lut, a.dff
                );
            }
        }
        // Dense baseline vs column-combined.
        if !p.dense.is_empty() {
            let _ = writeln!(
                s,
                "\n### Dense baseline vs column-combined (same array, predicted)\n\n| family | | LUT4 | FF | BRAM | tap-buffer words (A_D) | tiles |\n|---|---|---:|---:|---:|---:|---:|"
            );
            for (name, v) in [("column-combined", &p.packed), ("dense", &p.dense)] {
                for f in [Family::Ice40, Family::Ecp5] {
                    if let Some(e) = est(v, f) {
                        let _ = writeln!(
                            s,
                            "| {} | {name} | {} | {} | {} | {} | {} |",
                            family_key(f),
                            e.total.lut,
                            e.total.dff,
                            e.total.bram,
                            e.capacity.a_d,
                            e.capacity.tiles
                        );
                    }
                }
            }
        }
        if let Some(e) = est(&p.packed, Family::Ice40) {
            let _ = writeln!(
                s,
                "\n### Components (iCE40, predicted)\n\n{}",
                crate::fit::components_markdown(e)
            );
        }
        if let Some(m) = m {
            for (k, pnr) in &m.pnr {
                let _ = writeln!(s, "\n### Place and route: {k} ({})\n", pnr.device);
                for (clk, (a, c)) in &pnr.fmax_mhz {
                    let _ = writeln!(s, "- Fmax `{clk}`: {a:.2} MHz (constraint {c:.2} MHz)");
                    if self.interval_cycles > 0 {
                        let _ = writeln!(
                            s,
                            "- at {} cycles per image: {:.0} inferences/s",
                            self.interval_cycles,
                            a * 1e6 / self.interval_cycles as f64
                        );
                    }
                }
                for (cell, (u, av)) in &pnr.utilization {
                    let _ = writeln!(s, "- {cell}: {u} / {av}");
                }
            }
            for f in &m.failed_pnr {
                let _ = writeln!(s, "\nPlace and route failed: {f} (see OUT/fpga/*_pnr.log)");
            }
            if !m.bitstreams.is_empty() {
                let _ = writeln!(s, "\nBitstreams: {}", m.bitstreams.join(", "));
            }
            if !m.seconds.is_empty() {
                let _ = writeln!(s, "\nRun times (s): {}", {
                    m.seconds
                        .iter()
                        .map(|(k, v)| format!("{k} {v:.0}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                });
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the flows left for a tiny model on a 2x2 array (tests/data/flow-sample: yosys
    /// 0.23 `stat` of the flattened and the per-module runs, nextpnr-ice40's JSON report
    /// with its critical paths cut short, the flow's run times).
    const SAMPLE: [(&str, &str); 8] = [
        (
            "synth_ice40.txt",
            include_str!("../tests/data/flow-sample/synth_ice40.txt"),
        ),
        (
            "synth_ecp5.txt",
            include_str!("../tests/data/flow-sample/synth_ecp5.txt"),
        ),
        (
            "hier_ice40.txt",
            include_str!("../tests/data/flow-sample/hier_ice40.txt"),
        ),
        (
            "hier_ecp5.txt",
            include_str!("../tests/data/flow-sample/hier_ecp5.txt"),
        ),
        (
            "ice40_pnr.json",
            include_str!("../tests/data/flow-sample/ice40_pnr.json"),
        ),
        (
            "ice40_pnr.device",
            include_str!("../tests/data/flow-sample/ice40_pnr.device"),
        ),
        (
            "times.txt",
            include_str!("../tests/data/flow-sample/times.txt"),
        ),
        ("ecp5_pnr.failed", "ecp5 place and route: router2 gave up\n"),
    ];

    #[test]
    fn stat_sections_and_cells_parse() {
        let text = SAMPLE[0].1;
        let secs = sections(text);
        assert_eq!(secs.len(), 1);
        assert_eq!(secs[0].0, "ccc_fpga_top");
        let cells = stat_cells(&secs[0].1);
        assert_eq!(cells["SB_LUT4"], 1904);
        assert_eq!(cells["SB_RAM40_4K"], 8);
        // "Number of cells: 3977" is a sentence, not a cell type.
        assert!(!cells.contains_key("Number"));
        let r = resources("ice40", &cells);
        assert_eq!(
            r,
            Resources {
                lut: 1904,
                dff: 19 + 450 + 797 + 3 + 205 + 6,
                carry: 585,
                bram: 8,
                dsp: 0,
            }
        );
        // ECP5: two LUT4 per DPR16X4 (a LUT RAM takes a slice's two LUTs).
        let e = resources("ecp5", &stat_cells(&sections(SAMPLE[1].1)[0].1));
        assert_eq!(
            (e.lut, e.dff, e.carry, e.bram, e.dsp),
            (1236 + 12, 1376, 333, 4, 2)
        );
    }

    #[test]
    fn per_module_stat_gives_one_cell_and_the_array() {
        let (cell, array) = cell_and_array("ice40", SAMPLE[2].1).unwrap();
        assert_eq!((cell.lut, cell.dff, cell.carry), (14, 35, 9));
        // Four instances in the design hierarchy (2x2 array).
        assert_eq!(array, cell * 4);
        // The last section is the whole design.
        let whole = resources(
            "ice40",
            &stat_cells(&sections(SAMPLE[2].1).last().unwrap().1),
        );
        assert_eq!((whole.lut, whole.bram), (2561, 14));
        assert!(cell_and_array("ice40", "=== x ===\n   SB_LUT4 3\n").is_none());
    }

    #[test]
    fn measure_reads_every_flow_file() {
        let d = tempfile::tempdir().unwrap();
        assert!(
            measure(d.path()).unwrap().is_none(),
            "no OUT/fpga: no flow ran"
        );
        let fpga = d.path().join("fpga");
        std::fs::create_dir(&fpga).unwrap();
        for (name, text) in SAMPLE {
            std::fs::write(fpga.join(name), text).unwrap();
        }
        let m = measure(d.path()).unwrap().unwrap();
        assert_eq!(m.synth["ice40"].lut, 1904);
        assert_eq!(m.synth["ecp5"].carry, 333);
        assert_eq!(m.hier["ice40"].lut, 2561);
        assert_eq!(m.cell["ice40"].lut, 14);
        let p = &m.pnr["ice40"];
        assert_eq!(p.device, "ice40 hx8k ct256 12");
        let (achieved, constraint) = p.fmax_mhz["clk$SB_IO_IN_$glb_clk"];
        assert!((achieved - 47.881).abs() < 1e-3 && constraint == 12.0);
        assert_eq!(p.utilization["ICESTORM_LC"], (3072, 7680));
        assert!(
            !p.utilization.contains_key("ICESTORM_PLL"),
            "unused cells are left out"
        );
        assert_eq!(m.failed_pnr, vec!["ecp5 place and route: router2 gave up"]);
        assert!((m.seconds["pnr_ice40"] - 17.47).abs() < 0.01);
        assert!(m.bitstreams.is_empty());
        std::fs::write(fpga.join("ice40_pnr.json"), "{ not json").unwrap();
        let e = measure(d.path()).unwrap_err().to_string();
        assert!(e.contains("ice40_pnr.json"), "{e}");
    }
}
