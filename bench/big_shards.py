#!/usr/bin/env python3
"""Write a large llm.c-format corpus by repeating a prepared corpus's tokens (for the resident-
memory benchmark: docs/performance.md, "Real corpora").

    python3 bench/big_shards.py PREPARED_DIR OUT_DIR --tokens 1100000000

OUT_DIR gets big_train_000000.bin ... (at most 500 M tokens each) and big_val_000000.bin (the
source's validation tokens as they are), without a manifest: the lab reads it as llm.c shards.
Standard library only: no numpy.
"""

import argparse
import glob
import os
import struct

MAGIC, HEADER = 20240520, 1024


def body(path):
    with open(path, "rb") as f:
        header = struct.unpack("<256i", f.read(HEADER))
        assert header[0] == MAGIC and header[1] == 1, f"{path}: not a uint16 llm.c shard"
        return f.read()


def write(path, chunks, count):
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<256i", MAGIC, 1, count, *([0] * 253)))
        for c in chunks:
            f.write(c)
    os.rename(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("prepared")
    p.add_argument("out")
    p.add_argument("--tokens", type=int, default=1_100_000_000)
    p.add_argument("--per-shard", type=int, default=500_000_000)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    train = b"".join(body(f) for f in sorted(glob.glob(f"{a.prepared}/train_*.bin")))
    val = b"".join(body(f) for f in sorted(glob.glob(f"{a.prepared}/val_*.bin")))
    write(f"{a.out}/big_val_000000.bin", [val], len(val) // 2)
    left, index = a.tokens, 0
    while left > 0:
        n = min(left, a.per_shard)
        reps, rest = divmod(n * 2, len(train))
        chunks = [train] * reps + [train[:rest]]
        write(f"{a.out}/big_train_{index:06d}.bin", chunks, n)
        left -= n
        index += 1


if __name__ == "__main__":
    main()
