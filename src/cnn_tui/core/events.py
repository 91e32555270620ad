"""Plain dataclasses the engine emits through its ``emit(event)`` callback.

The CLI prints them; the TUI wraps them in Textual messages. They carry values
only (no Keras objects), so they are safe to pass between threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoadProgress:
    """Decoding images: ``done`` of ``total`` files."""

    folder: str
    done: int
    total: int
    images_per_second: float


@dataclass(frozen=True)
class BatchProgress:
    """Training is inside an epoch (throttled; at most ~10 a second)."""

    epoch: int  # 1-based
    epochs: int
    batch: int  # batches done in this epoch
    batches: int
    images_per_second: float
    loss: float | None
    accuracy: float | None
    eta_seconds: float | None


@dataclass(frozen=True)
class EpochEnd:
    """One epoch finished; ``logs`` holds loss, accuracy and val_* when validating."""

    epoch: int  # 1-based
    epochs: int
    logs: dict[str, float]
    seconds: float


# A fold row's keys that are not the combination's params (``trials.Trial.row``).
ROW_FIELDS = frozenset({"fold", "rung", "epochs_done", "samples", "accuracy", "loss", "fit_seconds", "status", "reason",
                        "split", "retries"})


@dataclass(frozen=True)
class FoldEnd:
    """One cross-validation fit of a tuning search finished (or failed)."""

    row: dict[str, Any]
    fits_done: int
    fits_total: int


@dataclass(frozen=True)
class TuningProgress:
    """Tuning progress counted in training batches over the whole search."""

    batches_done: int
    batches_total: int
    fits_done: int
    fits_total: int
    eta_seconds: float | None


@dataclass(frozen=True)
class TrainingStarted:
    """Training begins (or resumes at ``initial_epoch``): what the progress views need to lay out."""

    epochs: int
    batches: int  # per epoch
    batch_size: int
    samples: int
    validation_samples: int
    initial_epoch: int = 0
    title: str = ""


@dataclass(frozen=True)
class SearchPlanned:
    """A tuning search is about to run: the fields of ``core.tuning.search.TuningPlan``."""

    strategy: str
    candidates: list[dict[str, Any]]
    cv: int
    samples: int
    fits: int
    batches: int


@dataclass(frozen=True)
class Notice:
    """Something the user should read (a warning, a skipped file count, a hint)."""

    text: str
    level: str = "info"  # info | warning | error


@dataclass(frozen=True)
class TaskFinished:
    """A task ended: status is finished, stopped or failed."""

    task: str
    status: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemSample:
    """The machine while a run goes (about once a second, ``core.runs.system_monitor``): each GPU NVML
    sees (none without NVML) and the host's CPU and memory (None where psutil could not tell)."""

    # one dict a GPU: index, name, utilization (%), memory_used_mb, memory_total_mb, temperature_c, power_w
    # (a figure the GPU does not report is None); dicts, not dataclasses, so a JSON line reads back as it was
    gpus: list[dict[str, Any]]
    cpu_percent: float | None  # the host's CPU use: 100 = every core busy
    memory_used_mb: float | None  # the host's memory in use (total less available), MiB
    memory_total_mb: float | None


EVENT_TYPES = (LoadProgress, BatchProgress, EpochEnd, FoldEnd, TuningProgress, TrainingStarted, SearchPlanned, Notice,
               TaskFinished, SystemSample)
Event = (LoadProgress | BatchProgress | EpochEnd | FoldEnd | TuningProgress | TrainingStarted | SearchPlanned | Notice
         | TaskFinished | SystemSample)
Emit = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """An ``emit`` that drops everything, for callers that want no events."""
