"""`python -m producer` as a real process: option errors, aliases, signals."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from producer import wire
from producer.launch import tree_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(synthetic_dataset) -> Path:
    return synthetic_dataset(2)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "producer", *args], capture_output=True, text=True,
                          timeout=timeout, env=tree_env(), cwd=ROOT)


class Producer:
    """A producer subprocess that is always stopped."""

    def __init__(self, *args: str):
        # --augment 0: these tests count a stream's images (tests/test_producer_augment.py covers the copies).
        self.proc = subprocess.Popen([sys.executable, "-m", "producer", "--no-progress", "--augment", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=tree_env(), cwd=ROOT)

    def connect(self, port: int, timeout: float = 60) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"producer exited: {self.proc.communicate()[1]}")
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                return sock
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError("producer did not stop within 30 s")
        return self.proc.returncode, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def test_help_lists_every_option():
    out = run_cli("--help")
    assert out.returncode == 0
    for option in ("--directory", "--split", "--batch-size", "--image-size", "--color-mode", "--interpolation",
                   "--sleep", "--endless", "--shuffle", "--no-shuffle", "--seed", "--host", "--port",
                   "--max-frame-bytes", "--no-progress", "--on-changed-file", "--max-connections",
                   "--max-buffered-bytes", "--stall-timeout", "--tls-cert", "--tls-key", "--token-file",
                   "--insecure"):
        assert option in out.stdout


def test_defaults_are_the_ones_the_consumer_needs(tiny_data):
    from producer import cli, imaging, stream
    ap = cli.build_parser()
    args = ap.parse_args(["--directory", str(tiny_data), "--no-progress"])
    spec = cli.spec_from_args(args, ap)
    assert imaging.DEFAULT_IMAGE_SIZE == (512, 512)
    assert spec.preprocessing.image_size == imaging.DEFAULT_IMAGE_SIZE == imaging.Preprocessing().image_size
    assert spec.on_changed_file == stream.DEFAULT_ON_CHANGED_FILE == "fail"
    hello = spec.hello()
    assert hello["image_shape"] == [512, 512, 1]
    prep = hello["preprocessing"]
    assert (prep["image_size"], prep["color_mode"], prep["interpolation"]) == ([512, 512], "grayscale", "area")
    assert (prep["crop"], prep["denoise"]) == ("body", "median")
    assert hello["preprocessing"]["decoder"] == "opencv" and hello["preprocessing"]["decoder_version"]
    assert not set(hello["preprocessing"]) & set(imaging.LIMIT_FIELDS)
    assert hello["limits"] == {"max_image_pixels": imaging.DEFAULT_MAX_IMAGE_PIXELS,
                               "max_file_bytes": imaging.DEFAULT_MAX_FILE_BYTES}
    skip = cli.spec_from_args(ap.parse_args(["--directory", str(tiny_data), "--on-changed-file", "skip"]), ap)
    assert skip.on_changed_file == "skip" and skip.stream_id == spec.stream_id


def test_the_command_lines_serving_defaults_are_the_servers():
    """Each serving option's default is ServerConfig's own (one owner), not a copy of it."""
    import dataclasses

    from producer import cli
    from producer.server_config import ServerConfig

    args = cli.build_parser().parse_args(["--directory", "unused"])
    config = ServerConfig()
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    compared = {name for name in vars(args) if name in fields} - {"workers", "progress"}
    assert compared >= {"host", "port", "sleep", "max_frame_bytes", "prefetch", "read_ahead",
                        "subscribe_timeout", "send_timeout", "stall_timeout", "max_connections",
                        "max_buffered_bytes"}
    assert {name: getattr(args, name) for name in compared} == {name: getattr(config, name) for name in compared}


def test_console_script_points_at_main():
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["chestct-producer"].split(":")
    from importlib import import_module
    assert callable(getattr(import_module(module), func))


@pytest.mark.parametrize("args, message", [
    ([], "--directory"),
    (["--directory", "{missing}"], "does not exist"),
    (["--directory", "{data}", "--split", "holdout"], "invalid choice"),
    (["--directory", "{only_train}", "--split", "test"], "split folder"),
    (["--directory", "{no_images}"], "no images"),
    (["--directory", "{data}", "--batch-size", "0"], "must be >= 1"),
    (["--directory", "{data}", "--batch_size", "many"], "not an integer"),
    (["--directory", "{data}", "--image-size", "0", "64"], "must be >= 1"),
    (["--directory", "{data}", "--image-size", "64"], "expected 2 arguments"),
    (["--directory", "{data}", "--color-mode", "cmyk"], "invalid choice"),
    (["--directory", "{data}", "--interpolation", "lanczos"], "invalid choice"),
    (["--directory", "{data}", "--sleep", "-1"], "must be >= 0"),
    (["--directory", "{data}", "--sleep", "nan"], "must be >= 0"),
    (["--directory", "{data}", "--port", "70000"], "<= 65535"),
    (["--directory", "{data}", "--seed", "-2"], "must be >= 0"),
    (["--directory", "{data}", "--label_mode", "categorical"], "label-mode"),
    (["--directory", "{data}", "--max-frame-bytes", "4096", "--batch-size", "64"], "max-frame-bytes"),
    (["--directory", "{data}", "--subscribe-timeout", "0"], "must be > 0"),
    (["--directory", "{data}", "--on-changed-file", "ignore"], "invalid choice"),
    (["--directory", "{data}", "--max-connections", "0"], "must be >= 1"),
    (["--directory", "{data}", "--max-buffered-bytes", "1000"], "max_buffered_bytes"),
    (["--directory", "{data}", "--stall-timeout", "0"], "must be > 0"),
])
def test_bad_options_give_clear_argparse_errors(tiny_data, tmp_path, args, message):
    only_train = tmp_path / "only_train"
    (only_train / "train" / "a").mkdir(parents=True)
    (only_train / "train" / "a" / "1.png").write_bytes(b"x")
    no_images = tmp_path / "no_images"
    (no_images / "train" / "a").mkdir(parents=True)
    (no_images / "train" / "a" / "notes.txt").write_text("no images here")
    paths = {"{missing}": str(tmp_path / "missing"), "{data}": str(tiny_data),
             "{only_train}": str(only_train), "{no_images}": str(no_images)}
    out = run_cli(*[paths.get(a, a) for a in args])
    assert out.returncode == 2, out.stderr
    assert "usage:" in out.stderr and message in out.stderr
    assert "Traceback" not in out.stderr


def test_port_in_use_is_a_clear_error(tiny_data):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        out = run_cli("--directory", str(tiny_data), "--port", str(busy.getsockname()[1]), "--no-progress")
    assert out.returncode == 1
    assert "cannot listen on 127.0.0.1" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_original_option_names_and_graceful_shutdown(tiny_data, port, sig):
    with Producer("--directory", str(tiny_data), "--port", str(port), "--batch_size", "3",
                  "--image_size", "20", "10", "--color_mode", "rgb", "--label_mode", "int",
                  "--split", "dev", "--endless", "--sleep", "0.05") as producer:
        sock = producer.connect(port)
        hello = wire.recv_message(sock)
        assert hello["batch_size"] == 3 and hello["image_shape"] == [20, 10, 3] and hello["split"] == "valid"
        assert hello["total_batches"] is None
        wire.send_message(sock, wire.subscribe(0))
        first = wire.recv_message(sock)
        assert first["type"] == "batch" and wire.batch_pixels(first).shape == (3, 20, 10, 3)
        code, err = producer.stop(sig)
    while True:  # batches already on their way, then the shutdown notice
        msg = wire.recv_message(sock)
        if msg is None or msg["type"] != "batch":
            break
    sock.close()
    assert code == 0, err
    assert msg is not None and msg["code"] == "shutdown"
    assert "Traceback" not in err and "shutting down" in err
    with socket.socket() as s:  # the port is free for a restart
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_garbage_client_does_not_disturb_the_process(tiny_data, port):
    with Producer("--directory", str(tiny_data), "--port", str(port), "--log-level", "DEBUG") as producer:
        bad = producer.connect(port)
        wire.recv_message(bad)
        bad.sendall(b"\x00\x00\x00\x05{{{{{")
        assert wire.recv_message(bad)["code"] == "malformed_frame"
        bad.close()
        good = producer.connect(port)
        assert wire.recv_message(good)["type"] == "hello"
        wire.send_message(good, wire.subscribe(0))
        types = []
        while not types or types[-1] != "end":
            types.append(wire.recv_message(good)["type"])
        good.close()
        code, err = producer.stop()
    assert types == ["batch"] + ["end"]  # 8 train images in one batch of 8
    assert code == 0 and "Traceback" not in err and "malformed_frame" in err
