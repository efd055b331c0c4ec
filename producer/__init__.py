"""chestct producer: serves preprocessed image mini-batches over TCP (see docs/producer.md).

Modules: ``wire`` (the protocol), ``dataset`` (folder layout and labels), ``imaging``
(decoding one image), ``stream`` (batch plan, stream identity, building frames),
``server`` (asyncio server), ``cli`` (command line), ``synthetic`` (demo data).
"""
