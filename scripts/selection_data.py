"""The data of model selection (``scripts/select_model.py``): every split decoded as the
producer decodes it, cached, and the duplicate groups that keep twins on one side of a fold."""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from producer.imaging import Preprocessing, read_checked  # noqa: E402
from producer.imaging import decode as image_decode  # noqa: E402

SPLITS = ("train", "valid", "test")
NEAR_DUPLICATE_CORRELATION = 0.90


@dataclass
class Dataset:
    images: np.ndarray   # (N, S, S) uint8
    labels: np.ndarray   # (N,) class index
    splits: np.ndarray   # (N,) "train" | "valid" | "test"
    hashes: np.ndarray   # (N,) sha256 of the decoded full-size pixels
    classes: list[str]


def class_of(folder: str) -> str:
    """Class name of a split folder: the name up to the first "_"."""
    return folder.split("_", 1)[0]


def list_images(data: Path) -> list[tuple[str, str, Path]]:
    """(split, class, path) of every image, sorted."""
    out = []
    for split in SPLITS:
        for folder in sorted(p for p in (data / split).iterdir() if p.is_dir()):
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                    out.append((split, class_of(folder.name), path))
    if not out:
        raise SystemExit(f"no images under {data}/{{train,valid,test}}/<class>/")
    return out


#: The plain framing: the whole picture resized, as before producer.framing existed.
PLAIN = {"crop": "none", "aspect": "stretch", "normalize": "none"}


def hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of a square side or a pair."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def preprocessing(size: int | tuple[int, int], framing: dict) -> Preprocessing:
    """The producer's grey Preprocessing at ``size`` (side or (H, W)) with ``framing`` options.

    ``framing`` holds any other Preprocessing fields (crop, crop_margin, aspect,
    normalize, interpolation).
    """
    return Preprocessing(image_size=hw(size), color_mode="grayscale", **framing)


def decode(path: Path, prep: Preprocessing) -> tuple[np.ndarray, str]:
    """The producer's pixels for ``path`` (read_checked + decode) and the hash of the raw picture.

    The hash is of the full decoded picture before any preprocessing, so duplicate
    groups do not depend on the candidate.
    """
    import cv2

    raw = read_checked(path, prep)
    full = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if full is None:
        raise SystemExit(f"OpenCV cannot decode {path}")
    digest = hashlib.sha256(full.tobytes() + repr(full.shape).encode()).hexdigest()
    return image_decode(raw, prep)[..., 0], digest


def prep_key(prep: Preprocessing) -> str:
    return hashlib.sha256(json.dumps(prep.describe(), sort_keys=True).encode()).hexdigest()[:16]


def load_dataset(data: Path, size: int | tuple[int, int], cache: Path, framing: dict | None = None) -> Dataset:
    """All splits decoded through producer.imaging at ``size``; cached as an .npz per Preprocessing."""
    from tqdm import tqdm

    prep = preprocessing(size, framing or PLAIN)
    path = cache / f"images_{'x'.join(map(str, hw(size)))}_{prep_key(prep)}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return Dataset(z["images"], z["labels"], z["splits"], z["hashes"], [str(c) for c in z["classes"]])
    entries = list_images(data)
    classes = sorted({c for _, c, _ in entries})
    images, hashes = [], []
    for _, _, p in tqdm(entries, desc=f"decode {hw(size)} {framing or PLAIN}", unit="img"):
        img, digest = decode(p, prep)
        images.append(img)
        hashes.append(digest)
    ds = Dataset(np.stack(images), np.array([classes.index(c) for _, c, _ in entries]),
                 np.array([s for s, _, _ in entries]), np.array(hashes), classes)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=ds.images, labels=ds.labels, splits=ds.splits, hashes=ds.hashes,
             classes=np.array(classes))
    (path.with_suffix(".json")).write_text(json.dumps(prep.describe(), sort_keys=True) + "\n")
    return ds


def duplicate_groups(ds: Dataset, thumbs: np.ndarray, index: np.ndarray,
                     correlation: float = NEAR_DUPLICATE_CORRELATION) -> np.ndarray:
    """Group id per image of ``index``: exact and near duplicates share a group."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    same = ds.hashes[index][:, None] == ds.hashes[index][None, :]
    x = thumbs[index].reshape(len(index), -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    same |= (x @ x.T) >= correlation
    return connected_components(csr_matrix(same), directed=False)[1]
