//! ONNX ingest (docs/DESIGN.md §2.3): translates the graph that `torch.onnx.export`
//! writes for this network family into ccc's own model format (named tensors plus the
//! graph TOML), which [`crate::model::load`] then validates like any other model file.
//! Going through the one format keeps one set of rules: an ONNX model and the same
//! network written by `tools/export_pytorch.py` become the same `Network`.
//!
//! The graph must be a chain: `([shift] Conv [BatchNormalization] Relu|Clip(0,6))*
//! pool flatten classifier`, with constants (initializers, `Constant`) as operands and
//! shape arithmetic on them (`Shape`, `Gather`, `Unsqueeze`, `Concat`, ...) folded for
//! the fixed input size. A shift arrives as a depthwise `Conv` whose kernels are
//! one-hot, or as `Pad` + per-channel-group `Slice` + `Concat`. An input normalization
//! (`Sub`/`Div`/`Mul`/`Add` by constants before the first layer) is folded into the
//! first conv where that is exact. Anything else is refused with the node's name, its
//! op type and what is supported.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use prost::Message;
use serde::Serialize;

use crate::error::ModelError;
use crate::onnx_proto as pb;
use crate::output::OutTensor;

/// `metadata_props` key: α as `--alpha` takes it (one value, or one per conv in graph
/// order, comma separated).
pub const ALPHA_KEY: &str = "ccc.alpha";
/// `metadata_props` key: γ.
pub const GAMMA_KEY: &str = "ccc.gamma";
/// `metadata_props` key: the model's name (default: the file stem).
pub const NAME_KEY: &str = "ccc.name";

/// Largest input side or channel count accepted (as `model::MAX_DIM`, which this module
/// sits below).
const MAX_DIM: usize = 1 << 16;

/// What the importer understands, quoted in every refusal of an operator.
pub const SUPPORTED: &str = "supported: Conv (group 1, square kernel, equal strides, symmetric pads, no dilation; \
or depthwise with one-hot kernels, a shift), BatchNormalization, Relu, Clip(0, 6), \
Pad + Slice + Concat over channel groups (a shift), GlobalAveragePool, ReduceMean over H and W, \
AveragePool over the whole map, Flatten, Reshape, Squeeze, Gemm, MatMul + Add, Dropout, Identity; \
constants and their arithmetic (Constant, Shape, Gather, Unsqueeze, Squeeze, Concat, Cast, Slice, Reshape); \
Sub/Div/Mul/Add of the input by constants (normalization, folded into the first conv)";

/// The model in ccc's format: tensors and the graph TOML naming them.
pub struct Converted {
    pub tensors: Vec<(String, OutTensor)>,
    pub graph: String,
}

/// Whether `path` names an ONNX file (by its extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Converts the ONNX model in `bytes` (read from `path`).
pub fn convert(path: &Path, bytes: &[u8]) -> Result<Converted, ModelError> {
    let invalid = |reason: String| ModelError::OnnxInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let model = pb::ModelProto::decode(bytes).map_err(|e| {
        invalid(format!(
            "the protobuf does not decode as an ONNX ModelProto: {e}"
        ))
    })?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| invalid("the model has no graph".into()))?;
    for op in &model.opset_import {
        let d = op.domain();
        if !(d.is_empty() || d == "ai.onnx") && graph.node.iter().any(|n| n.domain() == d) {
            return Err(invalid(format!(
                "operator set `{d}` is used; only the default ONNX domain is supported"
            )));
        }
    }
    let meta: HashMap<&str, &str> = model
        .metadata_props
        .iter()
        .map(|p| (p.key(), p.value()))
        .collect();
    let mut b = Builder::new(path);
    for t in &graph.initializer {
        let c = b.tensor(t, None)?;
        b.vals.insert(t.name().to_string(), Val::Const(c));
    }
    let (input_name, input) = graph_input(path, graph)?;
    b.vals.insert(
        input_name.clone(),
        Val::Act(Act {
            id: 0,
            shape: AShape::Map {
                c: input[0],
                h: input[1],
                w: input[2],
            },
        }),
    );
    for node in &graph.node {
        b.node(node)?;
    }
    b.finish_bias();
    let [out] = &graph.output[..] else {
        return Err(invalid(format!(
            "the graph has {} outputs; ccc takes one (the logits)",
            graph.output.len()
        )));
    };
    let classes = match b.vals.get(out.name()) {
        Some(Val::Act(a)) if a.id == b.cur => match a.shape {
            AShape::Vector(n) if matches!(b.layers.last(), Some(l) if l.kind == "linear") => n,
            s => {
                return Err(invalid(format!(
                    "graph output `{}` is a {}, not the classifier's logits: the graph must end with Gemm or MatMul (+ Add)",
                    out.name(),
                    s.describe()
                )));
            }
        },
        _ => {
            return Err(invalid(format!(
                "graph output `{}` is not the last activation of the chain",
                out.name()
            )));
        }
    };
    if let Some(n) = &b.pending_norm {
        return Err(invalid(format!(
            "the input normalization at node `{}` has no conv to fold into",
            n.node
        )));
    }
    let name = match meta.get(NAME_KEY) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => path
            .file_stem()
            .map_or("onnx-model".into(), |s| s.to_string_lossy().into_owned()),
    };
    let gamma = match meta.get(GAMMA_KEY) {
        Some(g) => Some(g.trim().parse::<f64>().map_err(|e| {
            invalid(format!(
                "metadata `{GAMMA_KEY}` = {g:?} is not a number: {e}"
            ))
        })?),
        None => None,
    };
    if let Some(a) = meta.get(ALPHA_KEY) {
        b.apply_alphas(a)?;
    }
    let graph_text = b.graph_toml(&name, classes, input, gamma)?;
    Ok(Converted {
        tensors: b.tensors,
        graph: graph_text,
    })
}

/// The one non-constant graph input as (name, [C, H, W]).
fn graph_input(path: &Path, g: &pb::GraphProto) -> Result<(String, [usize; 3]), ModelError> {
    let invalid = |reason: String| ModelError::OnnxInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = g
        .input
        .iter()
        .filter(|i| !inits.contains(i.name()))
        .collect();
    let [inp] = inputs[..] else {
        return Err(invalid(format!(
            "the graph has {} inputs that are not initializers; ccc takes one image input",
            inputs.len()
        )));
    };
    let dims = match inp.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => t
            .shape
            .as_ref()
            .map(|s| s.dim.iter().map(|d| d.value.clone()).collect::<Vec<_>>()),
        _ => None,
    }
    .ok_or_else(|| invalid(format!("input `{}` has no tensor shape", inp.name())))?;
    use pb::tensor_shape_proto::dimension::Value as D;
    let fixed = |i: usize| match dims.get(i) {
        Some(Some(D::DimValue(v))) if *v >= 1 && *v as usize <= MAX_DIM => Ok(*v as usize),
        other => Err(invalid(format!(
            "input `{}`: dimension {i} is {}; ccc needs a fixed [N, C, H, W] input (C, H, W in 1..={MAX_DIM})",
            inp.name(),
            match other {
                Some(Some(D::DimValue(v))) => v.to_string(),
                Some(Some(D::DimParam(p))) => format!("symbolic (`{p}`)"),
                _ => "missing".into(),
            }
        ))),
    };
    if dims.len() != 4 {
        return Err(invalid(format!(
            "input `{}` has {} dimensions; ccc takes [N, C, H, W] images",
            inp.name(),
            dims.len()
        )));
    }
    match &dims[0] {
        Some(D::DimValue(1)) | Some(D::DimParam(_)) | None => {}
        Some(D::DimValue(n)) => {
            return Err(invalid(format!(
                "input `{}` has batch size {n}; export with batch 1 or a symbolic batch",
                inp.name()
            )));
        }
    }
    Ok((inp.name().to_string(), [fixed(1)?, fixed(2)?, fixed(3)?]))
}

/// Element type a float constant came in, so it is written back bit-exact.
#[derive(Clone, Copy, Debug, PartialEq)]
enum FloatKind {
    F32,
    F64,
    F16,
    Bf16,
}

#[derive(Clone, Debug)]
enum Data {
    /// Values widened to f64 (exact for every kind).
    Float(Vec<f64>, FloatKind),
    Int(Vec<i64>),
}

/// A constant tensor.
#[derive(Clone, Debug)]
struct Const {
    dims: Vec<usize>,
    data: Data,
    /// Its tensor name in the ONNX graph.
    name: String,
}

impl Const {
    fn len(&self) -> usize {
        match &self.data {
            Data::Float(v, _) => v.len(),
            Data::Int(v) => v.len(),
        }
    }
    fn ints(&self) -> Option<Vec<i64>> {
        match &self.data {
            Data::Int(v) => Some(v.clone()),
            Data::Float(v, _) => v
                .iter()
                .map(|&x| (x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64))
                .collect(),
        }
    }
    fn floats(&self) -> Vec<f64> {
        match &self.data {
            Data::Float(v, _) => v.clone(),
            Data::Int(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
    fn scalar(&self) -> Option<f64> {
        (self.len() == 1).then(|| self.floats()[0])
    }
    fn with(&self, dims: Vec<usize>, data: Data) -> Const {
        Const {
            dims,
            data,
            name: self.name.clone(),
        }
    }
}

/// Shape of the activation flowing down the chain.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AShape {
    Map {
        c: usize,
        h: usize,
        w: usize,
    },
    /// [1, C, 1, 1] after a global pool that keeps its dims.
    Pooled(usize),
    /// [1, N].
    Vector(usize),
}

impl AShape {
    fn dims(&self) -> Vec<usize> {
        match *self {
            AShape::Map { c, h, w } => vec![1, c, h, w],
            AShape::Pooled(c) => vec![1, c, 1, 1],
            AShape::Vector(n) => vec![1, n],
        }
    }
    fn describe(&self) -> String {
        match *self {
            AShape::Map { c, h, w } => format!("{c}x{h}x{w} feature map"),
            AShape::Pooled(c) => format!("pooled [1, {c}, 1, 1] map"),
            AShape::Vector(n) => format!("vector of {n}"),
        }
    }
}

/// The chain's activation after `id` changes (layers emitted or reshapes).
#[derive(Clone, Copy, Debug)]
struct Act {
    id: usize,
    shape: AShape,
}

/// A window of a zero-padded activation: what `Pad` and `Slice` make on the way to a
/// pad-and-slice shift. Coordinates are in the padded map.
#[derive(Clone, Debug)]
struct Window {
    act: usize,
    c: usize,
    h: usize,
    w: usize,
    /// Padding (top, left, bottom, right).
    pads: [usize; 4],
    ch: (usize, usize),
    y: (usize, usize),
    x: (usize, usize),
    /// The `Pad` node, for messages.
    pad_node: String,
}

impl Window {
    fn full(&self) -> bool {
        self.ch == (0, self.c)
            && self.y == (0, self.h + self.pads[0] + self.pads[2])
            && self.x == (0, self.w + self.pads[1] + self.pads[3])
    }
}

#[derive(Clone, Debug)]
enum Val {
    Const(Const),
    Act(Act),
    Window(Window),
}

/// An input normalization waiting for the first conv: x' = scale · x + offset per
/// channel.
#[derive(Clone, Debug)]
struct Norm {
    scale: Vec<f64>,
    offset: Vec<f64>,
    node: String,
}

/// One `[[layers]]` entry being assembled.
struct LayerOut {
    kind: &'static str,
    fields: toml::Table,
    /// The ONNX node it came from (a TOML comment, and messages).
    node: String,
    /// A 1x1 conv (what a shift may precede).
    pointwise: bool,
}

struct Builder<'a> {
    path: &'a Path,
    vals: HashMap<String, Val>,
    /// Id of the current activation.
    cur: usize,
    layers: Vec<LayerOut>,
    tensors: Vec<(String, OutTensor)>,
    names: HashSet<String>,
    /// ONNX tensor name → emitted name, for constants written unchanged.
    written: HashMap<String, String>,
    pending_norm: Option<Norm>,
    /// A MatMul's linear layer whose bias an `Add` may still supply.
    open_matmul: bool,
}

/// Node name for messages: its name, else its op and first output.
fn node_name(n: &pb::NodeProto) -> String {
    if !n.name().is_empty() {
        n.name().to_string()
    } else {
        format!(
            "{} -> {}",
            n.op_type(),
            n.output.first().map_or("?", |s| s.as_str())
        )
    }
}

fn attr<'n>(n: &'n pb::NodeProto, name: &str) -> Option<&'n pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}

fn attr_int(n: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i())
}

fn attr_ints(n: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

fn attr_float(n: &pb::NodeProto, name: &str) -> Option<f32> {
    attr(n, name).map(|a| a.f())
}

fn attr_str(n: &pb::NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(a.s()).into_owned())
}

/// An f32 attribute as the decimal it was written from (PyTorch's `eps=1e-5` is a
/// double that ONNX stores as f32; reading it back as 1e-5, not 9.99999974737875e-6,
/// folds batchnorm exactly as the same model in ccc's format does).
fn f32_decimal(v: f32) -> f64 {
    format!("{v}").parse().unwrap_or(v as f64)
}

/// Resolves negative axes against `rank`.
fn axis(a: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}

fn numel(d: &[usize]) -> usize {
    d.iter().product()
}

impl<'a> Builder<'a> {
    fn new(path: &'a Path) -> Self {
        Builder {
            path,
            vals: HashMap::new(),
            cur: 0,
            layers: Vec::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
            written: HashMap::new(),
            pending_norm: None,
            open_matmul: false,
        }
    }

    fn err(&self, n: &pb::NodeProto, reason: impl Into<String>) -> ModelError {
        ModelError::OnnxNode {
            path: self.path.to_path_buf(),
            node: node_name(n),
            op: n.op_type().to_string(),
            reason: reason.into(),
        }
    }

    /// Decodes a TensorProto (`node`: where it appears, for messages).
    fn tensor(
        &self,
        t: &pb::TensorProto,
        node: Option<&pb::NodeProto>,
    ) -> Result<Const, ModelError> {
        let bad = |reason: String| match node {
            Some(n) => self.err(n, format!("tensor `{}`: {reason}", t.name())),
            None => ModelError::OnnxInvalid {
                path: self.path.to_path_buf(),
                reason: format!("initializer `{}`: {reason}", t.name()),
            },
        };
        if t.data_location() == pb::tensor_proto::DataLocation::External {
            return Err(bad(
                "its data is stored outside the file; save the model with every tensor inside it"
                    .into(),
            ));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            if !(0..=(1 << 31)).contains(&d) {
                return Err(bad(format!("dimension {d} is out of range")));
            }
            dims.push(d as usize);
        }
        let n = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= 1 << 31)
            .ok_or_else(|| bad(format!("shape {dims:?} is too large")))?;
        use pb::tensor_proto::DataType as T;
        let raw = t.raw_data.as_deref();
        let dt = T::try_from(t.data_type()).unwrap_or(T::Undefined);
        let width = match dt {
            T::Float | T::Int32 => 4,
            T::Double | T::Int64 => 8,
            T::Float16 | T::Bfloat16 => 2,
            T::Int8 | T::Uint8 | T::Bool => 1,
            _ => {
                return Err(bad(format!(
                    "element type {} is not supported (float, double, float16, bfloat16, int8/32/64, uint8, bool)",
                    dt.as_str_name()
                )));
            }
        };
        let count = match raw {
            Some(r) => r.len() / width,
            None => match dt {
                T::Float => t.float_data.len(),
                T::Double => t.double_data.len(),
                T::Int64 => t.int64_data.len(),
                _ => t.int32_data.len(),
            },
        };
        if count != n || raw.is_some_and(|r| r.len() % width != 0) {
            return Err(bad(format!(
                "holds {count} values, but its shape {dims:?} needs {n}"
            )));
        }
        let le = |i: usize| &raw.expect("raw data")[i * width..(i + 1) * width];
        let data = match (dt, raw) {
            (T::Float, Some(_)) => Data::Float(
                (0..n)
                    .map(|i| f32::from_le_bytes(le(i).try_into().expect("4 bytes")) as f64)
                    .collect(),
                FloatKind::F32,
            ),
            (T::Float, None) => Data::Float(
                t.float_data.iter().map(|&v| v as f64).collect(),
                FloatKind::F32,
            ),
            (T::Double, Some(_)) => Data::Float(
                (0..n)
                    .map(|i| f64::from_le_bytes(le(i).try_into().expect("8 bytes")))
                    .collect(),
                FloatKind::F64,
            ),
            (T::Double, None) => Data::Float(t.double_data.clone(), FloatKind::F64),
            (T::Float16 | T::Bfloat16, _) => {
                let bits: Vec<u16> = match raw {
                    Some(_) => (0..n)
                        .map(|i| u16::from_le_bytes(le(i).try_into().expect("2 bytes")))
                        .collect(),
                    None => t.int32_data.iter().map(|&v| v as u16).collect(),
                };
                if dt == T::Float16 {
                    Data::Float(
                        bits.iter()
                            .map(|&b| half::f16::from_bits(b).to_f64())
                            .collect(),
                        FloatKind::F16,
                    )
                } else {
                    Data::Float(
                        bits.iter()
                            .map(|&b| half::bf16::from_bits(b).to_f64())
                            .collect(),
                        FloatKind::Bf16,
                    )
                }
            }
            (T::Int64, Some(_)) => Data::Int(
                (0..n)
                    .map(|i| i64::from_le_bytes(le(i).try_into().expect("8 bytes")))
                    .collect(),
            ),
            (T::Int64, None) => Data::Int(t.int64_data.clone()),
            (T::Int32, Some(_)) => Data::Int(
                (0..n)
                    .map(|i| i32::from_le_bytes(le(i).try_into().expect("4 bytes")) as i64)
                    .collect(),
            ),
            (T::Int8, Some(_)) => Data::Int((0..n).map(|i| le(i)[0] as i8 as i64).collect()),
            (T::Uint8 | T::Bool, Some(_)) => Data::Int((0..n).map(|i| le(i)[0] as i64).collect()),
            (_, None) => Data::Int(t.int32_data.iter().map(|&v| v as i64).collect()),
            _ => unreachable!("element types filtered above"),
        };
        if let Data::Float(v, _) = &data
            && let Some(i) = v.iter().position(|x| !x.is_finite())
        {
            return Err(bad(format!(
                "value {} at flat index {i} is not finite",
                v[i]
            )));
        }
        Ok(Const {
            dims,
            data,
            name: t.name().to_string(),
        })
    }

    fn input<'n>(&self, n: &'n pb::NodeProto, i: usize) -> Option<&'n str> {
        n.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn val(&self, n: &pb::NodeProto, i: usize) -> Result<&Val, ModelError> {
        let name = self
            .input(n, i)
            .ok_or_else(|| self.err(n, format!("input {i} is missing")))?;
        self.vals
            .get(name)
            .ok_or_else(|| self.err(n, format!("input `{name}` is produced by no earlier node")))
    }

    fn konst(&self, n: &pb::NodeProto, i: usize, what: &str) -> Result<Const, ModelError> {
        match self.val(n, i)? {
            Val::Const(c) => Ok(c.clone()),
            _ => Err(self.err(
                n,
                format!(
                    "its {what} (`{}`) must be a constant (an initializer or Constant), found an activation",
                    self.input(n, i).unwrap_or("?")
                ),
            )),
        }
    }

    fn opt_konst(
        &self,
        n: &pb::NodeProto,
        i: usize,
        what: &str,
    ) -> Result<Option<Const>, ModelError> {
        if self.input(n, i).is_none() {
            return Ok(None);
        }
        self.konst(n, i, what).map(Some)
    }

    /// The current activation as input `i` of `n`; anything older means a branch.
    fn act(&self, n: &pb::NodeProto, i: usize) -> Result<AShape, ModelError> {
        match self.val(n, i)? {
            Val::Act(a) if a.id == self.cur => Ok(a.shape),
            Val::Act(_) => Err(self.err(
                n,
                format!(
                    "reads `{}`, an earlier activation than the chain's current one: ccc takes a chain of layers (no branches, no residual connections)",
                    self.input(n, i).unwrap_or("?")
                ),
            )),
            Val::Window(w) => Err(self.err(
                n,
                format!(
                    "reads a padded or sliced tensor (from Pad `{}`); a Pad may only feed Slices that a Concat reassembles into a shift, or a Conv",
                    w.pad_node
                ),
            )),
            Val::Const(_) => Err(self.err(
                n,
                format!(
                    "input `{}` is a constant where ccc expects the activation",
                    self.input(n, i).unwrap_or("?")
                ),
            )),
        }
    }

    fn set_out(&mut self, n: &pb::NodeProto, v: Val) {
        if let Some(o) = n.output.first() {
            self.vals.insert(o.clone(), v);
        }
    }

    /// The chain advances: `n`'s output is the new current activation.
    fn advance(&mut self, n: &pb::NodeProto, shape: AShape) {
        self.cur += 1;
        let id = self.cur;
        self.set_out(n, Val::Act(Act { id, shape }));
    }

    /// Adds a tensor under its ONNX name (made unique), written in its own dtype.
    fn add_tensor(&mut self, c: &Const, changed: bool) -> String {
        if !changed && let Some(name) = self.written.get(&c.name) {
            return name.clone();
        }
        let base = if c.name.is_empty() { "tensor" } else { &c.name };
        let mut name = base.to_string();
        let mut k = 1;
        while self.names.contains(&name) {
            name = format!("{base}.{k}");
            k += 1;
        }
        let t = match &c.data {
            Data::Float(v, FloatKind::F32) => OutTensor::f32(&c.dims, v.iter().map(|&x| x as f32)),
            Data::Float(v, FloatKind::F16) => OutTensor::f16(&c.dims, v.iter().map(|&x| x as f32)),
            Data::Float(v, FloatKind::Bf16) => {
                OutTensor::bf16(&c.dims, v.iter().map(|&x| x as f32))
            }
            Data::Float(v, FloatKind::F64) => OutTensor::f64(&c.dims, v.iter().copied()),
            Data::Int(v) => OutTensor::i64(&c.dims, v.iter().copied()),
        };
        self.names.insert(name.clone());
        self.tensors.push((name.clone(), t));
        if !changed {
            self.written.insert(c.name.clone(), name.clone());
        }
        name
    }

    fn float_param(
        &self,
        n: &pb::NodeProto,
        i: usize,
        what: &str,
        dims: &[usize],
    ) -> Result<Const, ModelError> {
        let c = self.konst(n, i, what)?;
        if !matches!(c.data, Data::Float(..)) {
            return Err(self.err(n, format!("its {what} `{}` is not a float tensor", c.name)));
        }
        if c.dims != dims {
            return Err(self.err(
                n,
                format!(
                    "its {what} `{}` has shape {:?}, expected {dims:?}",
                    c.name, c.dims
                ),
            ));
        }
        Ok(c)
    }

    /// Appends a layer, checking the chain grammar `([shift] conv [batchnorm] act)*
    /// avgpool linear` with the node's name (the same rules lowering applies, said in
    /// ONNX terms).
    fn push(&mut self, n: &pb::NodeProto, layer: LayerOut) -> Result<(), ModelError> {
        let prev = self.layers.last().map(|l| l.kind);
        // After the pool: the head, `linear ((relu|relu6) linear)*`.
        let in_head = self.layers.iter().any(|l| l.kind == "avgpool");
        let ok = match layer.kind {
            "shift" | "avgpool" => !in_head && matches!(prev, None | Some("relu" | "relu6")),
            "conv" => !in_head && matches!(prev, None | Some("relu" | "relu6" | "shift")),
            "batchnorm" => prev == Some("conv"),
            "relu" | "relu6" => matches!(prev, Some("conv" | "batchnorm" | "linear")),
            "linear" => {
                prev == Some("avgpool") || (in_head && matches!(prev, Some("relu" | "relu6")))
            }
            _ => false,
        };
        if !ok {
            let expected = match prev {
                Some("relu" | "relu6") if in_head => {
                    "the next linear layer of the head (Gemm, or MatMul + Add)"
                }
                None | Some("relu" | "relu6") => {
                    "a Conv, a shift, or the global pool (a layer block starts here)"
                }
                Some("shift") => "a 1x1 Conv (a shift only precedes a pointwise conv)",
                Some("conv") => "BatchNormalization, Relu or Clip(0, 6) (activations are uint8)",
                Some("batchnorm") => "Relu or Clip(0, 6)",
                Some("avgpool") => "the classifier (Gemm, or MatMul + Add)",
                _ => {
                    "Relu or Clip(0, 6) and another linear layer (an MLP head), or nothing: the classifier ends the network"
                }
            };
            return Err(self.err(
                n,
                format!(
                    "a {} cannot come here: after {} ccc expects {expected}",
                    layer.kind,
                    prev.map_or("the input".to_string(), |p| format!("the {p}")),
                ),
            ));
        }
        if layer.kind == "conv" && prev == Some("shift") && !layer.pointwise {
            return Err(self.err(
                n,
                "a shift may only precede a 1x1 Conv (a shift before a padded KxK conv zero-fills twice)",
            ));
        }
        self.layers.push(layer);
        Ok(())
    }

    fn layer(kind: &'static str, n: &pb::NodeProto) -> LayerOut {
        LayerOut {
            kind,
            fields: toml::Table::new(),
            node: node_name(n),
            pointwise: false,
        }
    }

    /// Closes a MatMul's linear layer (no Add followed it: no bias).
    fn finish_bias(&mut self) {
        self.open_matmul = false;
    }

    fn node(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        if !(n.domain().is_empty() || n.domain() == "ai.onnx") {
            return Err(self.err(
                n,
                format!(
                    "domain `{}` is not the default ONNX domain; {SUPPORTED}",
                    n.domain()
                ),
            ));
        }
        // Constant folding first: any op whose inputs are all constants.
        let all_const = !n.input.is_empty()
            && n.input
                .iter()
                .filter(|i| !i.is_empty())
                .all(|i| matches!(self.vals.get(i), Some(Val::Const(_))));
        let op = n.op_type();
        if op == "Constant" {
            let c = self.constant(n)?;
            self.set_out(n, Val::Const(c));
            return Ok(());
        }
        if op == "Shape" {
            let dims = match self.val(n, 0)? {
                Val::Const(c) => c.dims.clone(),
                Val::Act(a) => a.shape.dims(),
                Val::Window(_) => return Err(self.err(n, "shape of a padded window")),
            };
            let rank = dims.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
            let start = clampi(attr_int(n, "start", 0));
            let end = clampi(attr_int(n, "end", rank));
            let v: Vec<i64> = dims[start..end.max(start)]
                .iter()
                .map(|&d| d as i64)
                .collect();
            let c = Const {
                dims: vec![v.len()],
                data: Data::Int(v),
                name: n.output.first().cloned().unwrap_or_default(),
            };
            self.set_out(n, Val::Const(c));
            return Ok(());
        }
        if all_const && op != "Conv" && op != "Gemm" && op != "MatMul" {
            let c = self.fold(n)?;
            self.set_out(n, Val::Const(c));
            return Ok(());
        }
        if self.open_matmul && op != "Add" {
            self.finish_bias();
        }
        match op {
            "Conv" => self.conv(n),
            "BatchNormalization" => self.batchnorm(n),
            "Relu" => {
                let s = self.act(n, 0)?;
                let l = Self::layer("relu", n);
                self.push(n, l)?;
                self.advance(n, s);
                Ok(())
            }
            "Clip" => self.clip(n),
            "Pad" => self.pad(n),
            "Slice" => self.slice(n),
            "Concat" => self.concat(n),
            "GlobalAveragePool" => {
                let AShape::Map { c, .. } = self.act(n, 0)? else {
                    return Err(self.err(n, "the input is not a feature map"));
                };
                let l = Self::layer("avgpool", n);
                self.push(n, l)?;
                self.advance(n, AShape::Pooled(c));
                Ok(())
            }
            "AveragePool" => self.average_pool(n),
            "ReduceMean" => self.reduce_mean(n),
            "Flatten" | "Reshape" | "Squeeze" => self.flatten(n),
            "Gemm" => self.gemm(n),
            "MatMul" => self.matmul(n),
            "Add" | "Sub" | "Mul" | "Div" => self.arith(n),
            "Dropout" | "Identity" => {
                let s = self.act(n, 0)?;
                let id = self.cur;
                self.set_out(n, Val::Act(Act { id, shape: s }));
                Ok(())
            }
            "MaxPool" => Err(self.err(
                n,
                format!("max pooling is not supported (the array computes convs; downsample with a strided Conv); {SUPPORTED}"),
            )),
            _ => Err(self.err(n, format!("operator `{op}` is not supported; {SUPPORTED}"))),
        }
    }

    fn constant(&self, n: &pb::NodeProto) -> Result<Const, ModelError> {
        let out = n.output.first().cloned().unwrap_or_default();
        let a = n
            .attribute
            .first()
            .ok_or_else(|| self.err(n, "a Constant without a value"))?;
        let c = match a.name() {
            "value" => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| self.err(n, "`value` holds no tensor"))?;
                let mut c = self.tensor(t, Some(n))?;
                c.name = out;
                c
            }
            "value_float" => Const {
                dims: vec![],
                data: Data::Float(vec![a.f() as f64], FloatKind::F32),
                name: out,
            },
            "value_floats" => Const {
                dims: vec![a.floats.len()],
                data: Data::Float(a.floats.iter().map(|&v| v as f64).collect(), FloatKind::F32),
                name: out,
            },
            "value_int" => Const {
                dims: vec![],
                data: Data::Int(vec![a.i()]),
                name: out,
            },
            "value_ints" => Const {
                dims: vec![a.ints.len()],
                data: Data::Int(a.ints.clone()),
                name: out,
            },
            other => {
                return Err(self.err(n, format!("Constant attribute `{other}` is not supported")));
            }
        };
        Ok(c)
    }

    /// Evaluates an op over constants (the shape arithmetic of an export).
    fn fold(&self, n: &pb::NodeProto) -> Result<Const, ModelError> {
        let op = n.op_type();
        let x = self.konst(n, 0, "input")?;
        let name = n.output.first().cloned().unwrap_or_default();
        let out = |dims: Vec<usize>, data: Data| Const {
            dims,
            data,
            name: name.clone(),
        };
        let ints_of = |c: &Const, what: &str| {
            c.ints()
                .ok_or_else(|| self.err(n, format!("its {what} must be integers")))
        };
        match op {
            "Identity" | "Dropout" => Ok(x.with(x.dims.clone(), x.data.clone())),
            "Cast" => {
                use pb::tensor_proto::DataType as T;
                let to = T::try_from(attr_int(n, "to", 0) as i32).unwrap_or(T::Undefined);
                let data = match to {
                    T::Int64 | T::Int32 | T::Int8 | T::Uint8 | T::Int16 | T::Bool => {
                        Data::Int(x.floats().iter().map(|v| v.trunc() as i64).collect())
                    }
                    T::Float => Data::Float(
                        x.floats().iter().map(|&v| v as f32 as f64).collect(),
                        FloatKind::F32,
                    ),
                    T::Double => Data::Float(x.floats(), FloatKind::F64),
                    _ => {
                        return Err(
                            self.err(n, format!("Cast to {} is not supported", to.as_str_name()))
                        );
                    }
                };
                Ok(out(x.dims.clone(), data))
            }
            "Unsqueeze" | "Squeeze" => {
                let axes = match attr_ints(n, "axes") {
                    Some(a) => Some(a),
                    None => self
                        .opt_konst(n, 1, "axes")?
                        .map(|c| ints_of(&c, "axes"))
                        .transpose()?,
                };
                let mut dims = x.dims.clone();
                if op == "Unsqueeze" {
                    let axes = axes.ok_or_else(|| self.err(n, "Unsqueeze without axes"))?;
                    let rank = dims.len() + axes.len();
                    let mut ax: Vec<usize> = axes
                        .iter()
                        .map(|&a| {
                            axis(a, rank)
                                .ok_or_else(|| self.err(n, format!("axis {a} out of range")))
                        })
                        .collect::<Result<_, _>>()?;
                    ax.sort_unstable();
                    for a in ax {
                        dims.insert(a, 1);
                    }
                } else {
                    let rank = dims.len();
                    let ax: Vec<usize> = match axes {
                        Some(axes) => axes
                            .iter()
                            .map(|&a| {
                                axis(a, rank)
                                    .ok_or_else(|| self.err(n, format!("axis {a} out of range")))
                            })
                            .collect::<Result<_, _>>()?,
                        None => (0..rank).filter(|&i| dims[i] == 1).collect(),
                    };
                    dims = dims
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !ax.contains(i))
                        .map(|(_, &d)| d)
                        .collect();
                }
                Ok(x.with(dims, x.data.clone()).renamed(&name))
            }
            "Gather" => {
                let idx = self.konst(n, 1, "indices")?;
                let ids = ints_of(&idx, "indices")?;
                let rank = x.dims.len();
                let ax = axis(attr_int(n, "axis", 0), rank.max(1))
                    .ok_or_else(|| self.err(n, "axis out of range"))?;
                if rank != 1 || ax != 0 {
                    return Err(self.err(
                        n,
                        "Gather of constants is folded for 1-D data only (shape arithmetic)",
                    ));
                }
                let len = x.dims[0] as i64;
                let mut picked = Vec::with_capacity(ids.len());
                for &i in &ids {
                    let j = if i < 0 { i + len } else { i };
                    if !(0..len).contains(&j) {
                        return Err(
                            self.err(n, format!("index {i} out of range for {len} elements"))
                        );
                    }
                    picked.push(j as usize);
                }
                let data = match &x.data {
                    Data::Int(v) => Data::Int(picked.iter().map(|&j| v[j]).collect()),
                    Data::Float(v, k) => Data::Float(picked.iter().map(|&j| v[j]).collect(), *k),
                };
                Ok(out(idx.dims.clone(), data))
            }
            "Concat" => {
                let mut all = Vec::new();
                for i in 0..n.input.len() {
                    if self.input(n, i).is_some() {
                        all.push(self.konst(n, i, "input")?);
                    }
                }
                if all.iter().any(|c| c.dims.len() > 1) {
                    return Err(self.err(
                        n,
                        "Concat of constants is folded for 1-D data only (shape arithmetic)",
                    ));
                }
                let ints: Option<Vec<Vec<i64>>> = all
                    .iter()
                    .map(|c| match c.data {
                        Data::Int(ref v) => Some(v.clone()),
                        _ => None,
                    })
                    .collect();
                let data = match ints {
                    Some(v) => Data::Int(v.concat()),
                    None => Data::Float(
                        all.iter().flat_map(|c| c.floats()).collect(),
                        FloatKind::F64,
                    ),
                };
                let len = all.iter().map(Const::len).sum();
                Ok(out(vec![len], data))
            }
            "Reshape" => {
                let shape = ints_of(&self.konst(n, 1, "shape")?, "shape")?;
                let dims = reshape_dims(&x.dims, &shape).ok_or_else(|| {
                    self.err(n, format!("cannot reshape {:?} to {shape:?}", x.dims))
                })?;
                Ok(x.with(dims, x.data.clone()).renamed(&name))
            }
            "Slice" => {
                if x.dims.len() != 1 {
                    return Err(self.err(
                        n,
                        "Slice of constants is folded for 1-D data only (shape arithmetic)",
                    ));
                }
                let (starts, ends, axes, steps) = self.slice_args(n)?;
                if axes.iter().any(|&a| a != 0 && a != -1) || steps.iter().any(|&s| s != 1) {
                    return Err(self.err(n, "only unit-step slices of 1-D constants are folded"));
                }
                let len = x.dims[0];
                let (s, e) = clamp_range(starts[0], ends[0], len);
                let data = match &x.data {
                    Data::Int(v) => Data::Int(v[s..e].to_vec()),
                    Data::Float(v, k) => Data::Float(v[s..e].to_vec(), *k),
                };
                Ok(out(vec![e - s], data))
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let y = self.konst(n, 1, "second input")?;
                let (a, b) = (x.floats(), y.floats());
                let dims = if a.len() >= b.len() {
                    x.dims.clone()
                } else {
                    y.dims.clone()
                };
                if !(a.len() == b.len() || a.len() == 1 || b.len() == 1) {
                    return Err(self.err(
                        n,
                        "constant arithmetic is folded for equal shapes or a scalar only",
                    ));
                }
                let len = a.len().max(b.len());
                let at = |v: &[f64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
                let ints = matches!(x.data, Data::Int(_)) && matches!(y.data, Data::Int(_));
                let vals: Vec<f64> = (0..len)
                    .map(|i| {
                        let (p, q) = (at(&a, i), at(&b, i));
                        match op {
                            "Add" => p + q,
                            "Sub" => p - q,
                            "Mul" => p * q,
                            _ if ints => (p / q).trunc(),
                            _ => p / q,
                        }
                    })
                    .collect();
                let data = if ints {
                    Data::Int(vals.iter().map(|&v| v as i64).collect())
                } else {
                    Data::Float(vals, FloatKind::F64)
                };
                Ok(out(dims, data))
            }
            _ => Err(self.err(
                n,
                format!("operator `{op}` over constants is not folded; {SUPPORTED}"),
            )),
        }
    }

    /// Slice's starts, ends, axes and steps (inputs from opset 10, attributes before).
    #[allow(clippy::type_complexity)]
    fn slice_args(
        &self,
        n: &pb::NodeProto,
    ) -> Result<(Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>), ModelError> {
        let get = |i: usize, name: &str| -> Result<Option<Vec<i64>>, ModelError> {
            if let Some(a) = attr_ints(n, name) {
                return Ok(Some(a));
            }
            match self.opt_konst(n, i, name)? {
                Some(c) => c
                    .ints()
                    .map(Some)
                    .ok_or_else(|| self.err(n, format!("{name} must be integers"))),
                None => Ok(None),
            }
        };
        let starts = get(1, "starts")?.ok_or_else(|| self.err(n, "Slice without starts"))?;
        let ends = get(2, "ends")?.ok_or_else(|| self.err(n, "Slice without ends"))?;
        let axes = get(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = get(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(self.err(n, "starts, ends, axes and steps differ in length"));
        }
        Ok((starts, ends, axes, steps))
    }

    fn conv(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        // A Pad in front of a conv is folded into the conv's padding when symmetric.
        let (shape, extra_pad) = match self.val(n, 0)? {
            Val::Window(w) if w.act == self.cur && w.full() => {
                let p = w.pads[0];
                if w.pads.iter().any(|&q| q != p) {
                    return Err(self.err(
                        n,
                        format!("reads Pad `{}` whose pads {:?} (top, left, bottom, right) are not symmetric; ccc supports symmetric padding only", w.pad_node, w.pads),
                    ));
                }
                (
                    AShape::Map {
                        c: w.c,
                        h: w.h,
                        w: w.w,
                    },
                    p,
                )
            }
            _ => (self.act(n, 0)?, 0),
        };
        let AShape::Map { c, h, w } = shape else {
            return Err(self.err(
                n,
                format!("a Conv needs a feature map, found a {}", shape.describe()),
            ));
        };
        let wt = self.konst(n, 1, "weight")?;
        if !matches!(wt.data, Data::Float(..)) || wt.dims.len() != 4 {
            return Err(self.err(
                n,
                format!(
                    "weight `{}` must be a 4-D float tensor, found shape {:?}",
                    wt.name, wt.dims
                ),
            ));
        }
        let (o, ci, kh, kw) = (wt.dims[0], wt.dims[1], wt.dims[2], wt.dims[3]);
        let group = attr_int(n, "group", 1);
        if let Some(d) = attr_ints(n, "dilations")
            && d.iter().any(|&v| v != 1)
        {
            return Err(self.err(
                n,
                format!("dilations {d:?} are not supported (only 1); {SUPPORTED}"),
            ));
        }
        if let Some(k) = attr_ints(n, "kernel_shape")
            && k != [kh as i64, kw as i64]
        {
            return Err(self.err(
                n,
                format!("kernel_shape {k:?} does not match the weight's {kh}x{kw}"),
            ));
        }
        if kh != kw {
            return Err(self.err(n, format!("kernel {kh}x{kw} is not square; {SUPPORTED}")));
        }
        let k = kh;
        let strides = attr_ints(n, "strides").unwrap_or_else(|| vec![1, 1]);
        if strides.len() != 2 || strides[0] != strides[1] || strides[0] < 1 {
            return Err(self.err(
                n,
                format!(
                    "strides {strides:?} differ between height and width (unsupported); {SUPPORTED}"
                ),
            ));
        }
        let stride = strides[0] as usize;
        let auto_pad = attr_str(n, "auto_pad").unwrap_or_default();
        let pads: Vec<i64> = match auto_pad.as_str() {
            "" | "NOTSET" => attr_ints(n, "pads").unwrap_or_else(|| vec![0; 4]),
            "VALID" => vec![0; 4],
            "SAME_UPPER" | "SAME_LOWER" if k % 2 == 1 && stride == 1 => vec![(k as i64 - 1) / 2; 4],
            other => {
                return Err(self.err(n, format!("auto_pad {other} with a {k}x{k} kernel at stride {stride} pads asymmetrically; export with explicit symmetric pads")));
            }
        };
        if pads.len() != 4 || pads.iter().any(|&p| p != pads[0]) || pads[0] < 0 {
            return Err(self.err(
                n,
                format!("pads {pads:?} (top, left, bottom, right) are not symmetric; ccc supports symmetric padding only; {SUPPORTED}"),
            ));
        }
        let padding = pads[0] as usize + extra_pad;
        let bias = self.opt_konst(n, 2, "bias")?;
        if let Some(b) = &bias
            && (b.dims != [o] || !matches!(b.data, Data::Float(..)))
        {
            return Err(self.err(
                n,
                format!(
                    "bias `{}` has shape {:?}, expected [{o}] floats",
                    b.name, b.dims
                ),
            ));
        }
        if group != 1 {
            return self.depthwise_shift(
                n,
                &wt,
                bias.as_ref(),
                group,
                (c, h, w),
                (k, stride, padding),
            );
        }
        if ci != c {
            return Err(self.err(
                n,
                format!(
                    "weight `{}` takes {ci} input channels, but {c} arrive",
                    wt.name
                ),
            ));
        }
        if h + 2 * padding < k || w + 2 * padding < k {
            return Err(self.err(
                n,
                format!(
                    "kernel {k}x{k} does not fit the padded {}x{} input",
                    h + 2 * padding,
                    w + 2 * padding
                ),
            ));
        }
        // The input normalization folds into the first conv.
        let (wt, bias, changed) = match self.pending_norm.take() {
            Some(norm) => {
                if norm.offset.iter().any(|&v| v != 0.0) && padding > 0 {
                    return Err(self.err(
                        n,
                        format!(
                            "cannot fold the input normalization at `{}` into this conv: it pads with zeros, and a zero of the normalized input is not a zero of the raw input, so the border pixels would change. Export without the Sub (normalize in the data pipeline), or use a first conv without padding",
                            norm.node
                        ),
                    ));
                }
                let (wf, bf) = fold_norm(&wt, bias.as_ref(), &norm, o, c, k);
                (
                    wt.with(wt.dims.clone(), Data::Float(wf, FloatKind::F64)),
                    Some(bf),
                    true,
                )
            }
            None => (wt, bias, false),
        };
        let mut l = Self::layer("conv", n);
        l.pointwise = k == 1;
        let wname = self.add_tensor(&wt, changed);
        l.fields.insert("weight".into(), wname.into());
        if let Some(b) = &bias {
            let bname = self.add_tensor(b, changed);
            l.fields.insert("bias".into(), bname.into());
        }
        l.fields.insert("stride".into(), (stride as i64).into());
        l.fields.insert("padding".into(), (padding as i64).into());
        self.push(n, l)?;
        let out = AShape::Map {
            c: o,
            h: (h + 2 * padding - k) / stride + 1,
            w: (w + 2 * padding - k) / stride + 1,
        };
        self.advance(n, out);
        Ok(())
    }

    /// A depthwise conv whose kernels are one-hot (value 1, no bias) is a shift.
    #[allow(clippy::too_many_arguments)]
    fn depthwise_shift(
        &mut self,
        n: &pb::NodeProto,
        wt: &Const,
        bias: Option<&Const>,
        group: i64,
        (c, h, w): (usize, usize, usize),
        (k, stride, padding): (usize, usize, usize),
    ) -> Result<(), ModelError> {
        let not_shift = |why: String| {
            self.err(
                n,
                format!("a grouped Conv (group = {group}) is accepted only as a shift, a depthwise conv with one-hot kernels; this one {why}; {SUPPORTED}"),
            )
        };
        if group as usize != c || wt.dims[0] != c || wt.dims[1] != 1 {
            return Err(not_shift(format!(
                "has weight {:?} over {c} channels (a shift is [C, 1, k, k] with group = C)",
                wt.dims
            )));
        }
        if stride != 1 || 2 * padding + 1 != k {
            return Err(not_shift(format!(
                "has stride {stride} and padding {padding} with a {k}x{k} kernel (a shift keeps the map size: stride 1, padding (k - 1) / 2)"
            )));
        }
        if let Some(b) = bias
            && b.floats().iter().any(|&v| v != 0.0)
        {
            return Err(not_shift(format!("has a nonzero bias `{}`", b.name)));
        }
        if self
            .pending_norm
            .as_ref()
            .is_some_and(|nm| nm.offset.iter().any(|&v| v != 0.0))
        {
            let node = self
                .pending_norm
                .as_ref()
                .map(|nm| nm.node.clone())
                .unwrap_or_default();
            return Err(self.err(n, format!("cannot fold the input normalization at `{node}` past this shift: the shift fills with zeros, and a zero of the normalized input is not a zero of the raw input")));
        }
        let v = wt.floats();
        let mut flat = Vec::with_capacity(2 * c);
        for ch in 0..c {
            let kern = &v[ch * k * k..(ch + 1) * k * k];
            let ones: Vec<usize> = (0..k * k).filter(|&i| kern[i] != 0.0).collect();
            match ones[..] {
                [i] if kern[i] == 1.0 => {
                    let (ky, kx) = ((i / k) as i64, (i % k) as i64);
                    flat.push(ky - padding as i64);
                    flat.push(kx - padding as i64);
                }
                [i] => {
                    return Err(not_shift(format!(
                        "has a kernel for channel {ch} whose one nonzero is {}, not 1",
                        kern[i]
                    )));
                }
                _ => {
                    return Err(not_shift(format!(
                        "has a kernel for channel {ch} with {} nonzeros (a shift has exactly one, equal to 1)",
                        ones.len()
                    )));
                }
            }
        }
        self.shift_layer(n, &wt.name, flat, (c, h, w))
    }

    fn shift_layer(
        &mut self,
        n: &pb::NodeProto,
        base: &str,
        flat: Vec<i64>,
        (c, h, w): (usize, usize, usize),
    ) -> Result<(), ModelError> {
        let t = Const {
            dims: vec![c, 2],
            data: Data::Int(flat),
            name: format!("{base}.shifts"),
        };
        let name = self.add_tensor(&t, true);
        let mut l = Self::layer("shift", n);
        l.fields.insert("shifts".into(), name.into());
        self.push(n, l)?;
        self.advance(n, AShape::Map { c, h, w });
        Ok(())
    }

    fn batchnorm(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let s = self.act(n, 0)?;
        let AShape::Map { c, .. } = s else {
            return Err(self.err(n, "BatchNormalization is supported on feature maps only"));
        };
        if attr_int(n, "training_mode", 0) != 0 || attr_int(n, "spatial", 1) != 1 {
            return Err(self.err(n, "only inference-mode, spatial BatchNormalization is supported (export the model in eval mode)"));
        }
        let mut l = Self::layer("batchnorm", n);
        for (i, key) in [(1, "weight"), (2, "bias"), (3, "mean"), (4, "var")] {
            let t = self.float_param(n, i, key, &[c])?;
            let name = self.add_tensor(&t, false);
            l.fields.insert(key.into(), name.into());
        }
        let eps = attr_float(n, "epsilon").map_or(1e-5, f32_decimal);
        l.fields.insert("eps".into(), eps.into());
        self.push(n, l)?;
        self.advance(n, s);
        Ok(())
    }

    fn clip(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let s = self.act(n, 0)?;
        let bound = |i: usize, name: &str| -> Result<Option<f64>, ModelError> {
            if let Some(v) = attr_float(n, name) {
                return Ok(Some(v as f64));
            }
            match self.opt_konst(n, i, name)? {
                Some(c) => c
                    .scalar()
                    .map(Some)
                    .ok_or_else(|| self.err(n, format!("`{name}` must be a scalar"))),
                None => Ok(None),
            }
        };
        let (lo, hi) = (bound(1, "min")?, bound(2, "max")?);
        let after_relu =
            matches!(self.layers.last(), Some(l) if l.kind == "relu" || l.kind == "relu6");
        let ok =
            hi == Some(6.0) && (lo == Some(0.0) || (after_relu && lo.is_none_or(|v| v <= 0.0)));
        if !ok {
            return Err(self.err(
                n,
                format!(
                    "Clip({}, {}) is not supported: ccc's activations are ReLU and ReLU6, so only Clip(0, 6) (or Relu followed by Clip(·, 6)) is",
                    lo.map_or("-inf".into(), |v| v.to_string()),
                    hi.map_or("inf".into(), |v| v.to_string())
                ),
            ));
        }
        if after_relu {
            // Relu then Clip(0, 6) is how F.relu6 can export: one relu6.
            let last = self.layers.last_mut().expect("checked");
            last.kind = "relu6";
            let id = self.cur;
            self.set_out(n, Val::Act(Act { id, shape: s }));
            return Ok(());
        }
        let l = Self::layer("relu6", n);
        self.push(n, l)?;
        self.advance(n, s);
        Ok(())
    }

    fn pad(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let AShape::Map { c, h, w } = self.act(n, 0)? else {
            return Err(self.err(n, "Pad is supported on feature maps only"));
        };
        let mode = attr_str(n, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(self.err(
                n,
                format!("Pad mode `{mode}` is not supported (only zero padding)"),
            ));
        }
        let pads = match attr_ints(n, "pads").or_else(|| attr_ints(n, "paddings")) {
            Some(p) => p,
            None => self
                .konst(n, 1, "pads")?
                .ints()
                .ok_or_else(|| self.err(n, "pads must be integers"))?,
        };
        let value = match attr_float(n, "value") {
            Some(v) => v as f64,
            None => self
                .opt_konst(n, 2, "constant_value")?
                .and_then(|c| c.scalar())
                .unwrap_or(0.0),
        };
        if value != 0.0 {
            return Err(self.err(
                n,
                format!("Pad with value {value} is not supported (only zeros)"),
            ));
        }
        if self.input(n, 3).is_some() {
            return Err(self.err(n, "Pad with `axes` is not supported"));
        }
        if pads.len() != 8
            || pads[0] != 0
            || pads[1] != 0
            || pads[4] != 0
            || pads[5] != 0
            || pads.iter().any(|&p| p < 0)
        {
            return Err(self.err(
                n,
                format!("pads {pads:?} must pad H and W only, by non-negative amounts"),
            ));
        }
        if self
            .pending_norm
            .as_ref()
            .is_some_and(|nm| nm.offset.iter().any(|&v| v != 0.0))
        {
            return Err(self.err(n, "cannot fold the input normalization past this zero Pad: a zero of the normalized input is not a zero of the raw input"));
        }
        let p = |i: usize| pads[i] as usize;
        let win = Window {
            act: self.cur,
            c,
            h,
            w,
            pads: [p(2), p(3), p(6), p(7)],
            ch: (0, c),
            y: (0, h + p(2) + p(6)),
            x: (0, w + p(3) + p(7)),
            pad_node: node_name(n),
        };
        self.set_out(n, Val::Window(win));
        Ok(())
    }

    fn slice(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let mut win = match self.val(n, 0)? {
            Val::Window(w) => w.clone(),
            Val::Act(_) => {
                let AShape::Map { c, h, w } = self.act(n, 0)? else {
                    return Err(self.err(
                        n,
                        "Slice is supported on feature maps only (a shift's channel groups)",
                    ));
                };
                Window {
                    act: self.cur,
                    c,
                    h,
                    w,
                    pads: [0; 4],
                    ch: (0, c),
                    y: (0, h),
                    x: (0, w),
                    pad_node: node_name(n),
                }
            }
            Val::Const(_) => unreachable!("constant slices are folded"),
        };
        let (starts, ends, axes, steps) = self.slice_args(n)?;
        for i in 0..starts.len() {
            if steps[i] != 1 {
                return Err(self.err(n, format!("step {} is not supported (only 1)", steps[i])));
            }
            let ax = axis(axes[i], 4)
                .ok_or_else(|| self.err(n, format!("axis {} out of range", axes[i])))?;
            let range = match ax {
                1 => &mut win.ch,
                2 => &mut win.y,
                3 => &mut win.x,
                _ => {
                    let (s, e) = clamp_range(starts[i], ends[i], 1);
                    if (s, e) != (0, 1) {
                        return Err(self.err(n, "slicing the batch dimension is not supported"));
                    }
                    continue;
                }
            };
            let len = range.1 - range.0;
            let (s, e) = clamp_range(starts[i], ends[i], len);
            *range = (range.0 + s, range.0 + e);
        }
        if win.ch.0 == win.ch.1 || win.y.0 == win.y.1 || win.x.0 == win.x.1 {
            return Err(self.err(n, "the slice is empty"));
        }
        self.set_out(n, Val::Window(win));
        Ok(())
    }

    /// Concat of windows of one padded activation along channels: a pad-and-slice shift.
    fn concat(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let mut wins = Vec::new();
        for i in 0..n.input.len() {
            if self.input(n, i).is_none() {
                continue;
            }
            match self.val(n, i)? {
                Val::Window(w) => wins.push(w.clone()),
                Val::Act(_) => {
                    return Err(self.err(n, "a Concat of activations (a branch or a skip connection) is not supported; a Concat may only reassemble the channel groups of a pad-and-slice shift"));
                }
                Val::Const(_) => {
                    return Err(self.err(
                        n,
                        "a Concat mixing constants and activations is not supported",
                    ));
                }
            }
        }
        let ax = axis(attr_int(n, "axis", 1), 4);
        if ax != Some(1) {
            return Err(self.err(n, "a shift's Concat must join channel groups (axis 1)"));
        }
        let first = wins
            .first()
            .ok_or_else(|| self.err(n, "a Concat without inputs"))?
            .clone();
        if first.act != self.cur
            || wins
                .iter()
                .any(|w| w.act != first.act || w.pads != first.pads)
        {
            return Err(self.err(n, "the Concat joins slices of different tensors; a shift slices one padded activation"));
        }
        let (c, h, w) = (first.c, first.h, first.w);
        let mut flat = Vec::with_capacity(2 * c);
        let mut next = 0;
        for win in &wins {
            if win.ch.0 != next {
                return Err(self.err(
                    n,
                    format!("the slices take channels [{}, {}) after channel {next}: a shift keeps the channel order (the groups must cover 0..{c} in order)", win.ch.0, win.ch.1),
                ));
            }
            if win.y.1 - win.y.0 != h || win.x.1 - win.x.0 != w {
                return Err(self.err(
                    n,
                    format!(
                        "a slice is {}x{}, but a shift keeps the {h}x{w} map size",
                        win.y.1 - win.y.0,
                        win.x.1 - win.x.0
                    ),
                ));
            }
            let dy = win.y.0 as i64 - win.pads[0] as i64;
            let dx = win.x.0 as i64 - win.pads[1] as i64;
            for _ in win.ch.0..win.ch.1 {
                flat.push(dy);
                flat.push(dx);
            }
            next = win.ch.1;
        }
        if next != c {
            return Err(self.err(
                n,
                format!("the slices cover channels 0..{next} of {c}: a shift keeps every channel"),
            ));
        }
        let base = n.output.first().cloned().unwrap_or_else(|| "shift".into());
        self.shift_layer(n, &base, flat, (c, h, w))
    }

    fn average_pool(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let AShape::Map { c, h, w } = self.act(n, 0)? else {
            return Err(self.err(n, "the input is not a feature map"));
        };
        let kernel = attr_ints(n, "kernel_shape").unwrap_or_default();
        let pads = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 4]);
        if kernel != [h as i64, w as i64]
            || pads.iter().any(|&p| p != 0)
            || attr_int(n, "ceil_mode", 0) != 0
        {
            return Err(self.err(n, format!("AveragePool with kernel {kernel:?} on a {h}x{w} map: only a pool over the whole map (a global average pool) is supported; {SUPPORTED}")));
        }
        let l = Self::layer("avgpool", n);
        self.push(n, l)?;
        self.advance(n, AShape::Pooled(c));
        Ok(())
    }

    fn reduce_mean(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let AShape::Map { c, .. } = self.act(n, 0)? else {
            return Err(self.err(n, "the input is not a feature map"));
        };
        let axes = match attr_ints(n, "axes") {
            Some(a) => a,
            None => self
                .opt_konst(n, 1, "axes")?
                .and_then(|c| c.ints())
                .ok_or_else(|| {
                    self.err(
                        n,
                        "ReduceMean without axes (it would average over every dimension)",
                    )
                })?,
        };
        let mut ax: Vec<Option<usize>> = axes.iter().map(|&a| axis(a, 4)).collect();
        ax.sort_unstable();
        if ax != [Some(2), Some(3)] {
            return Err(self.err(n, format!("ReduceMean over axes {axes:?}: only the mean over H and W (axes 2, 3) is supported")));
        }
        let l = Self::layer("avgpool", n);
        self.push(n, l)?;
        let keep = attr_int(n, "keepdims", 1) != 0;
        self.advance(
            n,
            if keep {
                AShape::Pooled(c)
            } else {
                AShape::Vector(c)
            },
        );
        Ok(())
    }

    /// Flatten/Reshape/Squeeze of a pooled map (or a 1x1 map) to the classifier's vector.
    fn flatten(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let s = self.act(n, 0)?;
        let (c, pool) = match s {
            AShape::Pooled(c) => (c, false),
            AShape::Map { c, h: 1, w: 1 } => (c, true),
            AShape::Vector(n) => (n, false),
            AShape::Map { c, h, w } => {
                return Err(self.err(
                    n,
                    format!("flattening a {c}x{h}x{w} map is not supported: the classifier reads the global average pool (put GlobalAveragePool before it)"),
                ));
            }
        };
        let target = match n.op_type() {
            "Flatten" => {
                if attr_int(n, "axis", 1) != 1 {
                    return Err(self.err(n, "only Flatten(axis = 1) is supported"));
                }
                vec![1, c]
            }
            "Reshape" => {
                let shape = self
                    .konst(n, 1, "shape")?
                    .ints()
                    .ok_or_else(|| self.err(n, "shape must be integers"))?;
                reshape_dims(&s.dims(), &shape).ok_or_else(|| {
                    self.err(n, format!("cannot reshape {:?} to {shape:?}", s.dims()))
                })?
            }
            _ => {
                let axes = match attr_ints(n, "axes") {
                    Some(a) => a,
                    None => self
                        .opt_konst(n, 1, "axes")?
                        .and_then(|c| c.ints())
                        .unwrap_or_else(|| vec![2, 3]),
                };
                let mut ax: Vec<Option<usize>> = axes.iter().map(|&a| axis(a, 4)).collect();
                ax.sort_unstable();
                if ax != [Some(2), Some(3)] {
                    return Err(self.err(n, format!("Squeeze over axes {axes:?}: only axes 2, 3 of a pooled map are supported")));
                }
                vec![1, c]
            }
        };
        if target != [1, c] && target != [c] {
            return Err(self.err(
                n,
                format!("reshaping to {target:?}: only flattening to [1, {c}] is supported"),
            ));
        }
        if pool {
            // Flattening a Cx1x1 map is a global average pool over one pixel: exact.
            let l = Self::layer("avgpool", n);
            self.push(n, l)?;
        }
        self.advance(n, AShape::Vector(c));
        Ok(())
    }

    fn linear(
        &mut self,
        n: &pb::NodeProto,
        weight: Const,
        bias: Option<Const>,
        changed: bool,
    ) -> Result<(), ModelError> {
        let mut l = Self::layer("linear", n);
        let out = weight.dims[0];
        let wname = self.add_tensor(&weight, changed);
        l.fields.insert("weight".into(), wname.into());
        if let Some(b) = bias {
            let bname = self.add_tensor(&b, b.dims.len() != 1);
            l.fields.insert("bias".into(), bname.into());
        }
        self.push(n, l)?;
        self.advance(n, AShape::Vector(out));
        Ok(())
    }

    fn classifier_input(&self, n: &pb::NodeProto) -> Result<usize, ModelError> {
        match self.act(n, 0)? {
            AShape::Vector(c) => Ok(c),
            s => Err(self.err(
                n,
                format!(
                    "the classifier reads a {}; flatten the global average pool first",
                    s.describe()
                ),
            )),
        }
    }

    fn gemm(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let cin = self.classifier_input(n)?;
        if attr_int(n, "transA", 0) != 0 {
            return Err(self.err(n, "Gemm with transA = 1 is not supported"));
        }
        for a in ["alpha", "beta"] {
            if let Some(v) = attr_float(n, a)
                && v != 1.0
            {
                return Err(self.err(n, format!("Gemm with {a} = {v} is not supported (only 1)")));
            }
        }
        let b = self.konst(n, 1, "weight")?;
        let trans = attr_int(n, "transB", 0) != 0;
        let weight = self.matrix(n, &b, cin, trans)?;
        let out = weight.dims[0];
        let changed = !trans;
        let bias = self.classifier_bias(n, 2, out)?;
        self.linear(n, weight, bias, changed)
    }

    fn matmul(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let cin = self.classifier_input(n)?;
        let b = self.konst(n, 1, "weight")?;
        let weight = self.matrix(n, &b, cin, false)?;
        self.linear(n, weight, None, true)?;
        self.open_matmul = true;
        Ok(())
    }

    /// The classifier's [out, in] weight from a Gemm/MatMul operand.
    fn matrix(
        &self,
        n: &pb::NodeProto,
        b: &Const,
        cin: usize,
        trans: bool,
    ) -> Result<Const, ModelError> {
        let Data::Float(v, kind) = &b.data else {
            return Err(self.err(n, format!("weight `{}` is not a float tensor", b.name)));
        };
        let ok = b.dims.len() == 2 && b.dims[if trans { 1 } else { 0 }] == cin;
        if !ok {
            return Err(self.err(
                n,
                format!(
                    "weight `{}` has shape {:?}, which does not take {cin} inputs",
                    b.name, b.dims
                ),
            ));
        }
        if trans {
            return Ok(b.clone());
        }
        let out = b.dims[1];
        let t: Vec<f64> = (0..out * cin)
            .map(|i| v[(i % cin) * out + i / cin])
            .collect();
        Ok(b.with(vec![out, cin], Data::Float(t, *kind)))
    }

    fn classifier_bias(
        &self,
        n: &pb::NodeProto,
        i: usize,
        out: usize,
    ) -> Result<Option<Const>, ModelError> {
        let Some(c) = self.opt_konst(n, i, "bias")? else {
            return Ok(None);
        };
        if c.len() != out
            || !matches!(c.data, Data::Float(..))
            || c.dims.iter().filter(|&&d| d != 1).count() > 1
        {
            return Err(self.err(
                n,
                format!(
                    "bias `{}` has shape {:?}, expected [{out}] floats",
                    c.name, c.dims
                ),
            ));
        }
        Ok(Some(c.with(vec![out], c.data.clone())))
    }

    fn arith(&mut self, n: &pb::NodeProto) -> Result<(), ModelError> {
        let op = n.op_type();
        let (a, b) = (self.val(n, 0)?.clone(), self.val(n, 1)?.clone());
        let (act_first, k) = match (&a, &b) {
            (Val::Act(_), Val::Act(_)) => {
                return Err(self.err(n, format!("{op} of two activations (a residual connection) is not supported: ccc takes a chain of layers; {SUPPORTED}")));
            }
            (Val::Act(_), Val::Const(k)) => (true, k.clone()),
            (Val::Const(k), Val::Act(_)) => (false, k.clone()),
            _ => {
                return Err(self.err(
                    n,
                    format!("{op} of a padded or sliced tensor is not supported"),
                ));
            }
        };
        let s = self.act(n, if act_first { 0 } else { 1 })?;
        if op == "Add" && self.open_matmul {
            let AShape::Vector(out) = s else {
                unreachable!("a MatMul makes a vector")
            };
            let bias = self.classifier_bias(n, if act_first { 1 } else { 0 }, out)?;
            self.open_matmul = false;
            let name = self.add_tensor(bias.as_ref().expect("checked"), true);
            self.layers
                .last_mut()
                .expect("the linear layer")
                .fields
                .insert("bias".into(), name.into());
            let id = self.cur;
            self.set_out(n, Val::Act(Act { id, shape: s }));
            return Ok(());
        }
        if !self.layers.is_empty() {
            return Err(self.err(
                n,
                format!("{op} by a constant after the first layer is not supported (only an input normalization before the first conv, or the bias Add after a MatMul); {SUPPORTED}"),
            ));
        }
        let AShape::Map { c, .. } = s else {
            unreachable!("the input is a map")
        };
        if !act_first && (op == "Sub" || op == "Div") {
            return Err(self.err(
                n,
                format!("{op} with the input as its second operand is not an affine normalization"),
            ));
        }
        let per_channel = k.len() == 1
            || (k.len() == c && k.dims.iter().filter(|&&d| d != 1).count() == 1 && {
                let r = k.dims.len();
                // [C], [C, 1, 1] or [1, C, 1, 1]: the channel axis.
                (r == 1) || (r == 3 && k.dims[0] == c) || (r == 4 && k.dims[1] == c)
            });
        if !per_channel {
            return Err(self.err(n, format!("constant `{}` of shape {:?} is not per channel; an input normalization is folded only when it is per channel", k.name, k.dims)));
        }
        let v = k.floats();
        let at = |i: usize| if v.len() == 1 { v[0] } else { v[i] };
        let mut norm = self.pending_norm.take().unwrap_or_else(|| Norm {
            scale: vec![1.0; c],
            offset: vec![0.0; c],
            node: node_name(n),
        });
        for ch in 0..c {
            let q = at(ch);
            match op {
                "Add" => norm.offset[ch] += q,
                "Sub" => norm.offset[ch] -= q,
                "Mul" => {
                    norm.scale[ch] *= q;
                    norm.offset[ch] *= q;
                }
                _ => {
                    if q == 0.0 {
                        return Err(self.err(n, format!("divides channel {ch} by zero")));
                    }
                    norm.scale[ch] /= q;
                    norm.offset[ch] /= q;
                }
            }
        }
        self.pending_norm = Some(norm);
        // The normalized input stays "the input" for the chain (same id).
        let id = self.cur;
        self.set_out(n, Val::Act(Act { id, shape: s }));
        Ok(())
    }

    fn apply_alphas(&mut self, text: &str) -> Result<(), ModelError> {
        let invalid = |reason: String| ModelError::OnnxInvalid {
            path: self.path.to_path_buf(),
            reason: format!("metadata `{ALPHA_KEY}` = {text:?}: {reason}"),
        };
        let vals: Vec<i64> = text
            .split(',')
            .map(|s| s.trim().parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("not a list of integers ({e})")))?;
        let convs: Vec<usize> = (0..self.layers.len())
            .filter(|&i| self.layers[i].kind == "conv")
            .collect();
        let per = match vals[..] {
            [a] => vec![a; convs.len()],
            _ if vals.len() == convs.len() => vals,
            _ => {
                return Err(invalid(format!(
                    "{} values for {} convs (give one, or one per conv)",
                    vals.len(),
                    convs.len()
                )));
            }
        };
        for (&i, a) in convs.iter().zip(per) {
            if a < 1 {
                return Err(invalid(format!("alpha {a} is below 1")));
            }
            self.layers[i].fields.insert("alpha".into(), a.into());
        }
        Ok(())
    }

    fn graph_toml(
        &self,
        name: &str,
        classes: usize,
        input: [usize; 3],
        gamma: Option<f64>,
    ) -> Result<String, ModelError> {
        #[derive(Serialize)]
        struct Model<'a> {
            name: &'a str,
            classes: usize,
        }
        #[derive(Serialize)]
        struct Input {
            channels: usize,
            height: usize,
            width: usize,
        }
        #[derive(Serialize)]
        struct Packing {
            gamma: f64,
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            model: Model<'a>,
            input: Input,
            #[serde(skip_serializing_if = "Option::is_none")]
            packing: Option<Packing>,
        }
        let head = toml::to_string(&Doc {
            model: Model { name, classes },
            input: Input {
                channels: input[0],
                height: input[1],
                width: input[2],
            },
            packing: gamma.map(|gamma| Packing { gamma }),
        })
        .map_err(|e| ModelError::OnnxInvalid {
            path: self.path.to_path_buf(),
            reason: format!("writing the graph: {e}"),
        })?;
        let mut text = head;
        for l in &self.layers {
            let mut t = l.fields.clone();
            t.insert("kind".into(), l.kind.into());
            let body = toml::to_string(&t).map_err(|e| ModelError::OnnxInvalid {
                path: self.path.to_path_buf(),
                reason: format!("writing the graph: {e}"),
            })?;
            let comment: String = l
                .node
                .chars()
                .map(|ch| if ch.is_control() { '?' } else { ch })
                .collect();
            text += &format!("\n# ONNX node {comment}\n[[layers]]\n{body}");
        }
        Ok(text)
    }
}

impl Const {
    fn renamed(mut self, name: &str) -> Const {
        self.name = name.to_string();
        self
    }
}

/// ONNX Reshape's target dims (0 copies the input's dim, -1 takes the rest).
fn reshape_dims(dims: &[usize], shape: &[i64]) -> Option<Vec<usize>> {
    let total = numel(dims);
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            0 => out.push(*dims.get(i)?),
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            s if s > 0 => out.push(s as usize),
            _ => return None,
        }
    }
    let known = numel(&out);
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return None;
        }
        out[i] = total / known;
    }
    (numel(&out) == total).then_some(out)
}

/// Slice bounds resolved against a length (negatives from the end, clamped).
fn clamp_range(start: i64, end: i64, len: usize) -> (usize, usize) {
    let l = len as i64;
    let r = |v: i64| (if v < 0 { v + l } else { v }).clamp(0, l) as usize;
    let (s, e) = (r(start), r(end));
    (s, e.max(s))
}

/// Folds x' = scale · x + offset (per input channel) into a conv over x':
/// W'[o, c] = W[o, c] · scale[c], b'[o] = b[o] + Σ W[o, c, ky, kx] · offset[c] (f64).
fn fold_norm(
    wt: &Const,
    bias: Option<&Const>,
    norm: &Norm,
    o: usize,
    c: usize,
    k: usize,
) -> (Vec<f64>, Const) {
    let w = wt.floats();
    let mut wf = w.clone();
    let mut bf = bias.map_or_else(|| vec![0.0; o], |b| b.floats());
    for (oo, b) in bf.iter_mut().enumerate().take(o) {
        for ch in 0..c {
            for t in 0..k * k {
                let i = (oo * c + ch) * k * k + t;
                wf[i] = w[i] * norm.scale[ch];
                *b += w[i] * norm.offset[ch];
            }
        }
    }
    let bname = bias.map_or_else(|| format!("{}.bias", wt.name), |b| b.name.clone());
    let b = Const {
        dims: vec![o],
        data: Data::Float(bf, FloatKind::F64),
        name: bname,
    };
    (wf, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_follows_onnx_rules() {
        assert_eq!(reshape_dims(&[1, 8, 1, 1], &[1, -1]), Some(vec![1, 8]));
        assert_eq!(reshape_dims(&[1, 8, 1, 1], &[0, -1]), Some(vec![1, 8]));
        assert_eq!(reshape_dims(&[1, 8, 2, 2], &[1, 8]), None);
        assert_eq!(reshape_dims(&[1, 8], &[-1, -1]), None);
    }

    #[test]
    fn f32_attributes_read_as_their_decimal() {
        assert_eq!(f32_decimal(1e-5f32), 1e-5);
        assert_eq!(f32_decimal(1e-3f32), 1e-3);
        assert_eq!(f32_decimal(0.1f32), 0.1);
    }

    #[test]
    fn slice_ranges_clamp_like_onnx() {
        assert_eq!(clamp_range(1, i64::MAX, 5), (1, 5));
        assert_eq!(clamp_range(-2, -1, 5), (3, 4));
        assert_eq!(clamp_range(4, 2, 5), (4, 4));
    }
}
