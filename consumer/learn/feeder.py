"""Feed the features table, as it grows, to the running model of ``chestct train``.

After each committed micro-batch, the rows not yet fed (``seq >= next_seq``) are read
back through Spark and handed to a :class:`~consumer.learn.prequential.PrequentialTrainer`,
producer batch by producer batch: each is predicted by the running model, then trained on.
A restarted train catches up on what an earlier run committed the same way.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from ..stream.table import training_frame

log = logging.getLogger("chestct.train")


class BatchFeeder:
    """Feeds committed rows to a prequential trainer, each row once.

    Parameters
    ----------
    prequential : consumer.learn.prequential.PrequentialTrainer
    read_rows : callable
        ``read_rows(min_seq)`` -> pandas DataFrame of the committed table rows with
        ``seq >= min_seq`` (image rows and skip markers).
    on_entry : callable, optional
        Gets each :meth:`PrequentialTrainer.step` entry (e.g. to print a line).
    """

    def __init__(self, prequential: Any, read_rows: Callable[[int], Any],
                 on_entry: Callable[[dict], None] | None = None):
        self.prequential = prequential
        self.read_rows = read_rows
        self.on_entry = on_entry
        self.next_seq = 0

    @property
    def trainer(self) -> Any:
        return self.prequential.trainer

    def catch_up(self) -> int:
        """Test-then-train every committed producer batch not fed yet; return how many images."""
        rows = self.read_rows(self.next_seq)
        if rows.empty:
            return 0
        self.next_seq = int(rows["seq"].max()) + 1
        frame = training_frame(rows)
        for entry in self.prequential.process(frame):
            if self.on_entry is not None:
                self.on_entry(entry)
        log.debug("fed %d images up to seq %d (%d so far)", len(frame), self.next_seq - 1,
                  self.trainer.n_images)
        return len(frame)

    def __call__(self, progress: Any) -> None:
        """``follow_query``'s ``on_batch`` callback."""
        self.catch_up()
