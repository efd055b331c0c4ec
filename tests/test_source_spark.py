"""The chestct source inside Spark: streaming queries against the fake producer.

One local[2] SparkSession for the module. Covers: rows equal the producer's images,
the feature stage in executors, the checkpointed Parquet table (restart = no duplicates),
bad batches failing the query by name or skipped as marker rows, and a producer whose
stream id changed being refused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyspark.errors import StreamingQueryException

from consumer.features import FeatureConfig
from consumer.features.stage import add_features
from consumer.stream.follow import follow_query
from consumer.stream.ingest import start_ingest
from consumer.stream.options import featured_options
from consumer.stream.table import read_table, stream_paths, training_frame
from fake_producer import FakeProducer, FakeStream

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CHEAP = FeatureConfig(features=("hog",), hog_pixels_per_cell=(8,), hog_cells_per_block=2)
STREAM = FakeStream(total_images=22, batch_size=4, image_shape=(16, 16, 1))  # 6 batches


def _collect(spark, port: int, name: str, **options):
    opts = {"port": str(port), "readTimeout": "10", "connectTimeout": "10", **options}
    df = spark.readStream.format("chestct").options(**opts).load()
    query = (df.writeStream.format("memory").queryName(name).trigger(availableNow=True).start())
    try:
        query.awaitTermination(180)
    except StreamingQueryException:
        pass  # the tests look at query.exception()
    assert not query.isActive, "the query did not stop by itself"
    return query


def test_stream_rows_are_the_producers_images(spark):
    with FakeProducer(stream=STREAM) as fp:
        query = _collect(spark, fp.port, "rows_exact", maxBatchesPerTrigger="2")
        assert query.exception() is None
        rows = spark.sql("select * from rows_exact order by seq, image_id").collect()
    assert len(query.recentProgress) == 3  # 6 batches, 2 per trigger, then the query stopped
    assert not query.isActive
    assert len(rows) == STREAM.total_images
    for seq in range(STREAM.batches_per_epoch):
        ids, labels, pixels = STREAM.images_of(seq)
        mine = sorted((r for r in rows if r.seq == seq), key=lambda r: ids.index(r.image_id))
        assert [r.image_id for r in mine] == ids
        assert [r.label for r in mine] == labels
        assert [r.label_name for r in mine] == [STREAM.classes[i] for i in labels]
        got = np.stack([np.frombuffer(r.pixels, np.uint8).reshape(r.height, r.width, r.channels)
                        for r in mine])
        assert np.array_equal(got, pixels)


def test_the_reader_running_the_feature_stage_gives_the_stage_s_rows(spark):
    """Option ``features``: the same rows as the source followed by ``add_features``, no pixels."""
    config = FeatureConfig(features=("hog", "lbp"), hog_pixels_per_cell=(8,), hog_cells_per_block=2,
                           lbp_P=(8,), lbp_R=(1.0,), lbp_grid=2)
    with FakeProducer(stream=STREAM, faults={3: ("crc", None)}) as fp:
        fused = _collect(spark, fp.port, "fused", onBadBatch="skip",
                         **featured_options(config, "rust", 1))
        assert fused.exception() is None
        staged = add_features(spark.readStream.format("chestct").options(
            port=str(fp.port), readTimeout="10", connectTimeout="10", onBadBatch="skip").load(), config)
        query = staged.writeStream.format("memory").queryName("staged").trigger(availableNow=True).start()
        query.awaitTermination(180)
        assert query.exception() is None
    order = "order by seq, image_id"
    got = spark.sql(f"select * from fused {order}").toPandas()
    want = spark.sql(f"select * from staged {order}").toPandas()
    assert "pixels" not in got.columns and list(got.columns) == list(want.columns)
    assert len(got) == len(want) == STREAM.total_images - len(STREAM.images_of(3)[0]) + 1  # + marker row
    assert got["error"].notna().sum() == 1 and got.loc[got["error"].notna(), "features"].isna().all()
    for mine, theirs in zip(got["features"], want["features"]):
        if theirs is None:
            assert mine is None
        else:
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_bad_option_fails_at_load_naming_it(spark):
    with pytest.raises(Exception, match="maxBatchesPerTrigger"):
        spark.readStream.format("chestct").option("maxBatchesPerTrigger", "many").load()


def test_bad_batch_fails_the_query_naming_the_batch(spark):
    with FakeProducer(stream=STREAM, faults={4: ("crc", None)}) as fp:
        query = _collect(spark, fp.port, "crc_fail")
    error = query.exception()
    assert error is not None
    assert "batch 4 is bad" in str(error) and "crc32" in str(error)


def test_bad_batches_skipped_and_counted_as_marker_rows(spark):
    faults = {1: ("bad_frame", None), 3: ("shape", None)}
    with FakeProducer(stream=STREAM, faults=faults) as fp:
        query = _collect(spark, fp.port, "skipped", onBadBatch="skip")
        assert query.exception() is None
        markers = spark.sql("select seq, error from skipped where image_id is null order by seq").collect()
        images = spark.sql("select count(*) n from skipped where image_id is not null").first().n
    assert [m.seq for m in markers] == [1, 3]
    assert "unreadable frame" in markers[0].error and "shape" in markers[1].error
    assert images == STREAM.total_images - 2 * STREAM.batch_size


def test_producer_serving_another_stream_is_refused_mid_query(spark):
    # The driver's first connection sees the original id; the executors' see another.
    with FakeProducer(stream=STREAM, stream_id_after=1) as fp:
        query = _collect(spark, fp.port, "changed", onBadBatch="skip")
    error = query.exception()
    assert error is not None and "fake-stream-0001-other" in str(error)
    assert "refusing to read" in str(error)


def test_ingest_table_is_exactly_once_across_restarts(spark, tmp_path):
    with FakeProducer(stream=STREAM) as fp:
        hello = fp.stream.hello()
        paths = stream_paths(tmp_path, hello, CHEAP, "skimage")
        options = {"port": str(fp.port), "maxBatchesPerTrigger": "2", "endingSeq": "4"}
        # First run stops after batch 3; the second one resumes from the checkpoint.
        for run_options in (options, {**options, "endingSeq": "6"}, options | {"endingSeq": "6"}):
            query = start_ingest(spark, source_options=run_options, config=CHEAP, backend="skimage",
                                 n_threads=1, paths=paths, finite=True)
            follow_query(query, total_batches=6, progress_bar=False)
        table = read_table(spark, paths.table)
        frame = training_frame(table)
        read = sorted(seq for start, stop in fp.subscriptions for seq in range(start, stop))
        assert read == [0, 1, 2, 3, 4, 5]  # each batch read once
    assert len(list(Path(paths.table).glob("part-*.parquet"))) >= 3  # one file per task at least
    assert sorted(frame["image_id"]) == sorted(
        i for seq in range(6) for i in STREAM.images_of(seq)[0])
    assert frame["image_id"].is_unique
    spark_count = spark.read.parquet(str(paths.table)).count()
    assert spark_count == len(table) == STREAM.total_images
    first = frame[frame["seq"] == 0].sort_values("image_id")
    from consumer import features

    expected = features.extract(STREAM.images_of(0)[2], CHEAP, backend="skimage")
    order = np.argsort(STREAM.images_of(0)[0])
    np.testing.assert_array_equal(np.stack(first["features"].to_numpy()), expected[order])


def test_the_driver_jvm_maps_the_class_archive_when_make_setup_wrote_one(spark):
    from consumer import jvm_classes

    path = jvm_classes.archive_path()
    if path is None or not path.is_file():
        pytest.skip("no JVM class archive here (make setup writes one)")
    bean = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert f"-XX:SharedArchiveFile={path}" in list(bean.getInputArguments())


def test_a_table_not_written_yet_reads_as_no_rows_without_a_spark_task(spark, tmp_path):
    from consumer.stream.table import TABLE_COLUMNS, table_frame

    frame = table_frame(spark, str(tmp_path / "not-yet"))
    # No partitions, so no task: `train` reads it before its stream starts, and a task
    # would start a Python worker daemon just to convert nothing.
    assert frame.rdd.getNumPartitions() == 0
    rows = read_table(spark, str(tmp_path / "not-yet"))
    assert list(rows.columns) == list(TABLE_COLUMNS) and rows.empty
