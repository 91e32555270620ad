"""Where a search's trials run (KerasTuner's "tuner" side): here, one at a time; in worker
processes on this machine (``--jobs N``, ``--gpus``); or on a Dask cluster (``--cluster``,
``core.tuning.dask_executor``). Every executor runs ``trials.run_trial`` and hands each trial back
as it ends, so tables fill live whatever runs them.

An executor's ``run(specs, on_trial, prepare)`` runs a round: ``prepare`` fills a spec in at
the moment it is dispatched (the pruning reference then known), ``on_trial`` receives each
ended trial. After a stop, trials not yet started are not run and running ones end within a
batch. A worker that dies takes its trial with it: the trial is run once more on a fresh
worker, then recorded as failed with the reason, and the search goes on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.data.feeding import PixelView
from cnn_tui.core.data.pool import fit_worker
from cnn_tui.core.events import Emit, ignore
from cnn_tui.core.tuning import fit_pool
from cnn_tui.core.tuning.dask_executor import DaskExecutor
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.trials import Trial, TrialSpec, run_trial

OnTrial = Callable[[Trial], None]
Prepare = Callable[[TrialSpec], TrialSpec]
RETRIES = 1  # a trial whose worker died runs once more, then counts as failed
# Keras keeps a few MiB for every network built (docs/benchmarks.md): a worker that has grown this
# much since its first fit is replaced by a fresh one (a few seconds to import the backend again)
# before its next, so a search of hundreds of fits keeps its memory.
RECYCLE_GROWTH = 0.25


SKIP_FILE = "skip"  # in a search's work folder: skip the running fit (``run_control.skip_fit``)


class Skip:
    """Skip the running fit: set here (a thread of this process) or by a file another process
    writes (the TUI, for the run process it follows)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.file: Path | None = None

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set() or (self.file is not None and self.file.exists())

    def clear(self) -> None:
        self.event.clear()
        if self.file is not None:
            self.file.unlink(missing_ok=True)


class InProcessExecutor:
    """One trial at a time, in this process: batch-level progress, and a skip for the running fit."""

    name = "in-process"

    def __init__(self, stop: threading.Event, emit: Emit = ignore) -> None:
        self.stop = stop
        self.emit = emit  # the running fit's events (batch progress)
        self.skip = Skip()
        self.x: Any = None
        self.y: np.ndarray | None = None
        self.work_dir: Path | None = None

    def start(self, x: Any, y: np.ndarray, work_dir: Path) -> None:
        self.x, self.y, self.work_dir = x, y, work_dir
        self.skip.file = work_dir / SKIP_FILE

    def run(self, specs: list[TrialSpec], on_trial: OnTrial, prepare: Prepare) -> None:
        for spec in specs:
            if self.stop.is_set():
                return
            self.skip.clear()
            trial = run_trial(prepare(spec), self.x, self.y, stop=self.stop, emit=self.emit, skip=self.skip,
                              work_dir=str(self.work_dir))
            on_trial(trial)

    def close(self) -> None:
        fit_pool.pool().clear()  # the last network built: not kept past its search


class FileFlag:
    """A stop signal a worker process can see: a file that exists once the search is stopped."""

    def __init__(self, path: str) -> None:
        self.path = path

    def is_set(self) -> bool:
        return Path(self.path).exists()


_IMAGES: dict[str, Any] = {}


def _worker_trial(spec: TrialSpec, images: str, labels: np.ndarray, stop_file: str, work_dir: str) -> Trial:
    """A trial in a worker process. The images are a uint8 file the worker maps once and
    scales per batch, so N workers share one copy in the page cache."""
    if images not in _IMAGES:
        _IMAGES.clear()
        pixels = np.load(images, mmap_mode="r")
        _IMAGES[images] = PixelView(pixels, np.arange(len(pixels)))
    trial = run_trial(spec, _IMAGES[images], labels, stop=FileFlag(stop_file), work_dir=work_dir)
    return replace(trial, worker_mib=resident_mib())


def resident_mib() -> float:
    """This process's resident memory (Linux; 0 elsewhere: workers are then never replaced)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def save_pixels(x: Any, path: Path) -> Path:
    """The images as uint8 (how they were decoded: exact), written once for every worker."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=tuple(x.shape))
    for start in range(0, len(x), 1024):
        out[start:start + 1024] = np.rint(np.asarray(x[start:start + 1024]) * 255)
    out.flush()
    return path


class ProcessExecutor:
    """``jobs`` fits at once, each in a worker process of its own (with ``gpus``, each worker sees
    one GPU, round-robin). Workers stay for the next fit; Keras's state is cleared per fit."""

    name = "processes"

    def __init__(self, jobs: int, stop: threading.Event, gpus: Sequence[str] = ()) -> None:
        self.jobs = jobs
        self.stop = stop
        self.gpus = list(gpus)
        self.slots: list[Any] = [None] * jobs
        self.last: list[dict[str, Any] | None] = [None] * jobs  # the combination each worker ran last
        self.first_mib: list[float] = [0.0] * jobs  # each worker's memory after its first fit
        self.recycled = 0
        self.labels: np.ndarray | None = None

    def start(self, x: Any, y: np.ndarray, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.images = str(save_pixels(x, work_dir / "images.npy"))
        self.labels = np.asarray(y)
        self.stop_file = str(work_dir / "stop")
        Path(self.stop_file).unlink(missing_ok=True)

    def _slot(self, index: int) -> Any:
        if self.slots[index] is None:
            env = {"CUDA_VISIBLE_DEVICES": self.gpus[index % len(self.gpus)]} if self.gpus else None
            self.slots[index] = fit_worker(env)
        return self.slots[index]

    def _submit(self, index: int, spec: TrialSpec) -> Future:
        return self._slot(index).submit(_worker_trial, spec, self.images, self.labels, self.stop_file,
                                        str(self.work_dir))

    def run(self, specs: list[TrialSpec], on_trial: OnTrial, prepare: Prepare) -> None:
        pending = list(specs)
        running: dict[Future, tuple[int, TrialSpec, int]] = {}  # future -> (slot, spec, retries so far)
        while pending or running:
            if self.stop.is_set():
                Path(self.stop_file).touch()  # running fits end within a batch; pending ones never start
                pending.clear()
            free = [i for i in range(self.jobs) if i not in {slot for slot, _, _ in running.values()}]
            while pending and free:
                slot = free.pop(0)
                spec = prepare(pending.pop(self._next_for(slot, pending)))
                self.last[slot] = spec.params
                running[self._submit(slot, spec)] = (slot, spec, 0)
            if not running:
                break
            done, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                slot, spec, retries = running.pop(future)
                try:
                    trial = future.result()
                except Exception as exc:  # the worker died (killed, out of memory): not the fit's doing
                    self._discard(slot)
                    if retries < RETRIES and not self.stop.is_set():
                        running[self._submit(slot, spec)] = (slot, spec, retries + 1)
                        continue
                    trial = Trial(spec, "failed", reason=f"its worker process died ({type(exc).__name__}) "
                                  f"{retries + 1} time(s)", retries=retries)
                else:
                    trial = replace(trial, retries=retries)
                    self._recycle_if_grown(slot, trial.worker_mib)
                on_trial(trial)

    def _recycle_if_grown(self, slot: int, mib: float) -> None:
        if not self.first_mib[slot]:
            self.first_mib[slot] = mib
        elif mib > self.first_mib[slot] * (1 + RECYCLE_GROWTH):
            self._discard(slot)  # idle now: its next fit starts a fresh worker
            self.recycled += 1

    def _next_for(self, slot: int, pending: list[TrialSpec]) -> int:
        """Which pending trial a free worker runs: another fold of the combination it ran last
        (its network is built and traced, ``core.tuning.fit_pool``), else a combination no other worker
        is on, else the first."""
        others = [params for i, params in enumerate(self.last) if i != slot]
        mine = [i for i, spec in enumerate(pending) if spec.params == self.last[slot]]
        unclaimed = [i for i, spec in enumerate(pending) if spec.params not in others]
        return (mine or unclaimed or [0])[0]

    def _discard(self, index: int) -> None:
        slot, self.slots[index], self.last[index], self.first_mib[index] = self.slots[index], None, None, 0.0
        if slot is not None:
            slot.shutdown(wait=False, kill_workers=True)

    def close(self) -> None:
        for index in range(self.jobs):
            self._discard(index)


def make_executor(options: SearchOptions, *, stop: threading.Event, emit: Emit = ignore) -> Any:
    """Where ``options`` say the search's trials run: a Dask cluster, worker processes, or here."""
    if options.cluster:
        return DaskExecutor(options.cluster, stop=stop, security=options.security, emit=emit)  # emit: its notices
    if options.jobs > 1 or options.gpus:
        # --gpus 0,1 alone means a fit on each GPU: one worker per GPU unless --jobs says otherwise
        return ProcessExecutor(max(options.jobs, len(options.gpus)), stop, options.gpus)
    return InProcessExecutor(stop, emit)


