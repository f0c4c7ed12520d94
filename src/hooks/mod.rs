//! Instrumentation hooks, TransformerLens-style: named sites inside the forward pass
//! ([`hook_name`], [`catalogue`](mod@catalogue)), filters ([`filter`]), hooks scoped to one call with two verbs —
//! observe and intervene ([`hook_set`]) — built-in observers ([`observers`]) and interventions
//! ([`interventions`]), and the activation cache ([`activation_cache`]).
//!
//! ```no_run
//! use infoloss::hooks::{HookSet, NameFilter, observers::ChannelActivity, interventions::ZeroChannels};
//! use infoloss::{Hooked, MobileNetV2, ModelConfig};
//! let model = MobileNetV2::seeded(&ModelConfig::default(), 0)?;
//! let x = infoloss::bench::random_batch(2, 224, 0)?;
//! let mut hooks = HookSet::new();
//! let counts = hooks.observe(NameFilter::post_sites(), ChannelActivity::new(Some(6.0)));
//! hooks.intervene(NameFilter::Exact("blocks.3.expand.post".parse()?), ZeroChannels { channels: vec![0, 1] });
//! // A closure observer: the largest activation of every block output, per image.
//! let peaks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
//! let sink = peaks.clone();
//! hooks.observe_fn(NameFilter::parse("blocks.*.project", &model.hook_sites())?, move |name, image, fm| {
//!     let max = fm.as_slice().iter().copied().fold(f32::MIN, f32::max);
//!     sink.lock().unwrap().push((name.to_string(), image, max));
//! });
//! let logits = model.run_with_hooks(&x, &mut hooks)?;
//! let activity: ChannelActivity = hooks.take(counts)?; // typed: no downcast
//! let (_, cache) = model.run_with_cache(&x, NameFilter::parse("blocks.*.project", &model.hook_sites())?)?;
//! let block3 = &cache["blocks.3.project"]; // one C×H×W map per image
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
pub use hook_set::{FnIntervention, FnObserver, HookId, HookSet, Intervention, Observer};
pub use sink::{HookSink, NoHooks};
