"""The ``chestct`` source's options: Spark's strings parsed and validated once, in the driver."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..features.config import BACKENDS, DEFAULT_BACKEND, FeatureConfig
from . import settings
from .client import ConnectConfig


class OptionError(ValueError):
    """A ``chestct`` source option is missing or has a bad value."""


def _lookup(options: Mapping[str, str], name: str) -> str | None:
    # Spark hands options over in a case-insensitive map; plain dicts are matched here too.
    lowered = name.lower()
    for key, value in options.items():
        if key.lower() == lowered:
            return value
    return None


def _parse(options: Mapping[str, str], name: str, kind: type, default: Any, *,
           minimum: float | None = None) -> Any:
    raw = _lookup(options, name)
    if raw is None:
        return default
    text = str(raw).strip()
    try:
        value = kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise OptionError(f"chestct option {name!r} must be {noun}, got {raw!r}") from None
    if kind is float and not math.isfinite(value):
        raise OptionError(f"chestct option {name!r} must be finite, got {raw!r}")
    if minimum is not None and value < minimum:
        raise OptionError(f"chestct option {name!r} must be >= {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class SourceOptions:
    """The source's options, parsed once from Spark's string options.

    Attributes mirror the option names in docs/consumer.md ("Source options").
    """

    connect: ConnectConfig = field(default_factory=ConnectConfig)
    max_batches_per_trigger: int = settings.DEFAULT_MAX_BATCHES_PER_TRIGGER
    num_partitions: int = settings.DEFAULT_NUM_PARTITIONS
    on_bad_batch: str = settings.DEFAULT_BAD_BATCH
    max_retries: int = settings.DEFAULT_MAX_RETRIES
    starting_seq: int = 0
    ending_seq: int | None = None
    #: The feature stage run by the reader itself (option ``features``), or None: rows keep
    #: their pixels for a separate stage (:func:`consumer.features.stage.add_features`).
    features: FeatureConfig | None = None
    feature_backend: str = DEFAULT_BACKEND
    feature_threads: int = 1

    KNOWN = ("host", "port", "connectTimeout", "readTimeout", "maxFrameBytes",
             "maxBatchesPerTrigger", "numPartitions", "onBadBatch", "maxRetries",
             "startingSeq", "endingSeq", "tlsCa", "tokenFile",
             "features", "featureBackend", "featureThreads")

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> "SourceOptions":
        """Parse and validate Spark's string options.

        Raises
        ------
        OptionError
            Naming the option, for an unknown option or a bad value.
        """
        known = {name.lower(): name for name in cls.KNOWN}
        for key in options:
            if key.lower() not in known:
                raise OptionError(f"unknown chestct option {key!r}; known options: "
                                  f"{', '.join(cls.KNOWN)}")
        host = (_lookup(options, "host") or settings.DEFAULT_HOST).strip()
        if not host:
            raise OptionError("chestct option 'host' must not be empty")
        port = _parse(options, "port", int, settings.DEFAULT_PORT, minimum=1)
        if port > 65535:
            raise OptionError(f"chestct option 'port' must be <= 65535, got {port}")
        connect = ConnectConfig(
            host=host,
            port=port,
            connect_timeout=_parse(options, "connectTimeout", float, settings.DEFAULT_CONNECT_TIMEOUT,
                                   minimum=settings.MIN_TIMEOUT),
            read_timeout=_parse(options, "readTimeout", float, settings.DEFAULT_READ_TIMEOUT,
                                minimum=settings.MIN_TIMEOUT),
            max_frame_bytes=_parse(options, "maxFrameBytes", int, settings.DEFAULT_MAX_FRAME_BYTES,
                                   minimum=settings.MIN_MAX_FRAME_BYTES),
            tls_ca=(_lookup(options, "tlsCa") or "").strip() or None,
            token_file=(_lookup(options, "tokenFile") or "").strip() or None,
        )
        policy = (_lookup(options, "onBadBatch") or settings.DEFAULT_BAD_BATCH).strip().lower()
        if policy not in settings.BAD_BATCH_POLICIES:
            raise OptionError(f"chestct option 'onBadBatch' must be one of "
                              f"{'|'.join(settings.BAD_BATCH_POLICIES)}, got {_lookup(options, 'onBadBatch')!r}")
        starting = _parse(options, "startingSeq", int, 0, minimum=0)
        ending = _parse(options, "endingSeq", int, None, minimum=0)
        if ending is not None and ending < starting:
            raise OptionError(f"chestct option 'endingSeq' ({ending}) must be >= "
                              f"'startingSeq' ({starting})")
        return cls(
            connect=connect,
            max_batches_per_trigger=_parse(options, "maxBatchesPerTrigger", int,
                                           settings.DEFAULT_MAX_BATCHES_PER_TRIGGER, minimum=1),
            num_partitions=_parse(options, "numPartitions", int, settings.DEFAULT_NUM_PARTITIONS, minimum=1),
            on_bad_batch=policy,
            max_retries=_parse(options, "maxRetries", int, settings.DEFAULT_MAX_RETRIES, minimum=0),
            starting_seq=starting,
            ending_seq=ending,
            **_feature_options(options),
        )


def featured_options(config: FeatureConfig, backend: str = DEFAULT_BACKEND, n_threads: int = 1) -> dict[str, str]:
    """The options that make the source's reader run the feature stage on each batch.

    The rows then carry ``features`` and ``sift`` instead of ``pixels``: one Python worker
    per task instead of two, and no pixels through the JVM (docs/consumer.md).
    """
    return {"features": json.dumps(config.to_dict(), sort_keys=True), "featureBackend": backend,
            "featureThreads": str(n_threads)}


def _feature_options(options: Mapping[str, str]) -> dict[str, Any]:
    raw = _lookup(options, "features")
    backend = (_lookup(options, "featureBackend") or DEFAULT_BACKEND).strip().lower()
    if backend not in BACKENDS:
        raise OptionError(f"chestct option 'featureBackend' must be one of {'|'.join(BACKENDS)}, "
                          f"got {_lookup(options, 'featureBackend')!r}")
    threads = _parse(options, "featureThreads", int, 1, minimum=1)
    if raw is None:
        return {}
    try:
        config = FeatureConfig.from_dict(json.loads(raw))
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        raise OptionError(f"chestct option 'features' must be a feature configuration as JSON "
                          f"(FeatureConfig.to_dict()): {exc}") from None
    return {"features": config, "feature_backend": backend, "feature_threads": threads}
