#!/usr/bin/env bash
# One go on a machine with a GPU: build, check wgpu against flex, benchmark both widths on the
# GPU, and print one table. Record its output in docs/performance.md with card, date and commit.
# The dev profile compiles burn with opt-level 3 (see Cargo.toml), so no release rebuild is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

echo "== build"; time cargo build --quiet --bin lab --tests
echo "== devices"; ./target/debug/lab devices
echo "== wgpu vs flex (a tiny model, and every registered FFN variant)"
cargo test --quiet --test wgpu_agreement -- --nocapture
cargo test --quiet --test conformance wgpu_agrees_with_flex -- --nocapture
echo "== bench on the GPU"
./target/debug/lab bench --device wgpu --out results/bench
if python3 -c "import torch" 2>/dev/null && [[ -f bench/pytorch_moe.py ]]; then
  echo "== PyTorch eager, same shapes"; python3 bench/pytorch_moe.py
fi
echo "== commit $(git rev-parse --short HEAD), $(date -u +%F)"
cat results/bench/bench-wgpu.csv
