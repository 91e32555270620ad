"""Ended runs in the TUI: what a run produced, read back from its folder beside how it ended
(``RunResults``), and how it is shown — curves and epoch table, evaluation, search, model — in the
views and the session (``RunDisplay``), whether the TUI followed the run to its end or opens it from
the Runs view. How a run ended is the core's to say (``read_ending``); the TUI only shows it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_tui.core.errors import ResultsError, UserError
from cnn_tui.core.events import EpochEnd, TaskFinished, TrainingStarted
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.runs.events_file import read_events
from cnn_tui.core.runs.lifecycle import EXIT_FAILED
from cnn_tui.core.runs.results import RunEnding, load_evaluation, load_history, load_tuning, read_ending, whole
from cnn_tui.tui.parts.screen_part import ScreenPart
from cnn_tui.tui.screens.rate_finder import APPLY, RateFinderScreen, read_sweep
from cnn_tui.tui.widgets.tables import display_path

# the view that shows a run's task
RUN_VIEWS = {"train": "training", "pipeline": "training", "tune": "tuning", "evaluate": "evaluation",
             "predict": "evaluation", "lr_find": "training"}


@dataclass
class RunResults:
    """An ended run as the TUI shows it: how it ended, and what it produced, read back from its folder
    (in a worker: loading a model imports Keras)."""

    ending: RunEnding
    history: dict[str, list[float]] = field(default_factory=dict)
    started: TrainingStarted | None = None  # the last one in its events, for a view that was not following
    evaluation: Any = None
    tuning: Any = None
    best_hyper: Any = None
    net: Any = None
    rate_sweep: tuple[list[float], list[float]] | None = None  # lr_find: rates and smoothed losses
    notes: list[str] = field(default_factory=list)  # what could not be read back
    detached: bool = False  # we stopped following: the run goes on, nothing was read back

    @classmethod
    def detached_from(cls, run_dir: Path) -> RunResults:
        """A run we stopped following: how it stands now, and nothing of what it produces."""
        return cls(read_ending(run_dir), detached=True)

    def file(self, name: str) -> Path | None:
        path = self.ending.run_dir / name
        return path if path.is_file() else None


def read_run_results(run_dir: Path, *, finished: TaskFinished | None = None) -> RunResults:
    """How the run in ``run_dir`` ended (``finished``: its event, when we followed it) and what it
    produced: history, evaluation, search, best params, model."""
    ending = read_ending(run_dir, finished=finished)
    results = RunResults(ending, history=load_history(run_dir))
    started = [e for e in read_events(run_dir) if isinstance(e, TrainingStarted)]
    results.started = started[-1] if started else None
    if results.file("predictions.npz"):
        results.evaluation = load_evaluation(run_dir)
    if ending.task == "tune":
        results.tuning = load_tuning(run_dir)
    if best := results.file("best_hyper_params.json"):
        try:
            results.best_hyper = HyperParams.load(best)
        except UserError as exc:
            results.notes.append(f"the best params could not be read: {exc}")
    if ending.task == "lr_find" and (sweep := results.file("lr_find.csv")):
        results.rate_sweep = read_sweep(sweep)
    model = results.file("model.keras")
    if model is None and ending.task in ("evaluate", "predict"):  # the model it evaluated, if still there
        model = _task_model(run_dir)
    if model is not None:
        from cnn_tui.core.models.model import NetModel  # noqa: PLC0415 — numpy at import, Keras to load: not before the first frame

        try:
            results.net = NetModel.load(model)
        except UserError as exc:
            results.notes.append(f"the model could not be loaded: {exc}")
    return results


def _task_model(run_dir: Path) -> Path | None:
    from cnn_tui.core.runs.execute import TaskSpec  # noqa: PLC0415 — imports the steps (numpy): not before the first frame

    try:
        named = TaskSpec.load(run_dir).model
    except ResultsError:
        return None
    return Path(named) if named and Path(named).is_file() else None


class RunDisplay(ScreenPart):
    """Shows ended runs and evaluations in the screen's views; holds no state of its own."""

    @staticmethod
    def view_of(results: RunResults) -> str:
        if results.ending.task == "pipeline" and results.evaluation is not None:
            return "evaluation"
        return RUN_VIEWS.get(results.ending.task, "training")

    def show_run(self, results: RunResults, *, live: bool, followed: bool = False) -> None:
        """Everything an ended run produced, into the views and the session, and one line saying how it ended."""
        session, ending = self.session, results.ending
        where = display_path(ending.run_dir)
        level = {"finished": "success", "stopped": "warning"}.get(ending.status, "error")
        message = ending.message or ending.status
        if ending.status == "failed" and ending.exit_code == EXIT_FAILED:  # a bug: the traceback is in run.log
            message += f" (details in {display_path(ending.run_dir / 'run.log')})"
        trained = ending.task in ("train", "pipeline") and (results.history or results.started is not None)
        if trained:
            self.show_training(results, message, live=live, followed=followed)
        if results.net is not None:
            session.model = results.net
            session.model_note = self.model_note(results)
            self.screen.view("model").show(results.net, f"from run {ending.run_dir.name}: {session.model_note}")
            self.check_model_fits_data(results.net)
        if results.evaluation is not None:
            session.evaluation = results.evaluation
            self.show_evaluation(results.evaluation, confusion=ending.task in ("predict", "pipeline"),
                                 files=self.evaluation_files(results), title_model=session.model_label())
        if results.tuning is not None:
            session.tuning = results.tuning
            session.best_hyper = results.best_hyper
            self.screen.view("tuning").show_result(results.tuning, stopped=results.tuning.status != "finished",
                                                   best_path=results.file("best_hyper_params.json"))
        if results.rate_sweep is not None:
            self.show_rate_sweep(results)
        for note in results.notes:
            self.say(note, "warning")
        done = whole(ending.details.get("epochs_done"), len(results.history.get("loss", [])))
        if not live:
            self.say(f"run {ending.run_dir.name} ({ending.label}, {ending.status}): {message}", level)
        elif ending.task in ("train", "pipeline") and ending.details.get("save_error") and results.net is None:
            self.say(f"{message}; the run could not save its model, so the model here is the one it started from",
                     "error")
        elif ending.task == "train" and done:
            self.say(f"{message}; model and curves in {where}", level)
        elif results.tuning is not None:
            self.say(f"{message}; results in {where}", level)
        else:
            self.say(f"{ending.label} {ending.status}: {message}; results in {where}", level)

    def show_rate_sweep(self, results: RunResults) -> None:
        """The finder's curve in a dialog; its Apply makes the suggestion init_rate (as A does later)."""
        details = results.ending.details
        rate = details.get("suggested_rate")
        self.session.suggested_rate = (rate if isinstance(rate, (int, float)) and not isinstance(rate, bool)
                                      and 0 < rate < math.inf else None)
        self.screen.refresh_state()
        rates, smoothed = results.rate_sweep or ([], [])

        def chosen(answer: str | None) -> None:
            if answer == APPLY and self.session.suggested_rate and self.session.hyper is not None:
                self.screen.params.apply_rate()

        self.screen.app.push_screen(RateFinderScreen(rates, smoothed, self.session.suggested_rate,
                                                     str(details.get("rule") or ""), results.file("lr_find.png")),
                                    chosen)

    def model_note(self, results: RunResults) -> str:
        ending = results.ending
        done = whole(ending.details.get("epochs_done"), len(results.history.get("loss", [])))
        if ending.task in ("train", "pipeline") and done:
            epochs = whole(ending.details.get("epochs"), done)
            note = f"trained {done} epoch{'s' if done > 1 else ''}"
            return note if ending.status == "finished" else f"{note} of {epochs} ({ending.status})"
        return f"from run {ending.run_dir.name}"

    def show_training(self, results: RunResults, message: str, *, live: bool, followed: bool) -> None:
        """The curves and the epoch table: already there when we followed the run, else from history.csv."""
        training, ending = self.screen.view("training"), results.ending
        history = results.history
        self.session.history = history
        if not (live and followed):
            details, started = ending.details, results.started
            epochs = started.epochs if started else whole(details.get("epochs"), len(history.get("loss", [])))
            samples = started.samples if started else whole(details.get("samples"), 0)
            batch = started.batch_size if started else whole(details.get("batch_size"), 1)
            batches = started.batches if started else max(1, math.ceil(samples / max(1, batch)))
            validation = (started.validation_samples if started else whole(details.get("validation_samples"), 0))
            training.start(f"Run {ending.run_dir.name}: {ending.label}, {epochs} epochs, batch {batch}, "
                           f"{samples:,} images", epochs, batches, validation=bool(validation) or "val_loss" in history)
            seconds = history.get("seconds", [])
            for i in range(len(history.get("loss", []))):
                logs = {k: v[i] for k, v in history.items() if k != "seconds" and i < len(v)}
                training.show_epoch(EpochEnd(i + 1, epochs, logs, seconds[i] if i < len(seconds) else 0.0))
        kept = ending.details.get("best_epoch")  # early stopping restored this epoch: its figures are the model's
        kept = whole(kept, 0) or None
        final = {k: v[min(kept or len(v), len(v)) - 1] for k, v in history.items() if v and k != "seconds"}
        shown = ("val_accuracy", "val_loss") if "val_accuracy" in final else ("accuracy", "loss")
        figures = " · ".join(f"{k} {final[k]:.4f}" for k in shown if k in final)
        if kept is not None and figures:
            figures += f" (epoch {kept}, kept)"
        files = {name: path for name, path in (("plots", results.file("train_val_plots.png")),
                                               ("model", results.file("model.keras"))) if path is not None}
        training.finish(message + (f" · {figures}" if figures else ""), files, ending.status == "finished",
                        kept_epoch=kept, status=ending.status)

    @staticmethod
    def evaluation_files(results: RunResults) -> dict[str, Path]:
        names = {"evaluation": "evaluation.json", "confusion_png": "confusion_matrix.png", "reliability": "reliability.png",
                 "report": "classification_report.csv"}
        return {key: path for key, name in names.items() if (path := results.file(name)) is not None}

    def show_evaluation(self, ev: Any, *, confusion: bool, files: dict[str, Any], title_model: str) -> None:
        title = (f"{'Prediction' if confusion else 'Evaluation'} on {ev.samples:,} test images · "
                 f"model: {title_model}")
        self.screen.view("evaluation").show(ev, confusion=confusion, title=title, files=files)

    def check_model_fits_data(self, net: Any) -> None:
        data = self.session.data
        if data is not None and (data.num_classes, data.image_size) != (net.num_classes, net.image_size):
            self.say(f"the model expects {net.num_classes} classes of {net.image_size}×{net.image_size} images, "
                     f"the data params say {data.num_classes} of {data.image_size}×{data.image_size}", "warning")
