"""Decoding and preprocessing one image with OpenCV.

PNG and JPEG, 8- or 16-bit, grey, RGB or RGBA: OpenCV's decoder drops alpha and
scales 16-bit samples to 8 bits; the result is then converted to the colour
mode and resized. Every failure becomes :class:`ImageSkipped` with a reason, so
a bad file is skipped and counted instead of stopping a stream.

The image dimensions are read from the file header *before* decoding, so a
decompression bomb (a small file announcing a gigantic image) is refused
without allocating its pixels.
"""
from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from . import dicom
from . import framing

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "bicubic": cv2.INTER_CUBIC,
}
COLOR_MODES = {"grayscale": 1, "rgb": 3}
# The consumer's default features need >= 384 px (HOG: 128-px cells in 3x3 blocks); chosen by
# grouped CV (docs/model-selection.md). Tests and the consumer's docs import it.
DEFAULT_IMAGE_SIZE = (512, 512)
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
# A chest CT slice is a few hundred KiB; anything this big is not one.
DEFAULT_MAX_FILE_BYTES = 256 * 2**20

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}

# OpenCV logs its own warning for every undecodable file; ours names the file instead.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def opencv_on_calling_threads() -> None:
    """Make every OpenCV call run on the thread that makes it (``cv2.setNumThreads(1)``).

    The producer decodes on its own threads, one per core (``--workers``). OpenCV's pool
    on top of them (resize, colour conversion) added threads that wait, spin and yield:
    the producer (with its client) took 3.43 and 3.47 CPU ms per image with that pool off
    against 3.57 with it on (``benches/bench_producer.py``, 128 px, alternating runs). The
    setting is OpenCV's, for the whole process.
    """
    cv2.setNumThreads(1)


class ImageSkipped(Exception):
    """An image that cannot be used; ``reason`` says why (it goes on the wire)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Preprocessing:
    """How every image of a stream is turned into pixels.

    Attributes
    ----------
    image_size : (int, int)
        Output ``(height, width)``.
    color_mode : str
        ``"grayscale"`` (1 channel) or ``"rgb"`` (3 channels, R first).
    interpolation : str
        One of ``nearest``, ``bilinear``, ``area``, ``bicubic``.
    max_image_pixels : int
        Images whose header announces more pixels are skipped undecoded.
    max_file_bytes : int
        Files larger than this are skipped unread.
    window : str
        DICOM only: HU window, a preset of :data:`dicom.WINDOW_PRESETS` or ``"L,W"``
        (normalised by :func:`dicom.canonical_window`).
    crop : str
        ``"body"`` cuts the picture to the body's bounding box before resizing, ``"none"``
        keeps it whole (:mod:`producer.framing`).
    crop_margin : float
        Margin around the body box, as a fraction of its side.
    aspect : str
        ``"stretch"`` resizes the (cropped) picture to ``image_size`` as is; ``"pad"``
        pads it with black to the aspect ratio of ``image_size`` first.
    normalize : str
        Grey-level normalisation after the crop: ``"none"``, ``"clahe"`` or ``"percentile"``.
    denoise : str
        Smoothing after the crop, before the normalisation: one of :data:`framing.DENOISERS`
        (``"none"``, ``"median"``, ``"gaussian"``, ``"median5"``, ``"median+gaussian"``, ...).
    """

    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
    color_mode: str = "grayscale"
    interpolation: str = "area"
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    window: str = dicom.DEFAULT_WINDOW
    crop: str = framing.DEFAULT_CROP
    crop_margin: float = framing.DEFAULT_CROP_MARGIN
    aspect: str = framing.DEFAULT_ASPECT
    normalize: str = framing.DEFAULT_NORMALIZE
    denoise: str = framing.DEFAULT_DENOISE

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", dicom.canonical_window(self.window))
        height, width = self.image_size
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in (height, width)):
            raise ValueError(f"image_size must be two positive integers, got {self.image_size!r}")
        object.__setattr__(self, "image_size", (height, width))
        if self.color_mode not in COLOR_MODES:
            raise ValueError(f"color_mode must be one of {', '.join(COLOR_MODES)}, got {self.color_mode!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.max_image_pixels < 1 or self.max_file_bytes < 1:
            raise ValueError("max_image_pixels and max_file_bytes must be >= 1")
        for name, choices in (("crop", framing.CROPS), ("aspect", framing.ASPECTS),
                              ("normalize", framing.NORMALIZATIONS), ("denoise", framing.DENOISERS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        margin = self.crop_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) \
                or not 0.0 <= margin <= framing.MAX_CROP_MARGIN:
            raise ValueError(f"crop_margin must be a number in [0, {framing.MAX_CROP_MARGIN}], got {margin!r}")
        object.__setattr__(self, "crop_margin", float(margin))

    @property
    def channels(self) -> int:
        return COLOR_MODES[self.color_mode]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of every output image."""
        return (*self.image_size, self.channels)

    def describe(self) -> dict:
        """Every setting that shapes the pixels, JSON-able (``hello["preprocessing"]``).

        All fields except the :data:`LIMIT_FIELDS`, so a new field is announced without
        touching this method, plus the decoder and its version.
        """
        info = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.name not in LIMIT_FIELDS}
        info["decoder"] = "opencv"
        info["decoder_version"] = cv2.__version__
        info["dicom_decoder"] = dicom.decoder_description()
        return info

    def limits(self) -> dict:
        """The resource limits, JSON-able (``hello["limits"]``): they decide skips, not pixels."""
        return {name: getattr(self, name) for name in LIMIT_FIELDS}


#: Fields of :class:`Preprocessing` that bound resources rather than shape pixels.
LIMIT_FIELDS = ("max_image_pixels", "max_file_bytes")


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "describe"):  # a nested settings object (e.g. a crop or a window)
        return value.describe()
    if is_dataclass(value):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    return value


def _read_exactly(fh: BinaryIO, count: int, what: str) -> bytes:
    data = fh.read(count)
    if len(data) != count:
        raise ImageSkipped(f"truncated {what}")
    return data


def _png_dimensions(fh: BinaryIO) -> tuple[int, int]:
    length, kind = struct.unpack(">I4s", _read_exactly(fh, 8, "PNG header"))
    if kind != b"IHDR" or length < 8:
        raise ImageSkipped("PNG without an IHDR header chunk")
    return struct.unpack(">II", _read_exactly(fh, 8, "PNG header"))


def _jpeg_dimensions(fh: BinaryIO) -> tuple[int, int]:
    while True:
        byte = fh.read(1)
        if not byte:
            raise ImageSkipped("JPEG without a start-of-frame header")
        if byte != b"\xff":
            continue
        marker = b"\xff"
        while marker == b"\xff":  # fill bytes
            marker = _read_exactly(fh, 1, "JPEG marker")
        code = marker[0]
        if code in _JPEG_STANDALONE:
            continue
        if code == 0xDA:  # start of scan: image data begins, no frame header seen
            raise ImageSkipped("JPEG without a start-of-frame header")
        (length,) = struct.unpack(">H", _read_exactly(fh, 2, "JPEG segment"))
        if length < 2:
            raise ImageSkipped("corrupt JPEG segment length")
        if code in _JPEG_SOF:
            _precision, height, width = struct.unpack(">BHH", _read_exactly(fh, 5, "JPEG frame header"))
            return width, height
        fh.seek(length - 2, 1)


def image_dimensions(fh: BinaryIO) -> tuple[str, int, int]:
    """Read ``(format, width, height)`` from a PNG, JPEG or DICOM header, leaving ``fh`` anywhere.

    A DICOM file's height is ``Rows * NumberOfFrames``: what it would take to decode all.

    Raises
    ------
    ImageSkipped
        If the file is neither PNG, JPEG nor DICOM, or its header is cut short.
    """
    magic = fh.read(8)
    if dicom.has_magic_at_start(magic + fh.read(dicom.PREAMBLE_BYTES + len(dicom.MAGIC) - 8)):
        fh.seek(0)
        try:
            columns, rows, frames = dicom.header_dimensions(fh)
        except dicom.DicomSkipped as exc:
            raise ImageSkipped(exc.reason) from None
        return "DICOM", columns, rows * frames  # frames stacked: the pixel limit covers them all
    fh.seek(8)
    if magic == PNG_SIGNATURE:
        width, height = _png_dimensions(fh)
        return "png", width, height
    if magic[:2] == JPEG_SOI:
        fh.seek(2)
        width, height = _jpeg_dimensions(fh)
        return "jpeg", width, height
    raise ImageSkipped("not a PNG or JPEG file, nor DICOM (unknown signature)")


def _check_dimensions(kind: str, width: int, height: int, max_pixels: int) -> None:
    if width == 0 or height == 0:
        raise ImageSkipped(f"{kind} header announces an empty {width}x{height} image")
    if width * height > max_pixels:
        raise ImageSkipped(
            f"{kind} header announces {width}x{height} = {width * height / 1e6:.1f} MPixel, over the "
            f"{max_pixels / 1e6:.1f} MPixel limit (decompression bomb?)")


def read_checked(path: Path, prep: Preprocessing) -> bytes:
    """Read a file after checking its size and header dimensions.

    Raises
    ------
    ImageSkipped
        If it is too big, announces too many pixels, or cannot be read.
    """
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size > prep.max_file_bytes:
                raise ImageSkipped(f"file is {size / 2**20:.0f} MiB, over the "
                                   f"{prep.max_file_bytes / 2**20:.0f} MiB limit")
            fh.seek(0)
            kind, width, height = image_dimensions(fh)
            _check_dimensions(kind, width, height, prep.max_image_pixels)
            fh.seek(0)
            return fh.read()
    except OSError as exc:
        raise ImageSkipped(f"cannot read file: {exc.strerror or exc}") from None


def decode(data: bytes, prep: Preprocessing, frame: int | None = None) -> np.ndarray:
    """Decode image bytes and preprocess them into a ``uint8`` array of ``prep.image_shape``.

    PNG and JPEG go through OpenCV; DICOM (the ``DICM`` magic) through
    :func:`dicom.decode_frame`, windowed by ``prep.window``.

    Parameters
    ----------
    frame : int, optional
        1-based frame of a multi-frame DICOM file.

    Raises
    ------
    ImageSkipped
        If the data cannot be decoded.
    """
    if dicom.has_magic_at_start(data):
        try:
            grey = dicom.decode_frame(data, frame, prep.window, prep.max_image_pixels)
        except dicom.DicomSkipped as exc:
            raise ImageSkipped(exc.reason) from None
        return _finish_grey(grey, prep)
    flag = cv2.IMREAD_GRAYSCALE if prep.color_mode == "grayscale" else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error as exc:
        raise ImageSkipped(f"OpenCV cannot decode it: {str(exc).strip().splitlines()[-1]}") from None
    if image is None or image.size == 0:
        raise ImageSkipped("OpenCV cannot decode it (corrupt or truncated image data)")
    if image.dtype != np.uint8:  # these flags make OpenCV scale 16-bit to 8; anything else is exotic
        raise ImageSkipped(f"unsupported sample type {image.dtype}")
    return preprocess(image, prep)


def preprocess(image: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Frame and resize decoded pixels into a ``uint8`` array of ``prep.image_shape``.

    Parameters
    ----------
    image : ndarray of uint8
        What ``cv2.imdecode`` gives with ``prep``'s flag: 2-D for grey, BGR for colour.
    """
    height, width = prep.image_size
    image = framing.frame(image, (height, width), crop_to=prep.crop, margin=prep.crop_margin,
                          aspect=prep.aspect, normalize_with=prep.normalize, denoise_with=prep.denoise)
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=INTERPOLATIONS[prep.interpolation])
    if prep.color_mode == "rgb":
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image[:, :, np.newaxis]


def _finish_grey(image: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Resize a 2-D ``uint8`` image and give it ``prep``'s channels."""
    height, width = prep.image_size
    if image.shape != (height, width):
        image = cv2.resize(image, (width, height), interpolation=INTERPOLATIONS[prep.interpolation])
    return np.repeat(image[:, :, np.newaxis], prep.channels, axis=2)


def load(path: Path, prep: Preprocessing, frame: int | None = None) -> np.ndarray:
    """Read, check and decode one image file into ``prep.image_shape`` ``uint8`` pixels.

    :func:`read_checked` then :func:`decode` (``frame`` as there); an unusable file raises
    :class:`ImageSkipped` with the reason.
    """
    return decode(read_checked(path, prep), prep, frame)
