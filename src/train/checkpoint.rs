//! Training checkpoints: the state the training loop needs to go on from the end of an
//! epoch exactly as if it had not stopped — parameters, batchnorm statistics, masks and
//! the optimizer's momentum as tensors, and the loop's own state (counters, random-stream
//! positions, the epochs' logs) as JSON under one metadata key. Written atomically after
//! every epoch; the loop's state is the caller's (this module only stores its JSON).

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use safetensors::{Dtype, SafeTensors};

use super::net::ShiftNet;
use crate::output::{OutTensor, safetensors_bytes, write_file_atomic};

/// Metadata key of the loop's state (JSON).
pub const META_KEY: &str = "ccc.checkpoint";

fn out_tensor(t: &Tensor) -> Result<OutTensor> {
    Ok(OutTensor::f32(t.dims(), t.flatten_all()?.to_vec1::<f32>()?))
}

/// The network's state and the optimizer's velocities (absent: not stepped yet), named.
fn tensors(net: &ShiftNet, velocity: &[Option<Tensor>]) -> Result<Vec<(String, OutTensor)>> {
    let mut v = Vec::new();
    for (i, l) in net.convs.iter().enumerate() {
        let p = format!("conv{i}");
        v.push((format!("{p}.w"), out_tensor(l.w.as_tensor())?));
        v.push((format!("{p}.gamma"), out_tensor(l.gamma.as_tensor())?));
        v.push((format!("{p}.beta"), out_tensor(l.beta.as_tensor())?));
        v.push((format!("{p}.running_mean"), out_tensor(&l.running_mean)?));
        v.push((format!("{p}.running_var"), out_tensor(&l.running_var)?));
        if let Some(m) = &l.mask {
            v.push((format!("{p}.mask"), out_tensor(m)?));
        }
        if let Some(b) = &l.basis {
            v.push((format!("{p}.basis"), out_tensor(b.as_tensor())?));
        }
    }
    for (i, (w, b)) in net.hidden.iter().enumerate() {
        v.push((format!("head.{i}.w"), out_tensor(w.as_tensor())?));
        v.push((format!("head.{i}.b"), out_tensor(b.as_tensor())?));
    }
    v.push(("fc.w".into(), out_tensor(net.fc_w.as_tensor())?));
    v.push(("fc.b".into(), out_tensor(net.fc_b.as_tensor())?));
    if let Some(m) = &net.fc_mask {
        v.push(("fc.mask".into(), out_tensor(m)?));
    }
    for (k, vel) in velocity.iter().enumerate() {
        if let Some(t) = vel {
            v.push((format!("velocity{k}"), out_tensor(t)?));
        }
    }
    Ok(v)
}

/// Writes `net`, `velocity` and the loop's state `meta` to `path`, atomically.
pub fn save(path: &Path, net: &ShiftNet, velocity: &[Option<Tensor>], meta: String) -> Result<()> {
    let bytes = safetensors_bytes(&tensors(net, velocity)?, Some((META_KEY, meta)))?;
    write_file_atomic(path, &bytes)
        .with_context(|| format!("writing the checkpoint {}", path.display()))
}

/// Reads `path` into `net` (built for the same architecture) and returns the loop's
/// state and the optimizer's `params` velocities.
pub fn load(
    path: &Path,
    net: &mut ShiftNet,
    params: usize,
) -> Result<(String, Vec<Option<Tensor>>)> {
    let what = || format!("reading the checkpoint {}", path.display());
    let bytes = std::fs::read(path).with_context(what)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(what)?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(what)?;
    let meta = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .cloned()
        .with_context(|| {
            format!(
                "{}: no `{META_KEY}` metadata: not a ccc training checkpoint",
                path.display()
            )
        })?;
    let dev = net.device.clone();
    let get = |name: &str| -> Result<Option<Tensor>> { tensor(&st, name, &dev, path) };
    let need = |name: &str| -> Result<Tensor> {
        get(name)?.with_context(|| format!("{}: no tensor `{name}`", path.display()))
    };
    // The same shapes as the network's, or the checkpoint is another architecture's.
    let same = |name: &str, t: Tensor, want: &Tensor| -> Result<Tensor> {
        if t.dims() != want.dims() {
            bail!(
                "{}: tensor `{name}` is {:?}, the network's is {:?} (another architecture?)",
                path.display(),
                t.dims(),
                want.dims()
            );
        }
        Ok(t)
    };
    for (i, l) in net.convs.iter_mut().enumerate() {
        let p = format!("conv{i}");
        let params = [("w", &l.w), ("gamma", &l.gamma), ("beta", &l.beta)];
        for (suffix, var) in params
            .into_iter()
            .chain(l.basis.as_ref().map(|b| ("basis", b)))
        {
            let name = format!("{p}.{suffix}");
            var.set(&same(&name, need(&name)?, var.as_tensor())?)?;
        }
        let name = format!("{p}.running_mean");
        l.running_mean = same(&name, need(&name)?, &l.running_mean)?;
        let name = format!("{p}.running_var");
        l.running_var = same(&name, need(&name)?, &l.running_var)?;
        l.mask = get(&format!("{p}.mask"))?;
    }
    for (i, (w, b)) in net.hidden.iter().enumerate() {
        for (name, var) in [(format!("head.{i}.w"), w), (format!("head.{i}.b"), b)] {
            var.set(&same(&name, need(&name)?, var.as_tensor())?)?;
        }
    }
    net.fc_w
        .set(&same("fc.w", need("fc.w")?, net.fc_w.as_tensor())?)?;
    net.fc_b
        .set(&same("fc.b", need("fc.b")?, net.fc_b.as_tensor())?)?;
    net.fc_mask = get("fc.mask")?;
    let velocity = (0..params)
        .map(|k| get(&format!("velocity{k}")))
        .collect::<Result<Vec<_>>>()?;
    Ok((meta, velocity))
}

/// Tensor `name` of `st` as f32 on `dev`, if present.
fn tensor(st: &SafeTensors, name: &str, dev: &Device, path: &Path) -> Result<Option<Tensor>> {
    let Ok(view) = st.tensor(name) else {
        return Ok(None);
    };
    if view.dtype() != Dtype::F32 {
        bail!(
            "{}: tensor `{name}` is {:?}, not F32",
            path.display(),
            view.dtype()
        );
    }
    let v: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Some(Tensor::from_vec(v, view.shape(), dev)?))
}
