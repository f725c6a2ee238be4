//! A built-in generated corpus, so a run needs no download: lines of three kinds of text,
//! deterministic from a seed.
//! - knowledge: facts about a fixed world of made-up entities (Zipf-popular), in several
//!   templates; predicting the object needs the fact memorised;
//! - math: arithmetic with answers that follow from the question;
//! - code: small programs with nested blocks and balanced brackets.
//!
//! The multi-domain corpus of issue 4 (four domains, annealing, per-domain validation) grows
//! from here.

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Corpus, TokenSource, split_tail};

pub struct GeneratedSource {
    pub bytes: usize,
    pub val_fraction: f64,
    pub seed: u64,
}

impl TokenSource for GeneratedSource {
    fn describe(&self) -> String {
        format!("generated:{}B:seed{}", self.bytes, self.seed)
    }

    fn load(&self) -> Result<Corpus> {
        Ok(split_tail(
            generate(self.bytes, self.seed),
            self.val_fraction,
        ))
    }
}

const RELATIONS: [&str; 4] = ["capital", "color", "ruler", "river"];

struct World {
    names: Vec<String>,
    /// facts[entity][relation] = index of the object entity
    facts: Vec<[usize; 4]>,
    /// Cumulative Zipf weights for picking an entity.
    zipf: Vec<f64>,
}

fn name(rng: &mut ChaCha8Rng) -> String {
    const ON: [&str; 12] = ["v", "m", "k", "t", "s", "r", "d", "l", "n", "b", "z", "p"];
    const NU: [&str; 5] = ["a", "e", "i", "o", "u"];
    let syllables = rng.random_range(2..=3);
    let mut s = String::new();
    for _ in 0..syllables {
        s.push_str(ON[rng.random_range(0..ON.len())]);
        s.push_str(NU[rng.random_range(0..NU.len())]);
    }
    s
}

impl World {
    fn new(rng: &mut ChaCha8Rng, entities: usize) -> World {
        let names = (0..entities).map(|_| name(rng)).collect();
        let facts = (0..entities)
            .map(|_| std::array::from_fn(|_| rng.random_range(0..entities)))
            .collect();
        let mut acc = 0.0;
        let zipf = (1..=entities)
            .map(|r| {
                acc += 1.0 / r as f64;
                acc
            })
            .collect();
        World { names, facts, zipf }
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        let u = rng.random::<f64>() * self.zipf.last().unwrap();
        self.zipf.partition_point(|&c| c < u)
    }

    fn sentence(&self, rng: &mut ChaCha8Rng, out: &mut String) {
        let e = self.pick(rng);
        let r = rng.random_range(0..RELATIONS.len());
        let (s, o) = (&self.names[e], &self.names[self.facts[e][r]]);
        let rel = RELATIONS[r];
        match rng.random_range(0..3) {
            0 => out.push_str(&format!("the {rel} of {s} is {o}.\n")),
            1 => out.push_str(&format!("{s} has {o} as its {rel}.\n")),
            _ => out.push_str(&format!("q: what is the {rel} of {s}? a: {o}.\n")),
        }
    }
}

fn math(rng: &mut ChaCha8Rng, out: &mut String) {
    let a: u64 = rng.random_range(0..1000);
    let b: u64 = rng.random_range(1..1000);
    match rng.random_range(0..4) {
        0 => out.push_str(&format!("{a}+{b}={}\n", a + b)),
        1 => out.push_str(&format!(
            "{}*{}={}\n",
            a % 100,
            b % 100,
            (a % 100) * (b % 100)
        )),
        2 => out.push_str(&format!("{a} mod {} = {}\n", b % 97 + 2, a % (b % 97 + 2))),
        _ => {
            let cmp = match a.cmp(&b) {
                std::cmp::Ordering::Less => "<",
                std::cmp::Ordering::Equal => "=",
                std::cmp::Ordering::Greater => ">",
            };
            out.push_str(&format!("{a} ? {b} : {cmp}\n"))
        }
    }
}

fn code(rng: &mut ChaCha8Rng, out: &mut String) {
    fn block(rng: &mut ChaCha8Rng, depth: usize, vars: &mut Vec<String>, out: &mut String) {
        let stmts = rng.random_range(1..=3);
        for _ in 0..stmts {
            if depth < 3 && rng.random_bool(0.35) {
                let v = &vars[rng.random_range(0..vars.len())];
                out.push_str(&format!("if ({v} > {}) {{ ", rng.random_range(0..10)));
                let mark = vars.len();
                block(rng, depth + 1, vars, out);
                vars.truncate(mark);
                out.push_str("} ");
            } else {
                let new = format!("v{}", vars.len());
                let used = &vars[rng.random_range(0..vars.len())];
                out.push_str(&format!(
                    "let {new} = {used} + {}; ",
                    rng.random_range(0..10)
                ));
                vars.push(new);
            }
        }
    }
    let mut vars = vec!["x".to_string()];
    out.push_str(&format!("fn f{}(x) {{ ", rng.random_range(0..100)));
    block(rng, 0, &mut vars, out);
    out.push_str(&format!("return {}; }}\n", vars.last().unwrap()));
}

/// About `bytes` bytes of text (cut to exactly `bytes`).
pub fn generate(bytes: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let world = World::new(&mut rng, 400);
    let mut text = String::with_capacity(bytes + 256);
    while text.len() < bytes {
        match rng.random_range(0..100) {
            0..50 => world.sentence(&mut rng, &mut text),
            50..80 => math(&mut rng, &mut text),
            _ => code(&mut rng, &mut text),
        }
    }
    let mut out = text.into_bytes();
    out.truncate(bytes);
    out
}
