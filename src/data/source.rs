//! Streams of input batches for the analyses: an image folder, an NCHW `.npy`, or seeded Gaussian
//! noise. Each yields batches of at most a given size, so memory stays constant for any input count.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::images::{list_images, load_image, Preprocess};
use crate::error::{Error, Result};
use crate::tensor::{Batch, FeatureMap};

/// A finite stream of input batches.
pub trait BatchSource {
    /// Number of images in total.
    fn total(&self) -> usize;
    /// The next batch of at most `max` images, `None` at the end.
    ///
    /// # Errors
    /// An unreadable or malformed input.
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>>;
    /// A one-line description for metadata.
    fn describe(&self) -> String;
}

/// PNG/JPEG files of a folder, in sorted order.
pub struct ImageFolderSource {
    dir: PathBuf,
    files: Vec<PathBuf>,
    next: usize,
    resolution: usize,
    mode: Preprocess,
}

impl ImageFolderSource {
    /// # Errors
    /// An unreadable folder, or one without PNG/JPEG files.
    pub fn new(dir: &Path, resolution: usize, mode: Preprocess) -> Result<Self> {
        Ok(ImageFolderSource { dir: dir.to_path_buf(), files: list_images(dir)?, next: 0, resolution, mode })
    }
}

impl BatchSource for ImageFolderSource {
    fn total(&self) -> usize {
        self.files.len()
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        if self.next >= self.files.len() {
            return Ok(None);
        }
        let end = (self.next + max.max(1)).min(self.files.len());
        let maps = self.files[self.next..end].iter().map(|f| load_image(f, self.resolution, self.mode)).collect::<Result<Vec<_>>>()?;
        self.next = end;
        Batch::new(maps).map(Some)
    }
    fn describe(&self) -> String {
        format!("images:{} ({} files, preprocess {:?})", self.dir.display(), self.files.len(), self.mode)
    }
}

/// An NCHW float32 `.npy`, read image by image.
pub struct NpySource {
    path: PathBuf,
    shape: [usize; 4],
    reader: npyz::NpyReader<f32, BufReader<std::fs::File>>,
    next: usize,
}

impl NpySource {
    /// # Errors
    /// Not a `.npy` file, not rank-4 NCHW with 3 channels, Fortran order, a dtype other than float32.
    pub fn new(path: &Path) -> Result<Self> {
        let bad = |r: String| Error::file("npy file", path, r);
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let file = npyz::NpyFile::new(BufReader::new(f)).map_err(|e| bad(format!("not a valid .npy file ({e})")))?;
        let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
        let shape: [usize; 4] =
            shape.as_slice().try_into().map_err(|_| bad(format!("has shape {shape:?} (rank {}); expected a rank-4 NCHW batch", shape.len())))?;
        if shape[1] != 3 {
            return Err(bad(format!("has {} channels (shape {shape:?}); expected NCHW with C = 3", shape[1])));
        }
        if file.order() != npyz::Order::C {
            return Err(bad("array is in Fortran order; save it with np.ascontiguousarray(x)".into()));
        }
        // The header's shape must fit the file: a tiny file declaring a huge array is refused, not allocated.
        let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        let declared = shape.iter().try_fold(4u64, |acc, &d| acc.checked_mul(d as u64));
        if declared.is_none_or(|b| b > len) {
            return Err(bad(format!(
                "header declares shape {shape:?} ({} bytes of float32) but the file has {len} bytes (truncated?)",
                declared.map_or("too many".to_string(), |b| b.to_string())
            )));
        }
        let descr = file.dtype().descr();
        let reader = file.data::<f32>().map_err(|_| bad(format!("dtype {} is not float32; convert with x.astype(np.float32)", descr.trim_matches('\''))))?;
        Ok(NpySource { path: path.to_path_buf(), shape, reader, next: 0 })
    }
}

impl BatchSource for NpySource {
    fn total(&self) -> usize {
        self.shape[0]
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        let [n, c, h, w] = self.shape;
        if self.next >= n {
            return Ok(None);
        }
        let end = (self.next + max.max(1)).min(n);
        let mut maps = Vec::with_capacity(end - self.next);
        for _ in self.next..end {
            let mut chw = Vec::with_capacity(c * h * w);
            for _ in 0..c * h * w {
                let v = self.reader.next().ok_or_else(|| Error::file("npy file", &self.path, "truncated data"))?;
                chw.push(v.map_err(|e| Error::file("npy file", &self.path, format!("truncated data ({e})")))?);
            }
            maps.push(FeatureMap::from_chw(c, h, w, chw)?);
        }
        self.next = end;
        Batch::new(maps).map(Some)
    }
    fn describe(&self) -> String {
        format!("npy:{} (shape {:?})", self.path.display(), self.shape)
    }
}

/// Seeded N(0, 1) images (what a normalised input looks like to a network at initialisation).
pub struct NoiseSource {
    pub count: usize,
    pub resolution: usize,
    pub seed: u64,
    next: usize,
}

impl NoiseSource {
    pub fn new(count: usize, resolution: usize, seed: u64) -> Self {
        NoiseSource { count, resolution, seed, next: 0 }
    }

    /// Most noise images one analysis may ask for.
    pub const MAX_COUNT: usize = 10_000_000;
}

impl BatchSource for NoiseSource {
    fn total(&self) -> usize {
        self.count
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        if self.next >= self.count {
            return Ok(None);
        }
        let end = (self.next + max.max(1)).min(self.count);
        // One seeded stream per image: the same images whatever the batch size.
        let maps = (self.next..end)
            .map(|i| {
                super::noise::random_batch(1, self.resolution, self.seed.wrapping_mul(1_000_003).wrapping_add(i as u64)).map(|b| b.into_images().remove(0))
            })
            .collect::<Result<Vec<_>>>()?;
        self.next = end;
        Batch::new(maps).map(Some)
    }
    fn describe(&self) -> String {
        format!("noise:{} images, seed {}", self.count, self.seed)
    }
}

/// Images already in memory (e.g. a NumPy array from the Python front), in order.
pub struct VecSource {
    images: Vec<FeatureMap>,
    next: usize,
}

impl VecSource {
    pub fn new(batch: Batch) -> Self {
        VecSource { images: batch.into_images(), next: 0 }
    }
}

impl BatchSource for VecSource {
    fn total(&self) -> usize {
        self.images.len()
    }
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        if self.next >= self.images.len() {
            return Ok(None);
        }
        let end = (self.next + max.max(1)).min(self.images.len());
        let maps = self.images[self.next..end].to_vec();
        self.next = end;
        Batch::new(maps).map(Some)
    }
    fn describe(&self) -> String {
        format!("in-memory batch of {} images", self.images.len())
    }
}
