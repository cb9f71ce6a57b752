# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both bootstrap .venv with pip from pyproject.toml (re-installed when it changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint imports unit integration bench venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/grapevine demo $(ARGS)

lint: imports
	$(BIN)/ruff check bot bridges storage reach config tests bench
	$(BIN)/mypy bot bridges storage reach config

# Which part may import which: architecture.ini is the picture, and this keeps it true.
imports: $(STAMP)
	$(BIN)/lint-imports --no-cache architecture.ini

# matrix-js-sdk for the Element interop tests, pinned by the lock file (npm ci when it changes).
INTEROP := tests/interop
$(INTEROP)/node_modules/.package-lock.json: $(INTEROP)/package-lock.json
	cd $(INTEROP) && npm ci --no-audit --no-fund

# Two workers, whole files each (a file's tests share their servers and run in order):
# most integration time is spent waiting on Synapse, so two files at once shorten it.
PARALLEL ?= -n 2 --dist loadfile --durations=20

test: lint $(INTEROP)/node_modules/.package-lock.json
	sh .ci/system-packages.sh
	PYTHON=$(PYTHON) bash tests/integration/install-irc.sh
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP) $(INTEROP)/node_modules/.package-lock.json
	sh .ci/system-packages.sh
	PYTHON=$(PYTHON) bash tests/integration/install-irc.sh
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
