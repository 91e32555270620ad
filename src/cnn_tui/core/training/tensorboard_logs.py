"""TensorBoard event files: the figures of each epoch, and a search's results as HParams sessions,
so ``tensorboard --logdir results`` shows every run and compares them.

Written with the ``tensorboard`` package's own event-file writer and summary protos (what
PyTorch's ``SummaryWriter`` uses too), not ``tf.summary``: it needs no TensorFlow ops, so it works
the same with every Keras backend. ``keras.callbacks.TensorBoard`` writes through ``tf.summary``
and so only with the TensorFlow backend.

Layout, as Keras's own callback writes it (one chart per figure, training and validation overlaid):
``<log_dir>/train/`` holds ``epoch_loss``, ``epoch_accuracy`` and ``epoch_learning_rate``;
``<log_dir>/validation/`` holds ``epoch_loss`` and ``epoch_accuracy`` of the validation set.
Steps are 1-based epochs, as in history.csv. A resumed run appends a new file to the same folders.

``tensorboard`` is imported when a writer is made, never at import time (the core stays light).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from cnn_tui.core.backend import load_keras, native_stderr_muted

TRAIN, VALIDATION = "train", "validation"
SEARCH_METRICS = ("mean_accuracy", "std_accuracy", "mean_loss")  # a search table's figures, as HParams metrics


class MissingTensorBoard(ImportError):
    """The ``tensorboard`` package is not installed."""


def available() -> bool:
    """Whether the tensorboard package is installed (a run without it trains, without the logs)."""
    return find_spec("tensorboard") is not None


def _writer(folder: Path) -> Any:
    try:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: PLC0415 — TensorBoard's writer (protobuf) loads only when a run writes its logs
    except ImportError as exc:
        raise MissingTensorBoard("TensorBoard logs need the tensorboard package: pip install tensorboard") from exc

    folder.mkdir(parents=True, exist_ok=True)
    # the writer imports TensorFlow when it is installed (tf.io.gfile), and a search on a cluster
    # may not have imported it here yet: its C++ libraries' load-time lines must not reach the terminal
    with native_stderr_muted():
        return EventFileWriter(str(folder), flush_secs=30)


def _scalar_event(tag: str, value: float, step: int, wall_time: float | None = None) -> Any:
    from tensorboard.compat.proto import event_pb2  # noqa: PLC0415 — TensorBoard's writer (protobuf) loads only when a run writes its logs
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb  # noqa: PLC0415 — TensorBoard's writer (protobuf) loads only when a run writes its logs

    return event_pb2.Event(wall_time=wall_time or time.time(), step=int(step), summary=scalar_pb(tag, float(value)))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def learning_rate(model: Any) -> float | None:
    """The optimizer's learning rate now (a schedule evaluated at the current step), if it has one."""
    optimizer = getattr(model, "optimizer", None)
    rate = getattr(optimizer, "learning_rate", None)
    if rate is None:
        return None
    try:
        return float(load_keras().ops.convert_to_numpy(rate))
    except Exception:  # noqa: BLE001 — an optimizer whose rate cannot be read: the chart goes without it
        return None


class EpochWriter:
    """The scalars of each epoch into ``<log_dir>/train`` and ``<log_dir>/validation``."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def _for(self, split: str) -> Any:
        if split not in self._writers:
            self._writers[split] = _writer(self.log_dir / split)
        return self._writers[split]

    def epoch(self, epoch: int, logs: Mapping[str, Any], rate: float | None = None) -> None:
        """``epoch`` 1-based; ``logs`` as Keras gives them (``loss``, ``val_accuracy``, ...)."""
        now = time.time()
        figures = dict(logs)
        if rate is not None and "learning_rate" not in figures:
            figures["learning_rate"] = rate
        for key, raw in figures.items():
            value = _number(raw)
            if value is None:
                continue  # not a figure (Keras may pass other things in logs)
            split, name = (VALIDATION, key[4:]) if key.startswith("val_") else (TRAIN, key)
            self._for(split).add_event(_scalar_event(f"epoch_{name}", value, epoch, now))
        for writer in self._writers.values():
            writer.flush()  # a killed run keeps every whole epoch, as history.csv does

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def epoch_callback(log_dir: str | Path, on_write_error: Callable[[str, BaseException], None] | None = None) -> Any:
    """A Keras callback writing loss, accuracy, their validation figures and the learning rate
    of every epoch as TensorBoard scalars under ``log_dir``; any Keras backend. A write that fails
    (a full disk: TensorFlow's file system calls it RESOURCE_EXHAUSTED) ends the logs, not the
    training: ``on_write_error(name, error)`` hears of it once.
    Raises ``MissingTensorBoard`` now, not at the first epoch, when the package is not installed."""
    if not available():
        raise MissingTensorBoard("TensorBoard logs need the tensorboard package: pip install tensorboard")
    keras = load_keras()

    class TensorBoardEpochs(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.writer = EpochWriter(log_dir)
            self.log_dir = self.writer.log_dir

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.writer is None:
                return
            try:
                self.writer.epoch(epoch + 1, logs or {}, learning_rate(self.model))
            except Exception as exc:  # noqa: BLE001 - OSError, or TensorFlow's own error for the same write
                self._give_up(exc)

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.writer is None:
                return
            try:
                self.writer.close()
            except Exception as exc:  # noqa: BLE001 - as above: the last flush
                self._give_up(exc)

        def _give_up(self, exc: BaseException) -> None:
            self.writer = None  # its writers' threads are left to end: closing would raise the same error again
            if on_write_error is not None:
                on_write_error(f"{Path(log_dir).name}/", exc)

    return TensorBoardEpochs()


# ---------------------------------------------------------------- a search, as HParams


def session_name(params: Mapping[str, Any]) -> str:
    """A folder name for one combination: ``num_units=8,epochs=3`` (safe characters only)."""
    text = ",".join(f"{name}={_hparam_value(value)}" for name, value in params.items()) or "default"
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", text)[:200]


def fit_log_dir(root: str | Path, params: Mapping[str, Any], fold: int) -> Path:
    """Where one tuning fit's epoch scalars go: ``<root>/<combination>/fold<k>``."""
    return Path(root) / session_name(params) / f"fold{fold}"


def _hparam_value(value: Any) -> bool | int | float | str:
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # e.g. None or a tuple: HParams take only numbers, booleans and text


def write_search(log_dir: str | Path, table: Sequence[Mapping[str, Any]], columns: Sequence[str],
                 metrics: Sequence[str] = SEARCH_METRICS) -> Path:
    """A search's table (one row per combination: its ``columns`` values and ``metrics``) as
    TensorBoard HParams sessions, one sub-folder per combination, for the HParams dashboard's
    table and parallel coordinates. No experiment summary is written: TensorBoard then builds the
    experiment from every session it finds, so the searches of several runs are compared together."""
    from tensorboard.compat.proto import event_pb2  # noqa: PLC0415 — TensorBoard's writer (protobuf) loads only when a run writes its logs
    from tensorboard.plugins.hparams.summary_v2 import hparams_pb  # noqa: PLC0415 — TensorBoard's writer (protobuf) loads only when a run writes its logs

    root = Path(log_dir)
    now = time.time()
    for row in table:
        params = {name: _hparam_value(row[name]) for name in columns}
        name = session_name(params)
        writer = _writer(root / name)
        try:
            writer.add_event(event_pb2.Event(wall_time=now, step=0, summary=hparams_pb(params, trial_id=name,
                                                                                         start_time_secs=now)))
            for metric in metrics:
                value = _number(row.get(metric))
                if value is not None and math.isfinite(value):  # a combination whose folds all failed has none
                    writer.add_event(_scalar_event(f"search/{metric}", value, 0, now))
        finally:
            writer.close()
    return root
