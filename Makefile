# chestct: `make demo` runs the pipeline end to end, `make test` runs the whole suite.
# Both start from nothing: they create .venv, build featrs (release) and install everything.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chestct-installed
# Real data: DATA=path or CHESTCT_DATA=path; the demo falls back to a synthetic set.
DATA   ?= $(CHESTCT_DATA)
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: setup demo test bench featrs clean help

help:
	@echo "make demo    # train on the train split, predict on test, print the report (DATA=... for real data)"
	@echo "make test    # the whole test suite"
	@echo "make bench   # benchmarks with a table of medians and ratios"
	@echo "make setup   # only create $(VENV) and install (featrs built in release mode)"

setup: $(STAMP)

$(STAMP): pyproject.toml featrs/Cargo.toml $(shell find featrs/src -name '*.rs')
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -c "import featrs, producer, consumer; print('featrs', featrs.__version__, 'ready')"
	touch $@

# Rebuild only the Rust extension in place (development loop).
featrs: $(STAMP)
	$(VENV)/bin/maturin develop --release --quiet 2>/dev/null || $(PY) -m pip install --quiet -e '.[dev]'

demo: setup
	PYSPARK_PYTHON=$(abspath $(PY)) $(PY) scripts/demo.py $(if $(DATA),--data "$(DATA)")

test: setup
	PYSPARK_PYTHON=$(abspath $(PY)) $(PY) -m pytest tests

bench: setup
	PYSPARK_PYTHON=$(abspath $(PY)) $(PY) scripts/bench.py

clean:
	rm -rf $(VENV) featrs/target featrs/*.so .pytest_cache .benchmarks demo-out
