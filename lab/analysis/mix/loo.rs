//! Leave-one-mixture-out prediction error: each mixture's loss predicted by a fit that never saw
//! that mixture, so a law is trusted only if it predicts unseen mixtures better than their mean.

use serde::{Deserialize, Serialize};

/// The errors of predicting each held-out mixture (prediction − observed, nats), and how many
/// fits failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LooError {
    pub errors: Vec<f64>,
    /// The held-out mixture (group) of each error.
    pub held: Vec<usize>,
    pub failed: usize,
}

impl LooError {
    /// Each held-out mixture's mean squared error, by group.
    pub fn by_mixture(&self) -> std::collections::BTreeMap<usize, f64> {
        let mut sums: std::collections::BTreeMap<usize, (f64, usize)> = Default::default();
        for (e, g) in self.errors.iter().zip(&self.held) {
            let s = sums.entry(*g).or_default();
            (s.0, s.1) = (s.0 + e * e, s.1 + 1);
        }
        sums.into_iter()
            .map(|(g, (s, n))| (g, s / n as f64))
            .collect()
    }

    /// Root mean square of the errors (`None` when every fit failed).
    pub fn rmse(&self) -> Option<f64> {
        let n = self.errors.len();
        (n > 0).then(|| (self.errors.iter().map(|e| e * e).sum::<f64>() / n as f64).sqrt())
    }
}

/// Each mixture held out in turn: `fit` sees the rows of the other mixtures only (their
/// indices), and its `predict`ion for each held-out row is scored against that row's loss.
/// Rows of one mixture (its seeds) go out together: `groups[i]` names the mixture of row i.
pub fn leave_one_out<M>(
    losses: &[f64],
    groups: &[usize],
    fit: impl Fn(&[usize]) -> Option<M>,
    predict: impl Fn(&M, usize) -> f64,
) -> LooError {
    let mut ids: Vec<usize> = groups.to_vec();
    ids.sort();
    ids.dedup();
    let (mut errors, mut held_out, mut failed) = (Vec::new(), Vec::new(), 0);
    for held in ids {
        let rows: Vec<usize> = (0..losses.len()).filter(|i| groups[*i] != held).collect();
        let Some(model) = fit(&rows) else {
            failed += 1;
            continue;
        };
        for i in (0..losses.len()).filter(|i| groups[*i] == held) {
            errors.push(predict(&model, i) - losses[i]);
            held_out.push(held);
        }
    }
    LooError {
        errors,
        held: held_out,
        failed,
    }
}

/// The baseline every law must beat: each held-out mixture predicted by the mean loss of the
/// others.
pub fn mean_baseline(losses: &[f64], groups: &[usize]) -> LooError {
    let mean = |rows: &[usize]| {
        let n = rows.len();
        (n > 0).then(|| rows.iter().map(|i| losses[*i]).sum::<f64>() / n as f64)
    };
    leave_one_out(losses, groups, mean, |m, _| *m)
}

/// The entries of `v` at `rows`.
pub fn select<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|i| v[*i].clone()).collect()
}
