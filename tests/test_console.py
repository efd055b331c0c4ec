"""What a user sees from ``chestct train``: no collided lines, no JVM banners, one line on Ctrl-C,
and nothing of the consumer (JVM, Python workers) left running after it."""
from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest

from consumer import console
from fake_producer import FakeProducer, FakeStream, Processes, group_gone, process_env

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FEATURES = ["--features", "hog", "--feature-option", "hog.pixels_per_cell=8",
            "--feature-option", "hog.cells_per_block=2", "--backend", "skimage"]
#: What the JVM prints at start-up when nobody configures it.
BANNERS = ("log4j profile", "NativeCodeLoader", "incubator modules", "Setting default log level",
           "sc.setLogLevel")
BAR = re.compile(r"\d+(batch|it)?/s|\|\s*\d+/\d*")


def test_train_console_has_no_collided_lines_no_banner_and_one_line_on_ctrl_c(tmp_path):
    stream = FakeStream(total_images=400, batch_size=8, image_shape=(32, 32, 1))
    log = tmp_path / "train.log"
    procs = Processes()
    try:
        with FakeProducer(stream=stream, delay=0.3) as fp:
            # The progress bar stays on (no --no-progress): it must not collide with the lines.
            proc = procs.start([sys.executable, "-m", "consumer", "train", "--save-path", str(tmp_path / "m"),
                                "--model", "sgd", "--port", str(fp.port), "--work-dir", str(tmp_path / "w"),
                                "--master", "local[2]", "--max-batches-per-trigger", "1", *FEATURES],
                               log, env=process_env())
            deadline = time.monotonic() + 240
            while log.read_text(errors="replace").count("train seq=") < 4:
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
                time.sleep(0.3)
            interrupted_at = len(log.read_bytes())
            os.kill(proc.pid, signal.SIGINT)  # the driver only, as a terminal's Ctrl-C reaches it
            code = proc.wait(90)
            gone = group_gone(proc)
    finally:
        procs.stop_all()
    out = log.read_text(errors="replace")
    assert code == console.EXIT_INTERRUPTED, out[-3000:]
    for banner in BANNERS:
        assert banner not in out, f"JVM start-up noise {banner!r} reached the console"
    lines = [segment for line in out.split("\n") for segment in line.split("\r")]
    collided = [s for s in lines if "train seq=" in s and (BAR.search(s.split("train seq=")[0])
                                                           or "stream:" in s)]
    assert not collided, collided[:3]
    assert sum("train seq=" in s for s in lines) >= 4
    after = out[interrupted_at:]
    assert sum(line.startswith("interrupted: ") for line in after.splitlines()) == 1, after[-3000:]
    assert "Traceback" not in out and "py4j" not in after and "ERROR" not in after, after[-3000:]
    # Ctrl-C on train publishes what it learned: the model loads.
    from consumer.learn import versions

    assert versions.latest(tmp_path / "m") == "000001"
    assert gone, "the JVM or Python workers outlived the CLI"


def _py4j_error_over_an_interrupt() -> Exception:
    """What py4j raises when Ctrl-C lands while the call's connection is already closed."""
    from py4j.protocol import Py4JError

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise Py4JError("Gateway must be connected to send cancel cmd.")
    except Py4JError as exc:
        return exc


def test_an_error_raised_while_ctrl_c_unwinds_counts_as_the_interrupt():
    assert console.is_interrupt(KeyboardInterrupt())
    assert console.is_interrupt(_py4j_error_over_an_interrupt())
    assert not console.is_interrupt(ValueError("a real failure"))


def test_after_ctrl_c_python_warnings_are_muted_too():
    # pyspark warns with the JVM's stack trace when Ctrl-C cancels a toPandas collect.
    import subprocess

    code = ("import warnings; from consumer import console; warnings.warn('before');"
            "console.mute(); warnings.warn('after: Py4JJavaError stack')")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=process_env()).stderr
    assert "before" in err and "after" not in err, err


def test_the_cli_exits_130_when_py4j_replaces_ctrl_c_with_its_own_error(monkeypatch, capsys):
    from consumer import cli, commands

    def interrupted(args, run):
        raise _py4j_error_over_an_interrupt()

    monkeypatch.setitem(commands.COMMANDS, "ingest", interrupted)
    assert cli.main(["ingest", "--no-progress"]) == console.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted:" in err and "Py4JError" not in err


def test_ctrl_c_out_of_a_command_stops_it_with_one_line_and_exit_130(monkeypatch, capsys):
    from consumer import cli, commands

    def interrupted(args, run):
        raise KeyboardInterrupt

    monkeypatch.setitem(commands.COMMANDS, "ingest", interrupted)
    assert cli.main(["ingest", "--no-progress"]) == console.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["interrupted: stopping the streaming query and Spark"]


def test_following_a_query_turns_py4j_s_error_over_ctrl_c_into_the_interrupt():
    from consumer.stream.follow import follow_query

    class Query:
        isActive = True
        lastProgress = None
        recentProgress: list = []

        def awaitTermination(self, seconds):
            raise _py4j_error_over_an_interrupt()

    with pytest.raises(KeyboardInterrupt):
        follow_query(Query(), total_batches=None, progress_bar=False)


def test_a_held_ctrl_c_is_delivered_after_the_block_and_a_second_one_at_once():
    before = signal.getsignal(signal.SIGINT)
    done = []
    with pytest.raises(KeyboardInterrupt):
        with console.interrupt_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("finished")
    assert done == ["finished"]
    with pytest.raises(KeyboardInterrupt):
        with console.interrupt_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            done.append("not reached")
    assert done == ["finished"]
    assert signal.getsignal(signal.SIGINT) is before
