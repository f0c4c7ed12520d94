//! Global average pooling: the mean of each channel plane.

use crate::tensor::FeatureMap;

/// `out[c] = mean over positions of x[c]`, written as a 1×1 feature map.
pub fn global_average_pool(x: &FeatureMap, out: &mut FeatureMap) {
    out.reshape(x.channels(), 1, 1);
    let n = x.positions() as f32;
    for c in 0..x.channels() {
        let s: f32 = x.channel(c).iter().sum();
        out.as_mut_slice()[c] = s / n;
    }
}
