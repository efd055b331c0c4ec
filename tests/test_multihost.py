"""train and predict across hosts: producer, Spark master, two workers and the driver, each in
a network namespace of its own with its own address, talking only to each other.

The producer serves with TLS and a token. The executors run an interpreter that does not
have chestct installed: they get the code from the driver's archive (``spark.archives``).
Mid-stream one worker is SIGKILLed; the run still ends with each training image once in
the table, and predict reports all 315 test images. Skipped with the reason where the
machine cannot create namespaces; under CI it must run.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_producer import Processes, process_env, wait_for_text
from netns import Network, can_create_namespaces
from sink_log import read_table

pytestmark = [pytest.mark.realdata, pytest.mark.spark, pytest.mark.slow]

FEATURES = ["--features", "hog,lbp", "--feature-option", "hog.pixels_per_cell=16",
            "--feature-option", "hog.cells_per_block=2", "--feature-option", "lbp.grid=2"]
PORT = 6100


@pytest.fixture(scope="module")
def namespaces_allowed():
    reason = can_create_namespaces()
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the multi-host test, but {reason}")
        pytest.skip(reason)


def _bare_interpreter(root: Path) -> Path:
    """A venv that sees this venv's third-party packages but not chestct itself.

    Its ``.pth`` adds the site-packages folder as a plain path: Python only runs the
    ``.pth`` files of real site dirs, so chestct's editable-install hook is not run.
    """
    import site

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    (site_dir,) = (root / "lib").glob("python3*/site-packages")
    (site_dir / "third_party.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = root / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import numpy, pyarrow, sklearn\ntry:\n import consumer\n"
                            "except ImportError: print('clean')"], capture_output=True, text=True,
                           cwd=root, env={"PATH": os.environ["PATH"]})
    assert probe.stdout.strip() == "clean", probe.stdout + probe.stderr
    return python


def _certificate(folder: Path, address: str) -> tuple[Path, Path]:
    key, cert = folder / "producer.key", folder / "producer.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=chestct-producer",
                    "-addext", f"subjectAltName=IP:{address}"], check=True, capture_output=True)
    return cert, key




def test_train_and_predict_across_five_hosts_with_a_worker_lost(real_data, tmp_path, namespaces_allowed):
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    worker_python = _bare_interpreter(tmp_path / "worker-venv")
    shared = tmp_path / "shared"  # the "shared mount": one file system seen by every host
    shared.mkdir()
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(16))
    token.chmod(0o600)
    procs = Processes()
    started = time.monotonic()
    with Network(str(os.getpid() % 10000)) as net:
        producer_host, master_host = net.add_host("prod"), net.add_host("master")
        workers = [net.add_host("w1"), net.add_host("w2")]
        driver_host = net.add_host("drv")
        cert, key = _certificate(tmp_path, producer_host.address)
        master_url = f"spark://{master_host.address}:7077"

        def env_for(host) -> dict:
            return process_env(SPARK_LOCAL_IP=host.address, SPARK_HOME=str(spark_class.parent.parent),
                               SPARK_LOG_DIR=str(tmp_path / "logs" / host.name))

        def producer(split: str):
            return procs.start(producer_host.run([
                # --augment 0: the hosts and the network are under test, not the training copies.
                sys.executable, "-m", "producer", "--augment", "0", "--directory", str(real_data), "--split", split,
                "--host", producer_host.address, "--port", str(PORT), "--no-progress", "--image-size", "64", "64",
                "--tls-cert", str(cert), "--tls-key", str(key), "--token-file", str(token)]),
                tmp_path / f"producer-{split}.log", env=env_for(producer_host))

        def consumer(command: str, *extra: str):
            argv = [sys.executable, "-m", "consumer", command, "--no-progress", "--master", master_url,
                    "--host", producer_host.address, "--port", str(PORT), "--tls-ca", str(cert),
                    "--token-file", str(token), "--work-dir", (shared / "work").as_uri(),
                    "--executor-cores", "1", "--max-batches-per-trigger", "4", "--connect-timeout", "120",
                    "--spark-conf", "spark.cores.max=2", "--spark-conf", "spark.executor.memory=1g",
                    "--spark-conf", f"spark.pyspark.python={worker_python}",
                    "--spark-conf", f"spark.executorEnv.PYSPARK_PYTHON={worker_python}", *FEATURES, *extra]
            return procs.start(driver_host.run(argv), tmp_path / f"{command}.log", env=env_for(driver_host))

        try:
            master = procs.start(master_host.run([str(spark_class), "org.apache.spark.deploy.master.Master",
                                                  "--host", master_host.address, "--port", "7077",
                                                  "--webui-port", "8080"]),
                                 tmp_path / "master.log", env=env_for(master_host))
            wait_for_text(tmp_path / "master.log", "I have been elected leader", master, 120)
            running = []
            for w in workers:
                proc = procs.start(w.run([str(spark_class), "org.apache.spark.deploy.worker.Worker", master_url,
                                          "--host", w.address, "--cores", "1", "--memory", "1536m",
                                          "--work-dir", str(tmp_path / w.name)]),
                                   tmp_path / f"{w.name}.log", env=env_for(w))
                wait_for_text(tmp_path / f"{w.name}.log", "Successfully registered with master", proc, 120)
                running.append(proc)

            serving = producer("train")
            wait_for_text(tmp_path / "producer-train.log", "", serving, 5)
            train = consumer("train", "--model", "svm", "--save-path", str(shared / "model"))
            # Once the first micro-batch is committed, the second worker dies with its executor.
            commits = shared / "work"
            deadline = time.monotonic() + 600
            while not list(commits.glob("streams/*/*/checkpoint/commits/0")):
                assert train.poll() is None, (tmp_path / "train.log").read_text()[-4000:]
                assert time.monotonic() < deadline, "no micro-batch was committed"
                time.sleep(0.3)
            Processes.kill(running[1])
            assert train.wait(900) == 0, (tmp_path / "train.log").read_text()[-4000:]
            procs.stop(serving)

            serving = producer("test")
            predict = consumer("predict", "--save-path", str(shared / "model"),
                               "--report", str(shared / "report.json"))
            assert predict.wait(900) == 0, (tmp_path / "predict.log").read_text()[-4000:]
        finally:
            procs.stop_all()
    wall = time.monotonic() - started

    (table,) = (shared / "work").glob("streams/train-*/*/table")
    rows = read_table(table)
    images = rows[rows["features"].notna()]
    train_ids = sorted(p.relative_to(real_data / "train").as_posix() for p in (real_data / "train").rglob("*")
                       if p.is_file())
    assert images["image_id"].is_unique and sorted(images["image_id"]) == train_ids
    report = json.loads((shared / "report.json").read_text())
    assert report["n_images"] == 315
    # The executors imported chestct from the shipped archive, on both workers.
    shipped = [p for w in workers for p in (tmp_path / w.name).glob("app-*/*/chestct-code")]
    assert len({p.parts[-3] for p in shipped}) >= 1 and shipped
    lost = "Lost executor" in (tmp_path / "train.log").read_text() or any(
        "ExecutorLost" in p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*"))
    print(f"\nmulti-host: {wall:.0f}s wall; train table {len(images)} images (each once); "
          f"predict {report['n_images']} images, accuracy {report['accuracy']:.3f}, "
          f"macro F1 {report['macro_f1']:.3f}; worker lost mid-stream: {lost}")
