"""Acquisition perturbations, and the augmented training copies the producer streams with them.

A slice from another scanner or export differs in contrast and brightness, gamma, a few
degrees of rotation, sensor noise and lossy compression. :func:`rerender` applies these
to the bytes of a picture and returns new picture bytes, which then go through the usual
decode and framing (:func:`producer.imaging.decode`), exactly as a re-rendered file would.
The producer serves a PNG copy without that round trip (:func:`as_png_decoded` gives the
pixels the decoder would), so only JPEG copies are encoded and decoded again.

Two users share these definitions (one owner):

* ``scripts/robustness.py`` re-renders the test split with them (seeded per image) and
  reports the macro-F1 drop;
* the producer adds ``--augment N`` perturbed copies of every picture to a stream, so a
  model trained on it learns to ignore acquisition changes (grouped CV of this lever:
  docs/model-selection.md, issue 12, stage 8). A copy's draws are seeded by the
  picture's content digest and the copy's number, never by the robustness seeds, so a
  batch can be rebuilt byte for byte and no evaluation draw is ever trained on.

Perturbations (on the decoded picture, alpha dropped, 16-bit scaled to 8):

* ``contrast``: levels times U(0.85, 1.15) plus U(-15, 15);
* ``gamma``: levels ** U(0.8, 1.25) on [0, 1];
* ``rotation``: U(-5, 5) degrees about the centre, black fill;
* ``noise``: Gaussian sensor noise, sigma 5 levels;
* ``jpeg``: saved as JPEG, quality U(60, 85);
* ``all``: all of the above in that order.
"""
from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np

from .image_cache import ImageCache

CONTRAST = (0.85, 1.15)
BRIGHTNESS = (-15.0, 15.0)
GAMMA = (0.8, 1.25)
ROTATION_DEGREES = 5.0
NOISE_SIGMA = 5.0
JPEG_QUALITY = (60, 85)

#: The perturbation of each augmented copy, in turn: copy ``k`` gets entry ``(k - 1) % 5``.
#: One change per copy and then all of them together: grouped CV (docs/model-selection.md,
#: issue 12, stage 8) keeps clean macro-F1 with these (0.912 against 0.919 unaugmented) and
#: drops 0.006 under noise and 0.024 under all changes; copies with all changes only
#: (0.896 clean) or noise only (0.108 drop under all) do not.
COPY_PERTURBATIONS = ("noise", "contrast", "rotation", "jpeg", "all")
#: Augmented copies of every picture on a ``train`` stream when ``--augment`` is not given
#: (one of each of COPY_PERTURBATIONS); other splits get none: they are measured as acquired.
DEFAULT_TRAIN_COPIES = len(COPY_PERTURBATIONS)
#: Largest ``--augment``: each copy costs a decode, a PNG/JPEG round trip and a feature vector.
MAX_COPIES = 2 * len(COPY_PERTURBATIONS)
#: First entry of a copy's seed sequence; scripts/robustness.py seeds with ``[seed, index, i]``
#: (small integers), so the two never draw the same numbers.
SEED_TAG = 0x12A06


def _levels(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.astype(np.float32) * rng.uniform(*CONTRAST) + rng.uniform(*BRIGHTNESS)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lut = (255.0 * (np.arange(256) / 255.0) ** rng.uniform(*GAMMA)).round().astype(np.uint8)
    return cv2.LUT(image, lut)


def _rotation(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES), 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # In place on the draws: the same numbers as clip(image + noise).round(), without the
    # three full-size temporaries (this step was the producer's costliest).
    out = rng.normal(0, NOISE_SIGMA, image.shape)
    out += image
    np.clip(out, 0, 255, out=out)
    np.rint(out, out=out)
    return out.astype(np.uint8)


#: Pixel perturbations; ``jpeg`` is the file format, applied when the picture is encoded.
PIXEL_STEPS: dict[str, Callable] = {"contrast": _levels, "gamma": _gamma, "rotation": _rotation, "noise": _noise}
PERTURBATIONS = (*PIXEL_STEPS, "jpeg", "all")


def _check(perturbation: str) -> None:
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {', '.join(PERTURBATIONS)}, got {perturbation!r}")


def picture(data: bytes) -> np.ndarray:
    """The 8-bit grey or BGR pixels of PNG/JPEG ``data`` (alpha dropped, 16-bit scaled to 8).

    Raises
    ------
    ValueError
        If OpenCV cannot decode ``data``.
    """
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("OpenCV cannot decode the picture to perturb")
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


#: Bytes of decoded pictures kept for their next augmented copies. The shuffle spreads a
#: picture's copies over the epoch; this holds about 40% of the real train split's 613
#: decoded pictures (321 MiB), enough for most copies to find theirs.
PICTURE_CACHE_BYTES = 128 * 2**20


class PictureCache:
    """Decoded pictures (:func:`picture`) by content digest, within a byte budget.

    Every augmented copy starts from its picture's pixels; decoding the same bytes again
    for each copy was a fifth of the producer's work on the default train stream. The
    least recently used picture goes first (an :class:`~producer.image_cache.ImageCache`
    with ``lru``); the arrays are read-only, since every copy shares them. Thread-safe:
    the decoding pool's workers share one cache.
    """

    def __init__(self, limit_bytes: int = PICTURE_CACHE_BYTES):
        if isinstance(limit_bytes, int) and not isinstance(limit_bytes, bool) and limit_bytes < 0:
            raise ValueError(f"the picture cache's budget must be >= 0 bytes, got {limit_bytes}")
        self._images = ImageCache(limit_bytes, lru=True)

    def __len__(self) -> int:
        return len(self._images)

    @property
    def limit_bytes(self) -> int:
        return self._images.limit_bytes

    @property
    def nbytes(self) -> int:
        return self._images.nbytes

    def picture(self, digest: str | None, data: bytes) -> np.ndarray:
        """:func:`picture` of ``data``, whose SHA-256 hex is ``digest`` (None: not cached)."""
        if digest is None:
            image = picture(data)
            image.flags.writeable = False
            return image
        image = self._images.get(digest)
        return image if image is not None else self._images.put(digest, picture(data))


#: The producer's one cache (content-addressed, so every stream of the process may share it).
pictures = PictureCache()


def perturb(image: np.ndarray, perturbation: str, rng: np.random.Generator) -> tuple[np.ndarray, int | None]:
    """``image`` with ``perturbation``'s pixel steps applied, and the JPEG quality to encode it at.

    Returns
    -------
    (pixels, quality)
        ``quality`` is None when the perturbation keeps a lossless format (PNG).
    """
    _check(perturbation)
    steps = PIXEL_STEPS if perturbation == "all" else {k: v for k, v in PIXEL_STEPS.items() if k == perturbation}
    for step in steps.values():
        image = step(image, rng)
    # Drawn after the pixel steps, in this order: scripts/robustness.py's seeded files depend on it.
    quality = int(rng.integers(*JPEG_QUALITY, endpoint=True)) if perturbation in ("jpeg", "all") else None
    return image, quality


def encode(image: np.ndarray, quality: int | None) -> bytes:
    """PNG bytes of ``image``, or JPEG at ``quality``."""
    if quality is None:
        ok, buf = cv2.imencode(".png", image)
    else:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"OpenCV cannot encode a picture of shape {image.shape}")
    return buf.tobytes()


#: libpng's weights (in 1/32768, truncated) of R, G and B when OpenCV decodes a colour PNG
#: as grey: ``png_set_rgb_to_gray(0.299, 0.587)``. Checked against every 24-bit colour in
#: tests/test_producer_augment.py, and against the running OpenCV by :func:`_png_grey_agrees`.
PNG_GREY_WEIGHTS = (9797, 19234, 3737)


def _png_grey(image: np.ndarray) -> np.ndarray:
    red, green, blue = (image[:, :, c].astype(np.uint32) for c in (2, 1, 0))
    acc = red * PNG_GREY_WEIGHTS[0]
    acc += green * PNG_GREY_WEIGHTS[1]
    acc += blue * PNG_GREY_WEIGHTS[2]
    acc >>= 15
    return acc.astype(np.uint8)


@functools.cache
def _png_grey_agrees() -> bool:
    """Whether this OpenCV's grey PNG decode is :func:`_png_grey` (else the round trip is kept)."""
    rng = np.random.default_rng(SEED_TAG)
    probe = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    decoded = cv2.imdecode(np.frombuffer(encode(probe, None), np.uint8), cv2.IMREAD_GRAYSCALE)
    return decoded is not None and np.array_equal(decoded, _png_grey(probe))


def as_png_decoded(image: np.ndarray, grey: bool) -> np.ndarray:
    """The pixels ``cv2.imdecode`` gives for the PNG of ``image``, without the round trip.

    PNG is lossless, so only the decoder's colour conversion changes the pixels: libpng's
    truncating weights for grey (not ``cv2.cvtColor``'s rounding ones), and copied channels
    for colour. An augmented copy served without encoding and decoding it is thus the same
    copy, about 7 ms sooner.

    Parameters
    ----------
    image : ndarray of uint8
        2-D grey or 3-channel BGR pixels, as :func:`perturb` returns them.
    grey : bool
        Decoded with ``cv2.IMREAD_GRAYSCALE`` (True) or ``cv2.IMREAD_COLOR``.
    """
    if image.ndim == 2:
        return image if grey else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if not grey:
        return image
    if _png_grey_agrees():
        return _png_grey(image)
    return cv2.imdecode(np.frombuffer(encode(image, None), np.uint8), cv2.IMREAD_GRAYSCALE)


def rerender(data: bytes, perturbation: str, rng: np.random.Generator) -> bytes:
    """The picture ``data`` (PNG/JPEG bytes) as another acquisition would have rendered it."""
    return encode(*perturb(picture(data), perturbation, rng))


def copy_rng(digest: str, copy: int) -> np.random.Generator:
    """The generator of augmented copy ``copy`` (from 1) of the picture with SHA-256 hex ``digest``.

    Seeded by content, so a copy is the same in every epoch, stream and process.
    """
    if not isinstance(copy, int) or isinstance(copy, bool) or copy < 1:
        raise ValueError(f"copy must be an integer >= 1, got {copy!r}")
    return np.random.default_rng([SEED_TAG, int(digest[:16], 16), int(digest[16:32], 16), copy])


def perturbation_of(copy: int) -> str:
    """The perturbation augmented copy ``copy`` (from 1) gets: :data:`COPY_PERTURBATIONS` in turn."""
    if not isinstance(copy, int) or isinstance(copy, bool) or copy < 1:
        raise ValueError(f"copy must be an integer >= 1, got {copy!r}")
    return COPY_PERTURBATIONS[(copy - 1) % len(COPY_PERTURBATIONS)]


def describe(copies: int) -> dict:
    """What a stream's augmented copies are (``hello["augment"]``, part of the stream id)."""
    return {"copies": copies, "perturbations": [perturbation_of(k) for k in range(1, copies + 1)],
            "seed_tag": SEED_TAG,
            "contrast": list(CONTRAST), "brightness": list(BRIGHTNESS), "gamma": list(GAMMA),
            "rotation_degrees": ROTATION_DEGREES, "noise_sigma": NOISE_SIGMA, "jpeg_quality": list(JPEG_QUALITY)}


def default_copies(split: str) -> int:
    """Copies per picture when ``--augment`` is not given: :data:`DEFAULT_TRAIN_COPIES` on ``train``, else 0."""
    return DEFAULT_TRAIN_COPIES if split == "train" else 0


def check_copies(copies) -> int:
    """``copies`` as an int in ``[0, MAX_COPIES]``, or a ValueError naming ``--augment``."""
    if isinstance(copies, bool) or not isinstance(copies, int) or not 0 <= copies <= MAX_COPIES:
        raise ValueError(f"--augment must be an integer from 0 to {MAX_COPIES} (copies per picture), got {copies!r}")
    return copies
