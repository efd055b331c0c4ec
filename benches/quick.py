"""Quick mode for CI: ``CHESTCT_BENCH_QUICK=1`` runs every benchmark once on less data, so a
broken benchmark fails CI without CI paying for a full measurement (`make bench-check`)."""
import os

QUICK = os.environ.get("CHESTCT_BENCH_QUICK", "") not in ("", "0")
#: The split the streaming benchmarks read: all of train, or the 72-image valid split.
STREAM_SPLIT = "valid" if QUICK else "train"
