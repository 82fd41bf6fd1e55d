# Quick start: `make demo` runs vipgate on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint prerequisites clean screenshots translations

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

# Four workers (pytest-xdist) on the machine's two cores: the tests wait on php, MariaDB's
# commits and servers much of the time, so two workers left a core idle; every test has its own
# databases (the wheel's tests share one build, tests/test_wheel.py).
test: prerequisites $(VENV)/.installed lint
	$(BIN)/python -m pytest -n 4

# The browser tests again, writing their screenshots into docs/screenshots/ (the README's).
screenshots: prerequisites $(VENV)/.installed
	VIPGATE_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -m browser -p no:randomly

# The gettext catalogs (bridge/translations): extract the messages of the code and templates
# into messages.pot, then add the new ones to each language's messages.po (to translate there;
# tests/test_i18n.py fails while a message has no pt_BR translation or the .pot is stale).
CATALOGS := bridge/translations
translations: $(VENV)/.installed
	$(BIN)/pybabel extract --mapping-file babel.cfg --no-location --sort-output \
		--keywords lazy_gettext --keywords lazy_ngettext:1,2 \
		--project vipgate --msgid-bugs-address "" --output-file $(CATALOGS)/messages.pot bridge
	$(BIN)/pybabel update --input-file $(CATALOGS)/messages.pot --output-dir $(CATALOGS) \
		--ignore-obsolete

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
