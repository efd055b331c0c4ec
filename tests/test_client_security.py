"""The consumer's client and source read a producer that serves TLS and wants a token."""
from __future__ import annotations

import pytest

from consumer.stream.client import ConnectConfig, ProducerError, fetch_hello
from consumer.stream.options import SourceOptions
from consumer.stream.reader import BatchRange, read_range
from producer import transport
from producer.running import running_server
from test_producer_security import TOKEN, certs, config, spec, tiny_data, token_file  # noqa: F401


def test_tls_and_token_give_the_stream_to_the_source(spec, certs, tmp_path):  # noqa: F811
    ctx = transport.server_ssl_context(certs["cert"], certs["key"])
    token = token_file(tmp_path)
    with running_server(spec, config(ssl_context=ctx, token=TOKEN)) as server:
        options = SourceOptions.parse({"port": str(server.port), "tlsCa": str(certs["cert"]),
                                       "tokenFile": str(token), "connectTimeout": "5"})
        hello = fetch_hello(options.connect)
        part = BatchRange(hello["stream_id"], 0, hello["total_batches"], hello["classes"], hello["image_shape"])
        rows = sum(rb.num_rows for rb in read_range(options, part))
    assert rows == hello["total_images"]


def test_a_wrong_token_or_an_untrusted_certificate_is_a_clear_error(spec, certs, tmp_path):  # noqa: F811
    ctx = transport.server_ssl_context(certs["cert"], certs["key"])
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    with running_server(spec, config(ssl_context=ctx, token=TOKEN)) as server:
        base = dict(port=server.port, connect_timeout=2)
        with pytest.raises(ProducerError, match="unauthorized"):
            fetch_hello(ConnectConfig(**base, tls_ca=str(certs["cert"]),
                                      token_file=str(token_file(wrong, "x" * 20 + "-not-the-token"))))
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            fetch_hello(ConnectConfig(**base, tls_ca=str(certs["other"]), token_file=str(token_file(tmp_path))))
    with pytest.raises(transport.TransportError, match="readable by others"):
        fetch_hello(ConnectConfig(port=1, connect_timeout=1, token_file=str(token_file(wrong, TOKEN, 0o644))))
