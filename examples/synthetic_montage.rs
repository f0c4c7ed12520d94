//! Writes a 10×10 montage of the embedded synthetic data set (one class per row) to
//! `notebooks-out/synthetic/montage.png`: `cargo run --release --example synthetic_montage`.

use infoloss::data::synthetic::{Synthetic, SYNTHETIC_NAMES, SYNTHETIC_SIZE};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = SYNTHETIC_SIZE as u32;
    let mut img = image::RgbImage::new(10 * n, 10 * n);
    for class in 0..10u32 {
        for k in 0..10u32 {
            let (px, label) = Synthetic::render(0, (k * 10 + class) as usize);
            assert_eq!(label, class as usize);
            for y in 0..n {
                for x in 0..n {
                    let at = |c: usize| px[c * (n * n) as usize + (y * n + x) as usize] as u8;
                    img.put_pixel(k * n + x, class * n + y, image::Rgb([at(0), at(1), at(2)]));
                }
            }
        }
    }
    std::fs::create_dir_all("notebooks-out/synthetic")?;
    img.save("notebooks-out/synthetic/montage.png")?;
    println!("rows: {}", SYNTHETIC_NAMES.join(", "));
    Ok(())
}
