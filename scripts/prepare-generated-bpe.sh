#!/usr/bin/env bash
# The generated corpus's four domains as prepared BPE corpora under data/generated-bpe/: what
# experiments/dense-vs-moe-text.toml trains on, made with no download. Written out as JSON
# Lines (`lab corpus --write`), a byte-level BPE trained on all of it (`lab data tokenizer`),
# then one prepared source per domain (`lab data prepare`). Steps already done are skipped.
#
#   scripts/prepare-generated-bpe.sh [BYTES_PER_DOMAIN] [VOCAB]
set -euo pipefail
cd "$(dirname "$0")/.."
bytes=${1:-3000000}
vocab=${2:-1024}
out=data/generated-bpe
# shellcheck disable=SC2046 # the flags are words
lab() { cargo run --quiet $(scripts/lab-features) --bin lab -- "$@"; }
mkdir -p "$out"
if [ ! -f "$out/text/code.jsonl" ]; then
    lab corpus --write "$out/text" --bytes "$bytes"
fi
if [ ! -f "$out/tokenizer.json" ]; then
    lab data tokenizer --vocab "$vocab" --input "$out/text" --out "$out/tokenizer.json"
fi
for domain in knowledge math code multilingual; do
    if [ ! -f "$out/$domain/manifest.json" ]; then
        lab data prepare --tokenizer "$out/tokenizer.json" --input "$out/text/$domain.jsonl" \
            --out "$out/$domain" --val-fraction 0.05
    fi
done
