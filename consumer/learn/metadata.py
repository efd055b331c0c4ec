"""model.json's metadata: what a model was trained on, with which settings and libraries."""
from __future__ import annotations

import platform

import numpy as np

#: Colour modes and their channel counts, as the producer's hello announces them.
COLOR_MODES = {"grayscale": 1, "rgb": 3}


def color_mode_of(channels) -> str:
    for mode, c in COLOR_MODES.items():
        if c == channels:
            return mode
    return f"unknown (C={channels})"


def full_shape(image_shape, color_mode: str) -> list[int]:
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {', '.join(COLOR_MODES)}, got {color_mode!r}")
    shape = [int(s) for s in image_shape]
    if len(shape) == 2:
        shape.append(COLOR_MODES[color_mode])
    if len(shape) != 3 or shape[2] != COLOR_MODES[color_mode]:
        raise ValueError(f"image_shape {tuple(image_shape)} does not agree with color_mode {color_mode!r}")
    return shape


def model_meta(*, config, model, engine, params, seed, classes, image_shape, color_mode, n_images, width) -> dict:
    return {
        "model": model,
        "engine": engine,
        "params": jsonable(dict(params)),
        "seed": int(seed),
        "feature_config": config.to_dict(),
        "classes": list(classes),
        "image_shape": full_shape(image_shape, color_mode),
        "color_mode": color_mode,
        "n_train_images": int(n_images),
        "n_features": int(width),
        "versions": library_versions(engine),
    }


def library_versions(engine: str) -> dict:
    import cv2
    import skimage
    import sklearn
    import skops

    versions = {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                "scikit-image": skimage.__version__, "skops": skops.__version__, "opencv": cv2.__version__}
    try:
        import featrs
        versions["featrs"] = featrs.__version__
    except ImportError:
        versions["featrs"] = None
    if engine == "mllib":
        import pyspark
        versions["pyspark"] = pyspark.__version__
    return versions


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def stream_meta(hello: dict, skipped_files: list[dict]) -> dict:
    """What model.json records of the training stream: its identity, its declared
    preprocessing (which predict then requires) and every file the producer skipped."""
    return {
        "preprocessing": hello.get("preprocessing"),
        # "augment": the producer's augmented training copies (None when there were none).
        "training_stream": {k: hello.get(k) for k in ("stream_id", "split", "total_images", "augment")},
        "skipped_files": list(skipped_files),
    }
