//! Hooks scoped to one call: a [`HookSet`] is borrowed `&mut` by
//! [`MobileNetV2::run_with_hooks`](crate::model::MobileNetV2::run_with_hooks) for
//! one forward pass — no global registry.
//!
//! Two verbs: an [`Observer`] sees `&FeatureMap` and never changes it; an [`Intervention`] gets
//! `&mut FeatureMap` and may replace the activation. At each site, hooks fire in the order they were
//! attached; sites fire in catalogue order ([`catalogue`](mod@crate::hooks::catalogue)).
//!
//! **Parallel batches.** Images run in parallel, so each image gets its own *fork* of every hook (same
//! settings, empty results); after the pass the forks are *joined* back in image order. Results are
//! therefore identical whatever the thread count.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use super::catalogue::HookSite;
use super::filter::NameFilter;
use super::hook_name::HookName;
use super::sink::HookSink;
use crate::tensor::FeatureMap;

/// Downcasting support for hook trait objects (implemented for every `'static` type).
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Sees activations; never changes them.
pub trait Observer: AsAny + Send {
    /// Called at every selected site with image `image`'s activation.
    fn observe(&mut self, site: &HookName, image: usize, fm: &FeatureMap);
    /// The same observer with no results yet (one per image of a parallel batch).
    fn fork(&self) -> Box<dyn Observer>;
    /// Adds the results of a fork made by [`Observer::fork`]; called in image order.
    fn join(&mut self, other: Box<dyn Observer>);
    /// The hook's type name, for listings.
    fn kind(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// May replace activations.
pub trait Intervention: AsAny + Send {
    /// Called at every selected site; may modify `fm` in place (the shape must stay the same).
    fn intervene(&mut self, site: &HookName, image: usize, fm: &mut FeatureMap);
    /// The same intervention for one image of a parallel batch.
    fn fork(&self) -> Box<dyn Intervention>;
    /// Takes back whatever a fork recorded (most interventions record nothing).
    fn join(&mut self, _other: Box<dyn Intervention>) {}
    /// The hook's type name, for listings.
    fn kind(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// Handle of an attached hook, to read its results back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HookId(usize);

enum Hook {
    Observe(Box<dyn Observer>),
    Intervene(Box<dyn Intervention>),
}

impl Hook {
    fn fork(&self) -> Hook {
        match self {
            Hook::Observe(o) => Hook::Observe(o.fork()),
            Hook::Intervene(i) => Hook::Intervene(i.fork()),
        }
    }
}

struct Entry {
    filter: NameFilter,
    hook: Hook,
}

/// The hooks of one call.
#[derive(Default)]
pub struct HookSet {
    entries: Vec<Entry>,
}

/// One line of [`HookSet::list`].
#[derive(Clone, Debug, PartialEq)]
pub struct AttachedHook {
    pub id: HookId,
    /// `observer` or `intervention`.
    pub verb: &'static str,
    /// The hook's type name.
    pub kind: String,
    pub filter: String,
}

/// Site → attached hooks, compiled once per call from the model's catalogue.
pub(crate) struct Routes {
    map: HashMap<HookName, Vec<usize>>,
}

impl HookSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches an observer at the sites `filter` selects.
    pub fn observe<O: Observer + 'static>(&mut self, filter: NameFilter, observer: O) -> HookId {
        self.entries.push(Entry { filter, hook: Hook::Observe(Box::new(observer)) });
        HookId(self.entries.len() - 1)
    }

    /// Attaches an intervention at the sites `filter` selects.
    pub fn intervene<I: Intervention + 'static>(&mut self, filter: NameFilter, intervention: I) -> HookId {
        self.entries.push(Entry { filter, hook: Hook::Intervene(Box::new(intervention)) });
        HookId(self.entries.len() - 1)
    }

    /// The observer attached as `id`, if it is a `T`.
    pub fn observer<T: 'static>(&self, id: HookId) -> Option<&T> {
        match &self.entries.get(id.0)?.hook {
            Hook::Observe(o) => (**o).as_any().downcast_ref::<T>(),
            Hook::Intervene(_) => None,
        }
    }

    /// The intervention attached as `id`, if it is a `T`.
    pub fn intervention<T: 'static>(&self, id: HookId) -> Option<&T> {
        match &self.entries.get(id.0)?.hook {
            Hook::Intervene(i) => (**i).as_any().downcast_ref::<T>(),
            Hook::Observe(_) => None,
        }
    }

    /// Every attached hook, in attach (= firing) order.
    pub fn list(&self) -> Vec<AttachedHook> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let (verb, kind) = match &e.hook {
                    Hook::Observe(o) => ("observer", o.kind().to_string()),
                    Hook::Intervene(v) => ("intervention", v.kind().to_string()),
                };
                AttachedHook { id: HookId(i), verb, kind, filter: format!("{:?}", e.filter) }
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sites each hook listens at, given a model's catalogue.
    pub(crate) fn routes(&self, sites: &[HookSite]) -> Routes {
        let mut map: HashMap<HookName, Vec<usize>> = HashMap::new();
        for s in sites {
            for (i, e) in self.entries.iter().enumerate() {
                if e.filter.matches(&s.name) {
                    map.entry(s.name).or_default().push(i);
                }
            }
        }
        Routes { map }
    }

    pub(crate) fn fork(&self, routes: &Arc<Routes>) -> ImageHooks {
        ImageHooks { routes: Arc::clone(routes), hooks: self.entries.iter().map(|e| e.hook.fork()).collect() }
    }

    pub(crate) fn join(&mut self, parts: Vec<ImageHooks>) {
        for part in parts {
            for (entry, hook) in self.entries.iter_mut().zip(part.hooks) {
                match (&mut entry.hook, hook) {
                    (Hook::Observe(a), Hook::Observe(b)) => a.join(b),
                    (Hook::Intervene(a), Hook::Intervene(b)) => a.join(b),
                    _ => unreachable!("a fork keeps its hook's verb"),
                }
            }
        }
    }
}

/// The forks of one image.
pub(crate) struct ImageHooks {
    routes: Arc<Routes>,
    hooks: Vec<Hook>,
}

impl HookSink for ImageHooks {
    #[inline]
    fn wants(&self, name: &HookName) -> bool {
        self.routes.map.contains_key(name)
    }

    fn fire(&mut self, name: &HookName, image: usize, fm: &mut FeatureMap) {
        if let Some(idx) = self.routes.map.get(name) {
            for &i in idx {
                match &mut self.hooks[i] {
                    Hook::Observe(o) => o.observe(name, image, fm),
                    Hook::Intervene(v) => v.intervene(name, image, fm),
                }
            }
        }
    }
}
