//! File formats at the edge of the library: atomic writes and NumPy `.npy` arrays.

pub mod atomic;
pub mod npy;
