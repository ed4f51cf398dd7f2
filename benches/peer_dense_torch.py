#!/usr/bin/env python3
# Copied unchanged from ../shared/bench/dense_ratio.py; no paths, runs from anywhere: python3 benches/peer_dense_torch.py THREADS REPS
"""Dense Hessian + all eigenvalues of the article's two 682-parameter models in PyTorch, f64
torch.func.hessian and the article's row-by-row autograd.grad (f32), eigvalsh in f64.
Prints medians (s) for both models together as JSON. Usage: dense_ratio.py THREADS REPS"""
import json, os, statistics, sys, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch
threads, reps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
X = torch.randn(100, 10); Y = torch.randint(0, 2, (100,))
def make(residual):
    g = torch.Generator().manual_seed(1)
    shapes = [(20, 10), (20,), (20, 20), (20,), (2, 20), (2,)]
    return [torch.randn(s, generator=g) * 0.3 for s in shapes], residual
def loss_flat(theta, residual, x, y):
    i, ps = 0, []
    for s in [(20, 10), (20,), (20, 20), (20,), (2, 20), (2,)]:
        n = 1
        for d in s: n *= d
        ps.append(theta[i:i+n].view(s)); i += n
    h = torch.relu(x @ ps[0].T + ps[1])
    f = torch.relu(h @ ps[2].T + ps[3])
    h = h + f if residual else f
    return torch.nn.functional.cross_entropy(h @ ps[4].T + ps[5], y)
def timed(fn):
    fn(); ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
out = {"threads": threads}
for name, dt in (("func_hessian_f64", torch.float64), ("rowwise_f32", torch.float32)):
    tot = 0.0
    for residual in (True, False):
        ps, _ = make(residual)
        theta = torch.cat([p.reshape(-1) for p in ps]).to(dt)
        x, y = X.to(dt), Y
        if name == "func_hessian_f64":
            def run():
                H = torch.func.hessian(lambda t: loss_flat(t, residual, x, y))(theta)
                return torch.linalg.eigvalsh(H.double())
        else:
            def run():
                t = theta.clone().requires_grad_(True)
                g = torch.autograd.grad(loss_flat(t, residual, x, y), t, create_graph=True)[0]
                rows = [torch.autograd.grad(g[i], t, retain_graph=True)[0] for i in range(g.numel())]
                return torch.linalg.eigvalsh(torch.stack(rows).double())
        tot += timed(run)
    out[name] = tot
print(json.dumps(out))
