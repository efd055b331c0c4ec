"""Option plumbing for :class:`consumer.features.config.FeatureConfig`.

Option names are ``<family>.<parameter>`` (``hog.orientations``); the dataclass field is
``<family>_<parameter>``. Values arrive as Python values (from model.json) or as Spark-style
strings (from the command line); both are coerced to the field's annotated type here.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np


def meta(doc: str, check: Callable[[Any], str | None] | None = None) -> dict:
    """A field's metadata: its one-line doc and an optional check returning a problem or None."""
    return {"doc": doc, "check": check}


def positive(v) -> str | None:
    values = v if isinstance(v, tuple) else (v,)
    return None if all(x > 0 for x in values) else "must be > 0"


def non_empty_positive(v) -> str | None:
    if not v:
        return "must not be empty"
    return positive(v)


def one_of(choices: Sequence[str]) -> Callable[[Any], str | None]:
    def check(v):
        return None if v in choices else f"must be one of {', '.join(choices)}"
    return check


def option_name(field_name: str) -> str:
    """``hog_orientations`` -> ``hog.orientations``."""
    if field_name == "features":
        return "features"
    family, param = field_name.split("_", 1)
    return f"{family}.{param}"


def option_to_field(cls: type) -> dict[str, str]:
    """Option name -> dataclass field name for every field of ``cls``."""
    return {option_name(f.name): f.name for f in dataclasses.fields(cls)}


def _scalar_type(f: dataclasses.Field) -> tuple[type, bool]:
    """(element type, is_tuple) of a field from its annotation string."""
    ann = str(f.type)
    is_tuple = ann.startswith("tuple")
    for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if name in ann:
            return typ, is_tuple
    raise TypeError(f"unsupported annotation {ann}")


def coerce(f: dataclasses.Field, value):
    typ, is_tuple = _scalar_type(f)
    option = option_name(f.name)
    if is_tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            raise ValueError(f"feature option {option} must be a sequence of {typ.__name__}, got {value!r}")
        return tuple(_coerce_scalar(option, typ, v) for v in value)
    return _coerce_scalar(option, typ, value)


def _coerce_scalar(option: str, typ: type, value):
    if typ is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
    elif typ is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif typ is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ValueError(f"feature option {option} must be finite, got {value!r}")
            return float(value)
    elif isinstance(value, str):
        return value
    raise ValueError(f"feature option {option} must be {typ.__name__}, got {value!r}")


def parse(f: dataclasses.Field, key: str, text) -> Any:
    if not isinstance(text, str):
        raise ValueError(f"feature option {key} must be given as a string, got {text!r}")
    typ, is_tuple = _scalar_type(f)
    parts = [p.strip() for p in text.split(",")] if is_tuple else [text.strip()]
    if is_tuple and parts == [""]:
        parts = []
    values = []
    for part in parts:
        try:
            values.append(_parse_scalar(typ, part))
        except ValueError:
            raise ValueError(f"feature option {key}={text!r}: {part!r} is not a valid {typ.__name__}") from None
    return tuple(values) if is_tuple else values[0]


def _parse_scalar(typ: type, text: str):
    if typ is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(text)
    if typ is int:
        return int(text)
    if typ is float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value
    if not text:
        raise ValueError(text)
    return text


def jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)
