//! The source tree is layered: every module of `src/` imports only modules below it in
//! the pipeline (ingest → lowering → quantization → packing → reference → schedule →
//! hardware design → emission, fit model, simulation drivers → verification → reports →
//! the compile driver → training → method comparison → CLI), so no import circle can form. The check reads
//! each file's code (comments and its `#[cfg(test)]` module left out) for `crate::` and
//! `super::` paths.

mod common;

use std::path::Path;

/// Every module, lowest first. A module may name only modules listed before it.
const ORDER: &[&str] = &[
    "error",
    "output",
    "dataset",
    "onnx_proto",
    "onnx",
    "model",
    "modelfile",
    "testgen",
    "lower",
    "quant",
    "pack::bitset",
    "pack::combine",
    "pack::group",
    "pack::predefined",
    "pack::network",
    "pack",
    "reference",
    "schedule",
    "rtl::templates",
    "rtl::cell",
    "rtl::hdl",
    "rtl::design",
    "rtl::emit",
    "fit",
    "rtl::sim",
    "rtl",
    "verify",
    "fpga_report",
    "report",
    "scalesim",
    "plots",
    "compile",
    "train::fused",
    "train::shift",
    "train::net",
    "train::checkpoint",
    "train::prune",
    "train",
    "train::sweep",
    "compare",
    "cli",
    "lib",
];

/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, `src/lib.rs` → `lib`.
fn module_of(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [dir, last] if last == "mod" => dir.clone(),
        _ => parts.join("::"),
    }
}

/// The file's code without comments and without its unit-test module.
fn code(text: &str) -> String {
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    body.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The modules that `code` (of module `me`) names through `crate::` and `super::`.
fn imports(me: &str, code: &str, modules: &[String]) -> Vec<String> {
    let parent = me.rsplit_once("::").map(|(p, _)| p.to_string());
    let resolve = |base: Option<&str>, rest: &str| -> Option<String> {
        let first = ident_at(rest);
        let head = match base {
            Some(b) => format!("{b}::{first}"),
            None => first.to_string(),
        };
        // A path into a directory module names its submodule when there is one.
        let after = &rest[first.len()..];
        if let Some(sub) = after.strip_prefix("::") {
            let deeper = format!("{head}::{}", ident_at(sub));
            if modules.contains(&deeper) {
                return Some(deeper);
            }
        }
        if modules.contains(&head) {
            Some(head)
        } else {
            base.map(str::to_string)
        }
    };
    let mut found = Vec::new();
    for (pat, base) in [("crate::", None), ("super::", parent.as_deref())] {
        let mut at = 0;
        while let Some(i) = code[at..].find(pat) {
            let rest = &code[at + i + pat.len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(list) => list[..list.find('}').unwrap_or(list.len())]
                    .split(',')
                    .map(str::trim)
                    .collect(),
                None => vec![rest],
            };
            for n in names {
                if let Some(m) = resolve(base, n)
                    && m != me
                {
                    found.push(m);
                }
            }
            at += i + pat.len();
        }
    }
    found.sort();
    found.dedup();
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_one_above_it() {
    let src = common::repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    // Generated tables `include!`d into another module are not modules.
    files.retain(|f| {
        f.file_name()
            .is_some_and(|n| n != "main.rs" && n != "fit_coefs.rs")
    });
    let modules: Vec<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .collect();
    for m in &modules {
        assert!(
            ORDER.contains(&m.as_str()),
            "module {m} is not in the layering of tests/layering.rs: place it there"
        );
    }
    let rank = |m: &str| ORDER.iter().position(|o| *o == m).unwrap();
    let mut wrong = Vec::new();
    for (f, m) in files.iter().zip(&modules) {
        let text = std::fs::read_to_string(f).unwrap();
        for i in imports(m, &code(&text), &modules) {
            if rank(&i) > rank(m) {
                wrong.push(format!("{m} imports {i}, which is above it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_imports() {
    let modules: Vec<String> = [
        "pack",
        "pack::group",
        "pack::combine",
        "rtl",
        "rtl::cell",
        "fit",
    ]
    .map(String::from)
    .to_vec();
    let text = "use super::combine::{self, Grouping};\nuse crate::{fit, rtl::cell};\n";
    assert_eq!(
        imports("pack::group", text, &modules),
        vec!["fit", "pack::combine", "rtl::cell"]
    );
    assert_eq!(
        imports("rtl::cell", "x = super::templates::render()", &modules),
        vec!["rtl"]
    );
    assert_eq!(module_of(Path::new("pack/mod.rs")), "pack");
    assert_eq!(module_of(Path::new("rtl/design.rs")), "rtl::design");
    assert!(code("a // crate::fit\n#[cfg(test)]\nmod tests { crate::cli }").trim() == "a");
}
