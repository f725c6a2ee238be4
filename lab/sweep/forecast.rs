//! Held-out sizes of a scaling sweep (`[forecast] hold_out`), checked against the preset: their
//! cells train only once the forecast for them is frozen ([`super::Plan::first_phase`]).

use std::path::Path;

use super::cells::UnderPreset;
use super::spec::{ExperimentSpec, PresetSpec, SizeSpec};
use crate::error::{FieldError, SpecError};
use crate::limits::FIT_BUDGETS as MIN_FITTED_SIZES;

/// The sizes held out (the preset's `hold_out`, else `[forecast]`'s), each one the preset
/// trains, leaving enough sizes to fit. Err names the field at fault.
pub fn held_out(
    exp: &ExperimentSpec,
    (preset_name, preset): (&str, &PresetSpec),
    sizes: &[&SizeSpec],
    file: &Path,
) -> Result<Vec<String>, SpecError> {
    let (names, in_preset) = match (&preset.hold_out, &exp.forecast) {
        (Some(h), _) => (h.clone(), true),
        (None, Some(f)) => (f.hold_out.clone(), false),
        (None, None) => return Ok(Vec::new()),
    };
    let fail = |m: String| {
        let e = FieldError::new("hold_out", m);
        Err(match in_preset {
            true => e.under_preset(preset_name, file),
            false => e.under("forecast").in_file(file),
        })
    };
    if names.is_empty() {
        return Ok(names);
    }
    let other = [
        (exp.learning_rates.is_some(), "learning_rates"),
        (
            exp.isoflop.is_some(),
            "[isoflop] (hold out budgets there: hold_out_budgets)",
        ),
        (exp.mixtures.is_some(), "[mixtures]"),
    ];
    if let Some((_, name)) = other.iter().find(|o| o.0) {
        return fail(format!(
            "held-out sizes forecast a scaling sweep; not one with {name}"
        ));
    }
    if let Some(bad) = names.iter().find(|n| !sizes.iter().any(|s| &&s.name == n)) {
        let trained: Vec<&str> = sizes.iter().map(|s| s.name.as_str()).collect();
        return fail(format!(
            "{bad:?} is not a size this preset trains: {trained:?}"
        ));
    }
    let fitted = sizes.len() - names.len();
    if fitted < MIN_FITTED_SIZES {
        return fail(format!(
            "leaves {fitted} sizes to fit; the law E + A·C^(−α) needs {MIN_FITTED_SIZES}"
        ));
    }
    Ok(names)
}

/// The IsoFLOP budgets held out (the preset's `hold_out_budgets`, else `[forecast]`'s), each
/// one of the profiles' budgets, leaving at least 3 to fit the L*(C) line with a residual.
pub fn held_out_budgets(
    exp: &ExperimentSpec,
    (preset_name, preset): (&str, &PresetSpec),
    file: &Path,
) -> Result<Vec<f64>, SpecError> {
    let (held, in_preset) = match (&preset.hold_out_budgets, &exp.forecast) {
        (Some(h), _) => (h.clone(), true),
        (None, Some(f)) => (f.hold_out_budgets.clone(), false),
        (None, None) => return Ok(Vec::new()),
    };
    if held.is_empty() {
        return Ok(held);
    }
    let fail = |m: String| {
        let e = FieldError::new("hold_out_budgets", m);
        Err(match in_preset {
            true => e.under_preset(preset_name, file),
            false => e.under("forecast").in_file(file),
        })
    };
    let Some(iso) = &exp.isoflop else {
        return fail(
            "held-out budgets are IsoFLOP profiles' budgets: this experiment has no [isoflop]"
                .into(),
        );
    };
    let budgets = preset.budgets.as_ref().unwrap_or(&iso.budgets);
    let known = |h: &f64| budgets.iter().any(|b| (h / b - 1.0).abs() < 1e-9);
    if let Some(bad) = held.iter().find(|h| !known(h)) {
        return fail(format!(
            "{bad:e} is not one of the profiles' budgets {budgets:?}"
        ));
    }
    let fitted = budgets.len() - held.len();
    if fitted < MIN_FITTED_BUDGETS {
        let m = format!(
            "leaves {fitted} budgets to fit; the L*(C) line needs {MIN_FITTED_BUDGETS} (two \
             parameters and a residual)"
        );
        return fail(m);
    }
    Ok(held)
}

/// Budgets a log–log line of L* against C is fitted through, for an interval.
const MIN_FITTED_BUDGETS: usize = 3;
