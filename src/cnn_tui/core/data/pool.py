"""The image-decoding worker processes: how many, started when, and safe to start from
inside a Textual app."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from cnn_tui.core.data import decode
from cnn_tui.core.environment import env_int


def worker_count() -> int:
    configured = env_int("CNN_TUI_WORKERS", None, low=1)
    if configured:
        return configured
    from joblib import cpu_count  # noqa: PLC0415 — joblib loads when worker processes are first needed, not with the app

    # the CPUs this process may use: its affinity mask and a container's CPU quota (cgroup cpu.max),
    # not the machine's count, which would start a worker per host core inside a 2-CPU container
    return max(1, cpu_count())


def process_pool(workers: int) -> Any:
    """joblib's reusable loky executor: its workers are fresh interpreters (fork+exec), so they
    are safe to start after TensorFlow's threads are running, and unlike multiprocessing's
    spawn/forkserver they never re-import the caller's ``__main__`` (which breaks under stdin,
    notebooks and scripts without a main guard)."""
    from joblib.externals.loky import get_reusable_executor  # noqa: PLC0415 — joblib loads when worker processes are first needed, not with the app

    with _stderr_with_a_descriptor(), interrupts_held():
        return _Pool(get_reusable_executor(max_workers=workers, timeout=300, initializer=ignore_interrupts))


def ignore_interrupts() -> None:
    """Worker processes' initializer: Ctrl-C in a terminal reaches every process of the
    foreground group; the main process decides what a stop means (it saves what is done and
    tells the workers through its own channels), so workers must not die of it first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Ignore SIGINT while this thread starts worker processes: a child starts with the parent's
    ignored signals ignored (Python keeps them so), so a Ctrl-C while a worker is still importing,
    before ``ignore_interrupts`` runs, cannot kill it. Only the main thread can change a handler,
    and only it needs to: the TUI takes Ctrl-C as a key, and a run process has no terminal. A
    Ctrl-C within the few milliseconds of a start is lost (pressing it again stops)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def search_backend() -> str:
    """The joblib backend a search's parallel fits run on: loky, with workers started as above."""
    from joblib import register_parallel_backend  # noqa: PLC0415 — joblib loads when worker processes are first needed, not with the app
    from joblib._parallel_backends import LokyBackend  # noqa: PLC0415 — joblib loads when worker processes are first needed, not with the app

    class HeldLokyBackend(LokyBackend):
        def configure(self, *args: Any, **kwargs: Any) -> Any:
            with interrupts_held():
                return super().configure(*args, **kwargs)

        def submit(self, func: Any, callback: Any = None) -> Any:
            with interrupts_held():
                return super().submit(func, callback)

    register_parallel_backend(SEARCH_BACKEND, HeldLokyBackend)
    return SEARCH_BACKEND


SEARCH_BACKEND = "cnn-tui-loky"


def fit_worker(env: dict[str, str] | None = None) -> Any:
    """One worker process for a search's fits (its own, so ``env`` can give it its own GPU
    through CUDA_VISIBLE_DEVICES before the backend starts), started as ``process_pool``'s."""
    from joblib.externals.loky import ProcessPoolExecutor  # noqa: PLC0415 — joblib loads when worker processes are first needed, not with the app

    with _stderr_with_a_descriptor(), interrupts_held():
        return _Pool(ProcessPoolExecutor(max_workers=1, initializer=ignore_interrupts, env=env))


class _Pool:
    """The executor, with every submit (which may start worker processes) made safe to call
    from inside a Textual app."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor

    def submit(self, *args: Any) -> Future:
        with _stderr_with_a_descriptor(), interrupts_held():
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
