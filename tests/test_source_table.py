"""Tables without Spark: the test-side sink log oracle, table paths, skipped rows, progress lines."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer.features import FeatureConfig
from consumer.stream import storage
from consumer.stream.follow import batch_progress
from consumer.stream.table import skipped_batches, skipped_files, stream_paths, training_frame
from sink_log import committed_batch_ids, committed_files, files_of_batch, read_table


def _write_part(table_dir, name: str, seqs: list[int]) -> str:
    path = table_dir / name
    pq.write_table(pa.table({
        "seq": pa.array(seqs, pa.int64()), "epoch": pa.array([0] * len(seqs), pa.int64()),
        "image_id": pa.array([f"img{s}" for s in seqs]), "label": pa.array([s % 4 for s in seqs], pa.int32()),
        "features": pa.array([[float(s)] for s in seqs], pa.list_(pa.float32())),
        "sift": pa.nulls(len(seqs), pa.binary()), "error": pa.nulls(len(seqs), pa.string()),
    }), path)
    return path.as_uri()


def _log(table_dir, name: str, uris: list[str], action: str = "add") -> None:
    meta = table_dir / "_spark_metadata"
    meta.mkdir(exist_ok=True)
    lines = ["v1"] + [json.dumps({"path": u, "size": 1, "isDir": False, "modificationTime": 0,
                                  "blockReplication": 1, "blockSize": 1, "action": action}) for u in uris]
    (meta / name).write_text("\n".join(lines) + "\n")


def test_only_logged_files_count_and_compaction_is_followed(tmp_path):
    a = _write_part(tmp_path, "part-a.parquet", [0, 1])
    b = _write_part(tmp_path, "part-b.parquet", [2, 3])
    c = _write_part(tmp_path, "part-c.parquet", [4])
    _write_part(tmp_path, "part-stray.parquet", [2, 3])  # a killed run's leftover, never logged
    _log(tmp_path, "0", [a])
    _log(tmp_path, "1.compact", [a, b])  # a compaction batch's log repeats every earlier entry
    _log(tmp_path, "2", [c])
    (tmp_path / "_spark_metadata" / ".2.abc.tmp").write_text("partial")
    assert committed_batch_ids(tmp_path) == [0, 1, 2]
    assert [p.name for p in committed_files(tmp_path)] == ["part-a.parquet", "part-b.parquet",
                                                           "part-c.parquet"]
    assert [p.name for p in files_of_batch(tmp_path, 2)] == ["part-c.parquet"]
    assert [p.name for p in files_of_batch(tmp_path, 1)] == ["part-b.parquet"]
    table = read_table(tmp_path)
    assert sorted(table["seq"]) == [0, 1, 2, 3, 4]


def test_empty_or_missing_log_means_an_empty_table(tmp_path):
    assert committed_files(tmp_path) == []
    assert len(read_table(tmp_path)) == 0


def test_a_foreign_log_is_refused(tmp_path):
    meta = tmp_path / "_spark_metadata"
    meta.mkdir()
    (meta / "0").write_text("{not a log}\n")
    with pytest.raises(ValueError, match="not a Spark file sink log"):
        committed_files(tmp_path)


def test_training_frame_drops_marker_rows_and_orders_rows(tmp_path):
    import pandas as pd

    table = pd.DataFrame({"seq": [1, 0, 2], "epoch": 0, "image_id": ["b", "a", None],
                          "label": [1, 0, None], "features": [[1.0], [0.0], None],
                          "sift": [None, None, None], "error": [None, None, "crc"]})
    frame = training_frame(table)
    assert frame["image_id"].tolist() == ["a", "b"]
    assert list(frame.columns) == ["image_id", "label", "seq", "features", "sift"]


def test_table_paths_separate_streams_and_feature_stages(tmp_path):
    hello = {"split": "train", "stream_id": "abc123" * 8}
    hog = FeatureConfig(features=("hog",))
    first = stream_paths(tmp_path, hello, hog, "rust")
    assert first == stream_paths(tmp_path, hello, hog, "rust")
    assert first != stream_paths(tmp_path, hello, hog, "skimage")
    assert first != stream_paths(tmp_path, hello, FeatureConfig(features=("hog",), hog_orientations=12), "rust")
    assert first != stream_paths(tmp_path, {**hello, "stream_id": "other"}, hog, "rust")
    assert first.table.rsplit("/", 1)[0] == first.checkpoint.rsplit("/", 1)[0] == first.root
    assert first.root.startswith(str(tmp_path.resolve()))
    uri = stream_paths("hdfs://namenode:8020/chestct", hello, hog, "rust")
    assert uri.table.startswith("hdfs://namenode:8020/chestct/streams/train-") and uri.table.endswith("/table")


def test_storage_locations_keep_uris_and_make_local_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.qualify("work") == str(tmp_path.resolve() / "work")
    assert storage.qualify("file:///shared/work/") == "file:///shared/work"
    assert storage.qualify("s3a://bucket/work") == "s3a://bucket/work"
    assert storage.local_path("file:///shared/work") == storage.local_path("/shared/work")
    assert storage.local_path("hdfs://nn/work") is None
    assert storage.join("hdfs://nn/work/", "streams", "/t/") == "hdfs://nn/work/streams/t"
    with pytest.raises(ValueError, match="must not be empty"):
        storage.qualify("  ")


def test_skipped_rows_name_files_and_batches():
    import pandas as pd

    table = pd.DataFrame({"seq": [0, 0, 1, 2], "epoch": 0, "image_id": ["a.png", "bad.png", "b.png", None],
                          "label": [0, None, 1, None], "features": [[1.0], None, [2.0], None],
                          "sift": None, "error": [None, "skipped by the producer: not an image", None, "crc32"]})
    assert skipped_files(table) == [{"id": "bad.png", "seq": 0, "reason": "not an image"}]
    assert skipped_batches(table) == [{"seq": 2, "reason": "crc32"}]
    assert training_frame(table)["image_id"].tolist() == ["a.png", "b.png"]


def test_progress_line_names_the_producer_batches():
    progress = {"batchId": 3, "numInputRows": 64, "durationMs": {"triggerExecution": 2000},
                "sources": [{"startOffset": json.dumps({"stream_id": "s", "seq": 4}),
                             "endOffset": {"stream_id": "s", "seq": 6}}]}
    item = batch_progress(progress)
    assert (item.start_seq, item.end_seq, item.rows, item.rows_per_s) == (4, 6, 64, 32.0)
    assert item.line() == "micro-batch 3: producer batches 4..5, 64 rows in 2.0s (32.0 rows/s)"


def test_progress_is_read_one_report_at_a_time_unless_there_is_a_gap():
    from consumer.stream.follow import new_reports

    def report(batch_id: int) -> dict:
        return {"batchId": batch_id, "sources": [{"startOffset": None, "endOffset": None}]}

    class Query:
        def __init__(self, ids):
            self.reports = [report(i) for i in ids]
            self.full_reads = 0

        @property
        def lastProgress(self):
            return self.reports[-1] if self.reports else None

        @property
        def recentProgress(self):
            self.full_reads += 1
            return list(self.reports)

    assert new_reports(Query([]), set()) == []
    first = Query([0, 1, 2])                      # the first poll: everything retained
    assert [r["batchId"] for r in new_reports(first, set())] == [0, 1, 2] and first.full_reads == 1
    assert new_reports(first, {0, 1, 2}) == [] and first.full_reads == 1  # nothing new
    nxt = Query([0, 1, 2, 3])                     # the next micro-batch alone
    assert [r["batchId"] for r in new_reports(nxt, {0, 1, 2})] == [3] and nxt.full_reads == 0
    gap = Query([0, 1, 2, 3, 4])                  # two since the last poll: all again
    assert [r["batchId"] for r in new_reports(gap, {0, 1, 2})] == [0, 1, 2, 3, 4] and gap.full_reads == 1


class _Conf:
    """The part of ``spark.conf`` a one-run checkpoint touches."""

    def __init__(self, **values):
        self.values = dict(values)
        self.seen_while_open = None

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value):
        self.values[key] = value

    def unset(self, key):
        self.values.pop(key, None)


def test_a_one_run_checkpoint_uses_the_file_system_manager_only_while_its_query_starts():
    spark = type("Spark", (), {"conf": _Conf()})()
    with storage.one_run_checkpoint(spark):
        assert spark.conf.get(storage.CHECKPOINT_FILE_MANAGER_KEY) == storage.ONE_RUN_CHECKPOINT_FILE_MANAGER
    assert spark.conf.get(storage.CHECKPOINT_FILE_MANAGER_KEY) is None  # the session's other queries: Spark's default
    with pytest.raises(RuntimeError), storage.one_run_checkpoint(spark):
        raise RuntimeError("start failed")
    assert spark.conf.get(storage.CHECKPOINT_FILE_MANAGER_KEY) is None


def test_a_one_run_checkpoint_keeps_the_users_manager():
    spark = type("Spark", (), {"conf": _Conf(**{storage.CHECKPOINT_FILE_MANAGER_KEY: "my.Manager"})})()
    with storage.one_run_checkpoint(spark):
        assert spark.conf.get(storage.CHECKPOINT_FILE_MANAGER_KEY) == "my.Manager"
    assert spark.conf.get(storage.CHECKPOINT_FILE_MANAGER_KEY) == "my.Manager"


def test_a_query_started_with_a_one_run_checkpoint_keeps_its_manager(spark, tmp_path):
    """The manager is read when the query starts: unsetting it afterwards changes nothing for
    that query (its offset and commit logs), and the session's next query gets Spark's default."""
    def logs_manager(query):
        execution = query._jsq.streamingQuery()
        return {execution.offsetLog().fileManager().getClass().getSimpleName(),
                execution.commitLog().fileManager().getClass().getSimpleName()}

    def start(name):
        return (spark.readStream.format("rate").option("rowsPerSecond", 5).load().writeStream
                .foreachBatch(lambda df, batch_id: None).option("checkpointLocation", str(tmp_path / name)).start())

    with storage.one_run_checkpoint(spark):
        query = start("one-run")
    other = start("resumable")
    try:
        assert logs_manager(query) == {storage.ONE_RUN_CHECKPOINT_FILE_MANAGER.rsplit(".", 1)[1]}
        assert logs_manager(other) == {"FileContextBasedCheckpointFileManager"}
    finally:
        query.stop()
        other.stop()
