use infoloss::layers::{ConvKind, Pointwise};
use infoloss::train::ops::*;
use infoloss::train::Act;
use nalgebra::DMatrix;
fn main() {
    for (cin, cout, n, h) in [(3, 4, 2, 5), (32, 64, 8, 2), (16, 96, 8, 8), (64, 32, 8, 4), (32, 64, 8, 4)] {
        let kind = ConvKind::Pointwise(Pointwise { in_channels: cin, out_channels: cout });
        let x = Act { n, c: cin, h, w: h, data: (0..n * cin * h * h).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect() };
        let w = DMatrix::from_fn(cin, cout, |i, j| (((i * 31 + j * 17) % 23) as f32 / 11.0) - 1.0);
        let z = conv_forward(&kind, &w, &x, 1);
        let dz = Act { data: (0..z.data.len()).map(|i| ((i * 13 % 29) as f32 / 14.0) - 1.0).collect(), ..z.clone() };
        let (dw, _) = conv_backward(&kind, &w, &x, &dz, true, 1);
        let m = x.m();
        let mut err = 0.0f32;
        for i in 0..cin {
            for o in 0..cout {
                let v: f32 = (0..m).map(|p| x.data[i * m + p] * dz.data[o * m + p]).sum();
                err = err.max((v - dw[(i, o)]).abs() / (1.0 + v.abs()));
            }
        }
        println!("cin {cin} cout {cout} m {m}: dW max rel err {err}");
    }
}
