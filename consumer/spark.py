"""SparkSession for the consumer: master, parallelism plan, the chestct source registered.

The feature stage runs ``featrs`` kernels with ``n_threads`` threads inside each Spark task.
Spark runs ``task slots`` tasks at once, so ``slots x n_threads`` must not exceed the
cores or the threads fight over them. :func:`plan_parallelism` chooses both and
:func:`build_session` sets ``spark.task.cpus = n_threads`` so that the scheduler itself
never starts more tasks than ``cores // n_threads`` per executor.
"""
from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: On the Python workers' path only: their ``sitecustomize`` (consumer/worker_site/).
WORKER_SITE = Path(__file__).resolve().parent / "worker_site"

DEFAULT_MASTER = "local[*]"
#: JIT and GC of chestct's JVMs (the driver; on a cluster, the executors too). Their share
#: of a run's work is small (the features run in Python workers): the optimising JIT (C2)
#: spent more CPU compiling than it saved, and G1's threads and remembered sets cost memory
#: a small heap does not need. A default train + predict of the real data took 97 instead
#: of 113 CPU s (docs/consumer.md). Options given with ``--spark-conf`` come after these
#: (for the driver) or replace them (executors), so a user's choice wins.
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
_DRIVER_JAVA = "spark.driver.extraJavaOptions"
_EXECUTOR_JAVA = "spark.executor.extraJavaOptions"
#: How the executors get chestct's code (see :func:`build_session`).
SHIP_CODE = ("auto", "archive", "none")

_LOCAL = re.compile(r"^local(?:\[(\*|\d+)(?:\s*,\s*\d+)?\])?$")


@dataclass(frozen=True)
class Parallelism:
    """How the feature work is spread: ``slots`` concurrent tasks x ``n_threads`` each."""

    cores: int
    slots: int
    n_threads: int

    def describe(self) -> str:
        return (f"{self.slots} task slot(s) x {self.n_threads} featrs thread(s) per task "
                f"on {self.cores} core(s)")


def master_cores(master: str, machine_cores: int) -> int | None:
    """Cores a ``local[...]`` master uses; None for a cluster master (spark://, yarn, k8s)."""
    match = _LOCAL.match(master.strip())
    if not match:
        return None
    spec = match.group(1)
    if spec is None:
        return 1
    if spec == "*":
        return machine_cores
    if int(spec) < 1:
        raise ValueError(f"--master {master!r}: local needs at least 1 core")
    return int(spec)


def plan_parallelism(master: str, threads_per_task: int | None = None, *,
                     machine_cores: int | None = None, executor_cores: int | None = None) -> Parallelism:
    """Choose task slots and featrs threads per task so that slots x threads <= cores.

    Parameters
    ----------
    master : str
        Spark master URL: ``local``, ``local[N]``, ``local[*]`` or a cluster URL.
    threads_per_task : int, optional
        Wanted featrs threads per task; default 1 (Spark's own parallelism over
        partitions is cheaper than threads for small batches). Clamped to the cores.
    machine_cores : int, optional
        Cores of this machine (default ``os.cpu_count()``).
    executor_cores : int, optional
        For a cluster master: cores of one executor (``spark.executor.cores``); default
        this machine's cores, which is right for the single-host standalone setup.

    Returns
    -------
    Parallelism
    """
    machine = machine_cores or os.cpu_count() or 1
    cores = master_cores(master, machine)
    if cores is None:
        cores = executor_cores or machine
    cores = max(1, cores)
    if threads_per_task is not None and threads_per_task < 1:
        raise ValueError(f"threads per task must be >= 1, got {threads_per_task}")
    n_threads = min(threads_per_task or 1, cores)
    return Parallelism(cores=cores, slots=cores // n_threads, n_threads=n_threads)


def session_conf(master: str, parallelism: Parallelism, app_name: str = "chestct",
                 extra: Mapping[str, str] | None = None, code_archive: str | None = None) -> dict[str, str]:
    """The Spark configuration the consumer runs with (small, UI off, Arrow on).

    ``code_archive`` (cluster masters): chestct's packed code (:mod:`consumer.code_archive`),
    shipped with ``spark.archives`` and first on the executors' ``PYTHONPATH``. Without it
    the executors import chestct from this tree's path, which only a local master (or a
    cluster whose workers mount this tree) can.
    """
    python = os.environ.get("PYSPARK_PYTHON", sys.executable)
    if code_archive is not None:
        from .code_archive import ALIAS

        pythonpath = os.pathsep.join((ALIAS, f"{ALIAS}/{WORKER_SITE.parent.name}/{WORKER_SITE.name}"))
    else:
        pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), str(WORKER_SITE),
                                                 os.environ.get("PYTHONPATH")) if p)
    conf = {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.task.cpus": str(parallelism.n_threads),
        "spark.sql.shuffle.partitions": str(max(2, parallelism.slots)),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.streaming.stopTimeout": "30s",
        "spark.pyspark.python": python,
        # Executors (a standalone worker too) must import consumer/producer from this tree.
        "spark.executorEnv.PYTHONPATH": pythonpath,
        "spark.executorEnv.PYSPARK_PYTHON": python,
        "spark.driver.host": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        "spark.driver.bindAddress": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    }
    if master_cores(master, os.cpu_count() or 1) is None:
        conf[_EXECUTOR_JAVA] = JVM_OPTIONS
        conf["spark.executor.cores"] = str(parallelism.cores)
        conf["spark.cores.max"] = str(parallelism.cores)
    if code_archive is not None:
        from .code_archive import ALIAS

        conf["spark.archives"] = f"{code_archive}#{ALIAS}"
    conf.update(extra or {})
    return conf


def build_session(master: str = DEFAULT_MASTER, *, threads_per_task: int | None = None,
                  app_name: str = "chestct", extra: Mapping[str, str] | None = None,
                  executor_cores: int | None = None, log_level: str = "INFO", ship_code: str = "auto"):
    """Start (or reuse) the SparkSession and register the ``chestct`` source.

    ``ship_code``: ``auto`` ships chestct's code to the executors of a cluster master
    (``spark.archives``, :mod:`consumer.code_archive`) and not to a local one; ``archive``
    always; ``none`` never (the workers have chestct installed).

    The JVM starts with chestct's log4j2 configuration and its start-up banner lines are
    filtered from stderr unless ``log_level`` is DEBUG (:class:`consumer.console.JvmOutput`).

    Returns
    -------
    (pyspark.sql.SparkSession, Parallelism)
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The driver must import the tree too (spark-submit is not involved here).
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    from pyspark.sql import SparkSession

    from .console import JvmOutput, java_options

    parallelism = plan_parallelism(master, threads_per_task, executor_cores=executor_cores)
    if ship_code not in SHIP_CODE:
        raise ValueError(f"ship_code must be one of {', '.join(SHIP_CODE)}, got {ship_code!r}")
    cluster = master_cores(master, os.cpu_count() or 1) is None
    archive = None
    if ship_code == "archive" or (ship_code == "auto" and cluster):
        from .code_archive import build

        archive = str(build())
    conf = session_conf(master, parallelism, app_name, extra, code_archive=archive)
    conf[_DRIVER_JAVA] = driver_java_options(java_options(log_level), (extra or {}).get(_DRIVER_JAVA))
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    with JvmOutput(show_all=log_level == "DEBUG"), _worker_site_for_the_jvm():
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("INFO" if log_level == "DEBUG" else "WARN")
    register_source(spark)
    return spark, parallelism


def driver_java_options(ours: str, user: str | None = None) -> str:
    """The driver JVM's options: :data:`JVM_OPTIONS`, chestct's own (log4j2 configuration,
    class archive), then the user's ``spark.driver.extraJavaOptions``, which win (the JVM
    takes the last of two settings of one flag)."""
    return " ".join(filter(None, (JVM_OPTIONS, ours, user)))


@contextmanager
def _worker_site_for_the_jvm():
    """``WORKER_SITE`` on the ``PYTHONPATH`` the driver JVM starts with, and so on that of
    every Python process it starts (Spark appends its own environment's): the data source's
    workers, which get no ``spark.executorEnv``, and a local master's executors."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(WORKER_SITE), before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def register_source(spark) -> None:
    """Make ``spark.readStream.format("chestct")`` available in this session."""
    from .stream.source import ChestCTDataSource

    spark.dataSource.register(ChestCTDataSource)
