//! Inputs: image files with documented preprocessing ([`images`]) and batch streams ([`source`]).

pub mod images;
pub mod source;

pub use images::Preprocess;
pub use source::{BatchSource, ImageFolderSource, NoiseSource, NpySource};
