"""What a stream is: its files, batch plan, identity, and how one batch frame is built.

Batch ``seq`` of a stream is a pure function of the spec: epoch ``e = seq //
batches_per_epoch``, the epoch's order is ``np.random.default_rng((seed, e))``'s
permutation of the sorted files (or the sorted order without shuffling), and the
batch is the ``seq % batches_per_epoch``-th slice of it. Files that cannot be
decoded are left out of their batch and listed in its ``skipped`` field, so a
batch never borrows images from its neighbours and any batch can be rebuilt
byte for byte on its own.

Every file's content digest is recorded when the spec is made and is part of the
stream id; a file whose bytes differ when it is read again is never served under that
id (see :data:`CHANGED_FILE_POLICIES`).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import augment as augmenting
from . import dataset, imaging, reading, wire

log = logging.getLogger(__name__)

#: What happens to a batch holding a file that changed after the stream started:
#: ``fail`` answers it with a ``file_changed`` error frame, ``skip`` leaves the file out and names it.
CHANGED_FILE_POLICIES = ("fail", "skip")
DEFAULT_ON_CHANGED_FILE = "fail"


#: Images per batch unless ``--batch-size`` says otherwise.
DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class StreamSpec:
    """Everything that determines a stream's bytes.

    Attributes
    ----------
    split : str
        Split folder name (``train``, ``valid`` or ``test``).
    classes : tuple of str
        Sorted class names; a label is an index into it.
    files : tuple of ImageFile
        The split's images sorted by id.
    batch_size : int
        Images per batch (the last batch of an epoch may be smaller).
    preprocessing : Preprocessing
        Decoding and resizing settings.
    shuffle : bool
        Shuffle each epoch with a seeded permutation.
    seed : int
        Seed of the permutations.
    endless : bool
        Keep streaming epoch after epoch; ``seq`` keeps counting.
    root : Path or None
        The resolved dataset root; no file outside it is opened. ``None`` means the
        common folder of the files' split (specs built by hand in tests).
    on_changed_file : str
        One of :data:`CHANGED_FILE_POLICIES`.
    augment : int
        Augmented copies per picture that ``files`` holds (:func:`augmented_copies`); 0 for
        none. Part of the identity and the hello when not 0.
    """

    split: str
    classes: tuple[str, ...]
    files: tuple[dataset.ImageFile, ...]
    batch_size: int
    preprocessing: imaging.Preprocessing = field(default_factory=imaging.Preprocessing)
    shuffle: bool = True
    seed: int = 0
    endless: bool = False
    root: Path | None = None
    on_changed_file: str = DEFAULT_ON_CHANGED_FILE
    augment: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not self.files:
            raise ValueError("a stream needs at least one file")
        augmenting.check_copies(self.augment)
        if self.on_changed_file not in CHANGED_FILE_POLICIES:
            raise ValueError(f"on_changed_file must be one of {', '.join(CHANGED_FILE_POLICIES)}, "
                             f"got {self.on_changed_file!r}")
        if self.root is None:
            common = os.path.commonpath([os.path.realpath(f.path.parent) for f in self.files])
            object.__setattr__(self, "root", Path(common))

    @classmethod
    def from_directory(cls, directory: Path | str, split: str, progress: bool = False, augment: int = 0,
                       **kwargs) -> "StreamSpec":
        """Build the spec of ``directory``'s ``split`` (``dev`` means ``valid``), hashing every file.

        ``progress`` shows a bar while the files are hashed (they are read once here).
        ``augment`` copies of every picture are added (:func:`augmented_copies`). The
        library streams what it is asked for; the command line applies the product's
        default (:func:`producer.augment.default_copies`).
        """
        root = Path(directory).resolve()
        folder = dataset.split_folder(split)
        copies = augmenting.check_copies(augment)
        classes, files = dataset.list_images(root, split)
        prep = kwargs.get("preprocessing") or imaging.Preprocessing()
        files = augmented_copies(reading.digest_files(files, root, prep, progress=progress), copies)
        return cls(split=folder, classes=tuple(classes), files=files, root=root, augment=copies, **kwargs)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.files) / self.batch_size)

    @property
    def total_batches(self) -> int | None:
        """Batches in the whole stream; ``None`` when endless."""
        return None if self.endless else self.batches_per_epoch

    @property
    def total_images(self) -> int | None:
        """Images planned for the whole stream (skipped ones included); ``None`` when endless."""
        return None if self.endless else len(self.files)

    @functools.cached_property
    def stream_id(self) -> str:
        """SHA-256 (hex) of everything that determines the batches' bytes.

        Files count by content (digest), not by modification time: a copy of the dataset
        or a ``touch`` keeps the id, any changed byte changes it. ``endless``, ``root``
        and the changed-file policy are left out on purpose: batch ``k`` is the same
        either way, so a finite replay of an endless stream verifies against the same id.
        The limits are in: they decide which files are skipped.
        """
        identity = {
            "protocol": wire.PROTOCOL_VERSION,
            "split": self.split,
            "classes": list(self.classes),
            "files": [[f.id, f.label, f.size, f.digest, f.refused] for f in self.files],
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "preprocessing": self.preprocessing.describe(),
            "limits": self.preprocessing.limits(),
        }
        if self.augment:  # left out when off: the ids of unaugmented streams stay as they were
            identity["augment"] = augmenting.describe(self.augment)
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def hello(self) -> dict:
        """The ``hello`` message describing this stream."""
        return wire.hello(
            stream_id=self.stream_id, split=self.split, classes=self.classes,
            image_shape=self.preprocessing.image_shape, batch_size=self.batch_size,
            total_batches=self.total_batches, total_images=self.total_images,
            batches_per_epoch=self.batches_per_epoch, images_per_epoch=len(self.files),
            shuffle=self.shuffle, seed=self.seed, endless=self.endless,
            preprocessing=self.preprocessing.describe(), limits=self.preprocessing.limits(),
            on_changed_file=self.on_changed_file,
            **({"augment": augmenting.describe(self.augment)} if self.augment else {}),
        )

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Indices into ``files`` in the order of ``epoch``."""
        return _epoch_order(len(self.files), self.shuffle, self.seed, epoch)

    def plan(self, seq: int) -> tuple[int, list[dataset.ImageFile]]:
        """``(epoch, files)`` of batch ``seq``.

        Raises
        ------
        IndexError
            If ``seq`` is past the end of a finite stream.
        """
        if seq < 0 or (not self.endless and seq >= self.batches_per_epoch):
            raise IndexError(f"batch {seq} is outside the stream (total {self.total_batches})")
        epoch, index = divmod(seq, self.batches_per_epoch)
        order = self.epoch_order(epoch)
        picked = order[index * self.batch_size:(index + 1) * self.batch_size]
        return epoch, [self.files[i] for i in picked]


def augmented_copies(files, copies: int) -> tuple[dataset.ImageFile, ...]:
    """``files`` and ``copies`` augmented copies of each PNG/JPEG picture, sorted by id.

    Copy ``k`` of ``normal/7.png`` is ``normal/7.png#augment=k``: the same file, read and
    checked the same way, re-rendered at decode time with draws seeded by its content
    digest. Files that are refused or were not read (no digest) and DICOM files get no
    copies: the first are skipped anyway, the perturbations are defined on 8-bit pictures.
    """
    files = tuple(files)
    if not copies:
        return files
    extra = [dataclasses.replace(f, id=f"{f.id}#augment={k}", augment=k)
             for f in files
             if f.refused is None and f.digest is not None and f.frame is None
             and f.path.suffix.lower() in dataset.IMAGE_EXTENSIONS
             for k in range(1, copies + 1)]
    return tuple(sorted(files + tuple(extra), key=lambda f: f.id))


@functools.lru_cache(maxsize=8)
def _epoch_order(n_files: int, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    if shuffle:
        order = np.random.default_rng((seed, epoch)).permutation(n_files)
    else:
        order = np.arange(n_files)
    order.flags.writeable = False  # cached and shared between threads
    return order


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


def load_image(file: dataset.ImageFile, spec: "StreamSpec") -> np.ndarray | imaging.ImageSkipped:
    """Decoded pixels of ``file``, or the :class:`ImageSkipped` saying why there are none.

    A :class:`reading.ContentChanged` result under the ``fail`` policy is turned into a
    ``file_changed`` error by :func:`assemble_batch`.
    """
    try:
        prep = spec.preprocessing
        data = reading.read_image(file, spec.root, prep)
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
    except imaging.ImageSkipped as exc:
        _warn_skip(file.path, exc.reason)
        return exc


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
    """

    def __init__(self, spec: StreamSpec, seq: int, executor: concurrent.futures.Executor,
                 loop: asyncio.AbstractEventLoop, max_frame_bytes: int = wire.DEFAULT_MAX_FRAME_BYTES):
        self.seq = seq
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
            loaded = load_image(self.files[index], self._spec)
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
