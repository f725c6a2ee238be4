//! The largest value each count and size of a spec may take, with the reason a user sees when
//! a value exceeds it. Every bound is far above anything the lab can train on one machine and
//! above the published models it reproduces, and low enough that no accepted value makes the
//! lab allocate without bound, loop without end or overflow an integer (products of bounded
//! values stay far below `usize::MAX` on 64-bit targets). Checked by `error::at_most` in each
//! section's validation; experiment axes are checked before any cell is built.

/// (largest accepted value, why).
pub type Limit = (usize, &'static str);

pub const D_MODEL: Limit = (
    65_536,
    "4× the widest published dense model (LLaMA-3 405B: 16 384)",
);
pub const N_LAYERS: Limit = (1_024, "8× the deepest LLaMA-3 (405B: 126 layers)");
pub const N_HEADS: Limit = (1_024, "8× LLaMA-3 405B's 128 heads");
pub const SEQ_LEN: Limit = (
    1_048_576,
    "attention holds seq_len² scores per head; LLaMA-3's longest context is 131 072",
);
pub const TOKENS_PER_STEP: Limit = (
    1 << 26,
    "batch_size × seq_len: 4× LLaMA-3 405B's largest batch of 16M tokens",
);
pub const MOE_TOKEN_SLOTS: Limit = (
    1 << 24,
    "token-slots (tokens × top_k) of one step in a token-choice MoE layer: the dispatch counts \
     each slot's position among its expert's slots and each expert's load in f32 on the \
     device, exact only up to 2^24",
);
pub const VOCAB: Limit = (
    1 << 24,
    "token ids: 128× LLaMA-3's vocabulary of 128 256 (the embedding and head hold d × vocab)",
);
pub const EXPERTS: Limit = (4_096, "16× DeepSeek-V3's 256 routed experts");
pub const HIDDEN: Limit = (
    1 << 20,
    "a feed-forward hidden size 20× LLaMA-3 405B's 53 248",
);
pub const GRANULARITY: Limit = (1_024, "fine-grained experts per expert");
pub const STEPS: Limit = (
    1_000_000_000,
    "a billion optimizer steps (LLaMA-3 405B took about 1.2 million)",
);
pub const STAGED_STEPS: Limit = (
    10_000_000,
    "steps of a run with a batch ramp or a long-context stage, whose FLOPs are summed step by step",
);
pub const BATCH_SIZE: Limit = (1 << 20, "sequences per step");
pub const EVAL_BATCHES: Limit = (1_000_000, "batches per evaluation");
pub const EVAL_TOKENS: Limit = (
    1 << 30,
    "tokens per validation stream in the final evaluation",
);
pub const SPIKE_WINDOW: Limit = (1_000_000, "steps the spike detector keeps in memory");
pub const CORPUS_BYTES: Limit = (
    1 << 34,
    "the generated corpus is held in memory: 16 GiB at most",
);
pub const ENTITIES: Limit = (100_000_000, "named entities of the generated corpus");
pub const SEEDS: Limit = (10_000, "seeds per cell of an experiment");
pub const LEARNING_RATES: Limit = (1_000, "rates on an experiment's learning-rate axis");
pub const MIXTURES: Limit = (4_096, "mixtures on an experiment's mixture axis");
pub const CELLS: Limit = (
    100_000,
    "runs in one sweep (sizes × arms × learning rates × seeds); each is a process and a directory",
);
pub const SNAPSHOTS: Limit = (10_000, "checkpoint snapshots averaged into one model");

/// Distinct training budgets a scaling law `E + A·C^(−α)` is fitted to: three parameters from
/// three budgets leave nothing to check the curve's shape against.
pub const FIT_BUDGETS: usize = 4;
