//! Batched activations for training: one tensor for the whole batch, laid out `[channel][image][y·x]`,
//! i.e. an `(N·H·W) × C` column-major matrix. A 1×1 convolution is then one GEMM over the whole batch
//! and BatchNorm's per-channel statistics are reductions over one contiguous column.

use crate::error::Result;
use crate::tensor::{Batch, FeatureMap};

/// `N × C × H × W` activations in `[c][n][h·w]` order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Act {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Act {
    pub fn zeros(n: usize, c: usize, h: usize, w: usize) -> Self {
        Act { n, c, h, w, data: vec![0.0; n * c * h * w] }
    }
    /// Positions per image.
    pub fn hw(&self) -> usize {
        self.h * self.w
    }
    /// Rows of the matrix view: `N·H·W`.
    pub fn m(&self) -> usize {
        self.n * self.hw()
    }
    /// Channel `c` over all images (`N·H·W` values).
    pub fn col(&self, c: usize) -> &[f32] {
        let m = self.m();
        &self.data[c * m..(c + 1) * m]
    }
    pub fn col_mut(&mut self, c: usize) -> &mut [f32] {
        let m = self.m();
        &mut self.data[c * m..(c + 1) * m]
    }
    /// The `H·W` plane of channel `c`, image `i`.
    pub fn plane(&self, c: usize, i: usize) -> &[f32] {
        let hw = self.hw();
        &self.data[(c * self.n + i) * hw..(c * self.n + i + 1) * hw]
    }
    /// From a batch of CHW maps.
    pub fn from_batch(b: &Batch) -> Self {
        let [n, c, h, w] = b.shape();
        let mut a = Act::zeros(n, c, h, w);
        let hw = h * w;
        for (i, img) in b.images().iter().enumerate() {
            for ch in 0..c {
                a.data[(ch * n + i) * hw..(ch * n + i + 1) * hw].copy_from_slice(img.channel(ch));
            }
        }
        a
    }
    /// Image `i` as a CHW map.
    ///
    /// # Errors
    /// An image index out of range.
    pub fn image(&self, i: usize) -> Result<FeatureMap> {
        let chw = (0..self.c).flat_map(|c| self.plane(c, i).iter().copied()).collect();
        FeatureMap::from_chw(self.c, self.h, self.w, chw)
    }
    /// Element-wise `self += other`.
    pub fn add_assign(&mut self, other: &Act) {
        self.data.iter_mut().zip(&other.data).for_each(|(a, b)| *a += b);
    }
    /// Same shape, zeros.
    pub fn zeros_like(&self) -> Self {
        Act::zeros(self.n, self.c, self.h, self.w)
    }
}
