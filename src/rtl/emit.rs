//! RTL emission: renders a [`HwDesign`] into the files of OUT/rtl — the MX cell and
//! array for the design's widths, the hand-written primitives from `hw/` (embedded in
//! the binary), the model-specific modules `ccc_top` (parameters), `ccc_sched` (schedule
//! ROM), `ccc_wmap` (shift-on-write map of the input), the board-level top, the memory
//! images (`weights_bNN.hex` per weight-memory bank, `cls_w.hex`, `cls_b.hex`) and `rtl.json`, the design itself.
//! Nothing here computes a layout: every number comes from the design.

use anyhow::{Context, Result};

use super::cell::{CellParams, render_array_split, render_cell};
use super::design::{ClassifierImage, HwDesign};
use super::templates;
use crate::output::OutDir;

/// Hand-written primitives (`hw/`, one module per file), leaves first (file name, text).
pub const HW_FILES: [(&str, &str); 20] = [
    ("ccc_sdp_ram.v", include_str!("../../hw/ccc_sdp_ram.v")),
    ("ccc_rep_reg.v", include_str!("../../hw/ccc_rep_reg.v")),
    ("ccc_rep_data.v", include_str!("../../hw/ccc_rep_data.v")),
    (
        "ccc_shift_target.v",
        include_str!("../../hw/ccc_shift_target.v"),
    ),
    (
        "ccc_grid_index.v",
        include_str!("../../hw/ccc_grid_index.v"),
    ),
    ("ccc_col_feed.v", include_str!("../../hw/ccc_col_feed.v")),
    (
        "ccc_requant_window.v",
        include_str!("../../hw/ccc_requant_window.v"),
    ),
    (
        "ccc_requant_clamp.v",
        include_str!("../../hw/ccc_requant_clamp.v"),
    ),
    ("ccc_row_end.v", include_str!("../../hw/ccc_row_end.v")),
    ("ccc_row_unit.v", include_str!("../../hw/ccc_row_unit.v")),
    ("ccc_writer.v", include_str!("../../hw/ccc_writer.v")),
    (
        "ccc_classifier.v",
        include_str!("../../hw/ccc_classifier.v"),
    ),
    ("ccc_logits.v", include_str!("../../hw/ccc_logits.v")),
    ("ccc_loader.v", include_str!("../../hw/ccc_loader.v")),
    ("ccc_token_gen.v", include_str!("../../hw/ccc_token_gen.v")),
    ("ccc_skid.v", include_str!("../../hw/ccc_skid.v")),
    ("ccc_input.v", include_str!("../../hw/ccc_input.v")),
    (
        "ccc_write_merge.v",
        include_str!("../../hw/ccc_write_merge.v"),
    ),
    ("ccc_ctrl.v", include_str!("../../hw/ccc_ctrl.v")),
    ("ccc_core.v", include_str!("../../hw/ccc_core.v")),
];

/// The board-level top the FPGA flows place and route (not simulated).
pub const FPGA_TOP: &str = "ccc_fpga_top.v";
/// The serialized design in OUT/rtl.
pub const DESIGN_FILE: &str = "rtl.json";

/// The Verilog files a simulation of `ccc_top` compiles, in order (OUT/rtl names).
pub fn sim_files() -> Vec<String> {
    let mut v = vec!["ccc_mx_cell.v".to_string(), "ccc_mx_array.v".to_string()];
    v.extend(HW_FILES.iter().map(|(n, _)| n.to_string()));
    v.extend(["ccc_sched.v", "ccc_wmap.v", "ccc_top.v"].map(String::from));
    v
}

/// Every file of OUT/rtl (name, contents), in a fixed order.
pub fn render(d: &HwDesign) -> Result<Vec<(String, String)>> {
    let cap = &d.capacity;
    let cp = CellParams {
        alpha: cap.alpha,
        sel_w: cap.sel_w,
        psum_w: cap.psum_w,
    };
    let mut files: Vec<(String, String)> = vec![
        ("ccc_mx_cell.v".into(), render_cell(&cp)?),
        (
            "ccc_mx_array.v".into(),
            render_array_split(cap.rows, cap.cols, cap.split, &cp)?,
        ),
    ];
    for (name, text) in HW_FILES {
        files.push((name.to_string(), text.to_string()));
    }
    for name in ["ccc_sched.v", "ccc_wmap.v", "ccc_top.v", FPGA_TOP] {
        files.push((name.to_string(), templates::render(name, d)?));
    }
    let words = weights_hex(d);
    let bank = d.capacity.wm_bank;
    if !bank.is_power_of_two() {
        anyhow::bail!("weight-memory bank depth {bank} is not a power of two");
    }
    if d.capacity.wm_banks() > super::design::WM_BANKS_MAX {
        anyhow::bail!(
            "the weight memory needs {} banks of {bank} words ({} tiles x {} rows); the \
             images are named for at most {}",
            d.capacity.wm_banks(),
            d.capacity.tiles,
            d.capacity.rows,
            super::design::WM_BANKS_MAX
        );
    }
    for (b, run) in words.chunks(bank).enumerate() {
        files.push((format!("weights_b{b:02}.hex"), run.concat()));
    }
    let cls = &d.contents.classifier;
    let (w_words, b_words) = head_words(cls, d.capacity.head().lanes, d.capacity.logit_w)?;
    files.push(("cls_w.hex".into(), w_words));
    files.push(("cls_b.hex".into(), b_words));
    // {clamp[7:0], shift[4:0], outputs, inputs}, HN_W bits each count.
    let hn = d.capacity.head().hn_w;
    let lt_w = 13 + 2 * hn;
    files.push((
        "cls_l.hex".into(),
        cls.layers
            .iter()
            .map(|l| {
                let v = (u64::from(l.clamp) << (2 * hn + 5))
                    | (u64::from(l.shift) << (2 * hn))
                    | ((l.outputs as u64) << hn)
                    | l.inputs as u64;
                format!("{v:0w$x}\n", w = lt_w.div_ceil(4))
            })
            .collect(),
    ));
    files.push((DESIGN_FILE.into(), crate::output::json_text(d)?));
    Ok(files)
}

/// Writes every file of OUT/rtl into a staged output directory.
pub fn write(d: &HwDesign, out: &OutDir) -> Result<()> {
    for (name, text) in render(d)? {
        out.write(&format!("rtl/{name}"), text.as_bytes())?;
    }
    Ok(())
}

/// The weight memory image, one line per word (the banks' images are runs of it), fields as [`super::design::WordLayout`]
/// places them.
fn weights_hex(d: &HwDesign) -> Vec<String> {
    let cap = &d.capacity;
    let (l, wd) = (&cap.word, &cap.widths);
    let mut lines = Vec::new();
    for w in &d.contents.weight_words {
        let mut word = vec![false; l.width];
        let mut put = |lsb: usize, width: usize, v: u64| {
            for b in 0..width {
                word[lsb + b] = (v >> b) & 1 == 1;
            }
        };
        for (b, bank) in w.banks.iter().enumerate() {
            put(
                l.bias_lsb + b * l.bank_w,
                cap.acc_w,
                bank.bias as u32 as u64,
            );
            if let Some(t) = &bank.target {
                let at = l.target_lsb + b * l.bank_w;
                put(at, l.offset_w, t.offset as u64);
                // put() keeps the low `width` bits: the two's complement of dx, dy.
                let tw = wd.tap_w;
                put(at + l.offset_w, tw, t.dx as u64);
                put(at + l.offset_w + tw, tw, t.dy as u64);
                put(at + l.offset_w + 2 * tw, wd.lane_w, t.lane as u64);
                put(at + l.offset_w + 2 * tw + wd.lane_w, wd.col_w, t.col as u64);
                put(at + l.target_w - 1, 1, 1);
            }
        }
        for (cc, (&wt, &sel)) in w.weights.iter().zip(&w.selectors).enumerate() {
            let f = cc * l.cell_w;
            put(f, cap.sel_w, sel as u64);
            put(f + cap.sel_w, 8, wt as u8 as u64);
        }
        lines.push(hex_word(&word) + "\n");
    }
    lines
}

/// A bit vector (LSB first) as hex, most significant digit first.
fn hex_word(bits: &[bool]) -> String {
    let digits = bits.len().div_ceil(4);
    (0..digits)
        .rev()
        .map(|d| {
            let v = (0..4).fold(0u8, |acc, b| {
                let i = d * 4 + b;
                acc | (((i < bits.len() && bits[i]) as u8) << b)
            });
            char::from_digit(v as u32, 16).expect("nibble")
        })
        .collect()
}

/// The head's weight and bias images for `lanes` MAC lanes: per layer, per block of
/// `lanes` outputs, one weight word per input (lane l in byte l) and one bias word
/// (LOGIT_W bits per lane, lane l in the l-th field from the bottom); outputs past the
/// layer's last are zeros.
fn head_words(cls: &ClassifierImage, lanes: usize, logit_w: usize) -> Result<(String, String)> {
    let mask = u64::MAX >> (64 - logit_w);
    let mut w_out = String::new();
    let mut b_out = String::new();
    let (mut wi, mut bi) = (0, 0);
    for l in &cls.layers {
        let weights = cls
            .weight
            .get(wi..wi + l.outputs * l.inputs)
            .context("the head's weight image is shorter than its layer table")?;
        let biases = cls
            .bias
            .get(bi..bi + l.outputs)
            .context("the head's bias image is shorter than its layer table")?;
        (wi, bi) = (wi + l.outputs * l.inputs, bi + l.outputs);
        for block in 0..l.outputs.div_ceil(lanes) {
            let outs = block * lanes..(block + 1) * lanes;
            for i in 0..l.inputs {
                for o in outs.clone().rev() {
                    let w = if o < l.outputs {
                        weights[o * l.inputs + i]
                    } else {
                        0
                    };
                    w_out.push_str(&format!("{:02x}", w as u8));
                }
                w_out.push('\n');
            }
            // The lanes' biases as one bit vector, lane 0 lowest (LOGIT_W need not be a
            // multiple of 4, so the fields are packed before they become hex digits).
            let mut bits = Vec::with_capacity(lanes * logit_w);
            for o in outs {
                let b = if o < l.outputs {
                    biases[o] as u32 as u64 & mask
                } else {
                    0
                };
                bits.extend((0..logit_w).map(|k| (b >> k) & 1 == 1));
            }
            b_out.push_str(&hex_word(&bits));
            b_out.push('\n');
        }
    }
    Ok((w_out, b_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtl::design::HeadLayer;

    #[test]
    fn head_words_put_lane_l_in_byte_l_and_pad_the_last_block() {
        // One layer, 3 outputs x 2 inputs, on 2 lanes: blocks {0, 1} and {2, pad}.
        let cls = ClassifierImage {
            weight: vec![1, 2, 3, 4, -1, -2],
            bias: vec![5, -6, 7],
            layers: vec![HeadLayer {
                inputs: 2,
                outputs: 3,
                shift: 0,
                clamp: 0,
            }],
        };
        let (w, b) = head_words(&cls, 2, 6).unwrap();
        // Input 0 of block 0: w[1][0] = 3 (lane 1, high byte), w[0][0] = 1.
        assert_eq!(w, "0301\n0402\n00ff\n00fe\n");
        // 6-bit biases: lane 1 above lane 0, 12 bits = 3 hex digits; -6 is 0b111010.
        assert_eq!(b, format!("{:03x}\n{:03x}\n", (0b111010 << 6) | 5, 7));
        // One lane: the one-lane images as before lanes (a byte per line, LOGIT_W digits).
        let (w1, b1) = head_words(&cls, 1, 6).unwrap();
        assert_eq!(w1, "01\n02\n03\n04\nff\nfe\n");
        assert_eq!(b1, "05\n3a\n07\n");
        // A table longer than the image is an error, not a panic.
        let short = ClassifierImage {
            weight: vec![1],
            ..cls
        };
        assert!(head_words(&short, 2, 6).is_err());
    }
}
