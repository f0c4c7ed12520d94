//! # infoloss
//!
//! A toolkit for studying information loss in ReLU networks, built around MobileNetV2 ("MobileNetV2:
//! Inverted Residuals and Linear Bottlenecks", Sandler et al. 2018).
//!
//! - [`tensor`]: the activation layout (one statement of it).
//! - [`layers`]: conv (im2col + GEMM), depthwise, pointwise, BatchNorm, activations, pool, linear.
//! - [`model`]: Table 2 as data, the Table 1 block, variants as config, cost accounting, weights I/O.
//! - [`hooks`]: named hook sites, observers, interventions, the activation cache.
//! - [`analysis`]: Lemma 2, activation patterns, the spiral, Theorem 1, Jacobians, statistics.
//! - [`train`]: backpropagation, optimizers, data sets' training loop. [`data`]: the data sets.
//! - [`experiment`]: TOML experiment specs, the resumable sharded runner, summaries and verdicts.
//! - [`report`]: CSV tables, plots, Markdown and notebook reports.
//! - [`io`]: `.npy` and atomic writes. [`bench`](mod@bench): the throughput benchmarks behind `infoloss bench`.
//! - [`parallel`]: running parallel work from the pool's own threads.
//!
//! The library never prints and never panics on user input; errors are [`Error`].

// `!(x > 0.0)` is this crate's way to reject NaN together with out-of-range values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// Every public function that can fail or panic says when (`# Errors`, `# Panics`).
#![warn(clippy::missing_errors_doc, clippy::missing_panics_doc)]

/// A named fault-injection point (the `fail` crate's `fail_point!`), compiled only with the
/// `failpoints` feature: `FAILPOINTS="checkpoint-before-pointer=sleep(3000)"` pauses the process there
/// so `tools/torture.sh` can kill it at exactly that moment. Without the feature it is nothing.
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name);
    };
}

pub mod alloc_counter;
pub mod analysis;
pub mod bench;
pub mod data;
pub mod error;
pub mod experiment;
pub mod fork_join;
pub mod hooks;
pub mod io;
pub mod layers;
pub mod model;
pub mod parallel;
pub mod report;
pub mod tensor;
pub mod train;

pub use error::{Error, ErrorKind, Result};
pub use model::hooked::Hooked;
pub use model::{MobileNetV2, ModelConfig};
pub use tensor::{Batch, FeatureMap};
