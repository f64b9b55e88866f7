//! Hand-written Verilog primitives (hw/) simulated with Icarus against the compiler's
//! own integer arithmetic, on random vectors.

mod common;

use ccc::quant::requantize;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn row_end_matches_reference_requantize() {
    if !common::need("iverilog", "row_end_matches_reference_requantize") {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 600;
    let mut words = Vec::new();
    let mut want = Vec::new();
    for i in 0..n {
        // PSUM_W = 14: bit-plane sums in [-8192, 8191]; keep the total inside int32.
        let psums: Vec<i64> = (0..8).map(|_| rng.random_range(-8192..8192i64)).collect();
        let base: i64 = match i % 3 {
            0 => rng.random_range(-1000..1000),
            1 => rng.random_range(-(1 << 28)..(1 << 28)),
            _ => 0,
        };
        let shift: i32 = match i % 4 {
            0 => rng.random_range(-16..=0),
            _ => rng.random_range(1..=31),
        };
        let clamp: i32 = if i % 2 == 0 {
            192
        } else {
            rng.random_range(1..=255)
        };
        let last = i % 5 != 0;
        let acc = base + psums.iter().enumerate().map(|(b, p)| p << b).sum::<i64>();
        let act = requantize(acc, shift, clamp);
        want.push(format!("{} {} {}", acc as i32, act, last as u8));
        let mut row = vec![
            base as i32 as u32,
            (shift as u32) & 0x3f,
            clamp as u32,
            last as u32,
        ];
        row.extend(psums.iter().map(|&p| (p as i32 as u32) & 0x3fff));
        words.extend(row);
    }
    let d = tempfile::tempdir().unwrap();
    let vec_path = d.path().join("vectors.hex");
    std::fs::write(
        &vec_path,
        words
            .iter()
            .map(|w| format!("{w:08x}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let repo = common::repo();
    let out = common::iverilog_run(
        d.path(),
        &[
            repo.join("hw/ccc_row_end.v"),
            repo.join("testbench/tb_row_end.v"),
        ],
        "tb_row_end",
        &[
            format!("+vectors={}", vec_path.display()),
            format!("+n={n}"),
        ],
    );
    let got: Vec<&str> = out.lines().filter(|l| !l.starts_with("VCD")).collect();
    assert_eq!(got.len(), n, "{out}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "case {i}");
    }
}
