"""Shared fixtures: the real dataset, free ports, Spark environment."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from consumer.spark import JVM_OPTIONS
from producer import synthetic
from producer.launch import free_port

import suite_order

ROOT = Path(__file__).resolve().parents[1]

# Spark's Python workers must run this interpreter (not the system python), on loopback.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# chestct's own JVMs (drivers, a cluster's executors) run the client JIT and serial GC by
# default (consumer.spark.JVM_OPTIONS). A standalone cluster's master and worker daemons
# are the user's, not chestct's: the tests' short-lived ones get the same options here.
os.environ.setdefault("SPARK_DAEMON_JAVA_OPTS", JVM_OPTIONS)


def real_data_dir() -> Path | None:
    """The real chest CT dataset from CHESTCT_DATA, or None when it is not set up."""
    env = os.environ.get("CHESTCT_DATA")
    if env and (Path(env) / "train").is_dir():
        return Path(env).resolve()
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Path to the real dataset. Skips when missing, but *fails* under CI (CI=true)."""
    path = real_data_dir()
    if path is None:
        msg = ("real dataset not found: set CHESTCT_DATA to the chest-ctscan folder "
               "(train/valid/test) to run this test")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI is set but " + msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """``synthetic_dataset(per_class)``: a synthetic dataset (:mod:`producer.synthetic`), made
    once per size and shared; tests that change files copy it first."""
    made: dict[int, tuple[Path, list]] = {}

    def listing(root: Path) -> list:
        return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in root.rglob("*") if p.is_file())

    def make(per_class: int = 3) -> Path:
        if per_class not in made:
            root = tmp_path_factory.mktemp(f"synthetic-{per_class}")
            synthetic.generate(root, per_class=per_class, progress=False)
            made[per_class] = (root, listing(root))
        root, files = made[per_class]
        # Which tests share a worker depends on the suite's order: a test that changed the
        # shared files would break a later one with wrong counts. The next user fails here
        # instead, saying what happened (the earlier tests on its worker are the suspects).
        assert listing(root) == files, (f"an earlier test on this worker changed the shared synthetic "
                                        f"dataset {root}; tests that change files must copy it first")
        return root

    return make


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession (the consumer's, ``chestct`` source registered) per test
    process: every in-process Spark test shares its JVM instead of starting its own."""
    from consumer.spark import build_session

    session, _ = build_session("local[2]", app_name="chestct-tests")
    yield session
    session.stop()


@pytest.fixture
def port() -> int:
    return free_port()


def pytest_addoption(parser):
    parser.addoption(
        "--store-durations", action="store_true",
        help="write each test's seconds to tests/durations.json, which orders make test",
    )


def pytest_collection_modifyitems(config, items):
    """Spread the long tests over the xdist workers' first shares (see tests/suite_order.py)."""
    durations = suite_order.load_durations()
    costs = [
        durations.get(item.nodeid, suite_order.UNKNOWN_SLOW_SECONDS
                      if item.get_closest_marker("slow") else suite_order.UNKNOWN_SECONDS)
        for item in items
    ]
    # The in-process Spark tests share one session per worker: on one worker it starts once.
    # So do a module's tests marked one_worker with their module fixtures.
    groups = ["spark-session" if "spark" in getattr(item, "fixturenames", ())
              else item.nodeid.split("::")[0] if item.get_closest_marker("one_worker") else None
              for item in items]
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    items[:] = [items[i] for i in suite_order.schedule(costs, workers, groups)]


_measured: dict[str, float] = {}


def pytest_runtest_logreport(report):
    _measured[report.nodeid] = _measured.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    # Only the controller (or a plain run) writes: it sees every worker's reports.
    if session.config.getoption("--store-durations") and not hasattr(session.config, "workerinput"):
        suite_order.store_durations(_measured)
