"""What the user sees: one console for progress bars and lines, a quiet JVM, short errors.

* Lines go through :func:`emit` (``tqdm.write``), so they never land inside a progress bar.
* The JVM's start-up noise (the log4j profile banner, NativeCodeLoader, incubator modules,
  "Setting default log level") is filtered out of its stderr at the default log level and
  shown at DEBUG: the JVM and its Python workers write into a pipe that :class:`JvmOutput`
  forwards line by line.
* After Ctrl-C the JVM's and py4j's shutdown chatter is muted, so that the command prints
  one line and exits 130.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import warnings
from pathlib import Path

EXIT_INTERRUPTED = 130
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")

#: JVM stderr lines that say nothing to a user of chestct.
_NOISE = re.compile(
    r"Using Spark's default log4j profile|NativeCodeLoader|Using incubator modules|"
    r"Setting default log level to|To adjust logging level use sc\.setLogLevel|"
    r"For SparkR, use setLogLevel|WARNING: Using incubator|incubator\.vector")
# Exceptions Spark wraps Python errors in; the informative part follows the marker.
_ERROR_MARKERS = ("BadBatch: ", "StreamMismatch: ", "ProducerError: ", "ProducerUnavailable: ",
                  "OptionError: ", "ModelMismatch: ", "ModelRefused: ", "StreamRefused: ")


def emit(line: str) -> None:
    """Print one line on stdout above any progress bar.

    The bar is cleared, the line written *and flushed*, then the bar redrawn: a line left
    in stdout's buffer would otherwise land after the redrawn bar, on its line.
    """
    from tqdm import tqdm

    with tqdm.external_write_mode(file=sys.stdout):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def configure_logging(level: str) -> None:
    """Log records to stderr through the same console as the progress bars."""
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("py4j", "py4j.clientserver", "py4j.java_gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level == "DEBUG" else logging.ERROR)


class _TqdmHandler(logging.StreamHandler):
    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        if _MUTED.is_set() and not record.name.startswith("chestct"):
            return  # after Ctrl-C only chestct's own records are news
        try:
            with tqdm.external_write_mode(file=sys.stderr):
                sys.stderr.write(self.format(record) + "\n")
                sys.stderr.flush()
        except Exception:  # logging must never raise
            self.handleError(record)


_MUTED = threading.Event()


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C, or an error raised while Ctrl-C unwound.

    py4j handles a KeyboardInterrupt inside a gateway call by shutting the call's
    connection down; when that connection is already closed it raises ``Py4JError``
    ("Gateway must be connected ...") over the interrupt, which stays its context.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__context__
    return False


def mute() -> None:
    """After Ctrl-C: the JVM's and py4j's shutdown errors are the shutdown, not news.

    Python warnings too: pyspark warns with the JVM's whole stack trace when Ctrl-C
    cancels the job behind a ``toPandas`` collect.
    """
    _MUTED.set()
    warnings.simplefilter("ignore")
    for noisy in ("py4j", "py4j.clientserver", "py4j.java_gateway", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL + 1)


def mute_on_interrupt() -> None:
    """Mute *before* the KeyboardInterrupt unwinds through py4j (which logs what it interrupts).

    Call after the SparkContext exists: it chains to the SIGINT handler pyspark installed
    (which cancels the running jobs, then raises KeyboardInterrupt).
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        mute()
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


@contextlib.contextmanager
def interrupt_deferred():
    """Hold a Ctrl-C that arrives inside the block until the block is done, then deliver it.

    For work that must finish whole once begun, such as publishing a model version and
    recording it as the next one's parent. A second Ctrl-C inside the block raises at once.
    Only the main thread receives signals, so elsewhere this does nothing.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    held: list[tuple[int, object]] = []

    def hold(signum, frame):
        if held:  # a second Ctrl-C: the user means it
            raise KeyboardInterrupt
        held.append((signum, frame))

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        if callable(previous):
            previous(*held[0])
        raise KeyboardInterrupt


def java_options(level: str) -> str:
    """``spark.driver.extraJavaOptions``: our log4j2 configuration at the log level, and the
    class-data archive when there is one (:mod:`consumer.jvm_classes`)."""
    from .jvm_classes import java_option

    root = "INFO" if level == "DEBUG" else "WARN"
    return " ".join(filter(None, (f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}",
                                  f"-Dchestct.log.level={root}", java_option())))


class JvmOutput:
    """Forward the JVM's stderr (inherited by it at launch) line by line, minus the noise.

    Use as a context manager around the session start: while inside, fd 2 is a pipe that
    a daemon thread reads; the JVM launched meanwhile keeps that pipe as its stderr for
    its whole life, Python gets the real stderr back on exit.
    """

    def __init__(self, show_all: bool = False):
        self.show_all = show_all
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "JvmOutput":
        try:
            sys.stderr.flush()
            read_fd, write_fd = os.pipe()
            self._saved = os.dup(2)
        except OSError:
            return self  # no fd 2 to redirect (an embedded interpreter): leave it
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, args=(read_fd, self._saved),
                                        name="chestct-jvm-stderr", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            sys.stderr.flush()
            os.dup2(self._saved, 2)

    def _pump(self, read_fd: int, out_fd: int) -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    return
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._forward(raw.decode("utf-8", "replace"), out_fd)

    def _forward(self, line: str, out_fd: int) -> None:
        if _MUTED.is_set() or (not self.show_all and _NOISE.search(line)):
            return
        try:
            from tqdm import tqdm

            with tqdm.external_write_mode(file=sys.stderr):
                os.write(out_fd, (line + "\n").encode("utf-8", "replace"))
        except OSError:
            pass


def short_error(exc: BaseException) -> str:
    """The informative part of an exception (Spark wraps Python errors in long traces)."""
    text = str(exc)
    for marker in _ERROR_MARKERS:
        if marker in text:
            return marker.rstrip(": ") + ": " + text.split(marker, 1)[1].splitlines()[0]
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"{type(exc).__name__}: {first}"
