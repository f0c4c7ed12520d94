//! The training engine: batched activations ([`act`]), layer forward/backward ([`ops`]), a whole
//! training step with backpropagation ([`engine`]) with reusable buffers ([`pool`]), the trainable tensors in one order ([`params`]),
//! optimizers ([`optim`]), augmentation ([`augment`]), evaluation ([`evaluate`]), the user-facing
//! settings ([`settings`]), atomic checkpoints ([`checkpoint`]) and the epoch loop with exact resume
//! ([`trainer`]).

pub mod act;
pub mod augment;
mod channel_sums;
pub mod checkpoint;
pub mod engine;
pub mod evaluate;
pub mod ops;
pub mod optim;
pub mod params;
pub mod pool;
pub mod settings;
pub mod trainer;

pub use act::Act;
pub use engine::{train_step, train_step_pooled, train_step_with_hooks, Gradients, StepOptions, StepResult};
pub use pool::ActPool;
