"""A small, deterministic, chest-CT-*like* dataset for trying the pipeline without real data.

``python -m producer.synthetic OUT_DIR [--per-class N]`` writes
``OUT_DIR/{train,valid,test}/<class folder>/*.png`` in the layout of the real
Kaggle set: four classes, train/valid folders carrying the real suffixes, test
folders plain; mixed grey/RGB/RGBA (and a few 16-bit PNG and JPEG) images of
several sizes. Each class draws a different lesion and background texture, so a
classifier has something to learn. It is NOT medical data.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

BANNER = """\
################################################################################
#  SYNTHETIC DATA: generated shapes and textures that only look vaguely like   #
#  chest CT slices. For trying the pipeline, NOT for medicine: a model trained  #
#  on it says nothing about real scans.                                         #
################################################################################"""

#: Class folder names per split, as in the real dataset.
CLASS_FOLDERS = {
    "adenocarcinoma": "adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib",
    "large.cell.carcinoma": "large.cell.carcinoma_left.hilum_T2_N2_M0_IIIa",
    "normal": "normal",
    "squamous.cell.carcinoma": "squamous.cell.carcinoma_left.hilum_T1_N2_M0_IIIa",
}
SUFFIXED_SPLITS = ("train", "valid")
SPLIT_FRACTIONS = {"train": 1.0, "valid": 0.25, "test": 0.5}
SIZES = ((224, 224), (256, 320), (300, 260), (180, 200), (320, 384))
MARKER = "SYNTHETIC-DATA.txt"


def _texture(rng: np.random.Generator, shape: tuple[int, int], klass: str) -> np.ndarray:
    """Class-dependent background texture in [-1, 1] (orientation and frequency differ)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = {
        "adenocarcinoma": (0.25 * np.pi, 9.0),
        "large.cell.carcinoma": (0.0, 14.0),
        "normal": (0.5 * np.pi, 22.0),
        "squamous.cell.carcinoma": (0.75 * np.pi, 6.0),
    }[klass]
    angle += rng.normal(0, 0.08)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period + phase)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2)
    return 0.6 * wave + 0.4 * np.clip(noise, -2.5, 2.5) / 2.5


def draw_slice(rng: np.random.Generator, shape: tuple[int, int], klass: str) -> np.ndarray:
    """One ``uint8`` grey slice: body, two lungs, a class-specific lesion and texture."""
    h, w = shape
    img = np.full((h, w), 12, np.float32)
    center = (w // 2 + int(rng.integers(-8, 9)), h // 2 + int(rng.integers(-8, 9)))
    cv2.ellipse(img, center, (int(w * 0.44), int(h * 0.38)), 0, 0, 360, 150, -1)  # body
    lung_axes = (int(w * 0.15), int(h * 0.27))
    left = (center[0] - int(w * 0.2), center[1])
    right = (center[0] + int(w * 0.2), center[1])
    for lung in (left, right):
        cv2.ellipse(img, lung, lung_axes, float(rng.uniform(-8, 8)), 0, 360, 45, -1)
    lungs = (img == 45).astype(np.float32)  # texture inside the lungs only
    img += lungs * 18 * _texture(rng, shape, klass)
    r = max(4, int(min(h, w) * rng.uniform(0.05, 0.08)))
    if klass == "adenocarcinoma":  # round peripheral nodule, lower left lobe
        spot = (left[0] - lung_axes[0] // 3, left[1] + lung_axes[1] // 2)
        cv2.circle(img, spot, r, 175, -1)
    elif klass == "large.cell.carcinoma":  # big irregular mass near the hilum
        spot = (left[0] + lung_axes[0] // 2, center[1] - int(h * 0.03))
        cv2.ellipse(img, spot, (2 * r, int(1.5 * r)), float(rng.uniform(0, 180)), 0, 360, 190, -1)
    elif klass == "squamous.cell.carcinoma":  # cavitating lesion: bright ring, dark centre
        spot = (right[0], right[1] - lung_axes[1] // 3)
        cv2.circle(img, spot, int(1.4 * r), 185, -1)
        cv2.circle(img, spot, int(0.7 * r), 40, -1)
    img = cv2.GaussianBlur(img, (0, 0), 1.0) + rng.normal(0, 4, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode_variant(gray: np.ndarray, index: int) -> tuple[str, np.ndarray]:
    """Vary format and channels the way the real set does: mostly RGBA, some RGB, L, 16-bit, JPEG."""
    kind = index % 10
    if kind == 9:
        return ".jpg", cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if kind == 8:
        return ".png", gray.astype(np.uint16) * 257  # 16-bit grey
    if kind in (6, 7):
        return ".png", gray
    if kind in (4, 5):
        return ".png", cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    return ".png", cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)


def _folder(split: str, klass: str) -> str:
    return CLASS_FOLDERS[klass] if split in SUFFIXED_SPLITS else klass


def generate(out_dir: Path | str, per_class: int = 30, seed: int = 0, progress: bool = True) -> dict:
    """Write the synthetic dataset; the same arguments always give the same pixels.

    Parameters
    ----------
    out_dir : path
        Target folder; must be empty, missing, or a previous synthetic set.
    per_class : int
        Train images per class (valid gets a quarter, test half, at least 2 each).
    seed : int
        Seed of every random choice.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``{split: {class: count}}``.

    Raises
    ------
    ValueError
        If ``per_class < 1`` or ``out_dir`` holds something else.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ValueError(f"{str(out)!r} is not empty and not a synthetic dataset: refusing to write into it")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(BANNER + "\n")
    counts: dict[str, dict[str, int]] = {}
    jobs = [(split, klass, max(2, round(per_class * frac)))
            for split, frac in SPLIT_FRACTIONS.items() for klass in CLASS_FOLDERS]
    with tqdm(total=sum(n for *_, n in jobs), desc="synthetic images", unit="img", disable=not progress) as bar:
        for split_index, (split, klass, n) in enumerate(jobs):
            folder = out / split / _folder(split, klass)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rng = np.random.default_rng((seed, split_index, i))
                shape = SIZES[int(rng.integers(len(SIZES)))]
                ext, pixels = _encode_variant(draw_slice(rng, shape, klass), i)
                cv2.imwrite(str(folder / f"{klass}_{i:04d}{ext}"), pixels)
                bar.update()
            counts.setdefault(split, {})[klass] = n
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m producer.synthetic", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="folder to create (train/ valid/ test/ inside)")
    ap.add_argument("--per-class", type=int, default=30, help="train images per class (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    args = ap.parse_args(argv)
    print(BANNER, file=sys.stderr, flush=True)
    try:
        counts = generate(args.out_dir, args.per_class, args.seed, args.progress)
    except ValueError as exc:
        ap.error(str(exc))
    for split, per_class in counts.items():
        print(f"{split}: {sum(per_class.values())} images ({', '.join(f'{k} {v}' for k, v in per_class.items())})")
    print(f"wrote SYNTHETIC dataset to {args.out_dir} (not medical data)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
