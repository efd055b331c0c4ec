"""TLS, the auth token, and refusing an exposed address without them."""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from producer import imaging, transport, wire
from producer.launch import tree_env
from producer.running import running_server
from producer.server_config import ServerConfig
from producer.stream import StreamSpec

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "correct-horse-battery-staple-42"


@pytest.fixture(scope="module")
def tiny_data(synthetic_dataset) -> Path:
    return synthetic_dataset(2)


@pytest.fixture(scope="module")
def spec(tiny_data) -> StreamSpec:
    return StreamSpec.from_directory(tiny_data, "train", batch_size=4,
                                     preprocessing=imaging.Preprocessing(image_size=(16, 16)))


def make_cert(folder: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("certs")
    cert, key = make_cert(base / "server")
    other_cert, _ = make_cert(base / "other")
    return {"cert": cert, "key": key, "other": other_cert}


def token_file(folder: Path, text: str = TOKEN, mode: int = 0o600) -> Path:
    path = folder / "token"
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return path


def config(**kw) -> ServerConfig:
    kw.setdefault("subscribe_timeout", 5)
    return ServerConfig(port=0, progress=False, workers=2, **kw)


def whole_stream(sock) -> list[str]:
    hello = wire.recv_message(sock)
    assert hello["type"] == "hello", hello
    wire.send_message(sock, wire.subscribe(0))
    types = []
    while not types or types[-1] not in ("end", "error"):
        types.append(wire.recv_message(sock)["type"])
    return types


def expect_error(sock, code: str) -> dict:
    msg = wire.recv_message(sock)
    assert msg is not None and msg["type"] == "error" and msg["code"] == code, msg
    assert wire.recv_message(sock) is None  # and closed
    return msg


# ------------------------------------------------------------------ token


def test_right_token_gets_the_stream(spec):
    with running_server(spec, config(token=TOKEN)) as server:
        with transport.connect("127.0.0.1", server.port, token=TOKEN) as sock:
            assert whole_stream(sock) == ["batch", "batch", "end"]


@pytest.mark.parametrize("first", [
    wire.auth("wrong-token-wrong-token-wrong"),
    wire.auth(TOKEN[:-1]),
    wire.subscribe(0),  # no auth at all
    wire.ack(0),
])
def test_wrong_or_missing_token_is_unauthorized_and_reveals_nothing(spec, first):
    with running_server(spec, config(token=TOKEN)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            wire.send_message(sock, first)
            msg = expect_error(sock, "unauthorized")
        assert server.stats.errors_sent["unauthorized"] == 1
    assert spec.stream_id[:8] not in msg["reason"] and "train" not in msg["reason"]
    assert set(msg) == {"type", "code", "reason"}


def test_a_silent_client_gets_no_hello_and_times_out(spec):
    with running_server(spec, config(token=TOKEN, subscribe_timeout=0.5)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            expect_error(sock, "timeout")


def test_without_a_token_configured_auth_is_not_needed(spec):
    with running_server(spec, config()) as server:
        with transport.connect("127.0.0.1", server.port) as sock:
            assert whole_stream(sock)[-1] == "end"


@pytest.mark.parametrize("text, mode, match", [
    (None, 0o600, "cannot be read"),
    ("", 0o600, "empty"),
    ("short", 0o600, "at least"),
    (TOKEN, 0o644, "readable by others"),
    (TOKEN, 0o640, "chmod 600"),
])
def test_read_token_refuses_unusable_files(tmp_path, text, mode, match):
    path = tmp_path / "token" if text is None else token_file(tmp_path, text, mode)
    with pytest.raises(transport.TransportError, match=match):
        transport.read_token(path)


def test_read_token_strips_the_newline(tmp_path):
    assert transport.read_token(token_file(tmp_path)) == TOKEN


def test_token_comparison():
    assert transport.token_matches(TOKEN, wire.auth(TOKEN))
    assert not transport.token_matches(TOKEN, wire.auth(TOKEN + "x"))
    assert not transport.token_matches(TOKEN, {"type": "auth", "token": "\ud800"})
    assert not transport.token_matches(TOKEN, None)


# ------------------------------------------------------------------ TLS


def test_tls_with_the_right_ca_and_token(spec, certs):
    server_ctx = transport.server_ssl_context(certs["cert"], certs["key"])
    with running_server(spec, config(ssl_context=server_ctx, token=TOKEN)) as server:
        client_ctx = transport.client_ssl_context(certs["cert"])
        with transport.connect("127.0.0.1", server.port, ssl_context=client_ctx, token=TOKEN) as sock:
            assert sock.version() in ("TLSv1.2", "TLSv1.3")
            assert whole_stream(sock) == ["batch", "batch", "end"]
        with transport.connect("127.0.0.1", server.port, ssl_context=client_ctx,
                               server_hostname="localhost", token=TOKEN) as sock:
            assert whole_stream(sock)[-1] == "end"


def test_tls_client_with_another_ca_is_refused(spec, certs):
    server_ctx = transport.server_ssl_context(certs["cert"], certs["key"])
    with running_server(spec, config(ssl_context=server_ctx)) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            transport.connect("127.0.0.1", server.port, ssl_context=transport.client_ssl_context(certs["other"]))
        with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname"):
            transport.connect("127.0.0.1", server.port, ssl_context=transport.client_ssl_context(certs["cert"]),
                              server_hostname="producer.example.org")
        # a plain-text client gets nothing of the stream
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain:
            plain.sendall(wire.encode(wire.subscribe(0)))
            data = b""
            try:
                while chunk := plain.recv(4096):
                    data += chunk
            except ConnectionResetError:
                pass
        assert b"hello" not in data and b"stream_id" not in data
        # and the server still serves TLS clients
        with transport.connect("127.0.0.1", server.port,
                               ssl_context=transport.client_ssl_context(certs["cert"])) as sock:
            assert whole_stream(sock)[-1] == "end"


def test_tls_refuses_old_protocol_versions(spec, certs):
    server_ctx = transport.server_ssl_context(certs["cert"], certs["key"])
    assert server_ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    client_ctx = transport.client_ssl_context(certs["cert"])
    assert client_ctx.minimum_version >= ssl.TLSVersion.TLSv1_2 and client_ctx.check_hostname


def test_bad_tls_files_are_clear_errors(tmp_path, certs):
    with pytest.raises(transport.TransportError, match="does not exist"):
        transport.server_ssl_context(tmp_path / "nope.pem", certs["key"])
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(transport.TransportError, match="cannot load"):
        transport.server_ssl_context(junk, certs["key"])
    with pytest.raises(transport.TransportError, match="cannot load"):
        transport.client_ssl_context(junk)


# ------------------------------------------------------------------ exposure


def test_loopback_detection():
    assert transport.is_loopback("127.0.0.1") and transport.is_loopback("::1")
    assert transport.is_loopback("localhost")
    for host in ("0.0.0.0", "", "::", "10.1.2.3"):
        assert not transport.is_loopback(host)
    assert transport.exposure_problem("127.0.0.1", tls=False, token=False) is None
    assert transport.exposure_problem("0.0.0.0", tls=True, token=True) is None
    assert "TLS and a token" in transport.exposure_problem("0.0.0.0", tls=False, token=False)
    assert "a token" in transport.exposure_problem("0.0.0.0", tls=True, token=False)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = tree_env()
    return subprocess.run([sys.executable, "-m", "producer", "--no-progress", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def test_cli_refuses_an_exposed_address_without_tls_and_token(tiny_data, certs, tmp_path):
    out = run_cli("--directory", str(tiny_data), "--host", "0.0.0.0", "--port", "0")
    assert out.returncode == 2 and "--insecure" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("--directory", str(tiny_data), "--host", "0.0.0.0", "--port", "0",
                  "--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"]))
    assert out.returncode == 2 and "a token" in out.stderr
    out = run_cli("--directory", str(tiny_data), "--tls-cert", str(certs["cert"]))
    assert out.returncode == 2 and "go together" in out.stderr
    out = run_cli("--directory", str(tiny_data), "--token-file", str(token_file(tmp_path, mode=0o644)))
    assert out.returncode == 2 and "chmod 600" in out.stderr


def test_cli_insecure_binds_with_a_warning(tiny_data, port):
    proc = subprocess.Popen([sys.executable, "-m", "producer", "--no-progress", "--augment", "0", "--directory", str(tiny_data),
                             "--host", "0.0.0.0", "--port", str(port), "--insecure"],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=tree_env())
    try:
        from producer.launch import wait_for_port
        wait_for_port(port, proc, timeout=60)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert wire.recv_message(sock)["type"] == "hello"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "INSECURE" in err and "0.0.0.0" in err


def test_cli_serves_tls_with_a_token(tiny_data, certs, tmp_path, port):
    token = token_file(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "producer", "--no-progress", "--augment", "0", "--directory", str(tiny_data),
                             "--port", str(port), "--tls-cert", str(certs["cert"]), "--tls-key",
                             str(certs["key"]), "--token-file", str(token)],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=tree_env())
    try:
        from producer.launch import wait_for_port
        wait_for_port(port, proc, timeout=60)
        ctx = transport.client_ssl_context(certs["cert"])
        with transport.connect("127.0.0.1", port, ssl_context=ctx, token=transport.read_token(token)) as sock:
            assert whole_stream(sock) == ["batch", "end"]
        with transport.connect("127.0.0.1", port, ssl_context=ctx, token="x" * 20) as sock:
            expect_error(sock, "unauthorized")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert TOKEN not in err  # the secret never reaches the log


def test_fake_producer_requires_the_token_and_speaks_tls_like_the_real_one(certs):
    """The consumer tests' fake producer behaves like the real one for auth and TLS."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_producer import FakeProducer
    server_ctx = transport.server_ssl_context(certs["cert"], certs["key"])
    with FakeProducer(token=TOKEN, ssl_context=server_ctx) as fp:
        ctx = transport.client_ssl_context(certs["cert"])
        with transport.connect("127.0.0.1", fp.port, ssl_context=ctx, token=TOKEN) as sock:
            hello = wire.recv_message(sock)
            wire.check_protocol(hello)
            assert hello["preprocessing"]["image_size"] == list(hello["image_shape"][:2])
            assert set(hello["limits"]) == set(imaging.LIMIT_FIELDS)
        with transport.connect("127.0.0.1", fp.port, ssl_context=ctx, token="not-the-token-at-all") as sock:
            expect_error(sock, "unauthorized")
