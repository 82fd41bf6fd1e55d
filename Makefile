# Quick start: `make demo` runs vipgate on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint prerequisites clean screenshots

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/vipgate demo

prerequisites:
	scripts/prerequisites

# ruff, mypy (its settings: pyproject.toml), then the layer contracts ([tool.importlinter]).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two workers (pytest-xdist): the machine's two cores; every test has its own databases.
test: prerequisites $(VENV)/.installed lint
	$(BIN)/python -m pytest -n 2

# The browser tests again, writing their screenshots into docs/screenshots/ (the README's).
screenshots: prerequisites $(VENV)/.installed
	VIPGATE_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -m browser -p no:randomly

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
