//! One IsoFLOP profile: an arm's final losses at one budget across model sizes, the parabola
//! of loss in ln N through them (Chinchilla's approach 2), and its vertex, the compute-optimal
//! size N*, with its tokens D* and loss L*.

use serde::{Deserialize, Serialize};

use crate::analysis::fit::solve3;

/// One size of a profile: its counts and each seed's final validation loss.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizePoint {
    pub size: String,
    /// Active parameters (the x axis: compute per token scales with them).
    pub params: u64,
    pub params_total: u64,
    /// Exact training FLOPs per token of this size and arm.
    pub train_flops_per_token: f64,
    /// `(seed, final validation loss)`.
    pub losses: Vec<(u64, f64)>,
}

impl SizePoint {
    pub fn mean_loss(&self) -> f64 {
        self.losses.iter().map(|l| l.1).sum::<f64>() / self.losses.len() as f64
    }
}

/// `L = a + b·u + c·u²` with `u = ln N − x0` (centred for conditioning).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Parabola {
    pub x0: f64,
    pub a: f64,
    pub b: f64,
    pub c: f64,
}

impl Parabola {
    /// Least squares through `(ln N, loss)` points; `None` with fewer than 3 distinct x.
    pub fn fit(points: &[(f64, f64)]) -> Option<Parabola> {
        let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
        if xs.len() < 3 {
            return None;
        }
        let x0 = points.iter().map(|p| p.0).sum::<f64>() / points.len() as f64;
        let (mut m, mut v) = ([[0.0; 3]; 3], [0.0; 3]);
        for &(x, y) in points {
            let u = x - x0;
            let row = [1.0, u, u * u];
            for i in 0..3 {
                v[i] += row[i] * y;
                for j in 0..3 {
                    m[i][j] += row[i] * row[j];
                }
            }
        }
        let [a, b, c] = solve3(m, v)?;
        Some(Parabola { x0, a, b, c })
    }

    pub fn at(&self, ln_n: f64) -> f64 {
        let u = ln_n - self.x0;
        self.a + self.b * u + self.c * u * u
    }

    /// ln N of the minimum; `None` when the parabola opens downward (no minimum).
    pub fn vertex(&self) -> Option<f64> {
        (self.c > 0.0).then(|| self.x0 - self.b / (2.0 * self.c))
    }
}

/// The profile's optimum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Optimum {
    /// N*: active parameters at the vertex.
    pub params: f64,
    /// D* = C / (training FLOPs per token at N*), interpolated in ln N between the sizes.
    pub tokens: f64,
    /// L*: the parabola's value at the vertex.
    pub loss: f64,
    /// The vertex lies inside the sizes trained (else it is an extrapolation: see `edge`).
    pub interior: bool,
}

/// The parabola through every seed's point of `points`, and its optimum at `budget`.
pub fn optimum(points: &[SizePoint], budget: f64) -> Option<(Parabola, Option<Optimum>)> {
    let xy: Vec<(f64, f64)> = (points.iter())
        .flat_map(|p| p.losses.iter().map(|l| ((p.params as f64).ln(), l.1)))
        .collect();
    let fit = Parabola::fit(&xy)?;
    let optimum = fit.vertex().map(|x| {
        let xs = points.iter().map(|p| (p.params as f64).ln());
        let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        Optimum {
            params: x.exp(),
            tokens: budget / flops_per_token_at(points, x),
            loss: fit.at(x),
            interior: lo <= x && x <= hi,
        }
    });
    Some((fit, optimum))
}

/// Training FLOPs per token at ln N = `x`: linear in ln N–ln F between the two nearest sizes
/// (the nearest two at either end).
fn flops_per_token_at(points: &[SizePoint], x: f64) -> f64 {
    let mut pts: Vec<(f64, f64)> = (points.iter())
        .map(|p| ((p.params as f64).ln(), p.train_flops_per_token.ln()))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-12);
    if pts.len() == 1 {
        return pts[0].1.exp();
    }
    let i = pts.iter().position(|p| p.0 >= x).unwrap_or(pts.len() - 1);
    let i = i.clamp(1, pts.len() - 1);
    let ((x0, y0), (x1, y1)) = (pts[i - 1], pts[i]);
    (y0 + (y1 - y0) * (x - x0) / (x1 - x0)).exp()
}
