"""Ended runs in the TUI: what a run produced, read back from its folder (``RunEnd``), and how it is
shown — curves and epoch table, evaluation, search, model — in the views and the session
(``RunDisplay``), whether the TUI followed the run to its end or opens it from the Runs view."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_tui.core.errors import UserError
from cnn_tui.core.events import EpochEnd, TaskFinished, TrainingStarted
from cnn_tui.tui.parts.screen_part import ScreenPart
from cnn_tui.tui.widgets.tables import display_path

# what a run's task is called, and the view that shows it
RUN_LABELS = {"train": "training", "pipeline": "pipeline", "tune": "tuning", "evaluate": "evaluation",
              "predict": "prediction"}
RUN_VIEWS = {"train": "training", "pipeline": "training", "tune": "tuning", "evaluate": "evaluation",
             "predict": "evaluation"}


@dataclass
class RunEnd:
    """An ended run as read back from its folder (in a worker: loading a model imports Keras)."""

    run_dir: Path
    task: str
    status: str  # finished | stopped | failed | interrupted; "detached" when we stopped following
    message: str
    record: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    started: TrainingStarted | None = None  # the last one in its events, for a view that was not following
    evaluation: Any = None
    tuning: Any = None
    best_hyper: Any = None
    net: Any = None
    notes: list[str] = field(default_factory=list)  # what could not be read back

    @property
    def label(self) -> str:
        return RUN_LABELS.get(self.task, self.task)

    @property
    def details(self) -> dict[str, Any]:
        return self.record.get("details") or {}

    def file(self, name: str) -> Path | None:
        path = self.run_dir / name
        return path if path.is_file() else None


def read_run_end(run_dir: Path, task: str | None = None, *, finished: TaskFinished | None = None) -> RunEnd:
    """What the run in ``run_dir`` produced: its ending, history, evaluation, search, best params, model."""
    from cnn_tui.core.params.files import HyperParams
    from cnn_tui.core.runs import results as run_results
    from cnn_tui.core.runs.events_file import read_events
    from cnn_tui.core.runs.folder import INTERRUPTED_MESSAGE, effective_status, read_run

    record = read_run(run_dir) or {}
    status = effective_status(record) if record else "failed"
    message = str(record.get("message") or "")
    if finished is not None and status == "running":  # its event came, run.json not yet: the event says it
        status, message = finished.status, finished.message
    if status == "interrupted" and not message:
        message = INTERRUPTED_MESSAGE
    end = RunEnd(run_dir, task or str(record.get("task") or "train"), status, message, record)
    end.history = run_results.load_history(run_dir)
    started = [e for e in read_events(run_dir) if isinstance(e, TrainingStarted)]
    end.started = started[-1] if started else None
    if end.file("predictions.npz"):
        end.evaluation = run_results.load_evaluation(run_dir)
    if end.task == "tune":
        end.tuning = run_results.load_tuning(run_dir)
    if best := end.file("best_hyper_params.json"):
        try:
            end.best_hyper = HyperParams.load(best)
        except UserError as exc:
            end.notes.append(f"the best params could not be read: {exc}")
    model = end.file("model.keras")
    if model is None and end.task in ("evaluate", "predict"):  # the model it evaluated, if still there
        model = _task_model(run_dir)
    if model is not None:
        from cnn_tui.core.models.model import NetModel

        try:
            end.net = NetModel.load(model)
        except UserError as exc:
            end.notes.append(f"the model could not be loaded: {exc}")
    return end


def _task_model(run_dir: Path) -> Path | None:
    from cnn_tui.core.errors import ResultsError
    from cnn_tui.core.runs.execute import TaskSpec

    try:
        named = TaskSpec.load(run_dir).model
    except ResultsError:
        return None
    return Path(named) if named and Path(named).is_file() else None


class RunDisplay(ScreenPart):
    """Shows ended runs and evaluations in the screen's views; holds no state of its own."""

    @staticmethod
    def view_of(end: RunEnd) -> str:
        if end.task == "pipeline" and end.evaluation is not None:
            return "evaluation"
        return RUN_VIEWS.get(end.task, "training")

    def show_run(self, end: RunEnd, *, live: bool, followed: bool = False) -> None:
        """Everything an ended run produced, into the views and the session, and one line saying how it ended."""
        session, where = self.session, display_path(end.run_dir)
        level = {"finished": "success", "stopped": "warning"}.get(end.status, "error")
        message = end.message or end.status
        if end.status == "failed" and end.record.get("exit_code") == 1:  # a bug: the traceback is in run.log
            message += f" (details in {display_path(end.run_dir / 'run.log')})"
        trained = end.task in ("train", "pipeline") and (end.history or end.started is not None)
        if trained:
            self.show_training(end, message, live=live, followed=followed)
        if end.net is not None:
            session.model = end.net
            session.model_note = self.model_note(end)
            self.screen.view("model").show(end.net, f"from run {end.run_dir.name}: {session.model_note}")
            self.check_model_fits_data(end.net)
        if end.evaluation is not None:
            session.evaluation = end.evaluation
            self.show_evaluation(end.evaluation, confusion=end.task in ("predict", "pipeline"),
                                 files=self.evaluation_files(end), title_model=session.model_label())
        if end.tuning is not None:
            session.tuning = end.tuning
            session.best_hyper = end.best_hyper
            self.screen.view("tuning").show_result(end.tuning, stopped=end.tuning.status != "finished",
                                                   best_path=end.file("best_hyper_params.json"))
        for note in end.notes:
            self.say(note, "warning")
        done = int(end.details.get("epochs_done") or len(end.history.get("loss", [])))
        if not live:
            self.say(f"run {end.run_dir.name} ({end.label}, {end.status}): {message}", level)
        elif end.task in ("train", "pipeline") and end.details.get("save_error") and end.net is None:
            self.say(f"{message}; the run could not save its model, so the model here is the one it started from",
                     "error")
        elif end.task == "train" and done:
            self.say(f"{message}; model and curves in {where}", level)
        elif end.tuning is not None:
            self.say(f"{message}; results in {where}", level)
        else:
            self.say(f"{end.label} {end.status}: {message}; results in {where}", level)

    def model_note(self, end: RunEnd) -> str:
        done = int(end.details.get("epochs_done") or len(end.history.get("loss", [])))
        if end.task in ("train", "pipeline") and done:
            epochs = int(end.details.get("epochs") or done)
            note = f"trained {done} epoch{'s' if done > 1 else ''}"
            return note if end.status == "finished" else f"{note} of {epochs} ({end.status})"
        return f"from run {end.run_dir.name}"

    def show_training(self, end: RunEnd, message: str, *, live: bool, followed: bool) -> None:
        """The curves and the epoch table: already there when we followed the run, else from history.csv."""
        training = self.screen.view("training")
        history = end.history
        self.session.history = history
        if not (live and followed):
            details, started = end.details, end.started
            epochs = started.epochs if started else int(details.get("epochs") or len(history.get("loss", [])))
            samples = started.samples if started else int(details.get("samples") or 0)
            batch = started.batch_size if started else int(details.get("batch_size") or 1)
            batches = started.batches if started else max(1, math.ceil(samples / max(1, batch)))
            validation = (started.validation_samples if started else int(details.get("validation_samples") or 0))
            training.start(f"Run {end.run_dir.name}: {end.label}, {epochs} epochs, batch {batch}, {samples:,} images",
                           epochs, batches, validation=bool(validation) or "val_loss" in history)
            seconds = history.get("seconds", [])
            for i in range(len(history.get("loss", []))):
                logs = {k: v[i] for k, v in history.items() if k != "seconds" and i < len(v)}
                training.show_epoch(EpochEnd(i + 1, epochs, logs, seconds[i] if i < len(seconds) else 0.0))
        kept = end.details.get("best_epoch")  # early stopping restored this epoch: its figures are the model's
        kept = int(kept) if isinstance(kept, (int, float)) and kept >= 1 else None
        final = {k: v[min(kept or len(v), len(v)) - 1] for k, v in history.items() if v and k != "seconds"}
        shown = ("val_accuracy", "val_loss") if "val_accuracy" in final else ("accuracy", "loss")
        figures = " · ".join(f"{k} {final[k]:.4f}" for k in shown if k in final)
        if kept is not None and figures:
            figures += f" (epoch {kept}, kept)"
        files = {name: path for name, path in (("plots", end.file("train_val_plots.png")),
                                               ("model", end.file("model.keras"))) if path is not None}
        training.finish(message + (f" · {figures}" if figures else ""), files, end.status == "finished",
                        kept_epoch=kept)

    @staticmethod
    def evaluation_files(end: RunEnd) -> dict[str, Path]:
        names = {"evaluation": "evaluation.json", "confusion_png": "confusion_matrix.png",
                 "report": "classification_report.csv"}
        return {key: path for key, name in names.items() if (path := end.file(name)) is not None}

    def show_evaluation(self, ev: Any, *, confusion: bool, files: dict[str, Any], title_model: str) -> None:
        title = (f"{'Prediction' if confusion else 'Evaluation'} on {ev.samples:,} test images · "
                 f"model: {title_model}")
        self.screen.view("evaluation").show(ev, confusion=confusion, title=title, files=files)

    def check_model_fits_data(self, net: Any) -> None:
        data = self.session.data
        if data is not None and (data.num_classes, data.image_size) != (net.num_classes, net.image_size):
            self.say(f"the model expects {net.num_classes} classes of {net.image_size}×{net.image_size} images, "
                     f"the data params say {data.num_classes} of {data.image_size}×{data.image_size}", "warning")
