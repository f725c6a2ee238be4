#!/usr/bin/env bash
# The lab on a real Slurm: a one-node cluster on this machine (scripts/slurm-cluster.sh;
# installs slurm-wlm and munge if missing; needs root), a 4-cell toy sweep submitted with
# `lab sweep --slurm`, one task requeued mid-run as a preemption does (`scontrol requeue`:
# SIGTERM) and another told its time is up (SIGUSR1 to its batch shell, as `--signal=B:USR1@…`
# does: it checkpoints and requeues itself). Passes when every cell completed with exactly the
# losses of a local sweep of the same experiment, both interrupted cells resumed from their
# checkpoints, the analysis job wrote the report, and `--status` says 4 done. Stops the
# daemons it started.
#
#   scripts/slurm-check.sh            # builds `lab` (cargo build --bin lab) first
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d /tmp/lab-slurm-check.XXXXXX)
source scripts/slurm-cluster.sh
trap 'cluster_down "$work/cluster"' EXIT
started=$(date +%s)
say() { echo "slurm-check [$(( $(date +%s) - started ))s]: $*"; }
fail() { echo "slurm-check: FAIL: $*" >&2; exit 1; }

# shellcheck disable=SC2046 # the flags are words
cargo build --quiet $(scripts/lab-features) --bin lab
lab="${CARGO_TARGET_DIR:-$repo/target}/debug/lab"
[ -x "$lab" ] || fail "no lab binary at $lab"

cluster_up "$work/cluster"
cd "$work"
cat >toy.toml <<'TOML'
name = "slurm-toy"
description = "Four cells for the Slurm check: moe and its FLOP-matched dense arm, two seeds."
seeds = 2

[base]
n_heads = 2
seq_len = 32

[base.train]
batch_size = 8
eval_every = 50
eval_batches = 2
final_eval_tokens = 0
warmup_steps = 5

[base.data]
corpus_bytes = 200000

[budget]
tokens_per_active_param = 20.0
reference_arm = "moe"

[[sizes]]
name = "xs"
d_model = 32
n_layers = 2
d_expert = 32

[arms.moe]
kind = "moe"
experts = 4
top_k = 2

[arms.dense]
kind = "dense"
d_ff = "match-active"
match = "moe"
TOML

say "submitting"
"$lab" sweep toy.toml --devices flex --out slurm-results --plots slurm-plots \
    --slurm --max-parallel 2 --cpus-per-task 1 | tee submit.txt
array=$(sed -n 's/^submitted array job \([0-9]*\).*/\1/p' submit.txt)
analysis=$(sed -n 's/^submitted analysis job \([0-9]*\).*/\1/p' submit.txt)
[ -n "$array" ] && [ -n "$analysis" ] || fail "no job ids in the submission output"
cells=(xs-dense-s0 xs-dense-s1 xs-moe-s0 xs-moe-s1)
rows() { local f="slurm-results/slurm-toy/$1/metrics.csv"; [ -f "$f" ] && wc -l <"$f" || echo 0; }

# Wait for tasks 0 and 1 to be running and a few hundred steps in (checkpoints every 100).
for i in $(seq 1 600); do
    if [ "$(rows "${cells[0]}")" -gt 300 ] && [ "$(rows "${cells[1]}")" -gt 300 ]; then break; fi
    sleep 0.2
done
[ "$(rows "${cells[0]}")" -gt 300 ] || fail "task 0 did not get going"
say "requeueing task ${array}_0 (preemption: SIGTERM) and warning task ${array}_1 (SIGUSR1)"
# What `--signal=B:USR1@…` does before the time limit: USR1 to the task's batch shell (found
# among the job's processes; `scancel --batch --signal` blocks while the task requeues itself).
batch_shell() {
    local p
    for p in $(scontrol listpids "$1" | awk 'NR > 1 { print $1 }'); do
        if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q slurm_script; then echo "$p"; fi
    done
}
shell=$(batch_shell "$(squeue -h -j "${array}_1" -o '%A')")
[ -n "$shell" ] || fail "no batch shell for task ${array}_1"
kill -USR1 $shell
scontrol requeue "${array}_0"
# Requeued jobs wait ~2 minutes before they are eligible again; let them start now.
for task in 0 1; do
    for i in $(seq 1 100); do
        state=$(squeue -h -j "${array}_${task}" -o '%T' 2>/dev/null || true)
        [ "$state" = PENDING ] && break
        sleep 0.2
    done
    [ "$state" = PENDING ] || fail "task ${array}_${task} was not requeued (state: ${state:-none})"
    scontrol update JobId="$(squeue -h -j "${array}_${task}" -o '%A')" StartTime=now
done
"$lab" sweep toy.toml --out slurm-results --status

say "waiting for the array and the analysis job"
for i in $(seq 1 900); do
    [ -z "$(squeue -h -j "$array,$analysis" 2>/dev/null)" ] && break
    sleep 1
done
[ -z "$(squeue -h -j "$array,$analysis" 2>/dev/null)" ] || fail "jobs still queued after 15 min"
"$lab" sweep toy.toml --out slurm-results --status | tee status.txt
grep -q '^4 done$' status.txt || fail "not every cell is done"
logs=slurm-results/slurm-toy/slurm/logs
for task in 0 1; do
    log="$logs/cell-${array}_${task}.out"
    grep -q 'checkpoint written' "$log" || fail "task $task did not checkpoint on its signal ($log)"
    grep -q 'restart 1' "$log" || fail "task $task did not run again after its requeue ($log)"
    grep -q 'resuming from the checkpoint at step [1-9]' "$log" \
        || fail "task $task did not resume from its checkpoint ($log)"
done
[ -s slurm-results/slurm-toy/report.md ] || fail "the analysis job wrote no report"

say "the same sweep locally"
"$lab" sweep toy.toml --devices flex --out local-results --plots local-plots --jobs 2 >/dev/null 2>&1
for c in "${cells[@]}"; do
    a="local-results/slurm-toy/$c/metrics.csv" b="slurm-results/slurm-toy/$c/metrics.csv"
    cmp -s <(cut -d, -f5 "$a") <(cut -d, -f5 "$b") || fail "$c: losses differ from the local sweep's"
    va=$(grep -o '"final_val_loss": [^,]*' "local-results/slurm-toy/$c/summary.json")
    vb=$(grep -o '"final_val_loss": [^,]*' "slurm-results/slurm-toy/$c/summary.json")
    [ "$va" = "$vb" ] || fail "$c: final val loss $vb, locally $va"
    say "$c: $(($(wc -l <"$b") - 1)) steps, losses identical to the local sweep's ($vb)"
done
say "PASS"
rm -rf "$work/slurm-results" "$work/local-results"
