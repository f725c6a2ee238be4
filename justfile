# moe-lab tasks. Builds use the dev profile: dependencies (burn; cubecl and wgpu with the GPU
# backend) are compiled with opt-level 3 there (see Cargo.toml), so tests and sweeps share one
# build of burn and nothing needs a release build.

set shell := ["bash", "-euo", "pipefail", "-c"]

# `--features wgpu` where this machine has a GPU, else nothing: a CPU-only machine builds the
# lab without the wgpu backend, in about half the time (scripts/lab-features; LAB_WGPU=1 or 0
# decides instead).
features := `scripts/lab-features`

# List the recipes.
default:
    @just --list

# Run the whole test suite, built as `just` builds the lab for this machine: with the wgpu
# backend where there is a GPU (its checks then run on it), without it where there is none (the
# wgpu checks print SKIPPED; `LAB_WGPU=1 just test` runs them on lavapipe, as CI does). The test
# binaries probe wgpu in-process, where the lab's own fix for Mesa's "XDG_RUNTIME_DIR is
# invalid" noise (in `lab`'s main) does not run: give them a private directory when unset.
test:
    XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}" cargo test {{features}} --no-fail-fast

# Formatting and lints, as CI checks them before the tests: the build with the wgpu backend and
# the one without (what a CPU-only machine compiles).
lint:
    cargo fmt --check
    cargo clippy --all-targets --features wgpu -- -D warnings
    cargo clippy --all-targets -- -D warnings

# Train one run: `just train experiments/examples/moe-tiny.toml` (extra flags after the spec).
train spec *flags:
    cargo run --quiet {{features}} --bin lab -- train --spec {{spec}} {{flags}}

# Run a sweep, analyse it and draw its plots: `just sweep dense-vs-moe [--preset full]`.
# dense-vs-moe-text trains on a prepared BPE corpus, made first (once) from the generated one.
sweep name *flags:
    if [ "{{name}}" = "dense-vs-moe-text" ]; then scripts/prepare-generated-bpe.sh; fi
    cargo run --quiet {{features}} --bin lab -- sweep {{name}} {{flags}}

# Parameter and FLOP counts of specs.
flops *specs:
    cargo run --quiet {{features}} --bin lab -- flops {{specs}}

# Dense-vs-MoE step benchmark on CPU: eager PyTorch's table first where importable
# (PYTHON=...), then the lab's (flex), printed beside it. `just bench-cpu sweep` at the sweeps' shapes.
bench-cpu preset="bench":
    if "${PYTHON:-python3}" -c "import torch" 2>/dev/null; then "${PYTHON:-python3}" bench/pytorch_moe.py --device cpu --preset {{preset}}; else echo "PyTorch not importable by ${PYTHON:-python3}: its table skipped"; fi
    cargo run --quiet {{features}} --bin lab -- bench --device flex --preset {{preset}}

# Export a completed run for Hugging Face and check it in transformers: logits within 1e-4 of
# the lab's, tokenizer = UTF-8 bytes. Needs torch and transformers (PYTHON=venv/bin/python).
hf-check run_dir:
    out="$(mktemp -d)/hf" && cargo run --quiet {{features}} --bin lab -- export {{run_dir}} --out "$out" && "${PYTHON:-python3}" scripts/hf-check.py "$out"

# `lab sweep --slurm` end to end on a one-node Slurm cluster this starts (and stops) on this
# machine: installs slurm-wlm and munge if missing (needs root). See docs/slurm.md.
slurm-check:
    scripts/slurm-check.sh
