//! Model ingest: reads a `.safetensors` file and its `ccc.graph` TOML (docs/DESIGN.md §2)
//! into the float [`Network`] IR, validating every tensor, shape and parameter so that
//! later stages can trust it.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Array4};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Metadata key that carries the graph TOML inside the safetensors header.
pub const GRAPH_KEY: &str = "ccc.graph";

/// Largest input side, channel count or class count accepted; far beyond any array the
/// compiler can target, and small enough that shape arithmetic cannot overflow.
pub const MAX_DIM: usize = 1 << 16;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// The float network exactly as the file describes it (no folding, no lowering).
#[derive(Clone, Debug)]
pub struct Network {
    pub name: String,
    pub classes: usize,
    pub input: InputSpec,
    pub gamma: Option<f64>,
    pub layers: Vec<Layer>,
    /// The file it came from, for messages.
    pub path: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Layer {
    /// Position in the graph's `[[layers]]` list; error messages use it.
    pub index: usize,
    pub op: Op,
}

#[derive(Clone, Debug)]
pub enum Op {
    Conv(Conv),
    DecomposedConv(DecomposedConv),
    Shift(Shift),
    BatchNorm(BatchNorm),
    Relu6,
    Relu,
    AvgPool,
    Linear(Linear),
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv(_) => "conv",
            Op::DecomposedConv(_) => "decomposed_conv",
            Op::Shift(_) => "shift",
            Op::BatchNorm(_) => "batchnorm",
            Op::Relu6 => "relu6",
            Op::Relu => "relu",
            Op::AvgPool => "avgpool",
            Op::Linear(_) => "linear",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Conv {
    pub weight_name: String,
    /// [out, in, k, k], already multiplied by the mask if one was given.
    pub weight: Array4<f64>,
    pub bias: Option<Array1<f64>>,
    pub stride: usize,
    pub padding: usize,
    pub alpha: Option<usize>,
    /// A stored column grouping (pre-defined sparsity, docs/DESIGN.md §10): the group of
    /// every tap in (in, ky, kx) order, the lowering's tap order.
    pub groups: Option<Groups>,
}

/// A KxK conv whose kernels combine M basis kernels shared by all input channels
/// (kernel decomposition, docs/DESIGN.md §10): `W[n, c] = Σ_m coeff[n, c·M + m] · basis[m]`.
#[derive(Clone, Debug)]
pub struct DecomposedConv {
    pub basis_name: String,
    /// [M, k, k].
    pub basis: Array3<f64>,
    pub weight_name: String,
    /// [N, C·M], already multiplied by the mask if one was given.
    pub coeff: Array2<f64>,
    pub bias: Option<Array1<f64>>,
    pub stride: usize,
    pub padding: usize,
    pub alpha: Option<usize>,
}

impl DecomposedConv {
    /// Basis kernels M.
    pub fn bases(&self) -> usize {
        self.basis.dim().0
    }

    /// Kernel size k.
    pub fn k(&self) -> usize {
        self.basis.dim().1
    }

    /// The KxK conv it computes (the expanded mapping).
    pub fn as_conv(&self) -> Conv {
        Conv {
            weight_name: self.weight_name.clone(),
            weight: self.expanded(),
            bias: self.bias.clone(),
            stride: self.stride,
            padding: self.padding,
            alpha: self.alpha,
            groups: None,
        }
    }

    /// The kernels it computes, [N, C, k, k].
    pub fn expanded(&self) -> Array4<f64> {
        let (m, k, _) = self.basis.dim();
        let (n, cm) = self.coeff.dim();
        let c = cm / m;
        Array4::from_shape_fn((n, c, k, k), |(o, i, y, x)| {
            (0..m)
                .map(|b| self.coeff[[o, i * m + b]] * self.basis[[b, y, x]])
                .sum()
        })
    }
}

/// A conv's stored grouping: `labels[t]` is tap t's group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Groups {
    pub tensor: String,
    pub labels: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Shift {
    pub name: String,
    /// (dy, dx) per channel.
    pub shifts: Vec<(i64, i64)>,
}

#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub weight: Array1<f64>,
    pub bias: Array1<f64>,
    pub mean: Array1<f64>,
    pub var: Array1<f64>,
    pub eps: f64,
}

#[derive(Clone, Debug)]
pub struct Linear {
    pub weight_name: String,
    /// [out, in].
    pub weight: Array2<f64>,
    pub bias: Option<Array1<f64>>,
}

impl Network {
    /// Multiplies the first conv's weights by `factor`: the network then computes on
    /// an input `factor` times smaller what it computed before (a conv is linear in its
    /// input, zero padding and a shift before it included). How a model trained on
    /// another input scale takes ccc's pixels.
    pub fn scale_first_conv(&mut self, factor: f64) -> Result<(), ModelError> {
        let path = self.path.clone();
        let layer = self
            .layers
            .iter_mut()
            .find(|l| matches!(l.op, Op::Conv(_) | Op::DecomposedConv(_)))
            .ok_or_else(|| ModelError::Graph {
                path: path.clone(),
                reason: "the network has no conv to fold the input scale into".into(),
            })?;
        let (kind, name, values) = match &mut layer.op {
            Op::Conv(c) => ("conv", &c.weight_name, c.weight.as_slice_mut()),
            // Scaling the coefficients scales every expanded kernel alike.
            Op::DecomposedConv(d) => ("decomposed_conv", &d.weight_name, d.coeff.as_slice_mut()),
            _ => unreachable!("found a conv"),
        };
        let values = values.expect("standard layout");
        values.iter_mut().for_each(|w| *w *= factor);
        if let Some(i) = values.iter().position(|w| !w.is_finite()) {
            return Err(ModelError::BadTensor {
                path,
                layer: layer.index,
                kind: kind.into(),
                tensor: name.clone(),
                reason: format!("the input scale made weight {i} non-finite"),
            });
        }
        Ok(())
    }
}

/// Activation shape between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Map { c: usize, h: usize, w: usize },
    Vector(usize),
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Map { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Shape::Vector(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphDoc {
    model: ModelSection,
    input: InputSpec,
    #[serde(default)]
    packing: PackingSection,
    #[serde(default)]
    layers: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    name: String,
    classes: usize,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackingSection {
    gamma: Option<f64>,
}

/// Reads a model; `graph` overrides the embedded `ccc.graph` metadata. A `.onnx` file
/// is translated into the same format first ([`crate::onnx`]).
pub fn load(path: &Path, graph: Option<&Path>) -> Result<Network, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if crate::onnx::is_onnx(path) {
        if graph.is_some() {
            return Err(ModelError::OnnxInvalid {
                path: path.to_path_buf(),
                reason: "--graph applies to .safetensors models; an ONNX file carries its graph"
                    .into(),
            });
        }
        let c = crate::onnx::convert(path, &bytes)?;
        let st = crate::output::safetensors_bytes(&c.tensors, None).map_err(|e| {
            ModelError::OnnxInvalid {
                path: path.to_path_buf(),
                reason: format!("{e:#}"),
            }
        })?;
        let file = TensorFile::parse(path, &st)?;
        return build_network(path, &c.graph, &file);
    }
    let file = TensorFile::parse(path, &bytes)?;
    let graph_text = match graph {
        Some(g) => std::fs::read_to_string(g).map_err(|source| ModelError::Io {
            path: g.to_path_buf(),
            source,
        })?,
        None => file
            .metadata_graph
            .clone()
            .ok_or_else(|| ModelError::MissingGraph {
                path: path.to_path_buf(),
            })?,
    };
    build_network(path, &graph_text, &file)
}

/// A parsed safetensors file whose tensors are decoded on demand.
struct TensorFile<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
    metadata_graph: Option<String>,
}

const FLOAT_DTYPES: [&str; 4] = ["F32", "F16", "BF16", "F64"];
const INT_DTYPES: [&str; 2] = ["I32", "I64"];

impl<'a> TensorFile<'a> {
    fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self, ModelError> {
        let corrupt = |reason: String| ModelError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        // Read the header ourselves first: the safetensors crate reports an unknown dtype
        // as a generic JSON error without naming the tensor, and users need the name.
        if bytes.len() < 8 {
            return Err(corrupt(format!(
                "file is {} bytes, shorter than the 8-byte header length",
                bytes.len()
            )));
        }
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&bytes[..8]);
        let header_len = u64::from_le_bytes(len_bytes);
        let header_end = 8u64
            .checked_add(header_len)
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| {
                corrupt(format!(
                    "header length {header_len} runs past the end of the file ({} bytes): truncated?",
                    bytes.len()
                ))
            })? as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..header_end])
            .map_err(|e| corrupt(format!("header is not JSON: {e}")))?;
        let obj = header
            .as_object()
            .ok_or_else(|| corrupt("header is not a JSON object".into()))?;
        for (name, info) in obj {
            if name == "__metadata__" {
                continue;
            }
            let dtype = info.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| {
                corrupt(format!("tensor `{name}` has no dtype string in the header"))
            })?;
            if !FLOAT_DTYPES.contains(&dtype) && !INT_DTYPES.contains(&dtype) {
                return Err(ModelError::UnsupportedDtype {
                    path: path.to_path_buf(),
                    tensor: name.clone(),
                    dtype: dtype.to_string(),
                });
            }
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| corrupt(e.to_string()))?;
        let metadata_graph = obj
            .get("__metadata__")
            .and_then(|m| m.get(GRAPH_KEY))
            .and_then(|g| g.as_str())
            .map(str::to_owned);
        Ok(TensorFile {
            path,
            st,
            metadata_graph,
        })
    }
}

/// Context for errors about one layer.
struct LayerCtx<'a> {
    path: &'a Path,
    index: usize,
    kind: String,
}

impl LayerCtx<'_> {
    fn bad(&self, reason: impl Into<String>) -> ModelError {
        ModelError::BadLayer {
            path: self.path.to_path_buf(),
            layer: self.index,
            kind: self.kind.clone(),
            reason: reason.into(),
        }
    }
    fn bad_tensor(&self, tensor: &str, reason: impl Into<String>) -> ModelError {
        ModelError::BadTensor {
            path: self.path.to_path_buf(),
            layer: self.index,
            kind: self.kind.clone(),
            tensor: tensor.to_string(),
            reason: reason.into(),
        }
    }
    fn missing(&self, tensor: &str) -> ModelError {
        ModelError::MissingTensor {
            path: self.path.to_path_buf(),
            layer: self.index,
            kind: self.kind.clone(),
            tensor: tensor.to_string(),
        }
    }
}

/// Decoded tensor: shape plus values widened to f64 (exact for every accepted dtype
/// except i64 beyond 2^53, which only shift tensors use and which are range-checked).
struct Decoded {
    shape: Vec<usize>,
    data: Vec<f64>,
    is_int: bool,
}

fn decode(file: &TensorFile, ctx: &LayerCtx, name: &str) -> Result<Decoded, ModelError> {
    let view = file.st.tensor(name).map_err(|_| ctx.missing(name))?;
    let raw = view.data();
    let shape = view.shape().to_vec();
    let (data, is_int): (Vec<f64>, bool) = match view.dtype() {
        Dtype::F32 => (
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
                .collect(),
            false,
        ),
        Dtype::F64 => (
            raw.chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")))
                .collect(),
            false,
        ),
        Dtype::F16 => (
            raw.chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f64())
                .collect(),
            false,
        ),
        Dtype::BF16 => (
            raw.chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f64())
                .collect(),
            false,
        ),
        Dtype::I32 => (
            raw.chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
                .collect(),
            true,
        ),
        Dtype::I64 => (
            raw.chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("chunk of 8")) as f64)
                .collect(),
            true,
        ),
        other => {
            return Err(ModelError::UnsupportedDtype {
                path: file.path.to_path_buf(),
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    };
    Ok(Decoded {
        shape,
        data,
        is_int,
    })
}

/// A float parameter tensor: must be a float dtype, finite, of the expected shape.
fn float_tensor(
    file: &TensorFile,
    ctx: &LayerCtx,
    name: &str,
    expect: &[Option<usize>],
) -> Result<(Vec<usize>, Vec<f64>), ModelError> {
    let t = decode(file, ctx, name)?;
    if t.is_int {
        return Err(ctx.bad_tensor(name, "expected a float tensor, found an integer one"));
    }
    check_shape(ctx, name, &t.shape, expect)?;
    if let Some(pos) = t.data.iter().position(|v| !v.is_finite()) {
        return Err(ctx.bad_tensor(
            name,
            format!(
                "value {} at flat index {pos} is not finite (NaN/Inf weights are rejected)",
                t.data[pos]
            ),
        ));
    }
    Ok((t.shape, t.data))
}

fn check_shape(
    ctx: &LayerCtx,
    name: &str,
    shape: &[usize],
    expect: &[Option<usize>],
) -> Result<(), ModelError> {
    let fmt = |s: &[Option<usize>]| {
        s.iter()
            .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ok = shape.len() == expect.len()
        && shape
            .iter()
            .zip(expect)
            .all(|(&s, e)| e.is_none_or(|e| e == s));
    if !ok {
        return Err(ctx.bad_tensor(
            name,
            format!("shape {shape:?} does not chain: expected [{}]", fmt(expect)),
        ));
    }
    if shape.contains(&0) {
        return Err(ctx.bad_tensor(name, format!("shape {shape:?} has a zero dimension")));
    }
    Ok(())
}

fn get_str<'t>(t: &'t toml::Table, ctx: &LayerCtx, key: &str) -> Result<&'t str, ModelError> {
    match t.get(key) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(v) => Err(ctx.bad(format!("`{key}` must be a tensor name string, found {v}"))),
        None => Err(ctx.bad(format!("required field `{key}` is missing"))),
    }
}

fn get_opt_str<'t>(
    t: &'t toml::Table,
    ctx: &LayerCtx,
    key: &str,
) -> Result<Option<&'t str>, ModelError> {
    if t.contains_key(key) {
        get_str(t, ctx, key).map(Some)
    } else {
        Ok(None)
    }
}

fn get_uint(
    t: &toml::Table,
    ctx: &LayerCtx,
    key: &str,
    default: Option<usize>,
    min: usize,
) -> Result<usize, ModelError> {
    match t.get(key) {
        Some(toml::Value::Integer(v)) => {
            if *v < min as i64 || *v > MAX_DIM as i64 {
                Err(ctx.bad(format!(
                    "`{key}` = {v} is out of range (must be {min}..={MAX_DIM})"
                )))
            } else {
                Ok(*v as usize)
            }
        }
        Some(v) => Err(ctx.bad(format!("`{key}` must be an integer, found {v}"))),
        None => default.ok_or_else(|| ctx.bad(format!("required field `{key}` is missing"))),
    }
}

fn check_keys(t: &toml::Table, ctx: &LayerCtx, allowed: &[&str]) -> Result<(), ModelError> {
    for key in t.keys() {
        if key != "kind" && !allowed.contains(&key.as_str()) {
            return Err(ctx.bad(format!(
                "unknown field `{key}` (allowed: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn build_network(path: &Path, graph_text: &str, file: &TensorFile) -> Result<Network, ModelError> {
    let graph_err = |reason: String| ModelError::Graph {
        path: path.to_path_buf(),
        reason,
    };
    let doc: GraphDoc = toml::from_str(graph_text).map_err(|e| graph_err(e.to_string()))?;
    let InputSpec {
        channels,
        height,
        width,
    } = doc.input;
    for (what, v) in [
        ("input.channels", channels),
        ("input.height", height),
        ("input.width", width),
        ("model.classes", doc.model.classes),
    ] {
        if v == 0 || v > MAX_DIM {
            return Err(graph_err(format!("{what} = {v} must be in 1..={MAX_DIM}")));
        }
    }
    if doc.layers.is_empty() {
        return Err(graph_err("the graph has no [[layers]]".into()));
    }

    let mut shape = Shape::Map {
        c: channels,
        h: height,
        w: width,
    };
    let mut layers = Vec::with_capacity(doc.layers.len());
    for (index, t) in doc.layers.iter().enumerate() {
        let kind = match t.get("kind") {
            Some(toml::Value::String(k)) => k.clone(),
            Some(v) => {
                return Err(graph_err(format!(
                    "layer {index}: `kind` must be a string, found {v}"
                )));
            }
            None => return Err(graph_err(format!("layer {index}: `kind` is missing"))),
        };
        let ctx = LayerCtx {
            path,
            index,
            kind: kind.clone(),
        };
        let (op, next) = match kind.as_str() {
            "conv" => parse_conv(file, &ctx, t, shape)?,
            "decomposed_conv" => parse_decomposed(file, &ctx, t, shape)?,
            "shift" => parse_shift(file, &ctx, t, shape)?,
            "batchnorm" => parse_batchnorm(file, &ctx, t, shape)?,
            "relu6" | "relu" => {
                check_keys(t, &ctx, &[])?;
                let op = if kind == "relu6" { Op::Relu6 } else { Op::Relu };
                (op, shape)
            }
            "avgpool" => {
                check_keys(t, &ctx, &[])?;
                match shape {
                    Shape::Map { c, .. } => (Op::AvgPool, Shape::Vector(c)),
                    Shape::Vector(_) => {
                        return Err(
                            ctx.bad("input is already a vector (avgpool after avgpool/linear)")
                        );
                    }
                }
            }
            "linear" => parse_linear(file, &ctx, t, shape)?,
            _ => {
                return Err(ModelError::UnknownKind {
                    path: path.to_path_buf(),
                    layer: index,
                    kind,
                });
            }
        };
        layers.push(Layer { index, op });
        shape = next;
    }
    if shape != Shape::Vector(doc.model.classes) {
        return Err(graph_err(format!(
            "the network ends with shape {shape}, but model.classes = {}: the last layer must be a linear layer with {} outputs",
            doc.model.classes, doc.model.classes
        )));
    }
    Ok(Network {
        name: doc.model.name,
        classes: doc.model.classes,
        input: doc.input,
        gamma: doc.packing.gamma,
        layers,
        path: path.to_path_buf(),
    })
}

fn parse_conv(
    file: &TensorFile,
    ctx: &LayerCtx,
    t: &toml::Table,
    shape: Shape,
) -> Result<(Op, Shape), ModelError> {
    check_keys(
        t,
        ctx,
        &[
            "weight", "bias", "stride", "padding", "mask", "alpha", "groups",
        ],
    )?;
    let Shape::Map { c, h, w } = shape else {
        return Err(ctx.bad(format!(
            "input is a vector ({shape}), a conv needs a feature map"
        )));
    };
    let wname = get_str(t, ctx, "weight")?;
    let (wshape, wdata) = float_tensor(file, ctx, wname, &[None, Some(c), None, None])?;
    let (out, k, k2) = (wshape[0], wshape[2], wshape[3]);
    if k != k2 {
        return Err(ctx.bad_tensor(wname, format!("kernel {k}x{k2} is not square")));
    }
    let f = conv_fields(file, ctx, t, (h, w), k, out)?;
    let mut weight = Array4::from_shape_vec((out, c, k, k), wdata)
        .map_err(|e| ctx.bad_tensor(wname, e.to_string()))?;
    apply_mask(
        file,
        ctx,
        t,
        weight.as_slice_mut().expect("standard layout"),
        &[Some(out), Some(c), Some(k), Some(k)],
    )?;
    let groups = match get_opt_str(t, ctx, "groups")? {
        Some(gname) => {
            let g = decode(file, ctx, gname)?;
            if g.shape.len() == 1 {
                check_shape(ctx, gname, &g.shape, &[Some(c * k * k)])?;
            } else {
                check_shape(ctx, gname, &g.shape, &[Some(c), Some(k), Some(k)])?;
            }
            let mut labels = Vec::with_capacity(g.data.len());
            for (pos, &v) in g.data.iter().enumerate() {
                if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < (c * k * k) as f64) {
                    return Err(ctx.bad_tensor(
                        gname,
                        format!(
                            "tap {pos}: group {v} is not an integer in 0..{} (one label per tap)",
                            c * k * k
                        ),
                    ));
                }
                labels.push(v as usize);
            }
            Some(Groups {
                tensor: gname.to_string(),
                labels,
            })
        }
        None => None,
    };
    Ok((
        Op::Conv(Conv {
            weight_name: wname.to_string(),
            weight,
            bias: f.bias,
            stride: f.stride,
            padding: f.padding,
            alpha: f.alpha,
            groups,
        }),
        f.next,
    ))
}

/// What a conv and a decomposed conv share: stride, padding, α, the optional bias, and
/// the shape a KxK conv with `out` filters makes of an h x w map.
struct ConvFields {
    stride: usize,
    padding: usize,
    alpha: Option<usize>,
    bias: Option<Array1<f64>>,
    next: Shape,
}

fn conv_fields(
    file: &TensorFile,
    ctx: &LayerCtx,
    t: &toml::Table,
    (h, w): (usize, usize),
    k: usize,
    out: usize,
) -> Result<ConvFields, ModelError> {
    let stride = get_uint(t, ctx, "stride", Some(1), 1)?;
    let padding = get_uint(t, ctx, "padding", Some(0), 0)?;
    let alpha = if t.contains_key("alpha") {
        Some(get_uint(t, ctx, "alpha", None, 1)?)
    } else {
        None
    };
    let bias = match get_opt_str(t, ctx, "bias")? {
        Some(name) => Some(Array1::from(float_tensor(file, ctx, name, &[Some(out)])?.1)),
        None => None,
    };
    let (hp, wp) = (h + 2 * padding, w + 2 * padding);
    if hp < k || wp < k {
        return Err(ctx.bad(format!(
            "kernel {k}x{k} does not fit the padded {hp}x{wp} input"
        )));
    }
    let next = Shape::Map {
        c: out,
        h: (hp - k) / stride + 1,
        w: (wp - k) / stride + 1,
    };
    Ok(ConvFields {
        stride,
        padding,
        alpha,
        bias,
        next,
    })
}

fn parse_decomposed(
    file: &TensorFile,
    ctx: &LayerCtx,
    t: &toml::Table,
    shape: Shape,
) -> Result<(Op, Shape), ModelError> {
    check_keys(
        t,
        ctx,
        &[
            "basis", "weight", "bias", "stride", "padding", "mask", "alpha",
        ],
    )?;
    let Shape::Map { c, h, w } = shape else {
        return Err(ctx.bad(format!(
            "input is a vector ({shape}), a decomposed conv needs a feature map"
        )));
    };
    let bname = get_str(t, ctx, "basis")?;
    let (bshape, bdata) = float_tensor(file, ctx, bname, &[None, None, None])?;
    let (m, k, k2) = (bshape[0], bshape[1], bshape[2]);
    if k != k2 {
        return Err(ctx.bad_tensor(bname, format!("basis kernel {k}x{k2} is not square")));
    }
    let basis = Array3::from_shape_vec((m, k, k), bdata)
        .map_err(|e| ctx.bad_tensor(bname, e.to_string()))?;
    let wname = get_str(t, ctx, "weight")?;
    // [N, C·M] or PyTorch's 1x1-conv form [N, C·M, 1, 1].
    let wt = decode(file, ctx, wname)?;
    let expect: Vec<Option<usize>> = if wt.shape.len() == 4 {
        vec![None, Some(c * m), Some(1), Some(1)]
    } else {
        vec![None, Some(c * m)]
    };
    let (wshape, wdata) = float_tensor(file, ctx, wname, &expect)?;
    let out = wshape[0];
    let mut coeff = Array2::from_shape_vec((out, c * m), wdata)
        .map_err(|e| ctx.bad_tensor(wname, e.to_string()))?;
    apply_mask(
        file,
        ctx,
        t,
        coeff.as_slice_mut().expect("standard layout"),
        &expect
            .iter()
            .enumerate()
            .map(|(i, &d)| if i == 0 { Some(out) } else { d })
            .collect::<Vec<_>>(),
    )?;
    let f = conv_fields(file, ctx, t, (h, w), k, out)?;
    Ok((
        Op::DecomposedConv(DecomposedConv {
            basis_name: bname.to_string(),
            basis,
            weight_name: wname.to_string(),
            coeff,
            bias: f.bias,
            stride: f.stride,
            padding: f.padding,
            alpha: f.alpha,
        }),
        f.next,
    ))
}

/// Zeroes the weights where the layer's optional `mask` tensor (same shape) is 0.
fn apply_mask(
    file: &TensorFile,
    ctx: &LayerCtx,
    t: &toml::Table,
    weight: &mut [f64],
    shape: &[Option<usize>],
) -> Result<(), ModelError> {
    let Some(mname) = get_opt_str(t, ctx, "mask")? else {
        return Ok(());
    };
    let m = decode(file, ctx, mname)?;
    check_shape(ctx, mname, &m.shape, shape)?;
    if let Some(pos) = m.data.iter().position(|v| !v.is_finite()) {
        return Err(ctx.bad_tensor(mname, format!("mask value at {pos} is not finite")));
    }
    for (wv, mv) in weight.iter_mut().zip(&m.data) {
        if *mv == 0.0 {
            *wv = 0.0;
        }
    }
    Ok(())
}

fn parse_shift(
    file: &TensorFile,
    ctx: &LayerCtx,
    t: &toml::Table,
    shape: Shape,
) -> Result<(Op, Shape), ModelError> {
    check_keys(t, ctx, &["shifts"])?;
    let Shape::Map { c, h, w } = shape else {
        return Err(ctx.bad("input is a vector; a shift needs a feature map"));
    };
    let name = get_str(t, ctx, "shifts")?;
    let d = decode(file, ctx, name)?;
    check_shape(ctx, name, &d.shape, &[Some(c), Some(2)])?;
    let mut shifts = Vec::with_capacity(c);
    for (ch, pair) in d.data.chunks_exact(2).enumerate() {
        let (dy, dx) = (pair[0], pair[1]);
        for v in [dy, dx] {
            if !v.is_finite() || v.fract() != 0.0 {
                return Err(
                    ctx.bad_tensor(name, format!("channel {ch}: shift {v} is not an integer"))
                );
            }
        }
        if dy.abs() >= h as f64 || dx.abs() >= w as f64 {
            return Err(ctx.bad_tensor(
                name,
                format!("channel {ch}: shift ({dy}, {dx}) moves the whole {h}x{w} map out of view"),
            ));
        }
        shifts.push((dy as i64, dx as i64));
    }
    Ok((
        Op::Shift(Shift {
            name: name.to_string(),
            shifts,
        }),
        shape,
    ))
}

fn parse_batchnorm(
    file: &TensorFile,
    ctx: &LayerCtx,
    t: &toml::Table,
    shape: Shape,
) -> Result<(Op, Shape), ModelError> {
    check_keys(t, ctx, &["weight", "bias", "mean", "var", "eps"])?;
    let Shape::Map { c, .. } = shape else {
        return Err(ctx.bad("input is a vector; batchnorm is only supported after a conv"));
    };
    let get = |key: &str| -> Result<Array1<f64>, ModelError> {
        let name = get_str(t, ctx, key)?;
        Ok(Array1::from(float_tensor(file, ctx, name, &[Some(c)])?.1))
    };
    let (weight, bias, mean, var) = (get("weight")?, get("bias")?, get("mean")?, get("var")?);
    let eps = match t.get("eps") {
        Some(toml::Value::Float(e)) => *e,
        Some(toml::Value::Integer(e)) => *e as f64,
        Some(v) => return Err(ctx.bad(format!("`eps` must be a number, found {v}"))),
        None => 1e-5,
    };
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(ctx.bad(format!("`eps` = {eps} must be finite and >= 0")));
    }
    if let Some(i) = var.iter().position(|&v| v + eps <= 0.0) {
        let name = get_str(t, ctx, "var")?;
        return Err(ctx.bad_tensor(
            name,
            format!("channel {i}: var + eps = {} is not positive", var[i] + eps),
        ));
    }
    Ok((
        Op::BatchNorm(BatchNorm {
            weight,
            bias,
            mean,
            var,
            eps,
        }),
        shape,
    ))
}

fn parse_linear(
    file: &TensorFile,
    ctx: &LayerCtx,
    t: &toml::Table,
    shape: Shape,
) -> Result<(Op, Shape), ModelError> {
    check_keys(t, ctx, &["weight", "bias", "mask"])?;
    let Shape::Vector(n_in) = shape else {
        return Err(ModelError::Unsupported {
            path: ctx.path.to_path_buf(),
            layer: ctx.index,
            kind: ctx.kind.clone(),
            reason: format!(
                "linear on a {shape} feature map: put an avgpool before the classifier"
            ),
        });
    };
    let wname = get_str(t, ctx, "weight")?;
    let (wshape, wdata) = float_tensor(file, ctx, wname, &[None, Some(n_in)])?;
    let out = wshape[0];
    let mut weight = Array2::from_shape_vec((out, n_in), wdata)
        .map_err(|e| ctx.bad_tensor(wname, e.to_string()))?;
    apply_mask(
        file,
        ctx,
        t,
        weight.as_slice_mut().expect("standard layout"),
        &[Some(out), Some(n_in)],
    )?;
    let bias = match get_opt_str(t, ctx, "bias")? {
        Some(bname) => Some(Array1::from(
            float_tensor(file, ctx, bname, &[Some(out)])?.1,
        )),
        None => None,
    };
    Ok((
        Op::Linear(Linear {
            weight_name: wname.to_string(),
            weight,
            bias,
        }),
        Shape::Vector(out),
    ))
}
