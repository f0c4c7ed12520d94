//! Training-time augmentation, a pure function of a seed: a random crop with 4 pixels of zero padding
//! and a horizontal flip. The seed of each image is mixed from (run seed, epoch, image index).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::tensor::FeatureMap;

/// Random crop with 4 pixels of zero padding and a horizontal flip, a pure function of `seed`.
pub fn augment(img: &FeatureMap, seed: u64) -> FeatureMap {
    let mut rng = StdRng::seed_from_u64(seed);
    let (dy, dx) = (rng.random_range(0..9usize) as isize - 4, rng.random_range(0..9usize) as isize - 4);
    let flip = rng.random::<bool>();
    let [c, h, w] = img.shape();
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
