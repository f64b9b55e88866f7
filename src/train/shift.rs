//! The per-channel spatial shift as a candle custom op, with the following 1x1 conv's
//! stride folded in.
//!
//! Built from `narrow`/`pad`/`cat`, a shift makes backward allocate a full padded
//! gradient per channel group; as one op, forward and backward are single passes
//! (backward scatters the gradient back, exact), which measured 25–30% faster per
//! epoch. Taking the stride here keeps the strided layers from shifting every position
//! and then gathering a quarter of them.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// output[c][b][y][x] = input[c][b][s·y + dy_c][s·x + dx_c], zero outside the image
/// (docs/DESIGN.md §2 semantics, then stride s), on channel-major [C, B, H, W] tensors.
#[derive(Clone, Debug)]
pub struct Shift {
    shifts: Arc<Vec<(i32, i32)>>,
    stride: usize,
}

impl Shift {
    pub fn new(shifts: Vec<(i32, i32)>) -> Self {
        Shift {
            shifts: Arc::new(shifts),
            stride: 1,
        }
    }

    /// The same shift keeping every `stride`-th row and column of its output.
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride.max(1);
        self
    }

    /// Every channel displaced by the same (dy, dx) (a KxK conv's tap).
    pub fn uniform(channels: usize, dy: i32, dx: i32) -> Self {
        Shift::new(vec![(dy, dx); channels])
    }

    #[cfg(test)]
    fn inverse(&self) -> Self {
        Shift::new(self.shifts.iter().map(|&(dy, dx)| (-dy, -dx)).collect())
    }

    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1(self.clone())
    }

    /// The gradient with respect to an H x W input, from the output's gradient.
    pub fn backward(&self, grad: &Tensor, h: usize, w: usize) -> Result<Tensor> {
        let back = Unshift {
            shift: self.clone(),
            h,
            w,
        };
        grad.contiguous()?.apply_op1(back)
    }
}

/// Valid output range [lo, hi) of one axis: positions o with 0 <= s·o + d < n.
fn valid(out: usize, n: usize, s: usize, d: i32) -> (usize, usize) {
    let (n, s, d) = (n as i64, s as i64, i64::from(d));
    // Smallest o with s·o + d >= 0, and one past the largest with s·o + d < n.
    let lo = if d >= 0 { 0 } else { (-d + s - 1) / s };
    let hi = if n - d <= 0 { 0 } else { (n - d + s - 1) / s };
    let hi = hi.clamp(0, out as i64);
    (lo.clamp(0, hi) as usize, hi as usize)
}

/// Shifts (and strides) one H x W plane into an Ho x Wo one.
#[allow(clippy::too_many_arguments)]
fn shift_plane(src: &[f32], dst: &mut [f32], h: usize, w: usize, s: usize, dy: i32, dx: i32) {
    let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
    let (ylo, yhi) = valid(ho, h, s, dy);
    let (xlo, xhi) = valid(wo, w, s, dx);
    for (y, row) in dst.chunks_exact_mut(wo).enumerate() {
        if y < ylo || y >= yhi || xlo >= xhi {
            row.fill(0.0);
            continue;
        }
        let sy = (s * y) as i64 + i64::from(dy);
        let srow = &src[sy as usize * w..(sy as usize + 1) * w];
        row[..xlo].fill(0.0);
        row[xhi..].fill(0.0);
        let sx0 = ((s * xlo) as i64 + i64::from(dx)) as usize;
        if s == 1 {
            row[xlo..xhi].copy_from_slice(&srow[sx0..sx0 + (xhi - xlo)]);
        } else {
            for (d, sx) in row[xlo..xhi].iter_mut().zip((sx0..).step_by(s)) {
                *d = srow[sx];
            }
        }
    }
}

/// The shift's gradient: every output position's gradient back to the input position
/// it was read from (each input position feeds at most one output), zero elsewhere.
fn unshift_plane(g: &[f32], dst: &mut [f32], h: usize, w: usize, s: usize, dy: i32, dx: i32) {
    let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
    let (ylo, yhi) = valid(ho, h, s, dy);
    let (xlo, xhi) = valid(wo, w, s, dx);
    if s > 1 {
        dst.fill(0.0);
    }
    if xlo >= xhi {
        dst.fill(0.0);
        return;
    }
    let sx0 = ((s * xlo) as i64 + i64::from(dx)) as usize;
    let n = xhi - xlo;
    if s == 1 {
        // Every input row is either written whole below or zeroed here.
        for (sy, row) in dst.chunks_exact_mut(w).enumerate() {
            let y = sy as i64 - i64::from(dy);
            if y < ylo as i64 || y >= yhi as i64 {
                row.fill(0.0);
                continue;
            }
            let y = y as usize;
            row[..sx0].fill(0.0);
            row[sx0 + n..].fill(0.0);
            row[sx0..sx0 + n].copy_from_slice(&g[y * wo + xlo..y * wo + xhi]);
        }
        return;
    }
    for y in ylo..yhi {
        let sy = ((s * y) as i64 + i64::from(dy)) as usize;
        let row = &mut dst[sy * w..(sy + 1) * w];
        for (x, &v) in (xlo..xhi).zip(&g[y * wo + xlo..y * wo + xhi]) {
            row[((s * x) as i64 + i64::from(dx)) as usize] = v;
        }
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("shift op: input must be contiguous");
    };
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("shift op: only f32 is supported");
    };
    Ok(&data[start..end])
}

impl CustomOp1 for Shift {
    fn name(&self) -> &'static str {
        "ccc-shift"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (c, b, h, w) = layout.shape().dims4()?;
        if c != self.shifts.len() {
            candle_core::bail!("shift op: {} shifts for {} channels", self.shifts.len(), c);
        }
        let src = contiguous_f32(storage, layout)?;
        let s = self.stride;
        let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
        let mut out = vec![0f32; b * c * ho * wo];
        out.par_chunks_mut(ho * wo)
            .zip(src.par_chunks(h * w))
            .enumerate()
            .with_min_len(16)
            .for_each(|(i, (d, src))| {
                let (dy, dx) = self.shifts[i / b];
                shift_plane(src, d, h, w, s, dy, dx);
            });
        Ok((CpuStorage::F32(out), Shape::from((c, b, ho, wo))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = arg.dims4()?;
        Ok(Some(self.backward(grad_res, h, w)?))
    }
}

/// The shift's backward pass as an op of its own (input size given).
#[derive(Clone, Debug)]
struct Unshift {
    shift: Shift,
    h: usize,
    w: usize,
}

impl CustomOp1 for Unshift {
    fn name(&self) -> &'static str {
        "ccc-shift-backward"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (c, b, ho, wo) = layout.shape().dims4()?;
        let (h, w, s) = (self.h, self.w, self.shift.stride);
        if c != self.shift.shifts.len() || ho != h.div_ceil(s) || wo != w.div_ceil(s) {
            candle_core::bail!("shift backward: gradient shape {:?}", layout.shape());
        }
        let g = contiguous_f32(storage, layout)?;
        let mut out = vec![0f32; b * c * h * w];
        out.par_chunks_mut(h * w)
            .zip(g.par_chunks(ho * wo))
            .enumerate()
            .with_min_len(16)
            .for_each(|(i, (d, g))| {
                let (dy, dx) = self.shift.shifts[i / b];
                unshift_plane(g, d, h, w, s, dy, dx);
            });
        Ok((CpuStorage::F32(out), Shape::from((c, b, h, w))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_definition_and_gradient_is_inverse_shift() {
        let dev = Device::Cpu;
        let v: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32 + 1.0).collect();
        let x = Var::from_vec(v.clone(), (2, 1, 3, 4), &dev).unwrap();
        let op = Shift::new(vec![(1, -1), (-1, 2)]);
        let y = op.apply(x.as_tensor()).unwrap();
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        for c in 0..2 {
            let (dy, dx) = [(1i64, -1i64), (-1, 2)][c];
            for yy in 0..3i64 {
                for xx in 0..4i64 {
                    let (sy, sx) = (yy + dy, xx + dx);
                    let want = if (0..3).contains(&sy) && (0..4).contains(&sx) {
                        v[c * 12 + (sy * 4 + sx) as usize]
                    } else {
                        0.0
                    };
                    assert_eq!(got[c * 12 + (yy * 4 + xx) as usize], want);
                }
            }
        }
        // Gradient of sum(y * r) w.r.t. x is the inverse shift of r.
        let r = Tensor::arange(0f32, 24., &dev)
            .unwrap()
            .reshape((2, 1, 3, 4))
            .unwrap();
        let loss = (y * &r).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let gx: Vec<f32> = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let want: Vec<f32> = op
            .inverse()
            .apply(&r)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(gx, want);
    }

    #[test]
    fn strided_shift_is_the_shift_subsampled_and_its_gradient_scatters_back() {
        let dev = Device::Cpu;
        let (c, b, h, w) = (3, 2, 7, 6);
        let v: Vec<f32> = (0..c * b * h * w)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let x = Var::from_vec(v, (c, b, h, w), &dev).unwrap();
        let shifts = vec![(1, -1), (-1, 1), (0, 2)];
        for s in [1usize, 2, 3] {
            let op = Shift::new(shifts.clone()).with_stride(s);
            let y = op.apply(x.as_tensor()).unwrap();
            let full = Shift::new(shifts.clone()).apply(x.as_tensor()).unwrap();
            let ys: Vec<u32> = (0..h).step_by(s).map(|v| v as u32).collect();
            let xs: Vec<u32> = (0..w).step_by(s).map(|v| v as u32).collect();
            let want = full
                .index_select(&Tensor::new(ys.as_slice(), &dev).unwrap(), 2)
                .unwrap()
                .index_select(&Tensor::new(xs.as_slice(), &dev).unwrap(), 3)
                .unwrap();
            let a: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            let e: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(a, e, "stride {s}");
            // The gradient of sum(y * r) is what autograd gives the composed ops.
            let r = Tensor::randn(0f32, 1.0, y.shape(), &dev).unwrap();
            let g1 = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (want * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let a: Vec<f32> = g1
                .get(x.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let e: Vec<f32> = g2
                .get(x.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(a, e, "stride {s} gradient");
        }
    }
}
