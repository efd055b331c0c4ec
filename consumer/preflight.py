"""The one check of a stream against the command's configuration, right after the ``hello``.

Every command (ingest, train, predict) fetches the producer's ``hello`` first and runs
:func:`check_stream` on it before Spark starts, so a stream the features or the model
cannot take is refused in a second with a message that names what to change, instead of
failing later inside an executor.
"""
from __future__ import annotations

from typing import Mapping

from .features import FeatureConfig, check_image_size
from .learn.metadata import color_mode_of


class StreamRefused(ValueError):
    """The producer's stream cannot be used with this configuration or model."""


class ModelMismatch(StreamRefused):
    """The stream does not match the model (image size, colour mode, classes, preprocessing)."""


def image_shape(hello: Mapping) -> list[int]:
    """The hello's ``image_shape`` [H, W, C], validated."""
    shape = hello.get("image_shape")
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(v, int) and v > 0 for v in shape)):
        raise StreamRefused(f"producer hello has no valid image_shape [H, W, C]: {shape!r}")
    return list(shape)


def color_mode(hello: Mapping) -> str:
    """``grayscale`` or ``rgb`` as the producer preprocesses (from the hello's channel count)."""
    return color_mode_of(image_shape(hello)[2])


def check_features(hello: Mapping, config: FeatureConfig) -> None:
    """Refuse a stream whose images are too small (or otherwise unfit) for ``config``."""
    shape = image_shape(hello)
    try:
        check_image_size(config, shape)
    except ValueError as exc:
        raise StreamRefused(f"the producer sends {shape[0]}x{shape[1]} images: {exc}") from None


def check_model(hello: Mapping, meta: Mapping) -> None:
    """Refuse a stream that differs from what the model (``model.json``'s meta) was trained on.

    Compared: image size, colour mode, classes (names and order) and every declared
    preprocessing field the model recorded (interpolation, decoder, crop, ...), each
    named in the message.
    """
    problems = []
    shape = image_shape(hello)
    model_shape = list(meta["image_shape"])
    if shape[:2] != model_shape[:2]:
        problems.append(f"image size: producer sends {shape[0]}x{shape[1]}, the model was trained on "
                        f"{model_shape[0]}x{model_shape[1]} (restart the producer with "
                        f"--image-size {model_shape[0]} {model_shape[1]} or retrain)")
    stream_mode = color_mode_of(shape[2])
    if stream_mode != meta["color_mode"]:
        problems.append(f"colour mode: producer sends {stream_mode} (C={shape[2]}), the model was trained "
                        f"on {meta['color_mode']}")
    classes = list(hello.get("classes") or [])
    if classes != list(meta["classes"]):
        problems.append(f"classes: producer has {classes}, the model has {list(meta['classes'])} "
                        f"(names and order must match)")
    problems += preprocessing_differences(meta.get("preprocessing"), hello.get("preprocessing"))
    if problems:
        raise ModelMismatch("model does not match the stream: " + "; ".join(problems))


#: Declared fields that do not refuse a model: the size has its own check (with its fix), and a
#: decoder's version number (OpenCV, or the DICOM decoder packages) alone changes no pixels of a lossless file.
_NOT_COMPARED = ("image_size", "decoder_version", "dicom_decoder")


def preprocessing_differences(trained: Mapping | None, streamed: Mapping | None) -> list[str]:
    """One line per declared preprocessing field that differs (empty when they agree).

    A model saved before preprocessing was recorded (``trained`` None) is compared on
    size and colour only, by :func:`check_model`.
    """
    if trained is None:
        return []
    streamed = dict(streamed or {})
    problems = []
    for key in sorted(set(trained) | set(streamed)):
        if key in _NOT_COMPARED:
            continue
        if trained.get(key) != streamed.get(key):
            problems.append(f"preprocessing {key}: producer sends {streamed.get(key, 'nothing')!r}, the model "
                            f"was trained on {trained.get(key, 'nothing')!r} (restart the producer with "
                            f"the model's setting or retrain)")
    return problems


def check_stream(hello: Mapping, config: FeatureConfig, meta: Mapping | None = None) -> None:
    """Everything a command checks of a stream before Spark starts.

    Parameters
    ----------
    hello : mapping
        The producer's hello (protocol version already checked by the client).
    config : FeatureConfig
        The features the command will compute.
    meta : mapping, optional
        The model's metadata, for predict.

    Raises
    ------
    StreamRefused
        Naming each problem and what to change.
    """
    check_features(hello, config)
    if meta is not None:
        check_model(hello, meta)
