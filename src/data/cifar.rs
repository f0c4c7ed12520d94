//! CIFAR-10 / CIFAR-100 binary format. CIFAR-10: `data_batch_{1..5}.bin` (train) and `test_batch.bin`,
//! records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32×32). CIFAR-100: `train.bin` and
//! `test.bin`, records of 2 label bytes (coarse, fine; the fine label is used) + 3072 pixels.
//! Pixels are normalised with the usual CIFAR-10 per-channel mean and std.

use std::path::{Path, PathBuf};

use super::dataset::{Dataset, Part};
use crate::error::{Error, Result};
use crate::tensor::FeatureMap;

pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const CIFAR_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
const PIXELS: usize = 3 * 32 * 32;

/// A CIFAR split held in memory as raw bytes.
pub struct Cifar {
    dir: PathBuf,
    labels: Vec<u8>,
    pixels: Vec<u8>,
    classes: usize,
}

impl Cifar {
    /// # Errors
    /// A folder with neither CIFAR-10 nor CIFAR-100 binaries, unreadable or truncated files, labels out of range.
    pub fn open(dir: &Path, part: Part) -> Result<Self> {
        let c10 = dir.join("data_batch_1.bin").exists() || dir.join("test_batch.bin").exists();
        let c100 = dir.join("train.bin").exists() || dir.join("test.bin").exists();
        let (files, label_bytes, classes): (Vec<PathBuf>, usize, usize) = match (c10, c100, part) {
            (true, _, Part::Train) => ((1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect(), 1, 10),
            (true, _, Part::Test) => (vec![dir.join("test_batch.bin")], 1, 10),
            (false, true, Part::Train) => (vec![dir.join("train.bin")], 2, 100),
            (false, true, Part::Test) => (vec![dir.join("test.bin")], 2, 100),
            _ => return Err(Error::file(
                "CIFAR folder",
                dir,
                "has neither data_batch_1.bin/test_batch.bin (CIFAR-10) nor train.bin/test.bin (CIFAR-100); point cifar:DIR at the extracted *-binary folder",
            )),
        };
        let (mut labels, mut pixels) = (Vec::new(), Vec::new());
        for f in &files {
            let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
            parse_records(&bytes, f, label_bytes, classes, &mut labels, &mut pixels)?;
        }
        Ok(Cifar { dir: dir.to_path_buf(), labels, pixels, classes })
    }
}

/// Appends the records of one CIFAR binary file (`label_bytes` = 1 for CIFAR-10, 2 for CIFAR-100,
/// whose second byte is the fine label) to `labels` and `pixels`. `path` only names it in messages.
///
/// # Errors
/// An empty or truncated file, a label out of range.
pub fn parse_records(bytes: &[u8], path: &Path, label_bytes: usize, classes: usize, labels: &mut Vec<u8>, pixels: &mut Vec<u8>) -> Result<()> {
    let record = label_bytes + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(Error::file("CIFAR file", path, format!("{} bytes is not a whole number of {record}-byte records (truncated?)", bytes.len())));
    }
    for r in bytes.chunks_exact(record) {
        let label = r[label_bytes - 1];
        if label as usize >= classes {
            return Err(Error::file("CIFAR file", path, format!("label {label} out of range for {classes} classes")));
        }
        labels.push(label);
        pixels.extend_from_slice(&r[label_bytes..]);
    }
    Ok(())
}

impl Dataset for Cifar {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn native_resolution(&self) -> Option<usize> {
        Some(32)
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn image(&self, i: usize) -> Result<(FeatureMap, usize)> {
        let raw = &self.pixels[i * PIXELS..(i + 1) * PIXELS];
        let chw = raw.iter().enumerate().map(|(k, &b)| (b as f32 / 255.0 - CIFAR_MEAN[k / 1024]) / CIFAR_STD[k / 1024]).collect();
        Ok((FeatureMap::from_chw(3, 32, 32, chw)?, self.labels[i] as usize))
    }
    fn describe(&self) -> String {
        format!("cifar-{}:{} ({} images)", self.classes, self.dir.display(), self.len())
    }
}
