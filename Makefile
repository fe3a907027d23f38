# Two entry points: `make export` (set up if needed, then convert the embedded default model)
# and `make test`. The virtual environment is created on first use; the stamp file makes the
# second run skip the install unless pyproject.toml or constraints.txt changed.
PYTHON ?= python3
VENV ?= .venv
EXTRA ?= cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(EXTRA)
PYTEST_ARGS ?=

.PHONY: setup export test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRA),test]"
	touch $@

export: $(STAMP)
	$(PY) -m pipeline export

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache
