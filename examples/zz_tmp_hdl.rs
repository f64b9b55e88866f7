use ccc::rtl::cell::*;
fn main() {
    for a in [2usize,3,4,5,8,16] {
    let d = std::path::PathBuf::from(format!("/tmp/scratch/a{a}"));
    std::fs::create_dir_all(&d).unwrap();
    let p = CellParams::for_array(a, 32);
    std::fs::write(d.join("ccc_mx_cell.v"), render_cell(&p).unwrap()).unwrap();
    }
}
