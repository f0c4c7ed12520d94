//! Writes N synthetic training and M validation images with labels as .npy (for cross-checking the
//! data set with another framework): `cargo run --release --example export_synthetic -- N M DIR`.

use infoloss::data::{DataSpec, Split};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (n, m, dir) = (args[1].parse::<usize>()?, args[2].parse::<usize>()?, std::path::PathBuf::from(&args[3]));
    for (split, count, name) in [(Split::Train, n, "train"), (Split::Val, m, "val")] {
        let data = DataSpec::Synthetic.open(split, 32, 0)?;
        let mut xs = Vec::with_capacity(count * 3 * 32 * 32);
        let mut ys = Vec::with_capacity(count);
        for i in 0..count {
            let (img, label) = data.image(i)?;
            xs.extend_from_slice(img.as_slice());
            ys.push(label as f32);
        }
        infoloss::io::npy::write_npy(&dir.join(format!("{name}_x.npy")), &[count, 3, 32, 32], &xs)?;
        infoloss::io::npy::write_npy(&dir.join(format!("{name}_y.npy")), &[count], &ys)?;
    }
    Ok(())
}
