#!/usr/bin/env python3
"""Calibrates ccc's FPGA fit model (src/fit.rs) against yosys.

Usage: tools/fit_calibrate.py OUT...   (each OUT a `ccc compile` output on which
`tools/fpga-flow.sh synth` ran with BREAKDOWN=1, i.e. OUT/fpga/hier_{ice40,ecp5}.txt)

Reads yosys's per-module statistics (synthesis with hierarchy kept), sums them per
component of the accelerator (cells, column feeds, rows, memories, classifier, control,
writer, ROMs), and fits each component's LUT / flip-flop / carry count as a linear
function of the design parameters (least squares, coefficients rounded to 0.01). Prints
the coefficient table for src/fit.rs and writes the data points with every
component's measured and fitted counts to tests/data/fit-calibration.json, which
`cargo test` replays against the Rust model.
"""
import json
import os
import re
import sys


# Must match src/fit.rs: component -> features (functions of the design parameters).
FEATURES = {
    "cell": lambda p: [1, p["psum_w"], p["alpha"]],
    # a column split (two row-end banks) adds a second segment to each feed and the control
    "feed": lambda p: [1, p["alpha"], p["a_w"], p["banks"]],
    "row": lambda p: [1, p["a_w"]],
    "classifier": lambda p: [p["classes"], p["ch"] * p["pool_w"], p["rows"] * p["pool_w"]],
    # the row writes decoded per row (registered at level 0 where the design says so:
    # capacity.write_l0), merged per 8-row write group, then groups x column RAMs
    "control": lambda p: [1, p["cols"], p["rows"] * p["banks"], p["cols"] * -(-p["rows"] // 8), p["banks"],
                          (1 if p["write_l0"] else 0) * p["rows"] * p["banks"]
                          * (p["cols"] + p["alpha"] + p["a_w"] + 8)],
    "writer": lambda p: [1, p["cols"]],
    "roms": lambda p: [1, p["tiles"], p["cols"] * p["map_entries"]],
    # block RAM counts by rule (src/fit.rs `brams`); the LUTs around them scale with the
    # bits multiplexed out of deep memories and with the memories per column and row
    "memories": None,
}
METRICS = {
    "ice40": {"lut": ["SB_LUT4"], "dff": ["SB_DFF"], "carry": ["SB_CARRY"],
              "bram": ["SB_RAM40_4K"], "dsp": ["SB_MAC16"]},
    "ecp5": {"lut": ["LUT4"], "dff": ["TRELLIS_FF"], "carry": ["CCU2C"],
             "bram": ["DP16KD"], "dsp": ["MULT18X18D"], "lutram": ["TRELLIS_DPR16X4"]},
}


def parse_stat(path):
    """Module -> {cell type -> count}, and the hierarchy as (depth, module, count)."""
    mods, cur, tree, in_tree = {}, None, [], False
    for line in open(path):
        m = re.match(r"^=== (.*) ===$", line.strip())
        if m:
            cur = m.group(1)
            in_tree = cur == "design hierarchy"
            if not in_tree:
                mods[cur] = {}
            continue
        if in_tree:
            t = re.match(r"^(\s+)(\S+)\s+(\d+)$", line.rstrip("\n"))
            if t and not t.group(2).startswith("Number"):
                tree.append((len(t.group(1)), t.group(2), int(t.group(3))))
            continue
        c = re.match(r"^\s+(\S+)\s+(\d+)$", line)
        if cur and c and not line.strip().startswith("Number"):
            mods[cur][c.group(1)] = int(c.group(2))
    return mods, tree


def base(name):
    return name.split("\\")[-1]


def component_of(path):
    """Component of a module instance, from its path of base names in the hierarchy."""
    leaf = path[-1]
    if leaf in ("ccc_mx_cell", "ccc_mx_array"):
        return "cell"
    if leaf == "ccc_col_feed":
        return "feed"
    if leaf in ("ccc_row_unit", "ccc_row_end", "ccc_requant") or (leaf == "ccc_shift_target" and "ccc_row_unit" in path):
        return "row"
    if leaf == "ccc_shift_target" or leaf == "ccc_writer":
        return "writer"
    if leaf == "ccc_sdp_ram":
        return "memories"
    if leaf == "ccc_classifier":
        return "classifier"
    # the head on the array: its logits unit is modelled from the RTL (src/fit.rs
    # `logits_unit`), not fitted here
    if leaf == "ccc_logits":
        return "logits"
    if leaf in ("ccc_sched", "ccc_wmap"):
        return "roms"
    # ccc_top, ccc_core and the control modules split out of it (controller, loader,
    # token generator, input counters, write merge, grid indices)
    return "control"


def per_component(path, fam):
    mods, tree = parse_stat(path)
    totals = {}
    stack = []
    for depth, name, count in tree:
        while stack and stack[-1][0] >= depth:
            stack.pop()
        mult = count * (stack[-1][2] if stack else 1)
        stack.append((depth, name, mult))
        comp = component_of([base(s[1]) for s in stack])
        for metric, cells in METRICS[fam].items():
            n = sum(mods.get(name, {}).get(c, 0) for c in cells)
            if metric == "dff":
                n = sum(v for k, v in mods.get(name, {}).items()
                        if (fam == "ice40" and k.startswith("SB_DFF")) or (fam == "ecp5" and k == "TRELLIS_FF"))
            totals.setdefault(comp, {}).setdefault(metric, 0)
            totals[comp][metric] += n * mult
    return totals


def capacity(out):
    """The design's capacity, as `ccc compile` wrote it (OUT/rtl/rtl.json)."""
    return json.load(open(os.path.join(out, "rtl", "rtl.json")))["capacity"]


def params(cap):
    """The capacity's fields the features below read, flat."""
    return {"rows": cap["rows"], "cols": cap["cols"], "alpha": cap["alpha"], "sel_w": cap["sel_w"],
            "psum_w": cap["psum_w"], "a_w": cap["widths"]["a_w"], "a_d": cap["a_d"],
            "tiles": cap["tiles"], "wm_w": cap["word"]["width"], "psum_d": cap["psum_d"],
            "ch": cap["ch"], "pool_w": cap["pool_w"], "classes": cap["classes"],
            "map_entries": cap["map_entries"], "banks": cap["banks"], "in_d": cap["in_d"],
            "write_l0": cap["write_l0"],
            "in_cols": sum(1 for c in cap["in_cols"] if c)}


def stat_file(out, fam):
    for p in (os.path.join(out, "fpga", f"hier_{fam}.txt"), os.path.join(out, f"nf_{fam}.txt")):
        if os.path.exists(p):
            return p
    sys.exit(f"{out}: no per-module statistics (run tools/fpga-flow.sh synth with BREAKDOWN=1)")


def instances(comp, p):
    # One row unit per array row and row-end bank.
    return {"cell": p["rows"] * p["cols"], "feed": p["cols"], "row": p["rows"] * p["banks"]}.get(comp, 1)


def nn_lstsq(X, y):
    """Least squares whose slopes are all >= 0: cost never falls as the design grows, so
    the model extrapolates sanely beyond the calibration sizes. Features whose slope
    comes out negative are dropped one at a time and the rest refitted."""
    active = list(range(len(X[0])))
    while True:
        c = lstsq([[row[j] for j in active] for row in X], y)
        full = [0.0] * len(X[0])
        for j, v in zip(active, c):
            full[j] = v
        neg = [j for j, v in zip(active, c) if j != 0 and v < 0]
        if not neg:
            return full
        active.remove(min(neg, key=lambda j: full[j]))


def lstsq(X, y):
    """Least squares by the normal equations (tiny systems; no numpy needed). Features
    that are constant across the data are dropped (coefficient 0)."""
    n = len(X[0])
    keep = [j for j in range(n) if j == 0 or len({row[j] for row in X}) > 1]
    A = [[sum(X[i][a] * X[i][b] for i in range(len(X))) for b in keep] for a in keep]
    v = [sum(X[i][a] * y[i] for i in range(len(X))) for a in keep]
    m = len(keep)
    for k in range(m):  # Gauss-Jordan with partial pivoting and a tiny ridge
        A[k][k] += 1e-9
        piv = max(range(k, m), key=lambda r: abs(A[r][k]))
        A[k], A[piv], v[k], v[piv] = A[piv], A[k], v[piv], v[k]
        for r in range(m):
            if r != k and A[k][k] != 0:
                f = A[r][k] / A[k][k]
                A[r] = [a - f * b for a, b in zip(A[r], A[k])]
                v[r] -= f * v[k]
    c = [0.0] * n
    for idx, j in enumerate(keep):
        c[j] = v[idx] / A[idx][idx] if A[idx][idx] else 0.0
    return c


ICE40_MODES = [(16, 256), (8, 512), (4, 1024), (2, 2048)]
ECP5_MODES = [(1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)]


def bram(fam, depth, width, lanes):
    """(block RAMs, blocks in depth) of one memory; mirrors src/fit.rs."""
    if fam == "ice40":
        modes = ICE40_MODES[:1] if lanes > 1 else ICE40_MODES
        eff = width
    else:
        modes = [m for m in ECP5_MODES if m[0] >= 18] if lanes > 1 else ECP5_MODES
        eff = lanes * 9 if lanes > 1 else width
    best = min(((-(-eff // w)) * (-(-depth // d)), -(-depth // d)) for w, d in modes)
    return best


def memories(p, fam):
    """(depth, width, lanes, instances) of every block-RAM memory of the design."""
    m = [(p["a_d"], p["alpha"] * 8, p["alpha"], p["cols"]), (p["tiles"] * p["rows"], p["wm_w"], 1, 1)]
    # The first layer's own input buffers, on the columns it reads.
    if p["in_d"] > 0 and p["in_cols"] > 0:
        m.append((p["in_d"], p["alpha"] * 8, p["alpha"], p["in_cols"]))
    if p["psum_d"] > 0:
        m.append((p["psum_d"], 32, 1, p["rows"] * p["banks"]))
    return m


def mux_bits(p, fam):
    return sum(n * w * (bram(fam, d, w, l)[1] - 1) for d, w, l, n in memories(p, fam))


def write_rust(coefs):
    """src/fit_coefs.rs: the coefficient tables src/fit.rs includes."""
    order = ["cell", "feed", "row", "classifier", "control", "writer", "roms"]
    lines = ["// Generated by tools/fit_calibrate.py from tests/data/fit-calibration.json; do not edit.",
             "// Per-instance coefficients of each component's features (src/fit.rs `features`).", ""]
    fl = lambda v: "&[" + ", ".join(f"{x:.3f}" for x in v) + "]"
    for fam in ("ice40", "ecp5"):
        # Fitted numbers can come out as 3.140 and the like, which clippy takes for pi.
        lines.append("#[allow(clippy::approx_constant)]")
        lines.append(f"const {fam.upper()}: [Coef; 7] = [")
        for comp in order:
            c = coefs[fam][comp]
            lines.append(f"    // {comp}")
            lines.append(f"    Coef {{ lut: {fl(c['lut'])}, dff: {fl(c['dff'])}, carry: {fl(c['carry'])} }},")
        lines.append("];")
        m = coefs[fam]["memories"]
        lines.append("#[allow(clippy::approx_constant)]")
        lines.append(f"const {fam.upper()}_MEM: (&[f64], &[f64]) = ({fl(m['lut'])}, {fl(m['dff'])});")
        lines.append("")
    lines += ["fn coefficients(f: Family) -> &'static [Coef; 7] {",
              "    match f {", "        Family::Ecp5 => &ECP5,", "        Family::Ice40 | Family::Generic => &ICE40,", "    }", "}", "",
              "fn memory_coefficients(f: Family) -> (&'static [f64], &'static [f64]) {",
              "    match f {", "        Family::Ecp5 => ECP5_MEM,", "        Family::Ice40 | Family::Generic => ICE40_MEM,", "    }", "}"]
    open("src/fit_coefs.rs", "w").write("\n".join(lines) + "\n")


def main():
    outs = sys.argv[1:]
    points = []
    for out in outs:
        cap = capacity(out)
        meas = {fam: per_component(stat_file(out, fam), fam) for fam in METRICS}
        points.append({"out": os.path.basename(os.path.normpath(out)), "capacity": cap, "measured": meas})
    coefs = {}
    for fam in METRICS:
        for comp, feat in FEATURES.items():
            if feat is None:
                continue
            for metric in ("lut", "dff", "carry"):
                X = [feat(params(pt["capacity"])) for pt in points]
                y = [pt["measured"][fam].get(comp, {}).get(metric, 0) / instances(comp, params(pt["capacity"]))
                     for pt in points]
                c = nn_lstsq(X, y)
                coefs.setdefault(fam, {}).setdefault(comp, {})[metric] = [round(float(v), 2) for v in c]
        X = [[1, mux_bits(params(pt["capacity"]), fam), pt["capacity"]["cols"], pt["capacity"]["rows"]]
             for pt in points]
        for metric in ("lut", "dff"):
            y = [pt["measured"][fam].get("memories", {}).get(metric, 0) for pt in points]
            coefs[fam].setdefault("memories", {})[metric] = [round(v, 3) for v in nn_lstsq(X, y)]
    print(json.dumps(coefs, indent=1))
    write_rust(coefs)
    json.dump({"generator": "tools/fit_calibrate.py", "yosys": os.popen("yosys -V").read().strip(),
               "points": points}, open("tests/data/fit-calibration.json", "w"), indent=1)
    print("wrote tests/data/fit-calibration.json", file=sys.stderr)


if __name__ == "__main__":
    main()
