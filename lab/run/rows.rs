//! The rows of a run directory's CSV files, declared once: the training loop writes them and
//! the analysis reads them back with these same types. Columns are the field names, in order;
//! numbers are written with the precision given by each field's `serialize_with`.

use serde::{Deserialize, Serialize, Serializer};

/// A row type and the file it lives in.
pub trait Row: Serialize + serde::de::DeserializeOwned + Default {
    const FILE: &'static str;
    /// Values of columns after the struct's own (one per validation stream in `evals.csv`),
    /// formatted; their names are given when the file is opened.
    fn extra_fields(&self) -> Vec<String> {
        Vec::new()
    }
}

fn fixed6<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.6}"))
}
fn sci6<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.6e}"))
}
fn opt_fixed4<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&format_args!("{v:.4}")),
        None => s.serialize_none(),
    }
}
fn opt_fixed6<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&format_args!("{v:.6}")),
        None => s.serialize_none(),
    }
}
fn fixed1<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.1}"))
}

/// `metrics.csv`: one row per logged step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// 0-based.
    pub step: usize,
    /// Cumulative, after the step.
    pub tokens: u64,
    /// Cumulative training FLOPs, after the step.
    #[serde(serialize_with = "sci6")]
    pub flops: f64,
    #[serde(serialize_with = "sci6")]
    pub lr: f64,
    /// Language-model cross-entropy, nats/byte.
    #[serde(serialize_with = "fixed6")]
    pub loss: f64,
    /// Balance loss, already × α, summed over MoE layers.
    #[serde(serialize_with = "sci6")]
    pub aux_loss: f64,
    /// Router z-loss, × β, summed.
    #[serde(serialize_with = "sci6")]
    pub z_loss: f64,
    /// Global, before clipping.
    #[serde(serialize_with = "sci6")]
    pub grad_norm: f64,
    /// Since the previous row, evaluation excluded.
    #[serde(serialize_with = "fixed1")]
    pub tokens_per_s: f64,
    /// Device allocator bytes (empty on CPU backends).
    pub mem_in_use: Option<u64>,
    pub mem_reserved: Option<u64>,
    /// Process resident set, bytes.
    pub rss: Option<u64>,
    pub loss_spike: u8,
    pub grad_spike: u8,
    /// Stability proxies (Wortsman et al. 2023; per layer in `probes.csv`): the largest
    /// pre-softmax attention logit over layers, the output logits' mean log-partition, and
    /// the largest router logit over MoE layers. Empty in runs written before they were logged.
    #[serde(default, serialize_with = "opt_fixed4")]
    pub attn_logit_max: Option<f64>,
    #[serde(default, serialize_with = "opt_fixed4")]
    pub output_log_z: Option<f64>,
    #[serde(default, serialize_with = "opt_fixed4")]
    pub router_logit_max: Option<f64>,
    /// `KL(teacher_T ‖ student_T)` of a distilled run (`[distill]`), before its weight and T²;
    /// empty otherwise.
    #[serde(default, serialize_with = "opt_fixed6")]
    pub distill_kl: Option<f64>,
}

impl Row for MetricRow {
    const FILE: &'static str = "metrics.csv";
}

/// `evals.csv`: one row per evaluation. After these columns come `val_loss_<stream>` for every
/// validation stream, then `answer_loss_<stream>` and `exact_match_<stream>` for the question
/// streams ([`EvalRow::columns`]). The last row is the final, larger evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    pub step: usize,
    pub tokens: u64,
    #[serde(serialize_with = "sci6")]
    pub flops: f64,
    /// The training streams' validation losses weighted by their mixture weights.
    #[serde(serialize_with = "fixed6")]
    pub val_loss: f64,
    /// Per stream, in the order of the extra columns (not read back: the analysis reads the
    /// stream losses from `summary.json`).
    #[serde(skip)]
    pub by_stream: Vec<f64>,
    #[serde(skip)]
    pub answer_by_stream: Vec<Option<f64>>,
    /// Exact-match rate of greedy answers, per answer stream.
    #[serde(skip)]
    pub exact_by_stream: Vec<Option<f64>>,
}

impl EvalRow {
    /// The names of the extra columns for these streams and answer streams.
    pub fn columns(streams: &[String], answer_streams: &[String]) -> Vec<String> {
        let val = streams.iter().map(|n| format!("val_loss_{n}"));
        let answer = answer_streams.iter().map(|n| format!("answer_loss_{n}"));
        let exact = answer_streams.iter().map(|n| format!("exact_match_{n}"));
        val.chain(answer).chain(exact).collect()
    }
}

impl Row for EvalRow {
    const FILE: &'static str = "evals.csv";
    fn extra_fields(&self) -> Vec<String> {
        let val = self.by_stream.iter().map(|l| format!("{l:.6}"));
        let answer = self
            .answer_by_stream
            .iter()
            .map(|l| l.map(|l| format!("{l:.6}")).unwrap_or_default());
        let exact = self
            .exact_by_stream
            .iter()
            .map(|r| r.map(|r| format!("{r:.4}")).unwrap_or_default());
        val.chain(answer).chain(exact).collect()
    }
}

/// `router.csv`: one row per (evaluation, MoE layer, expert); layer-level values repeat on
/// each of the layer's rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterRow {
    pub step: usize,
    /// Block index.
    pub layer: usize,
    pub expert: usize,
    /// Share of the token-slots routed to the expert, before dropping.
    #[serde(serialize_with = "fixed6")]
    pub load_share: f64,
    /// Max load / mean load − 1.
    #[serde(serialize_with = "fixed6")]
    pub max_vio: f64,
    /// Mean router entropy, nats.
    #[serde(serialize_with = "fixed6")]
    pub entropy: f64,
    #[serde(serialize_with = "fixed6")]
    pub dropped_fraction: f64,
    /// Experts with load under 1% of uniform.
    pub dead_experts: usize,
}

impl Row for RouterRow {
    const FILE: &'static str = "router.csv";
}

/// `router_domains.csv`: one row per (evaluation, MoE layer, domain, expert).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterDomainRow {
    pub step: usize,
    pub layer: usize,
    pub domain: String,
    pub expert: usize,
    /// Share of the domain's token-slots that go to the expert (sums to 1 over experts).
    #[serde(serialize_with = "fixed6")]
    pub share: f64,
    /// Between domain and chosen expert, over all validation streams.
    #[serde(serialize_with = "fixed6")]
    pub mutual_information_bits: f64,
    /// min(H(domain), log2 K).
    #[serde(serialize_with = "fixed6")]
    pub max_bits: f64,
}

impl Row for RouterDomainRow {
    const FILE: &'static str = "router_domains.csv";
}

/// `router_state.csv` (routers with state): one row per (logged step, layer, quantity,
/// expert), e.g. loss-free balancing's bias that step routed with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterStateRow {
    pub step: usize,
    pub layer: usize,
    pub quantity: String,
    pub expert: usize,
    #[serde(serialize_with = "sci6")]
    pub value: f64,
}

impl Row for RouterStateRow {
    const FILE: &'static str = "router_state.csv";
}

/// `probes.csv`: one row per (logged step, block): the stability proxies of each layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeRow {
    pub step: usize,
    pub layer: usize,
    /// Largest pre-softmax attention logit `q·k/√d` over the positions attended to.
    #[serde(serialize_with = "fixed6")]
    pub attn_logit_max: f64,
    /// Largest router logit (empty: dense block, or a router without logits).
    #[serde(serialize_with = "opt_fixed4")]
    pub router_logit_max: Option<f64>,
}

impl Row for ProbeRow {
    const FILE: &'static str = "probes.csv";
}

/// The largest of `values`, NaN if any is NaN (`f64::max` would drop it: a probe that turned
/// NaN is the loudest sign of trouble, not a value to skip); `None` when there are none.
pub fn peak(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    values.into_iter().reduce(|a, b| {
        if a.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            a.max(b)
        }
    })
}
