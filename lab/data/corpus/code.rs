//! Programs in a small made-up language: nested `if` blocks, `let` definitions and uses of
//! defined names only, balanced brackets. Training programs are named f0..f89, validation
//! programs f90..f99, so no validation line occurs in training.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::split::Split;

/// Function numbers below this are training programs; the rest validation.
pub const VAL_FROM: usize = 90;

fn block(
    rng: &mut ChaCha8Rng,
    depth: usize,
    vars: &mut Vec<String>,
    next: &mut usize,
    out: &mut String,
) {
    for _ in 0..rng.random_range(1..=3) {
        if depth < 3 && rng.random_bool(0.35) {
            let v = &vars[rng.random_range(0..vars.len())];
            out.push_str(&format!("if ({v} > {}) {{ ", rng.random_range(0..10)));
            let scope = vars.len();
            block(rng, depth + 1, vars, next, out);
            vars.truncate(scope); // names defined inside the block go out of scope
            out.push_str("} ");
        } else {
            let name = format!("v{next}");
            *next += 1;
            let used = &vars[rng.random_range(0..vars.len())];
            let op = ["+", "-", "*"][rng.random_range(0..3)];
            out.push_str(&format!(
                "let {name} = {used} {op} {}; ",
                rng.random_range(0..10)
            ));
            vars.push(name);
        }
    }
}

pub fn program(rng: &mut ChaCha8Rng, split: Split, out: &mut String) {
    let id = match split {
        Split::Train => rng.random_range(0..VAL_FROM),
        Split::Val => rng.random_range(VAL_FROM..100),
    };
    let mut vars = vec!["x".to_string()];
    let mut next = 1;
    out.push_str(&format!("fn f{id}(x) {{ "));
    block(rng, 0, &mut vars, &mut next, out);
    out.push_str(&format!("return {}; }}\n", vars.last().unwrap()));
}
