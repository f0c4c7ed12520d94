//! Evaluation of the eval-mode model on a data set: loss, accuracy, confusion matrix.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::MobileNetV2;
use crate::tensor::Batch;

/// What [`evaluate`] measures: mean loss, accuracy and the confusion matrix
/// (`confusion[true][predicted]`, counts).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// Accuracy of each true class (NaN for a class with no images).
    pub fn per_class_accuracy(&self) -> Vec<f64> {
        self.confusion.iter().enumerate().map(|(k, row)| row[k] as f64 / row.iter().sum::<usize>() as f64).collect()
    }
}

/// Loss, accuracy and confusion matrix of the eval-mode model on a data set.
///
/// # Errors
/// An empty set (or `limit` 0), an unreadable image.
pub fn evaluate(model: &mut MobileNetV2, data: &dyn Dataset, limit: Option<usize>, batch: usize) -> Result<Evaluation> {
    model.refold();
    let n = limit.unwrap_or(usize::MAX).min(data.len());
    if n == 0 {
        let (key, value) =
            if limit == Some(0) { ("--limit".to_string(), "0".to_string()) } else { ("evaluation set".to_string(), format!("{} images", data.len())) };
        return Err(Error::config(key, value, "there is nothing to evaluate; use a data set with images and --limit ≥ 1"));
    }
    let k = data.classes();
    if k > model.config().classes {
        return Err(Error::config(
            "classes",
            model.config().classes,
            format!("the data set has {k} classes but the model predicts {}; evaluate it on data with its classes", model.config().classes),
        ));
    }
    if let Some(native) = data.native_resolution().filter(|&r| r != model.config().resolution) {
        return Err(Error::config(
            "resolution",
            model.config().resolution,
            format!("the model was built for {0}×{0} inputs but the data set's images are {native}×{native}", model.config().resolution),
        ));
    }
    let (mut loss, mut correct) = (0.0f64, 0usize);
    let mut confusion = vec![vec![0usize; k]; k];
    for start in (0..n).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(n);
        let items = (start..end).map(|i| data.image(i)).collect::<Result<Vec<_>>>()?;
        let labels: Vec<usize> = items.iter().map(|x| x.1).collect();
        let b = Batch::new(items.into_iter().map(|x| x.0).collect())?;
        let logits = model.forward(&b)?;
        let (l, _, c) = super::ops::softmax_cross_entropy(&logits, &labels, 0.0);
        loss += l * labels.len() as f64;
        correct += c;
        for (i, &y) in labels.iter().enumerate() {
            let row = logits.row(i);
            let pred = (0..row.len()).fold(0, |best, j| if row[j] > row[best] { j } else { best });
            if y < k && pred < k {
                confusion[y][pred] += 1;
            }
        }
    }
    Ok(Evaluation { loss: loss / n.max(1) as f64, accuracy: correct as f64 / n.max(1) as f64, confusion })
}
