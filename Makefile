# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0

.PHONY: demo test lab notebooks bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned: pip takes the local CPU wheel for it; the package keeps torch as a range.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mtl-tutor demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# Execute every notebook in cpu mode and store it with its outputs, printing each one's time:
# `make notebooks DATA=DIR ONLY=03,04` (default: the data `mtl-tutor data download` fetched).
notebooks: $(STAMP)
	$(BIN)/python -m mtl_tutor.notebook_run $(if $(DATA),--data $(DATA)) $(if $(ONLY),--only $(ONLY))

lint: $(STAMP)
	$(BIN)/ruff check mtl_tutor tests bench notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
