"""What a stream is: its files, batch plan and identity (its frames: :mod:`producer.batch`).

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

import dataclasses
import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import augment as augmenting
from . import dataset, imaging, reading, wire

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
