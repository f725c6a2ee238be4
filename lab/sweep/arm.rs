//! An arm at a size: the arm's `[ffn]` table with what the size supplies filled in, parsed
//! through the feed-forward registry, and matched to the arm its `match` names.

use super::spec::{ExperimentSpec, SizeSpec};
use crate::error::FieldError;
use crate::model::ffn::FfnSpec;

/// The `[ffn]` of `arm_name` at `size`: the arm's table with the size's fields filled in, parsed
/// through the variant registry, and matched to the arm its `match` names. Error paths are
/// from the experiment file's root (`arms.<arm>.match`, `sizes.<size>.d_ff`).
pub fn arm_ffn(
    exp: &ExperimentSpec,
    arm_name: &str,
    size: &SizeSpec,
) -> Result<FfnSpec, FieldError> {
    let in_arm = |field: &str, message: String| {
        FieldError::new(field, message)
            .under(arm_name)
            .under("arms")
    };
    let mut table = exp.arms[arm_name].0.clone();
    let target = table.remove("match");
    // How the arm trains, not its feed-forward (`sweep::recipe`).
    table.remove("recipe");
    fill_from_size(&mut table, size)
        .map_err(|m| FieldError::new("d_ff", m).under(&size.name).under("sizes"))?;
    let ffn: FfnSpec = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| FieldError::new(arm_name, e.message()).under("arms"))?;
    let Some(target) = target else {
        return Ok(ffn);
    };
    let target = match target.as_str() {
        Some(t) if t != arm_name && exp.arms.contains_key(t) => t.to_string(),
        _ => {
            let message = format!("{target} is not another arm of this experiment");
            return Err(in_arm("match", message));
        }
    };
    if exp.arms[&target].match_arm().is_some() {
        let message =
            format!("arm {target:?} is itself matched to another arm; match a routed arm");
        return Err(in_arm("match", message));
    }
    let matched = arm_ffn(exp, &target, size)?;
    ffn.matched_to(matched).map_err(|m| in_arm("match", m))
}

/// Fill what a sweep's size supplies into an arm's `[ffn]` table where the arm leaves it
/// out: an MoE's `d_expert` (and `d_ff` for its dense blocks when the size has one), a
/// dense arm's `d_ff = "size"` (the default). Err: why the size cannot supply it.
pub fn fill_from_size(table: &mut toml::Table, size: &SizeSpec) -> Result<(), String> {
    match table.get("kind").and_then(|k| k.as_str()) {
        Some("moe") => {
            table
                .entry("d_expert")
                .or_insert((size.d_expert as i64).into());
            if let Some(d) = size.d_ff {
                table.entry("d_ff").or_insert((d as i64).into());
            }
        }
        Some("dense") => {
            let wants_size = match table.get("d_ff") {
                None => true,
                Some(v) => v.as_str() == Some("size"),
            };
            if wants_size {
                let d = size
                    .d_ff
                    .ok_or("needed by dense arms with d_ff = \"size\" (the default)")?;
                table.insert("d_ff".into(), (d as i64).into());
            }
        }
        // Anything else is refused, with the registered kinds, when the table is parsed.
        _ => {}
    }
    Ok(())
}
