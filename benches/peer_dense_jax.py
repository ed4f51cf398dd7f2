#!/usr/bin/env python3
# Copied unchanged from ../shared/bench/dense_ratio_jax.py; no paths, runs from anywhere: python3 benches/peer_dense_jax.py REPS
"""The article pair's dense Hessian + eigvalsh in JAX (f64, jit(hessian)), median of REPS, both
models together, as JSON. Usage: dense_ratio_jax.py REPS (set XLA threads via env if wanted)."""
import json, statistics, sys, time
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
reps = int(sys.argv[1])
key = jax.random.PRNGKey(0)
kx, ky, kw = jax.random.split(key, 3)
X = jax.random.normal(kx, (100, 10), dtype=jnp.float64)
Y = jax.random.randint(ky, (100,), 0, 2)
SH = [(20, 10), (20,), (20, 20), (20,), (2, 20), (2,)]
n = sum(int(jnp.prod(jnp.array(s))) for s in SH)
theta = jax.random.normal(kw, (n,), dtype=jnp.float64) * 0.3
def loss(t, residual):
    i, ps = 0, []
    for s in SH:
        k = 1
        for d in s: k *= d
        ps.append(t[i:i+k].reshape(s)); i += k
    h = jax.nn.relu(X @ ps[0].T + ps[1])
    f = jax.nn.relu(h @ ps[2].T + ps[3])
    h = h + f if residual else f
    z = h @ ps[4].T + ps[5]
    return jnp.mean(jax.nn.logsumexp(z, axis=1) - z[jnp.arange(100), Y])
out = {}
for name, fn in (("hessian", lambda r: jax.jit(jax.hessian(lambda t: loss(t, r)))),
                 ("hessian+eigvalsh", lambda r: jax.jit(lambda t: jnp.linalg.eigvalsh(jax.hessian(lambda u: loss(u, r))(t))))):
    tot = 0.0
    for residual in (True, False):
        f = fn(residual); f(theta).block_until_ready()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter(); f(theta).block_until_ready(); ts.append(time.perf_counter() - t0)
        tot += statistics.median(ts)
    out[name] = tot
print(json.dumps(out))
