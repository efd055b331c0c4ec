"""Test-side oracle: read a Spark file sink's ``_spark_metadata`` log directly.

The product reads its tables only through Spark. The exactly-once tests check Spark's
commit log independently with this small reader (local folders only), so that a bug in
the product's reading path cannot hide a duplicate.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

TABLE_COLUMNS = ("seq", "epoch", "image_id", "label", "features", "sift", "error")
def _log_batches(metadata: Path) -> dict[int, Path]:
    """Batch id -> log file (``N`` or ``N.compact``) in a ``_spark_metadata`` folder."""
    found: dict[int, Path] = {}
    if not metadata.is_dir():
        return found
    for entry in metadata.iterdir():
        match = re.fullmatch(r"(\d+)(\.compact)?", entry.name)
        if match:
            found[int(match.group(1))] = entry
    return found


def _log_entries(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("v"):
        raise ValueError(f"{path} is not a Spark file sink log (no version line)")
    return [json.loads(line) for line in lines[1:] if line.strip()]


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"table file {uri} is not on the local filesystem")
    return Path(unquote(parsed.path))


def committed_files(table: str | Path, upto_batch: int | None = None) -> list[Path]:
    """Parquet files the file sink committed (its ``_spark_metadata`` log), in order.

    Parameters
    ----------
    table : path
        The table folder.
    upto_batch : int, optional
        Only files committed by micro-batches ``<= upto_batch``.

    Returns
    -------
    list of Path
        Empty when nothing was committed yet.
    """
    batches = _log_batches(Path(table) / "_spark_metadata")
    if upto_batch is not None:
        batches = {b: p for b, p in batches.items() if b <= upto_batch}
    if not batches:
        return []
    # A compact file holds every entry up to its batch; later plain files add to it.
    compacts = [b for b, p in batches.items() if p.name.endswith(".compact")]
    first = max(compacts) if compacts else min(batches)
    files: dict[str, None] = {}
    for batch_id in sorted(b for b in batches if b >= first):
        for entry in _log_entries(batches[batch_id]):
            if entry.get("action", "add") == "delete":
                files.pop(entry["path"], None)
            elif not entry.get("isDir"):
                files[entry["path"]] = None
    return [_local_path(uri) for uri in files]


def committed_batch_ids(table: str | Path) -> list[int]:
    """Micro-batch ids the file sink has committed, ascending."""
    return sorted(_log_batches(Path(table) / "_spark_metadata"))


def files_of_batch(table: str | Path, batch_id: int) -> list[Path]:
    """Files that micro-batch ``batch_id`` added to the table."""
    before = set(committed_files(table, batch_id - 1)) if batch_id > 0 else set()
    return [f for f in committed_files(table, batch_id) if f not in before]


def read_table(table: str | Path, files: list[Path] | None = None, columns=None):
    """The committed rows of the features table as a pandas DataFrame.

    Parameters
    ----------
    table : path
        The table folder.
    files : list of Path, optional
        Read only these (e.g. :func:`files_of_batch`); default all committed files.
    columns : sequence of str, optional
        Columns to read (default all).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = committed_files(table) if files is None else files
    if not files:
        import pandas as pd

        return pd.DataFrame({name: [] for name in (columns or TABLE_COLUMNS)})
    tables = [pq.read_table(f, columns=columns) for f in files]
    return pa.concat_tables(tables).to_pandas()

