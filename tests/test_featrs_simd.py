"""One SIMD dispatch: FEATRS_SIMD picks the path, every path gives the same numbers.

Each path runs in its own interpreter (the choice is made once per process). HOG, LBP
and GLCM must be bit-identical across paths (no fused multiply-adds, same operation
order); Gabor's vector paths use FMA and lane-wise sums, so they agree to 1e-12.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import featrs

PATHS = ("off", "sse2", "avx2", "avx512")
ORDER = {name: k for k, name in enumerate(PATHS)}

SCRIPT = r"""
import sys
import numpy as np
import featrs
out = sys.argv[1]
rng = np.random.default_rng(7)
stack = rng.integers(0, 256, (3, 67, 61), dtype=np.uint8)
stack[0, 10:40, 5:30] = 90            # flat patches: LBP comparisons on the edge of rounding
real = np.load(sys.argv[2]) if len(sys.argv) > 2 else stack
results = {
    "hog": featrs.hog_batch(real, pixels_per_cell=(8, 8), cells_per_block=(2, 2), n_threads=1),
    "hog_float": featrs.hog(real[0].astype(np.float32) / 7, pixels_per_cell=(8, 8), cells_per_block=(2, 2)),
    "lbp_codes": featrs.local_binary_pattern(real[0], 16, 2.0, "uniform"),
    "lbp_var": featrs.local_binary_pattern(real[0].astype(np.float64), 8, 1.5, "var"),
    "glcm": featrs.glcm_props_batch(real, distances=(1, 2, 4), levels=256, n_threads=1),
    "gabor": featrs.gabor_bank_batch(real[:1], frequencies=(0.1, 0.3), n_threads=1),
}
# The drop-in graycoprops for 4, 16 and 8 offsets (vector paths for 4 and 16), counts and normed.
angles = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
for distances in ([1], [1, 2, 3, 4], [1, 2]):
    for normed in (False, True):
        P = featrs.graycomatrix(real[0], distances, angles, symmetric=True, normed=normed)
        props = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM",
                 "mean", "variance", "std", "entropy")
        results[f"dropin_{len(distances)}_{normed}"] = np.stack([featrs.graycoprops(P, p) for p in props])
for P, R in ((8, 1.0), (16, 2.0), (24, 3.0)):
    results[f"lbp_{P}"] = featrs.lbp_histogram_batch(real, P, R, "uniform", n_threads=1)
    results[f"lbp_{P}_stack"] = featrs.lbp_histogram_batch(stack, P, R, "uniform", n_threads=1)
np.savez(out, path=np.array(featrs.simd_path()), **results)
"""


def run_path(tmp_path: Path, path: str, real: Path | None) -> dict:
    out = tmp_path / f"{path}.npz"
    env = dict(os.environ, FEATRS_SIMD=path)
    cmd = [sys.executable, "-c", SCRIPT, str(out)] + ([str(real)] if real else [])
    subprocess.run(cmd, env=env, check=True, timeout=300)
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def sample_real(tmp_path: Path) -> Path | None:
    root = os.environ.get("CHESTCT_DATA")
    if not root or not (Path(root) / "train").is_dir():
        return None
    import cv2
    files = sorted(p for p in (Path(root) / "train").rglob("*") if p.suffix.lower() in (".png", ".jpg"))[:3]
    stack = np.stack([cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (131, 127), interpolation=cv2.INTER_AREA)
                      for f in files])
    np.save(tmp_path / "real.npy", stack)
    return tmp_path / "real.npy"


def test_simd_path_names_the_dispatch():
    assert featrs.simd_path() in PATHS


def test_every_simd_path_gives_the_same_numbers(tmp_path):
    real = sample_real(tmp_path)
    auto = run_path(tmp_path, "auto", real)
    detected = str(auto["path"])
    assert detected in PATHS
    for path in PATHS:
        got = run_path(tmp_path, path, real)
        # A request above what the CPU has falls back to the CPU's best.
        expected = path if ORDER[path] <= ORDER[detected] else detected
        assert str(got["path"]) == expected
        for key, value in auto.items():
            if key == "path":
                continue
            if key == "gabor":
                np.testing.assert_allclose(got[key], value, rtol=1e-12, atol=0, err_msg=f"{key} on {path}")
            else:
                np.testing.assert_array_equal(got[key], value, err_msg=f"{key} on {path}")


def test_an_unknown_request_means_auto(tmp_path):
    code = "import featrs; print(featrs.simd_path())"
    auto = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FEATRS_SIMD="auto"),
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    odd = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FEATRS_SIMD="neon9"),
                         check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    assert odd == auto
