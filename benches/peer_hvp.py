#!/usr/bin/env python3
"""PyTorch side of the HVP comparison in docs/performance.md.

peer.py part (c) times the double-backward HVP in float32 only; this runs the same model
(784 -> 256 x 4 blocks -> 10, batch 1000, random data and init, residual and plain) in float32
AND float64, plus 100 Lanczos steps, reusing peer.py's own classes and functions.

    python3 benches/peer_hvp.py [--peer ../shared/bench/peer.py] [--threads 2] [--device cuda]

On a GPU (`--device cuda`) the model, the batch and the products live on the GPU and each timing
waits for the GPU to finish (torch.cuda.synchronize); the Lanczos basis stays on the host, as
peer.lanczos keeps it, and as resprune-tui does.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ap = argparse.ArgumentParser()
ap.add_argument("--peer", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench", "peer.py"))
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
ap.add_argument("--device", default="cpu", help="cpu or cuda")
args = ap.parse_args()

spec = importlib.util.spec_from_file_location("peer", args.peer)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
torch = peer.torch
torch.set_num_threads(args.threads)

dev = torch.device(args.device)


def synced(fn):
    """fn, then wait for the device: a CUDA call returns before the GPU is done."""
    def call(*a):
        r = fn(*a)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return r
    return call


out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev)}
if dev.type == "cuda":
    out["gpu"] = torch.cuda.get_device_name(dev)
for dtype in (torch.float32, torch.float64):
    torch.manual_seed(0)
    Xb = torch.randn(1000, 784, dtype=dtype).to(dev)
    yb = torch.randint(0, 10, (1000,)).to(dev)
    for residual in (True, False):
        key = f"{'residual' if residual else 'plain'}_{str(dtype).split('.')[-1]}"
        torch.manual_seed(peer.INIT_SEED)
        m = peer.DeepMLP(residual).to(dtype).to(dev).eval()
        hv = peer.HVP(m, Xb, yb)
        v = torch.randn(hv.n, dtype=dtype).to(dev)
        _, t_hvp, ts = peer.timed(synced(lambda: hv(v)), reps=5)
        _, t_full, _ = peer.timed(synced(lambda: peer.HVP(m, Xb, yb)(v)), reps=3)
        # 100 Lanczos steps with full reorthogonalisation; peer.lanczos keeps its basis in
        # float32, so the float64 case runs f64 HVPs with f32 reorthogonalisation
        t0 = time.perf_counter()
        q = peer.lanczos(synced(lambda x: hv(x.to(dev, dtype)).to("cpu", torch.float32)), hv.n, steps=100)
        t_lz = time.perf_counter() - t0
        out[key] = {"params": hv.n, "per_hvp_s": t_hvp, "hvp_from_scratch_s": t_full,
                    "lanczos100_s": t_lz, "top": float(q[-1])}
        print(f"{key:<18} params {hv.n}  HVP {t_hvp*1e3:8.1f} ms (from scratch {t_full*1e3:8.1f} ms)"
              f"  100 Lanczos steps {t_lz:6.2f} s  top {float(q[-1]):.4g}", flush=True)
if args.json:
    print(json.dumps(out, indent=1))
