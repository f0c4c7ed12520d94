//! The training engine: batched activations ([`act`]), layer forward/backward ([`ops`]), a whole
//! training step with backpropagation ([`engine`]), optimizers ([`optim`]), the user-facing settings
//! ([`settings`]) and the epoch loop with checkpoints ([`trainer`]).

pub mod act;
pub mod checkpoint;
pub mod engine;
pub mod ops;
pub mod optim;
pub mod settings;
pub mod trainer;

pub use act::Act;
pub use engine::{train_step, train_step_with_hooks, Gradients, StepOptions, StepResult};
