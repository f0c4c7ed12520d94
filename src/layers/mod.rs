//! Layers on nalgebra, f32, one image at a time (the batch is parallelised above them).
//! Layout: see [`crate::tensor`]. Every kernel writes into a caller-owned buffer, so a forward pass
//! allocates nothing once its workspace has grown to size.

pub mod activation;
pub mod batch_norm;
pub mod conv;
pub mod conv_bias;
pub mod conv_bn;
pub mod conv_kernel;
pub mod depthwise;
pub mod depthwise_avx2;
pub mod depthwise_kernel;
pub mod gemm_avx2;
pub mod gemm_channels;
pub mod gemm_kernel;
pub mod linear;
pub mod matmul;
pub mod packed_weights;
pub mod padding;
pub mod pointwise;
pub mod pool;

pub use activation::Activation;
pub use batch_norm::BatchNorm;
pub use conv::Conv2d;
pub use conv_bias::ConvBias;
pub use conv_bn::{ConvBn, ConvKind};
pub use depthwise::Depthwise;
pub use linear::Linear;
pub use padding::Padding;
pub use pointwise::Pointwise;
