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
        out.reshape(self.out_features(), 1, 1);
        let xs = x.as_slice();
        for (j, o) in out.as_mut_slice().iter_mut().enumerate() {
            let col = &self.weight.as_slice()[j * self.in_features()..(j + 1) * self.in_features()];
            *o = self.bias[j] + col.iter().zip(xs).map(|(a, b)| a * b).sum::<f32>();
        }
    }
}
