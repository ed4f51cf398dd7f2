#!/usr/bin/env bash
# The GPU verification behind docs/gpu.md and docs/performance.md, as one script for a GPU box:
# CPU record vs GPU replay of the article experiment and of a small transformer run, then the
# 466,698-parameter HVP bench on GPU and CPU, and PyTorch's double backward beside it.
#
#   scripts/gpu_check.sh BINARY OUTDIR [PEER_PY]
#
# BINARY is a `cargo build --release --features cuda` binary; PEER_PY is ../shared/bench/peer.py.
# A binary built elsewhere (scripts/build_cuda_from_wheels.sh) needs dfdx's kernel headers at
# the path it was built with: set KERNEL_HEADERS to the kernel-headers folder that script made.
# Every step runs even if one before it failed; the exit status is the number that failed.
set -u
BIN=${1:?usage: gpu_check.sh BINARY OUTDIR [PEER_PY]}
OUT=${2:?usage: gpu_check.sh BINARY OUTDIR [PEER_PY]}
PEER=${3:-../shared/bench/peer.py}
mkdir -p "$OUT/rec"
failed=0
step() { echo; echo "### $*"; local t0=$SECONDS; "$@"; local rc=$?; echo "### rc=$rc in $((SECONDS - t0)) s"; [ $rc -eq 0 ] || failed=$((failed + 1)); }

nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
echo "cpus: $(nproc)"
# cuBLAS, cuRAND and NVRTC: the system's, else the toolkit's, else the CUDA 13 wheels beside
# PyTorch
if ! ldconfig -p | grep -q 'libcublas.so.13'; then
  # each folder found goes in front, so the last one listed wins
  for d in $(python3 -c 'import nvidia, os; print(*[os.path.join(p, "cu13", "lib") for p in nvidia.__path__])' 2>/dev/null) \
           /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib64; do
    [ -e "$d/libcublas.so.13" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
fi
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
ldd "$BIN" | grep -E 'libcuda|cublas|curand|nvrtc'
# dfdx compiles a few kernels at run time with NVRTC, including cuda_fp16.h from the include
# folder the binary was built against (/usr/local/cuda/include)
ls -la /usr/local/cuda/include/cuda_fp16.h /usr/local/cuda/include/nv/target 2>&1
if [ -n "${KERNEL_HEADERS:-}" ]; then
  mkdir -p "$(cat "$KERNEL_HEADERS/PATH")" && cp "$KERNEL_HEADERS"/*.cuh "$(cat "$KERNEL_HEADERS/PATH")/"
fi

# 1. the article experiment (682 parameters, dense Hessian): CPU record, GPU replay
# the record a run wrote: the path after `record: ` in its output
record_of() { sed -n 's/^record: //p' "$1" | tail -1; }
step "$BIN" run experiments/article.toml --device cpu --out "$OUT/rec" --quiet > "$OUT/run.txt"
cat "$OUT/run.txt"
art=$(record_of "$OUT/run.txt")
step "$BIN" replay "$art" --device cuda --quiet --tolerance 1e-6
step "$BIN" replay "$art" --device auto --quiet --tolerance 1e-6

# 2. a small transformer (movie reviews, tokens; Lanczos + SLQ + Hutchinson): CPU vs GPU
sed -e 's/^name = .*/name = "gpu-transformer"/' -e 's/^epochs = .*/epochs = 1/' \
    -e 's/^samples = .*/samples = 64/' -e 's/^lanczos_steps = .*/lanczos_steps = 12/' \
    -e 's/^slq_runs = .*/slq_runs = 1/' -e 's/^slq_steps = .*/slq_steps = 10/' \
    -e 's/^hutchinson_samples = .*/hutchinson_samples = 8/' \
    experiments/reviews-transformer.toml > "$OUT/gpu-transformer.toml"
step timeout 200 "$BIN" run "$OUT/gpu-transformer.toml" --device cpu --out "$OUT/rec" --quiet > "$OUT/run.txt"
cat "$OUT/run.txt"
tr=$(record_of "$OUT/run.txt")
step timeout 200 "$BIN" replay "$tr" --device cuda --quiet --tolerance 1e-6
for r in "$OUT"/rec/*.toml; do grep -H -A3 '^\[timings\]' "$r"; grep -H '^device' "$r"; done

# 3. the HVP bench, GPU then CPU, and PyTorch on both
step "$BIN" bench --device cuda --reps 20 --lanczos-reps 3 --json
step timeout 150 "$BIN" bench --device cpu --reps 5 --lanczos-reps 1 --json
step env PYTHONUNBUFFERED=1 python3 benches/peer_hvp.py --peer "$PEER" --device cuda --json
step env PYTHONUNBUFFERED=1 python3 benches/peer_hvp.py --peer "$PEER" --threads "$(nproc)" --json
echo "failed steps: $failed"
exit $failed
