# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: run func-check run-app test lint bench clean

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) requirements.txt requirements-dev.txt pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# checkov scans infra/ in tests/test_checkov.py; its pins clash with pytest's, so it has a venv of its own.
$(CHECKOV_STAMP): requirements-checkov.txt | $(PY)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint $(NPM_STAMP) $(CHECKOV_STAMP)
	$(PY) -m pytest

# `make bench` runs them all and writes bench/results/latest.json; `make bench BENCH="slack_ack drain"` runs some.
bench: $(STAMP) $(NPM_STAMP)
	$(PY) -m bench $(BENCH)

local.settings.json:
	cp local.settings.example.json $@
	@echo "created local.settings.json from local.settings.example.json; edit it for your Slack app and clusters"

# `run` checks for `func` first and only then builds .venv and node_modules (a minute) and starts;
# the recursive make keeps that order under `make -j` too.
run: func-check
	@$(MAKE) --no-print-directory run-app

func-check:
	@command -v func >/dev/null || { echo "Azure Functions Core Tools v4 is missing: install it with 'npm install -g azure-functions-core-tools@4 --unsafe-perm true' (https://learn.microsoft.com/azure/azure-functions/functions-run-local), then run 'make run' again." >&2; exit 1; }

run-app: $(STAMP) $(NPM_STAMP) local.settings.json
	@mkdir -p .azurite
	node_modules/.bin/azurite --silent --disableTelemetry --skipApiVersionCheck --location .azurite \
	  --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 & \
	  trap "kill $$! 2>/dev/null" EXIT; \
	  source $(VENV)/bin/activate && func start --python

# Removes what the targets create. bench/results/latest.json is committed, so it stays; local.settings.json
# goes only while it is still the untouched copy `make run` made (once edited it may hold secrets).
clean:
	rm -rf $(VENV) node_modules .azurite __azurite_db_* __blobstorage__ __queuestorage__ \
	  .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache .grimp_cache .python_packages *.egg-info
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
	@if [ -f local.settings.json ]; then \
	  if cmp -s local.settings.json local.settings.example.json; then rm -f local.settings.json; \
	  else echo "kept local.settings.json: it differs from local.settings.example.json (delete it yourself)"; fi; \
	fi
