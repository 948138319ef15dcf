# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv from requirements.txt the first time.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= out

.PHONY: venv test demo bench release autograde clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10 or newer is needed; install it and run make again"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

test: venv
	$(PY) -m pytest

bench: venv
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) -m bench.layers

demo: venv
	$(PY) -m cs_layers.train --data auto --epochs 2

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
