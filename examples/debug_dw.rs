use infoloss::layers::{ConvKind, Depthwise, Padding};
use infoloss::train::ops::*;
use infoloss::train::Act;
use nalgebra::DMatrix;
fn main() {
    for (n, c, h, s) in [(2, 3, 5, 2), (8, 64, 4, 2), (8, 64, 4, 1), (8, 4, 8, 1), (8, 4, 16, 1), (8, 4, 32, 1)] {
        let kind = ConvKind::Depthwise(Depthwise { channels: c, stride: s, padding: Padding::Torch });
        let x = Act { n, c, h, w: h, data: (0..n * c * h * h).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect() };
        let w = DMatrix::from_fn(9, c, |i, j| (((i * 31 + j * 17) % 23) as f32 / 11.0) - 1.0);
        let z = conv_forward(&kind, &w, &x, 1);
        let dz = Act { data: (0..z.data.len()).map(|i| ((i * 13 % 29) as f32 / 14.0) - 1.0).collect(), ..z.clone() };
        let (dw, dx) = conv_backward(&kind, &w, &x, &dz, true, 1);
        let dx = dx.unwrap();
        let f = |x: &Act, w: &DMatrix<f32>| -> f64 { conv_forward(&kind, w, x, 1).data.iter().zip(&dz.data).map(|(a, b)| (*a as f64) * (*b as f64)).sum() };
        let mut err: f64 = 0.0;
        for k in (0..x.data.len()).step_by(13) {
            let (mut p, mut q) = (x.clone(), x.clone());
            p.data[k] += 1e-2; q.data[k] -= 1e-2;
            let fd = (f(&p, &w) - f(&q, &w)) / 2e-2;
            err = err.max((fd - dx.data[k] as f64).abs());
        }
        let mut errw: f64 = 0.0;
        for k in 0..w.len() {
            let (mut p, mut q) = (w.clone(), w.clone());
            p.as_mut_slice()[k] += 1e-2; q.as_mut_slice()[k] -= 1e-2;
            let fd = (f(&x, &p) - f(&x, &q)) / 2e-2;
            errw = errw.max((fd - dw.as_slice()[k] as f64).abs() / (1.0 + fd.abs()));
        }
        println!("n {n} c {c} h {h} s {s}: dx err {err:.2e} dw rel err {errw:.2e}");
    }
}
