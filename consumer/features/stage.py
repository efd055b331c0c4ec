"""The feature stage: a DataFrame -> DataFrame step that runs in Spark executors.

Input: rows of the ``chestct`` source (``pixels`` + ``height``/``width``/``channels``).
Output: the same rows without ``pixels``, plus

* ``features`` ``array<float>`` — :func:`consumer.features.extract.extract` of the non-SIFT
  features, null on a skipped batch's marker row;
* ``sift`` ``binary`` — the image's SIFT descriptors as little-endian float32 ``(k, 128)``
  (:func:`consumer.features.sift_bow.to_bytes`), null when SIFT is off or on a marker row.

It is one ``mapInArrow``: each Arrow record batch (one producer batch or more) goes
through ``extract`` as one ``(N, H, W, C)`` stack, with ``n_threads`` featrs threads.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .config import BACKENDS, DEFAULT_BACKEND, FeatureConfig

FEATURES_FIELD = "features"
SIFT_FIELD = "sift"


def output_schema(input_schema):
    """Spark schema of the stage's output for a given input schema."""
    from pyspark.sql.types import ArrayType, BinaryType, FloatType, StructField, StructType

    fields = [f for f in input_schema.fields if f.name != "pixels"]
    fields += [StructField(FEATURES_FIELD, ArrayType(FloatType(), containsNull=True), True),
               StructField(SIFT_FIELD, BinaryType(), True)]
    return StructType(fields)


def image_stack(batch) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of a record batch's image rows as one ``(N, H, W, C)`` uint8 array.

    Returns
    -------
    (rows, images)
        ``rows``: indices of the rows that carry an image (marker rows of skipped batches
        carry none); ``images``: their pixels, in that order.

    Raises
    ------
    ValueError
        If image rows have different shapes or a pixel blob's size does not match it.
    """
    pixels = batch.column("pixels")
    present = np.asarray(pixels.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(present)
    if rows.size == 0:
        return rows, np.zeros((0, 0, 0, 1), np.uint8)
    dims = [batch.column(name).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)[rows]
            for name in ("height", "width", "channels")]
    shapes = set(zip(*(d.tolist() for d in dims)))
    if len(shapes) != 1:
        raise ValueError(f"a feature batch must hold images of one shape, got {sorted(shapes)}")
    height, width, channels = shapes.pop()
    size = height * width * channels
    first = pixels.offset
    offsets = np.frombuffer(pixels.buffers()[1], dtype=np.int32)[first: first + len(pixels) + 1]
    data = np.frombuffer(pixels.buffers()[2], dtype=np.uint8)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    if np.any(lengths != size):
        bad = int(rows[np.flatnonzero(lengths != size)[0]])
        raise ValueError(f"row {bad}: pixel blob of {int(offsets[bad + 1] - offsets[bad])} bytes "
                         f"does not match {height}x{width}x{channels}")
    if np.all(np.diff(starts) == size):
        # The usual case (the source packs a batch contiguously): one slice, one copy.
        flat = data[starts[0]: starts[0] + rows.size * size]
    else:
        flat = data[starts[:, None] + np.arange(size)]
    return rows, np.array(flat, copy=True).reshape(rows.size, height, width, channels)


def compute_features(images: np.ndarray, config, backend: str, n_threads: int) -> tuple[np.ndarray, list]:
    """Non-SIFT features and SIFT blobs of an image stack.

    Returns
    -------
    (features, sift)
        ``features`` float32 ``(N, D)`` (``D`` may be 0 with only SIFT on); ``sift`` a list
        of N bytes objects, or of None when SIFT is off.
    """
    from .extract import extract, to_grey

    n = images.shape[0]
    non_sift = [f for f in config.features if f != "sift"]
    if n == 0:
        # Only marker rows: nothing to extract (and no real image size to check).
        return np.zeros((0, 0), np.float32), []
    if non_sift:
        values = np.asarray(extract(images, config, backend=backend, n_threads=n_threads),
                            dtype=np.float32)
    else:
        values = np.zeros((n, 0), np.float32)
    if "sift" in config.features:
        from . import sift_bow

        grey = to_grey(images)
        blobs: list = [sift_bow.to_bytes(sift_bow.descriptors(img, config)) for img in grey]
    else:
        blobs = [None] * n
    return values, blobs


def transform_batch(batch, config, backend: str, n_threads: int):
    """One Arrow record batch of source rows -> the stage's output record batch."""
    import pyarrow as pa

    n = batch.num_rows
    rows, images = image_stack(batch)
    values, blobs = compute_features(images, config, backend, n_threads)
    dim = values.shape[1]
    # Lists of `dim` floats for image rows, null lists for marker rows.
    lengths = np.zeros(n, np.int32)
    lengths[rows] = dim
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    mask = np.ones(n, bool)
    mask[rows] = False
    features = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.reshape(-1)),
                                        type=pa.list_(pa.float32()), mask=pa.array(mask))
    sift_values: list[Any] = [None] * n
    for row, blob in zip(rows.tolist(), blobs):
        sift_values[row] = blob
    columns = [batch.column(i) for i, name in enumerate(batch.schema.names) if name != "pixels"]
    names = [name for name in batch.schema.names if name != "pixels"]
    return pa.RecordBatch.from_arrays(columns + [features, pa.array(sift_values, pa.binary())],
                                      names=names + [FEATURES_FIELD, SIFT_FIELD])


def add_features(df, config, *, backend: str = DEFAULT_BACKEND, n_threads: int = 1):
    """Append ``features`` and ``sift`` columns to a DataFrame of ``chestct`` rows.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Rows with ``pixels``, ``height``, ``width``, ``channels`` (streaming or not).
    config : consumer.features.FeatureConfig
        Which features and their parameters.
    backend : {"rust", "skimage"}
        Kernels used by :func:`consumer.features.extract.extract`.
    n_threads : int
        featrs threads per Spark task (see :func:`consumer.spark.plan_parallelism`).

    Returns
    -------
    pyspark.sql.DataFrame
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    missing = {"pixels", "height", "width", "channels"} - set(df.columns)
    if missing:
        raise ValueError(f"the feature stage needs columns {sorted(missing)} from the chestct source")
    config_dict = config.to_dict()

    def run(batches: Iterator) -> Iterator:
        cfg = FeatureConfig.from_dict(config_dict)
        for batch in batches:
            yield transform_batch(batch, cfg, backend, n_threads)

    return df.mapInArrow(run, output_schema(df.schema))
