"""``chestct-producer`` / ``python -m producer``: serve a dataset split over TCP."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from . import (augment, budget, dataset, dicom, framing, image_cache, imaging, readahead, server, server_config,
               stream, transport, wire)
from .argtypes import float_at_least, int_at_least, port
from .running import serve
from .batch import max_batch_frame_bytes
from .server_config import ServerConfig
from .stream import StreamSpec

log = logging.getLogger("producer")


def _window(text: str) -> str:
    try:
        return dicom.canonical_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    data.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int_at_least(1),
                      default=stream.DEFAULT_BATCH_SIZE, help="images per batch (default: %(default)s)")
    data.add_argument("--image-size", "--image_size", dest="image_size", type=int_at_least(1), nargs=2,
                      metavar=("H", "W"), default=list(imaging.DEFAULT_IMAGE_SIZE),
                      help="output height and width (default: %s %s)" % imaging.DEFAULT_IMAGE_SIZE)
    data.add_argument("--color-mode", "--color_mode", dest="color_mode", choices=sorted(imaging.COLOR_MODES),
                      default="grayscale", help="channels sent (default: %(default)s)")
    data.add_argument("--interpolation", choices=list(imaging.INTERPOLATIONS), default="area",
                      help="resize interpolation (default: %(default)s)")
    data.add_argument("--label-mode", "--label_mode", dest="label_mode", default="int",
                      help="only 'int' (class indices are what the wire carries; one-hot is the "
                           "consumer's job); accepted for compatibility")
    data.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True,
                      help="shuffle every epoch with a seeded permutation (default: on)")
    data.add_argument("--seed", type=int_at_least(0), default=0, help="shuffle seed (default: %(default)s)")
    data.add_argument("--endless", action="store_true",
                      help="repeat epochs forever (seq keeps counting, a new permutation per epoch)")
    data.add_argument("--window", type=_window, default=dicom.DEFAULT_WINDOW,
                      help=f"DICOM only: Hounsfield window, one of {', '.join(dicom.WINDOW_PRESETS)} "
                           "or LEVEL,WIDTH in HU written --window=-600,1500 (default: %(default)s)")
    data.add_argument("--max-image-pixels", type=int_at_least(1), default=imaging.DEFAULT_MAX_IMAGE_PIXELS,
                      help="skip images whose header announces more pixels (default: %(default)s)")
    data.add_argument("--on-changed-file", choices=stream.CHANGED_FILE_POLICIES,
                      default=stream.DEFAULT_ON_CHANGED_FILE,
                      help="a file whose content changed since start-up: fail its batches with a "
                           "file_changed error, or skip the file and name it (default: %(default)s)")
    data.add_argument("--crop", choices=framing.CROPS, default=framing.DEFAULT_CROP,
                      help="cut each picture to the body's bounding box before resizing, or keep it whole "
                           "(default: %(default)s)")
    data.add_argument("--crop-margin", type=float_at_least(0.0), default=framing.DEFAULT_CROP_MARGIN,
                      help=f"margin around the body box, fraction of its side, at most {framing.MAX_CROP_MARGIN} "
                           "(default: %(default)s)")
    data.add_argument("--aspect", choices=framing.ASPECTS, default=framing.DEFAULT_ASPECT,
                      help="stretch the crop to --image-size, or pad it with black to that aspect first "
                           "(default: %(default)s)")
    data.add_argument("--normalize", choices=framing.NORMALIZATIONS, default=framing.DEFAULT_NORMALIZE,
                      help="grey-level normalisation after the crop (default: %(default)s)")
    data.add_argument("--denoise", choices=framing.DENOISERS, default=framing.DEFAULT_DENOISE,
                      help="smoothing after the crop, before the normalisation (default: %(default)s)")
    data.add_argument("--augment", type=int_at_least(0), default=None, metavar="N",
                      help=f"also stream N copies of every picture re-rendered with seeded acquisition changes, "
                           f"copy k with the k-th of {', '.join(augment.COPY_PERTURBATIONS)} in turn, so a model "
                           f"trained on them ignores those; for training streams, at most {augment.MAX_COPIES} "
                           f"(default: {augment.DEFAULT_TRAIN_COPIES} on the train split, 0 on the others)")

    net = ap.add_argument_group("network")
    net.add_argument("--host", default=server_config.DEFAULT_HOST, help="address to bind (default: %(default)s)")
    net.add_argument("--port", type=port(0), default=wire.DEFAULT_PORT, help="TCP port; 0 picks one (default: %(default)s)")
    net.add_argument("--sleep", type=float_at_least(0.0), default=0.0,
                     help="seconds to pause after each batch on a connection (default: %(default)s)")
    net.add_argument("--max-frame-bytes", type=int_at_least(wire.MIN_FRAME_LIMIT), default=wire.DEFAULT_MAX_FRAME_BYTES,
                     help="largest frame sent (default: %(default)s)")
    net.add_argument("--prefetch", type=int_at_least(1), default=server_config.DEFAULT_PREFETCH,
                     help="batches built ahead per connection (default: %(default)s)")
    net.add_argument("--read-ahead", type=int_at_least(0), default=readahead.DEFAULT_READ_AHEAD_BATCHES,
                     help="batches built at the lowest CPU priority after the furthest one subscribed to, "
                          "once no subscription is being served, for the next ones; 0: none "
                          "(default: %(default)s)")
    net.add_argument("--workers", type=int_at_least(1), default=None,
                     help="decoding threads shared by all connections (default: CPU count)")
    net.add_argument("--subscribe-timeout", type=float_at_least(0.0, strict=True),
                     default=server_config.DEFAULT_SUBSCRIBE_TIMEOUT,
                     help="seconds a connection may wait without subscribing (default: %(default)s)")
    net.add_argument("--send-timeout", type=float_at_least(0.0, strict=True),
                     default=server_config.DEFAULT_SEND_TIMEOUT,
                     help="seconds a frame may wait for a consumer that does not read (default: %(default)s)")
    net.add_argument("--stall-timeout", type=float_at_least(0.0, strict=True),
                     default=server_config.DEFAULT_STALL_TIMEOUT,
                     help="seconds without reading after which a consumer's prepared batches are given back "
                          "(default: %(default)s)")
    net.add_argument("--max-connections", type=int_at_least(1), default=budget.DEFAULT_MAX_CONNECTIONS,
                     help="connections served at once; more get a 'busy' error (default: %(default)s)")
    net.add_argument("--max-buffered-bytes", type=int_at_least(1), default=budget.DEFAULT_MAX_BUFFERED_BYTES,
                     help="bytes of prepared batch frames over all connections (default: %(default)s)")
    net.add_argument("--image-cache-bytes", type=int_at_least(0), default=image_cache.DEFAULT_IMAGE_CACHE_BYTES,
                     help="bytes of preprocessed images kept, so replays and later epochs do not decode "
                          "them again; 0: none (default: %(default)s)")

    sec = ap.add_argument_group("security (see docs/security.md)")
    sec.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve TLS 1.2+ with this PEM certificate")
    sec.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's PEM private key")
    sec.add_argument("--token-file", type=Path, metavar="FILE",
                     help="require consumers to send this shared secret first (file mode 600)")
    sec.add_argument("--insecure", action="store_true",
                     help="allow a non-loopback --host without TLS and a token")

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
                                     interpolation=args.interpolation, max_image_pixels=args.max_image_pixels,
                                     window=args.window, crop=args.crop, crop_margin=args.crop_margin,
                                     aspect=args.aspect, normalize=args.normalize, denoise=args.denoise)
        spec = StreamSpec.from_directory(args.directory, args.split, progress=args.progress,
                                         batch_size=args.batch_size, preprocessing=prep, shuffle=args.shuffle,
                                         seed=args.seed, endless=args.endless,
                                         on_changed_file=args.on_changed_file,
                                         augment=(augment.default_copies(dataset.split_folder(args.split))
                                                  if args.augment is None else args.augment))
    except (dataset.DatasetError, ValueError) as exc:
        ap.error(str(exc))
    needed = max_batch_frame_bytes(spec)
    if needed > args.max_frame_bytes:
        ap.error(f"a batch of {args.batch_size} images of {prep.image_shape} needs frames up to ~{needed} bytes, "
                 f"over --max-frame-bytes {args.max_frame_bytes}: lower --batch-size or --image-size")
    return spec


def security_from_args(args: argparse.Namespace, ap: argparse.ArgumentParser) -> dict:
    """TLS context and token from the options; refuses an exposed address without them unless --insecure."""
    if (args.tls_cert is None) != (args.tls_key is None):
        ap.error("--tls-cert and --tls-key go together")
    try:
        context = None if args.tls_cert is None else transport.server_ssl_context(args.tls_cert, args.tls_key)
        token = None if args.token_file is None else transport.read_token(args.token_file)
    except transport.TransportError as exc:
        ap.error(str(exc))
    problem = transport.exposure_problem(args.host, tls=context is not None, token=token is not None)
    if problem is not None:
        if not args.insecure:
            ap.error(f"{problem}. Add --tls-cert/--tls-key and --token-file (docs/security.md), "
                     "or --insecure if the network is trusted")
        log.warning("INSECURE: %s (--insecure given)", problem)
    return {"ssl_context": context, "token": token}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 after SIGINT/SIGTERM)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    configure_logging(args.log_level)
    security = security_from_args(args, ap)
    spec = spec_from_args(args, ap)
    config_kwargs = dict(host=args.host, port=args.port, sleep=args.sleep, max_frame_bytes=args.max_frame_bytes,
                         prefetch=args.prefetch, read_ahead=args.read_ahead, subscribe_timeout=args.subscribe_timeout,
                         send_timeout=args.send_timeout, stall_timeout=args.stall_timeout,
                         max_connections=args.max_connections, max_buffered_bytes=args.max_buffered_bytes,
                         image_cache_bytes=args.image_cache_bytes,
                         progress=args.progress, **security)
    if args.workers is not None:
        config_kwargs["workers"] = args.workers
    try:
        config = ServerConfig(**config_kwargs)
        server.ProducerServer(spec, config)  # checks the budget against the batch size before binding
    except ValueError as exc:
        ap.error(str(exc))
    try:
        return serve(spec, config)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
