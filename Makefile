# Robson: `make run` starts the service on the embedded default; `make test` checks everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two stamps: `make run` installs `.` (the runtime alone), `make test` `.[dev]` (tools too).
RUNTIME := $(VENV)/.runtime-stamp
DEV     := $(VENV)/.dev-stamp
STATIC  := api/web/static
ASSETS  := $(STATIC)/.built-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install install-runtime assets run demo test lint typecheck unit bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

# The dev extra includes the runtime: it satisfies both stamps.
$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV) $(RUNTIME)

# The dashboard's assets: the pinned npm packages (npm ci, from the lock) and web/src,
# copied into the app's static folder (git-ignored) by web/copy-assets.sh, as infra/Dockerfile
# does. The app starts without them.
$(ASSETS): web/package.json web/package-lock.json web/copy-assets.sh $(wildcard web/src/*)
	@if cd web && npm ci --no-audit --no-fund --loglevel=error; then \
		cd .. && sh web/copy-assets.sh $(STATIC) && touch $(ASSETS); \
	else \
		echo "warning: dashboard assets not built (npm ci failed): / says so, the API works"; \
	fi

assets: $(ASSETS)

install: $(DEV) $(ASSETS)

install-runtime: $(RUNTIME) $(ASSETS)

run: install-runtime
	$(BIN)/robson migrate
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m infra.demo
	$(BIN)/robson serve --host $(HOST) --port $(PORT)

demo: install-runtime
	$(BIN)/robson migrate
	$(BIN)/robson demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python -m tests.bench

# The fault campaign (kills, restarts, exchange faults, bad input): minutes, not in `make test`.
soak: install
	$(BIN)/python -m tests.soak

clean:
	rm -rf $(VENV) var web/node_modules $(STATIC) .mypy_cache .ruff_cache .pytest_cache .hypothesis
