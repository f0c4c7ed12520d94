//! Image folders: one sub-folder per class (sorted names = class indices), PNG/JPEG files inside,
//! preprocessed like `--images` (resize, centre crop, ImageNet normalisation). A seeded shuffle holds
//! out 10% of every class for validation.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::dataset::{Dataset, Split, FOLDER_VAL_FRACTION};
use super::images::{list_images, load_image, Preprocess};
use crate::error::{Error, Result};
use crate::tensor::FeatureMap;

pub struct ImageFolder {
    dir: PathBuf,
    items: Vec<(PathBuf, usize)>,
    classes: usize,
    resolution: usize,
}

impl ImageFolder {
    /// # Errors
    /// An unreadable folder, one without class sub-folders.
    pub fn open(dir: &Path, split: Split, resolution: usize, seed: u64) -> Result<Self> {
        let mut class_dirs: Vec<PathBuf> =
            std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        class_dirs.sort();
        if class_dirs.is_empty() {
            return Err(Error::file("image folder", dir, "has no class sub-folders; expect DIR/<class>/<image>.png"));
        }
        let mut items = Vec::new();
        for (label, cd) in class_dirs.iter().enumerate() {
            let mut files = list_images(cd)?;
            files.shuffle(&mut StdRng::seed_from_u64(seed ^ label as u64));
            let n_val = ((files.len() as f64 * FOLDER_VAL_FRACTION).round() as usize).min(files.len().saturating_sub(1));
            let chosen: Vec<PathBuf> = match split {
                Split::Val | Split::Test => files[..n_val].to_vec(),
                Split::Train => files[n_val..].to_vec(),
            };
            items.extend(chosen.into_iter().map(|f| (f, label)));
        }
        Ok(ImageFolder { dir: dir.to_path_buf(), items, classes: class_dirs.len(), resolution })
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.items.len()
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn image(&self, i: usize) -> Result<(FeatureMap, usize)> {
        let (path, label) = &self.items[i];
        Ok((load_image(path, self.resolution, Preprocess::Torchvision)?, *label))
    }
    fn describe(&self) -> String {
        format!("folder:{} ({} classes, {} images)", self.dir.display(), self.classes, self.items.len())
    }
}
