//! Datasets in IDX format (MNIST / Fashion-MNIST), gzip-compressed or plain, as Debian's
//! `dataset-fashion-mnist` package installs them.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where Debian's `dataset-fashion-mnist` puts the files.
pub const DEFAULT_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Images as uint8 (C x H x W each, C = 1) with their labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub images: Vec<Vec<u8>>,
    pub labels: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing {}", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX file of unsigned bytes: returns its dimensions and payload.
pub fn parse_idx(bytes: &[u8], what: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        bail!("{}: not an IDX file (bad magic)", what.display());
    }
    if bytes[2] != 0x08 {
        bail!(
            "{}: IDX element type 0x{:02x} is not unsigned byte",
            what.display(),
            bytes[2]
        );
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        bail!("{}: truncated IDX header", what.display());
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let n: usize = dims.iter().product();
    if bytes.len() != header + n {
        bail!(
            "{}: IDX payload is {} bytes, dimensions {:?} need {}",
            what.display(),
            bytes.len() - header,
            dims,
            n
        );
    }
    Ok((dims, bytes[header..].to_vec()))
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "{}/{stem}[.gz] not found. Install the dataset with `sudo apt-get install dataset-fashion-mnist` or pass --data-dir",
        dir.display()
    )
}

/// Loads an MNIST-layout split (`train-*` / `t10k-*` IDX files) from `dir`.
pub fn load_mnist_like(dir: &Path, split: Split, limit: Option<usize>) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let ip = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (idims, pixels) = parse_idx(&read_maybe_gz(&ip)?, &ip)?;
    let (ldims, labels) = parse_idx(&read_maybe_gz(&lp)?, &lp)?;
    if idims.len() != 3 || ldims.len() != 1 || idims[0] != ldims[0] {
        bail!(
            "{} / {}: shapes {:?} and {:?} do not describe one labelled image set",
            ip.display(),
            lp.display(),
            idims,
            ldims
        );
    }
    let (n, h, w) = (idims[0], idims[1], idims[2]);
    let n = limit.map_or(n, |l| l.min(n));
    let images = pixels
        .chunks_exact(h * w)
        .take(n)
        .map(<[u8]>::to_vec)
        .collect();
    Ok(Dataset {
        channels: 1,
        height: h,
        width: w,
        images,
        labels: labels[..n].to_vec(),
    })
}

/// Test images `skip..skip + limit` of an MNIST-layout set in `dir`.
pub fn load_test(dir: &Path, skip: usize, limit: Option<usize>) -> Result<Dataset> {
    let mut d = load_mnist_like(dir, Split::Test, limit.map(|l| l + skip))?;
    let skip = skip.min(d.images.len());
    d.images.drain(..skip);
    d.labels.drain(..skip);
    Ok(d)
}

impl Dataset {
    /// Classes its labels name: the largest label + 1.
    pub fn classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&l| l as usize + 1)
    }

    /// Refuses a model (`what`) whose input is not this dataset's image shape.
    pub fn check_input(&self, what: &Path, input: [usize; 3]) -> Result<()> {
        let [c, h, w] = input;
        if (c, h, w) != (self.channels, self.height, self.width) {
            bail!(
                "{}: the model takes {c}x{h}x{w} inputs but the dataset has {}x{}x{} images",
                what.display(),
                self.channels,
                self.height,
                self.width
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_idx_and_rejects_bad_lengths() {
        let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        b.extend([1, 2, 3, 4]);
        let (d, v) = parse_idx(&b, Path::new("x")).unwrap();
        assert_eq!(d, vec![2, 1, 2]);
        assert_eq!(v, vec![1, 2, 3, 4]);
        b.pop();
        assert!(parse_idx(&b, Path::new("x")).is_err());
        assert!(parse_idx(&[1, 2, 3], Path::new("x")).is_err());
    }
}
