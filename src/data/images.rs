//! PNG/JPEG images to network inputs, with the two documented preprocessings:
//!
//! - `torchvision` (default, ImageNet models): resize the shorter side to `round(res · 256/224)`
//!   (triangle filter, i.e. antialiased bilinear), centre-crop `res × res`, scale to [0, 1], normalise
//!   with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
//! - `keras` (`keras.applications.mobilenet_v2`): same resize and crop, then `x / 127.5 − 1` ∈ [−1, 1].

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::FeatureMap;

/// torchvision's ImageNet normalisation.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How pixels become network inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    #[default]
    Torchvision,
    Keras,
}

/// Image file extensions read by folders (lower case).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Sorted image files directly inside `dir` (sorted for reproducibility).
///
/// # Errors
/// An unreadable folder, or one without PNG/JPEG files.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().and_then(|x| x.to_str()).is_some_and(|x| IMAGE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str())))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::file("image folder", dir, "contains no .png/.jpg/.jpeg files"));
    }
    Ok(files)
}

/// Largest image side decoded, and the most memory one decode may allocate: a forged header cannot
/// make the decoder allocate without bound.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
pub const MAX_IMAGE_ALLOC: u64 = 1 << 30;

/// Loads one image file and preprocesses it to a 3×res×res map.
///
/// # Errors
/// An unreadable file, an undecodable or oversized image.
pub fn load_image(path: &Path, resolution: usize, mode: Preprocess) -> Result<FeatureMap> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(preprocess(&decode_image(&bytes, path)?, resolution, mode))
}

/// Decodes PNG or JPEG bytes (`path` only names them in messages), within [`MAX_IMAGE_SIDE`] and
/// [`MAX_IMAGE_ALLOC`].
///
/// # Errors
/// Bytes that are not a supported image, or one over the limits.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<image::RgbImage> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::io(path, e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    let img =
        reader.decode().map_err(|e| Error::file("image", path, format!("cannot decode ({e}); supported: PNG, JPEG up to {MAX_IMAGE_SIDE} pixels a side")))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::file("image", path, "has no pixels"));
    }
    Ok(img.to_rgb8())
}

/// Resize (shorter side to `round(res·256/224)`), centre crop, normalise.
///
/// # Panics
/// When `resolution` is 0.
pub fn preprocess(img: &image::RgbImage, resolution: usize, mode: Preprocess) -> FeatureMap {
    let (w, h) = img.dimensions();
    let short = ((resolution as f64) * 256.0 / 224.0).round().max(resolution as f64) as u32;
    let (nw, nh) =
        if w <= h { (short, ((h as f64) * short as f64 / w as f64).round() as u32) } else { (((w as f64) * short as f64 / h as f64).round() as u32, short) };
    let resized = image::imageops::resize(img, nw.max(1), nh.max(1), FilterType::Triangle);
    let r = resolution as u32;
    let (x0, y0) = ((nw.saturating_sub(r)) / 2, (nh.saturating_sub(r)) / 2);
    let mut chw = vec![0.0f32; 3 * resolution * resolution];
    for y in 0..resolution {
        for x in 0..resolution {
            let px = resized.get_pixel((x0 + x as u32).min(nw - 1), (y0 + y as u32).min(nh - 1));
            for c in 0..3 {
                let v = px[c] as f32;
                chw[c * resolution * resolution + y * resolution + x] = match mode {
                    Preprocess::Torchvision => (v / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c],
                    Preprocess::Keras => v / 127.5 - 1.0,
                };
            }
        }
    }
    FeatureMap::from_chw(3, resolution, resolution, chw).expect("3×res×res buffer")
}
