//! Packing stage: column combining of each layer's filter matrix (grouping, pruning),
//! row permutation across cascaded layers, and the physical packed network.

pub mod bitset;
pub mod combine;
pub mod group;
pub mod network;
pub mod predefined;
