#!/usr/bin/env bash
# Regenerates the README's figures, docs/figures/*.svg, from bundled experiments:
#
#   scripts/figures.sh [OUT_DIR]        # default docs/figures; about a minute on two cores
#
# Runs, into a temporary folder (removed at the end):
#   experiments/breast-cancer.toml      dense spectrum (log counts), training curves
#   experiments/article-remedies.toml   x 5 seeds: sensitivity (3 methods, ± sd), prediction
#   experiments/reviews-mlp.toml        20,482 parameters: Lanczos extremes and SLQ density
# and plots each record with `resprune-tui plot`. Two kernel threads, so the numbers are the
# same on every machine with the same build.
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
