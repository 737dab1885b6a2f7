#!/usr/bin/env bash
# The rate-distortion ladders behind the README's compression table: one codec per rung,
# trained on each dataset's training split (cached under runs/compression-bench), then
# measured against JPEG, WebP and AVIF on the whole test set. About 3 CPU-hours on one core
# the first time; minutes once the codecs are cached. Extra arguments go to every run
# (e.g. --threads 2, --runs DIR).
#
#   VAEKIT_DATA_DIR=../shared/data bash benchmarks/compression_ladders.sh --threads 2 > rd.jsonl
#   DATASETS="frey-faces olivetti-faces" bash benchmarks/compression_ladders.sh   # some of them
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
dense() { for l in "$@"; do echo "--rung=lmbda=$l dense=true latent_channels=128 lr=0.003"; done; }
want() { [[ " ${DATASETS:-mnist fashion-mnist frey-faces olivetti-faces} " == *" $1 "* ]]; }
run() { "$PY" benchmarks/compression.py --codecs jpeg,webp,avif --skip-lossless --test-limit 0 "$@"; }
mapfile -t D < <(dense 0.03 0.003 0.0003 0.00003)
want mnist && run --datasets mnist --epochs 24 "${D[@]}" --plot docs/images/rd_mnist.png "$@"
want fashion-mnist && run --datasets fashion-mnist --epochs 24 "${D[@]}" --rung "lmbda=0.003 lr=0.001 epochs=16" \
    --rung "lmbda=0.0003 lr=0.001 epochs=16" --plot docs/images/rd_fashion-mnist.png "$@"
want frey-faces && run --datasets frey-faces --epochs 24 --min-steps 10000 "${D[@]}" --rung "lmbda=0.001 lr=0.003" \
    --plot docs/images/rd_frey-faces.png "$@"
# 324 training faces at 64x64: dense latents collapse to the mean face at lr 3e-3, so 1e-3 here
want olivetti-faces && run --datasets olivetti-faces --epochs 24 --min-steps 2000 --rung "lmbda=0.003 dense=true latent_channels=128 lr=0.001" \
    --rung "lmbda=0.01 lr=0.001" --rung "lmbda=0.001 lr=0.001" --plot docs/images/rd_olivetti-faces.png "$@"
exit 0  # a dataset left out by DATASETS is not a failure
