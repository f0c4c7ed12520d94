//! Labelled data sets behind one trait, and the `--data SPEC` parser:
//! `synthetic` (embedded default, 10 000 train / 2 000 validation images), `cifar:DIR` (CIFAR-10 or
//! CIFAR-100 binary), `mnist:DIR` (MNIST / Fashion-MNIST IDX, raw or `.gz`), `fashion-mnist[:DIR]`
//! (the same reader, by default on the files of Debian's `dataset-fashion-mnist` package),
//! `folder:DIR` (one sub-folder per class, PNG/JPEG; 10% held out for validation by a seeded shuffle).

use std::path::PathBuf;

use super::source::BatchSource;
use crate::error::{Error, Result};
use crate::tensor::{Batch, FeatureMap};

/// Where Debian's `dataset-fashion-mnist` package installs the four IDX files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// A labelled image set; images are normalised CHW maps.
pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn classes(&self) -> usize;
    /// The side of every image when the set has a fixed size (32 for CIFAR, padded MNIST and the
    /// synthetic shapes); `None` when images are resized to the requested resolution (folders).
    fn native_resolution(&self) -> Option<usize> {
        None
    }
    /// Image `i` and its label.
    fn image(&self, i: usize) -> Result<(FeatureMap, usize)>;
    fn describe(&self) -> String;
}

/// Which part of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

/// Synthetic set sizes.
pub const SYNTHETIC_TRAIN: usize = 10_000;
pub const SYNTHETIC_VAL: usize = 2_000;
/// Fraction of an image folder held out for validation.
pub const FOLDER_VAL_FRACTION: f64 = 0.1;

/// A parsed `--data` value.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    Synthetic,
    Cifar(PathBuf),
    Mnist(PathBuf),
    /// Fashion-MNIST (read as IDX), by default from [`FASHION_MNIST_DIR`].
    FashionMnist(PathBuf),
    Folder(PathBuf),
}

impl std::str::FromStr for DataSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::config("data", s, "use synthetic, fashion-mnist, fashion-mnist:DIR, cifar:DIR, mnist:DIR or folder:DIR");
        if s == "synthetic" {
            return Ok(DataSpec::Synthetic);
        }
        if s == "fashion-mnist" {
            return Ok(DataSpec::FashionMnist(PathBuf::from(FASHION_MNIST_DIR)));
        }
        let (kind, dir) = s.split_once(':').ok_or_else(bad)?;
        let dir = PathBuf::from(dir);
        match kind {
            "cifar" => Ok(DataSpec::Cifar(dir)),
            "mnist" => Ok(DataSpec::Mnist(dir)),
            "fashion-mnist" => Ok(DataSpec::FashionMnist(dir)),
            "folder" => Ok(DataSpec::Folder(dir)),
            _ => Err(bad()),
        }
    }
}

impl DataSpec {
    /// Opens one split. `resolution` applies to image folders (resize + centre crop); `seed` fixes the
    /// synthetic images and the folder's validation split.
    pub fn open(&self, split: Split, resolution: usize, seed: u64) -> Result<Box<dyn Dataset>> {
        Ok(match self {
            DataSpec::Synthetic => {
                let (offset, count) = match split {
                    Split::Train => (0, SYNTHETIC_TRAIN),
                    Split::Val => (SYNTHETIC_TRAIN, SYNTHETIC_VAL),
                };
                Box::new(super::synthetic::Synthetic { seed, offset, count })
            }
            DataSpec::Cifar(dir) => Box::new(super::cifar::Cifar::open(dir, split)?),
            DataSpec::Mnist(dir) => Box::new(super::mnist::Mnist::open(dir, split)?),
            DataSpec::FashionMnist(dir) => {
                if !dir.join("train-images-idx3-ubyte.gz").exists() && !dir.join("train-images-idx3-ubyte").exists() {
                    return Err(Error::file(
                        "Fashion-MNIST folder",
                        dir,
                        "has no train-images-idx3-ubyte[.gz]; install the data set with `apt-get install -y dataset-fashion-mnist` (or, without root, `tools/fetch_fashion_mnist.sh DIR` and --data fashion-mnist:DIR)",
                    ));
                }
                Box::new(super::mnist::Mnist::open(dir, split)?)
            }
            DataSpec::Folder(dir) => Box::new(super::folder::ImageFolder::open(dir, split, resolution, seed)?),
        })
    }
}

/// A data set read in order as input batches (labels dropped), for `analyze --data`.
pub struct DatasetSource {
    data: Box<dyn Dataset>,
    next: usize,
    limit: usize,
}

impl DatasetSource {
    /// The first `limit` images (all when `None`).
    pub fn new(data: Box<dyn Dataset>, limit: Option<usize>) -> Self {
        let limit = limit.unwrap_or(usize::MAX).min(data.len());
        DatasetSource { data, next: 0, limit }
    }
}

impl BatchSource for DatasetSource {
    fn total(&self) -> usize {
        self.limit
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        if self.next >= self.limit {
            return Ok(None);
        }
        let end = (self.next + max.max(1)).min(self.limit);
        let maps = (self.next..end).map(|i| self.data.image(i).map(|(m, _)| m)).collect::<Result<Vec<_>>>()?;
        self.next = end;
        Batch::new(maps).map(Some)
    }
    fn describe(&self) -> String {
        format!("{} (first {} images)", self.data.describe(), self.limit)
    }
}
