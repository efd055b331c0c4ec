"""chestct producer: serves preprocessed image mini-batches over TCP (see docs/producer.md).

Modules: ``wire`` (the protocol), ``dataset`` (folder layout and labels), ``imaging``
(decoding one image), ``reading`` (confined, content-checked file reads), ``stream``
(batch plan, stream identity), ``batch`` (building one batch frame), ``budget`` (byte
budget, fair decoding pool), ``connection`` (one consumer's state), ``control`` (the
frames a consumer sends), ``server`` (asyncio server), ``server_config`` (its settings
and counters), ``running``
(serving until a signal or on a thread), ``transport`` (TLS, token), ``cli`` (command
line), ``synthetic`` (demo data), ``launch`` (local processes).
"""
