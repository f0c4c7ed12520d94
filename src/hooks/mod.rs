//! Instrumentation hooks: named sites inside the forward pass ([`hook_name`]), the sink the forward
//! pass talks to ([`sink`]).

pub mod hook_name;
pub mod sink;

pub use hook_name::{BlockPoint, HookName};
pub use sink::{HookSink, NoHooks};
