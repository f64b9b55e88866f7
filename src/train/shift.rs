//! The per-channel spatial shift as a candle custom op.
//!
//! Built from `narrow`/`pad`/`cat`, a shift makes backward allocate a full padded
//! gradient per channel group; as one op, forward and backward are single passes
//! (backward is the inverse shift, exact), which measured 25–30% faster per epoch.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// output[c][b][y][x] = input[c][b][y + dy_c][x + dx_c], zero outside the image
/// (docs/DESIGN.md §2 semantics), on channel-major [C, B, H, W] tensors.
#[derive(Clone, Debug)]
pub struct Shift {
    shifts: Arc<Vec<(i32, i32)>>,
}

impl Shift {
    pub fn new(shifts: Vec<(i32, i32)>) -> Self {
        Shift {
            shifts: Arc::new(shifts),
        }
    }

    /// Every channel displaced by the same (dy, dx) (a KxK conv's tap).
    pub fn uniform(channels: usize, dy: i32, dx: i32) -> Self {
        Shift::new(vec![(dy, dx); channels])
    }

    fn inverse(&self) -> Self {
        Shift::new(self.shifts.iter().map(|&(dy, dx)| (-dy, -dx)).collect())
    }

    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1(self.clone())
    }
}

/// Shifts one H x W plane.
fn shift_plane(src: &[f32], dst: &mut [f32], h: usize, w: usize, dy: i32, dx: i32) {
    for y in 0..h {
        let sy = y as i64 + dy as i64;
        let row = &mut dst[y * w..(y + 1) * w];
        if sy < 0 || sy >= h as i64 {
            row.fill(0.0);
            continue;
        }
        let srow = &src[sy as usize * w..(sy as usize + 1) * w];
        for (x, d) in row.iter_mut().enumerate() {
            let sx = x as i64 + dx as i64;
            *d = if sx < 0 || sx >= w as i64 {
                0.0
            } else {
                srow[sx as usize]
            };
        }
    }
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
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("shift op: input must be contiguous");
        };
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("shift op: only f32 is supported");
        };
        let src = &data[start..end];
        let plane = h * w;
        let mut out = vec![0f32; b * c * plane];
        out.par_chunks_mut(plane)
            .zip(src.par_chunks(plane))
            .enumerate()
            .for_each(|(i, (d, s))| {
                let (dy, dx) = self.shifts[i / b];
                shift_plane(s, d, h, w, dy, dx);
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // d out[y][x] / d in[y+dy][x+dx] = 1: the gradient is the inverse shift.
        Ok(Some(grad_res.contiguous()?.apply_op1(self.inverse())?))
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
}
