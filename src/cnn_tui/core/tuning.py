"""Hyper-parameter search: scikeras ``KerasClassifier`` inside scikit-learn's searches.

How the pieces fit:
- The search sees ``X`` as a column of row indices into the image array, and
  the classifier's feature encoder turns indices into images. scikit-learn then
  copies only indices when it splits folds, and ``clone`` never deep-copies
  pixels (``SearchData`` deep-copies to itself).
- Folds come from an explicit ``StratifiedKFold(shuffle=True)``: scikeras 0.13
  is not recognised as a classifier by scikit-learn >= 1.7, and a plain ``cv=3``
  would then use unshuffled ``KFold`` on class-ordered data. ``CnnClassifier``
  also declares classifier tags, for halving's stratified subsampling.
- Each fit's result is recorded by the scorer the moment the fold finishes
  (params, fold, accuracy, log loss, fit seconds), not parsed from output.
- A Keras callback counts batches for progress and ends the fit within one batch
  when stop is requested; the search then raises ``TaskStopped`` and the folds
  recorded so far are the partial result.
- A fit that fails (out of memory, NaN loss, anything) is recorded as failed
  with its reason and the search goes on, as KerasTuner fails one trial.
- With ``jobs > 1`` fits run in joblib worker processes: rows travel through an
  append-only JSONL file the parent tails, and stop through a flag file.
"""

from __future__ import annotations

import gc
import json
import math
import os
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core import backend
from cnn_tui.core.dataset import ImageSet, TaskStopped
from cnn_tui.core.errors import DatasetError, ParamsError
from cnn_tui.core.events import Emit, FoldEnd, TuningProgress, ignore
from cnn_tui.core.params import HYPER_NAMES, HyperParams

STRATEGIES = ("grid", "random", "halving")
HALVING_FACTOR = 3
PROGRESS_INTERVAL = 0.1


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class TuningPlan:
    """What a search will do, known before it starts (for confirmation and progress)."""

    strategy: str
    candidates: list[dict[str, Any]]
    cv: int
    samples: int
    fits: int
    batches: int  # estimated for halving

    @property
    def columns(self) -> list[str]:
        return list(self.candidates[0]) if self.candidates else []


def plan_search(
    hyper: HyperParams, *, samples: int, strategy: str = "grid", cv: int = 3, n_iter: int = 10, seed: int = 42
) -> TuningPlan:
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if strategy not in STRATEGIES:
        raise ParamsError(f"unknown tuning strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if cv < 2:
        raise ParamsError(f"cross-validation needs at least 2 folds, got {cv}")
    grid = hyper.grid()
    if strategy == "random":
        count = min(n_iter, hyper.combination_count())
        candidates = [dict(c) for c in ParameterSampler(grid, count, random_state=seed)] if grid else [{}]
    else:
        candidates = [dict(c) for c in ParameterGrid(grid)]
    base = hyper.first()
    fold_train = samples * (cv - 1) / cv

    def batches_for(candidate: dict[str, Any], n_train: float) -> int:
        config = base.__class__(**{**base.as_dict(), **candidate})
        return config.epochs * max(1, math.ceil(n_train / config.batch_size))

    if strategy != "halving":
        fits = len(candidates) * cv
        batches = sum(batches_for(c, fold_train) for c in candidates) * cv
    else:
        iterations = 1 + int(math.log(len(candidates), HALVING_FACTOR)) if len(candidates) > 1 else 1
        fits, batches, alive = 0, 0, list(candidates)
        for i in range(iterations):
            share = HALVING_FACTOR ** (i - iterations + 1)
            fits += len(alive) * cv
            batches += sum(batches_for(c, fold_train * share) for c in alive) * cv
            alive = alive[: max(1, math.ceil(len(alive) / HALVING_FACTOR))]
    return TuningPlan(strategy, candidates, cv, samples, fits, batches)


# ---------------------------------------------------------------- result


@dataclass
class TuningResult:
    status: str  # finished | stopped | failed
    message: str
    plan: TuningPlan
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per fold, in the order they finished
    seconds: float = 0.0

    @property
    def columns(self) -> list[str]:
        return self.plan.columns

    def table(self) -> list[dict[str, Any]]:
        """One row per combination: mean/std accuracy and mean loss over its folds, best first."""
        return summarize(self.rows, self.columns)

    def best(self) -> dict[str, Any] | None:
        for row in self.table():
            if not math.isnan(row["mean_accuracy"]):
                return {c: row[c] for c in self.columns}
        return None


def summarize(rows: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        # successive halving scores a combination again on more data: the last round counts
        groups.setdefault(tuple(row[c] for c in columns), []).append(row)
    table = []
    for key, folds in groups.items():
        top = max(f.get("samples", 0) for f in folds)
        folds = [f for f in folds if f.get("samples", 0) == top]
        ok = [f for f in folds if f["status"] == "ok"]
        acc = [f["accuracy"] for f in ok]
        loss = [f["loss"] for f in ok]
        table.append(
            {
                **dict(zip(columns, key)),
                "mean_accuracy": float(np.mean(acc)) if acc else math.nan,
                "std_accuracy": float(np.std(acc)) if acc else math.nan,
                "mean_loss": float(np.mean(loss)) if loss else math.nan,
                "folds": len(ok),
                "failed": len(folds) - len(ok),
                "samples": top,
                "reason": next((f["reason"] for f in folds if f["status"] != "ok"), ""),
            }
        )
    # halving's finalists (scored on the most data) rank above combinations dropped earlier
    table.sort(key=lambda r: (-r["samples"], math.isnan(r["mean_accuracy"]), -np.nan_to_num(r["mean_accuracy"], nan=-1.0), -r["folds"]))
    return table


# ---------------------------------------------------------------- the search context


class SearchData:
    """The images and labels a search draws from; ``clone`` shares it instead of copying."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def __deepcopy__(self, memo: dict) -> SearchData:
        return self


class _Context:
    """Where fits report to: the parent process's live context, or (in a worker) files."""

    def __init__(self, token: str, folder: Path, emit: Emit = ignore, stop: threading.Event | None = None) -> None:
        self.token = token
        self.rows_file = folder / f"{token}.jsonl"
        self.stop_file = folder / f"{token}.stop"
        self.emit = emit
        self.stop = stop
        self.lock = threading.Lock()

    def should_stop(self) -> bool:
        if self.stop is not None:
            return self.stop.is_set()
        return self.stop_file.exists()

    def on_batch(self) -> None:
        """Called per training batch; only the parent's live context counts."""

    def fit_ended(self, planned: int, counted: int) -> None:
        """A fit ended (maybe early): progress accounts for its planned batches."""

    def record(self, row: dict[str, Any]) -> None:
        with self.lock, open(self.rows_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


class _LiveContext(_Context):
    def __init__(self, token: str, folder: Path, plan: TuningPlan, emit: Emit, stop: threading.Event | None, jobs: int):
        super().__init__(token, folder, emit, stop)
        self.plan = plan
        self.jobs = jobs
        self.rows: list[dict[str, Any]] = []
        self.fold_numbers: dict[tuple, int] = {}
        self.batches = 0
        self.started = time.perf_counter()
        self.last_emit = 0.0

    def on_batch(self) -> None:
        self.batches += 1
        now = time.perf_counter()
        if now - self.last_emit >= PROGRESS_INTERVAL:
            self.last_emit = now
            self._progress(now)

    def fit_ended(self, planned: int, counted: int) -> None:
        self.batches += max(0, planned - counted)

    def _progress(self, now: float) -> None:
        total = max(self.plan.batches, self.batches)
        elapsed = now - self.started
        eta = elapsed / self.batches * (total - self.batches) if self.batches else None
        self.emit(TuningProgress(self.batches, total, len(self.rows), self.plan.fits, eta))

    def record(self, row: dict[str, Any]) -> None:
        super().record(row)
        self.accept(row)

    def accept(self, row: dict[str, Any]) -> None:
        """Number the fold, keep the row and tell the listener."""
        with self.lock:
            key = (tuple(row.get(c) for c in self.plan.columns), row.get("samples"))
            self.fold_numbers[key] = self.fold_numbers.get(key, 0) + 1
            row = {**row, "fold": self.fold_numbers[key]}
            self.rows.append(row)
            if self.jobs > 1:  # no batch counts arrive from worker processes: count whole fits
                self.batches = round(self.plan.batches * len(self.rows) / max(self.plan.fits, 1))
        self.emit(FoldEnd(row, len(self.rows), self.plan.fits))
        self._progress(time.perf_counter())


_LIVE: dict[str, _LiveContext] = {}


def _context_for(token: str, folder: str) -> _Context:
    return _LIVE.get(token) or _Context(token, Path(folder))


# ---------------------------------------------------------------- the classifier


def _classifier_class() -> type:
    """``CnnClassifier``, defined on first use because scikeras imports Keras."""
    global _CLASSIFIER
    if _CLASSIFIER is not None:
        return _CLASSIFIER
    backend.load_keras()
    from scikeras.wrappers import KerasClassifier
    from sklearn.preprocessing import FunctionTransformer

    class CnnClassifier(KerasClassifier):
        def __sklearn_tags__(self) -> Any:
            from sklearn.utils import ClassifierTags

            tags = super().__sklearn_tags__()
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
            tags.target_tags.required = True
            return tags

        @property
        def feature_encoder(self) -> Any:
            data = self.data
            return FunctionTransformer(lambda ix: data.x[np.asarray(ix)[:, 0]])

        def _initialize_callbacks(self) -> None:
            super()._initialize_callbacks()
            self._progress = _tuning_callback(_context_for(self.token, self.folder), self.num_classes)
            self._fit_callbacks = [*self._fit_callbacks, self._progress]

        def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> CnnClassifier:
            context = _context_for(self.token, self.folder)
            if context.should_stop():
                raise TaskStopped("tuning stopped")
            backend.clear_session()  # reset Keras's global state (layer names, graphs) for this fit
            backend.set_seed(self.seed)
            self.failed_ = None
            self.n_train_ = len(X)
            planned = self.epochs * max(1, math.ceil(len(X) / self.batch_size))
            started = time.perf_counter()
            try:
                super().fit(X, y, sample_weight=sample_weight, **kwargs)
            except TaskStopped:
                raise
            except Exception as exc:  # one failed fit must not end the search  # noqa: BLE001
                self.failed_ = backend.describe_failure(exc)
            self.fit_seconds_ = time.perf_counter() - started
            progress = getattr(self, "_progress", None)
            context.fit_ended(planned, progress.batches if progress else 0)
            if progress is not None and progress.stopped:
                raise TaskStopped("tuning stopped")
            if progress is not None and progress.bad_loss and not self.failed_:
                self.failed_ = progress.bad_loss
            return self

    _CLASSIFIER = CnnClassifier
    return CnnClassifier


_CLASSIFIER: type | None = None


def _tuning_callback(context: _Context, num_classes: int) -> Any:
    from cnn_tui.core.training import divergence

    keras = backend.load_keras()

    class TuningCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.batches = 0
            self.stopped = False
            self.bad_loss: str | None = None

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.batches += 1
            context.on_batch()
            if context.should_stop():
                self.stopped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss")
            problem = divergence(float(loss), num_classes) if loss is not None else None
            if problem:
                self.bad_loss = f"{problem} in epoch {epoch + 1}: diverged; try a lower init_rate"
                self.model.stop_training = True

    return TuningCallback()


def _build_network(
    init_rate: float,
    decay_steps: int,
    decay_rate: float,
    kernel_size: int,
    num_filters: int,
    num_units: int,
    momentum: float,
    drop_out: float,
    image_size: int,
    channels: int,
    num_classes: int,
    **_routing: Any,  # scikeras passes every wrapper parameter (and meta); only the above matter
) -> Any:
    """scikeras's model function: routes the hyper fields into the seed CNN."""
    from cnn_tui.core.model import build_model
    from cnn_tui.core.params import ModelConfig

    config = ModelConfig(init_rate, decay_steps, decay_rate, kernel_size, num_filters, num_units, momentum, drop_out, 1, 1)
    names = [str(i) for i in range(num_classes)]
    return build_model(config, image_size=image_size, channels=channels, class_names=names).keras_model


def _score(estimator: Any, X: Any, y: Any) -> float:
    """The search's scorer: record this fold's row, return its accuracy."""
    from sklearn.metrics import log_loss

    context = _context_for(estimator.token, estimator.folder)
    params = estimator.get_params()
    row: dict[str, Any] = {name: params[name] for name in estimator.columns}
    row.update(samples=int(estimator.n_train_), fit_seconds=round(float(estimator.fit_seconds_), 3))
    if estimator.failed_:
        row.update(accuracy=math.nan, loss=math.nan, status="failed", reason=estimator.failed_)
        context.record(row)
        return math.nan
    probabilities = estimator.predict_proba(X)
    classes = np.asarray(estimator.classes_)
    predicted = classes[probabilities.argmax(axis=1)]
    accuracy = float((predicted == np.asarray(y)).mean())
    loss = float(log_loss(y, np.clip(probabilities, 1e-7, 1.0), labels=classes))
    row.update(accuracy=accuracy, loss=loss, status="ok", reason="")
    context.record(row)
    return accuracy


# ---------------------------------------------------------------- running a search


def tune(
    images: ImageSet,
    hyper: HyperParams,
    *,
    strategy: str = "grid",
    cv: int = 3,
    n_iter: int = 10,
    max_samples: int = 10_000,
    seed: int = 42,
    jobs: int = 1,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    work_dir: Path | None = None,
) -> TuningResult:
    """Run the search; return every fold recorded, also when stopped (status ``stopped``)."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    subset = images.subset(max_samples, seed)
    smallest = min(subset.counts())
    if smallest < cv:
        raise DatasetError(f"{cv}-fold cross-validation needs at least {cv} images in every class; the smallest class has {smallest}")
    plan = plan_search(hyper, samples=len(subset), strategy=strategy, cv=cv, n_iter=n_iter, seed=seed)
    token = uuid.uuid4().hex[:12]
    folder = work_dir or Path(tempfile.mkdtemp(prefix="cnn-tui-tune-"))
    folder.mkdir(parents=True, exist_ok=True)
    context = _LiveContext(token, folder, plan, emit, stop, jobs)
    _LIVE[token] = context

    estimator = _classifier_class()(
        model=_build_network,
        loss="sparse_categorical_crossentropy",
        verbose=0,
        data=SearchData(subset.x),
        token=token,
        folder=str(folder),
        columns=plan.columns,
        seed=seed,
        image_size=subset.image_size,
        channels=subset.channels,
        num_classes=subset.num_classes,
        **hyper.first().as_dict(),
    )
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    # return_train_score=False: the scorer records validation folds only (halving defaults to True)
    common = dict(scoring=_score, cv=folds, refit=False, error_score="raise", n_jobs=jobs, verbose=0,
                  return_train_score=False)
    grid = hyper.grid()
    if strategy == "grid":
        search = GridSearchCV(estimator, grid or [{}], **common)
    elif strategy == "random":
        search = RandomizedSearchCV(estimator, grid or {}, n_iter=len(plan.candidates), random_state=seed, **common)
    else:
        search = HalvingGridSearchCV(
            estimator, grid or {}, factor=HALVING_FACTOR, resource="n_samples", min_resources="exhaust",
            random_state=seed, **common,
        )

    indices = np.arange(len(subset)).reshape(-1, 1)
    watcher = _FileWatcher(context) if jobs > 1 else None
    started = time.perf_counter()
    status, message = "finished", ""
    # Python's collector otherwise walks every object TensorFlow and the app made, again and
    # again while the fits allocate (a full pass took ~0.8 s on 2 cores); frozen, those are
    # skipped and only what the search itself allocates is collected.
    others_froze = gc.get_freeze_count() > 0  # e.g. the TUI after importing Keras: keep theirs frozen
    gc.collect()
    gc.freeze()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn and scikeras chatter; failures are in the rows
            search.fit(indices, subset.y)
        message = f"{len(plan.candidates)} combinations x {cv} folds done"
    except TaskStopped:
        status, message = "stopped", f"stopped by the user after {len(context.rows)} of {plan.fits} fits"
    except ValueError as exc:
        status, message = "failed", f"the search could not run: {exc}"
    finally:
        if not others_froze:
            gc.unfreeze()
        if watcher:
            watcher.close()
        _LIVE.pop(token, None)
        if work_dir is None:
            for path in folder.iterdir():
                path.unlink(missing_ok=True)
            folder.rmdir()
    failed = sum(1 for r in context.rows if r["status"] != "ok")
    if failed and status == "finished":
        message += f"; {failed} fit(s) failed (see the reason column)"
    return TuningResult(status, message, plan, context.rows, time.perf_counter() - started)


class _FileWatcher:
    """For ``jobs > 1``: tail the rows file workers append to, and pass stop on as a file."""

    def __init__(self, context: _LiveContext) -> None:
        self.context = context
        self.done = threading.Event()
        self.offset = 0
        self.thread = threading.Thread(target=self._run, name="tuning-watcher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.2):
            self._poll()
        self._poll()

    def _poll(self) -> None:
        context = self.context
        if context.stop is not None and context.stop.is_set() and not context.stop_file.exists():
            context.stop_file.touch()
        if not context.rows_file.exists():
            return
        with open(context.rows_file, encoding="utf-8") as handle:
            handle.seek(self.offset)
            while line := handle.readline():
                if not line.endswith("\n"):
                    break  # a worker is mid-write; read it next time
                self.offset += len(line.encode("utf-8"))
                context.accept(json.loads(line))

    def close(self) -> None:
        self.done.set()
        self.thread.join()


def best_hyper_params(hyper: HyperParams, best: dict[str, Any]) -> HyperParams:
    """The hyper params with every tuned field set to the best combination's single value."""
    return hyper.with_values({name: best[name] for name in HYPER_NAMES if name in best})
