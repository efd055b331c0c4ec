"""Preprocessed images kept for the next time a batch holds them: replays and later epochs.

A Spark consumer replays a micro-batch's range after a failure, several consumers may
read the same split, and an endless stream serves every file again each epoch: without
a cache each of those decodes the file again (PNG inflate, OpenCV, framing: about 3 ms
per 512 px slice). The cache keeps the first images decoded, up to a byte budget, and
then admits nothing more. With shuffled epochs every image comes back once per epoch in
a new order, so keeping a fixed set serves ``budget / split size`` of them from memory
every epoch; a least-recently-used policy would evict most images just before their
turn comes again.

Only the decode is saved: the file is still read and its content checked against the
digest in the stream id every time (a changed file is reported as before, see
``--on-changed-file``), so a cached image is always the one decoded from the id's bytes.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable

import numpy as np

#: Default of ``--image-cache-bytes``: the real train split's 613 slices at the default
#: 512 x 512 grey take 157 MiB, the test split's 315 take 79 MiB.
DEFAULT_IMAGE_CACHE_BYTES = 256 * 2**20


class ImageCache:
    """Read-only images by key within a byte budget.

    By default the first images offered are kept until the budget is full and nothing
    more is admitted (see the module docs); with ``lru`` the least recently used ones make
    room instead (the augmentation's picture cache, whose copies follow their picture
    within an epoch). Thread-safe: the decoding pool's and the read-ahead's workers share
    one cache.

    Parameters
    ----------
    limit_bytes : int
        Bytes of pixels held at most; 0 keeps nothing.
    lru : bool
        Evict the least recently used images for new ones instead of keeping the first.
    """

    def __init__(self, limit_bytes: int = DEFAULT_IMAGE_CACHE_BYTES, lru: bool = False):
        if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or limit_bytes < 0:
            raise ValueError(f"the image cache's budget must be an integer >= 0 bytes, got {limit_bytes!r}")
        self.limit_bytes = limit_bytes
        self.lru = lru
        self.nbytes = 0
        #: Lookups answered from memory, and those that were not (for logs and tests).
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> np.ndarray | None:
        """The image stored under ``key``, or None."""
        with self._lock:
            image = self._items.get(key)
            if image is None:
                self.misses += 1
                return None
            self.hits += 1
            if self.lru:
                self._items.move_to_end(key)
            return image

    def put(self, key: Hashable, image: np.ndarray) -> np.ndarray:
        """Keep ``image`` under ``key`` if the policy makes room for it; returns it
        read-only (it may be shared between batches from now on)."""
        image.flags.writeable = False
        if image.nbytes > self.limit_bytes:
            return image
        with self._lock:
            if key in self._items:
                return image
            while self.lru and self.nbytes + image.nbytes > self.limit_bytes:
                _, dropped = self._items.popitem(last=False)
                self.nbytes -= dropped.nbytes
            if self.nbytes + image.nbytes <= self.limit_bytes:
                self._items[key] = image
                self.nbytes += image.nbytes
        return image

    def describe(self) -> str:
        return (f"{len(self._items)} images, {self.nbytes / 2**20:.0f} of {self.limit_bytes / 2**20:.0f} MiB; "
                f"{self.hits} hits, {self.misses} misses")
