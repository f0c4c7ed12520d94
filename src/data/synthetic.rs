//! The embedded default data set: 10 classes of 32×32 RGB images drawn procedurally, so a fresh
//! machine needs no download. Image `i` is a pure function of `(seed, i)`: class `i mod 10`, one shape
//! at a random position, scale, rotation and colour over a noisy, textured background.
//!
//! Classes: 0 disk, 1 square, 2 triangle, 3 ring, 4 cross, 5 bar (one thick stroke), 6 striped disk,
//! 7 checkered square, 8 crescent, 9 pair of dots. (Class 5 was first a plus sign, which under
//! the random rotation is the cross up to its outline: a network confused the two 95% of the time.)

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::dataset::Dataset;
use crate::error::Result;
use crate::tensor::FeatureMap;

/// Number of classes of the synthetic set.
pub const SYNTHETIC_CLASSES: usize = 10;
/// Side of a synthetic image.
pub const SYNTHETIC_SIZE: usize = 32;
/// Class names, in label order.
pub const SYNTHETIC_NAMES: [&str; 10] = ["disk", "square", "triangle", "ring", "cross", "bar", "striped", "checkered", "crescent", "dots"];
/// Normalisation of the synthetic pixels: (x/255 − 0.5) / 0.25.
pub const SYNTHETIC_MEAN: f32 = 0.5;
pub const SYNTHETIC_STD: f32 = 0.25;

/// `count` synthetic images starting at index `offset` (train and validation use disjoint ranges).
#[derive(Clone, Debug, PartialEq)]
pub struct Synthetic {
    pub seed: u64,
    pub offset: usize,
    pub count: usize,
}

impl Synthetic {
    /// The pixels (RGB, 0–255 as f32, CHW) and label of image `index`.
    pub fn render(seed: u64, index: usize) -> (Vec<f32>, usize) {
        let label = index % SYNTHETIC_CLASSES;
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let n = SYNTHETIC_SIZE;
        let bg: [f32; 3] = [rng.random_range(0.0..255.0), rng.random_range(0.0..255.0), rng.random_range(0.0..255.0)];
        // Shape colour far enough from the background to be visible.
        let mut fg = [0.0f32; 3];
        loop {
            for c in &mut fg {
                *c = rng.random_range(0.0..255.0);
            }
            if fg.iter().zip(&bg).map(|(a, b)| (a - b).abs()).sum::<f32>() > 150.0 {
                break;
            }
        }
        // Background texture: a low-frequency sinusoid plus per-pixel noise.
        // 6.28, not τ: the constant is part of the data set's definition (τ would change every image).
        #[allow(clippy::approx_constant)]
        let (fx, fy, ph) = (rng.random_range(0.1..0.6f32), rng.random_range(0.1..0.6f32), rng.random_range(0.0..6.28f32));
        let tex = rng.random_range(10.0..40.0f32);
        let r = rng.random_range(6.0..12.0f32);
        let cx = rng.random_range(r..n as f32 - r);
        let cy = rng.random_range(r..n as f32 - r);
        let theta = rng.random_range(0.0..std::f32::consts::TAU);
        let (s, c) = theta.sin_cos();
        let mut px = vec![0.0f32; 3 * n * n];
        for y in 0..n {
            for x in 0..n {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                let (u, v) = (c * dx + s * dy, -s * dx + c * dy);
                let inside = shape_contains(label, u, v, r);
                let wave = tex * (fx * x as f32 + fy * y as f32 + ph).sin();
                for ch in 0..3 {
                    let noise = rng.random_range(-20.0..20.0f32);
                    let base = if inside { fg[ch] } else { bg[ch] + wave };
                    px[ch * n * n + y * n + x] = (base + noise).clamp(0.0, 255.0);
                }
            }
        }
        (px, label)
    }
}

/// Whether the point (u, v) in the shape's rotated frame lies inside shape `label` of radius `r`.
pub fn shape_contains(label: usize, u: f32, v: f32, r: f32) -> bool {
    let d = (u * u + v * v).sqrt();
    let w = 0.22 * r;
    match label {
        0 => d < r,
        1 => u.abs().max(v.abs()) < 0.8 * r,
        2 => {
            // Equilateral triangle with circumradius r, apex up.
            let k = 3f32.sqrt();
            v > -0.5 * r && k * u - v < r && -k * u - v < r
        }
        3 => d < r && d > 0.55 * r,
        4 => d < r && ((u - v).abs() < w * 1.4 || (u + v).abs() < w * 1.4),
        5 => u.abs() < r && v.abs() < 1.3 * w,
        6 => d < r && ((v / (r / 3.0)).floor() as i32).rem_euclid(2) == 0,
        7 => u.abs().max(v.abs()) < 0.85 * r && (((u / (r / 2.0)).floor() + (v / (r / 2.0)).floor()) as i32).rem_euclid(2) == 0,
        8 => d < r && ((u - 0.45 * r).powi(2) + v * v).sqrt() > 0.75 * r,
        _ => ((u - 0.5 * r).powi(2) + v * v).sqrt() < 0.38 * r || ((u + 0.5 * r).powi(2) + v * v).sqrt() < 0.38 * r,
    }
}

impl Dataset for Synthetic {
    fn len(&self) -> usize {
        self.count
    }
    fn native_resolution(&self) -> Option<usize> {
        Some(SYNTHETIC_SIZE)
    }
    fn classes(&self) -> usize {
        SYNTHETIC_CLASSES
    }
    fn image(&self, i: usize) -> Result<(FeatureMap, usize)> {
        let (px, label) = Synthetic::render(self.seed, self.offset + i);
        let norm = px.iter().map(|&v| (v / 255.0 - SYNTHETIC_MEAN) / SYNTHETIC_STD).collect();
        Ok((FeatureMap::from_chw(3, SYNTHETIC_SIZE, SYNTHETIC_SIZE, norm)?, label))
    }
    fn describe(&self) -> String {
        format!("synthetic (seed {}, images {}..{})", self.seed, self.offset, self.offset + self.count)
    }
}
