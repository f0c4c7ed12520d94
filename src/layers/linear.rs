//! Fully connected layer `y = W x + b` (the classifier). `weight` is `in × out` column-major, i.e.
//! PyTorch's `[out, in]` weight byte for byte.

use nalgebra::DMatrix;

use crate::tensor::FeatureMap;

/// A linear layer with bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub weight: DMatrix<f32>,
    pub bias: Vec<f32>,
}

impl Linear {
    pub fn in_features(&self) -> usize {
        self.weight.nrows()
    }
    pub fn out_features(&self) -> usize {
        self.weight.ncols()
    }

    /// `out = Wᵀ x + b` for a 1×1 feature map `x`.
    pub fn forward(&self, x: &FeatureMap, out: &mut FeatureMap) {
        self.forward_threads(x, out, 1);
    }

    /// [`Linear::forward`] with the outputs spread over `threads` rayon workers when `threads > 1`
    /// (a batch of one); each output is the same dot product either way.
    pub fn forward_threads(&self, x: &FeatureMap, out: &mut FeatureMap, threads: usize) {
        use rayon::prelude::*;
        out.reshape(self.out_features(), 1, 1);
        let (xs, k) = (x.as_slice(), self.in_features());
        let one = |(j, o): (usize, &mut f32)| *o = self.bias[j] + dot(&self.weight.as_slice()[j * k..(j + 1) * k], xs);
        if threads > 1 {
            out.as_mut_slice().par_iter_mut().enumerate().with_min_len(64).for_each(one);
        } else {
            out.as_mut_slice().iter_mut().enumerate().for_each(one);
        }
    }
}

/// Dot product with 16 independent partial sums (vectorisable; fixed order, so deterministic).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [0.0f32; 16];
    let (ac, bc) = (a[..n].chunks_exact(16), b[..n].chunks_exact(16));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}
