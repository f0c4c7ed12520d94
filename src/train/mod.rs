//! The training engine: batched activations ([`act`]), layer forward/backward ([`ops`]), a whole
//! training step with backpropagation ([`engine`]).

pub mod act;
pub mod engine;
pub mod ops;
pub mod optim;
pub mod trainer;

pub use act::Act;
pub use engine::{train_step, train_step_with_hooks, Gradients, StepOptions, StepResult};
