//! RTL emission: turns a compiled model into OUT/rtl — the generic accelerator from
//! `hw/` (embedded in the binary), the MX cell and array rendered for the array, and
//! the model-specific parts: `ccc_top` (parameters), `ccc_sched` (per-tile schedule
//! ROM), `ccc_wmap` (shift-on-write map ROM) and the memory images (`weights.hex`,
//! `cls_w.hex`, `cls_b.hex`). Also the numbers the simulators need (`rtl.json`).

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use tera::{Context, Tera};

use super::cell::{CellParams, ceil_log2, render_array, render_cell};
use crate::compile::Compiled;
use crate::output::OutDir;
use crate::pack::network::{PackedLayer, PackedNet};
use crate::schedule::{ArrayShape, Schedule, input_phases};

/// Hand-written primitives, in dependency order (file name, text).
pub const HW_FILES: [(&str, &str); 10] = [
    ("ccc_sdp_ram.v", include_str!("../../hw/ccc_sdp_ram.v")),
    (
        "ccc_shift_target.v",
        include_str!("../../hw/ccc_shift_target.v"),
    ),
    (
        "ccc_grid_index.v",
        include_str!("../../hw/ccc_grid_index.v"),
    ),
    ("ccc_col_feed.v", include_str!("../../hw/ccc_col_feed.v")),
    ("ccc_requant.v", include_str!("../../hw/ccc_requant.v")),
    ("ccc_row_end.v", include_str!("../../hw/ccc_row_end.v")),
    ("ccc_row_unit.v", include_str!("../../hw/ccc_row_unit.v")),
    ("ccc_writer.v", include_str!("../../hw/ccc_writer.v")),
    (
        "ccc_classifier.v",
        include_str!("../../hw/ccc_classifier.v"),
    ),
    ("ccc_core.v", include_str!("../../hw/ccc_core.v")),
];

const TOP_TEMPLATE: &str = include_str!("../../templates/ccc_top.v.tera");
const SCHED_TEMPLATE: &str = include_str!("../../templates/ccc_sched.v.tera");
const WMAP_TEMPLATE: &str = include_str!("../../templates/ccc_wmap.v.tera");
const FPGA_TOP_TEMPLATE: &str = include_str!("../../templates/ccc_fpga_top.v.tera");
/// The board-level top the FPGA flows place and route (not simulated: `files` omits it).
pub const FPGA_TOP: &str = "ccc_fpga_top.v";

/// Bits to hold the value `v` (at least 1).
pub fn bits(v: usize) -> usize {
    ceil_log2(v + 1).max(1)
}

#[derive(Clone, Debug, Serialize)]
struct TileRow {
    index: usize,
    layer: usize,
    first: u8,
    last: u8,
    #[serde(rename = "final")]
    final_: u8,
    layer_end: u8,
    row0: usize,
    col0: usize,
    nrows: usize,
    pixels: usize,
    wo: usize,
    rbase: usize,
    rkm1: usize,
    rstep: usize,
    wsmask: usize,
    wlk: usize,
    wla: usize,
    wwo: usize,
    wlh: usize,
    wlw: usize,
    shift_lit: String,
    clamp: i32,
    tp: usize,
}

/// Where a value goes in a tap buffer (see `ccc_writer` / `ccc_row_unit`).
#[derive(Clone, Debug)]
struct Target {
    col: usize,
    lane: usize,
    dy: i64,
    dx: i64,
    offset: i64,
}

/// How a layer's input sits in its compact tap buffers: the layer reads output pixel
/// (yo, xo) at position (yo·s, xo·s) of every tap, so only those positions are stored,
/// in output order, `2^lk` consecutive pixels per word (byte lanes `(p mod 2^lk)·α + u`)
/// when α is a power of two below the array's ALPHA. Writers (the input writer for the
/// first layer, the previous layer's rows otherwise) need all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufLayout {
    pub stride: usize,
    pub lk: usize,
    pub la: usize,
    pub words_per_block: usize,
    /// Width of the layer's output: the row length of its grid index.
    pub wo: usize,
    /// One past the last input row / column the layer reads, capped at the map's size:
    /// positions beyond it are never stored.
    pub h_lim: usize,
    pub w_lim: usize,
}

impl BufLayout {
    pub fn new(l: &PackedLayer, alpha_max: usize) -> Result<Self> {
        if !l.stride.is_power_of_two() || l.stride > 128 {
            bail!(
                "stride {} is not supported by the RTL (compact tap buffers need a power of two up to 128)",
                l.stride
            );
        }
        let lk = if l.alpha.is_power_of_two() && l.alpha < alpha_max {
            (alpha_max / l.alpha).ilog2() as usize
        } else {
            0
        };
        let la = if lk > 0 { l.alpha.ilog2() as usize } else { 0 };
        let limit =
            |input: usize, output: usize| (output.saturating_sub(1) * l.stride + 1).min(input);
        Ok(Self {
            stride: l.stride,
            lk,
            la,
            words_per_block: l.output.pixels().div_ceil(1 << lk).max(1),
            wo: l.output.w,
            h_lim: limit(l.input.h, l.output.h),
            w_lim: limit(l.input.w, l.output.w),
        })
    }
}

#[derive(Clone, Debug, Serialize)]
struct MapSlot {
    col: usize,
    lane: usize,
    dy_lit: String,
    dx_lit: String,
    offset_lit: String,
}

/// One write-map ROM entry: the taps of one input channel written in one cycle.
#[derive(Clone, Debug, Serialize)]
struct MapEntry {
    index: usize,
    slots: Vec<MapSlot>,
    what: String,
}

/// Everything about the emitted design that drivers and the report need.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RtlInfo {
    pub rows: usize,
    pub cols: usize,
    pub alpha: usize,
    pub sel_w: usize,
    pub psum_w: usize,
    pub tiles: usize,
    pub layers: usize,
    pub tp: usize,
    pub a_d: usize,
    pub wm_aw: usize,
    pub wm_w: usize,
    pub n_w: usize,
    pub pix_w: usize,
    pub layer_w: usize,
    pub in_c: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_wpc: usize,
    pub classes: usize,
    /// Tap-buffer address width, partial-sum words per row, pooled channels and their
    /// width (the FPGA fit model's inputs; absent in older rtl.json files).
    #[serde(default)]
    pub a_w: usize,
    #[serde(default)]
    pub psum_d: usize,
    #[serde(default)]
    pub ch: usize,
    #[serde(default)]
    pub pool_w: usize,
    /// Physical-to-model channel order of every layer (row_perm).
    pub row_perm: Vec<Vec<usize>>,
    /// Output map (channels, height, width) of every layer.
    pub layer_dims: Vec<[usize; 3]>,
    pub files: Vec<String>,
}

fn slit(width: usize, v: i64) -> String {
    if v < 0 {
        format!("-{width}'sd{}", -v)
    } else {
        format!("{width}'sd{v}")
    }
}

/// Builds the tables and renders every file of OUT/rtl.
pub fn emit(c: &Compiled, out: &OutDir) -> Result<RtlInfo> {
    let net = &c.packed;
    let sched = &c.schedule;
    let a = sched.array;
    let (files, info) = render_all(net, sched, a, &c.source.display().to_string())?;
    for (name, text) in &files {
        out.write(&format!("rtl/{name}"), text.as_bytes())?;
    }
    Ok(info)
}

/// Renders all RTL files (name, contents), in a fixed order.
pub fn render_all(
    net: &PackedNet,
    sched: &Schedule,
    a: ArrayShape,
    source: &str,
) -> Result<(Vec<(String, String)>, RtlInfo)> {
    let (r, c) = (a.rows, a.cols);
    if net.layers.is_empty() {
        bail!("{}: RTL needs at least one conv layer", net.name);
    }
    let alpha = net.layers.iter().map(|l| l.alpha).max().unwrap_or(1).max(1);
    let cp = CellParams::for_array(alpha, c);
    let tp = sched
        .layers
        .iter()
        .flat_map(|l| l.tiles.iter().map(|t| t.tp as usize))
        .max()
        .unwrap_or(8);
    let nl = net.layers.len();

    // Tap-buffer regions: layer l's column blocks, each its compact buffer.
    let layouts = net
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            BufLayout::new(l, alpha)
                .with_context(|| format!("{}: conv layer {i} ({})", net.name, l.weight_name))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut region = Vec::with_capacity(nl);
    let mut a_d = 0usize;
    for (l, lay) in net.layers.iter().zip(&layouts) {
        region.push(a_d);
        a_d += l.groups_len().div_ceil(c).max(1) * lay.words_per_block;
    }
    let max_pixels = net
        .layers
        .iter()
        .flat_map(|l| [l.input.pixels(), l.output.pixels()])
        .max()
        .unwrap_or(1);
    let pix_w = bits(max_pixels);
    let a_w = bits(a_d).max(pix_w);
    let max_h = net
        .layers
        .iter()
        .flat_map(|l| [l.input.h, l.output.h])
        .max()
        .unwrap_or(1);
    let max_w = net
        .layers
        .iter()
        .flat_map(|l| [l.input.w, l.output.w])
        .max()
        .unwrap_or(1);
    let max_ch = net
        .layers
        .iter()
        .flat_map(|l| [l.input.c, l.output.c])
        .max()
        .unwrap_or(1)
        .max(r);
    let (y_w, x_w, n_w) = (bits(max_h), bits(max_w), bits(max_ch));

    let col_w = ceil_log2(c).max(1);
    let lane_w = ceil_log2(alpha).max(1);
    let s_w = bits(layouts.iter().map(|b| b.stride - 1).max().unwrap_or(0));
    let lk_w = bits(lane_w);
    // Shift-on-write target of packed tap `u` of layer `l_reader`: its column memory,
    // lane, (dy, dx) and the offset that turns the writer's grid index into the tap's
    // position in its compact buffer (`ccc_shift_target`).
    let target = |l_reader: usize, u: usize| -> Result<Target> {
        let reader = &net.layers[l_reader];
        let g = reader.group_of(u);
        let tap = reader.taps[u];
        if tap.dy.abs() > 127 || tap.dx.abs() > 127 {
            bail!(
                "tap offset ({}, {}) exceeds the RTL's 8-bit range",
                tap.dy,
                tap.dx
            );
        }
        let lay = &layouts[l_reader];
        let base = (region[l_reader] + (g / c) * lay.words_per_block) << lay.lk;
        let s = lay.stride as i64;
        Ok(Target {
            col: g % c,
            lane: u - reader.group_offsets[g],
            dy: tap.dy,
            dx: tap.dx,
            offset: base as i64 - tap.dy.div_euclid(s) * lay.wo as i64 - tap.dx.div_euclid(s),
        })
    };

    // Write map of the input image: each channel's first-layer taps in phases, one tap
    // per column per phase (`in_wpc` phases per channel; usually 1).
    let first = &net.layers[0];
    let in_c = first.input.c;
    let mut phases: Vec<Vec<Vec<(usize, Target)>>> = vec![Vec::new(); in_c];
    for (ch, us) in first.readers(in_c).iter().enumerate() {
        for &u in us {
            let tg = target(0, u)?;
            let ph = &mut phases[ch];
            match ph
                .iter_mut()
                .find(|p| p.iter().all(|(_, o)| o.col != tg.col))
            {
                Some(p) => p.push((u, tg)),
                None => ph.push(vec![(u, tg)]),
            }
        }
    }
    // First-fit into phases gives exactly the count the cycle model uses.
    let in_wpc = input_phases(net, a);
    debug_assert_eq!(
        in_wpc,
        phases.iter().map(Vec::len).max().unwrap_or(1).max(1)
    );
    let mut entries: Vec<MapEntry> = Vec::new();
    for (ch, ph) in phases.iter().enumerate() {
        for (k, slots) in ph.iter().enumerate() {
            entries.push(MapEntry {
                index: ch * in_wpc + k,
                slots: slots
                    .iter()
                    .map(|(_, t)| MapSlot {
                        col: t.col,
                        lane: t.lane,
                        dy_lit: slit(8, t.dy),
                        dx_lit: slit(8, t.dx),
                        offset_lit: slit(a_w + lane_w + 1, t.offset),
                    })
                    .collect(),
                what: format!(
                    "input channel {ch}, phase {k}: layer 0 taps {:?}",
                    slots.iter().map(|(u, _)| *u).collect::<Vec<_>>()
                ),
            });
        }
    }
    let map_aw = bits((in_c * in_wpc).max(1) - 1);

    // Each layer's rows write their channel to the one next-layer tap that reads it.
    let mut row_targets: Vec<Vec<Option<Target>>> = Vec::with_capacity(nl);
    for l in 0..nl {
        let mut t: Vec<Option<Target>> = vec![None; net.layers[l].output.c];
        if let Some(reader) = net.layers.get(l + 1) {
            for (n, us) in reader.readers(net.layers[l].output.c).iter().enumerate() {
                match us.as_slice() {
                    [] => {}
                    [u] => t[n] = Some(target(l + 1, *u)?),
                    _ => bail!(
                        "{}: conv layer {} reads channel {n} through {} taps; the RTL supports a KxK conv only as the first layer (compile with --no-rtl for reports only)",
                        net.name,
                        l + 1,
                        us.len()
                    ),
                }
            }
        }
        row_targets.push(t);
    }

    // Schedule rows and weight words: {target, bias, columns' {weight, selector}}.
    let qw = a_w + lane_w;
    let tgt_w = 1 + col_w + lane_w + 16 + qw + 1;
    let wm_w = c * (8 + cp.sel_w) + 32 + tgt_w;
    let mut tiles = Vec::new();
    let mut words: Vec<String> = Vec::new();
    for (li, (l, ls)) in net.layers.iter().zip(&sched.layers).enumerate() {
        let n = l.rows();
        for (ti, t) in ls.tiles.iter().enumerate() {
            let cb = t.col0 / c;
            let lay = &layouts[li];
            let next = layouts.get(li + 1);
            tiles.push(TileRow {
                index: tiles.len(),
                layer: li,
                first: t.first as u8,
                last: t.last as u8,
                final_: (li + 1 == nl) as u8,
                layer_end: (ti + 1 == ls.tiles.len()) as u8,
                row0: t.row0,
                col0: t.col0,
                nrows: n,
                pixels: l.output.pixels(),
                wo: l.output.w,
                rbase: region[li] + cb * lay.words_per_block,
                rkm1: (1 << lay.lk) - 1,
                rstep: if lay.lk > 0 { l.alpha } else { 0 },
                wsmask: next.map_or(0, |b| b.stride - 1),
                wlk: next.map_or(0, |b| b.lk),
                wla: next.map_or(0, |b| b.la),
                wwo: next.map_or(0, |b| b.wo),
                wlh: next.map_or(0, |b| b.h_lim),
                wlw: next.map_or(0, |b| b.w_lim),
                shift_lit: slit(6, l.shift as i64),
                clamp: l.clamp_max,
                tp: t.tp as usize,
            });
            // One word per array row, bottom row first (the shadow chain shifts down).
            for rr in (0..r).rev() {
                let row = t.row0 + rr;
                let mut word = vec![false; wm_w];
                let mut put = |lsb: usize, width: usize, v: u64| {
                    for b in 0..width {
                        word[lsb + b] = (v >> b) & 1 == 1;
                    }
                };
                if row < n {
                    let bias_at = c * (8 + cp.sel_w);
                    put(bias_at, 32, l.bias[row] as u32 as u64);
                    if let Some(tg) = &row_targets[li][row] {
                        let at = bias_at + 32;
                        put(at, qw + 1, tg.offset as u64);
                        put(at + qw + 1, 8, tg.dx as u8 as u64);
                        put(at + qw + 9, 8, tg.dy as u8 as u64);
                        put(at + qw + 17, lane_w, tg.lane as u64);
                        put(at + qw + 17 + lane_w, col_w, tg.col as u64);
                        put(wm_w - 1, 1, 1);
                    }
                    for cc in 0..c {
                        let g = t.col0 + cc;
                        if g < l.groups_len() {
                            let f = cc * (8 + cp.sel_w);
                            put(f, cp.sel_w, l.selector[[row, g]] as u64);
                            put(f + cp.sel_w, 8, l.weight[[row, g]] as i8 as u8 as u64);
                        }
                    }
                }
                words.push(hex_word(&word));
            }
        }
    }
    let nt = tiles.len();
    if nt == 0 {
        bail!(
            "{}: the schedule has no tiles (every layer is empty)",
            net.name
        );
    }
    let t_w = bits(nt - 1);
    let wm_aw = bits(nt * r - 1);
    let layer_w = bits(nl - 1);
    // Partial sums are kept per row and output pixel, only for layers tiled along groups.
    let psum_d = sched
        .layers
        .iter()
        .filter(|l| l.col_blocks > 1)
        .map(|l| l.pixels)
        .max()
        .unwrap_or(0);

    let cls = &net.classifier;
    let ch = cls.pool_input.c;
    let classes = net.classes;
    let version = env!("CARGO_PKG_VERSION");

    let mut ctx = Context::new();
    ctx.insert("version", version);
    ctx.insert("model", &net.name);
    ctx.insert("source", source);
    ctx.insert("rows", &r);
    ctx.insert("cols", &c);
    ctx.insert("alpha", &alpha);
    ctx.insert("sel_w", &cp.sel_w);
    ctx.insert("psum_w", &cp.psum_w);
    ctx.insert("tiles", &nt);
    ctx.insert("layers", &nl);
    ctx.insert("tp", &tp);
    ctx.insert("a_d", &a_d.max(1));
    ctx.insert("a_w", &a_w);
    ctx.insert("t_w", &t_w);
    ctx.insert("wm_aw", &wm_aw);
    ctx.insert("wm_w", &wm_w);
    ctx.insert("pix_w", &pix_w);
    ctx.insert("y_w", &y_w);
    ctx.insert("x_w", &x_w);
    ctx.insert("n_w", &n_w);
    ctx.insert("map_aw", &map_aw);
    ctx.insert("col_w", &col_w);
    ctx.insert("lane_w", &lane_w);
    ctx.insert("wpc_w", &bits(in_wpc));
    ctx.insert("tp_w", &bits(tp));
    ctx.insert("layer_w", &layer_w);
    ctx.insert("in_c", &in_c);
    ctx.insert("in_h", &first.input.h);
    ctx.insert("in_w", &first.input.w);
    ctx.insert("in_wpc", &in_wpc);
    ctx.insert("s_w", &s_w);
    ctx.insert("lk_w", &lk_w);
    let lay0 = &layouts[0];
    ctx.insert("in_smask", &(lay0.stride - 1));
    ctx.insert("in_lk", &lay0.lk);
    ctx.insert("in_la", &lay0.la);
    ctx.insert("in_lh", &lay0.h_lim);
    ctx.insert("in_lw", &lay0.w_lim);
    ctx.insert("in_wo", &lay0.wo);
    ctx.insert("psum_d", &psum_d);
    ctx.insert("psum_aw", &bits(psum_d.saturating_sub(1)));
    ctx.insert("classes", &classes);
    ctx.insert("cls_w", &bits(classes));
    ctx.insert("ch", &ch);
    ctx.insert("ch_w", &bits(ch));
    ctx.insert("pool_w", &cls.in_bits);
    ctx.insert("mem_prefix", "");
    let mut sctx = ctx.clone();
    sctx.insert("tiles", &tiles);
    let mut mctx = ctx.clone();
    mctx.insert("entries", &entries);

    let render = |name: &str, tpl: &str, ctx: &Context| -> Result<String> {
        Tera::one_off(tpl, ctx, false).map_err(|e| anyhow::anyhow!("rendering {name}: {e:?}"))
    };
    let mut files: Vec<(String, String)> = Vec::new();
    files.push(("ccc_mx_cell.v".into(), render_cell(&cp)?));
    files.push(("ccc_mx_array.v".into(), render_array(r, c, &cp)?));
    for (name, text) in HW_FILES {
        files.push((name.to_string(), text.to_string()));
    }
    files.push((
        "ccc_sched.v".into(),
        render("ccc_sched", SCHED_TEMPLATE, &sctx)?,
    ));
    files.push((
        "ccc_wmap.v".into(),
        render("ccc_wmap", WMAP_TEMPLATE, &mctx)?,
    ));
    files.push(("ccc_top.v".into(), render("ccc_top", TOP_TEMPLATE, &ctx)?));
    files.push((
        FPGA_TOP.into(),
        render("ccc_fpga_top", FPGA_TOP_TEMPLATE, &ctx)?,
    ));
    files.push(("weights.hex".into(), words.join("\n") + "\n"));
    files.push((
        "cls_w.hex".into(),
        cls.weight
            .iter()
            .map(|&w| format!("{:02x}\n", w as i8 as u8))
            .collect(),
    ));
    files.push((
        "cls_b.hex".into(),
        cls.bias
            .iter()
            .map(|&b| format!("{:08x}\n", b as u32))
            .collect(),
    ));
    let info = RtlInfo {
        rows: r,
        cols: c,
        alpha,
        sel_w: cp.sel_w,
        psum_w: cp.psum_w,
        tiles: nt,
        layers: nl,
        tp,
        a_d,
        wm_aw,
        wm_w,
        n_w,
        pix_w,
        layer_w,
        in_c,
        in_h: first.input.h,
        in_w: first.input.w,
        in_wpc,
        classes,
        a_w,
        psum_d,
        ch,
        pool_w: cls.in_bits as usize,
        row_perm: net.layers.iter().map(|l| l.row_perm.clone()).collect(),
        layer_dims: net
            .layers
            .iter()
            .map(|l| [l.output.c, l.output.h, l.output.w])
            .collect(),
        files: files
            .iter()
            .filter(|(n, _)| n.ends_with(".v") && n != FPGA_TOP)
            .map(|(n, _)| n.clone())
            .collect(),
    };
    files.push((
        "rtl.json".into(),
        serde_json::to_string_pretty(&info)? + "\n",
    ));
    Ok((files, info))
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
