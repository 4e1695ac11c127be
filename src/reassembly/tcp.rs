//! TCP reassembly.
