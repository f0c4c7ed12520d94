//! The CIFAR-10 / CIFAR-100 binary record reader.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    let (label_bytes, classes) = if kind % 2 == 0 { (1, 10) } else { (2, 100) };
    let (mut labels, mut pixels) = (Vec::new(), Vec::new());
    let _ = infoloss::data::cifar::parse_records(rest, Path::new("fuzz.bin"), label_bytes, classes, &mut labels, &mut pixels);
});
