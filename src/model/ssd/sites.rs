//! The detector's hook sites: the backbone's, then the extra layers' and the predictors'.

use super::*;

use crate::hooks::catalogue::{catalogue, HookSite, SITE_LAYOUT};
use crate::hooks::{HookName, SsdPart, SsdPoint};

impl Detector {
    /// Every hook site: the backbone's (without pool and logits) and the head's, in firing order.
    pub fn sites(&self, resolution: usize) -> Vec<HookSite> {
        let mut sites: Vec<HookSite> =
            catalogue(&self.backbone, resolution).into_iter().filter(|s| !matches!(s.name, HookName::Pool | HookName::Logits)).collect();
        let sizes = self.map_sizes(resolution);
        let mut push = |name: HookName, shape: [usize; 3], threshold: usize| {
            sites.push(HookSite { name, shape, channels: shape[0], threshold, layout: SITE_LAYOUT, activated: name.is_post() })
        };
        let mut cin = self.class_heads[1].conv.kind.in_channels();
        let mut hw = sizes[1];
        for (j, e) in self.extras.iter().enumerate() {
            let site = |point| HookName::Ssd { part: SsdPart::Extra, index: j, point };
            let r = [e.reduce.out_channels(), hw.0, hw.1];
            push(site(SsdPoint::ReducePre), r, cin);
            push(site(SsdPoint::ReducePost), r, cin);
            hw = sizes[j + 2];
            let sp = [e.spatial.out_channels(), hw.0, hw.1];
            push(site(SsdPoint::SpatialPre), sp, cin);
            push(site(SsdPoint::SpatialPost), sp, cin);
            if let Some(x) = &e.expand {
                let ex = [x.out_channels(), hw.0, hw.1];
                push(site(SsdPoint::ExpandPre), ex, cin);
                push(site(SsdPoint::ExpandPost), ex, cin);
            }
            cin = EXTRA_DEPTHS[j];
        }
        for (part, heads) in [(SsdPart::Class, &self.class_heads), (SsdPart::Box, &self.box_heads)] {
            for (k, p) in heads.iter().enumerate() {
                let (h, w) = sizes[k];
                let c = p.conv.kind.in_channels();
                let site = |point| HookName::Ssd { part, index: k, point };
                if p.spatial.is_some() {
                    push(site(SsdPoint::SpatialPre), [c, h, w], c);
                    push(site(SsdPoint::SpatialPost), [c, h, w], c);
                }
                push(site(SsdPoint::Out), [p.conv.kind.out_channels(), h, w], c);
            }
        }
        sites
    }
}
