#!/usr/bin/env python3
"""The `lab bench` table for eager PyTorch: the same architecture and shapes, so one run of
scripts/gpu-check.sh compares the lab against what its users would otherwise write.

Same as `lab bench` (lab/bench.rs): LLaMA-style blocks (pre-RMSNorm, rotate-half RoPE with
theta 10000, grouped-query causal attention with n_heads = max(d/64, 4) and half as many kv
heads, SwiGLU), byte vocabulary (256), untied head; arms per width d:
  dense          SwiGLU with d_ff matched to the MoE's active forward FLOPs per token
  moe-dropless   8 experts of hidden 2d, softmax top-2, renormalised gates, no token dropped
  moe-cf1.25     the same with capacity factor 1.25 (slots past ceil(1.25*k*N/K) dropped,
                 first choices before second choices)
with the Switch balance loss (0.01) and router z-loss (0.001). A step is forward, losses,
backward, global-norm clipping at 1.0 and AdamW (betas 0.9/0.95, weight decay 0.1), fp32.
The FFN layers alone are timed forward + backward with input gradients. FLOPs counted as in
lab/compute.rs (matmuls only, attention at the full sequence length, training = 3 x forward,
active experts only), MFU against an fp32 matmul measured here (TF32 off).

The MoE dispatch is what eager PyTorch code usually does (Hugging Face's Mixtral layer): a loop
over experts, each taking its tokens with torch.where / index_add_ (host-synchronising and
dynamically shaped, which the lab's dispatch avoids by design).

Usage: python3 bench/pytorch_moe.py [--device cuda|cpu] [--d-models 256 512] [--batch 4]
"""

import argparse
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

VOCAB = 256


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, seq, theta, device):
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(seq, device=device).float(), inv)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class Attention(nn.Module):
    def __init__(self, d, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, d // heads
        self.wq = nn.Linear(d, heads * self.head_dim, bias=False)
        self.wk = nn.Linear(d, kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(d, kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(heads * self.head_dim, d, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.w1 = nn.Linear(d, hidden, bias=False)
        self.w3 = nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoE(nn.Module):
    """K SwiGLU experts behind a softmax top-k router; capacity_factor None is dropless."""

    def __init__(self, d, experts, top_k, d_expert, capacity_factor=None):
        super().__init__()
        self.router = nn.Linear(d, experts, bias=False)
        self.experts = nn.ModuleList([SwiGLU(d, d_expert) for _ in range(experts)])
        self.k, self.capacity_factor = top_k, capacity_factor

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        n, n_exp = x.shape[0], len(self.experts)
        logits = self.router(x)
        probs = logits.softmax(-1)
        gates, chosen = probs.topk(self.k, dim=-1)
        gates = gates / gates.sum(-1, keepdim=True)
        # Slots choice-major (first choices before second), as in the lab and GShard.
        slot_expert = chosen.t().reshape(-1)
        slot_gate = gates.t().reshape(-1)
        slot_token = torch.arange(n, device=x.device).repeat(self.k)
        one_hot = F.one_hot(slot_expert, n_exp).float()
        load = one_hot.sum(0)
        # Slots dropped for lack of capacity: kept as a tensor (no sync), read after timing.
        self.dropped, self.slots = torch.zeros((), device=x.device), n * self.k
        if self.capacity_factor is not None:
            capacity = math.ceil(self.capacity_factor * self.k * n / n_exp)
            position = (one_hot.cumsum(0) * one_hot).sum(-1) - 1
            keep = position < capacity
            self.dropped = (~keep).sum()
            slot_expert, slot_gate, slot_token = (
                slot_expert[keep], slot_gate[keep], slot_token[keep])
        y = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            idx = torch.where(slot_expert == e)[0]
            if idx.numel() == 0:
                continue
            tok = slot_token[idx]
            y.index_add_(0, tok, expert(x[tok]) * slot_gate[idx, None])
        balance = 0.01 * n_exp * ((load / (n * self.k)) * probs.mean(0)).sum()
        z = 0.001 * torch.logsumexp(logits, -1).pow(2).mean()
        return y.reshape(shape), balance + z


class Block(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.attn_norm, self.ffn_norm = RMSNorm(d), RMSNorm(d)
        self.attn = Attention(d, heads, heads // 2)
        self.ffn = ffn

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        out = self.ffn(self.ffn_norm(x))
        aux = 0.0
        if isinstance(out, tuple):
            out, aux = out
        return x + out, aux


class Model(nn.Module):
    def __init__(self, d, layers, heads, seq, make_ffn):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, d)
        self.blocks = nn.ModuleList([Block(d, heads, make_ffn()) for _ in range(layers)])
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, VOCAB, bias=False)
        self.heads, self.seq = heads, seq

    def forward(self, tokens, cos, sin):
        x, aux = self.embedding(tokens), 0.0
        for block in self.blocks:
            x, a = block(x, cos, sin)
            aux = aux + a
        return self.head(self.norm(x)), aux


def dropped_share(modules):
    """Share of token-slots the MoE layers among `modules` dropped in their last forward."""
    moes = [m for m in modules if isinstance(m, MoE)]
    if not moes:
        return None
    return sum(float(m.dropped) for m in moes) / sum(m.slots for m in moes)


def forward_flops_per_token(d, layers, heads, seq, ffn_flops):
    """lab/compute.rs: matmuls only; attention scores at the full sequence length."""
    hd = d // heads
    q, kv = heads * hd, (heads // 2) * hd
    per_layer = 2 * (d * q + 2 * d * kv + q * d) + 4 * seq * q + ffn_flops
    return layers * per_layer + 2 * d * VOCAB


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device, warmup, steps, fn):
    times, first = [], 0.0
    for i in range(warmup + steps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        dt = time.perf_counter() - t0
        if i == 0:
            first = dt
        if i >= warmup:
            times.append(dt)
    q = statistics.quantiles(times, n=4, method="inclusive")
    return {"first": first, "median": statistics.median(times), "p25": q[0], "p75": q[2]}


def matmul_peak(device, n):
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t = timed(device, 2, 5, lambda: a @ b)
    return 2 * n**3 / t["median"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--preset", choices=["bench", "sweep"], default="bench",
                   help="bench: d 256/512, 4 layers, seq 256, batch 4 (the defaults); sweep: the "
                   "sweeps' shapes, d 32/64/128, 2 layers, seq 128, batch 16 (as lab bench "
                   "--preset sweep)")
    p.add_argument("--d-models", type=int, nargs="+")
    p.add_argument("--layers", type=int)
    p.add_argument("--seq", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", default="results/bench")
    args = p.parse_args()
    preset = {"bench": ([256, 512], 4, 256, 4), "sweep": ([32, 64, 128], 2, 128, 16)}[args.preset]
    for name, value in zip(["d_models", "layers", "seq", "batch"], preset):
        if getattr(args, name) is None:
            setattr(args, name, value)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    peak_n = 8192 if device.type == "cuda" else 2048
    peak = matmul_peak(device, peak_n)
    tokens = args.batch * args.seq
    rows = []
    for d in args.d_models:
        heads = max(d // 64, 4)
        experts, top_k, d_expert = 8, 2, 2 * d
        moe_ffn = 2 * d * experts + top_k * 6 * d * d_expert
        d_ff = round(moe_ffn / (6 * d))  # the dense arm's matched size, as "match-active"
        arms = [
            ("dense", lambda: SwiGLU(d, d_ff), 6 * d * d_ff),
            ("moe-dropless", lambda: MoE(d, experts, top_k, d_expert), moe_ffn),
            ("moe-cf1.25", lambda: MoE(d, experts, top_k, d_expert, 1.25), moe_ffn),
        ]
        cos, sin = rope_tables(d // heads, args.seq, 10_000.0, device)
        ids = torch.arange(tokens, device=device).view(args.batch, args.seq) * 7919 % VOCAB
        targets = (ids + 1) % VOCAB
        for name, make, ffn_flops in arms:
            model = Model(d, args.layers, heads, args.seq, make).to(device)
            decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
            rest = [p for n, p in model.named_parameters() if p.dim() < 2]
            opt = torch.optim.AdamW(
                [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                lr=1e-3, betas=(0.9, 0.95), eps=1e-8)

            def step():
                logits, aux = model(ids, cos, sin)
                loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1)) + aux
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()

            t = timed(device, args.warmup, args.steps, step)
            flops = 3 * forward_flops_per_token(d, args.layers, heads, args.seq, ffn_flops) * tokens
            with torch.no_grad():
                model(ids, cos, sin)
            rows.append((f"step {name}", d, t, tokens, flops, dropped_share(model.modules())))
        x = torch.randn(tokens, d, device=device, requires_grad=True)
        for name, make, ffn_flops in arms:
            layer = make().to(device)

            def ffn_step():
                out = layer(x)
                total = out[0].sum() + out[1] if isinstance(out, tuple) else out.sum()
                total.backward()

            t = timed(device, args.warmup, args.steps, ffn_step)
            with torch.no_grad():
                layer(x)
            rows.append((f"ffn {name}", d, t, tokens, 3 * ffn_flops * tokens,
                         dropped_share([layer])))

    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {label} (PyTorch {torch.__version__} eager, {torch.get_num_threads()} "
          f"threads); measured f32 matmul peak {peak / 1e9:.2f} GFLOP/s ({peak_n}³)")
    print(f"{'what':<20} {'d_model':>7} {'ms (median)':>10} {'IQR ms':>17} {'first ms':>11} "
          f"{'tokens/s':>10} {'GFLOP/s':>7} {'MFU':>9} {'vs dense':>10} {'dropped':>8}")
    # The shape columns let `lab bench` put its numbers beside these for the same shapes only.
    csv = ["what,d_model,median_ms,p25_ms,p75_ms,first_ms,tokens_per_s,gflops,mfu,ratio_vs_dense,"
           "dropped,layers,seq_len,batch,threads"]
    for what, d, t, toks, flops, dropped in rows:
        base_name = "step dense" if what.startswith("step") else "ffn dense"
        base = next(r[2]["median"] for r in rows if r[0] == base_name and r[1] == d)
        rate = flops / t["median"]
        v = [1e3 * t["median"], 1e3 * t["p25"], 1e3 * t["p75"], 1e3 * t["first"],
             toks / t["median"], rate / 1e9, rate / peak, t["median"] / base]
        print(f"{what:<20} {d:>7} {v[0]:>10.1f} {v[1]:>8.1f}–{v[2]:<8.1f} {v[3]:>11.1f} "
              f"{v[4]:>10.0f} {v[5]:>7.2f} {100 * v[6]:>8.1f}% {v[7]:>9.2f}× "
              f"{'–' if dropped is None else f'{100 * dropped:.1f}%':>8}")
        csv.append(f"{what},{d}," + ",".join(f"{x:.4f}" for x in v)
                   + ("," if dropped is None else f",{dropped:.4f}")
                   + f",{args.layers},{args.seq},{args.batch},{torch.get_num_threads()}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"bench-pytorch-{device.type}.csv")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(csv) + "\n")
    os.replace(path + ".tmp", path)
    print(f"CSV: {path}")


if __name__ == "__main__":
    main()
