"""The image folder layout: ``<root>/<split>/<class folder>/<image>``.

A class is the class folder's name up to its first ``"_"`` (the real chest CT
set suffixes train/valid folders with staging details that test folders lack),
and a class index is its position in the sorted class names of *all* splits, so
every split of one dataset agrees on the labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import dicom

SPLITS = ("train", "valid", "test")
#: Names accepted for a split, mapped to its folder.
SPLIT_ALIASES = {"train": "train", "valid": "valid", "dev": "valid", "test": "test"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


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
        Modification time in nanoseconds (part of the stream identity).
    frame : int or None
        1-based frame of a multi-frame DICOM file (its id ends in ``#frame=N``).
    """

    id: str
    path: Path
    label: int
    size: int
    mtime_ns: int
    frame: int | None = None


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


def _is_dicom(path: Path) -> bool:
    return not path.name.startswith(".") and dicom.is_dicom(path)


def _dicom_entries(file_id: str, path: Path, label: int, stat) -> list[ImageFile]:
    """One entry per frame (``id#frame=N``, N from 1); a single-frame file keeps its plain id."""
    frames = dicom.count_frames(path)
    if frames == 1:
        return [ImageFile(id=file_id, path=path, label=label, size=stat.st_size, mtime_ns=stat.st_mtime_ns)]
    return [ImageFile(id=f"{file_id}#frame={n}", path=path, label=label, size=stat.st_size,
                      mtime_ns=stat.st_mtime_ns, frame=n) for n in range(1, frames + 1)]


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
    index = {name: i for i, name in enumerate(classes)}
    files = []
    for folder in _class_folders(split_dir):
        label = index.get(class_name(folder.name))
        if label is None:  # a folder named "_x": no class name to give it
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            if not _is_image(path):
                if _is_dicom(path):
                    files.extend(_dicom_entries(path.relative_to(split_dir).as_posix(), path, label, path.stat()))
                continue
            stat = path.stat()
            files.append(ImageFile(id=path.relative_to(split_dir).as_posix(), path=path, label=label,
                                   size=stat.st_size, mtime_ns=stat.st_mtime_ns))
    if not files:
        raise DatasetError(
            f"no images ({'/'.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}/DICOM) found in class folders "
            f"of {str(split_dir)!r}")
    files.sort(key=lambda f: f.id)
    return classes, files


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
