//! The MNIST / Fashion-MNIST IDX reader: the input is split into an image file and a label file
//! (the first byte says where), and every image of a parsed set is read.
#![no_main]
use std::path::Path;

use infoloss::data::mnist::Mnist;
use infoloss::data::Dataset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = (cut as usize * 4).min(rest.len());
    let (labels, images) = rest.split_at(cut);
    if let Ok(set) = Mnist::from_bytes(Path::new("fuzz"), images, Path::new("images"), labels, Path::new("labels")) {
        for i in 0..set.len().min(64) {
            let _ = set.image(i);
        }
    }
});
