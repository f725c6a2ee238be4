//! Arithmetic and simple algebra with worked answers. Every answer follows from its question.
//! Operand pairs are split between training and validation by a hash, so no validation line
//! occurs in training.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::split::Split;

/// Whether operands (a, b) of kind `kind` belong to the validation split (1 in 8).
pub fn is_val(kind: u64, a: u64, b: u64) -> bool {
    let h = (a.wrapping_mul(0x9e37_79b9)
        ^ b.wrapping_mul(0x85eb_ca6b)
        ^ kind.wrapping_mul(0xc2b2_ae35))
    .wrapping_mul(0x27d4_eb2f);
    (h >> 29).is_multiple_of(8)
}

/// Append one line for `split`; record the byte range of its answer: everything after the
/// question (the worked steps too), which greedy decoding from the question must reproduce.
pub fn line(
    rng: &mut ChaCha8Rng,
    split: Split,
    out: &mut String,
    answers: &mut Vec<std::ops::Range<usize>>,
) {
    loop {
        let kind = rng.random_range(0..5u64);
        let a: u64 = rng.random_range(0..1000);
        let b: u64 = rng.random_range(1..1000);
        if is_val(kind, a, b) != (split == Split::Val) {
            continue;
        }
        let (question, answer) = match kind {
            0 => (format!("{a}+{b}="), format!("{}", a + b)),
            1 => {
                // Worked multiplication: split b into tens and units.
                let (x, y) = (a % 100, b % 100);
                let (tens, units) = (y / 10 * 10, y % 10);
                (
                    format!("{x}*{y}="),
                    format!(
                        "{x}*{tens}+{x}*{units}={}+{}={}",
                        x * tens,
                        x * units,
                        x * y
                    ),
                )
            }
            2 => {
                let m = b % 97 + 2;
                (format!("{a} mod {m} = "), format!("{}", a % m))
            }
            3 => {
                let c = match a.cmp(&b) {
                    std::cmp::Ordering::Less => "<",
                    std::cmp::Ordering::Equal => "=",
                    std::cmp::Ordering::Greater => ">",
                };
                (format!("{a} ? {b} : "), c.to_string())
            }
            _ => {
                // Solve x + b = a + b for x.
                (
                    format!("x+{b}={} => ", a + b),
                    format!("x={}-{b}={a}", a + b),
                )
            }
        };
        out.push_str(&question);
        answers.push(out.len()..out.len() + answer.len());
        out.push_str(&answer);
        out.push('\n');
        return;
    }
}
