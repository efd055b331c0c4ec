"""One batch frame: its images loaded and checked, its frame encoded, one pool task per image.

Which files batch ``seq`` holds is the stream's plan (:meth:`producer.stream.StreamSpec.plan`);
this module turns them into the frame's bytes, the same whether the images are decoded one
after the other (:func:`build_batch`) or in parallel (:class:`ParallelBatch`). A file that
cannot be decoded is left out and named in the frame's ``skipped`` field, with a reason
that carries no absolute path.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import augment as augmenting
from . import dataset, imaging, reading, wire
from .image_cache import ImageCache

if TYPE_CHECKING:
    from .stream import StreamSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltBatch:
    """One encoded batch frame and what it holds (for the ``end`` counts)."""

    seq: int
    frame: bytes
    images: int
    skipped: tuple[dict, ...]


_warned_lock = threading.Lock()
_warned: set[str] = set()


def _warn_skip(path: Path, reason: str) -> None:
    """Warn once per file and process; later skips of the same file go to debug."""
    key = str(path)
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    (log.warning if first else log.debug)("skipping %s: %s", path, reason)


# An absolute path (a file's, or a library's source file in its error text) never goes on the wire.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/[^\s'\"():,;]+")


def public_reason(reason: str, file: dataset.ImageFile) -> str:
    """A skip reason fit for the wire: no absolute path, no control characters, bounded length."""
    text = reason.replace(str(file.path), file.id)
    text = _ABSOLUTE_PATH.sub("<path>", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return wire.printable(text)


def load_image(file: dataset.ImageFile, spec: "StreamSpec",
               cache: ImageCache | None = None) -> np.ndarray | imaging.ImageSkipped:
    """Decoded pixels of ``file``, or the :class:`ImageSkipped` saying why there are none.

    The file is read and its content checked every time. With a ``cache``, pixels decoded
    before from the same content are taken from it (read-only) instead of decoding again,
    and newly decoded ones are offered to it; skipped files are never cached. A
    :class:`reading.ContentChanged` result under the ``fail`` policy is turned into a
    ``file_changed`` error by :func:`assemble_batch`.
    """
    try:
        data = reading.read_image(file, spec.root, spec.preprocessing)
        key = (file.id, file.digest)
        cached = None if cache is None else cache.get(key)
        if cached is not None:
            return cached
        image = _pixels(file, spec, data)
    except imaging.ImageSkipped as exc:
        _warn_skip(file.path, exc.reason)
        return exc
    return image if cache is None else cache.put(key, image)


def _pixels(file: dataset.ImageFile, spec: "StreamSpec", data: bytes) -> np.ndarray:
    """The preprocessed pixels of ``file``'s checked bytes ``data`` (an augmented copy re-rendered first).

    Raises
    ------
    imaging.ImageSkipped
        If they cannot be decoded.
    """
    prep = spec.preprocessing
    copy = None
    if file.augment is not None:
        try:
            copy, quality = augmenting.perturb(augmenting.pictures.picture(file.digest, data),
                                               augmenting.perturbation_of(file.augment),
                                               augmenting.copy_rng(file.digest, file.augment))
            if quality is not None:
                data, copy = augmenting.encode(copy, quality), None
        except ValueError as exc:
            raise imaging.ImageSkipped(f"augmented copy {file.augment}: {exc}") from None
    if copy is not None:  # a PNG copy: lossless, so its decoded pixels are known without the round trip
        return imaging.preprocess(augmenting.as_png_decoded(copy, grey=prep.color_mode == "grayscale"), prep)
    return imaging.decode(data, prep, frame=file.frame)


def assemble_batch(spec: "StreamSpec", seq: int, epoch: int, files: list[dataset.ImageFile],
                   loaded: list[np.ndarray | imaging.ImageSkipped],
                   max_frame_bytes: int = wire.DEFAULT_MAX_FRAME_BYTES) -> BuiltBatch:
    """Encode batch ``seq`` from its files' :func:`load_image` results (in plan order).

    Raises
    ------
    wire.FileChanged
        If a file changed since the stream started and the policy is ``fail``.
    wire.FrameTooLarge
        If the frame exceeds ``max_frame_bytes``.
    """
    prep = spec.preprocessing
    pixels = np.empty((len(files), *prep.image_shape), dtype=np.uint8)
    ids: list[str] = []
    labels: list[int] = []
    skipped: list[dict] = []
    for f, result in zip(files, loaded, strict=True):
        if isinstance(result, reading.ContentChanged) and spec.on_changed_file == "fail":
            raise wire.FileChanged(
                f"batch {seq}: {f.id}: {public_reason(result.reason, f)}; it is not served under stream id "
                f"{spec.stream_id[:12]} (restart the producer to serve the new content under a new id)", seq=seq)
        if isinstance(result, imaging.ImageSkipped):
            skipped.append({"id": f.id, "reason": public_reason(result.reason, f)})
            continue
        pixels[len(ids)] = result
        ids.append(f.id)
        labels.append(f.label)
    frame = wire.batch_frame(seq=seq, epoch=epoch, ids=ids, labels=labels, pixels=pixels[:len(ids)],
                             skipped=skipped, max_frame_bytes=max_frame_bytes)
    return BuiltBatch(seq=seq, frame=frame, images=len(ids), skipped=tuple(skipped))


def build_batch(spec: StreamSpec, seq: int, max_frame_bytes: int = wire.DEFAULT_MAX_FRAME_BYTES) -> BuiltBatch:
    """Decode batch ``seq``'s images one after the other and encode its frame.

    Raises
    ------
    IndexError
        If ``seq`` is outside the stream.
    wire.FileChanged
        If a file changed since the stream started and the policy is ``fail``.
    wire.FrameTooLarge
        If the frame exceeds ``max_frame_bytes``.
    """
    epoch, files = spec.plan(seq)
    loaded = [load_image(f, spec) for f in files]
    return assemble_batch(spec, seq, epoch, files, loaded, max_frame_bytes)


class ParallelBatch:
    """Build one batch with one thread-pool task per image; same bytes as :func:`build_batch`.

    Image-sized tasks keep every worker busy to the end of a stream (whole-batch tasks
    leave one idle while another finishes the last batch) and let one slow file hold up
    one worker only. The task that decodes the last image assembles the frame, so the
    event loop is woken once per batch, through :attr:`future`.

    Parameters
    ----------
    spec : StreamSpec
    seq : int
        Batch to build.
    executor : concurrent.futures.Executor
        Shared decoding pool.
    loop : asyncio.AbstractEventLoop
        Loop owning :attr:`future`.
    max_frame_bytes : int
        Frame limit (a bigger batch fails with :class:`wire.FrameTooLarge`).
    cache : ImageCache, optional
        Preprocessed images shared with the other batches (:func:`load_image`).
    """

    def __init__(self, spec: StreamSpec, seq: int, executor: concurrent.futures.Executor,
                 loop: asyncio.AbstractEventLoop, max_frame_bytes: int = wire.DEFAULT_MAX_FRAME_BYTES,
                 cache: ImageCache | None = None):
        self.seq = seq
        self._cache = cache
        self.epoch, self.files = spec.plan(seq)
        self.future: asyncio.Future = loop.create_future()
        self._spec = spec
        self._loop = loop
        self._max_frame_bytes = max_frame_bytes
        self._loaded: list = [None] * len(self.files)
        self._settled = [False] * len(self.files)
        self._remaining = len(self.files)
        self._lock = threading.Lock()
        self._tasks = [executor.submit(self._load, i) for i in range(len(self.files))]
        if not self.files:  # plans never make empty batches, but never leave a future hanging
            self._finish()

    def cancel(self) -> None:
        """Drop the batch: unstarted image tasks are cancelled, the result is discarded."""
        for task in self._tasks:
            task.cancel()
        self.future.cancel()

    def move_to(self, executor: concurrent.futures.Executor) -> None:
        """Build the images not finished yet on ``executor``: those not started move there,
        those running start again there, and the first of two runs to finish counts (the
        same pixels either way). The batch then never waits for the old pool's threads."""
        with self._lock:
            unfinished = [i for i, done in enumerate(self._settled) if not done]
        for i in unfinished:
            self._tasks[i].cancel()
            self._tasks[i] = executor.submit(self._load, i)

    def _load(self, index: int) -> None:
        try:
            loaded = load_image(self.files[index], self._spec, self._cache)
        except Exception as exc:  # a bug, not a bad file: reported through the future
            loaded = exc
        with self._lock:
            if self._settled[index]:  # the other run of a moved image finished first
                return
            self._settled[index] = True
            self._loaded[index] = loaded
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            self._finish()

    def _finish(self) -> None:
        failure = next((r for r in self._loaded if isinstance(r, Exception)
                        and not isinstance(r, imaging.ImageSkipped)), None)
        try:
            if failure is not None:
                raise failure
            outcome = assemble_batch(self._spec, self.seq, self.epoch, self.files, self._loaded,
                                     self._max_frame_bytes)
            deliver = self.future.set_result
        except Exception as exc:
            outcome, deliver = exc, self.future.set_exception
        try:
            self._loop.call_soon_threadsafe(_settle, self.future, deliver, outcome)
        except RuntimeError:  # the loop is closed: nobody waits for this batch any more
            pass


def _settle(future: asyncio.Future, deliver, outcome) -> None:
    if not future.done():
        deliver(outcome)


def max_batch_frame_bytes(spec: StreamSpec) -> int:
    """Upper bound of a batch frame's payload for ``spec`` when no file is skipped.

    Skip reasons add a little; :func:`build_batch` still enforces the real limit.
    """
    n = spec.batch_size
    pixel_bytes = n * math.prod(spec.preprocessing.image_shape)
    longest_ids = sorted((len(f.id.encode("utf-8")) for f in spec.files), reverse=True)[:n]
    # ids may need JSON escaping (at most 6 bytes per byte); 16 bytes per label; fixed fields.
    return 4 * math.ceil(pixel_bytes / 3) + 6 * sum(longest_ids) + 16 * n + 512
