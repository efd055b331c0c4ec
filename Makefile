# chestct: `make demo` runs the pipeline end to end, `make test` runs the whole suite.
# Both start from nothing: they create .venv, build featrs (release) and install everything.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.chestct-installed
# Real data: DATA=path or CHESTCT_DATA=path; the demo falls back to a synthetic set.
DATA   ?= $(CHESTCT_DATA)
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: setup demo test test-durations bench bench-check fuzz featrs clean help

# The suite mostly waits (JVM start-up, streams): more workers than cores pays off.
TEST_WORKERS ?= 4
FUZZ_SECONDS ?= 20
WIRE_FUZZ_EXAMPLES ?= 20000

help:
	@echo "make demo    # train on the train split, predict on test, print the report (DATA=... for real data)"
	@echo "make test    # the whole test suite"
	@echo "make test-durations  # the suite, storing each test's seconds (tests/durations.json orders make test)"
	@echo "make bench   # benchmarks with a table of medians and ratios"
	@echo "make bench-check  # every benchmark once, on less data (what CI runs)"
	@echo "make fuzz    # featrs: cargo test + cargo fuzz per kernel; the wire decoder and readers"
	@echo "make setup   # only create $(VENV) and install (featrs built in release mode)"

setup: $(STAMP)

$(STAMP): pyproject.toml featrs/Cargo.toml $(shell find featrs/src -name '*.rs')
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -c "import featrs, producer, consumer; print('featrs', featrs.__version__, 'ready')"
	# Spark's classes for the driver JVM, mapped instead of parsed at each start (consumer/jvm_classes.py).
	PYSPARK_PYTHON=$(abspath $(PY)) $(PY) -m consumer.jvm_classes || true
	touch $@

# Rebuild only the Rust extension in place (development loop).
featrs: $(STAMP)
	$(VENV)/bin/maturin develop --release --quiet 2>/dev/null || $(PY) -m pip install --quiet -e '.[dev]'

demo: setup
	PYSPARK_PYTHON=$(abspath $(PY)) $(PY) scripts/demo.py $(if $(DATA),--data "$(DATA)")

test: setup
	PYSPARK_PYTHON=$(abspath $(PY)) $(PY) -m pytest tests -n $(TEST_WORKERS) --dist worksteal --durations=15

# The suite's order spreads the long tests over the workers from their stored durations.
test-durations: setup
	PYSPARK_PYTHON=$(abspath $(PY)) $(PY) -m pytest tests -n $(TEST_WORKERS) --dist worksteal -q --store-durations

bench: setup
	PYSPARK_PYTHON=$(abspath $(PY)) $(PY) scripts/bench.py

bench-check: setup
	CHESTCT_BENCH_QUICK=1 PYSPARK_PYTHON=$(abspath $(PY)) $(PY) -m pytest benches -q -p no:cacheprovider \
	    -o testpaths=benches -o python_files='bench_*.py' --benchmark-disable --durations=10

fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/featrs-checks.sh
	./scripts/fuzz-wire.sh $(WIRE_FUZZ_EXAMPLES) 600

clean:
	rm -rf $(VENV) featrs/target featrs/*.so .pytest_cache .benchmarks demo-out
