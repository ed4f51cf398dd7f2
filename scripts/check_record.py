#!/usr/bin/env python3
"""Recompute a record's losses, accuracies and pruning sensitivities from its checkpoint.

    python3 scripts/check_record.py RECORD.toml [--check REL]

Reads RECORD.toml (tomllib) and the `<record>.safetensors` it names (parsed by hand: an
8-byte little-endian header length, a JSON header, raw little-endian buffers), so the only
dependency is numpy. From the checkpoint alone (its metadata describes the model, its
`data.*` tensors hold the splits) it recomputes, for each model of the first seed:

- `initial`: train and eval loss and accuracy of theta0 (the record's `history[0]`);
- `trained`: the same of the trained weights (the record's last `history` entry);
- `pruning`: for each row, `loss_before`, `loss_after` of `theta * mask` (the stored mask),
  `sensitivity` S = (L_after - L_before) / L_before, the accuracies, `pruned` (zeros in the
  mask over the eligible tensors), and whether the stored pruned tensors equal theta * mask.

It prints them as one JSON document. With `--check REL` it also compares every number with
the record and exits 1 when one differs by more than REL (relative; S relative to
max(|S|, 1 + S), as S cancels two nearly equal losses), or when a stored pruned tensor is not
theta * mask; the largest relative difference is printed either way on stderr. The MLP and the transformer are both covered;
docs/pytorch.md is the same recipe in PyTorch, with the Hessian.
"""

import hashlib
import json
import math
import struct
import sys
import tomllib
from pathlib import Path

import numpy as np

DTYPES = {"F64": "<f8", "I64": "<i8", "U8": "u1", "F32": "<f4", "I32": "<i4"}


def read_safetensors(path):
    """{name: ndarray}, metadata dict."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        a = np.frombuffer(raw[base + begin : base + end], dtype=DTYPES[t["dtype"]])
        tensors[name] = a.reshape(t["shape"])
    return tensors, meta, raw


def row_key(method, ratio, granularity="unstructured"):
    """A pruning row's name in the checkpoint (format 2): `magnitude_0p300000`,
    `wanda_neuron_0p300000`, `obs_2of4_0p500000`."""
    g = "" if granularity == "unstructured" else granularity.replace(":", "of") + "_"
    return f"{method}_{g}{ratio:.6f}".replace(".", "p")


def act_fn(name):
    if name == "relu":
        return lambda z: np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh
    if name == "gelu_tanh":
        c = math.sqrt(2.0 / math.pi)
        return lambda z: 0.5 * z * (1.0 + np.tanh(c * (z + 0.044715 * z**3)))
    raise SystemExit(f"unknown activation {name!r}")


def mlp_logits(p, meta, variant, x):
    act = act_fn(meta["model.activation"])
    depth = int(meta["model.depth"])
    alpha = float(meta["model.alpha"])
    learned = meta["model.learned_alpha"] == "true" and variant == "residual"
    lin = lambda name, h: h @ p[f"{name}.weight"].T + p[f"{name}.bias"]
    h = act(lin("stem", x))
    for b in range(depth):
        f = act(lin(f"blocks.{b}", h))
        if variant == "residual":
            a = p["alpha"][b] if learned else alpha
            h = h + a * f
        else:
            h = f
    return lin("head", h)


def layer_norm(p, name, h):
    mean = h.mean(axis=-1, keepdims=True)
    var = ((h - mean) ** 2).mean(axis=-1, keepdims=True)
    return (h - mean) / np.sqrt(var + 1e-5) * p[f"{name}weight"] + p[f"{name}bias"]


def transformer_logits(p, meta, variant, x):
    """Pre-LayerNorm encoder, masked mean pooling (src/model/transformer.rs)."""
    act = act_fn(meta["model.activation"])
    depth, heads = int(meta["model.depth"]), int(meta["model.heads"])
    alpha = float(meta["model.alpha"])
    ids = x.astype(np.int64)
    n, L = ids.shape
    d = int(meta["model.width"])
    dh = d // heads
    lin = lambda name, h: h @ p[f"{name}weight"].T + p[f"{name}bias"]
    real = (ids != 0).astype(np.float64)  # 0 is padding
    h = p["embed.weight"][ids] + p["pos.weight"][None, :, :]  # (n, L, d)
    key_bias = np.where(real > 0, 0.0, -1e9)[:, None, None, :]  # (n, 1, 1, L)

    def skip(h, f):
        return h + alpha * f if variant == "residual" else f

    for b in range(depth):
        a = f"blocks.{b}.attn."
        z = layer_norm(p, a + "norm.", h)
        split = lambda t: t.reshape(n, L, heads, dh).transpose(0, 2, 1, 3)
        q = split(lin(a + "q.", z) / math.sqrt(dh))
        k = split(lin(a + "k.", z))
        v = split(lin(a + "v.", z))
        s = q @ k.transpose(0, 1, 3, 2) + key_bias
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s = s / s.sum(axis=-1, keepdims=True)
        o = (s @ v).transpose(0, 2, 1, 3).reshape(n, L, d)
        h = skip(h, lin(a + "out.", o))
        m = f"blocks.{b}.mlp."
        z = layer_norm(p, m + "norm.", h)
        h = skip(h, lin(m + "fc2.", act(lin(m + "fc1.", z))))
    h = layer_norm(p, "final_norm.", h)
    count = np.maximum(real.sum(axis=1, keepdims=True), 1.0)
    pooled = (h * real[:, :, None]).sum(axis=1) / count
    return lin("head.", pooled)


def evaluate(p, meta, variant, x, y):
    if meta["model.kind"] == "mlp":
        z = mlp_logits(p, meta, variant, x)
    else:
        z = transformer_logits(p, meta, variant, x)
    zmax = z.max(axis=1, keepdims=True)
    logp = z - zmax - np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(y)), y].mean()
    acc = float((z.argmax(axis=1) == y).mean())
    return float(loss), acc


def params_of(tensors, prefix):
    """The tensors under `prefix.`, with the prefix taken off (a state_dict)."""
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def model_names(tensors, variant):
    """Names of the trained tensors of a model (`stem.weight`, ..., `alpha`)."""
    skip = ("init.", "pruned.", "mask.")
    return [k for k in params_of(tensors, variant) if not k.startswith(skip)]


def recompute(record_path):
    record_path = Path(record_path)
    rec = tomllib.loads(record_path.read_text())
    cp = rec.get("checkpoint")
    if cp is None:
        raise SystemExit(f"{record_path}: no checkpoint (run with --save-weights)")
    st_path = record_path.parent / cp["file"]
    tensors, meta, raw = read_safetensors(st_path)
    if hashlib.sha256(raw).hexdigest() != cp["sha256"]:
        raise SystemExit(f"{st_path}: SHA-256 differs from the record's")
    if meta.get("format") != "resprune-checkpoint-2":
        raise SystemExit(f"{st_path}: format {meta.get('format')!r}, this script reads 2")
    split = {
        s: (tensors[f"data.{s}.x"], tensors[f"data.{s}.y"].astype(np.int64))
        for s in ("train", "eval", "hessian")
    }
    out = {"format": meta["format"], "models": {}}
    for variant in meta["variants"].split(","):
        names = model_names(tensors, variant)
        model = {}
        for stage, prefix in (("initial", f"{variant}.init"), ("trained", variant)):
            p = params_of(tensors, prefix)
            tl, ta = evaluate(p, meta, variant, *split["train"])
            el, ea = evaluate(p, meta, variant, *split["eval"])
            hl, _ = evaluate(p, meta, variant, *split["hessian"])
            model[stage] = {
                "train_loss": tl,
                "train_accuracy": ta,
                "eval_loss": el,
                "eval_accuracy": ea,
                "hessian_batch_loss": hl,
            }
        trained = params_of(tensors, variant)
        loss_before, acc_before = evaluate(trained, meta, variant, *split["eval"])
        rows = []
        for row in rec[variant]["pruning"]:
            key = row_key(row["method"], row["ratio"], row.get("granularity", "unstructured"))
            mask = params_of(tensors, f"{variant}.mask.{key}")
            stored = params_of(tensors, f"{variant}.pruned.{key}")
            if not mask:
                raise SystemExit(f"{st_path}: no tensors `{variant}.mask.{key}.*`")
            # obs updates the kept weights: its stored pruned tensors are the model evaluated
            updates = row["method"] == "obs"
            pruned = stored if updates else {k: trained[k] * (mask[k] != 0) for k in names}
            loss_after, acc_after = evaluate(pruned, meta, variant, *split["eval"])
            rows.append(
                {
                    "method": row["method"],
                    "ratio": row["ratio"],
                    "key": key,
                    "loss_before": loss_before,
                    "loss_after": loss_after,
                    "sensitivity": (loss_after - loss_before) / loss_before,
                    "accuracy_before": acc_before,
                    "accuracy_after": acc_after,
                    "pruned": int(sum((mask[k] == 0).sum() for k in names)),
                    "stored_pruned_equals_theta_times_mask": all(
                        np.array_equal(stored[k], pruned[k]) for k in names
                    ),
                }
            )
        model["pruning"] = rows
        model["params"] = int(sum(trained[k].size for k in names))
        out["models"][variant] = model
    return rec, out


def compare(rec, out):
    """(max relative difference, [(path, stored, recomputed, rel)]) against the record."""
    pairs = []
    for v, m in out["models"].items():
        hist = rec[v]["history"]
        for stage, h in (("initial", hist[0]), ("trained", hist[-1])):
            for k in ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy"):
                pairs.append((f"{v}.history[{h['epoch']}].{k}", h[k], m[stage][k]))
        for i, (row, got) in enumerate(zip(rec[v]["pruning"], m["pruning"])):
            for k in ("loss_before", "loss_after", "sensitivity", "accuracy_before",
                      "accuracy_after", "pruned"):
                pairs.append((f"{v}.pruning[{i}].{k}", row[k], got[k]))
    rows = []
    for path, a, b in pairs:
        # S = L_after / L_before - 1 is compared as the ratio 1 + S: S cancels two nearly
        # equal losses, so its own relative error is theirs times L / |L_after - L_before|
        scale = max(abs(a), abs(b))
        if path.endswith(".sensitivity"):
            scale = max(scale, abs(1 + a), abs(1 + b))
        rel = 0.0 if a == b else abs(a - b) / scale
        rows.append((path, a, b, rel))
    return max((r[3] for r in rows), default=0.0), rows


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    rec, out = recompute(argv[1])
    worst, rows = compare(rec, out)
    out["max_rel_diff"] = worst
    print(json.dumps(out, indent=1))
    print(f"largest relative difference from the record: {worst:.3e} "
          f"over {len(rows)} numbers", file=sys.stderr)
    if "--check" in argv:
        tol = float(argv[argv.index("--check") + 1])
        bad = [r for r in rows if r[3] > tol]
        for path, a, b, rel in bad:
            print(f"{path}: record {a!r}, recomputed {b!r} (rel {rel:.3e})", file=sys.stderr)
        ok = not bad and all(
            r["stored_pruned_equals_theta_times_mask"]
            for m in out["models"].values() for r in m["pruning"]
        )
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
