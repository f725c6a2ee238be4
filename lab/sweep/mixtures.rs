//! Data mixtures drawn for a sweep's mixture axis: Dirichlet draws around the base weights
//! (RegMix's method: `concentration` times the base weights as the Dirichlet's parameters, so
//! a small concentration reaches the simplex's corners and a large one stays near the base),
//! and the fixed points every mixture axis trains (the base weights and uniform).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::spec::{MixtureSpec, TargetSpec};
use crate::data::{DataSpec, DomainWeights};
use crate::error::FieldError;
use crate::run::{MixTarget, Mixture};

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

/// The domains a mixture weighs: the `[data] sources` by name, else the generated corpus's
/// four domains.
pub fn domains(data: &DataSpec) -> Vec<String> {
    match data.sources.is_empty() {
        true => GENERATED.iter().map(|d| d.to_string()).collect(),
        false => data.sources.iter().map(|s| s.name.clone()).collect(),
    }
}

/// The generated corpus's domains, in [`DomainWeights`]' order.
pub const GENERATED: [&str; 4] = ["knowledge", "math", "code", "multilingual"];

/// The data's own weights over [`domains`], normalised.
pub fn base_weights(data: &DataSpec) -> Vec<f64> {
    let w: Vec<f64> = match data.sources.is_empty() {
        true => {
            let d = data.weights;
            vec![d.knowledge, d.math, d.code, d.multilingual]
        }
        false => data.sources.iter().map(|s| s.weight).collect(),
    };
    let sum: f64 = w.iter().sum();
    w.iter().map(|x| x / sum).collect()
}

/// `data` training on mixture `r` (one weight per domain of [`domains`]).
pub fn set_weights(data: &mut DataSpec, r: &[f64]) {
    match data.sources.is_empty() {
        true => {
            data.weights = DomainWeights {
                knowledge: r[0],
                math: r[1],
                code: r[2],
                multilingual: r[3],
            }
        }
        false => {
            for (s, w) in data.sources.iter_mut().zip(r) {
                s.weight = *w;
            }
        }
    }
}

/// The axis: the fixed points first, then the draws (`d0`, `d1`, ...), reproducible from the
/// spec's seed. Err names the field of `[mixtures]` at fault.
pub fn axis(spec: &MixtureSpec, data: &DataSpec) -> Result<Vec<Mixture>, FieldError> {
    let base = base_weights(data);
    let k = base.len();
    check_axis(spec, &base)?;
    let fixed = spec.fixed.iter().map(|name| Mixture {
        name: name.clone(),
        weights: match name.as_str() {
            "base" => base.clone(),
            _ => vec![1.0 / k as f64; k],
        },
    });
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let alpha = around(&base, spec.concentration);
    let drawn = (0..spec.draws).map(|i| Mixture {
        name: format!("d{i}"),
        weights: dirichlet(&alpha, &mut rng),
    });
    Ok(fixed.chain(drawn).collect())
}

fn check_axis(spec: &MixtureSpec, base: &[f64]) -> Result<(), FieldError> {
    let k = base.len();
    let field = |name: &str, m: String| FieldError::new(name, m).under("mixtures");
    if !(spec.concentration.is_finite() && spec.concentration > 0.0) {
        return Err(field(
            "concentration",
            format!("must be positive, got {}", spec.concentration),
        ));
    }
    if !(spec.floor >= 0.0 && spec.floor <= 1.0 / k as f64) {
        let m = format!("must be in [0, 1/{k}] for {k} domains, got {}", spec.floor);
        return Err(field("floor", m));
    }
    if let Some(bad) = spec.fixed.iter().find(|f| *f != "base" && *f != "uniform") {
        return Err(field(
            "fixed",
            format!("{bad:?} is not a mixture: use \"base\" or \"uniform\""),
        ));
    }
    let total = spec.draws + spec.fixed.len();
    if total < k + 2 {
        let m = format!(
            "{total} mixtures in all ({} fixed + {} draws): the mixing law has k + 1 = {} \
             parameters for {k} domains, and leaving one mixture out needs one more",
            spec.fixed.len(),
            spec.draws,
            k + 1
        );
        return Err(field("draws", m));
    }
    crate::error::at_most("draws", total, crate::limits::MIXTURES)
        .map_err(|e| e.under("mixtures"))?;
    if spec.draws > 0 && base.iter().any(|w| w.is_nan() || *w <= 0.0) {
        let m = "draws around the base weights need every base weight positive".to_string();
        return Err(field("draws", m));
    }
    Ok(())
}

/// The streams a target may name: the domains, and for the generated corpus its held-out facts.
pub fn streams(data: &DataSpec) -> Vec<String> {
    let mut all = domains(data);
    if data.sources.is_empty() {
        all.push("knowledge_heldout".into());
    }
    all
}

/// The axis' target, checked against the data's streams: the spec's, or the domains' mean.
pub fn target(spec: &MixtureSpec, data: &DataSpec) -> Result<MixTarget, FieldError> {
    let Some(t) = &spec.target else {
        let d = domains(data);
        let w = 1.0 / d.len() as f64;
        let streams = d.into_iter().map(|s| (s, w)).collect();
        return Ok(MixTarget {
            streams,
            measure: "loss".into(),
        });
    };
    check_target(t, data)?;
    let total: f64 = t.streams.values().sum();
    let streams = t
        .streams
        .iter()
        .map(|(s, w)| (s.clone(), w / total))
        .collect();
    Ok(MixTarget {
        streams,
        measure: t.measure.clone(),
    })
}

/// What a target may measure of its streams: the final validation loss, the loss on answer
/// bytes, or the exact-match rate of the answers (minimised as 1 − the rate).
pub const MEASURES: [&str; 3] = ["loss", "answer_loss", "exact_match"];

fn check_target(t: &TargetSpec, data: &DataSpec) -> Result<(), FieldError> {
    let field = |name: &str, m: String| FieldError::new(name, m).under("target").under("mixtures");
    let known = streams(data);
    if let Some(bad) = t.streams.keys().find(|s| !known.contains(s)) {
        return Err(field(
            "streams",
            format!("{bad:?} is not a stream of this data: {}", known.join(", ")),
        ));
    }
    if t.streams.is_empty() || t.streams.values().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(field(
            "streams",
            "needs at least one stream, every weight positive".into(),
        ));
    }
    if !MEASURES.contains(&t.measure.as_str()) {
        let m = format!("{:?}: use one of {}", t.measure, MEASURES.join(", "));
        return Err(field("measure", m));
    }
    Ok(())
}
