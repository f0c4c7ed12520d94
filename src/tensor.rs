//! Feature maps: the one place where the memory layout of activations is stated.
//!
//! **Layout.** One image's activation tensor of shape C×H×W is an nalgebra `DMatrix<f32>` with
//! `H·W` rows (spatial positions, row-major: `p = y·W + x`) and `C` columns (channels). nalgebra is
//! column-major, so each channel plane is contiguous — exactly PyTorch's NCHW order for one image.
//! A 1×1 convolution is then the product `X (HW×Cin) · Wᵀ (Cin×Cout)`: the large spatial dimension is
//! the GEMM's M, the fast orientation on this hardware (see `shared/STACK.md`), and `Wᵀ` stored
//! column-major is byte-for-byte PyTorch's `[Cout, Cin, 1, 1]` weight.
//!
//! A [`Batch`] is a list of equally shaped feature maps; it converts to and from NCHW buffers.

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};

use crate::error::{Error, Result};

/// One image's activations: `H·W` positions × `C` channels, each channel plane contiguous.
///
/// The buffer may be longer than `C·H·W` (a reused workspace buffer keeps its largest size, so
/// re-shaping never writes memory); every accessor sees exactly the `C·H·W` values in use.
#[derive(Debug)]
pub struct FeatureMap {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Clone for FeatureMap {
    fn clone(&self) -> Self {
        FeatureMap { channels: self.channels, height: self.height, width: self.width, data: self.as_slice().to_vec() }
    }
}

impl PartialEq for FeatureMap {
    fn eq(&self, other: &Self) -> bool {
        self.shape() == other.shape() && self.as_slice() == other.as_slice()
    }
}

impl FeatureMap {
    /// All-zero map of `channels × height × width`.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        FeatureMap { channels, height, width, data: vec![0.0; channels * height * width] }
    }

    /// Map from a CHW buffer (PyTorch order for one image).
    ///
    /// # Errors
    /// A shape whose product does not match the data.
    pub fn from_chw(channels: usize, height: usize, width: usize, chw: Vec<f32>) -> Result<Self> {
        if channels.checked_mul(height).and_then(|v| v.checked_mul(width)) != Some(chw.len()) {
            return Err(Error::input("feature map", format!("buffer of {} values does not hold {channels}×{height}×{width}", chw.len())));
        }
        Ok(FeatureMap { channels, height, width, data: chw })
    }

    /// Map from a positions × channels matrix.
    ///
    /// # Errors
    /// The matrix does not have `height · width` rows.
    pub fn from_matrix(height: usize, width: usize, data: DMatrix<f32>) -> Result<Self> {
        if height.checked_mul(width) != Some(data.nrows()) {
            return Err(Error::input("feature map", format!("a matrix of {} rows cannot be a {height}×{width} map (rows must be height·width)", data.nrows())));
        }
        let channels = data.ncols();
        Ok(FeatureMap { channels, height, width, data: data.data.into() })
    }

    /// The first non-finite value as `(channel, y, x, value)`, if any.
    pub fn first_non_finite(&self) -> Option<(usize, usize, usize, f32)> {
        let p = self.positions().max(1);
        self.data.iter().position(|v| !v.is_finite()).map(|i| (i / p, (i % p) / self.width.max(1), i % self.width.max(1), self.data[i]))
    }

    pub fn channels(&self) -> usize {
        self.channels
    }
    pub fn height(&self) -> usize {
        self.height
    }
    pub fn width(&self) -> usize {
        self.width
    }
    /// Number of spatial positions, `H·W`.
    pub fn positions(&self) -> usize {
        self.height * self.width
    }
    /// Number of values, `C·H·W`.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Shape as `[C, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
    /// The positions × channels matrix (an nalgebra view of the buffer).
    pub fn matrix(&self) -> DMatrixView<'_, f32> {
        DMatrixView::from_slice(self.as_slice(), self.positions(), self.channels)
    }
    pub fn matrix_mut(&mut self) -> DMatrixViewMut<'_, f32> {
        let (r, c) = (self.positions(), self.channels);
        DMatrixViewMut::from_slice(self.as_mut_slice(), r, c)
    }
    /// All values in CHW order.
    pub fn as_slice(&self) -> &[f32] {
        &self.data[..self.len()]
    }
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        let n = self.len();
        &mut self.data[..n]
    }
    /// The contiguous `H·W` plane of channel `c`.
    pub fn channel(&self, c: usize) -> &[f32] {
        let n = self.positions();
        &self.data[c * n..(c + 1) * n]
    }
    pub fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.positions();
        &mut self.data[c * n..(c + 1) * n]
    }
    /// Value at channel `c`, row `y`, column `x`.
    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[c * self.positions() + y * self.width + x]
    }

    /// Re-shapes in place, keeping the allocation: the buffer only ever grows. Contents are
    /// unspecified afterwards; every kernel that writes into a reshaped map overwrites all of it.
    pub(crate) fn reshape(&mut self, channels: usize, height: usize, width: usize) {
        let n = channels * height * width;
        if self.data.len() < n {
            self.data.resize(n, 0.0);
        }
        (self.channels, self.height, self.width) = (channels, height, width);
    }

    /// Copies `other` into `self`, reusing `self`'s allocation.
    pub(crate) fn copy_from(&mut self, other: &FeatureMap) {
        let [c, h, w] = other.shape();
        self.reshape(c, h, w);
        self.as_mut_slice().copy_from_slice(other.as_slice());
    }
}

/// A batch of equally shaped feature maps (N×C×H×W).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    images: Vec<FeatureMap>,
}

impl Batch {
    /// Batch from feature maps that all share one shape and hold only finite values (NaN or ∞ would
    /// pass a ReLU6 as 0 or 6 and give plausible-looking but meaningless outputs).
    ///
    /// # Errors
    /// Images of different shapes, or a non-finite value (named by image, channel and position).
    pub fn new(images: Vec<FeatureMap>) -> Result<Self> {
        check_finite(&images)?;
        if let Some(first) = images.first() {
            if let Some((i, m)) = images.iter().enumerate().find(|(_, m)| m.shape() != first.shape()) {
                return Err(Error::input("batch", format!("image {i} has shape {:?} but image 0 has {:?}", m.shape(), first.shape())));
            }
        }
        Ok(Batch { images })
    }

    /// Batch from an NCHW buffer.
    ///
    /// # Errors
    /// A shape whose product does not match the data, non-finite values (named by image, channel, row and column).
    pub fn from_nchw(shape: [usize; 4], data: &[f32]) -> Result<Self> {
        let [n, c, h, w] = shape;
        if n.checked_mul(c).and_then(|v| v.checked_mul(h)).and_then(|v| v.checked_mul(w)) != Some(data.len()) {
            return Err(Error::input("batch", format!("{} values do not fill NCHW shape {shape:?}", data.len())));
        }
        if n == 0 {
            return Ok(Batch { images: Vec::new() });
        }
        let per = data.len() / n;
        if per == 0 {
            return Err(Error::input("batch", format!("NCHW shape {shape:?} has images without values; every image needs C, H and W ≥ 1")));
        }
        // Copy and scan the images in parallel (a 32×3×224² batch is 19 MB); the error, if any, is
        // still the first non-finite value in NCHW order.
        use rayon::prelude::*;
        let images = data.par_chunks(per).map(|chunk| FeatureMap::from_chw(c, h, w, chunk.to_vec())).collect::<Result<Vec<_>>>()?;
        if images.par_iter().any(|m| m.as_slice().iter().any(|v| !v.is_finite())) {
            check_finite(&images)?;
        }
        Ok(Batch { images })
    }

    /// All values in NCHW order.
    pub fn to_nchw(&self) -> Vec<f32> {
        self.images.iter().flat_map(|m| m.as_slice().iter().copied()).collect()
    }

    /// `[N, C, H, W]`; `[0, 0, 0, 0]` for an empty batch.
    pub fn shape(&self) -> [usize; 4] {
        match self.images.first() {
            Some(m) => {
                let [c, h, w] = m.shape();
                [self.images.len(), c, h, w]
            }
            None => [0; 4],
        }
    }
    pub fn len(&self) -> usize {
        self.images.len()
    }
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
    pub fn images(&self) -> &[FeatureMap] {
        &self.images
    }
    pub fn into_images(self) -> Vec<FeatureMap> {
        self.images
    }
}

/// Rejects the first non-finite input value, naming where it is.
fn check_finite(images: &[FeatureMap]) -> Result<()> {
    for (i, m) in images.iter().enumerate() {
        if let Some((c, y, x, v)) = m.first_non_finite() {
            return Err(Error::input(
                "batch",
                format!("image {i} holds the non-finite value {v} at channel {c}, row {y}, column {x}; clean the input (e.g. np.nan_to_num) before running the network"),
            ));
        }
    }
    Ok(())
}
