//! A linear classifier on raw pixels of the embedded synthetic set (softmax regression, AdamW,
//! full 10,000-image training split, 20 epochs): the floor a small MobileNetV2 must clear by far.
//! `cargo run --release --example linear_baseline`

use infoloss::data::{DataSpec, Split};
use infoloss::train::ops::{linear_backward, linear_forward, softmax_cross_entropy};
use infoloss::train::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use infoloss::train::Act;
use nalgebra::DMatrix;

fn features(spec: &DataSpec, split: Split, n: usize) -> Result<(Act, Vec<usize>), infoloss::Error> {
    let data = spec.open(split, 32, 0)?;
    let n = n.min(data.len());
    let d = 3 * 32 * 32;
    let mut act = Act::zeros(n, d, 1, 1);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let (img, label) = data.image(i)?;
        for (j, v) in img.as_slice().iter().enumerate() {
            act.data[j * n + i] = *v;
        }
        labels.push(label);
    }
    Ok((act, labels))
}

fn main() -> Result<(), infoloss::Error> {
    let spec = DataSpec::Synthetic;
    let (train, ytr) = features(&spec, Split::Train, 10_000)?;
    let (val, yva) = features(&spec, Split::Val, 2_000)?;
    let d = train.c;
    let mut w = DMatrix::<f32>::zeros(d, 10);
    let mut b = vec![0.0f32; 10];
    let mut opt = Optimizer::new(OptimizerConfig { lr: 1e-3, ..OptimizerConfig::for_kind(OptimizerKind::Adamw) }, &[d * 10, 10]);
    let batch = 250;
    for epoch in 0..20 {
        for s in (0..train.n).step_by(batch) {
            let idx: Vec<usize> = (s..(s + batch).min(train.n)).collect();
            let mut xb = Act::zeros(idx.len(), d, 1, 1);
            for j in 0..d {
                for (r, &i) in idx.iter().enumerate() {
                    xb.data[j * idx.len() + r] = train.data[j * train.n + i];
                }
            }
            let labels: Vec<usize> = idx.iter().map(|&i| ytr[i]).collect();
            let logits = linear_forward(&w, &b, &xb);
            let (_, dl, _) = softmax_cross_entropy(&logits, &labels, 0.0);
            let (dw, db, _) = linear_backward(&w, &xb, &dl);
            opt.step(vec![w.as_mut_slice(), &mut b[..]], &[dw.as_slice(), &db], &[true, false], 1e-3);
        }
        let (tl, _, tc) = softmax_cross_entropy(&linear_forward(&w, &b, &train), &ytr, 0.0);
        let (vl, _, vc) = softmax_cross_entropy(&linear_forward(&w, &b, &val), &yva, 0.0);
        println!("epoch {:>2}: train loss {tl:.3} acc {:.3} | val loss {vl:.3} acc {:.3}", epoch + 1, tc as f64 / train.n as f64, vc as f64 / val.n as f64);
    }
    Ok(())
}
