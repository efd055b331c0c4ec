#!/usr/bin/env bash
# featrs' Rust checks: the crate's unit tests, then every cargo-fuzz target for a bounded
# time. Exits non-zero on any failure; prints the runs and wall time of each target.
#
#   FUZZ_SECONDS=20 scripts/featrs-checks.sh    # seconds per fuzz target (default 20)
#
# cargo-fuzz wants a nightly compiler; on stable, RUSTC_BOOTSTRAP=1 lets rustc accept the
# -Z flags it passes (sanitizer coverage and AddressSanitizer). cargo-fuzz is installed
# from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/../featrs"
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
case "$FUZZ_SECONDS" in ''|*[!0-9]*) echo "FUZZ_SECONDS must be a whole number, got '$FUZZ_SECONDS'" >&2; exit 2;; esac

echo "== cargo test (kernels, no Python)"
cargo test --release --no-default-features --quiet

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

export RUSTC_BOOTSTRAP=1
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
targets=$(cargo fuzz list)
echo "== building fuzz targets: $(echo $targets)"
cargo fuzz build --release --debug-assertions >/dev/null
status=0
summary=()
for target in $targets; do
    echo "== fuzz $target for ${FUZZ_SECONDS}s"
    start=$(date +%s%N)
    if cargo fuzz run --release --debug-assertions "$target" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
        tail -40 "$logs/$target.log" >&2
    fi
    wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    runs=$(grep -oE 'Done [0-9]+ runs' "$logs/$target.log" | grep -oE '[0-9]+' | tail -1 || true)
    [ -n "$runs" ] || runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$logs/$target.log" | grep -oE '[0-9]+$' | tail -1 || echo "?")
    summary+=("$(printf '%-6s %-6s runs=%-10s wall=%d.%01ds' "$target" "$result" "$runs" $((wall_ms / 1000)) $((wall_ms % 1000 / 100)))")
done
echo "== summary (FUZZ_SECONDS=$FUZZ_SECONDS)"
printf '%s\n' "${summary[@]}"
exit $status
