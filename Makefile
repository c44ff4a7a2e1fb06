PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint bench sample clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,mcp]'
	touch $(STAMP)

demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	bash examples/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

sample: $(STAMP)
	$(BIN)/python examples/sample_store.py .kitaru-sample

clean:
	rm -rf $(VENV) build dist *.egg-info demo-project
