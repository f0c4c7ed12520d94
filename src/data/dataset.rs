//! Labelled data sets behind one trait, and the `--data SPEC` parser:
//! `synthetic` (embedded default, 10 000 train / 2 000 validation images), `cifar:DIR` (CIFAR-10 or
//! CIFAR-100 binary), `mnist:DIR` (MNIST / Fashion-MNIST IDX, raw or `.gz`), `fashion-mnist[:DIR]`
//! (the same reader, by default on the files of Debian's `dataset-fashion-mnist` package),
//! `folder:DIR` (one sub-folder per class, PNG/JPEG; 10% held out for validation by a seeded shuffle).
//!
//! Three splits: `Train` to fit, `Val` to watch training and choose a recipe, `Test` to report once.
//! Data sets that ship a training and a test file (CIFAR, MNIST, Fashion-MNIST) carve the validation
//! split out of the training file ([`VAL_HOLDOUT_DENOMINATOR`]: 5,000 of Fashion-MNIST's 60,000, by a
//! fixed shuffle, the same for every run) and keep the test file for `Test`. The synthetic set draws
//! its own test images; an image folder has no test part, so its `Test` is its validation split.

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
    ///
    /// # Errors
    /// An unreadable or undecodable image, an index out of range.
    fn image(&self, i: usize) -> Result<(FeatureMap, usize)>;
    fn describe(&self) -> String;
}

/// Which part of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// What training fits.
    Train,
    /// Held out from the training data: per-epoch validation, recipe choice, analyses.
    Val,
    /// The data set's test file, reported once per run.
    Test,
}

/// The two files of a data set that ships a training and a test file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

/// One image in this many of a training file is held out as the validation split (5,000 of 60,000).
pub const VAL_HOLDOUT_DENOMINATOR: usize = 12;
/// The fixed shuffle that picks the held-out images (the same for every run and seed).
const HOLDOUT_SEED: u64 = 0x5E_ED0F_7E57;

/// A subset of a data set's images, in the inner set's order.
struct Subset {
    inner: Box<dyn Dataset>,
    indices: Vec<usize>,
    what: &'static str,
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn classes(&self) -> usize {
        self.inner.classes()
    }
    fn native_resolution(&self) -> Option<usize> {
        self.inner.native_resolution()
    }
    fn image(&self, i: usize) -> Result<(FeatureMap, usize)> {
        let j = *self.indices.get(i).ok_or_else(|| Error::input("data set", format!("image {i} of {} is out of range", self.indices.len())))?;
        self.inner.image(j)
    }
    fn describe(&self) -> String {
        format!("{} ({}: {} of {} images)", self.inner.describe(), self.what, self.indices.len(), self.inner.len())
    }
}

/// The training (`held = false`) or validation (`held = true`) part of a training file: one image in
/// [`VAL_HOLDOUT_DENOMINATOR`] (at least one when there are two or more), chosen by a fixed shuffle.
fn holdout(full: Box<dyn Dataset>, held: bool) -> Box<dyn Dataset> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let n = full.len();
    let k = if n >= 2 { (n / VAL_HOLDOUT_DENOMINATOR).max(1) } else { 0 };
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(HOLDOUT_SEED));
    let mut indices: Vec<usize> = if held { order[..k].to_vec() } else { order[k..].to_vec() };
    indices.sort_unstable();
    Box::new(Subset { inner: full, indices, what: if held { "validation, held out of the training file" } else { "training, less the validation hold-out" } })
}

/// Opens `split` of a data set with a training and a test file, `open(part)` reading one file.
fn train_test(split: Split, open: impl Fn(Part) -> Result<Box<dyn Dataset>>) -> Result<Box<dyn Dataset>> {
    Ok(match split {
        Split::Train => holdout(open(Part::Train)?, false),
        Split::Val => holdout(open(Part::Train)?, true),
        Split::Test => open(Part::Test)?,
    })
}

/// Synthetic set sizes.
pub const SYNTHETIC_TRAIN: usize = 10_000;
pub const SYNTHETIC_VAL: usize = 2_000;
pub const SYNTHETIC_TEST: usize = 2_000;
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
    /// synthetic images and the folder's validation split (which is also its `Test`).
    ///
    /// # Errors
    /// Missing or malformed files, a folder without class sub-folders.
    pub fn open(&self, split: Split, resolution: usize, seed: u64) -> Result<Box<dyn Dataset>> {
        Ok(match self {
            DataSpec::Synthetic => {
                let (offset, count) = match split {
                    Split::Train => (0, SYNTHETIC_TRAIN),
                    Split::Val => (SYNTHETIC_TRAIN, SYNTHETIC_VAL),
                    Split::Test => (SYNTHETIC_TRAIN + SYNTHETIC_VAL, SYNTHETIC_TEST),
                };
                Box::new(super::synthetic::Synthetic { seed, offset, count })
            }
            DataSpec::Cifar(dir) => train_test(split, |p| Ok(Box::new(super::cifar::Cifar::open(dir, p)?)))?,
            DataSpec::Mnist(dir) => train_test(split, |p| Ok(Box::new(super::mnist::Mnist::open(dir, p)?)))?,
            DataSpec::FashionMnist(dir) => {
                if !dir.join("train-images-idx3-ubyte.gz").exists() && !dir.join("train-images-idx3-ubyte").exists() {
                    return Err(Error::file(
                        "Fashion-MNIST folder",
                        dir,
                        "has no train-images-idx3-ubyte[.gz]; install the data set with `apt-get install -y dataset-fashion-mnist` (or, without root, `tools/fetch_fashion_mnist.sh DIR` and --data fashion-mnist:DIR)",
                    ));
                }
                train_test(split, |p| Ok(Box::new(super::mnist::Mnist::open(dir, p)?)))?
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
