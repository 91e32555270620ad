"""At most ~10 progress updates a second reach the widgets, whatever rate the engine emits at.

Progress events (images loaded, batches trained, tuning batches) replace each other: only the
newest of each kind is shown, on a timer. Events that matter one by one (an epoch's end, a fold,
a notice) are shown at once, after any progress still waiting, so they are never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

INTERVAL = 0.1  # seconds between progress updates
# Never a zero delay: Textual 8's Timer divides by its interval when it starts late (``_run``: skip), so a
# set_timer(0) that starts a microsecond late dies with ZeroDivisionError, silently, and the progress froze.
MIN_DELAY = 0.001


class ProgressThrottle:
    def __init__(self, owner: Any, apply: Callable[[Any], None], interval: float = INTERVAL) -> None:
        self.owner = owner  # a Textual message pump: its timers run on the UI thread
        self.apply = apply
        self.interval = interval
        self.pending: dict[Any, Any] = {}
        self.timer: Any = None
        self.last = 0.0

    def offer(self, key: Any, item: Any) -> None:
        """Keep ``item`` as the newest of its kind; show it within ``interval``."""
        self.pending[key] = item
        if self.timer is None:
            delay = max(MIN_DELAY, self.last + self.interval - time.monotonic())
            self.timer = self.owner.set_timer(delay, self.flush)

    def flush(self) -> None:
        """Show what is waiting now."""
        self._stop_timer()
        pending, self.pending = self.pending, {}
        if pending:
            self.last = time.monotonic()
        for item in pending.values():
            self.apply(item)

    def clear(self) -> None:
        """Drop what is waiting (the task ended: its final state is shown instead)."""
        self._stop_timer()
        self.pending = {}

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
