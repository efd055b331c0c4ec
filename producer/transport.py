"""TLS contexts, the shared-secret token, and what may be exposed beyond loopback.

Used by the producer (``--tls-cert``/``--tls-key``/``--token-file``) and by consumers:

>>> ctx = client_ssl_context("producer-cert.pem")                      # doctest: +SKIP
>>> sock = connect("10.0.0.5", 6100, ssl_context=ctx,                 # doctest: +SKIP
...                token=read_token("token"))
>>> hello = wire.recv_message(sock)                                    # doctest: +SKIP

See docs/security.md for the threat model and the commands to make a certificate and a token.
"""
from __future__ import annotations

import hmac
import ipaddress
import socket
import ssl
import stat
from pathlib import Path

from . import wire

#: Tokens shorter than this are refused: a shared secret must not be guessable.
MIN_TOKEN_CHARS = 16
#: Tokens longer than this are refused: the auth frame must fit the control-frame limit.
MAX_TOKEN_CHARS = 4096


class TransportError(ValueError):
    """A TLS or token setting that cannot be used (missing file, bad permissions, bad key)."""


def server_ssl_context(cert: Path | str, key: Path | str) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or newer) with the producer's certificate and key.

    Raises
    ------
    TransportError
        If a file is missing or the certificate and key cannot be loaded.
    """
    for label, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise TransportError(f"TLS {label} file {str(path)!r} does not exist")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (ssl.SSLError, OSError) as exc:
        raise TransportError(f"cannot load the TLS certificate {str(cert)!r} with key {str(key)!r}: "
                             f"{getattr(exc, 'reason', None) or exc}") from None
    return context


def client_ssl_context(ca_file: Path | str, server_hostname: str | None = None) -> ssl.SSLContext:
    """A client-side TLS context (TLS 1.2 or newer) trusting the producer's CA (or its self-signed cert).

    Parameters
    ----------
    ca_file : path
        PEM file of the certificate authority that signed the producer's certificate,
        or the producer's self-signed certificate itself.
    server_hostname : str, optional
        The name the producer's certificate carries, when it differs from the address
        connected to; :func:`connect` checks it. The hostname is always checked.

    Raises
    ------
    TransportError
        If the file is missing or holds no usable certificate.
    """
    if not Path(ca_file).is_file():
        raise TransportError(f"CA file {str(ca_file)!r} does not exist")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise TransportError(f"cannot load CA file {str(ca_file)!r}: {getattr(exc, 'reason', None) or exc}") from None
    context.chestct_server_hostname = server_hostname  # read by connect()
    return context


def read_token(path: Path | str) -> str:
    """Read the shared secret from ``path`` (surrounding whitespace removed).

    Raises
    ------
    TransportError
        If the file is missing, readable by group or others, empty, too short or too long.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise TransportError(f"token file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise TransportError(f"token file {str(path)!r} is not a regular file")
    if info.st_mode & 0o077:
        raise TransportError(f"token file {str(path)!r} is readable by others (mode "
                             f"{stat.S_IMODE(info.st_mode):o}); run: chmod 600 {path}")
    if info.st_size > MAX_TOKEN_CHARS * 4 + 2:
        raise TransportError(f"token file {str(path)!r} is over {MAX_TOKEN_CHARS} characters")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TransportError(f"token file {str(path)!r} cannot be read as UTF-8 text: {exc}") from None
    if not token:
        raise TransportError(f"token file {str(path)!r} is empty")
    if len(token) < MIN_TOKEN_CHARS:
        raise TransportError(f"the token in {str(path)!r} has {len(token)} characters; use at least "
                             f"{MIN_TOKEN_CHARS} (e.g. openssl rand -hex 32)")
    if len(token) > MAX_TOKEN_CHARS:
        raise TransportError(f"the token in {str(path)!r} is over {MAX_TOKEN_CHARS} characters")
    return token


def token_matches(expected: str, msg: dict | None) -> bool:
    """Whether ``msg`` is an ``auth`` message carrying ``expected`` (constant-time comparison)."""
    if not isinstance(msg, dict) or msg.get("type") != "auth" or not isinstance(msg.get("token"), str):
        return False
    return hmac.compare_digest(msg["token"].encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (``""`` and ``0.0.0.0`` are not)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def exposure_problem(host: str, tls: bool, token: bool) -> str | None:
    """Why binding ``host`` with these protections needs ``--insecure``, or None when it does not."""
    if is_loopback(host) or (tls and token):
        return None
    missing = " and ".join(name for name, on in (("TLS", tls), ("a token", token)) if not on)
    return (f"--host {host!r} is reachable beyond this machine but the producer has no {missing}: anyone "
            "who can reach the port could read the stream")


def connect(host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
            server_hostname: str | None = None, token: str | None = None,
            timeout: float | None = 30.0) -> socket.socket:
    """Open a consumer connection: TCP, TLS when ``ssl_context`` is given, then ``auth`` when ``token`` is.

    The caller reads the ``hello`` next (``wire.recv_message``).

    Raises
    ------
    OSError, ssl.SSLError
        If the connection or the TLS handshake (certificate or hostname check) fails.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if ssl_context is not None:
            name = server_hostname or getattr(ssl_context, "chestct_server_hostname", None) or host
            sock = ssl_context.wrap_socket(sock, server_hostname=name)
        if token is not None:
            wire.send_message(sock, wire.auth(token))
    except BaseException:
        sock.close()
        raise
    return sock
