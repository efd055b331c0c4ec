"""Learning: estimators, the model and its store, fitting, incremental and Spark ML training.

``estimators`` (classifiers and defaults) -> ``design`` (table rows to the design matrix)
-> ``fit`` / ``incremental`` / ``mllib`` (make a :class:`~consumer.learn.model.TrainedModel`)
-> ``model_store`` (skops + model.json, verified on load); ``prequential`` and ``feeder``
give the per-batch test-then-train numbers while ``train`` streams.
"""
