#!/usr/bin/env bash
# CPU seconds of a command's whole process tree (JVMs and Spark's Python workers included),
# counted by a cgroup-v1 cpuacct group. Unlike wall time it barely moves with the machine's
# load, so it shows where a slow test spends its work. Needs root and /sys/fs/cgroup/cpuacct.
#
#   scripts/cpu-seconds.sh .venv/bin/python -m pytest -q tests/test_cli_consumer.py
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
base=/sys/fs/cgroup/cpuacct
[ -w "$base" ] || { echo "$0: needs root and a writable $base (cgroup v1 cpuacct)" >&2; exit 2; }
group=$(mktemp -d "$base/chestct-cpu.XXXXXX")
trap 'rmdir "$group" 2>/dev/null || true' EXIT
start=$(date +%s.%N)
status=0
sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$group" "$@" || status=$?
end=$(date +%s.%N)
awk -v ns="$(cat "$group/cpuacct.usage")" -v s="$start" -v e="$end" -v rc="$status" \
    'BEGIN { printf "cpu-seconds: %.1f s CPU in %.1f s wall (exit %d)\n", ns / 1e9, e - s, rc }' >&2
exit "$status"
