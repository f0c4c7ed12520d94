//! Hooks scoped to one call: a [`HookSet`] is borrowed `&mut` by
//! [`Hooked::run_with_hooks`](crate::model::hooked::Hooked::run_with_hooks) for
//! one forward pass — no global registry.
//!
//! Two verbs: an [`Observer`] sees `&FeatureMap` and never changes it; an [`Intervention`] gets
//! `&mut FeatureMap` and may replace the activation. Either is a type implementing the trait or a
//! closure ([`HookSet::observe_fn`], [`HookSet::intervene_fn`]). At each site, hooks fire in the order
//! they were attached; sites fire in catalogue order ([`catalogue`](mod@crate::hooks::catalogue)).
//! Attaching returns a typed [`HookId<T>`]: [`HookSet::get`] and [`HookSet::take`] give the hook back
//! as a `T`, no downcast at the call site. An intervention that knows its own sites (e.g.
//! [`Linearize`](crate::hooks::interventions::Linearize)) is attached with [`HookSet::apply`], so it
//! cannot be wired to the wrong ones.
//!
//! **Parallel batches.** Images run in parallel, so each image gets its own *fork* of every hook (same
//! settings, empty results); after the pass the forks are *joined* back in image order. Results are
//! therefore identical whatever the thread count.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::catalogue::HookSite;
use super::filter::NameFilter;
use super::hook_name::HookName;
use super::sink::HookSink;
use crate::error::{Error, Result};
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
    /// The sites this intervention must see, when it knows them (then attach it with
    /// [`HookSet::apply`]); `None` for interventions that act wherever they are attached.
    fn sites(&self) -> Option<NameFilter> {
        None
    }
    /// The hook's type name, for listings.
    fn kind(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// Typed handle of a hook attached to one [`HookSet`]: [`HookSet::get`] / [`HookSet::take`] return
/// the `T` that was attached.
pub struct HookId<T> {
    set: u64,
    index: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for HookId<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for HookId<T> {}
impl<T> PartialEq for HookId<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.set, self.index) == (other.set, other.index)
    }
}
impl<T> Eq for HookId<T> {}
impl<T> std::fmt::Debug for HookId<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HookId<{}>({})", std::any::type_name::<T>(), self.index)
    }
}

impl<T> HookId<T> {
    /// Position in attach (= firing) order.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// The signature of a closure observer: site, image index, activation.
pub type ObserveFn = dyn Fn(&HookName, usize, &FeatureMap) + Send + Sync;
/// The signature of a closure intervention: site, image index, activation to edit in place.
pub type InterveneFn = dyn Fn(&HookName, usize, &mut FeatureMap) + Send + Sync;

/// A closure as an observer ([`HookSet::observe_fn`]). Images run in parallel, so the closure is
/// shared (`Fn + Send + Sync`); collect results through a `Mutex` or a channel, keyed by the image index.
#[derive(Clone)]
pub struct FnObserver(Arc<ObserveFn>);

impl Observer for FnObserver {
    fn observe(&mut self, site: &HookName, image: usize, fm: &FeatureMap) {
        (self.0)(site, image, fm)
    }
    fn fork(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }
    fn join(&mut self, _: Box<dyn Observer>) {}
    fn kind(&self) -> &'static str {
        "closure"
    }
}

/// A closure as an intervention ([`HookSet::intervene_fn`]); shared across the images of a batch.
#[derive(Clone)]
pub struct FnIntervention(Arc<InterveneFn>);

impl Intervention for FnIntervention {
    fn intervene(&mut self, site: &HookName, image: usize, fm: &mut FeatureMap) {
        (self.0)(site, image, fm)
    }
    fn fork(&self) -> Box<dyn Intervention> {
        Box::new(self.clone())
    }
    fn kind(&self) -> &'static str {
        "closure"
    }
}

enum Hook {
    Observe(Box<dyn Observer>),
    Intervene(Box<dyn Intervention>),
    /// Given back by [`HookSet::take`]: fires nowhere.
    Taken,
}

impl Hook {
    fn fork(&self) -> Hook {
        match self {
            Hook::Observe(o) => Hook::Observe(o.fork()),
            Hook::Intervene(i) => Hook::Intervene(i.fork()),
            Hook::Taken => Hook::Taken,
        }
    }
}

/// Distinguishes hook sets, so a handle of one is refused by another.
static NEXT_SET: AtomicU64 = AtomicU64::new(1);

struct Entry {
    filter: NameFilter,
    hook: Hook,
}

/// The hooks of one call.
pub struct HookSet {
    entries: Vec<Entry>,
    serial: u64,
}

impl Default for HookSet {
    fn default() -> Self {
        HookSet { entries: Vec::new(), serial: NEXT_SET.fetch_add(1, Ordering::Relaxed) }
    }
}

/// One line of [`HookSet::list`].
#[derive(Clone, Debug, PartialEq)]
pub struct AttachedHook {
    /// Position in attach (= firing) order.
    pub index: usize,
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

    fn push<T>(&mut self, filter: NameFilter, hook: Hook) -> HookId<T> {
        self.entries.push(Entry { filter, hook });
        HookId { set: self.serial, index: self.entries.len() - 1, _type: PhantomData }
    }

    /// Attaches an observer at the sites `filter` selects.
    pub fn observe<O: Observer + 'static>(&mut self, filter: NameFilter, observer: O) -> HookId<O> {
        self.push(filter, Hook::Observe(Box::new(observer)))
    }

    /// Attaches an intervention at the sites `filter` selects.
    pub fn intervene<I: Intervention + 'static>(&mut self, filter: NameFilter, intervention: I) -> HookId<I> {
        self.push(filter, Hook::Intervene(Box::new(intervention)))
    }

    /// Attaches an intervention at the sites it names itself ([`Intervention::sites`]).
    ///
    /// # Errors
    /// The intervention does not know its sites: attach it with [`HookSet::intervene`].
    pub fn apply<I: Intervention + 'static>(&mut self, intervention: I) -> Result<HookId<I>> {
        let filter = intervention
            .sites()
            .ok_or_else(|| Error::input("intervention", format!("{} does not name its sites; attach it with intervene(filter, …)", intervention.kind())))?;
        Ok(self.intervene(filter, intervention))
    }

    /// Attaches a closure `f(site, image, activation)` as an observer at the sites `filter` selects.
    pub fn observe_fn(&mut self, filter: NameFilter, f: impl Fn(&HookName, usize, &FeatureMap) + Send + Sync + 'static) -> HookId<FnObserver> {
        self.observe(filter, FnObserver(Arc::new(f)))
    }

    /// Attaches a closure `f(site, image, activation)` that may edit the activation in place (its
    /// shape must stay the same) at the sites `filter` selects.
    pub fn intervene_fn(&mut self, filter: NameFilter, f: impl Fn(&HookName, usize, &mut FeatureMap) + Send + Sync + 'static) -> HookId<FnIntervention> {
        self.intervene(filter, FnIntervention(Arc::new(f)))
    }

    fn entry<T>(&self, id: HookId<T>) -> Result<&Hook> {
        if id.set != self.serial {
            return Err(Error::input("hook id", format!("{id:?} belongs to another HookSet; read a hook from the set it was attached to")));
        }
        Ok(&self.entries[id.index].hook)
    }

    /// The hook attached as `id`, with the results of the last run.
    ///
    /// # Errors
    /// `id` belongs to another hook set, or the hook was taken out with [`HookSet::take`].
    ///
    /// # Panics
    /// Never: a `HookId<T>` of this set names a `T` by construction.
    pub fn get<T: 'static>(&self, id: HookId<T>) -> Result<&T> {
        let any = match self.entry(id)? {
            Hook::Observe(o) => (**o).as_any(),
            Hook::Intervene(i) => (**i).as_any(),
            Hook::Taken => return Err(Error::input("hook id", format!("{id:?} was already taken out of its HookSet"))),
        };
        Ok(any.downcast_ref::<T>().expect("a HookId<T> names a T"))
    }

    /// Takes the hook attached as `id` out of the set (it fires no more) and gives it back as a `T`.
    ///
    /// # Errors
    /// As [`HookSet::get`].
    ///
    /// # Panics
    /// Never: a `HookId<T>` of this set names a `T` by construction.
    pub fn take<T: 'static>(&mut self, id: HookId<T>) -> Result<T> {
        self.get(id)?;
        let hook = std::mem::replace(&mut self.entries[id.index].hook, Hook::Taken);
        let any = match hook {
            Hook::Observe(o) => o.into_any(),
            Hook::Intervene(i) => i.into_any(),
            Hook::Taken => unreachable!("checked by get"),
        };
        Ok(*any.downcast::<T>().expect("a HookId<T> names a T"))
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
                    Hook::Taken => ("taken", String::new()),
                };
                AttachedHook { index: i, verb, kind, filter: format!("{:?}", e.filter) }
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
                if !matches!(e.hook, Hook::Taken) && e.filter.matches(&s.name) {
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
                    (Hook::Taken, Hook::Taken) => {}
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
                    Hook::Taken => {}
                }
            }
        }
    }
}
