#!/usr/bin/env python3
"""Tokenization throughput of the Python `tokenizers` package on the inputs `lab data prepare`
reads, for the side-by-side in docs/performance.md ("Real corpora").

    RAYON_NUM_THREADS=1 python3 bench/tokenize_throughput.py tokenizer.json INPUT.jsonl... [--batch-mb 16]

Reads JSON Lines (`text` field) or plain text files (one document each), encodes them in batches
of about --batch-mb MB with `encode_batch` (parallel over documents, as the lab does), and prints
MB of text per second. Needs `pip install tokenizers`.
"""

import argparse
import json
import time

from tokenizers import Tokenizer


def documents(paths):
    for p in paths:
        if p.endswith(".jsonl"):
            with open(p, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)["text"]
        else:
            with open(p, encoding="utf-8") as f:
                yield f.read()


def main():
    a = argparse.ArgumentParser()
    a.add_argument("tokenizer")
    a.add_argument("inputs", nargs="+")
    a.add_argument("--batch-mb", type=float, default=16)
    args = a.parse_args()
    tok = Tokenizer.from_file(args.tokenizer)
    docs = list(documents(args.inputs))
    text_bytes = sum(len(d.encode("utf-8")) for d in docs)
    started = time.perf_counter()
    tokens, batch, size = 0, [], 0
    for d in docs + [None]:
        if d is not None:
            batch.append(d)
            size += len(d)
        if batch and (d is None or size >= args.batch_mb * 1e6):
            tokens += sum(len(e.ids) for e in tok.encode_batch_fast(batch, add_special_tokens=False))
            batch, size = [], 0
    seconds = time.perf_counter() - started
    print(
        f"python tokenizers: {text_bytes / 1e6:.1f} MB, {tokens} tokens in {seconds:.2f} s: "
        f"{text_bytes / 1e6 / seconds:.2f} MB/s"
    )


if __name__ == "__main__":
    main()
