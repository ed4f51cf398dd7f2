#!/usr/bin/env bash
# Builds the CUDA binary on a machine WITHOUT a GPU or a CUDA toolkit, for a GPU box that has
# no Rust toolchain (how the H200 numbers in docs/gpu.md were made). Needs root (it links
# /usr/local/cuda), python3 with pip, unzip, gcc and cargo; CUDA 13 only (the CUDA 12 wheels are
# named and laid out differently).
#
#   scripts/build_cuda_from_wheels.sh [CUDA_VERSION] [COMPUTE_CAP]     # default 13.0.88, 9.0
#
# Gets NVIDIA's CUDA wheels from PyPI (nvcc, NVVM, headers, cuBLAS, cuRAND, NVRTC) into
# /tmp/cuda-wheels, links them as /usr/local/cuda (dfdx bakes that include path into the
# binary for the kernels it compiles at run time; the GPU box's toolkit has the same path),
# answers dfdx's build-time `nvidia-smi` query with COMPUTE_CAP, and links against a stub
# libcuda.so.1 made from cudarc's bindings (the real one comes with the driver on the GPU box).
# nvcc must not be newer than the GPU box's driver: its PTX must load there.
# Output: target-cuda/release/resprune-tui and target-cuda/kernel-headers/ (see docs/gpu.md).
set -euo pipefail
ver=${1:-13.0.88}
cap=${2:-9.0}
major=${ver%%.*}
w=/tmp/cuda-wheels
root=$w/x/nvidia/cu$major
mkdir -p "$w/x" /tmp/cuda-fakebin
pip_get() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$w" "$@"
}
# the compiler pieces at exactly $ver; the libraries at any release of the same major version
pip_get "nvidia-cuda-nvcc==$ver" "nvidia-nvvm==$ver" "nvidia-cuda-crt==$ver" \
  "nvidia-cuda-nvrtc==$ver" "nvidia-cuda-runtime~=$major.0" "nvidia-cuda-cccl~=$major.0" \
  "nvidia-cublas~=$major.0" "nvidia-curand~=10.4"
for f in "$w"/*.whl; do unzip -q -o "$f" -d "$w/x"; done
if [ -e /usr/local/cuda ] && [ "$(readlink -f /usr/local/cuda)" != "$(readlink -f "$root")" ]; then
  echo "/usr/local/cuda exists and is not $root; remove it or build with the real toolkit" >&2
  exit 1
fi
ln -sfn "$root" /usr/local/cuda
mkdir -p "$root/lib64/stubs"
for l in cublas cublasLt nvrtc curand cudart; do
  ln -sf "$(ls "$root"/lib/lib$l.so.* | head -1)" "$root/lib64/lib$l.so"
done
cudarc_sys() { ls ~/.cargo/registry/src/*/cudarc-0.9.*/src/driver/sys.rs 2>/dev/null | head -1 || true; }
sys=$(cudarc_sys)
if [ -z "$sys" ]; then cargo fetch --locked; sys=$(cudarc_sys); fi
[ -n "$sys" ] || { echo "cudarc 0.9's sources not found under ~/.cargo/registry" >&2; exit 1; }
grep -ohE 'pub fn cu[A-Za-z0-9_]+' "$sys" | awk '{print "void " $3 "(void){}"}' | sort -u > "$w/cuda_stub.c"
gcc -shared -fPIC -o "$root/lib64/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$w/cuda_stub.c"
printf '#!/bin/sh\necho compute_cap\necho %s\n' "$cap" > /tmp/cuda-fakebin/nvidia-smi
chmod +x /tmp/cuda-fakebin/nvidia-smi
export PATH=/tmp/cuda-fakebin:/usr/local/cuda/bin:$PATH CUDA_ROOT=/usr/local/cuda
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-cuda}
cargo build --release --locked --features cuda
# dfdx's run-time kernels #include these from its build folder (an absolute path baked in)
out=""
for d in "$CARGO_TARGET_DIR"/release/build/dfdx-*/out; do
  if [ -e "$d/cuda_utils.cuh" ]; then out=$d; break; fi
done
[ -n "$out" ] || { echo "dfdx's kernel headers not found under $CARGO_TARGET_DIR/release/build" >&2; exit 1; }
mkdir -p "$CARGO_TARGET_DIR/kernel-headers"
cp "$out"/*.cuh "$CARGO_TARGET_DIR/kernel-headers/"
echo "$(cd "$out" && pwd)" > "$CARGO_TARGET_DIR/kernel-headers/PATH"
echo "built $CARGO_TARGET_DIR/release/resprune-tui; on the GPU box copy kernel-headers/*.cuh to $(cat "$CARGO_TARGET_DIR/kernel-headers/PATH")"
