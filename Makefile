# Two commands for a newcomer:  `make run` (the main job) and `make test` (the test suite).
# Both create .venv and install what they need; nothing is downloaded at run time.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint venv core full clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Core: the simulator and optimizer (no PyTorch).
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Full: adds PyTorch (CPU build 2.13.0 unless CUDA torch is already present), transformers, dev tools.
$(VENV)/.full: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[executor,dev]"
	touch $@

core: $(VENV)/.core
full: $(VENV)/.full

run: $(VENV)/.core
	$(BIN)/python -m ssdsim.optimize $(ARGS)

test: $(VENV)/.full
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.full
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV)
