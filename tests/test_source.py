"""consumer.stream.source and .reader without Spark: options, offset planning, reading ranges, bad batches."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxFiles, ReadMaxRows

from consumer.stream.client import ProducerError, StreamMismatch
from consumer.features import FeatureConfig
from consumer.stream.options import OptionError, SourceOptions, featured_options
from consumer.stream.reader import SCHEMA, BadBatch, BatchRange, arrow_schema, read_range
from consumer.stream.source import ChestCTDataSource, ChestCTStreamReader, batches_allowed, plan_ranges
from fake_producer import FakeProducer, FakeStream


# ------------------------------------------------------------------ options


def test_options_default_and_parse_strings_case_insensitively():
    opts = SourceOptions.parse({"PORT": "6001", "maxbatchespertrigger": "3", "onBadBatch": "Skip",
                                "readTimeout": "2.5", "endingSeq": "9"})
    assert opts.connect.port == 6001 and opts.connect.host == "127.0.0.1"
    assert opts.max_batches_per_trigger == 3 and opts.on_bad_batch == "skip"
    assert opts.connect.read_timeout == 2.5 and opts.ending_seq == 9
    assert SourceOptions.parse({}).on_bad_batch == "fail"


@pytest.mark.parametrize("options, name", [
    ({"port": "http"}, "port"),
    ({"port": "99999"}, "port"),
    ({"maxBatchesPerTrigger": "0"}, "maxBatchesPerTrigger"),
    ({"numPartitions": "0"}, "numPartitions"),
    ({"onBadBatch": "ignore"}, "onBadBatch"),
    ({"connectTimeout": "nan"}, "connectTimeout"),
    ({"readTimeout": "-1"}, "readTimeout"),
    ({"maxFrameBytes": "12"}, "maxFrameBytes"),
    ({"startingSeq": "5", "endingSeq": "2"}, "endingSeq"),
    ({"maxBatchPerTrigger": "2"}, "maxBatchPerTrigger"),
    ({"host": "  "}, "host"),
    ({"features": "{not json"}, "features"),
    ({"features": '{"hog.orientation": 9}'}, "features"),
    ({"featureBackend": "gpu"}, "featureBackend"),
    ({"featureThreads": "0"}, "featureThreads"),
])
def test_bad_options_fail_naming_the_option(options, name):
    with pytest.raises(OptionError, match=name):
        SourceOptions.parse(options)


def test_feature_options_round_trip_and_switch_the_schema():
    config = FeatureConfig(features=("lbp",), lbp_P=(8,), lbp_R=(1.0,))
    parsed = SourceOptions.parse(featured_options(config, "skimage", 3))
    assert (parsed.features, parsed.feature_backend, parsed.feature_threads) == (config, "skimage", 3)
    assert SourceOptions.parse({}).features is None
    assert ChestCTDataSource({}).schema() == SCHEMA
    featured = ChestCTDataSource(featured_options(config)).schema()
    assert "pixels" not in featured and featured.endswith("features array<float>, sift binary")


def test_data_source_parses_options_when_created():
    with pytest.raises(OptionError, match="onBadBatch"):
        ChestCTDataSource({"onBadBatch": "maybe"})
    assert ChestCTDataSource({"port": "7000"}).parsed.connect.port == 7000


def test_plan_ranges_cover_the_seqs_once():
    assert plan_ranges(3, 10, 3) == [(3, 6), (6, 8), (8, 10)]
    assert plan_ranges(0, 2, 4) == [(0, 1), (1, 2)]
    assert plan_ranges(4, 4, 2) == []
    for parts in range(1, 6):
        ranges = plan_ranges(5, 17, parts)
        assert [s for a, b in ranges for s in range(a, b)] == list(range(5, 17))


def test_read_limits_translate_to_batches():
    assert batches_allowed(ReadAllAvailable(), 32, 8) is None
    assert batches_allowed(ReadMaxRows(100), 32, 8) == 3
    assert batches_allowed(ReadMaxRows(5), 32, 8) == 1  # a batch is never split
    assert batches_allowed(ReadMaxFiles(2), 32, 8) == 2


# ------------------------------------------------------------------ offsets (driver side)


def test_offsets_advance_by_the_limit_and_stop_at_the_end():
    stream = FakeStream(total_images=22, batch_size=4)  # 6 batches
    with FakeProducer(stream=stream) as fp:
        reader = ChestCTStreamReader(SourceOptions.parse({"port": str(fp.port), "numPartitions": "4",
                                                          "maxBatchesPerTrigger": "4"}))
        start = reader.initialOffset()
        assert start == {"stream_id": stream.stream_id, "seq": 0}
        limit = reader.getDefaultReadLimit()
        assert limit == ReadMaxRows(16)
        first = reader.latestOffset(start, limit)
        assert first["seq"] == 4
        second = reader.latestOffset(first, limit)
        assert second["seq"] == 6
        assert reader.latestOffset(second, limit) == second  # nothing left
        assert reader.latestOffset(start, ReadAllAvailable())["seq"] == 6
        assert reader.reportLatestOffset()["seq"] == 6
        parts = reader.partitions(start, first)
        assert [(p.from_seq, p.to_seq) for p in parts] == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_endless_stream_needs_an_ending_for_available_now():
    stream = FakeStream(total_images=8, batch_size=4, endless=True)
    with FakeProducer(stream=stream) as fp:
        reader = ChestCTStreamReader(SourceOptions.parse({"port": str(fp.port),
                                                          "maxBatchesPerTrigger": "3"}))
        start = reader.initialOffset()
        assert reader.latestOffset(start, ReadAllAvailable())["seq"] == 3
        with pytest.raises(ValueError, match="endingSeq"):
            reader.prepareForTriggerAvailableNow()
        bounded = ChestCTStreamReader(SourceOptions.parse({"port": str(fp.port), "endingSeq": "5"}))
        bounded.prepareForTriggerAvailableNow()
        assert bounded.latestOffset(start, ReadAllAvailable())["seq"] == 5


def test_a_checkpoint_of_another_stream_is_refused():
    with FakeProducer() as fp:
        reader = ChestCTStreamReader(SourceOptions.parse({"port": str(fp.port)}))
        with pytest.raises(StreamMismatch, match="other-stream"):
            reader.latestOffset({"stream_id": "other-stream", "seq": 2}, ReadAllAvailable())


# ------------------------------------------------------------------ reading (executor side)


def _read(fp: FakeProducer, start: int, stop: int, **options) -> list[pa.RecordBatch]:
    opts = SourceOptions.parse({"port": str(fp.port), "readTimeout": "5", "connectTimeout": "5",
                                **{k: str(v) for k, v in options.items()}})
    part = BatchRange(fp.stream.stream_id, start, stop, fp.stream.classes, fp.stream.image_shape)
    return list(read_range(opts, part))


def _images(rb: pa.RecordBatch) -> np.ndarray:
    return np.frombuffer(b"".join(rb.column("pixels").to_pylist()), np.uint8)


def test_read_range_returns_the_producers_images_exactly():
    with FakeProducer() as fp:
        batches = _read(fp, 2, 5)
    assert [rb.schema for rb in batches] == [arrow_schema()] * 3
    for seq, rb in zip(range(2, 5), batches):
        ids, labels, pixels = fp.stream.images_of(seq)
        assert rb.column("seq").to_pylist() == [seq] * len(ids)
        assert rb.column("image_id").to_pylist() == ids
        assert rb.column("label").to_pylist() == labels
        assert rb.column("label_name").to_pylist() == [fp.stream.classes[i] for i in labels]
        assert np.array_equal(_images(rb), pixels.reshape(-1))
        assert rb.column("error").null_count == len(ids)
    assert fp.subscriptions == [(2, 5)]


def test_reading_again_gives_identical_rows():
    with FakeProducer() as fp:
        first = _read(fp, 0, 6)
        again = _read(fp, 0, 6)
    assert [rb.equals(other) for rb, other in zip(first, again)] == [True] * 6


@pytest.mark.parametrize("fault, words", [
    ("crc", "crc32"), ("shape", "shape"), ("bad_frame", "unreadable frame"),
    ("cut", "connection lost"),
])
def test_a_bad_batch_fails_naming_it(fault, words):
    with FakeProducer(faults={3: (fault, None)}) as fp:
        with pytest.raises(BadBatch, match=rf"batch 3 is bad .*{words}.*onBadBatch=skip"):
            _read(fp, 1, 6, maxRetries=1)


@pytest.mark.parametrize("fault", ["crc", "shape", "bad_frame", "cut"])
def test_a_bad_batch_is_skipped_as_one_marker_row(fault):
    with FakeProducer(faults={3: (fault, None)}) as fp:
        batches = _read(fp, 1, 6, onBadBatch="skip", maxRetries=1)
    seqs = [rb.column("seq")[0].as_py() for rb in batches]
    assert seqs == [1, 2, 3, 4, 5]
    marker = batches[2]
    assert marker.num_rows == 1
    assert marker.column("image_id").to_pylist() == [None]
    assert marker.column("pixels").to_pylist() == [None]
    assert marker.column("error")[0].as_py()
    good = [rb for rb in batches if rb.column("error").null_count == rb.num_rows]
    assert sum(rb.num_rows for rb in good) == sum(len(fp.stream.images_of(s)[0]) for s in (1, 2, 4, 5))
    assert np.array_equal(_images(batches[3]), fp.stream.images_of(4)[2].reshape(-1))


@pytest.mark.parametrize("fault", ["cut", "shutdown"])
def test_a_lost_connection_is_resumed_from_the_same_batch(fault):
    """A cut connection and a graceful producer stop (its ``shutdown`` error) alike."""
    with FakeProducer(faults={2: (fault, 1)}) as fp:
        batches = _read(fp, 0, 4)
    assert [rb.column("seq")[0].as_py() for rb in batches] == [0, 1, 2, 3]
    assert fp.subscriptions == [(0, 4), (2, 4)]
    assert all(rb.column("error").null_count == rb.num_rows for rb in batches)
    assert np.array_equal(_images(batches[2]), fp.stream.images_of(2)[2].reshape(-1))


def test_a_changed_stream_id_on_replay_fails_whatever_the_policy():
    with FakeProducer(stream_id_after=0) as fp:
        with pytest.raises(StreamMismatch, match=r"batches 0\.\.3.*fake-stream-0001-other"):
            _read(fp, 0, 4, onBadBatch="skip")


def test_a_producer_error_message_fails_with_its_reason():
    with FakeProducer(faults={1: ("error", None)}) as fp:
        with pytest.raises(ProducerError, match="batch 1.*cannot make batch 1"):
            _read(fp, 0, 3, onBadBatch="skip")


def test_an_early_end_is_not_a_silent_short_read():
    stream = FakeStream(total_images=8, batch_size=4)  # 2 batches, the range asks for 4
    with FakeProducer(stream=stream) as fp:
        with pytest.raises(StreamMismatch, match="ended the stream before batch 2"):
            _read(fp, 0, 4)


def test_a_partition_waits_for_a_producer_that_is_restarting(port):
    import threading

    fp = FakeProducer(port=port)
    starter = threading.Timer(1.5, fp.start)
    starter.start()
    try:
        opts = SourceOptions.parse({"port": str(port), "connectTimeout": "20"})
        part = BatchRange(fp.stream.stream_id, 0, 2, fp.stream.classes, fp.stream.image_shape)
        batches = list(read_range(opts, part))
    finally:
        starter.join()
        fp.stop()
    assert [rb.column("seq")[0].as_py() for rb in batches] == [0, 1]


def test_each_read_freezes_what_the_worker_holds_so_pyspark_s_per_task_gc_skips_it():
    # In a fresh interpreter: freezing is per process, and the test process must not freeze.
    code = """
import gc, sys
sys.path.insert(0, sys.argv[1])
from fake_producer import FakeProducer
from consumer.stream.options import SourceOptions
from consumer.stream.reader import BatchRange
from consumer.stream.source import ChestCTStreamReader
assert gc.get_freeze_count() == 0
with FakeProducer() as fp:
    reader = ChestCTStreamReader(SourceOptions.parse({"port": str(fp.port)}))
    part = BatchRange(fp.stream.stream_id, 0, 2, fp.stream.classes, fp.stream.image_shape)
    first = list(reader.read(part))
    frozen = gc.get_freeze_count()
    held = [[i] for i in range(10000)]  # what a first task leaves, e.g. the modules it imported
    again = list(reader.read(part))
assert frozen > 10000, frozen
assert gc.get_freeze_count() >= frozen + 10000, (gc.get_freeze_count(), frozen)  # the next task froze them
assert [b.equals(a) for a, b in zip(first, again)] == [True, True]
print("ok", frozen)
"""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-2000:]

