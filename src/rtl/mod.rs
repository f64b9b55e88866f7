//! RTL: the hardware design ([`design`], typed), its Verilog ([`emit`], from the tera
//! templates in `templates/` and the primitives in `hw/`), the MX cell and array
//! ([`cell`]) with the cycle-accurate rust-hdl model they are proven equivalent to
//! ([`hdl`]), and the simulation drivers ([`sim`]).
pub mod cell;
pub mod design;
pub mod emit;
pub mod hdl;
pub mod sim;
pub mod templates;
