"""The image-decoding worker processes: how many, started when, and safe to start from
inside a Textual app."""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Iterator

from cnn_tui.core import decode


def worker_count() -> int:
    from cnn_tui.core.environment import env_int

    configured = env_int("CNN_TUI_WORKERS", None, low=1)
    if configured:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def process_pool(workers: int) -> Any:
    """joblib's reusable loky executor: its workers are fresh interpreters (fork+exec), so they
    are safe to start after TensorFlow's threads are running, and unlike multiprocessing's
    spawn/forkserver they never re-import the caller's ``__main__`` (which breaks under stdin,
    notebooks and scripts without a main guard)."""
    from joblib.externals.loky import get_reusable_executor

    with _stderr_with_a_descriptor():
        return _Pool(get_reusable_executor(max_workers=workers, timeout=300, initializer=ignore_interrupts))


def ignore_interrupts() -> None:
    """Worker processes' initializer: Ctrl-C in a terminal reaches every process of the
    foreground group; the main process decides what a stop means (it saves what is done and
    tells the workers through its own channels), so workers must not die of it first."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Pool:
    """The executor, with every submit (which may start worker processes) made safe to call
    from inside a Textual app."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor

    def submit(self, *args: Any) -> Future:
        with _stderr_with_a_descriptor():
            return self.executor.submit(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.executor, name)


class _Descriptor2:
    """A stream that writes where ``stream`` writes but names descriptor 2 as its file."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def fileno(self) -> int:
        return 2

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def _stderr_with_a_descriptor() -> Iterator[None]:
    """Starting processes, loky and multiprocessing hand ``sys.stderr.fileno()`` to a helper
    process; inside a Textual app sys.stderr is a capture object whose fileno() is -1, and the
    start fails ("bad value(s) in fds_to_keep"). For that moment sys.stderr names descriptor 2
    (the TUI points it at its log file); what is written still goes where it went."""
    try:
        usable = sys.stderr is not None and sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        usable = False
    if usable:
        yield
        return
    saved = sys.stderr
    sys.stderr = _Descriptor2(saved)
    try:
        yield
    finally:
        sys.stderr = saved


def warm_up_pool(workers: int | None = None, *, wait: bool = False) -> None:
    """Start the decoding worker processes now, so the first big load does not pay for them.

    Each worker is a fresh interpreter importing numpy and Pillow (about half a second of
    CPU each). The TUI calls this once after its first frame; with ``wait`` it returns only
    when every worker is ready. Does nothing on one core; never raises.
    """
    workers = workers or worker_count()
    if workers < 2:
        return
    try:
        executor = process_pool(workers)
        futures = [executor.submit(decode.warm_up) for _ in range(workers)]
        if wait:
            for future in futures:
                future.result()
    except Exception:  # noqa: BLE001 - warming up is an optimisation, a real load reports errors
        return
