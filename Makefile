# Two commands do everything on a fresh machine:
#   make run    set up, then `dvc repro` the default study
#   make test   set up, then run the whole test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.lrsched-installed
export MLFLOW_DISABLE_TELEMETRY ?= true
export DVC_NO_ANALYTICS ?= 1

.PHONY: setup system-packages run test bench

setup: $(STAMP) system-packages

# Re-installs only when pyproject.toml changes; a second `make` skips this in a second.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[dev]'
	touch $@

system-packages:
	@bash scripts/system-packages.sh

run: setup
	source $(VENV)/bin/activate && dvc repro

test: setup
	source $(VENV)/bin/activate && python -m pytest -n auto --maxschedchunk 1 --durations=10

bench: setup
	source $(VENV)/bin/activate && python benchmarks/throughput.py
