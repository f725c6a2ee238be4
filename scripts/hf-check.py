#!/usr/bin/env python3
"""Check a `lab export` directory with Hugging Face transformers.

    python3 scripts/hf-check.py EXPORT_DIR [--tolerance 1e-4]

Loads the export with AutoModelForCausalLM and AutoTokenizer, runs the reference windows the
lab wrote (reference.safetensors: `tokens` [W, T], the lab's `logits` [W, T, vocab]) and fails
(exit 1) unless
  - the model class is the one config.json names (LlamaForCausalLM / MixtralForCausalLM),
  - its logits match the lab's to <= tolerance (max abs, float32), and
  - the tokenizer gives the lab's ids for the texts in tokenizer_reference.json (UTF-8 bytes
    for a byte-level run, the run's BPE otherwise) and decodes them back to the text.
Needs torch and transformers (`python3 -m venv DIR && DIR/bin/pip install torch transformers`);
the lab's Rust tests do not.
"""

import argparse
import json
import sys
import time

TEXTS = [
    "Hello, world!",
    "  two leading spaces\nand a newline\ttab",
    "café, naïve, 東京, emoji 🙂",
    "x = 3 * (4 + 5)  # code\n",
    "",
]


def check_tokenizer(directory):
    """AutoTokenizer against the lab's own ids for the texts of tokenizer_reference.json (the
    lab's tokenizer, bytes or BPE), and decoding back to the text; an export without that file
    (older) is checked as the byte tokenizer (token id = UTF-8 byte)."""
    import os

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(directory)
    path = f"{directory}/tokenizer_reference.json"
    if os.path.exists(path):
        with open(path) as f:
            ref = json.load(f)
        cases = list(zip(ref["texts"], ref["ids"]))
    else:
        cases = [(text, list(text.encode("utf-8"))) for text in TEXTS]
    failures = []
    for text, want in cases:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if ids != want:
            failures.append(f"{text!r}: ids {ids[:12]}... != the lab's {want[:12]}...")
            continue
        back = tok.decode(ids)
        if back != text:
            failures.append(f"{text!r}: decodes to {back!r}")
    return type(tok).__name__, len(tok), failures


def check_model(directory, tolerance):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    with open(f"{directory}/config.json") as f:
        want_class = json.load(f)["architectures"][0]
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    load_s = time.perf_counter() - started
    ref = load_file(f"{directory}/reference.safetensors")
    tokens = ref["tokens"].long()
    lab_logits = ref["logits"].float()
    started = time.perf_counter()
    with torch.no_grad():
        hf_logits = model(input_ids=tokens).logits.float()
    forward_s = time.perf_counter() - started
    per_window = (hf_logits - lab_logits).abs().flatten(1).max(dim=1).values.tolist()
    return {
        "class": type(model).__name__,
        "want_class": want_class,
        "parameters": sum(p.numel() for p in model.parameters()),
        "windows": list(tokens.shape),
        "max_abs_diff": max(per_window),
        "per_window_max_abs_diff": per_window,
        "tolerance": tolerance,
        "load_s": round(load_s, 3),
        "forward_s": round(forward_s, 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as e:
        print(f"hf-check needs torch and transformers: {e}", file=sys.stderr)
        return 2
    result = check_model(args.export_dir, args.tolerance)
    tok_class, vocab, tok_failures = check_tokenizer(args.export_dir)
    result.update(
        transformers=transformers.__version__,
        torch=torch.__version__,
        tokenizer=tok_class,
        tokenizer_vocab=vocab,
        tokenizer_failures=tok_failures,
    )
    print(json.dumps(result, indent=2))
    problems = []
    if result["class"] != result["want_class"]:
        problems.append(f"loaded as {result['class']}, config.json names {result['want_class']}")
    if not result["max_abs_diff"] <= args.tolerance:
        problems.append(f"logits differ by {result['max_abs_diff']:.3g} > {args.tolerance:g}")
    problems += [f"tokenizer: {f}" for f in tok_failures]
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(
            f"OK: {result['class']} logits within {result['max_abs_diff']:.2g} of the lab's "
            f"on {result['windows'][0]} windows of {result['windows'][1]}; tokenizer ids = the lab's",
            file=sys.stderr,
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
