//! Fused CPU kernels for the per-layer elementwise work of a training step.
//!
//! Profiling a dense epoch (docs/RESULTS.md, *Training*) showed the matmuls were a
//! minority of the time: batchnorm built from candle's elementwise ops made about ten
//! full passes over every activation, each a fresh allocation and each single-threaded,
//! and backward made as many again. Here batchnorm + ReLU6 (training) and bias +
//! ReLU6 (+ fake quantization, evaluation and QAT) are single ops with hand-written
//! backward passes, parallel over channels. Every reduction runs inside one channel's
//! row in a fixed order, so results do not depend on the thread count.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

/// ReLU6's ceiling.
const RELU6: f32 = 6.0;

/// Runs `f` on the contiguous f32 data of `t`.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
        candle_core::bail!("fused op: only f32 CPU tensors are supported");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("fused op: tensor is not contiguous");
    };
    Ok(f(&data[start..end]))
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("fused op: {what} must be f32");
    };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("fused op: {what} must be contiguous");
    };
    Ok(&data[start..end])
}

/// Sum and sum of squares of a row in f64, in a fixed order.
fn moments(row: &[f32]) -> (f64, f64) {
    // Eight independent lanes let the compiler vectorize; the order is fixed.
    let mut s = [0f64; 8];
    let mut q = [0f64; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            let v = f64::from(c[i]);
            s[i] += v;
            q[i] += v * v;
        }
    }
    let (mut s0, mut q0) = (s.iter().sum::<f64>(), q.iter().sum::<f64>());
    for &v in rest {
        let v = f64::from(v);
        s0 += v;
        q0 += v * v;
    }
    (s0, q0)
}

/// Per-channel batch statistics of the last training forward pass.
#[derive(Clone, Debug, Default)]
pub struct BnStats {
    pub mean: Vec<f32>,
    /// Biased variance (the normalisation's).
    pub var: Vec<f32>,
}

/// Training-mode batchnorm followed by ReLU6 on a channel-major [N, M] matrix
/// (M = batch x positions): `clamp(gamma (y - mean) / sqrt(var + eps) + beta, 0, 6)`.
/// Arguments: y [N, M], gamma [N], beta [N].
#[derive(Clone, Debug)]
pub struct BnRelu6 {
    pub eps: f64,
    pub stats: Arc<Mutex<BnStats>>,
}

impl BnRelu6 {
    pub fn new(eps: f64) -> Self {
        BnRelu6 {
            eps,
            stats: Arc::new(Mutex::new(BnStats::default())),
        }
    }

    /// The statistics the forward pass measured.
    pub fn stats(&self) -> BnStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl CustomOp3 for BnRelu6 {
    fn name(&self) -> &'static str {
        "ccc-bn-relu6"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, m) = l1.shape().dims2()?;
        let y = f32_slice(s1, l1, "batchnorm input")?;
        let gamma = f32_slice(s2, l2, "batchnorm weight")?;
        let beta = f32_slice(s3, l3, "batchnorm bias")?;
        if gamma.len() != n || beta.len() != n {
            candle_core::bail!("batchnorm: {n} channels, {} weights", gamma.len());
        }
        let (out, stats) = bn_relu6_forward(y, n, m, gamma, beta, self.eps);
        if let Ok(mut st) = self.stats.lock() {
            *st = stats;
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, m) = y.dims2()?;
        let st = self.stats();
        if st.mean.len() != n {
            candle_core::bail!("batchnorm backward without a forward pass");
        }
        let gamma: Vec<f32> = gamma.to_vec1()?;
        let eps = self.eps;
        let (dy, dgamma, dbeta) = with_f32(y, |y| {
            with_f32(res, |a| {
                with_f32(grad, |g| bn_relu6_backward(y, a, g, n, m, &st, &gamma, eps))
            })
        })????;
        let dev = y.device();
        Ok((
            Some(Tensor::from_vec(dy, (n, m), dev)?),
            Some(Tensor::from_vec(dgamma, n, dev)?),
            Some(Tensor::from_vec(dbeta, n, dev)?),
        ))
    }
}

/// Batchnorm with batch statistics, then ReLU6, over the rows of y [n, m].
pub fn bn_relu6_forward(
    y: &[f32],
    n: usize,
    m: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> (Vec<f32>, BnStats) {
    let mut out = vec![0f32; n * m];
    let mut mean = vec![0f32; n];
    let mut var = vec![0f32; n];
    out.par_chunks_mut(m)
        .zip(y.par_chunks(m))
        .zip(mean.par_iter_mut().zip(var.par_iter_mut()))
        .enumerate()
        .for_each(|(c, ((o, row), (mu, va)))| {
            let (s, q) = moments(row);
            let mf = s / m as f64;
            let vf = (q / m as f64 - mf * mf).max(0.0);
            *mu = mf as f32;
            *va = vf as f32;
            let inv = 1.0 / (vf + eps).sqrt();
            let a = (f64::from(gamma[c]) * inv) as f32;
            let b = (f64::from(beta[c]) - mf * f64::from(gamma[c]) * inv) as f32;
            for (d, &v) in o.iter_mut().zip(row) {
                *d = (v * a + b).clamp(0.0, RELU6);
            }
        });
    (out, BnStats { mean, var })
}

/// Gradients of [`bn_relu6_forward`] with respect to y, gamma and beta, from its input
/// y, its output a and the output's gradient g.
#[allow(clippy::too_many_arguments)]
pub fn bn_relu6_backward(
    y: &[f32],
    a: &[f32],
    g: &[f32],
    n: usize,
    m: usize,
    st: &BnStats,
    gamma: &[f32],
    eps: f64,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    if st.mean.len() != n
        || gamma.len() != n
        || y.len() != n * m
        || a.len() != n * m
        || g.len() != n * m
    {
        candle_core::bail!("batchnorm backward: shapes do not match the forward pass");
    }
    let mut dy = vec![0f32; n * m];
    let mut dgamma = vec![0f32; n];
    let mut dbeta = vec![0f32; n];
    dy.par_chunks_mut(m)
        .zip(dgamma.par_iter_mut().zip(dbeta.par_iter_mut()))
        .enumerate()
        .for_each(|(c, (d, (dg, db)))| {
            let r = c * m..(c + 1) * m;
            let (yr, ar, gr) = (&y[r.clone()], &a[r.clone()], &g[r]);
            let mu = st.mean[c];
            let inv = (1.0 / (f64::from(st.var[c]) + eps).sqrt()) as f32;
            // ReLU6 passes the gradient where its output is inside (0, 6).
            let (mut sb, mut sg) = (0f64, 0f64);
            for ((&yv, &av), &gv) in yr.iter().zip(ar).zip(gr) {
                if av > 0.0 && av < RELU6 {
                    sb += f64::from(gv);
                    sg += f64::from(gv * (yv - mu) * inv);
                }
            }
            *db = sb as f32;
            *dg = sg as f32;
            let k = gamma[c] * inv;
            let mb = (sb / m as f64) as f32;
            let mg = (sg / m as f64) as f32;
            for (((o, &yv), &av), &gv) in d.iter_mut().zip(yr).zip(ar).zip(gr) {
                let xh = (yv - mu) * inv;
                let dz = if av > 0.0 && av < RELU6 { gv } else { 0.0 };
                *o = k * (dz - mb - xh * mg);
            }
        });
    Ok((dy, dgamma, dbeta))
}

/// Bias + ReLU6 on a channel-major [N, M] matrix, optionally fake-quantized to uint8 at
/// scale 2^-frac (round half up, as the requantizer) with a straight-through gradient.
/// Arguments: y [N, M], bias [N].
#[derive(Clone, Debug)]
pub struct BiasRelu6 {
    pub frac: Option<u32>,
}

impl CustomOp2 for BiasRelu6 {
    fn name(&self) -> &'static str {
        "ccc-bias-relu6"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, m) = l1.shape().dims2()?;
        let y = f32_slice(s1, l1, "activation input")?;
        let bias = f32_slice(s2, l2, "bias")?;
        if bias.len() != n {
            candle_core::bail!("bias: {n} channels, {} biases", bias.len());
        }
        let mut out = vec![0f32; n * m];
        let scale = self.frac.map(|f| (1u32 << f) as f32);
        out.par_chunks_mut(m)
            .zip(y.par_chunks(m))
            .enumerate()
            .for_each(|(c, (o, row))| {
                let b = bias[c];
                match scale {
                    None => {
                        for (d, &v) in o.iter_mut().zip(row) {
                            *d = (v + b).clamp(0.0, RELU6);
                        }
                    }
                    Some(s) => {
                        for (d, &v) in o.iter_mut().zip(row) {
                            let a = (v + b).clamp(0.0, RELU6);
                            *d = ((a * s + 0.5).floor() / s).clamp(0.0, RELU6);
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, m) = y.dims2()?;
        let bias: Vec<f32> = bias.to_vec1()?;
        let mut dy = vec![0f32; n * m];
        let mut db = vec![0f32; n];
        with_f32(y, |y| {
            with_f32(grad, |g| {
                dy.par_chunks_mut(m)
                    .zip(db.par_iter_mut())
                    .enumerate()
                    .for_each(|(c, (d, dbc))| {
                        let r = c * m..(c + 1) * m;
                        let b = bias[c];
                        let mut s = 0f64;
                        for ((o, &yv), &gv) in d.iter_mut().zip(&y[r.clone()]).zip(&g[r]) {
                            let z = yv + b;
                            *o = if z > 0.0 && z < RELU6 { gv } else { 0.0 };
                            s += f64::from(*o);
                        }
                        *dbc = s as f32;
                    });
            })
        })??;
        let dev = y.device();
        Ok((
            Some(Tensor::from_vec(dy, (n, m), dev)?),
            Some(Tensor::from_vec(db, n, dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, Device, Var};

    fn reference_bn_relu6(y: &Tensor, g: &Tensor, b: &Tensor, eps: f64) -> Tensor {
        let (n, _) = y.dims2().unwrap();
        let mean = y.mean_keepdim(1).unwrap();
        let c = y.broadcast_sub(&mean).unwrap();
        let var = c.sqr().unwrap().mean_keepdim(1).unwrap();
        let inv = (var + eps).unwrap().sqrt().unwrap().recip().unwrap();
        c.broadcast_mul(&inv)
            .unwrap()
            .broadcast_mul(&g.reshape((n, 1)).unwrap())
            .unwrap()
            .broadcast_add(&b.reshape((n, 1)).unwrap())
            .unwrap()
            .clamp(0f32, 6f32)
            .unwrap()
    }

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{i}: {x} vs {y}");
        }
    }

    #[test]
    fn bn_relu6_matches_the_composed_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let y =
            Var::from_tensor(&(Tensor::randn(0f32, 1.5, (5, 77), &dev).unwrap() + 0.3).unwrap())
                .unwrap();
        let g = Var::from_vec(vec![1.0f32, 2.0, 0.5, -1.0, 1.5], 5, &dev).unwrap();
        let b = Var::from_vec(vec![0.5f32, 1.0, 2.0, 3.0, -0.2], 5, &dev).unwrap();
        let r = Tensor::randn(0f32, 1.0, (5, 77), &dev).unwrap();
        let op = BnRelu6::new(1e-5);
        let got = y
            .as_tensor()
            .apply_op3(g.as_tensor(), b.as_tensor(), op.clone())
            .unwrap();
        let want = reference_bn_relu6(y.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5);
        close(&got, &want, 1e-5);
        let st = op.stats();
        close(
            &Tensor::new(st.mean.as_slice(), &dev).unwrap(),
            &y.as_tensor().mean(D::Minus1).unwrap(),
            1e-5,
        );
        let lg = (got * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let lw = (want * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&y, &g, &b] {
            close(
                lg.get(v.as_tensor()).unwrap(),
                lw.get(v.as_tensor()).unwrap(),
                1e-4,
            );
        }
    }

    #[test]
    fn bias_relu6_matches_the_composed_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let y =
            Var::from_tensor(&(Tensor::randn(0f32, 3.0, (3, 50), &dev).unwrap() + 2.0).unwrap())
                .unwrap();
        let b = Var::from_vec(vec![0.5f32, -1.0, 2.0], 3, &dev).unwrap();
        let r = Tensor::randn(0f32, 1.0, (3, 50), &dev).unwrap();
        let got = y
            .as_tensor()
            .apply_op2(b.as_tensor(), BiasRelu6 { frac: None })
            .unwrap();
        let want = y
            .as_tensor()
            .broadcast_add(&b.as_tensor().reshape((3, 1)).unwrap())
            .unwrap()
            .clamp(0f32, 6f32)
            .unwrap();
        close(&got, &want, 1e-6);
        let lg = (got * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let lw = (want * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&y, &b] {
            close(
                lg.get(v.as_tensor()).unwrap(),
                lw.get(v.as_tensor()).unwrap(),
                1e-5,
            );
        }
        // Quantized: multiples of 2^-5 within [0, 6].
        let q = y
            .as_tensor()
            .apply_op2(b.as_tensor(), BiasRelu6 { frac: Some(5) })
            .unwrap();
        let q: Vec<f32> = q.flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            q.iter()
                .all(|&v| (0.0..=6.0).contains(&v) && (v * 32.0).fract() == 0.0)
        );
    }
}
