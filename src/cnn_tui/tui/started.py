"""When this process started the UI, for the start-up timings in the log. Its own module so the
screens can read it without importing the launcher that imports them."""

from __future__ import annotations

import time

STARTED = time.perf_counter()
