#!/usr/bin/env python3
"""PyTorch (float64) peer of the tool's transformer (experiments/reviews-transformer.toml).

The model is the pre-LayerNorm encoder of src/model/transformer.rs: token embedding + learned
positions, `depth` blocks of `heads`-head self-attention and a GELU (tanh form) MLP, each
sub-layer `h + alpha * F(LN(h))` (residual) or `F(LN(h))` (plain), a final LayerNorm, a mean
over the real tokens (id 0 = padding) and a linear head. Its forward is `transformer_logits`
of scripts/check_record.py (the independent numpy check of the records) with `torch` in place
of `np`, line for line.

    python3 benches/peer_transformer.py --checkpoint RECORD.safetensors [--threads 2] [--reps 20] [--json]
    python3 benches/peer_transformer.py            # no checkpoint: random weights and data, no check

1. Check (with --checkpoint): the record beside the checkpoint (its metadata names it) holds
   each model's losses; this recomputes, in float64 PyTorch on the checkpoint's weights and
   splits, the trained and initial train/eval losses (`history[-1]`, `history[0]`) and the
   first pruning row's `loss_after` of both variants, plus the Hessian batch's loss against
   check_record.py's numpy forward (the record does not store that one), prints the relative
   differences and exits 1 when one exceeds --tol (1e-10).
2. Timings, torch.set_num_threads(--threads), median of --reps after --warmup calls, per
   variant: (i) one Adam training step (batch `train.batch_size` = 32: forward, backward,
   step), (ii) one Hessian-vector product by double backward on the Hessian batch (256
   sentences; `from scratch` = forward + autograd.grad(create_graph=True) + grad of g.v,
   `reusing g` = only the second backward), (iii) one no-grad evaluation pass over the
   evaluation split (2,113 sentences, one batch unless --eval-batch).

Needs torch and numpy (the checkpoint is read by check_record.py's numpy parser).
"""
import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import time
import tomllib
from pathlib import Path

# passive OpenMP waiting: on a 2-vCPU VM the default spin-wait makes 2-thread runs erratic
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_record", ROOT / "scripts" / "check_record.py")
cr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cr)

VARIANTS = ("residual", "plain")


# ------------------------------------------------------------------ the model (check_record's)
def gelu_tanh(z):
    c = math.sqrt(2.0 / math.pi)
    return 0.5 * z * (1.0 + torch.tanh(c * (z + 0.044715 * z**3)))


ACT = {"gelu_tanh": gelu_tanh, "relu": torch.relu, "tanh": torch.tanh}


def layer_norm(p, name, h):
    mean = h.mean(dim=-1, keepdim=True)
    var = ((h - mean) ** 2).mean(dim=-1, keepdim=True)
    return (h - mean) / torch.sqrt(var + 1e-5) * p[f"{name}weight"] + p[f"{name}bias"]


def transformer_logits(p, meta, variant, ids):
    """check_record.transformer_logits in torch; `ids` (n, L) int64, 0 = padding."""
    act = ACT[meta["model.activation"]]
    depth, heads = int(meta["model.depth"]), int(meta["model.heads"])
    alpha = float(meta["model.alpha"])
    n, L = ids.shape
    d = int(meta["model.width"])
    dh = d // heads
    lin = lambda name, h: h @ p[f"{name}weight"].T + p[f"{name}bias"]  # noqa: E731
    real = (ids != 0).to(torch.float64)  # 0 is padding
    h = p["embed.weight"][ids] + p["pos.weight"][None, :, :]  # (n, L, d)
    key_bias = torch.where(real > 0, 0.0, -1e9).to(torch.float64)[:, None, None, :]

    def skip(h, f):
        return h + alpha * f if variant == "residual" else f

    for b in range(depth):
        a = f"blocks.{b}.attn."
        z = layer_norm(p, a + "norm.", h)
        split = lambda t: t.reshape(n, L, heads, dh).permute(0, 2, 1, 3)  # noqa: E731
        q = split(lin(a + "q.", z) / math.sqrt(dh))
        k = split(lin(a + "k.", z))
        v = split(lin(a + "v.", z))
        s = q @ k.transpose(-1, -2) + key_bias
        s = torch.exp(s - s.max(dim=-1, keepdim=True).values)
        s = s / s.sum(dim=-1, keepdim=True)
        o = (s @ v).permute(0, 2, 1, 3).reshape(n, L, d)
        h = skip(h, lin(a + "out.", o))
        m = f"blocks.{b}.mlp."
        z = layer_norm(p, m + "norm.", h)
        h = skip(h, lin(m + "fc2.", act(lin(m + "fc1.", z))))
    h = layer_norm(p, "final_norm.", h)
    count = torch.clamp(real.sum(dim=1, keepdim=True), min=1.0)
    pooled = (h * real[:, :, None]).sum(dim=1) / count
    return lin("head.", pooled)


def loss_fn(p, meta, variant, x, y):
    return F.cross_entropy(transformer_logits(p, meta, variant, x), y)


def rel(a, b):
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b), 1e-300)


# ------------------------------------------------------------------ weights and data
def names_of(meta):
    """Tensor names in theta order (src/model/transformer.rs)."""
    out = ["embed.weight", "pos.weight"]
    for b in range(int(meta["model.depth"])):
        a = f"blocks.{b}.attn."
        out += [a + t for t in ("norm.weight", "norm.bias", "q.weight", "q.bias", "k.weight",
                                "k.bias", "v.weight", "v.bias", "out.weight", "out.bias")]
        m = f"blocks.{b}.mlp."
        out += [m + t for t in ("norm.weight", "norm.bias", "fc1.weight", "fc1.bias",
                                "fc2.weight", "fc2.bias")]
    return out + ["final_norm.weight", "final_norm.bias", "head.weight", "head.bias"]


def load_checkpoint(path):
    tensors, meta, _ = cr.read_safetensors(path)
    if meta.get("format") != "resprune-checkpoint-2":
        raise SystemExit(f"{path}: format {meta.get('format')!r}, this script reads 2")
    if meta["model.kind"] != "transformer":
        raise SystemExit(f"{path}: model.kind {meta['model.kind']!r}, not a transformer")
    for v in VARIANTS:  # strict, as load_state_dict: every stored name is one of the model's
        stored = set(cr.model_names(tensors, v))
        if stored != set(names_of(meta)):
            raise SystemExit(f"{path}: {v} tensors differ from the model's: "
                             f"{sorted(stored ^ set(names_of(meta)))}")
        n = sum(tensors[f"{v}.{k}"].size for k in stored)
        if n != int(meta[f"model.params.{v}"]):
            raise SystemExit(f"{path}: {v} has {n} parameters, the metadata says "
                             f"{meta[f'model.params.{v}']}")
    split = {s: (tensors[f"data.{s}.x"], tensors[f"data.{s}.y"].astype(np.int64))
             for s in ("train", "eval", "hessian")}
    return tensors, meta, split


def random_setup(seed=0):
    """reviews-transformer.toml's shapes with random weights and sentences (no checkpoint)."""
    meta = {"model.kind": "transformer", "model.width": "32", "model.depth": "2",
            "model.heads": "2", "model.ff": "64", "model.max_len": "32", "model.vocab": "2002",
            "model.classes": "2", "model.activation": "gelu_tanh", "model.alpha": "1.0",
            "train.batch_size": "32"}
    g = np.random.default_rng(seed)
    d, ff, L, V = 32, 64, 32, 2002
    shapes = {"embed.weight": (V, d), "pos.weight": (L, d), "final_norm.weight": (d,),
              "final_norm.bias": (d,), "head.weight": (2, d), "head.bias": (2,)}
    for b in range(2):
        for t in ("q", "k", "v", "out"):
            shapes[f"blocks.{b}.attn.{t}.weight"] = (d, d)
            shapes[f"blocks.{b}.attn.{t}.bias"] = (d,)
        for s in ("attn", "mlp"):
            shapes[f"blocks.{b}.{s}.norm.weight"] = (d,)
            shapes[f"blocks.{b}.{s}.norm.bias"] = (d,)
        shapes.update({f"blocks.{b}.mlp.fc1.weight": (ff, d), f"blocks.{b}.mlp.fc1.bias": (ff,),
                       f"blocks.{b}.mlp.fc2.weight": (d, ff), f"blocks.{b}.mlp.fc2.bias": (d,)})
    tensors = {}
    for name, s in shapes.items():
        if name.endswith("norm.weight"):
            w = np.ones(s)
        elif name.endswith("bias"):
            w = np.zeros(s)
        elif name in ("embed.weight", "pos.weight"):
            w = g.normal(0, 0.02, s)
        else:
            w = g.normal(0, 1 / math.sqrt(s[1]), s)
        for v in VARIANTS:
            tensors[f"{v}.{name}"] = w

    def sentences(n):
        lens = g.integers(4, L + 1, n)
        x = g.integers(1, V, (n, L)).astype(np.float64)
        x[np.arange(L)[None, :] >= lens[:, None]] = 0.0
        return x, g.integers(0, 2, n).astype(np.int64)

    split = {"train": sentences(8455), "eval": sentences(2113)}
    split["hessian"] = (split["train"][0][:256], split["train"][1][:256])
    tensors["data.train.order"] = np.stack([g.permutation(8455)])
    return tensors, meta, split


def torch_params(tensors, meta, prefix, dev, grad=False):
    return {k: torch.tensor(np.ascontiguousarray(tensors[f"{prefix}.{k}"]), dtype=torch.float64,
                            device=dev).requires_grad_(grad) for k in names_of(meta)}


def as_torch(split, dev):
    return {s: (torch.tensor(x.astype(np.int64), device=dev), torch.tensor(y, device=dev))
            for s, (x, y) in split.items()}


# ------------------------------------------------------------------ check
def check(path, tensors, meta, split, data, dev, tol):
    rec_path = Path(path).parent / meta["record"]
    rec = tomllib.loads(rec_path.read_text()) if rec_path.exists() else None
    if rec is None:
        print(f"warning: {rec_path} not found; only the numpy (check_record.py) comparison runs")
    rows = []
    with torch.no_grad():
        for v in VARIANTS:
            for stage, prefix, h in (("trained", v, -1), ("initial", f"{v}.init", 0)):
                p = torch_params(tensors, meta, prefix, dev)
                for s in ("train", "eval"):
                    got = loss_fn(p, meta, v, *data[s]).item()
                    if rec is not None:
                        rows.append((f"{v}.history[{rec[v]['history'][h]['epoch']}].{s}_loss",
                                     rec[v]["history"][h][f"{s}_loss"], got))
                if stage == "trained":
                    got = loss_fn(p, meta, v, *data["hessian"]).item()
                    ref, _ = cr.evaluate(cr.params_of(tensors, v), meta, v, *split["hessian"])
                    rows.append((f"{v}.hessian_batch_loss (vs check_record.py numpy)", ref, got))
            if rec is not None and rec[v]["pruning"]:
                row = rec[v]["pruning"][0]
                key = cr.row_key(row["method"], row["ratio"], row.get("granularity", "unstructured"))
                p = torch_params(tensors, meta, f"{v}.pruned.{key}", dev)
                got = loss_fn(p, meta, v, *data["eval"]).item()
                rows.append((f"{v}.pruning[0].loss_after ({key})", row["loss_after"], got))
    worst = 0.0
    print(f"loss check: PyTorch f64 vs the record ({rec_path.name})")
    for name, a, b in rows:
        r = rel(a, b)
        worst = max(worst, r)
        print(f"  {name:<52} record {a:.17g}  torch {b:.17g}  rel {r:.2e}")
    print(f"  largest relative difference {worst:.2e} (tolerance {tol:g}): "
          + ("PASS" if worst <= tol else "FAIL"))
    return worst, [{"name": n, "record": a, "torch": b, "rel": rel(a, b)} for n, a, b in rows]


# ------------------------------------------------------------------ timings
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="<record>.safetensors of a `run --save-weights` "
                    "of experiments/reviews-transformer.toml (the record beside it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20, help="timed repeats (median reported)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--eval-batch", type=int, default=0, help="eval chunk size (0: all at once)")
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)

    if args.checkpoint:
        tensors, meta, split = load_checkpoint(args.checkpoint)
    else:
        print("warning: no --checkpoint: random weights and sentences, the loss check is skipped")
        tensors, meta, split = random_setup()
    data = as_torch(split, dev)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev),
           "checkpoint": args.checkpoint, "samples": {s: len(split[s][1]) for s in split}}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)

    if args.checkpoint:
        worst, rows = check(args.checkpoint, tensors, meta, split, data, dev, args.tol)
        out["check"] = {"max_rel": worst, "rows": rows}
        if worst > args.tol:
            if args.json:
                print(json.dumps(out, indent=1))
            return 1

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        for _ in range(args.warmup):
            fn()
        sync()
        ts = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    bs = int(meta["train.batch_size"])
    xt, yt = data["train"]
    order = torch.tensor(tensors["data.train.order"][0], device=dev)
    batches = [order[i:i + bs] for i in range(0, len(order) - bs + 1, bs)]
    xh, yh = data["hessian"]
    xe, ye = data["eval"]
    chunk = args.eval_batch or len(ye)
    for v in VARIANTS:
        # (i) Adam step, cycling through the first epoch's minibatches
        p = torch_params(tensors, meta, v, dev, grad=True)
        opt = torch.optim.Adam(p.values(), lr=1e-3)
        it = iter(range(10**9))

        def step():
            idx = batches[next(it) % len(batches)]
            opt.zero_grad(set_to_none=True)
            loss_fn(p, meta, v, xt[idx], yt[idx]).backward()
            opt.step()
        t_step = timed(step)

        # (ii) HVP by double backward on the Hessian batch
        p = torch_params(tensors, meta, v, dev, grad=True)
        ps = list(p.values())
        g_ = torch.Generator(device=dev).manual_seed(0)
        vec = [torch.randn(t.shape, dtype=torch.float64, device=dev, generator=g_) for t in ps]

        def hvp_scratch():
            g = torch.autograd.grad(loss_fn(p, meta, v, xh, yh), ps, create_graph=True)
            gv = sum((gi * vi).sum() for gi, vi in zip(g, vec))
            return torch.autograd.grad(gv, ps)
        t_hvp = timed(hvp_scratch)
        g = torch.autograd.grad(loss_fn(p, meta, v, xh, yh), ps, create_graph=True)
        t_hvp_reuse = timed(lambda: torch.autograd.grad(g, ps, grad_outputs=vec, retain_graph=True))
        del g

        # (iii) evaluation pass, no grad
        p = torch_params(tensors, meta, v, dev)

        @torch.no_grad()
        def evaluate():
            tot = 0.0
            for i in range(0, len(ye), chunk):
                z = transformer_logits(p, meta, v, xe[i:i + chunk])
                tot += F.cross_entropy(z, ye[i:i + chunk], reduction="sum").item()
            return tot / len(ye)
        t_eval = timed(evaluate)
        out[v] = {"params": sum(t.numel() for t in ps), "train_step_s": t_step,
                  "hvp_from_scratch_s": t_hvp, "hvp_reusing_g_s": t_hvp_reuse,
                  "eval_pass_s": t_eval}

    print(f"\ntimings: torch {torch.__version__}, {torch.get_num_threads()} threads, {dev}, "
          f"median of {args.reps} after {args.warmup} warm-up, ms")
    print(f"  {'model':<9}{'params':>8}{'Adam step (b=' + str(bs) + ')':>20}"
          f"{'HVP scratch (' + str(len(yh)) + ')':>20}{'HVP reusing g':>15}"
          f"{'eval pass (' + str(len(ye)) + ')':>19}")
    for v in VARIANTS:
        r = out[v]
        print(f"  {v:<9}{r['params']:>8}{r['train_step_s'] * 1e3:>20.2f}"
              f"{r['hvp_from_scratch_s'] * 1e3:>20.2f}{r['hvp_reusing_g_s'] * 1e3:>15.2f}"
              f"{r['eval_pass_s'] * 1e3:>19.2f}")
    if args.json:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
