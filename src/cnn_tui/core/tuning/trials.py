"""A trial: one fit of one combination on one fold, as a typed value.

A strategy (``core.tuning.strategies``) says which trials to run; an executor
(``core.tuning.executors``) runs them here, in worker processes or on a Dask cluster;
``run_trial`` is what runs, wherever that is: it fits a ``CnnClassifier`` (the
scikeras bridge, trained by ``training.train`` as ``cnn-tui train`` trains) on the
fold's training rows and scores the held-out rows with scikit-learn's metrics.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core import backend
from cnn_tui.core.architectures import architecture
from cnn_tui.core.events import Emit, ignore
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.training.fit import steps_per_epoch
from cnn_tui.core.tuning import classifier, fit_pool  # classifier as a module: tests wrap build_network
from cnn_tui.core.tuning.classifier import TrialControl

STATUSES = ("finished", "pruned", "failed", "stopped")
FOLD_MODELS = "fold_models"  # in a search's work folder: each finished fold's model, for an ensemble


def trial_key(rung: int, index: int, fold: int) -> str:
    """A trial's key: its round, its combination's index in the plan, its fold (1-based)."""
    return f"r{rung}-c{index}-f{fold}"


def fold_model_path(work_dir: str | Path, key: str) -> Path:
    """Where a trial's fitted model is kept for a fold ensemble (``TrialSpec.save_fold``)."""
    return Path(work_dir) / FOLD_MODELS / f"{key}.keras"


@dataclass(frozen=True)
class TrialSpec:
    """What to fit: a combination (``params``: the tuned fields only) on one fold."""

    key: str  # unique in the search, e.g. "r0-c3-f1"
    params: dict[str, Any]
    config: dict[str, Any]  # the whole configuration (hyper params with ``params`` applied)
    fold: int  # 1-based
    rung: int  # the round of halving / hyperband (0 for grid and random)
    train_rows: np.ndarray  # indices into the search's images
    test_rows: np.ndarray
    split: str  # digest of the training rows: the same fold of the same search has the same key
    epochs: int  # train up to this epoch
    initial_epoch: int = 0  # a promoted hyperband trial goes on from here ...
    start_model: str | None = None  # ... with this model file (its previous rung's)
    keep_model: bool = False  # save the model after the fit (it may be promoted)
    prune_after: dict[int, list[float]] | None = None  # epoch -> validation accuracies seen there
    min_epochs: int = 1  # pruning never stops a fit before this many epochs
    seed: int = 42
    log_dir: str | None = None  # TensorBoard event files of this fit's epochs
    save_fold: bool = False  # --ensemble: save the fitted model as FOLD_MODELS/<key>.keras in the work folder


@dataclass
class Trial:
    """How a trial ended: ``finished``, ``pruned`` (at epoch ``epochs_done``), ``failed`` (``reason``)
    or ``stopped`` (the search was stopped). Scores are on the held-out fold."""

    spec: TrialSpec
    status: str
    epochs_done: int = 0
    accuracy: float = math.nan
    loss: float = math.nan
    fit_seconds: float = 0.0
    reason: str = ""
    curve: list[float] = field(default_factory=list)  # validation accuracy per epoch (with pruning)
    model_file: str | None = None
    retries: int = 0
    worker_mib: float = 0.0  # resident memory of the worker process that ran it, after the fit

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def row(self) -> dict[str, Any]:
        """The flat record tables, CSV files and events.jsonl carry ("ok" for a finished trial,
        as rows have always said). Its own keys never clash with a field's: ``epochs`` may be tuned."""
        spec = self.spec
        return {**spec.params, "fold": spec.fold, "rung": spec.rung, "epochs_done": self.epochs_done,
                "samples": int(len(spec.train_rows)), "accuracy": self.accuracy, "loss": self.loss,
                "fit_seconds": round(self.fit_seconds, 3), "status": "ok" if self.ok else self.status,
                "reason": self.reason,
                "split": spec.split, "retries": self.retries}


def is_finished(row: dict[str, Any]) -> bool:
    return row.get("status") in ("finished", "ok")  # "ok": rows written before trials had statuses


def split_key(rows: Any) -> str:
    """A short digest of a fit's training rows."""
    return hashlib.blake2b(np.ascontiguousarray(np.asarray(rows), dtype=np.int64).tobytes(), digest_size=6).hexdigest()


class Pruning:
    """The median rule: after an epoch (from ``min_epochs`` on), a fit whose validation accuracy
    is below the median of the fits that reached that epoch stops there (Optuna's MedianPruner)."""

    def __init__(self, reference: dict[int, list[float]], min_epochs: int, stop: threading.Event) -> None:
        self.reference = reference
        self.min_epochs = min_epochs
        self.stop = stop
        self.pruned_at: int | None = None
        self.curve: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        accuracy = logs.get("val_accuracy")
        if accuracy is None:
            return
        self.curve.append(float(accuracy))
        others = self.reference.get(epoch, [])
        if epoch >= self.min_epochs and others and float(accuracy) < float(np.median(others)):
            self.pruned_at = epoch
            self.stop.set()


def run_trial(spec: TrialSpec, x: Any, y: np.ndarray, *, stop: threading.Event | None = None, emit: Emit = ignore,
              skip: threading.Event | None = None, work_dir: str | None = None) -> Trial:
    """Fit and score one trial. ``stop`` ends the search (the trial is ``stopped``); ``skip`` ends
    only this fit (it counts as pruned, by the user). Never raises for a failed fit."""
    from sklearn.metrics import accuracy_score, log_loss  # noqa: PLC0415 — scikit-learn: seconds to import

    search_stop = stop or threading.Event()
    pruned = threading.Event()
    ends = AnyOf([search_stop, *([skip] if skip else []), pruned])  # the fit's stop: read at every batch
    pruning = Pruning(spec.prune_after or {}, spec.min_epochs, pruned) if spec.prune_after is not None else None
    train_idx = np.asarray(spec.train_rows).reshape(-1, 1)
    test_idx = np.asarray(spec.test_rows).reshape(-1, 1)
    estimator = classifier.classifier_class()(model=classifier.build_network, loss=None, verbose=0,
                                              data=classifier.SearchData(x), image_size=int(x.shape[1]),
                                              channels=int(x.shape[3]), num_classes=int(y.max()) + 1, **spec.config)
    key = network_key(spec, x, y)
    estimator.control_ = TrialControl(
        stop=ends, emit=emit, on_epoch_end=pruning.on_epoch_end if pruning else None,
        validation=(test_idx, y[spec.test_rows]) if pruning else None, initial_epoch=spec.initial_epoch,
        start_model=spec.start_model, log_dir=spec.log_dir, until=spec.epochs, network_key=key,
        batches=_batches(spec), seed=spec.seed, keep_network=spec.keep_model)
    if key is None:
        backend.clear_session()  # a fresh Keras state (layer names, graphs) for every fit
        backend.set_seed(spec.seed)
    started = time.perf_counter()
    try:
        estimator.fit(train_idx, y[spec.train_rows])
    except Exception as exc:  # one failed fit must not end the search  # noqa: BLE001
        return Trial(spec, "failed", fit_seconds=time.perf_counter() - started, reason=backend.describe_failure(exc))
    seconds = time.perf_counter() - started
    result = estimator.train_result_
    done = result.epochs_done  # whole epochs, the ones before a promotion included
    curve = pruning.curve if pruning else []
    if result.status == "failed":
        return Trial(spec, "failed", done, fit_seconds=seconds, reason=result.message, curve=curve)
    if search_stop.is_set():
        return Trial(spec, "stopped", done, fit_seconds=seconds, reason="the search was stopped", curve=curve)
    status, reason = "finished", _retried(result)
    if pruning is not None and pruning.pruned_at is not None:
        status, reason = "pruned", f"pruned at epoch {pruning.pruned_at} (below the median)"
    elif skip is not None and skip.is_set():
        status, reason = "pruned", f"skipped by the user at epoch {done}"
    if done == 0:
        return Trial(spec, status if status != "finished" else "failed", 0, fit_seconds=seconds,
                     reason=reason or "no epoch finished")
    probabilities = estimator.predict_proba(test_idx)
    truth = y[spec.test_rows]
    classes = np.asarray(estimator.classes_)
    accuracy = float(accuracy_score(truth, classes[probabilities.argmax(axis=1)]))
    loss = float(log_loss(truth, np.clip(probabilities, 1e-7, 1.0), labels=classes))
    model_file = None
    if spec.keep_model and work_dir and status == "finished":
        # a fit retried at a smaller batch has another optimizer than the network its key builds: a whole model
        model_file = str(_keep(estimator.model_, spec, Path(work_dir) / "models" / spec.key,
                               key is not None and not result.out_of_memory, x, y, done))
    if spec.save_fold and work_dir and status == "finished":
        _save_fold(estimator.model_, spec, work_dir, x, y, done)
    return Trial(spec, status, done, accuracy, loss, seconds, reason, curve, model_file)


def _retried(result: Any) -> str:
    """The fold table's mark of a fit retried at a smaller batch after running out of memory."""
    if not result.out_of_memory:
        return ""
    tried = ", ".join(str(b) for b in result.out_of_memory)
    return f"out of memory at batch {tried}: trained at {result.batch_size} x {result.accumulation} accumulated"


def _save_fold(model: Any, spec: TrialSpec, work_dir: str, x: Any, y: np.ndarray, done: int) -> Path:
    """The fitted model as a whole .keras file (numbered classes: the search knows the names and
    sets them when it makes the ensemble); written to disk, so no fold model stays in memory."""
    path = fold_model_path(work_dir, spec.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [str(i) for i in range(int(y.max()) + 1)]
    return NetModel(model, names, int(x.shape[1]), int(x.shape[3]), None, epochs_done=done).save(path)


def network_key(spec: TrialSpec, x: Any, y: np.ndarray) -> str | None:
    """What makes two fits' networks the same before training (configuration, image shape, classes,
    batches an epoch, seed): fits with the same key reuse one built network (``core.tuning.fit_pool``).
    None for an architecture trained in stages (freezing layers and compiling again per stage), and for
    a promoted fit that goes on from a whole model file (one retried after running out of memory)."""
    if spec.start_model is not None and spec.start_model.endswith(".keras"):
        return None
    try:
        if architecture(str(spec.config.get("architecture", ""))).phases is not None:
            return None
    except Exception:  # noqa: BLE001 - an unknown architecture fails in the fit, with its message
        return None
    shape = [int(n) for n in x.shape[1:]]
    return json.dumps({"config": spec.config, "shape": shape, "classes": int(y.max()) + 1,
                       "batches": _batches(spec), "seed": spec.seed}, sort_keys=True, default=str)


def _batches(spec: TrialSpec) -> int:
    return steps_per_epoch(len(spec.train_rows), int(spec.config.get("batch_size") or 32))


def _keep(model: Any, spec: TrialSpec, path: Path, state_only: bool, x: Any, y: np.ndarray, done: int) -> Path:
    """Save what a promoted trial goes on from: the state of a reused network (a promoted trial
    on any process builds or reuses the same one), or the whole model (an architecture trained in
    stages: its file keeps which layers are frozen)."""
    if state_only:
        return fit_pool.save_state(model, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [str(i) for i in range(int(y.max()) + 1)]
    return NetModel(model, names, int(x.shape[1]), int(x.shape[3]), None, epochs_done=done).save(
        path.with_suffix(".keras"))


class AnyOf:
    """Set as soon as any of ``flags`` is (an event another thread sets, a file, a cluster
    variable). Asked directly at every batch: a thread forwarding them to one event could lag
    behind a loaded machine's fast batches, and the fit would run on past a stop."""

    def __init__(self, flags: list[Any]) -> None:
        self.flags = flags

    def is_set(self) -> bool:
        return any(flag.is_set() for flag in self.flags)


def trial_from_row(spec: TrialSpec, row: dict[str, Any]) -> Trial:
    """A trial a stopped search finished, from its recorded row (a resumed search keeps it)."""
    status = "finished" if row.get("status") == "ok" else str(row.get("status") or "finished")
    return Trial(spec, status, int(row.get("epochs_done") or spec.epochs), _number(row.get("accuracy")),
                 _number(row.get("loss")), float(row.get("fit_seconds") or 0.0), str(row.get("reason") or ""))


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)

