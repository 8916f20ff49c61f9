# Two commands do everything on a fresh machine:
#   make run    set up, then `dvc repro` the default study
#   make test   set up, then run the whole test suite (what CI runs)
#   make lock   refresh requirements.lock after a change to pyproject.toml's dependencies
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.lrsched-installed
export MLFLOW_DISABLE_TELEMETRY ?= true
export DVC_NO_ANALYTICS ?= 1

LOCK := requirements.lock
UV_VERSION := 0.13.9

.PHONY: setup system-packages run test bench lock

setup: $(STAMP) system-packages

# Every package at its locked version and hash, then lrsched itself with nothing more.
# Re-installs only when the lock or pyproject.toml changes; a second `make` skips this in a second.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --require-hashes -r $(LOCK)
	$(VENV)/bin/python -m pip install --no-deps -e '.[dev]'
	touch $@

# Refresh the lock after editing pyproject.toml's dependencies: keeps every pin it can.
# `make lock UPGRADE=1` moves everything to the newest releases that pyproject.toml allows.
lock:
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade) --quiet -o $(LOCK)

system-packages:
	@bash scripts/system-packages.sh

run: setup
	source $(VENV)/bin/activate && dvc repro

test: setup
	source $(VENV)/bin/activate && python -m pytest -n auto --maxschedchunk 1 --durations=10

bench: setup
	source $(VENV)/bin/activate && python benchmarks/throughput.py
