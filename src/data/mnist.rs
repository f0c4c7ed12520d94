//! MNIST / Fashion-MNIST IDX files, raw or gzip-compressed: `train-images-idx3-ubyte[.gz]`,
//! `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
//! Grayscale is replicated to 3 channels (so the RGB stem is unchanged) and the 28×28 digits are
//! zero-padded to 32×32 (MobileNetV2's smallest input); normalised with mean 0.1307, std 0.3081.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::dataset::{Dataset, Part};
use crate::error::{Error, Result};
use crate::tensor::FeatureMap;

pub const MNIST_MEAN: f32 = 0.1307;
pub const MNIST_STD: f32 = 0.3081;
const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;
/// Largest decompressed IDX file accepted.
const MAX_IDX_BYTES: u64 = 1 << 30;
/// Output side after padding.
pub const MNIST_PADDED: usize = 32;

pub struct Mnist {
    dir: PathBuf,
    rows: usize,
    cols: usize,
    images: Vec<u8>,
    labels: Vec<u8>,
}

fn read_maybe_gz(dir: &Path, stem: &str) -> Result<(PathBuf, Vec<u8>)> {
    let raw = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    if raw.exists() {
        return std::fs::read(&raw).map(|b| (raw.clone(), b)).map_err(|e| Error::io(&raw, e));
    }
    if gz.exists() {
        let f = std::fs::File::open(&gz).map_err(|e| Error::io(&gz, e))?;
        let mut out = Vec::new();
        // Bounded: a gzip bomb must not exhaust memory (the full MNIST training images are 47 MB).
        flate2::read::GzDecoder::new(f)
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::file("MNIST file", &gz, format!("not valid gzip ({e})")))?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(Error::file("MNIST file", &gz, format!("decompresses to more than {MAX_IDX_BYTES} bytes; not an MNIST-sized IDX file")));
        }
        return Ok((gz, out));
    }
    Err(Error::file("MNIST folder", dir, format!("has neither {stem} nor {stem}.gz")))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Mnist {
    /// Reads the training or the test file pair of `dir`.
    ///
    /// # Errors
    /// Missing files, bad gzip, a malformed IDX header or labels out of range.
    pub fn open(dir: &Path, part: Part) -> Result<Self> {
        let prefix = match part {
            Part::Train => "train",
            Part::Test => "t10k",
        };
        let (ip, img) = read_maybe_gz(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let (lp, lab) = read_maybe_gz(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        Mnist::from_bytes(dir, &img, &ip, &lab, &lp)
    }

    /// Parses an IDX image file and its label file (`dir`, `ip` and `lp` only name them).
    ///
    /// # Errors
    /// Wrong magic numbers, a header that does not match the bytes, 0×0 or oversized images, labels
    /// out of range.
    pub fn from_bytes(dir: &Path, img: &[u8], ip: &Path, lab: &[u8], lp: &Path) -> Result<Self> {
        if img.len() < 16 || be32(img, 0) != IMAGES_MAGIC {
            return Err(Error::file("MNIST images", ip, format!("wrong magic number (expected {IMAGES_MAGIC}); is this an idx3-ubyte image file?")));
        }
        if lab.len() < 8 || be32(lab, 0) != LABELS_MAGIC {
            return Err(Error::file("MNIST labels", lp, format!("wrong magic number (expected {LABELS_MAGIC}); is this an idx1-ubyte label file?")));
        }
        let (n, rows, cols) = (be32(img, 4) as usize, be32(img, 8) as usize, be32(img, 12) as usize);
        if rows == 0 || cols == 0 {
            return Err(Error::file("MNIST images", ip, format!("header declares {rows}×{cols} images; an image needs at least 1×1 pixels")));
        }
        let expected = n.checked_mul(rows).and_then(|v| v.checked_mul(cols)).and_then(|v| v.checked_add(16));
        if expected != Some(img.len()) {
            return Err(Error::file(
                "MNIST images",
                ip,
                format!("header says {n} images of {rows}×{cols} but the file holds {} bytes (truncated?)", img.len()),
            ));
        }
        let nl = be32(lab, 4) as usize;
        if nl != n || lab.len() != 8 + n {
            return Err(Error::file("MNIST labels", lp, format!("{nl} labels in a {}-byte file for {n} images", lab.len())));
        }
        if rows > MNIST_PADDED || cols > MNIST_PADDED {
            return Err(Error::file("MNIST images", ip, format!("{rows}×{cols} images are larger than {MNIST_PADDED}×{MNIST_PADDED}")));
        }
        if let Some(l) = lab[8..].iter().find(|&&l| l >= 10) {
            return Err(Error::file("MNIST labels", lp, format!("label {l} out of range 0..10")));
        }
        Ok(Mnist { dir: dir.to_path_buf(), rows, cols, images: img[16..].to_vec(), labels: lab[8..].to_vec() })
    }
}

impl Mnist {
    /// The label of every image, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
}

impl Dataset for Mnist {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn native_resolution(&self) -> Option<usize> {
        Some(MNIST_PADDED)
    }
    fn classes(&self) -> usize {
        10
    }
    fn image(&self, i: usize) -> Result<(FeatureMap, usize)> {
        let (r, c, p) = (self.rows, self.cols, MNIST_PADDED);
        let (top, left) = ((p - r) / 2, (p - c) / 2);
        let bg = (0.0 - MNIST_MEAN) / MNIST_STD;
        let mut plane = vec![bg; p * p];
        let src = &self.images[i * r * c..(i + 1) * r * c];
        for y in 0..r {
            for x in 0..c {
                plane[(top + y) * p + left + x] = (src[y * c + x] as f32 / 255.0 - MNIST_MEAN) / MNIST_STD;
            }
        }
        let chw = [plane.clone(), plane.clone(), plane].concat();
        Ok((FeatureMap::from_chw(3, p, p, chw)?, self.labels[i] as usize))
    }
    fn describe(&self) -> String {
        format!("mnist:{} ({} images)", self.dir.display(), self.len())
    }
}
