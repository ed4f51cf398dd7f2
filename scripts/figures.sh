#!/usr/bin/env bash
# Regenerates the README's figures, docs/figures/*.svg, from bundled experiments:
#
#   scripts/figures.sh [OUT_DIR]        # default docs/figures; a few minutes on two cores
#
# Runs, into a temporary folder (removed at the end):
#   experiments/breast-cancer.toml      dense spectrum (log counts), training curves
#   experiments/article-remedies.toml   x 5 seeds: sensitivity (3 methods, ± sd), prediction
#   experiments/reviews-mlp.toml        20,482 parameters: Lanczos extremes and SLQ density
#   experiments/depth-sweep-small.toml  a sweep (depth x data source, 3 seeds): Var(λ) and S
#                                       against depth (depth-sweep.toml takes far longer)
# and plots each record, and the sweep, with `resprune-tui plot`. Two kernel threads, so the
# numbers are the same on every machine with the same build (the sweep runs its points one
# at a time on one thread each, the same numbers on any core count).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/figures}"
cargo build --quiet
bin=target/debug/resprune-tui
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# run CONFIG NAME [FLAGS...]: the record as $tmp/NAME.toml (the name the figures' titles show)
run() {
    local config="$1" name="$2"
    shift 2
    mkdir -p "$tmp/$name"
    "$bin" run "$config" --out "$tmp/$name" --threads 2 --quiet "$@" >/dev/null
    mv "$tmp/$name"/*.toml "$tmp/$name.toml"
}
run experiments/breast-cancer.toml breast-cancer
run experiments/article-remedies.toml article-remedies --replicates 5
run experiments/reviews-mlp.toml reviews-mlp
"$bin" sweep experiments/depth-sweep-small.toml --out "$tmp/depth-sweep-small" --jobs 2 \
    --quiet >/dev/null

plot() {
    local name="$1" kind="$2" file="$3"
    shift 3
    "$bin" plot "$tmp/$name.toml" --kind "$kind" --out "$out/$file" "$@"
}
plot breast-cancer spectrum spectrum-dense.svg --log
plot reviews-mlp spectrum spectrum-slq.svg --log
plot article-remedies sensitivity sensitivity.svg
plot article-remedies prediction prediction.svg
plot breast-cancer training training.svg
"$bin" plot "$tmp/depth-sweep-small" --kind sweep --out "$out/sweep-depth.svg"
