//! The run's row files as the training loop writes them: a typed log per file.

use anyhow::Result;

use super::evaluate::Evaluation;
use super::memory::MemoryReading;
use super::step::StepOutput;
use crate::data::Batches;
use crate::run::rows::peak;
use crate::run::{
    EvalRow, MetricRow, ProbeRow, RouterDomainRow, RouterRow, RouterStateRow, RowLog, RunDir,
};

pub struct RunLogs {
    metrics: RowLog<MetricRow>,
    evals: RowLog<EvalRow>,
    router: RowLog<RouterRow>,
    domains: RowLog<RouterDomainRow>,
    /// Only for routers with state.
    state: Option<RowLog<RouterStateRow>>,
    probes: RowLog<ProbeRow>,
    stream_names: Vec<String>,
    /// Indices of the streams with answers (`answer_loss_<stream>` columns).
    answer_streams: Vec<usize>,
}

/// Where the run stands after a step: cumulative tokens and training FLOPs, and the
/// throughput since the previous row.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub tokens: u64,
    pub flops: f64,
    pub tokens_per_s: f64,
}

impl RunLogs {
    /// Open (append to) every row file of `dir` for the run `config`; `router_state` when the
    /// model's routers have state to log.
    pub fn open(dir: &RunDir, batches: &Batches, router_state: bool) -> Result<RunLogs> {
        let stream_names = batches.stream_names();
        let answer_streams = batches.answer_streams();
        let answer_names: Vec<String> = answer_streams
            .iter()
            .map(|&i| stream_names[i].clone())
            .collect();
        let eval_columns = EvalRow::columns(&stream_names, &answer_names);
        Ok(RunLogs {
            metrics: RowLog::open(&dir.path, &[])?,
            evals: RowLog::open(&dir.path, &eval_columns)?,
            router: RowLog::open(&dir.path, &[])?,
            domains: RowLog::open(&dir.path, &[])?,
            state: if router_state {
                Some(RowLog::open(&dir.path, &[])?)
            } else {
                None
            },
            probes: RowLog::open(&dir.path, &[])?,
            stream_names,
            answer_streams,
        })
    }

    /// The `metrics.csv` row of step `step` (0-based): cumulative counts after it; and its
    /// `probes.csv` rows, one per block.
    pub fn metric(
        &mut self,
        step: usize,
        lr: f64,
        out: &StepOutput,
        mem: &MemoryReading,
        [loss_spike, grad_spike]: [bool; 2],
        progress: Progress,
    ) -> Result<()> {
        let Progress {
            tokens,
            flops,
            tokens_per_s,
        } = progress;
        let p = &out.probes;
        for (layer, attn) in p.attn_logit_max.iter().enumerate() {
            self.probes.append(&ProbeRow {
                step,
                layer,
                attn_logit_max: *attn,
                router_logit_max: p.router_logit_max.get(layer).copied().flatten(),
            })?;
        }
        self.metrics.append(&MetricRow {
            step,
            tokens,
            flops,
            lr,
            loss: out.lm_loss,
            aux_loss: out.balance_loss,
            z_loss: out.z_loss,
            grad_norm: out.grad_norm,
            tokens_per_s,
            mem_in_use: mem.bytes_in_use,
            mem_reserved: mem.bytes_reserved,
            rss: mem.rss_bytes,
            loss_spike: loss_spike as u8,
            grad_spike: grad_spike as u8,
            attn_logit_max: peak(p.attn_logit_max.iter().copied()),
            output_log_z: Some(p.output_log_z),
            router_logit_max: peak(p.router_logit_max.iter().flatten().copied()),
            distill_kl: out.distill_kl,
        })
    }

    /// `router_state.csv` rows of one step: a row per (block, quantity, expert).
    pub fn router_state(
        &mut self,
        step: usize,
        state: &[(usize, &'static str, Vec<f64>)],
    ) -> Result<()> {
        let Some(log) = self.state.as_mut() else {
            return Ok(());
        };
        for (layer, quantity, values) in state {
            for (expert, value) in values.iter().enumerate() {
                log.append(&RouterStateRow {
                    step,
                    layer: *layer,
                    quantity: quantity.to_string(),
                    expert,
                    value: *value,
                })?;
            }
        }
        Ok(())
    }

    /// The rows of an evaluation after step `step`: `evals.csv`, `router.csv`,
    /// `router_domains.csv`.
    pub fn evaluation(
        &mut self,
        step: usize,
        ev: &Evaluation,
        Progress { tokens, flops, .. }: Progress,
    ) -> Result<()> {
        self.evals.append(&EvalRow {
            step,
            tokens,
            flops,
            val_loss: ev.val_loss,
            by_stream: ev.by_stream.clone(),
            answer_by_stream: self
                .answer_streams
                .iter()
                .map(|&i| ev.answer_by_stream[i])
                .collect(),
            exact_by_stream: self
                .answer_streams
                .iter()
                .map(|&i| ev.exact_by_stream[i].map(|(e, n)| e as f64 / n as f64))
                .collect(),
        })?;
        for row in ev.router.rows(step) {
            self.router.append(&row)?;
        }
        for row in ev.router.domain_rows(step, &self.stream_names) {
            self.domains.append(&row)?;
        }
        Ok(())
    }
}
