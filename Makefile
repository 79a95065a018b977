# geop2p — set-up, tests and the demo.
#   make test   create .venv (once), install geop2p + dev extras under constraints.txt, check the import
#               layering (lint-imports, contracts in pyproject.toml), run pytest (tests/ and the doctests of geop2p/)
#   make demo   same set-up, then run the embedded end-to-end demo
# A second run with nothing changed does not reinstall: the stamp file below
# is rebuilt only when pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.geop2p-installed
PYTEST_ARGS ?=
DEMO_OUT ?= demo-output

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/geop2p demo --out $(DEMO_OUT) --overwrite

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache build *.egg-info
