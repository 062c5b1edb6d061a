# The two commands a new user runs: `make train` (set up + main job on the demo data), `make test`.
# Re-running is fast: the venv is only (re)installed when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# This machine serves these torch builds from local disk; elsewhere pip fetches them (or set TORCH_SPEC=torch).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.facemix-installed
ARGS ?=

.PHONY: setup train test test-fast lint bench clean-outputs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

train: $(STAMP)
	$(PY) -m facemix.train $(ARGS)

# test-fast: the unit tests on up to 4 CPUs at once (pytest-xdist; WORKERS=0: in this process). `make test` runs
# in one process: its end-to-end tests start processes, DDP ranks and loader workers and time signals against
# checkpoints, and beside each other on 2 cores one took 220 s of its 240 s deadline (README, "Contributing").
WORKERS ?= $(shell $(PYTHON) -c "import os; print(max(1, min(4, len(os.sched_getaffinity(0)))))")

test: $(STAMP)
	HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1 $(PY) -m pytest $(ARGS)

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1 $(PY) -m pytest -m "not slow" -n $(WORKERS) $(ARGS)

bench: $(STAMP)
	$(PY) benchmarks/loader.py && $(PY) benchmarks/train_step.py

lint: $(STAMP)
	$(PY) -m ruff check facemix tests && $(PY) -m ruff format --check facemix tests
