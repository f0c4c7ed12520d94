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

impl Linear {
    /// [`Linear::forward`] for a batch: row `i` of `out` (`n × out_features`, resized) from `xs[i]`.
    /// Each weight row is read once for the whole batch (the images' inputs stay in cache) instead of
    /// once per image; every output is the same dot product as [`Linear::forward`]'s, so the logits
    /// of an image do not depend on the batch it is in. With `threads > 1` the outputs are spread over
    /// the threads: on [`crate::fork_join`] for a batch smaller than `threads`, else on rayon's workers.
    pub fn forward_batch(&self, xs: &[&[f32]], out: &mut DMatrix<f32>, threads: usize) {
        use rayon::prelude::*;
        let (n, k) = (xs.len(), self.in_features());
        if out.shape() != (n, self.out_features()) {
            *out = DMatrix::zeros(n, self.out_features());
        }
        let w = self.weight.as_slice();
        // Column j of the column-major `out` holds output j of every image.
        let one = |(j, col): (usize, &mut [f32])| {
            let row = &w[j * k..(j + 1) * k];
            for (o, x) in col.iter_mut().zip(xs) {
                *o = self.bias[j] + dot(row, x);
            }
        };
        if n == 0 {
            return;
        }
        if threads > 1 && n < threads {
            // A batch of one: bands of outputs on the fork-join threads.
            let outputs = self.out_features();
            let dst = crate::layers::matmul::SendPtr(out.as_mut_slice().as_mut_ptr());
            let band = |i: usize| {
                for j in outputs * i / threads..outputs * (i + 1) / threads {
                    // SAFETY: `out` is n × outputs (resized above) and borrowed here; the bands are
                    // disjoint ranges of outputs, each column written by one band.
                    one((j, unsafe { std::slice::from_raw_parts_mut(dst.get().add(j * n), n) }));
                }
            };
            crate::fork_join::fork_join(threads, threads, &band);
        } else if threads > 1 {
            out.as_mut_slice().par_chunks_mut(n).enumerate().with_min_len(16).for_each(one);
        } else {
            out.as_mut_slice().chunks_mut(n).enumerate().for_each(one);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The batched classifier gives each image the bits of the one-image forward (1 and 3 threads).
    #[test]
    fn batch_equals_one_image_at_a_time_bit_for_bit() {
        let (k, m, n) = (37, 11, 5);
        let lin = Linear {
            weight: DMatrix::from_fn(k, m, |r, c| ((r * 31 + c * 17) % 23) as f32 * 0.07 - 0.8),
            bias: (0..m).map(|j| j as f32 * 0.1 - 0.5).collect(),
        };
        let inputs: Vec<FeatureMap> =
            (0..n).map(|i| FeatureMap::from_chw(k, 1, 1, (0..k).map(|c| ((c * 7 + i * 13) % 19) as f32 * 0.11 - 1.0).collect()).expect("k×1×1")).collect();
        let xs: Vec<&[f32]> = inputs.iter().map(|x| x.as_slice()).collect();
        for threads in [1, 3] {
            let mut out = DMatrix::zeros(0, 0);
            lin.forward_batch(&xs, &mut out, threads);
            for (i, x) in inputs.iter().enumerate() {
                let mut one = FeatureMap::zeros(0, 1, 1);
                lin.forward(x, &mut one);
                for j in 0..m {
                    let naive: f64 = lin.bias[j] as f64 + (0..k).map(|c| lin.weight[(c, j)] as f64 * x.as_slice()[c] as f64).sum::<f64>();
                    assert_eq!(out[(i, j)].to_bits(), one.as_slice()[j].to_bits(), "image {i} output {j}");
                    assert!((out[(i, j)] as f64 - naive).abs() < 1e-5, "image {i} output {j}: {} vs {naive}", out[(i, j)]);
                }
            }
        }
    }
}
