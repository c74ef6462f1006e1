# 综合指挥平台 — two commands for a newcomer: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench venv clean-data docs

# Create the virtualenv and install the pinned dependencies when missing or outdated.
$(STAMP): pyproject.toml requirements.lock
	@if command -v uv >/dev/null 2>&1; then \
	  [ -x $(PY) ] || uv venv -q --python python3 $(VENV); \
	  uv pip install -q --python $(PY) -r requirements.lock && \
	  uv pip install -q --python $(PY) --no-deps -e . --config-settings editable_mode=compat; \
	else \
	  [ -x $(PY) ] || python3 -m venv $(VENV); \
	  $(PY) -m pip install -q --upgrade pip && \
	  $(PY) -m pip install -q -r requirements.lock && \
	  $(PY) -m pip install -q --no-deps -e . --config-settings editable_mode=compat; \
	fi
	@touch $(STAMP)

venv: $(STAMP)

## make run: the whole platform on the embedded default (PostgreSQL + Tansu + 4 services), Ctrl-C stops it.
run: $(STAMP)
	$(PY) deploy/run.py

## make test: the whole suite against real PostgreSQL and a real Kafka-protocol broker.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy shared services

docs: $(STAMP)
	$(PY) -m shared.event_docs > docs/events.md

bench: $(STAMP)
	$(PY) bench/intake.py
	$(PY) bench/positions.py
	$(PY) bench/suggestions.py

clean-data:
	rm -rf var
