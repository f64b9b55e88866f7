//! Helpers shared by the integration tests: real model files in temp dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ccc::compile::{self, CompileOptions, Compiled};
use ccc::output::OutDir;
use ccc::rtl::design::HwDesign;
use ccc::rtl::sim::{RunOptions, Simulator};
use ccc::testgen::{self, BlockSpec, GenDtype, GenSpec, StemSpec};
use ccc::verify::{self, SimCheck};

pub fn write_model(dir: &Path, name: &str, spec: &GenSpec) -> PathBuf {
    let p = dir.join(name);
    testgen::write(spec, &p).expect("write generated model");
    p
}

pub fn ccc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccc"))
        .args(args)
        .output()
        .expect("run ccc")
}

/// Runs `ccc` in `dir` (for relative-path behaviour).
pub fn ccc_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccc"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run ccc")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether an external tool is on PATH; tests that need one print why they skip.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// True when `tool` is present. Otherwise the test fails where `CI` is set (CI installs
/// every tool, so a missing one is a broken setup), and elsewhere prints why it skips
/// (`make test` installs the tools; a bare `cargo test` may lack them).
pub fn need(tool: &str, test: &str) -> bool {
    if have(tool) {
        return true;
    }
    let install = format!("{tool} not found (apt-get install {tool}, or run `make test`)");
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {install}; CI is set, so a missing tool fails the test");
    }
    eprintln!("SKIPPED {test}: {install}");
    false
}

/// True when Fashion-MNIST is installed; otherwise as [`need`] for a missing tool.
pub fn need_fashion_mnist(test: &str) -> bool {
    let dir = Path::new(ccc::dataset::DEFAULT_FASHION_MNIST_DIR);
    if dir.join("train-images-idx3-ubyte.gz").exists()
        && dir.join("t10k-images-idx3-ubyte.gz").exists()
    {
        return true;
    }
    let install = format!(
        "Fashion-MNIST not in {} (apt-get install dataset-fashion-mnist, or run `make test`)",
        dir.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {install}; CI is set, so missing data fails the test");
    }
    eprintln!("SKIPPED {test}: {install}");
    false
}

/// Compiles Verilog sources with iverilog and runs the simulation with plusargs;
/// returns stdout. Panics with the tool's output on failure.
pub fn iverilog_run(dir: &Path, sources: &[PathBuf], top: &str, plusargs: &[String]) -> String {
    let exe = dir.join(format!("{top}.vvp"));
    let o = Command::new("iverilog")
        .args(["-g2005", "-Wall", "-s", top, "-o"])
        .arg(&exe)
        .args(sources)
        .output()
        .expect("run iverilog");
    assert!(o.status.success(), "iverilog failed:\n{}", stderr(&o));
    let o = Command::new("vvp")
        .arg("-n")
        .arg(&exe)
        .args(plusargs)
        .output()
        .expect("run vvp");
    assert!(o.status.success(), "vvp failed:\n{}", stderr(&o));
    stdout(&o)
}

/// Repository root (for hw/ and testbench/ sources).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `text` with tests/golden/NAME; rewrites the file only when the environment
/// says CCC_UPDATE_GOLDEN=1 (review the diff), never silently.
pub fn golden_file(name: &str, text: &str) {
    let path = repo().join("tests/golden").join(name);
    if std::env::var("CCC_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        eprintln!("updated golden file {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} unreadable ({e}); run with CCC_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if want != text {
        let diff = similar::TextDiff::from_lines(want.as_str(), text);
        panic!(
            "{} differs from the emitted text (- golden, + emitted):\n{}\nif the change is intended, rerun with CCC_UPDATE_GOLDEN=1 and review the diff",
            path.display(),
            diff.unified_diff()
                .context_radius(3)
                .header("golden", "emitted")
        );
    }
}

/// The small model the RTL tests start from: 2x7x6 input, a 3x3 stem, a stride-2 and a
/// stride-1 shift block, 5 classes.
pub fn rtl_spec(seed: u64) -> GenSpec {
    GenSpec {
        name: "rtl".into(),
        channels: 2,
        height: 7,
        width: 6,
        classes: 5,
        stem: Some(StemSpec {
            out: 6,
            k: 3,
            stride: 1,
            padding: 1,
        }),
        blocks: vec![BlockSpec::shift(12, 2, None), BlockSpec::shift(18, 1, None)],
        density: 0.4,
        batchnorm: true,
        relu6: true,
        gamma: Some(1.0),
        dtype: GenDtype::F32,
        seed,
        head: Vec::new(),
    }
}

/// [`rtl_spec`] with a last layer too short to hide the next image's stream: the first
/// layer's input then keeps buffers of its own instead of sharing the tap buffers.
pub fn rtl_tail_spec(seed: u64) -> GenSpec {
    let mut s = rtl_spec(seed);
    s.blocks[1] = BlockSpec::shift(4, 2, None);
    s
}

/// A generated model compiled with its RTL into a temp dir (OUT is `out`).
pub struct Built {
    pub _dir: tempfile::TempDir,
    pub out: PathBuf,
    pub c: Compiled,
}

impl Built {
    pub fn design(&self) -> &HwDesign {
        self.c.design.as_ref().expect("compiled with RTL")
    }

    /// The same design with its weight memory cut into banks of `words` words (a power of
    /// two; real designs use 512, which small test models fit in one), written to a new OUT.
    #[allow(dead_code)]
    pub fn rebank(mut self, words: usize) -> Built {
        let d = self.c.design.as_mut().expect("compiled with RTL");
        d.capacity.wm_bank = words;
        let out = self.out.with_file_name(format!("out-bank{words}"));
        let staged = OutDir::begin(&out).unwrap();
        compile::write_outputs(&self.c, &staged, true).unwrap();
        staged.commit().unwrap();
        self.out = out;
        self
    }

    /// Simulates `imgs` with `sim` and asserts the run finished and matched the reference
    /// on every activation, logit and class.
    pub fn check(&self, imgs: &[Vec<u8>], sim: Simulator, o: &RunOptions) -> SimCheck {
        let r = verify::check(
            &self.out,
            &self.c.packed,
            &self.c.schedule,
            self.design(),
            imgs,
            sim,
            o,
        )
        .unwrap();
        assert!(!r.timeout, "{sim:?}: the design did not finish");
        assert!(
            r.mismatches.is_empty(),
            "{sim:?}: {}",
            r.mismatches
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        r
    }
}

pub fn build_rtl(spec: &GenSpec, o: &CompileOptions) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let m = write_model(dir.path(), "m.safetensors", spec);
    let c = compile::compile(&m, o).unwrap();
    let out = dir.path().join("out");
    let staged = OutDir::begin(&out).unwrap();
    compile::write_outputs(&c, &staged, true).unwrap();
    staged.commit().unwrap();
    Built { _dir: dir, out, c }
}

/// A tensor of a model file as f32 values.
pub fn tensor_f32(path: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    match t.dtype() {
        safetensors::Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        safetensors::Dtype::I32 => t
            .data()
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
        safetensors::Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        d => panic!("{name}: unexpected dtype {d:?}"),
    }
}
