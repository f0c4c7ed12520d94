//! The trainable tensors in one order, shared by the optimizer, the gradients and the optimizer's
//! state file: every conv weight (with decay), BatchNorm gamma and beta (without), then the classifier.

use super::engine::Gradients;
use crate::model::MobileNetV2;

/// Weight tensors in optimizer order with their decay flags.
pub fn params_mut(model: &mut MobileNetV2) -> (Vec<&mut [f32]>, Vec<bool>) {
    let MobileNetV2 { stem, blocks, head, classifier: cls, .. } = model;
    let mut params: Vec<&mut [f32]> = Vec::new();
    let mut decay = Vec::new();
    for (_, _, u) in crate::model::mobilenet_v2::units_mut(stem, blocks, head) {
        params.push(u.weight.as_mut_slice());
        decay.push(true);
        params.push(&mut u.bn.gamma[..]);
        decay.push(false);
        params.push(&mut u.bn.beta[..]);
        decay.push(false);
    }
    params.push(cls.weight.as_mut_slice());
    decay.push(true);
    params.push(&mut cls.bias[..]);
    decay.push(false);
    (params, decay)
}

/// Gradients in the order of [`params_mut`].
pub fn grad_slices(g: &Gradients) -> Vec<&[f32]> {
    let mut v: Vec<&[f32]> = Vec::new();
    for u in &g.units {
        v.push(u.weight.as_slice());
        v.push(&u.gamma);
        v.push(&u.beta);
    }
    v.push(g.classifier_weight.as_slice());
    v.push(&g.classifier_bias);
    v
}

/// Names of the optimizer's tensors (torchvision names of the parameters).
pub(crate) fn param_names(model: &MobileNetV2) -> Vec<String> {
    let mut v = Vec::new();
    for (conv, bn, _) in model.conv_units() {
        v.push(format!("{conv}.weight"));
        v.push(format!("{bn}.weight"));
        v.push(format!("{bn}.bias"));
    }
    v.push("classifier.1.weight".into());
    v.push("classifier.1.bias".into());
    v
}
