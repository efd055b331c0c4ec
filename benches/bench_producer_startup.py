"""Producer start-up: listing and hashing (SHA-256) every file of a split (``StreamSpec.from_directory``).

The producer reads every file once at start-up to put its content digest into the stream
id; this is what that costs on the real data (warm page cache after the first round).
Needs ``CHESTCT_DATA``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from producer.stream import StreamSpec


@pytest.mark.parametrize("split", ["train", "test"])
def test_list_and_hash_a_split(benchmark, split):
    env = os.environ.get("CHESTCT_DATA")
    if not env or not (Path(env) / "train").is_dir():
        pytest.skip("set CHESTCT_DATA to the chest-ctscan folder to run the start-up benchmark")
    benchmark.group = f"producer start-up: {split} split"
    benchmark.extra_info["impl"] = "producer"
    spec = benchmark.pedantic(StreamSpec.from_directory, args=(env, split), kwargs={"batch_size": 8},
                              rounds=5, iterations=1)
    benchmark.extra_info["files"] = len(spec.files)
    benchmark.extra_info["mib"] = sum(f.size for f in spec.files) / 2**20
    assert all(f.digest for f in spec.files)
