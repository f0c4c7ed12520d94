//! Training-time augmentation, a pure function of a seed: a random crop of the zero-padded image and,
//! where the data allow it, a horizontal flip. The seed of each image is mixed from (run seed, epoch,
//! image index).
//!
//! Which augmentation fits depends on the data: a flipped digit is another digit, a flipped shirt is
//! a shirt. [`Augment::default_for`] picks per data source — digits (`mnist:DIR`) `crop`, Fashion-MNIST,
//! CIFAR, folders and the synthetic shapes `crop-flip`. The padding scales with the image: one eighth
//! of the side for `crop-flip` (4 pixels at 32×32, the CIFAR convention), one sixteenth for `crop`
//! (2 pixels at 32×32, the usual shift for digits, which fill their box).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::error::{Error, Result};
use crate::tensor::FeatureMap;

/// The augmentation of a training run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// Images as they are.
    None,
    /// Random crop of the image zero-padded by [`crop_padding_small`] (shifts of ±2 pixels at 32×32).
    Crop,
    /// Random crop of the image zero-padded by [`crop_padding`] (±4 at 32×32) and a horizontal flip
    /// with probability ½.
    CropFlip,
}

impl Augment {
    /// The default for a data source: crop only for digits, crop and flip otherwise.
    pub fn default_for(data: &DataSpec) -> Augment {
        match data {
            DataSpec::Mnist(_) => Augment::Crop,
            DataSpec::Synthetic | DataSpec::Cifar(_) | DataSpec::FashionMnist(_) | DataSpec::Folder(_) => Augment::CropFlip,
        }
    }

    /// The name as flags and specs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Augment::None => "none",
            Augment::Crop => "crop",
            Augment::CropFlip => "crop-flip",
        }
    }

    /// Applies the augmentation to one image, a pure function of `seed`.
    pub fn apply(self, img: FeatureMap, seed: u64) -> FeatureMap {
        match self {
            Augment::None => img,
            Augment::Crop => crop_flip(&img, seed, crop_padding_small, false),
            Augment::CropFlip => crop_flip(&img, seed, crop_padding, true),
        }
    }
}

impl std::str::FromStr for Augment {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Augment::None),
            "crop" => Ok(Augment::Crop),
            "crop-flip" => Ok(Augment::CropFlip),
            _ => Err(Error::config("augment", s, "use none, crop or crop-flip (or leave it out for the data set's default)")),
        }
    }
}

/// Reads `"none" | "crop" | "crop-flip"`, and the booleans of older specs and checkpoints
/// (`true` = crop-flip, `false` = none).
impl<'de> Deserialize<'de> for Augment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Augment::CropFlip),
            Raw::Bool(false) => Ok(Augment::None),
            Raw::Name(s) => s.parse().map_err(|_| serde::de::Error::custom(format!("unknown augment {s:?}: use none, crop or crop-flip"))),
        }
    }
}

/// Random crop and horizontal flip, a pure function of `seed`.
pub fn augment(img: &FeatureMap, seed: u64) -> FeatureMap {
    Augment::CropFlip.apply(img.clone(), seed)
}

/// Zero padding of `crop-flip` for a side: one eighth (4 at 32), at least 1.
pub fn crop_padding(side: usize) -> usize {
    (side / 8).max(1)
}

/// Zero padding of `crop` (digits) for a side: one sixteenth (2 at 32), at least 1.
pub fn crop_padding_small(side: usize) -> usize {
    (side / 16).max(1)
}

/// The crop offset is drawn first, then (with `flip`) the flip, so `crop-flip` at 32×32 is the
/// augmentation infoloss always had.
fn crop_flip(img: &FeatureMap, seed: u64, padding: fn(usize) -> usize, flip: bool) -> FeatureMap {
    let mut rng = StdRng::seed_from_u64(seed);
    let [c, h, w] = img.shape();
    let (py, px) = (padding(h), padding(w));
    let dy = rng.random_range(0..2 * py + 1) as isize - py as isize;
    let dx = rng.random_range(0..2 * px + 1) as isize - px as isize;
    let flip = flip && rng.random::<bool>();
    let mut out = FeatureMap::zeros(c, h, w);
    for ch in 0..c {
        let src = img.channel(ch);
        let dst = out.channel_mut(ch);
        for y in 0..h {
            let sy = y as isize + dy;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            for x in 0..w {
                let xx = if flip { w - 1 - x } else { x };
                let sx = xx as isize + dx;
                if sx >= 0 && sx < w as isize {
                    dst[y * w + x] = src[sy as usize * w + sx as usize];
                }
            }
        }
    }
    out
}

/// Mixes two seeds into one (a fixed scramble), for the per-epoch and per-image streams.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    (a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(29)
}
