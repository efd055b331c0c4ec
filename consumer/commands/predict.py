"""``chestct predict``: predict a split as it streams, with metrics per batch and a report."""
from __future__ import annotations

import argparse
import time

from ..console import EXIT_INTERRUPTED, emit
from .common import Run, feature_config, fetch_stream_hello, log, output_dir, print_skipped, source_options


def cmd_predict(args: argparse.Namespace, run: Run) -> int:
    from .tracking import Tracking

    tracking = Tracking(args)
    status = "FAILED"
    try:
        code = _predict(args, run, tracking)
        status = "KILLED" if code == EXIT_INTERRUPTED else "FINISHED"
        return code
    finally:
        tracking.end(status)


def _predict(args: argparse.Namespace, run: Run, tracking) -> int:
    from ..evaluate import report as reporting
    from ..evaluate.predicting import StreamPredictor
    from ..features import FeatureConfig, backend_module
    from ..evaluate.follower import ModelFollower
    from ..learn import model_store, versions
    from ..learn.model import TrainedModel
    from ..learn.signing import load_key
    from ..preflight import check_model, check_stream
    from ..stream import storage
    from ..stream.follow import follow_query
    from ..stream.options import featured_options

    backend_module(args.backend)
    hello = fetch_stream_hello(args)
    # Everything that can refuse the model runs before Spark starts: hashes, the stream
    # check, and (sklearn) the skops type allowlist on load.
    model_dir = versions.resolve(args.save_path)
    version = model_dir.name if model_dir.parent.name == versions.VERSIONS_DIR else None
    if args.follow and version is None:
        raise ValueError(f"--follow needs a save path that train publishes versions into; {args.save_path} "
                         f"holds a single model")
    key = load_key(args.model_key_file)
    meta = model_store.read_meta(model_dir, key)
    if args.model is not None and args.model != meta["model"]:
        raise ValueError(f"--model {args.model} but {args.save_path} holds a {meta['model']} model")
    trained_with = FeatureConfig.from_dict(meta["feature_config"])
    config = feature_config(args, default=trained_with)
    if config != trained_with:
        raise ValueError(f"the model was trained with features {meta['feature_config']['features']} "
                         f"and its parameters; predict with the same (drop --features/--feature-option)")
    check_stream(hello, config, meta)
    model = TrainedModel.load(model_dir, key=key) if meta["engine"] == "sklearn" else None
    tracking.predict_started(model_dir, hello)
    run.start_spark()
    if model is None:
        model = TrainedModel.load(model_dir, key=key)  # Spark ML models load through the session
    log.info("predicting %s split (%s images) with %s/%s from %s", hello["split"],
             hello.get("total_images") or "endless", model.meta["model"], model.meta["engine"],
             args.save_path)
    follower = None
    if args.follow:
        def accept(candidate) -> None:
            if candidate.meta["feature_config"] != meta["feature_config"]:
                raise ValueError("it was trained with other features")
            check_model(hello, candidate.meta)

        follower = ModelFollower(model_dir.parent.parent, version,
                                 lambda folder: TrainedModel.load(folder, key=key), accept)
    predictor = StreamPredictor(model, emit=emit, version=version, follower=follower)
    featured = (run.spark.readStream.format("chestct")
                .options(**source_options(args, run.parallelism.slots),
                         **featured_options(config, args.backend, run.parallelism.n_threads)).load())
    # Each prediction run reads the split once: a fresh checkpoint every time.
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{id(run):x}"
    checkpoint = storage.join(storage.qualify(args.work_dir), "predict", f"checkpoint-{stamp}")
    writer = featured.writeStream.foreachBatch(predictor.foreach_batch).option("checkpointLocation", checkpoint)
    finite = hello.get("total_batches") is not None
    writer = writer.trigger(availableNow=True) if finite else writer.trigger(processingTime="0 seconds")
    with storage.one_run_checkpoint(run.spark):
        query = writer.start()
    interrupted = False
    try:
        follow_query(query, total_batches=hello.get("total_batches"), progress_bar=args.progress,
                     emit=emit, log_batches=False)
    except KeyboardInterrupt:
        # An endless stream ends with Ctrl-C: report what was predicted until then.
        if not predictor.history:
            raise
        interrupted = True
        query.stop()
    result = predictor.report(
        model={k: model.meta[k] for k in ("model", "engine", "n_train_images", "n_features")},
        model_path=str(model_dir), features=config.to_dict(), backend=args.backend,
        stream={k: hello.get(k) for k in ("stream_id", "split", "image_shape", "total_images",
                                          "preprocessing")},
        interrupted=interrupted)
    reporting.print_report(result)
    report_path = args.report or output_dir(args) / "report.json"
    plots = args.plots_dir or output_dir(args) / "plots"
    reporting.write_report(result, report_path)
    reporting.plot_confusion_matrix(result, plots / "confusion_matrix.png")
    reporting.plot_accuracy_over_batches(predictor.history, plots / "accuracy_over_batches.png")
    tracking.predict_finished(result, [report_path, plots / "confusion_matrix.png",
                                       plots / "accuracy_over_batches.png"])
    print_skipped(result["skipped_files"])
    print(f"report {report_path}; plots in {plots}" + (" (interrupted: partial)" if interrupted else ""))
    return EXIT_INTERRUPTED if interrupted else 0
