#!/usr/bin/env bash
# The rate-distortion ladders behind the README's compression table: one codec per rung,
# trained on each dataset's training split (cached under runs/compression-bench), then
# measured against JPEG, WebP and AVIF on the whole test set. About 3 CPU-hours on one core
# the first time; minutes once the codecs are cached. Extra arguments go to every run
# (e.g. --threads 2, --runs DIR).
#
#   VAEKIT_DATA_DIR=../shared/data bash benchmarks/compression_ladders.sh --threads 2 > rd.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
dense() { for l in "$@"; do echo "--rung=lmbda=$l dense=true latent_channels=128 lr=0.003"; done; }
run() { "$PY" benchmarks/compression.py --codecs jpeg,webp,avif --skip-lossless --test-limit 0 "$@"; }
mapfile -t D < <(dense 0.03 0.003 0.0003 0.00003)
run --datasets mnist --epochs 24 "${D[@]}" --plot docs/images/rd_mnist.png "$@"
run --datasets fashion-mnist --epochs 24 "${D[@]}" --rung "lmbda=0.003 lr=0.001 epochs=16" \
    --rung "lmbda=0.0003 lr=0.001 epochs=16" --plot docs/images/rd_fashion-mnist.png "$@"
run --datasets frey-faces --epochs 24 --min-steps 10000 "${D[@]}" --rung "lmbda=0.001 lr=0.003" \
    --plot docs/images/rd_frey-faces.png "$@"
mapfile -t D < <(dense 0.003 0.0003)
run --datasets olivetti-faces --epochs 24 --min-steps 2000 "${D[@]}" --rung "lmbda=0.001 lr=0.001" \
    --plot docs/images/rd_olivetti-faces.png "$@"
