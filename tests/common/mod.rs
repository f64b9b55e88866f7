//! Helpers shared by the integration tests: real model files in temp dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ccc::testgen::{self, GenSpec};

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

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
