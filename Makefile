# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv from requirements.txt the first time.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= out
# The release is built next to this checkout, never inside it (the build refuses that).
RELEASE ?= $(abspath $(CURDIR)/..)/$(notdir $(CURDIR))-release

.PHONY: venv lint check test demo bench bench-all release autograde gradescope clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10 or newer is needed (3.10 to 3.14 are tested); install it and run make again"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip uninstall --quiet --yes rfc3987-syntax
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

# jsonschema (through jupyter-events) imports rfc3987-syntax above only to check the "iri" string
# format, which nothing here uses; `import nbformat` compiles its 39 grammars, about 3 CPU-seconds
# in every process that imports nbformat: each student's nbgrader run when grading. The venv goes
# without it (grading.gradescope's setup.sh too; tests/test_requirements.py checks both).

# Test and lint tools (requirements-dev.txt), on top of the venv; not part of the student release.
$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

lint: venv $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .

# Two pytest workers on 2 cores: each test process, and all it starts, computes on one thread.
# With BLAS's and torch's default threads per process, the workers' threads spin against each
# other: make test took 22 min (33 CPU-min) that way, 15 min (19 CPU-min) on one thread each.
# Tests that need threads ask for them (batch_chunks.set_threads, threadpoolctl).
TESTENV := env OMP_NUM_THREADS=1

# The fast inner loop: lint, then every test but notebook execution, nbgrader and end-to-end grading runs.
check: lint
	$(TESTENV) $(PY) -m pytest -m "not slow" -n 2

# The whole suite on 2 workers, one test file per worker at a time, the longest first
# (tests/xdist_order.py); each session artefact (tests/session.py) is made once for both.
test: lint
	$(TESTENV) $(PY) -m pytest -p tests.xdist_order -n 2 --dist loadfile

# Benchmarks only: unset the OpenBLAS overrides for this command alone (never in tests).
BENCH := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY)

# make bench: the layer table and a fifth of a training epoch (under 3 minutes on 2 cores).
bench: venv
	$(BENCH) -m bench.layers
	$(BENCH) -m bench.train_epoch --fraction 0.2

bench-all: bench
	$(BENCH) -m bench.train_epoch
	$(BENCH) -m bench.notebooks --out $(OUT)/notebooks
	$(BENCH) -m bench.grading --n 100 --jobs 2
	$(BENCH) -m bench.grading --notebooks --hostile 0 --n 20 --jobs 2

release: venv
	$(PY) -m grading release $(RELEASE) --force

# Grade a folder of submissions: make autograde SUBMISSIONS=path/to/folder
SUBMISSIONS ?= $(OUT)/examples
autograde: venv
	$(PY) -m grading autograde $(SUBMISSIONS) --out $(OUT)/grades --jobs 2

gradescope: venv
	$(PY) -m grading gradescope $(OUT)/gradescope_autograder.zip

# The whole story, offline, on the embedded data.
demo: venv
	@echo; echo "== 1/5  Train the ThreeLayerConvNet on the embedded data (no network)"
	$(PY) -m cs_layers.train --data auto --epochs 2
	@echo; echo "== 2/5  Layer benchmark: naive vs fast (numpy) vs torch"
	$(BENCH) -m bench.layers --quick
	@echo; echo "== 3/5  Execute both notebooks with the reference solutions; HTML in $(OUT)/notebooks/"
	$(PY) -m bench.notebooks --out $(OUT)/notebooks
	@echo; echo "== 4/5  Build the student release in $(RELEASE)/ (stubs, release notebooks, leak check)"
	$(PY) -m grading release $(RELEASE) --force
	@echo; echo "== 5/5  Autograde example submissions (hidden tests, sandboxed); feedback in $(OUT)/grades/"
	rm -rf $(OUT)/examples $(OUT)/grades
	$(PY) -m grading.examples $(OUT)/examples
	$(PY) -m grading autograde $(OUT)/examples --out $(OUT)/grades --jobs 2

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
