use infoloss::bench::random_batch;
use infoloss::model::ModelConfig;
use infoloss::train::{train_step, Act, StepOptions};
use infoloss::MobileNetV2;
fn main() {
    let cfg = ModelConfig { width: 0.35, resolution: 32, classes: 4, dropout: 0.0, stage_expansion: Some(vec![1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]), strides: Some(vec![1, 1, 2, 2, 2, 1, 2, 1]), shortcut: infoloss::model::Shortcut::None, ..Default::default() };
    let mut m = MobileNetV2::seeded(&cfg, 3).unwrap();
    for (_, _, u) in m.conv_units_mut() { u.activation = infoloss::layers::Activation::Identity; }
    let x = Act::from_batch(&random_batch(8, 32, 11).unwrap());
    let labels = [0usize, 3, 1, 2, 0, 1, 3, 2];
    let opt = StepOptions { label_smoothing: 0.1, dropout_seed: 0, threads: 1 };
    let g = train_step(&mut m.clone(), &x, &labels, opt).grads;
    let loss = |m: &MobileNetV2| train_step(&mut m.clone(), &x, &labels, opt).loss;
    let n = m.conv_units().len();
    for unit in 0..n {
        let gu = &g.units[unit].weight;
        let norm = gu.norm() as f64;
        for eps in [1e-2f64, 1e-3] {
            let (mut p, mut q) = (m.clone(), m.clone());
            p.conv_units_mut()[unit].2.weight.iter_mut().zip(gu.iter()).for_each(|(w, d)| *w += (eps * *d as f64 / norm) as f32);
            q.conv_units_mut()[unit].2.weight.iter_mut().zip(gu.iter()).for_each(|(w, d)| *w -= (eps * *d as f64 / norm) as f32);
            let fd = (loss(&p) - loss(&q)) / (2.0 * eps);
            print!(" fd({eps}) {fd:.4e}");
        }
        println!("  unit {unit}: |g| {norm:.4e}");
    }
}
