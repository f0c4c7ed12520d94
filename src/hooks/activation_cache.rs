//! `run_with_cache`: owned copies of the activations a filter selects, per site and image, indexable
//! by site name (`cache["blocks.3.expand.post"][image]`), exportable to `.npy` (one NCHW file per site)
//! and safetensors (one NCHW tensor per site) for Python users.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{tensor::TensorView, Dtype};

use super::hook_name::HookName;
use super::hook_set::Observer;
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use crate::io::npy::write_npy;
use crate::tensor::FeatureMap;

/// The activations of one site: one map per image, in image order; derefs to `[FeatureMap]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteActivations {
    /// The image index of each map (from the run's `first_image`).
    pub images: Vec<usize>,
    pub maps: Vec<FeatureMap>,
}

impl std::ops::Deref for SiteActivations {
    type Target = [FeatureMap];
    fn deref(&self) -> &[FeatureMap] {
        &self.maps
    }
}

/// Cached activations: site → one map per image, in image order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivationCache {
    sites: BTreeMap<HookName, SiteActivations>,
}

impl Observer for ActivationCache {
    fn observe(&mut self, site: &HookName, image: usize, fm: &FeatureMap) {
        let s = self.sites.entry(*site).or_default();
        s.images.push(image);
        s.maps.push(fm.clone());
    }
    fn fork(&self) -> Box<dyn Observer> {
        Box::new(ActivationCache::default())
    }
    fn join(&mut self, other: Box<dyn Observer>) {
        if let Ok(o) = other.into_any().downcast::<ActivationCache>() {
            for (k, v) in o.sites {
                let s = self.sites.entry(k).or_default();
                s.images.extend(v.images);
                s.maps.extend(v.maps);
            }
        }
    }
}

impl ActivationCache {
    /// Cached site names, in name order.
    pub fn names(&self) -> Vec<HookName> {
        self.sites.keys().copied().collect()
    }

    /// The maps of `site`, one per image.
    ///
    /// # Errors
    /// The site was not cached.
    pub fn get(&self, site: &HookName) -> Result<Vec<&FeatureMap>> {
        self.site(site).map(|s| s.maps.iter().collect())
    }

    /// The activations of `site`.
    ///
    /// # Errors
    /// The site was not cached.
    pub fn site(&self, site: &HookName) -> Result<&SiteActivations> {
        self.sites.get(site).ok_or_else(|| Error::input("activation cache", format!("site {site} was not cached; widen the filter of run_with_cache")))
    }

    /// The activations of the site named `name` (e.g. `"blocks.3.expand.post"`).
    ///
    /// # Errors
    /// Not a site name, or the site was not cached.
    pub fn by_name(&self, name: &str) -> Result<&SiteActivations> {
        self.site(&name.parse()?)
    }

    /// One image's map at `site`.
    ///
    /// # Errors
    /// The site or the image was not cached.
    pub fn image(&self, site: &HookName, image: usize) -> Result<&FeatureMap> {
        self.sites
            .get(site)
            .and_then(|s| s.images.iter().position(|&i| i == image).map(|k| &s.maps[k]))
            .ok_or_else(|| Error::input("activation cache", format!("no activation for image {image} at {site}")))
    }

    /// `site` as one NCHW array.
    ///
    /// # Errors
    /// The site was not cached.
    pub fn stacked(&self, site: &HookName) -> Result<([usize; 4], Vec<f32>)> {
        let maps = self.get(site)?;
        let [c, h, w] = maps[0].shape();
        Ok(([maps.len(), c, h, w], maps.iter().flat_map(|m| m.as_slice().iter().copied()).collect()))
    }

    /// Writes `<dir>/<site>.npy` (NCHW float32) for every cached site.
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn save_npy_dir(&self, dir: &Path) -> Result<()> {
        for name in self.names() {
            let (shape, data) = self.stacked(&name)?;
            write_npy(&dir.join(format!("{name}.npy")), &shape, &data)?;
        }
        Ok(())
    }

    /// Writes one safetensors file with an NCHW F32 tensor per site, keyed by site name.
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let mut raw = Vec::new();
        for name in self.names() {
            let (shape, data) = self.stacked(&name)?;
            raw.push((name.to_string(), shape.to_vec(), data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()));
        }
        let views = raw
            .iter()
            .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)).map_err(|e| Error::input(n.clone(), e)))
            .collect::<Result<Vec<_>>>()?;
        let bytes = safetensors::serialize(views, None).map_err(|e| Error::internal("serialising the activation cache", e))?;
        write_atomic(path, &bytes)
    }
}

/// `cache["blocks.3.expand.post"]`: the activations of a site by name.
///
/// # Panics
/// When `name` is not a site name or the site was not cached; [`ActivationCache::by_name`] returns
/// the error instead.
impl std::ops::Index<&str> for ActivationCache {
    type Output = SiteActivations;
    fn index(&self, name: &str) -> &SiteActivations {
        match self.by_name(name) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }
}
