//! File formats at the edge of the library: atomic writes, NumPy `.npy` arrays, and CSV tables
//! ([`table`], polars) with their `.meta.json` provenance sidecars ([`meta`]). Tables are neutral data:
//! analyses build them, the report layer and the experiment runner write them.

pub mod atomic;
pub mod meta;
pub mod npy;
pub mod table;
