//! Random sparse shift-CNN generator that writes the real model format (safetensors +
//! `ccc.graph`), so tests and benchmarks exercise the same ingest path users do.
//! Seeded and deterministic: the same spec always gives byte-identical files.

use std::path::Path;
use std::str::FromStr;

use anyhow::{Result, bail};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::modelfile::ModelWriter;
use crate::output::OutTensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GenDtype {
    F32,
    F16,
    Bf16,
    F64,
}

/// A dense KxK conv at the network's entry (the seeds' first layer).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StemSpec {
    pub out: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
}

/// A shift + sparse 1x1 conv block.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockSpec {
    pub out: usize,
    pub stride: usize,
    pub alpha: Option<usize>,
    /// 1: a shift + 1x1 conv block; K > 1: a KxK conv (no shift) padded by `padding`.
    #[serde(default = "one")]
    pub k: usize,
    #[serde(default)]
    pub padding: usize,
    /// M > 0: the KxK conv as a `decomposed_conv` of M basis kernels.
    #[serde(default)]
    pub bases: usize,
}

fn one() -> usize {
    1
}

impl BlockSpec {
    /// A shift + 1x1 conv block.
    pub fn shift(out: usize, stride: usize, alpha: Option<usize>) -> Self {
        BlockSpec {
            out,
            stride,
            alpha,
            k: 1,
            padding: 0,
            bases: 0,
        }
    }
}

fn numbers(s: &str, sep: char, what: &str) -> Result<Vec<usize>> {
    s.split(sep)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("`{s}` is not {what}"))
        })
        .collect()
}

/// `OUT,K,STRIDE,PADDING`.
impl FromStr for StemSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match numbers(s, ',', "OUT,K,STRIDE,PADDING")?[..] {
            [out, k, stride, padding] => Ok(StemSpec {
                out,
                k,
                stride,
                padding,
            }),
            _ => bail!("`{s}` is not OUT,K,STRIDE,PADDING"),
        }
    }
}

/// A stem, or `none`.
#[derive(Clone, Debug)]
pub struct StemChoice(pub Option<StemSpec>);

impl FromStr for StemChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.trim() == "none" {
            Ok(StemChoice(None))
        } else {
            Ok(StemChoice(Some(s.parse()?)))
        }
    }
}

/// `OUT:STRIDE[:ALPHA][:kK[:pPAD][:dM]]`: a shift + 1x1 conv block, or with `kK` (K > 1)
/// a KxK conv padded by PAD (default 0), decomposed into M basis kernels with `dM`.
impl FromStr for BlockSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let form = "OUT:STRIDE[:ALPHA][:kK[:pPAD][:dM]]";
        let bad = || anyhow::anyhow!("`{s}` is not {form}");
        let parts: Vec<&str> = s.split(':').map(str::trim).collect();
        let plain = parts
            .iter()
            .take_while(|p| !p.starts_with(['k', 'p', 'd']))
            .count();
        let (out, stride, alpha) = match numbers(&parts[..plain].join(":"), ':', form)?[..] {
            [out, stride] => (out, stride, None),
            [out, stride, alpha] => (out, stride, Some(alpha)),
            _ => return Err(bad()),
        };
        let mut b = BlockSpec::shift(out, stride, alpha);
        for p in &parts[plain..] {
            let v: usize = p[1..].parse().map_err(|_| bad())?;
            match p.as_bytes()[0] {
                b'k' if v >= 1 => b.k = v,
                b'p' if b.k > 1 => b.padding = v,
                b'd' if b.k > 1 && v >= 1 => b.bases = v,
                _ => return Err(bad()),
            }
        }
        Ok(b)
    }
}

/// Blocks, comma separated (possibly none).
#[derive(Clone, Debug)]
pub struct BlockList(pub Vec<BlockSpec>);

impl FromStr for BlockList {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        s.split(',')
            .filter(|b| !b.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_>>()
            .map(BlockList)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenSpec {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
    pub stem: Option<StemSpec>,
    pub blocks: Vec<BlockSpec>,
    /// Fraction of nonzero weights in the block convs (the stem stays dense).
    pub density: f64,
    pub batchnorm: bool,
    /// relu6 (default) or relu after each conv.
    pub relu6: bool,
    pub gamma: Option<f64>,
    pub dtype: GenDtype,
    pub seed: u64,
    /// Widths of an MLP head's hidden linear layers (each closed by the blocks'
    /// activation) between the pool and the classifier; empty: a linear classifier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub head: Vec<usize>,
}

impl GenSpec {
    /// A small shift-net of the seeds' shape.
    pub fn small(seed: u64) -> Self {
        GenSpec {
            name: format!("gen-small-{seed}"),
            channels: 1,
            height: 12,
            width: 12,
            classes: 10,
            stem: Some(StemSpec {
                out: 8,
                k: 3,
                stride: 1,
                padding: 1,
            }),
            blocks: vec![
                BlockSpec::shift(16, 2, Some(4)),
                BlockSpec::shift(24, 1, Some(4)),
            ],
            density: 0.3,
            batchnorm: true,
            relu6: true,
            gamma: Some(1.0),
            dtype: GenDtype::F32,
            seed,
            head: Vec::new(),
        }
    }
}

struct Builder {
    rng: ChaCha8Rng,
    dtype: GenDtype,
    m: ModelWriter,
}

impl Builder {
    fn tensor(&mut self, name: &str, shape: &[usize], v: Vec<f32>) {
        let t = match self.dtype {
            GenDtype::F32 => OutTensor::f32(shape, v),
            GenDtype::F16 => OutTensor::f16(shape, v),
            GenDtype::Bf16 => OutTensor::bf16(shape, v),
            GenDtype::F64 => OutTensor::f64(shape, v.into_iter().map(f64::from)),
        };
        self.m.tensor(name, t);
    }

    fn uniform(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.rng.random_range(lo..hi)).collect()
    }

    fn conv(&mut self, name: &str, out: usize, cin: usize, k: usize, density: f64) {
        let fan_in = (cin * k * k) as f64 * density.max(1e-3);
        let a = (6.0 / fan_in).sqrt() as f32;
        let v = (0..out * cin * k * k)
            .map(|_| {
                if self.rng.random_bool(density) {
                    self.rng.random_range(-a..a)
                } else {
                    0.0
                }
            })
            .collect();
        self.tensor(name, &[out, cin, k, k], v);
    }

    fn batchnorm(&mut self, prefix: &str, c: usize) {
        let w = self.uniform(c, 0.5, 1.5);
        let b = self.uniform(c, 0.0, 0.5);
        let m = self.uniform(c, -0.2, 0.2);
        let v = self.uniform(c, 0.5, 2.0);
        for (suffix, data) in [
            ("weight", w),
            ("bias", b),
            ("running_mean", m),
            ("running_var", v),
        ] {
            self.tensor(&format!("{prefix}.{suffix}"), &[c], data);
        }
        self.m.batchnorm(prefix, 1e-5);
    }
}

/// Builds a random model: its tensors and graph TOML.
pub fn generate(spec: &GenSpec) -> Result<ModelWriter> {
    if spec.blocks.is_empty() && spec.stem.is_none() {
        bail!("a generated model needs a stem or at least one block");
    }
    if !(spec.density > 0.0 && spec.density <= 1.0) {
        bail!("density {} must be in (0, 1]", spec.density);
    }
    let mut b = Builder {
        rng: ChaCha8Rng::seed_from_u64(spec.seed),
        dtype: spec.dtype,
        m: ModelWriter::new(
            &spec.name,
            spec.classes,
            [spec.channels, spec.height, spec.width],
            spec.gamma,
        ),
    };
    let mut c = spec.channels;
    if let Some(s) = &spec.stem {
        b.conv("stem.conv.weight", s.out, c, s.k, 1.0);
        let bias = if spec.batchnorm {
            None
        } else {
            let bias = b.uniform(s.out, 0.0, 0.3);
            b.tensor("stem.conv.bias", &[s.out], bias);
            Some("stem.conv.bias")
        };
        b.m.conv("stem.conv.weight", bias, s.stride, s.padding, None);
        if spec.batchnorm {
            b.batchnorm("stem.bn", s.out);
        }
        b.m.activation(spec.relu6);
        c = s.out;
    }
    for (i, blk) in spec.blocks.iter().enumerate() {
        // A KxK block is a conv alone; a 1x1 block reads its input through a shift.
        if blk.k == 1 {
            let shifts: Vec<i32> = (0..2 * c).map(|_| b.rng.random_range(-1..=1)).collect();
            b.m.tensor(&format!("b{i}.shift"), OutTensor::i32(&[c, 2], shifts));
            b.m.shift(&format!("b{i}.shift"));
        }
        let weight = format!("b{i}.conv.weight");
        let basis = format!("b{i}.conv.basis");
        if blk.bases > 0 {
            // Basis kernels of unit-ish norm; sparse coefficients (as a 1x1 conv's).
            let (m, k) = (blk.bases, blk.k);
            let v = b.uniform(m * k * k, -1.0, 1.0);
            b.tensor(&basis, &[m, k, k], v);
            b.conv(&weight, blk.out, c * m, 1, spec.density);
        } else {
            b.conv(&weight, blk.out, c, blk.k, spec.density);
        }
        let bias_name = format!("b{i}.conv.bias");
        let bias = if spec.batchnorm {
            None
        } else {
            let bias = b.uniform(blk.out, 0.0, 0.3);
            b.tensor(&bias_name, &[blk.out], bias);
            Some(bias_name.as_str())
        };
        if blk.bases > 0 {
            b.m.decomposed_conv(&basis, &weight, bias, blk.stride, blk.padding, blk.alpha);
        } else {
            b.m.conv(&weight, bias, blk.stride, blk.padding, blk.alpha);
        }
        if spec.batchnorm {
            b.batchnorm(&format!("b{i}.bn"), blk.out);
        }
        b.m.activation(spec.relu6);
        c = blk.out;
    }
    b.m.avgpool();
    for (i, &out) in spec.head.iter().enumerate() {
        // Sparse like the blocks, through a `mask` (the weights under it stay nonzero in
        // the file, so a reader that ignored the mask would compute something else);
        // biased so that some outputs clamp.
        let a = (6.0 / c as f64).sqrt() as f32;
        let w = b.uniform(out * c, -a, a);
        let keep = spec.density.max(0.5);
        let mask: Vec<f32> = (0..out * c)
            .map(|_| f32::from(u8::from(b.rng.random::<f64>() < keep)))
            .collect();
        let (wn, bn, mn) = (
            format!("head.{i}.weight"),
            format!("head.{i}.bias"),
            format!("head.{i}.mask"),
        );
        b.tensor(&wn, &[out, c], w);
        b.tensor(&mn, &[out, c], mask);
        let bias = b.uniform(out, 0.0, 1.0);
        b.tensor(&bn, &[out], bias);
        b.m.linear(&wn, &bn);
        b.m.layer_tensor("mask", &mn);
        b.m.activation(spec.relu6);
        c = out;
    }
    let a = (6.0 / c as f64).sqrt() as f32;
    let fcw = b.uniform(spec.classes * c, -a, a);
    b.tensor("fc.weight", &[spec.classes, c], fcw);
    let fcb = b.uniform(spec.classes, -0.1, 0.1);
    b.tensor("fc.bias", &[spec.classes], fcb);
    b.m.linear("fc.weight", "fc.bias");
    Ok(b.m)
}

pub fn write(spec: &GenSpec, path: &Path) -> Result<()> {
    generate(spec)?.write(path)
}

/// `n` deterministic pseudo-random images, seeds `seed, seed + 1, ...`.
pub fn random_images(c: usize, h: usize, w: usize, n: usize, seed: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|k| random_image(c, h, w, seed.wrapping_add(k as u64)))
        .collect()
}

/// A deterministic pseudo-random image for synthetic models (C x H x W uint8).
pub fn random_image(c: usize, h: usize, w: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    (0..c * h * w)
        .map(|_| rng.random_range(0..=255u8))
        .collect()
}
