"""The image folder layout: ``<root>/<split>/<class folder>/<image>``.

A class is the class folder's name up to its first ``"_"`` (the real chest CT
set suffixes train/valid folders with staging details that test folders lack),
and a class index is its position in the sorted class names of *all* splits, so
every split of one dataset agrees on the labels.

Nothing outside the dataset root is ever opened: an entry whose resolved path (symlinks
followed) leaves the root is listed with a ``refused`` reason, keeps its place in the
batch plan and is reported as skipped there, so it is named and counted like a file that
cannot be decoded (see :mod:`producer.reading` for the check at open time).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from . import dicom

SPLITS = ("train", "valid", "test")
#: Names accepted for a split, mapped to its folder.
SPLIT_ALIASES = {"train": "train", "valid": "valid", "dev": "valid", "test": "test"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
OUTSIDE_ROOT = "outside the dataset root"


class DatasetError(ValueError):
    """The dataset folder is missing, incomplete or holds no images."""


@dataclass(frozen=True)
class ImageFile:
    """One image of a split.

    Attributes
    ----------
    id : str
        Path relative to the split folder with ``/`` separators, e.g. ``"normal/7.png"``.
    path : Path
        Absolute path of the file.
    label : int
        Class index.
    size : int
        File size in bytes (part of the stream identity).
    mtime_ns : int
        Modification time in nanoseconds (logged when it changes; the content digest
        decides whether the file changed).
    digest : str or None
        SHA-256 hex of the content, recorded when the stream is set up (None when it was
        not read: refused, unreadable or over the size limit).
    refused : str or None
        Why the entry is never opened (e.g. it resolves outside the dataset root).
    frame : int or None
        1-based frame of a multi-frame DICOM file (its id ends in ``#frame=N``).
    augment : int or None
        Augmented copy number (from 1) of a training picture: the file's bytes re-rendered
        by :func:`producer.augment.rerender` (its id ends in ``#augment=N``).
    """

    id: str
    path: Path
    label: int
    size: int
    mtime_ns: int
    digest: str | None = None
    refused: str | None = None
    frame: int | None = None
    augment: int | None = None


def class_name(folder_name: str) -> str:
    """Normalise a class folder name: everything before the first ``"_"``.

    >>> class_name("adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib")
    'adenocarcinoma'
    """
    return folder_name.split("_", 1)[0]


def split_folder(split: str) -> str:
    """Folder name of a split; ``dev`` is an alias of ``valid``.

    Raises
    ------
    DatasetError
        For an unknown split name.
    """
    try:
        return SPLIT_ALIASES[split]
    except KeyError:
        raise DatasetError(f"unknown split {split!r}: use one of {', '.join(SPLIT_ALIASES)}") from None


def is_inside(path: Path | str, root: Path) -> bool:
    """Whether ``path``, symlinks resolved, lies in ``root`` (an already resolved folder)."""
    return Path(os.path.realpath(path)).is_relative_to(root)


def _class_folders(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_names(root: Path | str) -> list[str]:
    """Sorted class names over every split folder present under ``root``.

    Raises
    ------
    DatasetError
        If ``root`` is not a folder or no split folder holds a class folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {str(root)!r} does not exist or is not a folder")
    names = {class_name(folder.name)
             for split in SPLITS if (root / split).is_dir()
             for folder in _class_folders(root / split)}
    names.discard("")
    if not names:
        raise DatasetError(f"{str(root)!r} has no class folders under any of {', '.join(SPLITS)}")
    return sorted(names)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _frames(entry: ImageFile) -> list[ImageFile]:
    """A DICOM entry, one per frame (``id#frame=N``, N from 1); a single-frame file keeps its id."""
    frames = dicom.count_frames(entry.path)  # header only
    if frames == 1:
        return [entry]
    return [dataclasses.replace(entry, id=f"{entry.id}#frame={n}", frame=n) for n in range(1, frames + 1)]


def list_images(root: Path | str, split: str) -> tuple[list[str], list[ImageFile]]:
    """List the images of one split.

    Parameters
    ----------
    root : path
        Dataset folder holding ``train``/``valid``/``test``.
    split : str
        ``train``, ``valid`` (alias ``dev``) or ``test``.

    Returns
    -------
    classes : list of str
        Sorted class names shared by every split.
    files : list of ImageFile
        Every ``.png``/``.jpg``/``.jpeg`` file (any case) of the split and every DICOM
        file (``.dcm``, or any name with the ``DICM`` magic; one entry per frame),
        sorted by id.

    Raises
    ------
    DatasetError
        If the folder or the split folder is missing, or the split holds no image.
    """
    root = Path(root).resolve()
    classes = class_names(root)
    split_dir = root / split_folder(split)
    if not split_dir.is_dir():
        raise DatasetError(f"split folder {str(split_dir)!r} does not exist")
    if not is_inside(split_dir, root):
        raise DatasetError(f"split folder {str(split_dir)!r} resolves outside the dataset folder")
    index = {name: i for i, name in enumerate(classes)}
    files = []
    for folder in _class_folders(split_dir):
        label = index.get(class_name(folder.name))
        if label is None:  # a folder named "_x": no class name to give it
            continue
        if not is_inside(folder, root):  # listed, never entered
            files.append(_refused(folder, split_dir, label, f"class folder {OUTSIDE_ROOT}"))
            continue
        files.extend(_walk(folder, root, split_dir, label, {Path(os.path.realpath(folder))}))
    if not files:
        raise DatasetError(
            f"no images ({'/'.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}/DICOM) found in class folders "
            f"of {str(split_dir)!r}")
    files.sort(key=lambda f: f.id)
    return classes, files


def _refused(path: Path, split_dir: Path, label: int, reason: str) -> ImageFile:
    stat = path.lstat()  # the link itself: nothing of its target is read
    return ImageFile(id=path.relative_to(split_dir).as_posix(), path=path, label=label,
                     size=stat.st_size, mtime_ns=stat.st_mtime_ns, refused=reason)


def _walk(folder: Path, root: Path, split_dir: Path, label: int, seen: set[Path]) -> list[ImageFile]:
    """Images under ``folder``; symlinks leaving ``root`` become refused entries, loops are cut."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        inside = is_inside(path, root)
        if path.is_dir():
            real = Path(os.path.realpath(path))
            if not inside:
                found.append(_refused(path, split_dir, label, f"folder {OUTSIDE_ROOT}"))
            elif real not in seen:  # a link back to an ancestor would never end
                found.extend(_walk(path, root, split_dir, label, seen | {real}))
        # DICOM: a .dcm name, or (read only inside the root) the DICM magic of any other name
        elif _is_image(path) or dicom.is_dicom_name(path) or (inside and path.is_file() and dicom.has_magic(path)):
            if not inside:
                found.append(_refused(path, split_dir, label, OUTSIDE_ROOT))
            elif path.is_file():
                stat = path.stat()
                entry = ImageFile(id=path.relative_to(split_dir).as_posix(), path=path, label=label,
                                  size=stat.st_size, mtime_ns=stat.st_mtime_ns)
                found.extend([entry] if _is_image(path) else _frames(entry))
    return found


def describe(root: Path | str) -> dict[str, dict[str, int]]:
    """Image counts per class for every split present: ``{split: {class: count}}``."""
    out: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        if not (Path(root) / split).is_dir():
            continue
        classes, files = list_images(root, split)
        counts = dict.fromkeys(classes, 0)
        for f in files:
            counts[classes[f.label]] += 1
        out[split] = counts
    return out
