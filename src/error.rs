//! Typed errors for the stages whose callers branch on the failure kind (ingest and
//! lowering); everything else reports through `anyhow` with context.

use std::path::PathBuf;

/// Why a model file (or its graph) was rejected. Every variant names the file and,
/// where one is involved, the layer (graph index and kind) and the tensor.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read model file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid safetensors file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: tensor `{tensor}` has dtype {dtype}, which ccc does not accept (f32, f16, bf16, f64; int32/int64 for shifts)"
    )]
    UnsupportedDtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },
    #[error(
        "{path}: no network graph: the safetensors metadata has no `ccc.graph` key and no --graph file was given"
    )]
    MissingGraph { path: PathBuf },
    #[error("{path}: graph TOML is invalid: {reason}")]
    Graph { path: PathBuf, reason: String },
    #[error(
        "{path}: layer {layer} ({kind}): unknown layer kind `{kind}` (expected conv, shift, batchnorm, relu6, relu, avgpool, linear)"
    )]
    UnknownKind {
        path: PathBuf,
        layer: usize,
        kind: String,
    },
    #[error("{path}: layer {layer} ({kind}): tensor `{tensor}` is missing from the file")]
    MissingTensor {
        path: PathBuf,
        layer: usize,
        kind: String,
        tensor: String,
    },
    #[error("{path}: layer {layer} ({kind}): tensor `{tensor}`: {reason}")]
    BadTensor {
        path: PathBuf,
        layer: usize,
        kind: String,
        tensor: String,
        reason: String,
    },
    #[error("{path}: layer {layer} ({kind}): {reason}")]
    BadLayer {
        path: PathBuf,
        layer: usize,
        kind: String,
        reason: String,
    },
    #[error("{path}: layer {layer} ({kind}): unsupported combination: {reason}")]
    Unsupported {
        path: PathBuf,
        layer: usize,
        kind: String,
        reason: String,
    },
    #[error("{path}: not a model ccc can read as ONNX: {reason}")]
    OnnxInvalid { path: PathBuf, reason: String },
    /// An ONNX node outside the supported set, or used in a way ccc cannot map.
    #[error("{path}: ONNX node `{node}` ({op}): {reason}")]
    OnnxNode {
        path: PathBuf,
        node: String,
        op: String,
        reason: String,
    },
}
