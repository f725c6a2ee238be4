//! A world of made-up entities and facts, stated in English templates and in "Lumi", a second
//! generated language with its own word forms and word order.

use std::collections::HashSet;
use std::ops::Range;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::split::Split;

pub const RELATIONS: [&str; 6] = ["capital", "color", "ruler", "river", "rival", "patron"];
/// Lumi words for the relations.
const LUMI_RELATIONS: [&str; 6] = ["kapo", "sulo", "reji", "fluvo", "kontri", "patro"];
pub const TEMPLATES: usize = 3;

pub struct World {
    pub names: Vec<String>,
    /// `objects[e][r]`: the entity that is relation r of entity e.
    pub objects: Vec<[usize; RELATIONS.len()]>,
    /// (entity, relation) pairs never stated in training.
    pub heldout: HashSet<(usize, usize)>,
    /// The same, sorted (for drawing one at random, reproducibly).
    heldout_list: Vec<(usize, usize)>,
    /// Cumulative Zipf(1) weights over entities (entity 0 most popular).
    zipf: Vec<f64>,
}

fn make_name(rng: &mut ChaCha8Rng) -> String {
    const ONSETS: [&str; 14] = [
        "v", "m", "k", "t", "s", "r", "d", "l", "n", "b", "z", "p", "g", "f",
    ];
    const NUCLEI: [&str; 5] = ["a", "e", "i", "o", "u"];
    let syllables = rng.random_range(2..=3);
    (0..syllables)
        .map(|_| {
            format!(
                "{}{}",
                ONSETS[rng.random_range(0..ONSETS.len())],
                NUCLEI[rng.random_range(0..NUCLEI.len())]
            )
        })
        .collect()
}

/// The Lumi form of a name: vowels shifted one step (a→e→i→o→u→a) and the ending "-n".
pub fn lumi_name(name: &str) -> String {
    let shifted: String = name
        .chars()
        .map(|c| match c {
            'a' => 'e',
            'e' => 'i',
            'i' => 'o',
            'o' => 'u',
            'u' => 'a',
            x => x,
        })
        .collect();
    format!("{shifted}n")
}

/// The template of a trained fact reserved for validation (never used in training).
pub fn val_template(entity: usize, relation: usize) -> usize {
    (entity * 7 + relation * 3) % TEMPLATES
}

impl World {
    pub fn new(rng: &mut ChaCha8Rng, entities: usize, heldout_share: f64) -> World {
        let mut seen = HashSet::new();
        let mut names = Vec::with_capacity(entities);
        while names.len() < entities {
            let n = make_name(rng);
            if seen.insert(n.clone()) {
                names.push(n);
            }
        }
        let objects = (0..entities)
            .map(|_| std::array::from_fn(|_| rng.random_range(0..entities)))
            .collect();
        let mut heldout = HashSet::new();
        for e in 0..entities {
            for r in 0..RELATIONS.len() {
                if rng.random_bool(heldout_share.clamp(0.0, 1.0)) {
                    heldout.insert((e, r));
                }
            }
        }
        let mut acc = 0.0;
        let zipf = (1..=entities)
            .map(|rank| {
                acc += 1.0 / rank as f64;
                acc
            })
            .collect();
        let mut heldout_list: Vec<(usize, usize)> = heldout.iter().copied().collect();
        heldout_list.sort();
        World {
            names,
            objects,
            heldout,
            heldout_list,
            zipf,
        }
    }

    fn popular(&self, rng: &mut ChaCha8Rng) -> usize {
        let u = rng.random::<f64>() * self.zipf.last().copied().unwrap_or(1.0);
        self.zipf
            .partition_point(|&c| c < u)
            .min(self.names.len() - 1)
    }

    /// A fact for `split`: held-out facts never; the template follows the split.
    fn fact(&self, rng: &mut ChaCha8Rng, split: Split) -> (usize, usize, usize) {
        loop {
            let e = self.popular(rng);
            let r = rng.random_range(0..RELATIONS.len());
            if self.heldout.contains(&(e, r)) {
                continue;
            }
            let held = val_template(e, r);
            let t = match split {
                Split::Val => held,
                Split::Train => {
                    let t = rng.random_range(0..TEMPLATES - 1);
                    if t >= held { t + 1 } else { t }
                }
            };
            return (e, r, t);
        }
    }

    /// The English sentence stating fact (e, r) in template t.
    pub fn english_sentence(&self, e: usize, r: usize, t: usize) -> String {
        self.english_parts(e, r, t).0
    }

    /// The sentence and the byte range of its answer (the object's name) within it.
    fn english_parts(&self, e: usize, r: usize, t: usize) -> (String, Range<usize>) {
        let (s, o, rel) = (
            &self.names[e],
            &self.names[self.objects[e][r]],
            RELATIONS[r],
        );
        let (before, after) = match t {
            0 => (format!("the {rel} of {s} is "), ".\n".to_string()),
            1 => (format!("{s} has "), format!(" as its {rel}.\n")),
            _ => (
                format!("q: what is the {rel} of {s}? a: "),
                ".\n".to_string(),
            ),
        };
        (
            format!("{before}{o}{after}"),
            before.len()..before.len() + o.len(),
        )
    }

    /// The Lumi sentence: object first, then "es", the relation with "-de", the subject.
    pub fn lumi_sentence(&self, e: usize, r: usize, t: usize) -> String {
        self.lumi_parts(e, r, t).0
    }

    fn lumi_parts(&self, e: usize, r: usize, t: usize) -> (String, Range<usize>) {
        let s = lumi_name(&self.names[e]);
        let o = lumi_name(&self.names[self.objects[e][r]]);
        let rel = LUMI_RELATIONS[r];
        let (before, after) = match t {
            0 => (String::new(), format!(" es {rel}de {s}.\n")),
            1 => (format!("{s} ten "), format!(" kom {rel}.\n")),
            _ => (format!("ke {rel}de {s}? "), ".\n".to_string()),
        };
        (
            format!("{before}{o}{after}"),
            before.len()..before.len() + o.len(),
        )
    }

    fn push(
        out: &mut String,
        answers: &mut Vec<Range<usize>>,
        (text, answer): (String, Range<usize>),
    ) {
        answers.push(out.len() + answer.start..out.len() + answer.end);
        out.push_str(&text);
    }

    /// Append one English fact for `split`; record the answer's byte range.
    pub fn english(
        &self,
        rng: &mut ChaCha8Rng,
        split: Split,
        out: &mut String,
        answers: &mut Vec<Range<usize>>,
    ) {
        let (e, r, t) = self.fact(rng, split);
        Self::push(out, answers, self.english_parts(e, r, t));
    }

    pub fn lumi(
        &self,
        rng: &mut ChaCha8Rng,
        split: Split,
        out: &mut String,
        answers: &mut Vec<Range<usize>>,
    ) {
        let (e, r, t) = self.fact(rng, split);
        Self::push(out, answers, self.lumi_parts(e, r, t));
    }

    /// A held-out fact in any English template.
    pub fn heldout(&self, rng: &mut ChaCha8Rng, out: &mut String, answers: &mut Vec<Range<usize>>) {
        if self.heldout_list.is_empty() {
            out.push_str("no held-out facts.\n");
            return;
        }
        let (e, r) = self.heldout_list[rng.random_range(0..self.heldout_list.len())];
        Self::push(
            out,
            answers,
            self.english_parts(e, r, rng.random_range(0..TEMPLATES)),
        );
    }
}
