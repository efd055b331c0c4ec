"""Spark's Python processes import the installed pyspark compiled, not from Spark's zip
(consumer/worker_site/sitecustomize.py), and only when the zip is that package's own."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pyspark

from consumer.spark import WORKER_SITE

ZIP = str(Path(pyspark.__file__).parent / "python" / "lib" / "pyspark.zip")
SITE_PACKAGES = str(Path(pyspark.__file__).parents[1])


def load_site():
    spec = importlib.util.spec_from_file_location("chestct_worker_site", WORKER_SITE / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def py4j_zip_name(version: str) -> str:
    return str(Path(ZIP).parent / f"py4j-{version}-src.zip")


def test_only_the_installed_package_s_own_zips_are_dropped(tmp_path):
    site = load_site()
    from importlib import metadata

    py4j = py4j_zip_name(metadata.version("py4j"))
    other_py4j = py4j_zip_name("0.0.1")
    # A Spark distribution's SPARK_HOME (not inside an importable package) keeps its zip.
    distribution = tmp_path / "spark-4.3.0-bin" / "python" / "lib" / "pyspark.zip"
    path = [ZIP, py4j, other_py4j, str(distribution), SITE_PACKAGES]
    assert site.installed_package_zips(path) == [ZIP, py4j]
    # Without the package's folder on the path the zip is all there is: it stays.
    assert site.installed_package_zips([ZIP, py4j]) == []


def _python(code: str, pythonpath: list[str], cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath))
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_process_started_as_spark_starts_it_imports_pyspark_compiled(tmp_path):
    code = "import pyspark; print(pyspark.__file__)"
    assert ".zip" in _python(code, [ZIP], tmp_path)  # what Spark's PYTHONPATH alone gives
    assert _python(code, [ZIP, str(WORKER_SITE)], tmp_path) == pyspark.__file__


def test_a_sitecustomize_further_on_the_path_still_runs(tmp_path):
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "sitecustomize.py").write_text("import sys\nsys.theirs_ran = True\n")
    out = _python("import sys, pyspark; print(getattr(sys, 'theirs_ran', False), '.zip' in pyspark.__file__)",
                  [ZIP, str(WORKER_SITE), str(tmp_path / "theirs")], tmp_path)
    assert out == "True False"


def test_spark_s_python_workers_import_pyspark_compiled(spark):
    def where(batches):
        import pandas as pd
        import pyspark as worker_pyspark

        for _ in batches:
            yield pd.DataFrame({"file": [worker_pyspark.__file__]})

    (row,) = spark.range(1).coalesce(1).mapInPandas(where, "file string").collect()
    assert ".zip" not in row.file and row.file.endswith(os.path.join("pyspark", "__init__.py"))
