//! Frontiers across budgets: the compute-optimal size `N*(C) ∝ C^a` and loss `L*(C) ∝ C^−β`,
//! each a line in log–log through the budgets whose optimum lies inside their sizes; and the
//! compute multiplier read along them.

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
    /// `N*(C)`: its slope is the exponent a.
    pub params: LogLine,
    /// `L*(C)`: its slope is −β.
    pub loss: LogLine,
}

impl Frontier {
    /// Through `(budget, N*, L*)` of the interior optima.
    pub fn fit(optima: &[(f64, f64, f64)]) -> Option<Frontier> {
        let mut budgets: Vec<f64> = optima.iter().map(|o| o.0).collect();
        budgets.sort_by(f64::total_cmp);
        let params = LogLine::fit(&optima.iter().map(|o| (o.0, o.1)).collect::<Vec<_>>())?;
        let loss = LogLine::fit(&optima.iter().map(|o| (o.0, o.2)).collect::<Vec<_>>())?;
        Some(Frontier {
            budgets,
            params,
            loss,
        })
    }

    /// The budget at which this frontier reaches `loss`, if it lies inside the budgets it
    /// was fitted through (never read outside them).
    pub fn budget_inside(&self, loss: f64) -> Option<f64> {
        let c = self.loss.budget_for(loss)?;
        let (lo, hi) = (self.budgets[0], self.budgets[self.budgets.len() - 1]);
        (lo * 0.999 <= c && c <= hi * 1.001).then_some(c)
    }
}
