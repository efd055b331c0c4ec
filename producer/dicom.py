"""Reading DICOM CT slices into 8-bit grey pixels.

Stored values become Hounsfield units through RescaleSlope and RescaleIntercept
(1 and 0 when absent; Enhanced CT keeps them in its functional groups), a window
``(level, width)`` maps HU linearly onto 0..255, and MONOCHROME1 is inverted so
that dense tissue is bright in every output. Multi-frame files are read one
frame at a time.

Privacy: nothing here ever quotes a value read from a file. Every
:class:`DicomSkipped` reason is our own text (at most a transfer syntax UID that
pydicom itself knows by name), never ``str()`` of a pydicom exception, which can
echo element values such as PatientName.

pydicom and its decoder plugins are optional (``pip install 'chestct[dicom]'``):
without pydicom, DICOM files are still listed but skipped with a reason.
"""
from __future__ import annotations

import importlib.metadata
import io
import logging
import math
import re
import warnings
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

#: Suffixes that mark a DICOM file; files without one are recognised by their magic.
DICOM_EXTENSIONS = (".dcm", ".dicom")
PREAMBLE_BYTES = 128
MAGIC = b"DICM"


class Window(NamedTuple):
    """A display window in Hounsfield units."""

    level: float
    width: float


#: Named windows (level, width) in HU; one definition for the CLI, docs and tests.
WINDOW_PRESETS: dict[str, Window] = {
    "lung": Window(-600.0, 1500.0),
    "mediastinum": Window(50.0, 350.0),
    "soft-tissue": Window(40.0, 400.0),
    "bone": Window(400.0, 1800.0),
}
DEFAULT_WINDOW = "lung"
#: A file announcing more frames than this is listed once and skipped, so a forged
#: header cannot make the listing itself explode.
MAX_LISTED_FRAMES = 10_000
#: Packages whose versions decide the decoded bytes (they go into the stream identity).
DECODER_PACKAGES = ("pydicom", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg",
                    "pylibjpeg-rle", "pyjpegls", "python-gdcm")
_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2")
# Colour interpretations a reason may name (the file's own text is never quoted).
_KNOWN_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR", "YBR_PARTIAL_420")
_UID_SHAPE = re.compile(r"[0-9]+(\.[0-9]+)*")
_QUIETED = False


class DicomSkipped(Exception):
    """A DICOM file or frame that cannot be used; ``reason`` is our own wording."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def canonical_window(text: str) -> str:
    """Normalise a window setting: a preset name, or ``"L,W"`` with shortest numbers.

    ``"-600,1500"`` becomes ``"lung"``, so two spellings of one window give one
    stream identity.

    Raises
    ------
    ValueError
        For an unknown name, a malformed pair, non-finite numbers or a width <= 0.
    """
    if not isinstance(text, str):
        raise ValueError(f"window must be a preset name or 'L,W', got {text!r}")
    name = text.strip().lower()
    if name in WINDOW_PRESETS:
        return name
    parts = name.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        level, width = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"window must be one of {', '.join(WINDOW_PRESETS)} or 'LEVEL,WIDTH' in HU "
                         f"(e.g. -600,1500), got {text!r}") from None
    if not (math.isfinite(level) and math.isfinite(width)) or width <= 0:
        raise ValueError(f"window level and width must be finite numbers with width > 0, got {text!r}")
    level, width = level + 0.0, width + 0.0  # -0.0 is 0.0: one spelling, one stream identity
    for preset, window in WINDOW_PRESETS.items():
        if window == (level, width):
            return preset
    return f"{level:g},{width:g}"


def window_values(window: str) -> Window:
    """``(level, width)`` of a window setting (see :func:`canonical_window`)."""
    canonical = canonical_window(window)
    if canonical in WINDOW_PRESETS:
        return WINDOW_PRESETS[canonical]
    level, width = canonical.split(",")
    return Window(float(level), float(width))


def apply_window(hu: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """Map Hounsfield units linearly onto ``uint8``: ``level - width/2`` -> 0, ``level + width/2`` -> 255.

    ``out = clip(floor((hu - level + width / 2) * 255 / width + 0.5), 0, 255)``.

    ``invert`` flips the result (MONOCHROME1, where low stored values are white).
    """
    lower = window.level - window.width / 2
    # multiply before dividing, then round half up: exact for integer HU and windows
    scaled = np.floor((np.asarray(hu, dtype=np.float64) - lower) * 255.0 / window.width + 0.5)
    out = np.clip(scaled, 0, 255).astype(np.uint8)
    return 255 - out if invert else out


def has_magic(path: Path) -> bool:
    """True when ``path`` carries ``DICM`` after the 128-byte preamble (reads 132 bytes)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(PREAMBLE_BYTES + len(MAGIC))
    except OSError:
        return False
    return head[PREAMBLE_BYTES:] == MAGIC


def is_dicom_name(path: Path) -> bool:
    """True when the file name says DICOM (``.dcm``/``.dicom``, any case)."""
    return path.suffix.lower() in DICOM_EXTENSIONS


def has_magic_at_start(data: bytes) -> bool:
    """True when ``data`` (a file's first bytes or all of them) carries the DICOM magic."""
    return data[PREAMBLE_BYTES:PREAMBLE_BYTES + len(MAGIC)] == MAGIC


def decoder_description() -> str:
    """Installed DICOM decoder packages with versions, e.g. ``"pydicom-3.0.2,pylibjpeg-2.1.0"``."""
    found = []
    for package in DECODER_PACKAGES:
        try:
            found.append(f"{package}-{importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    if not found or not found[0].startswith("pydicom-"):
        return "none (pydicom not installed)"
    return ",".join(found)


def _pydicom():
    try:
        import pydicom
        import pydicom.pixels
    except ImportError:
        raise DicomSkipped("reading DICOM needs pydicom: pip install 'chestct[dicom]'") from None
    _quiet(pydicom)
    return pydicom


def _quiet(pydicom) -> None:
    """Keep pydicom from quoting file content in warnings and log lines.

    Its messages quote element values ("Invalid value for VR IS: '...'", "Unknown
    encoding '...'"), which can be identifiers; every problem that matters reaches the
    log as our own skip reason instead. Done once per process, never undone.
    """
    global _QUIETED
    if _QUIETED:
        return
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
    _QUIETED = True


def _read_header(source):
    """The dataset of a path or binary file without its pixel data, or :class:`DicomSkipped`."""
    pydicom = _pydicom()
    try:
        return pydicom.dcmread(source, stop_before_pixels=True)
    except pydicom.errors.InvalidDicomError:
        raise DicomSkipped("not a DICOM file (no DICM preamble or File Meta header)") from None
    except OSError as exc:
        if exc.errno is not None:  # a real I/O error; pydicom also raises bare OSError on bad data
            raise DicomSkipped(f"cannot read file: {exc.strerror}") from None
        raise DicomSkipped("DICOM header cannot be parsed (corrupt or truncated)") from None
    except Exception:  # pydicom's messages can quote element values: never pass them on
        raise DicomSkipped("DICOM header cannot be parsed (corrupt or truncated)") from None


def _element(ds, keyword: str, default=None):
    """An element's value; a malformed one (bad VR, bad length) becomes :class:`DicomSkipped`."""
    try:
        return ds.get(keyword, default)
    except Exception:  # pydicom converts values lazily, here; its message may quote them
        raise DicomSkipped(f"DICOM {keyword} element is malformed") from None


def _whole_number(ds, keyword: str, default: int | None = None) -> int:
    value = _element(ds, keyword, default)
    try:
        value = int(value) if value is not None and value != "" else default
    except Exception:
        value = None
    if value is None or value < 0:
        raise DicomSkipped(f"DICOM {keyword} is missing or not a non-negative integer")
    return value


def count_frames(path: Path) -> int:
    """Frames a DICOM file announces (header only); 1 when it cannot be told.

    A file whose frame count cannot be read is listed once and its reason is
    given when it is loaded, so listing never fails on a bad file.
    """
    try:
        ds = _read_header(path)
        frames = _whole_number(ds, "NumberOfFrames", 1)
    except DicomSkipped:
        return 1
    return frames if 1 <= frames <= MAX_LISTED_FRAMES else 1


def _transfer_syntax(ds):
    pydicom = _pydicom()
    try:
        uid = pydicom.uid.UID(str(ds.file_meta.TransferSyntaxUID))
    except Exception:
        raise DicomSkipped("DICOM file has no Transfer Syntax UID in its File Meta header") from None
    return uid


def _syntax_label(uid) -> str:
    """How a reason names a transfer syntax: only UIDs pydicom knows, never raw file text."""
    if uid.is_transfer_syntax and uid.name != str(uid):
        return f"{uid.name} ({uid})"
    return "an unknown transfer syntax" + (f" ({uid})" if _UID_SHAPE.fullmatch(str(uid)) and len(uid) <= 64
                                           else "")


def _check_decodable(uid) -> None:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(uid)
    except Exception:  # pydicom raises for a transfer syntax it has no decoder class for
        raise DicomSkipped(f"pixel data in {_syntax_label(uid)} cannot be decoded by pydicom") from None
    if not decoder.is_available:
        raise DicomSkipped(f"pixel data in {_syntax_label(uid)} needs a decoder plugin that is not "
                           f"installed (pip install 'chestct[dicom]')")


def _rescale(ds, frame_index: int) -> tuple[float, float]:
    """``(slope, intercept)`` of a frame: top level, else shared, else per-frame functional groups."""
    sources = [ds]
    for sequence, index in (("SharedFunctionalGroupsSequence", 0), ("PerFrameFunctionalGroupsSequence", frame_index)):
        try:
            sources.append(ds[sequence][index].PixelValueTransformationSequence[0])
        except Exception:  # absent or malformed groups: fall through to the defaults
            continue
    for source in sources:
        if "RescaleSlope" in source or "RescaleIntercept" in source:
            try:
                slope = float(source.get("RescaleSlope", 1.0))
                intercept = float(source.get("RescaleIntercept", 0.0))
            except Exception:
                raise DicomSkipped("DICOM RescaleSlope or RescaleIntercept is not a number") from None
            if not (math.isfinite(slope) and math.isfinite(intercept)):
                raise DicomSkipped("DICOM RescaleSlope or RescaleIntercept is not finite")
            return slope, intercept
    return 1.0, 0.0


def header_dimensions(fh: BinaryIO) -> tuple[int, int, int]:
    """``(Columns, Rows, NumberOfFrames)`` from a DICOM header, reading no pixel data.

    Raises
    ------
    DicomSkipped
        If the header cannot be parsed or lacks the dimensions.
    """
    ds = _read_header(fh)
    return _whole_number(ds, "Columns"), _whole_number(ds, "Rows"), _whole_number(ds, "NumberOfFrames", 1)


def decode_frame(data: bytes, frame: int | None, window: str, max_pixels: int) -> np.ndarray:
    """One windowed frame of a DICOM file's bytes as a 2-D ``uint8`` array.

    Parameters
    ----------
    data : bytes
        The whole file, as read (confined and size-checked) by the producer.
    frame : int or None
        1-based frame number of a multi-frame file; ``None`` for a single-frame file.
    window : str
        Preset name or ``"L,W"`` (see :func:`canonical_window`).
    max_pixels : int
        Files announcing more than ``Rows * Columns * NumberOfFrames`` are refused undecoded.

    Raises
    ------
    DicomSkipped
        With a reason of our own wording.
    """
    ds = _read_header(io.BytesIO(data))
    rows, cols = _whole_number(ds, "Rows"), _whole_number(ds, "Columns")
    frames = _whole_number(ds, "NumberOfFrames", 1)
    if rows == 0 or cols == 0 or frames == 0:
        raise DicomSkipped(f"DICOM header announces an empty {cols}x{rows}x{frames} image")
    if rows * cols * frames > max_pixels:
        raise DicomSkipped(
            f"DICOM header announces {cols}x{rows}x{frames} frames = {rows * cols * frames / 1e6:.1f} MPixel, "
            f"over the {max_pixels / 1e6:.1f} MPixel limit")
    if frames > MAX_LISTED_FRAMES:
        raise DicomSkipped(f"DICOM header announces {frames} frames, over the {MAX_LISTED_FRAMES} frame limit")
    if frame is None and frames > 1:
        raise DicomSkipped(f"multi-frame DICOM ({frames} frames) listed without a frame number")
    index = 0 if frame is None else frame - 1
    if not 0 <= index < frames:
        raise DicomSkipped(f"frame {frame} is outside the file's {frames} frames")
    photometric = str(_element(ds, "PhotometricInterpretation", "")).strip().upper()
    samples = _whole_number(ds, "SamplesPerPixel", 1)
    if photometric not in _PHOTOMETRIC or samples != 1:
        raise DicomSkipped("only greyscale DICOM (MONOCHROME1/MONOCHROME2, one sample per pixel) is read; "
                           + (f"this file is {photometric}" if photometric in _KNOWN_COLOUR else
                              "this file's PhotometricInterpretation is another one"))
    uid = _transfer_syntax(ds)
    _check_decodable(uid)
    slope, intercept = _rescale(ds, index)
    try:
        stored = _pydicom().pixels.pixel_array(io.BytesIO(data), index=index)
    except MemoryError:
        raise DicomSkipped("not enough memory to decode the DICOM frame") from None
    except Exception:  # decoder messages may quote file content: our words only
        raise DicomSkipped(f"DICOM pixel data in {_syntax_label(uid)} cannot be decoded "
                           "(corrupt, truncated or inconsistent with its header)") from None
    if stored.shape != (rows, cols):
        raise DicomSkipped(f"decoded DICOM frame has shape {stored.shape}, not the announced {rows}x{cols}")
    hu = stored.astype(np.float64) * slope + intercept
    return apply_window(hu, window_values(window), invert=photometric == "MONOCHROME1")
