//! `ccc`, the column-combining compiler: packs a trained sparse CNN by column combining
//! and maps it onto a bit-serial, weight-stationary systolic array of MX cells.
//!
//! Pipeline (one module per stage): [`model`] (ingest) → [`lower`] → [`quant`] →
//! [`pack`] → [`schedule`] → [`report`], driven by [`compile`]; [`reference`] is the
//! bit-exact software model every hardware form is checked against; [`fit`] predicts
//! what the emitted accelerator costs on an FPGA and [`fpga_report`] sets the flows'
//! measurements beside it.

pub mod cli;
pub mod compare;
pub mod compile;
pub mod dataset;
pub mod error;
pub mod fit;
pub mod fpga_report;
pub mod lower;
pub mod model;
pub mod modelfile;
pub mod onnx;
pub mod onnx_proto;
pub mod output;
pub mod pack;
pub mod plots;
pub mod quant;
pub mod reference;
pub mod report;
pub mod rtl;
pub mod scalesim;
pub mod schedule;
pub mod testgen;
pub mod train;
pub mod verify;
