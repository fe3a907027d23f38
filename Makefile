# Two entry points: `make export` (set up if needed, then convert the embedded default model)
# and `make test`. The virtual environment is created on first use; the stamp file makes the
# second run skip the install unless pyproject.toml or constraints.txt changed.
PYTHON ?= python3
VENV ?= .venv
EXTRA ?= cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(EXTRA)
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Where pip finds the matching torch build when PyPI's default is not it: the CUDA 12 build for
# EXTRA=gpu (see docs/docker.md); for EXTRA=cpu on a machine whose pip does not already see a CPU
# wheel, pass TORCH_INDEX=https://download.pytorch.org/whl/cpu.
ifeq ($(EXTRA),gpu)
TORCH_INDEX ?= https://download.pytorch.org/whl/cu126
endif
TORCH_INDEX ?=
PIP_INDEX_FLAGS := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

.PHONY: setup export test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_INDEX_FLAGS) -c constraints.txt -e ".[$(EXTRA),test]"
	touch $@

export: $(STAMP)
	$(PY) -m pipeline export

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache
