//! Inputs: image files with documented preprocessing ([`images`]), batch streams ([`source`]) and
//! labelled data sets ([`dataset`]: the embedded [`synthetic`] set, [`cifar`], [`mnist`], [`folder`]).

pub mod cifar;
pub mod dataset;
pub mod folder;
pub mod images;
pub mod mnist;
pub mod noise;
pub mod source;
pub mod synthetic;

pub use dataset::{DataSpec, Dataset, DatasetSource, Part, Split};
pub use images::Preprocess;
pub use source::{BatchSource, ImageFolderSource, NoiseSource, NpySource};
