# One command sets up and runs the demo; one runs the tests. Both create .venv first.
# torch is pinned to 2.13.0 so pip takes the local CPU build instead of downloading CUDA.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# Tests and benchmarks read datasets from the verified local copy when it exists.
DATA_DIR ?= $(abspath ../shared/data)
export VAEKIT_DATA_DIR ?= $(if $(wildcard $(DATA_DIR)),$(DATA_DIR),)

.PHONY: install demo serve browser test test-all lint bench bench-anomaly docs docs-serve clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet $(TORCH) -e ".[dev,chem,serve,onnx,compress,track,hub,docs]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/vaekit train digits --epochs 100 --latent-dim 8 --out runs/demo --overwrite

# the explorer page of `make demo`'s run: http://127.0.0.1:8000
serve: install
	$(BIN)/vaekit serve runs

# headless chromium for the browser tests (Debian packages, as root); without it they are skipped
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) || \
	  echo "note: installing chromium failed: the browser tests (-m browser) will be skipped"; \
	else echo "note: chromium is missing and apt-get as root is not available: the browser tests (-m browser) will be skipped"; fi

# the layer contract and the documentation site first (seconds): an upward import, a cycle or
# a broken link in the docs fails the tests; the docs' code examples run among the tests; one
# pytest worker per core, each test file on one worker (tests run with one torch thread each)
PYTEST = $(BIN)/python -m pytest -q -n auto --dist loadfile

test: install browser
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(PYTEST) -m "not slow"

test-all: install browser
	$(PYTEST)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/peers.py --epochs 3
	$(BIN)/python benchmarks/sample_quality.py --seeds 0 1 2
	$(BIN)/python benchmarks/cvae_classes.py --temperatures 1.0 0.8

# the anomaly detector against PyOD's VAE, IsolationForest, PCA, 1-NN and center (about 1.5 hours, 1 thread)
bench-anomaly: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/anomaly.py --threads 1

# the documentation site (mkdocs-material + mkdocstrings) into site/, offline; --strict fails on any broken link
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# the same site at http://127.0.0.1:8001, rebuilt on every change
docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

clean:
	rm -rf $(VENV) runs build site *.egg-info
