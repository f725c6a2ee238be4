//! Data mixtures drawn for a sweep's mixture axis: Dirichlet draws around the base weights
//! (RegMix's method: `concentration` times the base weights as the Dirichlet's parameters, so
//! a small concentration reaches the simplex's corners and a large one stays near the base).

use rand::Rng;

/// One draw from Dirichlet(`alpha`): independent Gamma(α_j, 1) variables divided by their sum.
/// Every α_j must be positive.
pub fn dirichlet(alpha: &[f64], rng: &mut impl Rng) -> Vec<f64> {
    let g: Vec<f64> = alpha.iter().map(|a| gamma(*a, rng)).collect();
    let sum: f64 = g.iter().sum();
    g.iter().map(|x| x / sum).collect()
}

/// A Gamma(`shape`, 1) variable (Marsaglia and Tsang 2000); a shape below 1 through
/// Gamma(shape + 1) · U^(1/shape), which has the same law.
pub fn gamma(shape: f64, rng: &mut impl Rng) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        return gamma(shape + 1.0, rng) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random();
        // The squeeze accepts most draws without the logarithms.
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A standard normal variable (Box–Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The Dirichlet's parameters for draws around `base` (weights summing to 1) at
/// `concentration`: α_j = concentration · k · base_j, so the draws' mean is `base` and the
/// uniform base gives α_j = concentration.
pub fn around(base: &[f64], concentration: f64) -> Vec<f64> {
    let k = base.len() as f64;
    base.iter().map(|b| concentration * k * b).collect()
}
