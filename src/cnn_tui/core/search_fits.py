"""Inside a search's fits: the scikeras classifier, its Keras callback, the network it
builds, the scorer that records each fold, and where fits report (the live context in
this process, or files when fits run in worker processes). ``tuning`` runs the search."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnn_tui.core import backend
from cnn_tui.core.dataset import TaskStopped
from cnn_tui.core.events import Emit, FoldEnd, TuningProgress, ignore

if TYPE_CHECKING:
    from cnn_tui.core.tuning import TuningPlan

PROGRESS_INTERVAL = 0.1


# ---------------------------------------------------------------- the search context


class SearchData:
    """The images and labels a search draws from; ``clone`` shares it instead of copying."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def __deepcopy__(self, memo: dict) -> SearchData:
        return self


class DoneFits:
    """The fits a stopped search finished, by combination and training split: a resumed search
    records them again instead of training them again. ``clone`` shares it, like ``SearchData``."""

    def __init__(self, rows: list[dict[str, Any]] | None = None, columns: list[str] | None = None) -> None:
        self.columns = columns or []
        self.rows = {self.key(row, row.get("split")): row for row in rows or () if row.get("split")}

    def key(self, params: dict[str, Any], split: str | None) -> tuple:
        return (*(json.dumps(params.get(c)) for c in self.columns), split)

    def find(self, params: dict[str, Any], split: str) -> dict[str, Any] | None:
        return self.rows.get(self.key(params, split))

    def __deepcopy__(self, memo: dict) -> DoneFits:
        return self


def split_key(indices: Any) -> str:
    """A short digest of a fit's training rows: the same fold of the same search has the same key."""
    import hashlib

    return hashlib.blake2b(np.ascontiguousarray(np.asarray(indices)[:, 0], dtype=np.int64).tobytes(),
                           digest_size=6).hexdigest()


class FitContext:
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


class LiveContext(FitContext):
    def __init__(self, token: str, folder: Path, plan: TuningPlan, emit: Emit, stop: threading.Event | None, jobs: int):
        super().__init__(token, folder, emit, stop)
        self.plan = plan
        self.jobs = jobs
        self.rows: list[dict[str, Any]] = []
        self.fold_sizes: dict[tuple, list[int]] = {}  # training sizes of each combination's fits so far
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
        from cnn_tui.core.tuning import same_round

        with self.lock:
            params = tuple(row.get(c) for c in self.plan.columns)
            earlier = self.fold_sizes.setdefault(params, [])
            row = {**row, "fold": 1 + sum(same_round(n, row.get("samples", 0)) for n in earlier)}
            earlier.append(row.get("samples", 0))
            self.rows.append(row)
            if self.jobs > 1:  # no batch counts arrive from worker processes: count whole fits
                self.batches = round(self.plan.batches * len(self.rows) / max(self.plan.fits, 1))
        self.emit(FoldEnd(row, len(self.rows), self.plan.fits))
        self._progress(time.perf_counter())


LIVE: dict[str, LiveContext] = {}


def context_for(token: str, folder: str) -> FitContext:
    return LIVE.get(token) or FitContext(token, Path(folder))


# ---------------------------------------------------------------- the classifier


def classifier_class() -> type:
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

        @property
        def target_encoder(self) -> Any:
            from scikeras.utils.transformers import ClassifierLabelEncoder

            # label smoothing trains on one-hot targets (optimizers.make_loss)
            loss = "categorical_crossentropy" if self.label_smoothing else "sparse_categorical_crossentropy"
            return ClassifierLabelEncoder(loss=loss, categories="auto" if self.classes_ is None else [self.classes_])

        def _initialize_callbacks(self) -> None:
            from cnn_tui.core.callbacks import training_callbacks

            super()._initialize_callbacks()
            self._progress = tuning_callback(context_for(self.token, self.folder), self.num_classes)
            # the same factory as training: early stopping and plateau as the hyper params say
            chosen = training_callbacks(fit_config(self.get_params()), validation=False, progress=self._progress)
            self._fit_callbacks = [*self._fit_callbacks, *chosen]

        def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> CnnClassifier:
            context = context_for(self.token, self.folder)
            if context.should_stop():
                raise TaskStopped("tuning stopped")
            self.failed_ = None
            self.n_train_ = len(X)
            self.split_ = split_key(X)
            planned = self.epochs * max(1, math.ceil(len(X) / self.batch_size))
            done = self.done.find(self.get_params(), self.split_) if self.done is not None else None
            self.reused_ = done
            if done is not None:  # finished before the search was stopped: not trained again
                self.fit_seconds_ = float(done.get("fit_seconds") or 0.0)
                context.fit_ended(planned, 0)
                return self
            backend.clear_session()  # reset Keras's global state (layer names, graphs) for this fit
            backend.set_seed(self.seed)
            started = time.perf_counter()
            wanted = self.class_weight  # the hyper field says "none" or "balanced"; scikeras wants None or one
            self.class_weight = "balanced" if wanted == "balanced" else None
            try:
                super().fit(X, y, sample_weight=sample_weight, **kwargs)
            except TaskStopped:
                raise
            except Exception as exc:  # one failed fit must not end the search  # noqa: BLE001
                self.failed_ = backend.describe_failure(exc)
            finally:
                self.class_weight = wanted
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


def tuning_callback(context: FitContext, num_classes: int) -> Any:
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


def fit_config(params: dict[str, Any]) -> Any:
    """The hyper params of one fit, from the classifier's parameters (the grid point)."""
    from cnn_tui.core.params import ModelConfig

    return ModelConfig.from_dict(params)


def build_network(image_size: int, channels: int, num_classes: int, **params: Any) -> Any:
    """scikeras's model function: the same network ``train`` builds, from the hyper fields among
    the wrapper's parameters (scikeras passes them all, with its own; only ours are read)."""
    from cnn_tui.core.model import build_model

    config = fit_config({k: v for k, v in params.items() if isinstance(v, (int, float, str, bool))})
    names = [str(i) for i in range(num_classes)]
    return build_model(config, image_size=image_size, channels=channels, class_names=names).keras_model


def score_fold(estimator: Any, X: Any, y: Any) -> float:
    """The search's scorer: record this fold's row, return its accuracy."""
    from sklearn.metrics import log_loss

    context = context_for(estimator.token, estimator.folder)
    if (done := getattr(estimator, "reused_", None)) is not None:
        context.record({k: v for k, v in done.items() if k != "fold"})
        accuracy = done.get("accuracy")
        return math.nan if accuracy is None else float(accuracy)
    params = estimator.get_params()
    row: dict[str, Any] = {name: params[name] for name in estimator.columns}
    row.update(samples=int(estimator.n_train_), fit_seconds=round(float(estimator.fit_seconds_), 3),
               split=estimator.split_)
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


class FileWatcher:
    """For ``jobs > 1``: tail the rows file workers append to, and pass stop on as a file."""

    def __init__(self, context: LiveContext) -> None:
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
