//! Deterministic, atomic output: safetensors writing with a single metadata entry (so
//! header bytes never depend on hash-map order) and output directories that appear
//! whole or not at all (written in a temp dir beside the target, then renamed).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use safetensors::{Dtype, View};

/// An owned tensor ready to serialize.
#[derive(Clone, Debug)]
pub struct OutTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl OutTensor {
    pub fn f32(shape: &[usize], v: impl IntoIterator<Item = f32>) -> Self {
        Self::raw(
            Dtype::F32,
            shape,
            v.into_iter().flat_map(f32::to_le_bytes).collect(),
        )
    }
    pub fn f64(shape: &[usize], v: impl IntoIterator<Item = f64>) -> Self {
        Self::raw(
            Dtype::F64,
            shape,
            v.into_iter().flat_map(f64::to_le_bytes).collect(),
        )
    }
    pub fn f16(shape: &[usize], v: impl IntoIterator<Item = f32>) -> Self {
        Self::raw(
            Dtype::F16,
            shape,
            v.into_iter()
                .flat_map(|x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
        )
    }
    pub fn bf16(shape: &[usize], v: impl IntoIterator<Item = f32>) -> Self {
        Self::raw(
            Dtype::BF16,
            shape,
            v.into_iter()
                .flat_map(|x| half::bf16::from_f32(x).to_le_bytes())
                .collect(),
        )
    }
    pub fn i32(shape: &[usize], v: impl IntoIterator<Item = i32>) -> Self {
        Self::raw(
            Dtype::I32,
            shape,
            v.into_iter().flat_map(i32::to_le_bytes).collect(),
        )
    }
    pub fn i64(shape: &[usize], v: impl IntoIterator<Item = i64>) -> Self {
        Self::raw(
            Dtype::I64,
            shape,
            v.into_iter().flat_map(i64::to_le_bytes).collect(),
        )
    }
    pub fn i8(shape: &[usize], v: impl IntoIterator<Item = i8>) -> Self {
        Self::raw(Dtype::I8, shape, v.into_iter().map(|x| x as u8).collect())
    }
    pub fn u8(shape: &[usize], v: impl IntoIterator<Item = u8>) -> Self {
        Self::raw(Dtype::U8, shape, v.into_iter().collect())
    }
    fn raw(dtype: Dtype, shape: &[usize], data: Vec<u8>) -> Self {
        debug_assert_eq!(
            data.len(),
            shape.iter().product::<usize>() * dtype.bitsize() / 8,
            "tensor data length matches its shape"
        );
        OutTensor {
            dtype,
            shape: shape.to_vec(),
            data,
        }
    }
}

impl View for &OutTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Serializes tensors (any order in, sorted by the library) with one metadata entry.
pub fn safetensors_bytes(
    tensors: &[(String, OutTensor)],
    meta: Option<(&str, String)>,
) -> Result<Vec<u8>> {
    let info = meta.map(|(k, v)| HashMap::from([(k.to_string(), v)]));
    let refs: Vec<(&str, &OutTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    safetensors::serialize(refs, info).context("serializing safetensors")
}

/// Writes one file atomically: temp file in the same directory, then rename.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".ccc-tmp-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    // Temp files are created 0600; outputs are ordinary files.
    set_mode(tmp.path(), 0o644)?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An output directory being built. Files go to a hidden temp dir beside the target;
/// [`OutDir::commit`] swaps it in. Dropping it uncommitted removes everything.
pub struct OutDir {
    target: PathBuf,
    tmp: tempfile::TempDir,
}

impl OutDir {
    /// Creates the staging directory now, so an unwritable destination fails before
    /// any work is done.
    pub fn begin(target: &Path) -> Result<Self> {
        let parent = parent_dir(target);
        if target.exists() && !target.is_dir() {
            bail!("output {} exists and is not a directory", target.display());
        }
        fs::create_dir_all(&parent)
            .with_context(|| format!("output directory {} cannot be created", parent.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(".ccc-tmp-")
            .tempdir_in(&parent)
            .with_context(|| {
                format!(
                    "output directory {} is not writable (cannot create a staging dir in {})",
                    target.display(),
                    parent.display()
                )
            })?;
        Ok(OutDir {
            target: target.to_path_buf(),
            tmp,
        })
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let p = self.tmp.path().join(rel);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        fs::write(&p, bytes).with_context(|| format!("writing {}", self.target.join(rel).display()))
    }

    /// Replaces the target with the staged directory. An existing target is moved aside
    /// first and removed only after the new one is in place.
    pub fn commit(self) -> Result<PathBuf> {
        // Temp dirs are created 0700; outputs are ordinary directories.
        set_mode(self.tmp.path(), 0o755)?;
        let staged = self.tmp.keep();
        let backup = if self.target.exists() {
            let b = staged.with_extension("old");
            fs::rename(&self.target, &b)
                .with_context(|| format!("moving the old {} aside", self.target.display()))?;
            Some(b)
        } else {
            None
        };
        if let Err(e) = fs::rename(&staged, &self.target) {
            if let Some(b) = &backup {
                let _ = fs::rename(b, &self.target);
            }
            let _ = fs::remove_dir_all(&staged);
            return Err(e).with_context(|| format!("renaming into {}", self.target.display()));
        }
        if let Some(b) = backup {
            fs::remove_dir_all(&b).with_context(|| format!("removing {}", b.display()))?;
        }
        Ok(self.target)
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting permissions of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// `v` as pretty-printed JSON with a final newline, arrays of scalars kept on one line
/// (a design's weight words stay readable: one line per word, not one per byte).
pub fn json_text<T: serde::Serialize>(v: &T) -> Result<String> {
    let pretty = serde_json::to_string_pretty(v).context("serializing JSON")?;
    let lines: Vec<&str> = pretty.lines().collect();
    let mut out = String::with_capacity(pretty.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        // serde_json's pretty form puts every element on its own line; a scalar line never
        // ends in `[` or `{` (strings end in a quote), so the opener's block is scalar-only
        // when no line before its closer opens another container.
        if line.ends_with('[') {
            let mut j = i + 1;
            let mut items = Vec::new();
            while j < lines.len() {
                let t = lines[j].trim();
                if t.starts_with(']') || t.ends_with('[') || t.ends_with('{') {
                    break;
                }
                items.push(t.strip_suffix(',').unwrap_or(t));
                j += 1;
            }
            if let Some(close) = lines.get(j).map(|l| l.trim())
                && close.starts_with(']')
            {
                out.push_str(line);
                out.push_str(&items.join(", "));
                out.push_str(close);
                out.push('\n');
                i = j + 1;
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_keeps_scalar_arrays_on_one_line_and_means_the_same() {
        let v = serde_json::json!({
            "a": [1, -2, 3],
            "b": [{"x": [true, null]}, []],
            "c": ["[,", "{"],
            "d": [[1, 2], [3]]
        });
        let text = json_text(&v).unwrap();
        assert!(text.contains("\"a\": [1, -2, 3],"), "{text}");
        assert!(text.contains("\"x\": [true, null]"), "{text}");
        assert!(text.contains("\"c\": [\"[,\", \"{\"]"), "{text}");
        assert!(text.ends_with("}\n"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
