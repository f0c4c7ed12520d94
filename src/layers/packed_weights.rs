//! The packed forms of one layer's 1×1 weight, made on first use and kept with the layer: the
//! weights of a network are fixed between [`super::ConvBn::refold`]s, so packing them on every
//! product (and, in a batch, on every image) is work done once per layer instead. Which form a
//! product uses depends on its number of positions, known only at run time (see
//! [`super::matmul::matmul_bands`]).

use std::sync::OnceLock;

use super::gemm_channels::PackedChannels;
use super::gemm_kernel::PackedB;

/// Lazily packed weights of one `k × n` matrix (column-major, column stride `k`).
#[derive(Clone, Debug, Default)]
pub struct PackedWeights {
    /// Panels of output channels for [`super::gemm_kernel`] (positions as vectors).
    rows: OnceLock<PackedB>,
    /// Panels of 48 channels for [`super::gemm_channels`] (channels as vectors).
    channels: OnceLock<PackedChannels>,
}

/// Packed forms are derived from the folded weight, which the layer's own equality compares.
impl PartialEq for PackedWeights {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl PackedWeights {
    /// `b` packed for [`super::gemm_kernel::gemm_rows`] (packed now if this is the first use).
    ///
    /// # Panics
    /// When an earlier use packed a matrix of another shape.
    pub fn rows(&self, b: &[f32], k: usize, n: usize) -> &PackedB {
        let packed = self.rows.get_or_init(|| {
            let mut p = PackedB::default();
            p.pack(b, k, n, k);
            p
        });
        assert_eq!(packed.shape(), (k, n), "PackedWeights: packed for another shape");
        packed
    }

    /// `b` packed for [`super::gemm_channels::gemm_channels`] (packed now if this is the first use).
    ///
    /// # Panics
    /// When an earlier use packed a matrix of another shape.
    pub fn channels(&self, b: &[f32], k: usize, n: usize) -> &PackedChannels {
        let packed = self.channels.get_or_init(|| PackedChannels::pack(b, k, n, k));
        assert_eq!(packed.shape(), (k, n), "PackedWeights: packed for another shape");
        packed
    }
}
