//! Which sites a hook listens at: an exact name, a prefix, a glob (`blocks.*.expand.post`), a
//! predicate, or any of several.

use std::fmt;
use std::sync::Arc;

use super::catalogue::{resolve_name, HookSite};
use super::hook_name::HookName;
use crate::error::{Error, Result};

/// A predicate over hook names.
pub type NamePredicate = Arc<dyn Fn(&HookName) -> bool + Send + Sync>;

/// A set of hook sites.
#[derive(Clone)]
pub enum NameFilter {
    Exact(HookName),
    /// Names starting with this text, e.g. `blocks.3.`.
    Prefix(String),
    /// Shell-style pattern over the name text, e.g. `blocks.*.expand.post` (`*` crosses dots).
    Glob(glob::Pattern),
    Predicate(NamePredicate),
    Any(Vec<NameFilter>),
    /// Every site.
    All,
}

impl fmt::Debug for NameFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameFilter::Exact(n) => write!(f, "Exact({n})"),
            NameFilter::Prefix(p) => write!(f, "Prefix({p})"),
            NameFilter::Glob(g) => write!(f, "Glob({})", g.as_str()),
            NameFilter::Predicate(_) => f.write_str("Predicate(..)"),
            NameFilter::Any(v) => f.debug_tuple("Any").field(v).finish(),
            NameFilter::All => f.write_str("All"),
        }
    }
}

impl NameFilter {
    /// Whether `name` is selected.
    pub fn matches(&self, name: &HookName) -> bool {
        match self {
            NameFilter::Exact(n) => n == name,
            NameFilter::Prefix(p) => name.to_string().starts_with(p.as_str()),
            NameFilter::Glob(g) => g.matches(&name.to_string()),
            NameFilter::Predicate(f) => f(name),
            NameFilter::Any(v) => v.iter().any(|f| f.matches(name)),
            NameFilter::All => true,
        }
    }

    /// A predicate filter.
    pub fn predicate(f: impl Fn(&HookName) -> bool + Send + Sync + 'static) -> Self {
        NameFilter::Predicate(Arc::new(f))
    }

    /// Every post-activation site (`*.post`).
    pub fn post_sites() -> Self {
        NameFilter::predicate(HookName::is_post)
    }

    /// The sites of `sites` that follow a ReLU-type activation ([`HookSite::activated`]).
    pub fn activated_sites(sites: &[HookSite]) -> Self {
        NameFilter::Any(sites.iter().filter(|s| s.activated).map(|s| NameFilter::Exact(s.name)).collect())
    }

    /// Every pre-activation site of a `.post` site (`stem.pre`, `*.expand.pre`, `*.depthwise.pre`,
    /// `head.pre`) — where an activation pattern is decided.
    pub fn pre_activation_sites() -> Self {
        NameFilter::predicate(|n| {
            matches!(
                n,
                HookName::StemPre
                    | HookName::HeadPre
                    | HookName::Block { point: super::hook_name::BlockPoint::ExpandPre | super::hook_name::BlockPoint::DepthwisePre, .. }
                    | HookName::Ssd {
                        point: super::hook_name::SsdPoint::ReducePre | super::hook_name::SsdPoint::SpatialPre | super::hook_name::SsdPoint::ExpandPre,
                        ..
                    }
            )
        })
    }

    /// Parses CLI/TOML text: a glob if it has `*`, `?` or `[`, a prefix if it ends with `.`, else an
    /// exact name checked against `sites`. Every form must select at least one site.
    ///
    /// # Errors
    /// A pattern or name that matches no site, with the closest valid one.
    pub fn parse(text: &str, sites: &[HookSite]) -> Result<Self> {
        let filter = if text.contains(['*', '?', '[']) {
            NameFilter::Glob(glob::Pattern::new(text).map_err(|e| Error::config("hook filter", text, format!("invalid pattern: {e}")))?)
        } else if text.ends_with('.') {
            NameFilter::Prefix(text.to_string())
        } else {
            NameFilter::Exact(resolve_name(text, sites)?)
        };
        if !sites.iter().any(|s| filter.matches(&s.name)) {
            return Err(Error::config("hook filter", text, "it matches no hook site of this model; see `infoloss hooks`"));
        }
        Ok(filter)
    }

    /// The catalogue sites this filter selects, in firing order.
    pub fn select<'a>(&self, sites: &'a [HookSite]) -> Vec<&'a HookSite> {
        sites.iter().filter(|s| self.matches(&s.name)).collect()
    }
}
