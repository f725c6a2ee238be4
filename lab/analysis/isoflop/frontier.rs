//! Frontiers across budgets: the compute-optimal size `N*(C) ∝ C^a` and loss `L*(C) ∝ C^−β`,
//! each a line in log–log through the budgets whose optimum lies inside their sizes; and the
//! budget at which a frontier reaches a loss, read between its measured optima (log-log
//! interpolation: no functional form assumed, and nothing read outside them; a power law
//! without a floor bends away from losses near the corpus' floor).

use serde::{Deserialize, Serialize};

/// `ln y = intercept + slope · ln C`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub intercept: f64,
    pub slope: f64,
}

impl LogLine {
    /// Least squares through `(C, y)`; `None` with fewer than 2 distinct budgets.
    pub fn fit(points: &[(f64, f64)]) -> Option<LogLine> {
        let pts: Vec<(f64, f64)> = points.iter().map(|(c, y)| (c.ln(), y.ln())).collect();
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if pts.len() < 2 || sxx < 1e-12 {
            return None;
        }
        let slope = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
        Some(LogLine {
            intercept: my - slope * mx,
            slope,
        })
    }

    pub fn at(&self, c: f64) -> f64 {
        (self.intercept + self.slope * c.ln()).exp()
    }

    /// The budget at which the line reaches `y`; `None` when it is flat.
    pub fn budget_for(&self, y: f64) -> Option<f64> {
        (self.slope.abs() > 1e-12).then(|| ((y.ln() - self.intercept) / self.slope).exp())
    }
}

/// One arm's frontier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frontier {
    /// The budgets it is fitted through (those with an interior optimum), ascending.
    pub budgets: Vec<f64>,
    /// L* at each of `budgets`.
    pub losses: Vec<f64>,
    /// `N*(C)`: its slope is the exponent a.
    pub params: LogLine,
    /// `L*(C)`: its slope is −β.
    pub loss: LogLine,
}

impl Frontier {
    /// Through `(budget, N*, L*)` of the interior optima.
    pub fn fit(optima: &[(f64, f64, f64)]) -> Option<Frontier> {
        let mut sorted = optima.to_vec();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let params = LogLine::fit(&sorted.iter().map(|o| (o.0, o.1)).collect::<Vec<_>>())?;
        let loss = LogLine::fit(&sorted.iter().map(|o| (o.0, o.2)).collect::<Vec<_>>())?;
        Some(Frontier {
            budgets: sorted.iter().map(|o| o.0).collect(),
            losses: sorted.iter().map(|o| o.2).collect(),
            params,
            loss,
        })
    }

    /// The budget at which this frontier reaches `loss`: between the first two consecutive
    /// optima whose L* bracket it, ln C interpolated linearly in ln L*; `None` when no pair
    /// brackets it (the loss lies outside the measured optima: never extrapolated).
    pub fn budget_inside(&self, loss: f64) -> Option<f64> {
        match self.reach(loss)? {
            Reach::Inside(c) => Some(c),
            Reach::Before(_) | Reach::After(_) => None,
        }
    }

    /// Where this frontier reaches `loss`: read between its optima ([`Self::budget_inside`]),
    /// or, for a loss outside them, only a bound (the frontier falls with compute, so a loss
    /// above every L* is reached before the smallest budget fitted, one below every L* only
    /// after the largest). `None` for a frontier without optima.
    pub fn reach(&self, loss: f64) -> Option<Reach> {
        let pts: Vec<(f64, f64)> = (self.budgets.iter().zip(&self.losses))
            .map(|(c, l)| (c.ln(), l.ln()))
            .collect();
        let y = loss.ln();
        let inside = pts.windows(2).find_map(|w| {
            let ((c0, l0), (c1, l1)) = (w[0], w[1]);
            let inside = (l0.min(l1)..=l0.max(l1)).contains(&y);
            match (inside, l1 == l0) {
                (false, _) => None,
                (true, true) => Some(c0.exp()),
                (true, false) => Some((c0 + (c1 - c0) * (y - l0) / (l1 - l0)).exp()),
            }
        });
        if let Some(c) = inside {
            return Some(Reach::Inside(c));
        }
        let highest = self.losses.iter().copied().fold(f64::MIN, f64::max);
        match loss > highest {
            true => Some(Reach::Before(*self.budgets.first()?)),
            false => Some(Reach::After(*self.budgets.last()?)),
        }
    }
}

/// A frontier's budget for a loss, or a ratio of it: a value read between the measured optima,
/// or a censored one known only to lie below (`Before`) or above (`After`) a bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    Inside(f64),
    Before(f64),
    After(f64),
}

impl Reach {
    /// The same reading with its value or bound divided by `by`.
    pub fn over(self, by: f64) -> Reach {
        match self {
            Reach::Inside(v) => Reach::Inside(v / by),
            Reach::Before(b) => Reach::Before(b / by),
            Reach::After(b) => Reach::After(b / by),
        }
    }

    pub fn value(self) -> Option<f64> {
        match self {
            Reach::Inside(v) => Some(v),
            Reach::Before(_) | Reach::After(_) => None,
        }
    }
}
