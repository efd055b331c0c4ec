"""Reading dataset files: confined to the dataset root, size-checked, content-verified.

Every byte the producer decodes comes through :func:`read_image`:

* the path is resolved and must lie in the dataset root; the resolved path is then
  opened one component at a time with ``O_NOFOLLOW`` from a descriptor of the root, so
  a symlink swapped in after the check cannot lead the open outside (no check-then-use
  race);
* the file must still have the size and SHA-256 digest recorded when the stream was set
  up (:func:`digest_files`); otherwise it *changed* and its bytes are not served under
  the old stream id (:class:`ContentChanged`, handled by the stream's policy);
* the header's dimensions are checked before any pixel is allocated
  (:func:`producer.imaging.image_dimensions`).
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import os
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from . import dataset, imaging

CHUNK_BYTES = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class ContentChanged(imaging.ImageSkipped):
    """A file no longer has the size or content recorded when the stream started."""


def open_confined(path: Path | str, root: Path) -> int:
    """Open ``path`` for reading, refusing anything that resolves outside ``root``.

    Parameters
    ----------
    path : path
        File to open (may contain symlinks that stay inside ``root``).
    root : Path
        The resolved dataset root.

    Returns
    -------
    int
        An OS file descriptor; the caller closes it.

    Raises
    ------
    imaging.ImageSkipped
        ``"outside the dataset root"`` when the resolved path leaves ``root`` or a
        component turned into a symlink meanwhile; ``"cannot read file: ..."`` on an OS error.
    """
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        raise imaging.ImageSkipped(dataset.OUTSIDE_ROOT)
    parts = real.relative_to(root).parts
    if not parts:
        raise imaging.ImageSkipped("cannot read file: it is the dataset folder itself")
    fd = None
    try:
        fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        for i, part in enumerate(parts):
            flags = _FILE_FLAGS if i == len(parts) - 1 else _DIR_FLAGS
            child = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = child
        opened, fd = fd, None
        return opened
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symlink appeared after the check
            raise imaging.ImageSkipped(dataset.OUTSIDE_ROOT) from None
        raise imaging.ImageSkipped(f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    finally:
        if fd is not None:
            os.close(fd)


def content_digest(fh: io.BufferedIOBase | io.RawIOBase) -> str:
    """SHA-256 hex of what is left in ``fh``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    while chunk := fh.read(CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def _recorded(file: dataset.ImageFile, root: Path, prep: imaging.Preprocessing) -> dataset.ImageFile:
    """``file`` with the digest of its current content (None when it cannot or need not be read)."""
    if file.refused is not None or file.size > prep.max_file_bytes:
        return file
    try:
        fd = open_confined(file.path, root)
    except imaging.ImageSkipped:
        return file
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        digest = content_digest(fh)
    return dataclasses.replace(file, size=size, digest=digest)  # keeps a DICOM entry's frame


def digest_files(files: Iterable[dataset.ImageFile], root: Path, prep: imaging.Preprocessing,
                 progress: bool = False) -> tuple[dataset.ImageFile, ...]:
    """Record every file's content digest (read once, at start-up, with a progress bar).

    Parameters
    ----------
    files : iterable of ImageFile
    root : Path
        The resolved dataset root.
    prep : Preprocessing
        Files over ``prep.max_file_bytes`` are not read (they are skipped unread anyway).
    progress : bool
        Show a tqdm bar.
    """
    files = list(files)
    by_path: dict[Path, dataset.ImageFile] = {}  # the frames of one DICOM file share one read
    recorded = []
    with tqdm(files, desc="hashing files", unit="file", disable=not progress, mininterval=0.5) as bar:
        for f in bar:
            done = by_path.get(f.path) if f.frame is not None else None
            if done is None:
                done = by_path[f.path] = _recorded(f, root, prep)
            recorded.append(dataclasses.replace(f, size=done.size, digest=done.digest))
    return tuple(recorded)


def read_image(file: dataset.ImageFile, root: Path, prep: imaging.Preprocessing) -> bytes:
    """The bytes of ``file``, confined, checked against its recorded size and digest and its header.

    Raises
    ------
    ContentChanged
        If the size or digest differs from what :func:`digest_files` recorded.
    imaging.ImageSkipped
        If the file is refused, outside the root, too big, unreadable, or its header is
        not a PNG/JPEG one within the pixel limit.
    """
    if file.refused is not None:
        raise imaging.ImageSkipped(file.refused)
    fd = open_confined(file.path, root)
    with os.fdopen(fd, "rb") as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            if size != file.size:
                raise ContentChanged(f"file changed since the stream started: {file.size} bytes then, "
                                     f"{size} now")
            if size > prep.max_file_bytes:
                raise imaging.ImageSkipped(f"file is {size / 2**20:.0f} MiB, over the "
                                           f"{prep.max_file_bytes / 2**20:.0f} MiB limit")
            data = fh.read(size + 1)  # one more byte tells a file that grew meanwhile
        except OSError as exc:
            raise imaging.ImageSkipped(f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    if len(data) != file.size or hashlib.sha256(data).hexdigest() != file.digest:
        raise ContentChanged("file changed since the stream started: its content digest differs")
    header = io.BytesIO(data)
    kind, width, height = imaging.image_dimensions(header)
    imaging._check_dimensions(kind, width, height, prep.max_image_pixels)
    return data
