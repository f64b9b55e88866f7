//! SCALE-Sim 3 GEMM topologies of a compiled network (OUT/scalesim/), so the same work
//! can be run through that simulator: one row per conv layer, `Layer, M, N, K,` with
//! M = output pixels, N = filters and K = the columns the array holds — every tap of
//! the dense network, or the groups of the column-combined one. The head (the classifier,
//! and an MLP head's hidden layers) runs on its own MAC, not on the array, and is left
//! out. With SCALE-Sim installed:
//!
//! ```sh
//! cd OUT/scalesim && python3 -m scalesim.scale -c scale.cfg -l layout.csv -i gemm -t packed.csv -p results
//! ```

use std::fmt::Write as _;

use crate::pack::network::PackedNet;
use crate::schedule::ArrayShape;

/// Which network a topology describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Every tap a column: the network as if it were dense.
    Dense,
    /// One column per group after column combining.
    Packed,
}

/// The GEMM topology CSV of `net`.
pub fn gemm_topology(net: &PackedNet, form: Form) -> String {
    let mut s = String::from("Layer, M, N, K,\n");
    for (i, l) in net.layers.iter().enumerate() {
        let k = match form {
            Form::Dense => l.taps_total,
            Form::Packed => l.groups_len(),
        };
        let _ = writeln!(s, "layer{i}, {}, {}, {k},", l.output.pixels(), l.rows());
    }
    s
}

const LAYOUT_HEADER: &str = "Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Filter Height Intraline Factor, Filter Width Intraline Factor, Channel Intraline Factor, Num Filter Intraline Factor, IFMAP Height Intraline Order, IFMAP Width Intraline Order, Channel Intraline Order, Filter Height Intraline Order, Filter Width Intraline Order, Num Filter Intraline Order,\n";

/// OUT/scalesim/: both topologies and the config for `a`, as (path, contents).
pub fn files(net: &PackedNet, a: ArrayShape) -> Vec<(String, String)> {
    vec![
        ("scalesim/dense.csv".into(), gemm_topology(net, Form::Dense)),
        (
            "scalesim/packed.csv".into(),
            gemm_topology(net, Form::Packed),
        ),
        (
            "scalesim/scale.cfg".into(),
            config(a, &format!("{}_{}x{}", net.name, a.rows, a.cols)),
        ),
        // SCALE-Sim 3 opens a layout file even when the config asks for no custom
        // layout; a header alone selects its default layout.
        ("scalesim/layout.csv".into(), LAYOUT_HEADER.into()),
    ]
}

/// A SCALE-Sim config for a weight-stationary array of ccc's shape (`run_name` names
/// the result directory). SRAM sizes are SCALE-Sim's example defaults: ccc holds every
/// activation on chip, so they only shape SCALE-Sim's memory traffic, not its compute
/// cycles.
pub fn config(a: ArrayShape, run_name: &str) -> String {
    format!(
        "[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:    6144
FilterSramSzkB:   6144
OfmapSramSzkB:    2048
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : ws
Bandwidth : 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
",
        rows = a.rows,
        cols = a.cols
    )
}
