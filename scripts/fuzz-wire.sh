#!/bin/sh
# A bounded fuzzing run of the wire decoder and both frame readers (tests/test_fuzz_wire.py).
#   scripts/fuzz-wire.sh [EXAMPLES_PER_PROPERTY] [MAX_SECONDS]
# Defaults: 20000 examples per property, each property stopped after 900 s (pytest-timeout).
# Prints the input count and the wall time.
set -eu
cd "$(dirname "$0")/.."
EXAMPLES="${1:-20000}"
SECONDS_MAX="${2:-900}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
start=$(date +%s)
CHESTCT_FUZZ_EXAMPLES="$EXAMPLES" "$PY" -m pytest -q -s -p no:cacheprovider \
    -o addopts="" --timeout="$SECONDS_MAX" tests/test_fuzz_wire.py
echo "fuzz-wire: wall time $(( $(date +%s) - start )) s (limit ${SECONDS_MAX} s, ${EXAMPLES} examples per property)"
