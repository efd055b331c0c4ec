"""consumer.stage without Spark: Arrow batches of source rows -> features and SIFT columns."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from consumer import features
from consumer.features import sift_bow
from consumer.features import FeatureConfig
from consumer.stream.reader import batch_to_arrow, marker_batch
from consumer.features.stage import image_stack, output_schema, transform_batch
from fake_producer import FakeStream

CHEAP = FeatureConfig(features=("hog", "lbp"), hog_pixels_per_cell=(8,), hog_cells_per_block=2,
                      lbp_P=(8,), lbp_R=(1.0,), lbp_grid=1)


def _source_batch(stream: FakeStream, seq: int) -> tuple[pa.RecordBatch, np.ndarray]:
    msg = stream.batch(seq)
    _, _, pixels = stream.images_of(seq)
    return batch_to_arrow(msg, pixels, stream.classes), pixels


def test_image_stack_recovers_the_pixels():
    stream = FakeStream(image_shape=(16, 12, 3))
    rb, pixels = _source_batch(stream, 1)
    rows, images = image_stack(rb)
    assert rows.tolist() == list(range(len(pixels)))
    assert np.array_equal(images, pixels)


def test_image_stack_skips_marker_rows_and_handles_sliced_batches():
    stream = FakeStream(image_shape=(16, 16, 1))
    rb, pixels = _source_batch(stream, 0)
    mixed = pa.Table.from_batches([marker_batch(7, None, "crc"), rb]).combine_chunks().to_batches()[0]
    rows, images = image_stack(mixed)
    assert rows.tolist() == list(range(1, 1 + len(pixels)))
    assert np.array_equal(images, pixels)
    sliced = rb.slice(1, 2)
    rows, images = image_stack(sliced)
    assert np.array_equal(images, pixels[1:3])


def test_mixed_shapes_in_one_batch_are_refused():
    a, _ = _source_batch(FakeStream(image_shape=(16, 16, 1)), 0)
    b, _ = _source_batch(FakeStream(image_shape=(16, 8, 1)), 0)
    both = pa.Table.from_batches([a, b]).combine_chunks().to_batches()[0]
    with pytest.raises(ValueError, match="one shape"):
        image_stack(both)


def test_transform_matches_extract_and_keeps_row_order():
    stream = FakeStream(image_shape=(32, 32, 1), batch_size=5)
    rb, pixels = _source_batch(stream, 2)
    out = transform_batch(rb, CHEAP, backend="skimage", n_threads=1)
    assert "pixels" not in out.schema.names
    assert out.column("image_id").to_pylist() == rb.column("image_id").to_pylist()
    got = np.array(out.column("features").to_pylist(), np.float32)
    expected = features.extract(pixels, CHEAP, backend="skimage")
    assert got.shape == expected.shape and got.shape[1] > 0
    np.testing.assert_array_equal(got, expected)
    assert out.column("sift").null_count == out.num_rows  # SIFT off


def test_sift_column_holds_float32_descriptors():
    config = FeatureConfig(features=("hog", "sift"), hog_pixels_per_cell=(8,), hog_cells_per_block=2,
                           sift_max_keypoints=20)
    stream = FakeStream(image_shape=(64, 64, 3), batch_size=3)
    rb, pixels = _source_batch(stream, 0)
    out = transform_batch(rb, config, backend="skimage", n_threads=1)
    grey = features.to_grey(pixels)
    for blob, img in zip(out.column("sift").to_pylist(), grey):
        assert blob is not None
        np.testing.assert_array_equal(sift_bow.from_bytes(blob), sift_bow.descriptors(img, config))


def test_marker_rows_get_null_features():
    stream = FakeStream(image_shape=(32, 32, 1))
    rb, _ = _source_batch(stream, 0)
    mixed = pa.Table.from_batches([rb, marker_batch(1, 0, "crc mismatch")]).combine_chunks().to_batches()[0]
    out = transform_batch(mixed, CHEAP, backend="skimage", n_threads=1)
    feats = out.column("features").to_pylist()
    assert all(f is not None for f in feats[:-1]) and feats[-1] is None
    assert out.column("error").to_pylist()[-1] == "crc mismatch"


def test_only_marker_rows_pass_through():
    out = transform_batch(marker_batch(4, None, "cut"), CHEAP, backend="skimage", n_threads=1)
    assert out.num_rows == 1 and out.column("features").to_pylist() == [None]


def test_output_schema_adds_features_and_sift():
    from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType

    schema = output_schema(StructType([
        StructField("seq", LongType()), StructField("image_id", StringType()),
        StructField("height", IntegerType()), StructField("width", IntegerType()),
        StructField("channels", IntegerType()), StructField("pixels", BinaryType())]))
    assert schema.fieldNames() == ["seq", "image_id", "height", "width", "channels", "features", "sift"]


# ------------------------------------------------------------------ parallelism plan

from consumer.spark import master_cores, plan_parallelism, session_conf  # noqa: E402


@pytest.mark.parametrize("master, cores", [("local", 1), ("local[3]", 3), ("local[*]", 8),
                                           ("local[2, 4]", 2), ("spark://127.0.0.1:7077", None)])
def test_master_cores(master, cores):
    assert master_cores(master, machine_cores=8) == cores


@pytest.mark.parametrize("master, threads, machine, slots, n_threads", [
    ("local[*]", None, 2, 2, 1),
    ("local[*]", 2, 2, 1, 2),
    ("local[2]", 8, 2, 1, 2),      # clamped to the cores
    ("local[4]", 3, 8, 1, 3),
    ("local[8]", 3, 8, 2, 3),
    ("spark://h:7077", 2, 4, 2, 2),
])
def test_slots_times_threads_never_exceed_the_cores(master, threads, machine, slots, n_threads):
    plan = plan_parallelism(master, threads, machine_cores=machine)
    assert (plan.slots, plan.n_threads) == (slots, n_threads)
    assert plan.slots * plan.n_threads <= plan.cores


def test_session_conf_makes_spark_enforce_the_plan():
    plan = plan_parallelism("local[2]", 2, machine_cores=2)
    conf = session_conf("local[2]", plan)
    assert conf["spark.task.cpus"] == "2" and conf["spark.ui.enabled"] == "false"
    cluster = session_conf("spark://127.0.0.1:7077", plan_parallelism("spark://x:1", 1, executor_cores=2))
    assert cluster["spark.executor.cores"] == "2" and cluster["spark.cores.max"] == "2"
    with pytest.raises(ValueError, match="threads per task"):
        plan_parallelism("local[2]", 0)


def test_chestct_s_jvms_run_the_client_jit_and_serial_gc_unless_the_user_says_otherwise():
    from consumer.spark import JVM_OPTIONS, driver_java_options

    assert JVM_OPTIONS.split() == ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    # The driver: ours first, then chestct's own, then the user's, whose flags win.
    merged = driver_java_options("-Dlog4j2.configurationFile=x", "-XX:+UseG1GC").split()
    assert merged == [*JVM_OPTIONS.split(), "-Dlog4j2.configurationFile=x", "-XX:+UseG1GC"]
    assert driver_java_options("-Dx=1").split() == [*JVM_OPTIONS.split(), "-Dx=1"]
    # A cluster's executors get them too; a local master has no executor JVM of its own.
    plan = plan_parallelism("spark://x:1", 1, executor_cores=2)
    assert session_conf("spark://127.0.0.1:7077", plan)["spark.executor.extraJavaOptions"] == JVM_OPTIONS
    assert "spark.executor.extraJavaOptions" not in session_conf("local[2]", plan_parallelism("local[2]", 1))
    user = session_conf("spark://127.0.0.1:7077", plan, extra={"spark.executor.extraJavaOptions": "-XX:+UseG1GC"})
    assert user["spark.executor.extraJavaOptions"] == "-XX:+UseG1GC"


@pytest.mark.spark
def test_the_driver_jvm_runs_with_chestct_s_options(spark):
    arguments = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                     .getInputArguments())
    from consumer.spark import JVM_OPTIONS

    assert set(JVM_OPTIONS.split()) <= set(arguments), arguments
    assert spark.conf.get("spark.driver.extraJavaOptions").startswith(JVM_OPTIONS)


def test_a_grey_stream_executor_does_not_load_opencv():
    # An executor process imports what the stage uses; OpenCV (tens of MiB per worker)
    # only for colour images or SIFT.
    import subprocess
    import sys
    code = ("import sys, numpy as np\n"
            "from consumer.features import FeatureConfig\n"
            "from consumer.features.stage import compute_features\n"
            "images = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 1), dtype=np.uint8)\n"
            "config = FeatureConfig(features=('hog', 'lbp', 'glcm'), hog_pixels_per_cell=(8,), lbp_grid=1, glcm_grid=1)\n"
            "values, _ = compute_features(images, config, 'rust', 1)\n"
            "assert values.shape[0] == 2 and np.isfinite(values).all()\n"
            "print('cv2' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
