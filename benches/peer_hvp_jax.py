#!/usr/bin/env python3
# Copied unchanged from ../shared/bench/hvp_jax.py; no paths, runs from anywhere: python3 benches/peer_hvp_jax.py [REPS]
"""JAX f64 HVP (jit of forward-over-reverse, jvp(grad)) on peer.py part (c)'s model: 784 -> 256,
4 residual/plain blocks 256 -> 256, -> 10; batch 1000 random data. Median of REPS, ms, JSON."""
import json, statistics, sys, time
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
k = jax.random.split(jax.random.PRNGKey(0), 8)
X = jax.random.normal(k[0], (1000, 784)); Y = jax.random.randint(k[1], (1000,), 0, 10)
def init(key):
    ks = jax.random.split(key, 6)
    ps = [(jax.random.normal(ks[0], (256, 784)) * 784 ** -0.5, jnp.zeros(256))]
    ps += [(jax.random.normal(ks[i + 1], (256, 256)) * 256 ** -0.5, jnp.zeros(256)) for i in range(4)]
    ps += [(jax.random.normal(ks[5], (10, 256)) * 256 ** -0.5, jnp.zeros(10))]
    return ps
params = init(k[2])
def loss(ps, residual):
    h = jax.nn.relu(X @ ps[0][0].T + ps[0][1])
    for w, b in ps[1:5]:
        f = jax.nn.relu(h @ w.T + b)
        h = h + f if residual else f
    z = h @ ps[5][0].T + ps[5][1]
    return jnp.mean(jax.nn.logsumexp(z, axis=1) - z[jnp.arange(1000), Y])
v = jax.tree_util.tree_map(lambda p: jax.random.normal(k[3], p.shape), params)
out = {"params": sum(p.size for wb in params for p in wb)}
for residual in (True, False):
    g = jax.grad(lambda p: loss(p, residual))
    hvp = jax.jit(lambda p, t: jax.jvp(g, (p,), (t,))[1])
    gr = jax.jit(g)
    jax.block_until_ready(hvp(params, v)); jax.block_until_ready(gr(params))
    for name, f, args in (("hvp", hvp, (params, v)), ("gradient", gr, (params,))):
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter(); jax.block_until_ready(f(*args)); ts.append(time.perf_counter() - t0)
        out[f"{'residual' if residual else 'plain'}_{name}_ms"] = 1e3 * statistics.median(ts)
print(json.dumps(out))
