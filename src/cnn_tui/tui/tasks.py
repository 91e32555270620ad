"""The heavy actions of the main screen, each run by one thread worker calling ``core.jobs``.

Only one task runs at a time (the action table disables the others and says why).
Core events travel to the UI thread as messages; ``stop`` is a ``threading.Event``
the core checks every batch. Every way a task can end (finished, stopped, a
user error, a bug) goes through ``on_worker_state_changed``, the one place that
turns errors into a readable line.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from textual import work
from textual.worker import Worker, WorkerState

from cnn_tui.core.errors import UserError
from cnn_tui.core.events import (
    BatchProgress,
    EpochEnd,
    FoldEnd,
    LoadProgress,
    Notice,
    TuningProgress,
)
from cnn_tui.core.params import LARGE_GRID
from cnn_tui.tui.messages import EngineEvent, KerasReady, TuningPlanned
from cnn_tui.tui.screens.confirm import ConfirmScreen
from cnn_tui.tui.throttle import ProgressThrottle
from cnn_tui.tui.widgets.data_view import DataView
from cnn_tui.tui.widgets.tables import display_path

log = logging.getLogger("cnn_tui.tui")

TUNING_FOLDS = 3
TUNING_MAX_SAMPLES = 10_000

Job = Callable[[Callable[[Any], None], threading.Event], Any]


def is_stopped(exc: BaseException | None) -> bool:
    """A ``core.dataset.TaskStopped``; that module (numpy) is not imported before a task needs it."""
    dataset = sys.modules.get("cnn_tui.core.dataset")
    return dataset is not None and isinstance(exc, dataset.TaskStopped)


class TaskMixin:
    """Mixed into MainScreen, which provides ``session``, ``say``, ``show_view``, ``refresh_state``, and
    ``view(name)`` for the views that ``mount_views`` mounts after the first frame."""

    stop_event: threading.Event
    task_name: str | None = None
    quit_when_done: bool = False
    current_run: Any = None  # the run folder of the running task, if it has one
    _progress: ProgressThrottle | None = None

    # ------------------------------------------------------------ running

    def start_task(self, task: str, label: str, job: Job, *, view: str | None = None, stoppable: bool = True) -> None:
        self.session.busy = label
        self.session.stoppable = stoppable
        self.stop_event = threading.Event()
        self.task_name = task
        self.progress.clear()
        if view:
            self.show_view(view)
        self.say(f"{label}…" + (" (x stops)" if stoppable else ""))
        self.refresh_state()
        self.run_task(task, job)

    def new_run(self, task: str, check: Callable[[], None] | None = None) -> Any:
        """Check the inputs, then make the run folder on the UI thread (a mkdir and a small JSON), so
        Snap saves into it from the first frame of the task. None, with the reason shown, if either fails."""
        from cnn_tui.core.runs import Run

        try:
            if check is not None:
                check()
            run = Run.create(self.session.data.results_path, task, command="cnn-tui (TUI)")
        except UserError as exc:
            self.say(str(exc), "error")
            return None
        self.session.run_dir = run.path
        self.current_run = run
        return run

    @work(thread=True, exclusive=True, group="task", exit_on_error=False)
    def run_task(self, task: str, job: Job) -> tuple[str, Any]:
        return task, job(partial(self.emit_event, task), self.stop_event)

    def emit_event(self, task: str, event: Any) -> None:
        self.post_message(EngineEvent(task, event))  # thread-safe

    def warm_keras(self) -> None:
        """Import Keras after the first frame, so the UI never waits for TensorFlow (see ``tui.warmup``)."""
        from cnn_tui.tui.warmup import warm_up

        warm_up(lambda label, error: self.post_message(KerasReady(label, error)))

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "task" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        await self.mount_views()
        self.progress.clear()  # the final state replaces any progress not shown yet
        task, label = self.task_name or "", self.session.busy or "the task"
        self.session.busy = None
        self.session.stoppable = False
        self.task_name = None
        run, self.current_run = self.current_run, None
        try:
            if event.state == WorkerState.SUCCESS:
                _, result = worker.result
                await getattr(self, f"finished_{task}")(result)
            elif event.state == WorkerState.ERROR:
                self.task_failed(label, worker.error)
                if run is not None and run.record.get("status") == "running":
                    # the core marks the runs it can; this catches the rest, so none stays 'running'
                    stopped = is_stopped(worker.error)
                    run.finish("stopped" if stopped else "failed", str(worker.error)[:300])
        finally:
            self.query_one(DataView).hide_loading()
            self.refresh_state()
            if self.quit_when_done:
                self.app.exit()

    def task_failed(self, label: str, exc: BaseException | None) -> None:
        from cnn_tui.core import backend

        if is_stopped(exc):
            self.say(f"{label} stopped: {exc}", "warning")
        elif isinstance(exc, UserError):
            self.say(str(exc), "error")
        elif exc is not None and backend.is_out_of_memory(exc):
            self.say(f"{label} failed: {backend.describe_failure(exc)}", "error")
        else:
            log.error("%s failed", label, exc_info=exc)
            where = f" (details in {self.app.log_path})" if getattr(self.app, "log_path", None) else ""
            self.say(f"{label} failed: {backend.describe_failure(exc) if exc else 'unknown error'}{where}", "error")

    def on_keras_ready(self, message: KerasReady) -> None:
        from cnn_tui.tui.launch import STARTED

        log.info("Keras ready (%s) %.2fs after launch", message.label, time.perf_counter() - STARTED)
        self.session.keras_error = message.error
        self.device_label = message.label
        if message.error:
            self.say(message.error, "error")
        self.refresh_state()

    # ------------------------------------------------------------ events from the core

    @property
    def progress(self) -> ProgressThrottle:
        if self._progress is None:
            self._progress = ProgressThrottle(self, self.show_event)
        return self._progress

    async def on_engine_event(self, message: EngineEvent) -> None:
        await self.mount_views()
        if isinstance(message.event, (LoadProgress, BatchProgress, TuningProgress)):
            self.progress.offer(type(message.event), message)  # the newest of each kind, ≤ 10 a second
            return
        self.progress.flush()
        self.show_event(message)

    def show_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, LoadProgress):
            if message.task in ("evaluate", "predict"):
                self.view("evaluation").show_progress(event.done, event.total, event.images_per_second)
            else:
                self.query_one(DataView).show_loading(Path(event.folder).name, event.done, event.total,
                                                 event.images_per_second)
        elif isinstance(event, BatchProgress):
            self.view("training").show_batch(event)
        elif isinstance(event, EpochEnd):
            self.view("training").show_epoch(event)
            logs = " · ".join(f"{k} {v:.4f}" for k, v in event.logs.items())
            self.say(f"epoch {event.epoch} of {event.epochs}: {logs}")
        elif isinstance(event, TuningProgress):
            self.view("tuning").show_progress(event)
        elif isinstance(event, FoldEnd):
            self.view("tuning").show_fold(event.row)
        elif isinstance(event, Notice):
            self.say(event.text, event.level)

    async def on_tuning_planned(self, message: TuningPlanned) -> None:
        await self.mount_views()
        self.view("tuning").start(message.plan)

    # ------------------------------------------------------------ datasets

    def action_load_train(self) -> None:
        from cnn_tui.core import jobs

        data, model = self.session.data, self.session.model
        channels = model.channels if model else None
        self.start_task("load_train", "loading the training set", lambda emit, stop: jobs.load_training_set(
            data, channels=channels, emit=emit, stop=stop), view="data")

    def action_load_test(self) -> None:
        from cnn_tui.core import jobs

        session = self.session
        reference = session.model or session.train_set
        names = reference.class_names if reference else None
        channels = reference.channels if reference else None
        self.start_task("load_test", "loading the test set", lambda emit, stop: jobs.load_test_set(
            session.data, class_names=names, channels=channels, emit=emit, stop=stop), view="data")

    async def finished_load_train(self, images: Any) -> None:
        self.session.train_set = images
        await self.query_one(DataView).show_set("training", images)
        self.say(f"training set: {len(images):,} images in {images.num_classes} classes "
                 f"({images.seconds:.1f}s{', from cache' if images.from_cache else ''})", "success")

    async def finished_load_test(self, images: Any) -> None:
        self.session.test_set = images
        await self.query_one(DataView).show_set("test", images)
        self.say(f"test set: {len(images):,} images in {images.num_classes} classes "
                 f"({images.seconds:.1f}s{', from cache' if images.from_cache else ''})", "success")

    # ------------------------------------------------------------ model

    def action_init_model(self) -> None:
        from cnn_tui.core import jobs

        session = self.session
        data, hyper, images = session.data, session.hyper, session.train_set
        self.start_task("init_model", "building the network model",
                        lambda emit, stop: jobs.new_model(data, hyper, images), view="model", stoppable=False)

    async def finished_init_model(self, net: Any) -> None:
        session = self.session
        session.model = net
        session.history = {}
        total = net.totals().total
        session.model_note = f"new, {total:,} params"
        self.view("model").show(net, "new, untrained")
        self.say(f"network model initialised: {total:,} parameters", "success")

    def load_model_file(self, path: Path) -> None:
        from cnn_tui.core.model import NetModel

        self.start_task("load_model", "loading the model", lambda emit, stop: NetModel.load(path),
                        view="model", stoppable=False)

    async def finished_load_model(self, net: Any) -> None:
        session = self.session
        session.model = net
        session.model_note = f"loaded {Path(net.source).name}"
        self.view("model").show(net, f"loaded from {net.source}")
        self.say(f"model loaded: {net.num_classes} classes, {net.image_size}×{net.image_size}×{net.channels} input",
                 "success")
        data = session.data
        if data is not None and (data.num_classes, data.image_size) != (net.num_classes, net.image_size):
            self.say(f"the model expects {net.num_classes} classes of {net.image_size}×{net.image_size} images, "
                     f"the data params say {data.num_classes} of {data.image_size}×{data.image_size}", "warning")

    def save_model_file(self, path: Path) -> None:
        net = self.session.model
        self.start_task("save_model", "saving the model", lambda emit, stop: net.save(path), stoppable=False)

    async def finished_save_model(self, path: Any) -> None:
        self.session.model_note = f"{self.session.model_note}, saved as {Path(path).name}"
        self.say(f"model saved: {path}", "success")

    # ------------------------------------------------------------ training

    async def action_train(self) -> None:
        await self.mount_views()
        self.start_training(validate=False)

    async def action_train_val(self) -> None:
        await self.mount_views()
        self.start_training(validate=True)

    def start_training(self, *, validate: bool) -> None:
        from cnn_tui.core import jobs

        session = self.session
        data, hyper, images, net = session.data, session.hyper, session.train_set, session.model
        fraction = data.validation_split if validate else None
        config = hyper.first()
        fit_images = len(images) - (round(len(images) * fraction) if fraction else 0)
        what = f"with {fraction:.0%} held out for validation" if fraction else "on all training images"
        self.view("training").start(
            f"Training {what}: {config.epochs} epochs, batch {config.batch_size}, init_rate {config.init_rate:g}",
            config.epochs, math.ceil(fit_images / config.batch_size), validation=bool(fraction))

        run = self.new_run("train", lambda: net.check_fits(
            num_classes=images.num_classes, image_size=images.image_size, class_names=images.class_names,
            what="training set"))
        if run is None:
            return

        def job(emit: Any, stop: threading.Event) -> Any:
            return jobs.train_run(net, images, data, hyper, validate=fraction, run=run, emit=emit, stop=stop)

        self.start_task("train", "training", job, view="training")

    async def finished_train(self, outcome: Any) -> None:
        session, result = self.session, outcome.result
        session.run_dir = outcome.run.path
        session.history = result.history
        ok = result.status == "finished"
        if result.epochs_done:
            session.model_note = f"trained {result.epochs_done} epoch{'s' if result.epochs_done > 1 else ''}" + (
                "" if ok else f" of {result.epochs} ({result.status})")
        final = {k: v[-1] for k, v in result.history.items() if v and k != "seconds"}
        shown = ("val_accuracy", "val_loss") if "val_accuracy" in final else ("accuracy", "loss")
        figures = " · ".join(f"{k} {final[k]:.4f}" for k in shown if k in final)
        message = f"{result.message}" + (f" · {figures}" if figures else "")
        self.view("training").finish(message, outcome.files, ok)
        if outcome.save_error:
            # the disk filled up or the folder went away: the trained model is still here to save elsewhere
            session.model_note += " (not saved)"
            self.say(f"{result.message}, but not all of it could be saved: {outcome.save_error}; "
                     "the model is still in memory: save it elsewhere with W", "error")
            return
        level = {"finished": "success", "stopped": "warning"}.get(result.status, "error")
        self.say(result.message + (f"; model and curves in {display_path(outcome.run.path)}" if result.epochs_done
                                   else ""), level)

    # ------------------------------------------------------------ evaluation

    def action_evaluate(self) -> None:
        self.start_evaluation(confusion=False)

    def action_predict(self) -> None:
        self.start_evaluation(confusion=True)

    def start_evaluation(self, *, confusion: bool) -> None:
        from cnn_tui.core import jobs

        session = self.session
        net, images, data = session.model, session.test_set, session.data
        task = "predict" if confusion else "evaluate"

        run = self.new_run(task, lambda: net.check_fits(
            num_classes=images.num_classes, image_size=images.image_size, class_names=images.class_names,
            what="test set"))
        if run is None:
            return

        def job(emit: Any, stop: threading.Event) -> Any:
            return jobs.evaluate_run(net, images, run=run, data=data, confusion=confusion, emit=emit, stop=stop)

        self.start_task(task, "prediction" if confusion else "evaluation", job, view="evaluation")

    async def finished_evaluate(self, outcome: Any, confusion: bool = False) -> None:
        self.session.evaluation = outcome.evaluation
        self.session.run_dir = outcome.run.path
        ev = outcome.evaluation
        title = (f"{'Prediction' if confusion else 'Evaluation'} on {ev.samples:,} test images · "
                 f"model: {self.session.model_label()}")
        self.view("evaluation").show(ev, confusion=confusion, title=title, files=outcome.files)
        self.say(f"test accuracy {ev.accuracy:.2%}, loss {ev.loss:.4f}; saved in {display_path(outcome.run.path)}",
                 "success")

    async def finished_predict(self, outcome: Any) -> None:
        await self.finished_evaluate(outcome, confusion=True)

    # ------------------------------------------------------------ tuning

    def action_tune(self) -> None:
        hyper = self.session.hyper
        combos = hyper.combination_count()
        if combos > LARGE_GRID:
            question = (f"The grid has {combos} combinations × {TUNING_FOLDS} folds = {combos * TUNING_FOLDS} "
                        f"trainings of {hyper.first().epochs}+ epochs each. This can take very long. Start?")

            def answer(yes: bool | None) -> None:
                if yes:
                    self.start_tuning()

            self.app.push_screen(ConfirmScreen("Large tuning grid", question, yes="Start"), answer)
        else:
            self.start_tuning()

    def start_tuning(self) -> None:
        from cnn_tui.core import jobs
        from cnn_tui.core.tuning import plan_search

        session = self.session
        data, hyper, images = session.data, session.hyper, session.train_set

        run = self.new_run("tune")
        if run is None:
            return

        def job(emit: Any, stop: threading.Event) -> Any:
            plan = plan_search(hyper, samples=min(len(images), TUNING_MAX_SAMPLES), cv=TUNING_FOLDS, seed=data.seed)
            self.post_message(TuningPlanned(plan))
            return jobs.tune_run(images, data, hyper, run=run, cv=TUNING_FOLDS, max_samples=TUNING_MAX_SAMPLES,
                                 emit=emit, stop=stop)

        self.start_task("tune", "tuning", job, view="tuning")

    async def finished_tune(self, outcome: Any) -> None:
        session, result = self.session, outcome.result
        session.tuning = result
        session.best_hyper = outcome.best_hyper
        session.run_dir = outcome.run.path
        self.view("tuning").show_result(result, stopped=result.status != "finished",
                                               best_path=outcome.files.get("best"))
        level = {"finished": "success", "stopped": "warning"}.get(result.status, "error")
        self.say(f"{result.message}; results in {display_path(outcome.run.path)}", level)

    # ------------------------------------------------------------ stop

    def action_stop(self) -> None:
        self.stop_event.set()
        self.say(f"stopping {self.session.busy} after the current batch…")
