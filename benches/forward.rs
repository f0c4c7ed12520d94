//! `cargo bench --bench forward`: forward and hooked-forward throughput of MobileNetV2 1.0@224 at
//! batch 32 (the same library functions as `infoloss bench forward|analyze`). Peers are timed by
//! `bench/peers.py` in the same run; this harness reports our side only.

use infoloss::bench::{bench_analyze, bench_forward};
use infoloss::ModelConfig;

fn main() -> Result<(), infoloss::Error> {
    let config = ModelConfig::default();
    let f = bench_forward(&config, 32, 5)?;
    println!("forward: {:.1} img/s ({:.1} ms/batch)", f.images_per_second, f.ms_per_batch);
    let a = bench_analyze(&config, 32, 5)?;
    println!("analyze: {:.1} img/s (overhead {:+.0}% vs forward)", a.analyze.images_per_second, a.overhead * 100.0);
    Ok(())
}
