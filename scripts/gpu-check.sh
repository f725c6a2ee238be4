#!/usr/bin/env bash
# One go on a machine with a GPU (sized for a 15-minute device lease, build included): build;
# check wgpu against flex and the grouped-matmul kernels on the GPU; benchmark the lab on the
# GPU beside eager PyTorch (CUDA) at the bench's and the sweeps' shapes; time a small sweep.
# Everything lands in results/gpu-check/ (summary.md: the tables docs/performance.md needs,
# with card, date and commit). A failing section is recorded and the next one still runs.
# The dev profile compiles burn with opt-level 3 (Cargo.toml), so no release build is needed.
# PYTHON: an interpreter with torch (skipped without one). SWEEP_SECONDS: the sweep's cap.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
OUT=results/gpu-check
PY=${PYTHON:-python3}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.md
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

# section NAME CAP_SECONDS COMMAND...: run, keep its log, record the exit status and time.
section() {
  local name=$1 cap=$2
  shift 2
  echo "== $name"
  local start=$SECONDS
  timeout "$cap" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 40 "$OUT/$name.log"
  note "| $name | exit $rc | $((SECONDS - start)) s |"
}

note "# gpu-check, commit $(git rev-parse --short HEAD), $(date -u '+%F %H:%M UTC')"
note ""
command -v nvidia-smi >/dev/null && note "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
note ""
note "| section | status | wall |"
note "|---|---|---|"
section build 480 cargo build --quiet --features wgpu --bin lab --tests
section devices 60 ./target/debug/lab devices
# The grouped matmul's cubecl kernels and the MoE through them, against per-group matmuls,
# flex and the buffered reference (the tests pick the hardware adapter where there is one).
section kernels 180 cargo test --quiet --features wgpu --test it dispatch:: -- --nocapture
section agreement 180 cargo test --quiet --features wgpu --test it wgpu_agreement:: -- --nocapture
if "$PY" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  section pytorch-bench 120 "$PY" bench/pytorch_moe.py --device cuda --out "$OUT"
  section pytorch-sweep-shapes 120 "$PY" bench/pytorch_moe.py --device cuda --preset sweep --out "$OUT/sweep"
else
  note "| pytorch | skipped: no torch with CUDA for $PY | |"
fi
# lab bench prints its tokens/s beside PyTorch's CSV in the same --out directory.
section lab-bench 180 ./target/debug/lab bench --device wgpu --out "$OUT"
section lab-bench-sweep-shapes 180 ./target/debug/lab bench --device wgpu --preset sweep --out "$OUT/sweep"
rm -rf "$OUT/sweep-run"
section sweep "${SWEEP_SECONDS:-240}" ./target/debug/lab sweep dense-vs-moe --devices wgpu \
  --out "$OUT/sweep-run" --plots "$OUT/sweep-plots"

note ""
note "## Beside PyTorch"
for log in lab-bench lab-bench-sweep-shapes; do
  [[ -f $OUT/$log.log ]] && sed -n '/PyTorch/,$p' "$OUT/$log.log" >>"$SUMMARY"
done
note ""
note "## Sweep"
./target/debug/lab sweep dense-vs-moe --out "$OUT/sweep-run" --status >>"$SUMMARY" 2>&1 || true
echo "== $SUMMARY"
cat "$SUMMARY"
