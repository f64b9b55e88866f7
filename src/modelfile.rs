//! Writes the model format `ccc compile` reads (docs/DESIGN.md §2): tensors plus the
//! `ccc.graph` TOML under one safetensors metadata key. The random-model generator and
//! the trainer both write through this, so the two cannot drift from the reader.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::model::GRAPH_KEY;
use crate::output::{OutTensor, safetensors_bytes, write_file_atomic};

/// The bytes of a model file: `tensors` plus the graph TOML under `ccc.graph`.
pub fn model_bytes(tensors: &[(String, OutTensor)], graph: &str) -> Result<Vec<u8>> {
    safetensors_bytes(tensors, Some((GRAPH_KEY, graph.to_string())))
}

/// A model being assembled, layer by layer, in graph order.
#[derive(Default)]
pub struct ModelWriter {
    pub tensors: Vec<(String, OutTensor)>,
    pub graph: String,
}

impl ModelWriter {
    /// Starts a graph with its `[model]`, `[input]` and optional `[packing]` tables.
    pub fn new(name: &str, classes: usize, input: [usize; 3], gamma: Option<f64>) -> Self {
        let mut graph = String::new();
        let _ = writeln!(
            graph,
            "[model]\nname = \"{name}\"\nclasses = {classes}\n\n[input]\nchannels = {}\nheight = {}\nwidth = {}",
            input[0], input[1], input[2]
        );
        if let Some(g) = gamma {
            let _ = writeln!(graph, "\n[packing]\ngamma = {g:?}");
        }
        ModelWriter {
            tensors: Vec::new(),
            graph,
        }
    }

    pub fn tensor(&mut self, name: &str, t: OutTensor) {
        self.tensors.push((name.to_string(), t));
    }

    /// A conv layer over an already added weight tensor (and optional bias tensor).
    pub fn conv(
        &mut self,
        weight: &str,
        bias: Option<&str>,
        stride: usize,
        padding: usize,
        alpha: Option<usize>,
    ) {
        let _ = write!(
            self.graph,
            "\n[[layers]]\nkind = \"conv\"\nweight = \"{weight}\"\n"
        );
        self.conv_fields(bias, stride, padding, alpha);
    }

    /// A decomposed conv over already added basis [M, k, k] and coefficient [N, C·M]
    /// tensors (and optional bias tensor; docs/DESIGN.md §10).
    pub fn decomposed_conv(
        &mut self,
        basis: &str,
        coeff: &str,
        bias: Option<&str>,
        stride: usize,
        padding: usize,
        alpha: Option<usize>,
    ) {
        let _ = write!(
            self.graph,
            "\n[[layers]]\nkind = \"decomposed_conv\"\nbasis = \"{basis}\"\nweight = \"{coeff}\"\n"
        );
        self.conv_fields(bias, stride, padding, alpha);
    }

    /// The fields a conv and a decomposed conv share.
    fn conv_fields(
        &mut self,
        bias: Option<&str>,
        stride: usize,
        padding: usize,
        alpha: Option<usize>,
    ) {
        let _ = writeln!(self.graph, "stride = {stride}\npadding = {padding}");
        if let Some(b) = bias {
            let _ = writeln!(self.graph, "bias = \"{b}\"");
        }
        if let Some(a) = alpha {
            let _ = writeln!(self.graph, "alpha = {a}");
        }
    }

    /// Names an already added tensor under `key` in the layer written last (a conv's or
    /// linear layer's `mask`, a conv's `groups`).
    pub fn layer_tensor(&mut self, key: &str, tensor: &str) {
        let _ = writeln!(self.graph, "{key} = \"{tensor}\"");
    }

    /// A batchnorm layer over tensors `{prefix}.{weight,bias,running_mean,running_var}`.
    pub fn batchnorm(&mut self, prefix: &str, eps: f64) {
        let _ = write!(
            self.graph,
            "\n[[layers]]\nkind = \"batchnorm\"\nweight = \"{prefix}.weight\"\nbias = \"{prefix}.bias\"\nmean = \"{prefix}.running_mean\"\nvar = \"{prefix}.running_var\"\neps = {eps:e}\n"
        );
    }

    pub fn shift(&mut self, shifts: &str) {
        let _ = write!(
            self.graph,
            "\n[[layers]]\nkind = \"shift\"\nshifts = \"{shifts}\"\n"
        );
    }

    /// `relu6` or `relu`.
    pub fn activation(&mut self, relu6: bool) {
        let act = if relu6 { "relu6" } else { "relu" };
        let _ = write!(self.graph, "\n[[layers]]\nkind = \"{act}\"\n");
    }

    /// Global average pool and the linear classifier over `weight` and `bias` tensors.
    pub fn classifier(&mut self, weight: &str, bias: &str) {
        self.avgpool();
        self.linear(weight, bias);
    }

    pub fn avgpool(&mut self) {
        let _ = write!(self.graph, "\n[[layers]]\nkind = \"avgpool\"\n");
    }

    /// A linear layer over `weight` and `bias` tensors (the classifier, or a hidden layer
    /// of an MLP head when an activation follows).
    pub fn linear(&mut self, weight: &str, bias: &str) {
        let _ = write!(
            self.graph,
            "\n[[layers]]\nkind = \"linear\"\nweight = \"{weight}\"\nbias = \"{bias}\"\n"
        );
    }

    pub fn bytes(&self) -> Result<Vec<u8>> {
        model_bytes(&self.tensors, &self.graph)
    }

    /// Writes the model file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_file_atomic(path, &self.bytes()?)
    }
}
