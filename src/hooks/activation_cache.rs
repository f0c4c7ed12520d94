//! `run_with_cache`: owned copies of the activations a filter selects, per site and image, exportable
//! to `.npy` (one NCHW file per site) and safetensors (one NCHW tensor per site) for Python users.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{tensor::TensorView, Dtype};

use super::hook_name::HookName;
use super::hook_set::Observer;
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use crate::io::npy::write_npy;
use crate::tensor::FeatureMap;

/// Cached activations: site → one map per image, in image order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivationCache {
    sites: BTreeMap<HookName, Vec<(usize, FeatureMap)>>,
}

impl Observer for ActivationCache {
    fn observe(&mut self, site: &HookName, image: usize, fm: &FeatureMap) {
        self.sites.entry(*site).or_default().push((image, fm.clone()));
    }
    fn fork(&self) -> Box<dyn Observer> {
        Box::new(ActivationCache::default())
    }
    fn join(&mut self, other: Box<dyn Observer>) {
        if let Ok(o) = other.into_any().downcast::<ActivationCache>() {
            for (k, v) in o.sites {
                self.sites.entry(k).or_default().extend(v);
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
    pub fn get(&self, site: &HookName) -> Result<Vec<&FeatureMap>> {
        self.sites
            .get(site)
            .map(|v| v.iter().map(|(_, m)| m).collect())
            .ok_or_else(|| Error::input("activation cache", format!("site {site} was not cached; widen the filter of run_with_cache")))
    }

    /// One image's map at `site`.
    pub fn image(&self, site: &HookName, image: usize) -> Result<&FeatureMap> {
        self.sites
            .get(site)
            .and_then(|v| v.iter().find(|(i, _)| *i == image).map(|(_, m)| m))
            .ok_or_else(|| Error::input("activation cache", format!("no activation for image {image} at {site}")))
    }

    /// `site` as one NCHW array.
    pub fn stacked(&self, site: &HookName) -> Result<([usize; 4], Vec<f32>)> {
        let maps = self.get(site)?;
        let [c, h, w] = maps[0].shape();
        Ok(([maps.len(), c, h, w], maps.iter().flat_map(|m| m.as_slice().iter().copied()).collect()))
    }

    /// Writes `<dir>/<site>.npy` (NCHW float32) for every cached site.
    pub fn save_npy_dir(&self, dir: &Path) -> Result<()> {
        for name in self.names() {
            let (shape, data) = self.stacked(&name)?;
            write_npy(&dir.join(format!("{name}.npy")), &shape, &data)?;
        }
        Ok(())
    }

    /// Writes one safetensors file with an NCHW F32 tensor per site, keyed by site name.
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
        let bytes = safetensors::serialize(views, None).map_err(|e| Error::input("activation cache", e))?;
        write_atomic(path, &bytes)
    }
}
