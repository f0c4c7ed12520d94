//! Instrumentation hooks, TransformerLens-style: named sites inside the forward pass
//! ([`hook_name`], [`catalogue`](mod@catalogue)), filters ([`filter`]), hooks scoped to one call with two verbs —
//! observe and intervene ([`hook_set`]) — built-in observers ([`observers`]) and interventions
//! ([`interventions`]), and the activation cache ([`activation_cache`]).
//!
//! ```no_run
//! use infoloss::hooks::{HookSet, NameFilter, observers::ChannelActivity, interventions::ZeroChannels};
//! use infoloss::{MobileNetV2, ModelConfig};
//! let model = MobileNetV2::seeded(&ModelConfig::default(), 0)?;
//! let x = infoloss::bench::random_batch(2, 224, 0)?;
//! let mut hooks = HookSet::new();
//! let counts = hooks.observe(NameFilter::post_sites(), ChannelActivity::new(Some(6.0)));
//! hooks.intervene(NameFilter::Exact("blocks.3.expand.post".parse()?), ZeroChannels { channels: vec![0, 1] });
//! let logits = model.run_with_hooks(&x, &mut hooks)?;
//! let activity = hooks.observer::<ChannelActivity>(counts).unwrap();
//! let (_, cache) = model.run_with_cache(&x, NameFilter::parse("blocks.*.project", &infoloss::hooks::catalogue(&model, 224))?)?;
//! # Ok::<(), infoloss::Error>(())
//! ```

pub mod activation_cache;
pub mod catalogue;
pub mod filter;
pub mod hook_name;
pub mod hook_set;
pub mod interventions;
pub mod observers;
pub mod sink;

pub use activation_cache::ActivationCache;
pub use catalogue::{catalogue, resolve_name, HookSite};
pub use filter::NameFilter;
pub use hook_name::{BlockPoint, HookName, SsdPart, SsdPoint};
pub use hook_set::{HookId, HookSet, Intervention, Observer};
pub use sink::{HookSink, NoHooks};
