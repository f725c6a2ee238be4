//! The built-in multi-domain corpus, generated from a seed so a run needs no download. Four
//! training domains in the LLaMA-3 pre-training proportions (≈ 50% general knowledge, 25% math
//! and reasoning, 17% code, 8% multilingual), each rewarding something different:
//! - [`Domain::Knowledge`]: facts about a fixed world of made-up entities ([`world`]); the
//!   object of a fact can only be predicted if the fact was memorised, so loss falls with total
//!   parameters;
//! - [`Domain::Math`]: arithmetic and simple algebra with worked answers ([`math`]); answers
//!   follow from the question, so loss falls with computation, not memory;
//! - [`Domain::Code`]: programs in a small made-up language ([`code`]); closers and names need
//!   structure tracking;
//! - [`Domain::Multilingual`]: the same facts in a second generated language, so sharing across
//!   languages is rewarded.
//!
//! Validation streams are disjoint from training by construction, line by line: knowledge and
//! multilingual validation state trained facts in a template held out from training; math uses
//! operand pairs never used in training; code uses function names never used in training. A
//! fifth stream, [`Domain::KnowledgeHeldout`], states facts never stated in training in any
//! template or language: no model should predict them (a built-in sanity floor).

pub mod code;
pub mod math;
pub mod source;
mod split;
pub mod world;
pub mod write;

pub use split::Split;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Knowledge,
    Math,
    Code,
    Multilingual,
    /// Validation only: facts never stated in training.
    KnowledgeHeldout,
}

impl Domain {
    pub const TRAINING: [Domain; 4] = [
        Domain::Knowledge,
        Domain::Math,
        Domain::Code,
        Domain::Multilingual,
    ];
    pub const ALL: [Domain; 5] = [
        Domain::Knowledge,
        Domain::Math,
        Domain::Code,
        Domain::Multilingual,
        Domain::KnowledgeHeldout,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Domain::Knowledge => "knowledge",
            Domain::Math => "math",
            Domain::Code => "code",
            Domain::Multilingual => "multilingual",
            Domain::KnowledgeHeldout => "knowledge_heldout",
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct CorpusConfig {
    pub seed: u64,
    pub entities: usize,
    /// Share of (entity, relation) facts never stated in training.
    pub heldout_facts: f64,
}

/// All generators of one corpus, sharing one world.
pub struct Generator {
    pub world: world::World,
    seed: u64,
}

impl Generator {
    pub fn new(config: &CorpusConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        Generator {
            world: world::World::new(&mut rng, config.entities, config.heldout_facts),
            seed: config.seed,
        }
    }

    /// About `bytes` bytes of whole lines of `domain` for `split`.
    pub fn text(&self, domain: Domain, split: Split, bytes: usize) -> Vec<u8> {
        self.text_with_answers(domain, split, bytes).0
    }

    /// The text and, for the question domains, the byte ranges of every answer (a fact's
    /// object, which only a memorised fact predicts; a math question's worked answer).
    pub fn text_with_answers(
        &self,
        domain: Domain,
        split: Split,
        bytes: usize,
    ) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
        let mut answers = Vec::new();
        let stream = domain as u64 * 2 + (split == Split::Val) as u64 + 1;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.set_stream(stream);
        let mut out = String::with_capacity(bytes + 128);
        while out.len() < bytes {
            match domain {
                Domain::Knowledge => self.world.english(&mut rng, split, &mut out, &mut answers),
                Domain::Multilingual => self.world.lumi(&mut rng, split, &mut out, &mut answers),
                Domain::KnowledgeHeldout => self.world.heldout(&mut rng, &mut out, &mut answers),
                Domain::Math => math::line(&mut rng, split, &mut out, &mut answers),
                Domain::Code => code::program(&mut rng, split, &mut out),
            }
        }
        (out.into_bytes(), answers)
    }
}
