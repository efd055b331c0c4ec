"""``chestct-producer`` / ``python -m producer``: serve a dataset split over TCP."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from . import dataset, framing, imaging, wire
from .server import ServerConfig, serve
from .stream import StreamSpec, max_batch_frame_bytes

log = logging.getLogger("producer")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def _float_at_least(minimum: float, strict: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value != value or value < minimum or (strict and value == minimum) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def _port(text: str) -> int:
    value = _int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be <= 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line parser (also used to document the options)."""
    ap = argparse.ArgumentParser(
        prog="chestct-producer",
        description="Stream preprocessed chest CT image batches to consumers over TCP "
                    "(length-prefixed JSON frames, see docs/protocol.md).")
    data = ap.add_argument_group("data")
    data.add_argument("--directory", "-d", type=Path, required=True,
                      help="dataset folder holding train/ valid/ test/ with one folder per class")
    data.add_argument("--split", default="train", choices=sorted(dataset.SPLIT_ALIASES),
                      help="split to serve; dev is valid (default: %(default)s)")
    data.add_argument("--batch-size", "--batch_size", dest="batch_size", type=_int_at_least(1), default=8,
                      help="images per batch (default: %(default)s)")
    data.add_argument("--image-size", "--image_size", dest="image_size", type=_int_at_least(1), nargs=2,
                      metavar=("H", "W"), default=[128, 128], help="output height and width (default: 128 128)")
    data.add_argument("--color-mode", "--color_mode", dest="color_mode", choices=sorted(imaging.COLOR_MODES),
                      default="grayscale", help="channels sent (default: %(default)s)")
    data.add_argument("--interpolation", choices=list(imaging.INTERPOLATIONS), default="area",
                      help="resize interpolation (default: %(default)s)")
    data.add_argument("--label-mode", "--label_mode", dest="label_mode", default="int",
                      help="only 'int' (class indices are what the wire carries; one-hot is the "
                           "consumer's job); accepted for compatibility")
    data.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True,
                      help="shuffle every epoch with a seeded permutation (default: on)")
    data.add_argument("--seed", type=_int_at_least(0), default=0, help="shuffle seed (default: %(default)s)")
    data.add_argument("--endless", action="store_true",
                      help="repeat epochs forever (seq keeps counting, a new permutation per epoch)")
    data.add_argument("--max-image-pixels", type=_int_at_least(1), default=imaging.DEFAULT_MAX_IMAGE_PIXELS,
                      help="skip images whose header announces more pixels (default: %(default)s)")
    data.add_argument("--crop", choices=framing.CROPS, default=framing.DEFAULT_CROP,
                      help="cut each picture to the body's bounding box before resizing, or keep it whole "
                           "(default: %(default)s)")
    data.add_argument("--crop-margin", type=_float_at_least(0.0), default=framing.DEFAULT_CROP_MARGIN,
                      help=f"margin around the body box, fraction of its side, at most {framing.MAX_CROP_MARGIN} "
                           "(default: %(default)s)")
    data.add_argument("--aspect", choices=framing.ASPECTS, default=framing.DEFAULT_ASPECT,
                      help="stretch the crop to --image-size, or pad it with black to that aspect first "
                           "(default: %(default)s)")
    data.add_argument("--normalize", choices=framing.NORMALIZATIONS, default=framing.DEFAULT_NORMALIZE,
                      help="grey-level normalisation after the crop (default: %(default)s)")
    data.add_argument("--denoise", choices=framing.DENOISERS, default=framing.DEFAULT_DENOISE,
                      help="smoothing after the crop, before the normalisation (default: %(default)s)")

    net = ap.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    net.add_argument("--port", type=_port, default=6100, help="TCP port; 0 picks one (default: %(default)s)")
    net.add_argument("--sleep", type=_float_at_least(0.0), default=0.0,
                     help="seconds to pause after each batch on a connection (default: %(default)s)")
    net.add_argument("--max-frame-bytes", type=_int_at_least(1024), default=wire.DEFAULT_MAX_FRAME_BYTES,
                     help="largest frame sent (default: %(default)s)")
    net.add_argument("--prefetch", type=_int_at_least(1), default=4,
                     help="batches built ahead per connection (default: %(default)s)")
    net.add_argument("--workers", type=_int_at_least(1), default=None,
                     help="decoding threads shared by all connections (default: CPU count)")
    net.add_argument("--subscribe-timeout", type=_float_at_least(0.0, strict=True), default=60.0,
                     help="seconds a connection may wait without subscribing (default: %(default)s)")
    net.add_argument("--send-timeout", type=_float_at_least(0.0, strict=True), default=120.0,
                     help="seconds a frame may wait for a consumer that does not read (default: %(default)s)")

    out = ap.add_argument_group("output")
    out.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    out.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="(default: %(default)s)")
    return ap


class _TqdmLogHandler(logging.StreamHandler):
    """Log lines that do not tear the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never raise into the server
            self.handleError(record)


def configure_logging(level: str) -> None:
    handler = _TqdmLogHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def spec_from_args(args: argparse.Namespace, ap: argparse.ArgumentParser) -> StreamSpec:
    """Validate the data options into a :class:`StreamSpec` (argparse errors on bad values)."""
    if args.label_mode != "int":
        ap.error(f"--label-mode {args.label_mode!r} is not supported: batches carry integer class "
                 "indices (label_mode 'int'); one-hot encode them in the consumer")
    if not args.directory.is_dir():
        ap.error(f"--directory {str(args.directory)!r} does not exist or is not a folder")
    try:
        prep = imaging.Preprocessing(image_size=tuple(args.image_size), color_mode=args.color_mode,
                                     interpolation=args.interpolation, max_image_pixels=args.max_image_pixels)
        prep = dataclasses.replace(prep, crop=args.crop, crop_margin=args.crop_margin, aspect=args.aspect,
                                   normalize=args.normalize, denoise=args.denoise)
        spec = StreamSpec.from_directory(args.directory, args.split, batch_size=args.batch_size,
                                         preprocessing=prep, shuffle=args.shuffle, seed=args.seed,
                                         endless=args.endless)
    except (dataset.DatasetError, ValueError) as exc:
        ap.error(str(exc))
    needed = max_batch_frame_bytes(spec)
    if needed > args.max_frame_bytes:
        ap.error(f"a batch of {args.batch_size} images of {prep.image_shape} needs frames up to ~{needed} bytes, "
                 f"over --max-frame-bytes {args.max_frame_bytes}: lower --batch-size or --image-size")
    return spec


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 after SIGINT/SIGTERM)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    configure_logging(args.log_level)
    spec = spec_from_args(args, ap)
    config_kwargs = dict(host=args.host, port=args.port, sleep=args.sleep, max_frame_bytes=args.max_frame_bytes,
                         prefetch=args.prefetch, subscribe_timeout=args.subscribe_timeout,
                         send_timeout=args.send_timeout, progress=args.progress)
    if args.workers is not None:
        config_kwargs["workers"] = args.workers
    try:
        return serve(spec, ServerConfig(**config_kwargs))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
