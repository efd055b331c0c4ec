"""The stream: from the producer's socket to the features table.

``settings`` (defaults and bounds) -> ``client`` (TCP, hello, subscribe) -> ``options``
(the source's options) -> ``source`` (the ``chestct`` data source, driver side) ->
``reader`` (executor side: a seq range into Arrow rows) -> ``ingest`` (the checkpointed
Parquet query) -> ``table`` (where it lives, read through Spark) -> ``follow`` (progress).
``storage`` is the work dir on any Hadoop-compatible file system.
"""
