//! RTL emission and the hardware models: Verilog for the MX cell and array (tera
//! templates in `templates/`), and the cycle-accurate rust-hdl model they are proven
//! equivalent to.
pub mod cell;
pub mod emit;
pub mod hdl;
pub mod sim;
