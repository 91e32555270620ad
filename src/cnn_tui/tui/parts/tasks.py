"""The main screen's tasks, held by one ``Tasks`` object: what runs, how to stop it, how it ended.

Two kinds of task, one at a time (the action table disables the others and says why):

* **Runs** — training (t, v) and tuning (u) run in a detached run process (``core.runs.control``) that
  outlives the TUI, the terminal and the SSH connection. A thread worker prepares the run folder (the
  TUI's model is saved into it and is what the run trains), launches the process and follows its
  ``events.jsonl``, posting each event to the screen; when the run has ended it reads back what the run
  produced (model, history, search) for the next task. ``attach`` follows a run started elsewhere (the
  CLI, an earlier TUI) the same way; ``open_finished`` shows an ended run's results.
* **In-process** — loading the sets, building / loading / saving a model (plain thread workers), and
  evaluation / prediction (``control.run_here``: a run folder of their own, ended by the core).

The screen hands its ``action_*`` methods, worker state changes and engine messages to this object.
Core events travel to the UI thread as ``EngineEvent`` messages; progress is throttled to ten updates a
second. Every way a task ends (finished, stopped, a user error, a bug) goes through
``on_worker_state_changed``, the one place that turns errors into a readable line. The TUI never ends a
run: the run's own process (or ``run_here``) does.

The screen provides: ``session``, ``say``, ``show_view``, ``view(name)``, ``mount_views``,
``refresh_state``, ``post_message``, ``run_worker``, ``set_timer``, ``query_one`` and ``app``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.worker import Worker, WorkerState

from cnn_tui.core.errors import TaskStopped, UserError
from cnn_tui.core.events import (
    BatchProgress,
    EpochEnd,
    FoldEnd,
    LoadProgress,
    Notice,
    SearchPlanned,
    TaskFinished,
    TrainingStarted,
    TuningProgress,
)
from cnn_tui.core.params.files import LARGE_GRID
from cnn_tui.tui.messages import EngineEvent, RunStarted
from cnn_tui.tui.parts.run_display import RUN_LABELS, RUN_VIEWS, RunDisplay, RunEnd, read_run_end
from cnn_tui.tui.screens.confirm import ChoiceScreen, ConfirmScreen
from cnn_tui.tui.throttle import ProgressThrottle
from cnn_tui.tui.widgets.data_view import DataView
from cnn_tui.tui.widgets.tables import display_path

log = logging.getLogger("cnn_tui.tui")

COMMAND = "cnn-tui (TUI)"  # run.json's "command" for the runs the TUI starts
TUNING_FOLDS = 3
TUNING_MAX_SAMPLES = 10_000
RANDOM_SAMPLE = 50  # combinations a random search draws from a grid too large to search whole
Job = Callable[[Callable[[Any], None], threading.Event], Any]
Done = Callable[[Any], Awaitable[None]]


def is_stopped(exc: BaseException | None) -> bool:
    return isinstance(exc, TaskStopped)


# ---------------------------------------------------------------- the tasks


class Tasks:
    """The one task of the main screen (or none), the run it follows, and how each kind ends."""

    def __init__(self, screen: Any) -> None:
        self.screen = screen
        self.display = RunDisplay(screen)  # how ended runs and evaluations are shown
        self.task: str | None = None  # the running task's name ("train", "load_train"...), None when idle
        self.kind: str | None = None  # "run" (a run process followed) or "local" (this process's thread)
        self.stop_event = threading.Event()  # in-process tasks check it every batch
        self.detach = threading.Event()  # set: stop following the run (it goes on)
        self.run_dir: Path | None = None  # the run followed, once its process has taken it over
        self.proc: Any = None  # the run process this TUI launched (a Popen, reaped by a thread)
        self.quit_when_done = False
        self.worker: Worker | None = None
        self._done: Done | None = None
        self._progress: ProgressThrottle | None = None
        self._stop_lock = threading.Lock()
        self._stop_sent = False
        self._training_shown = False  # the training view was started for this task
        self._epochs: dict[int, EpochEnd] = {}  # the epochs shown, by number (a resumed run starts again)

    @property
    def session(self) -> Any:
        return self.screen.session

    def say(self, text: str, level: str = "info") -> None:
        self.screen.say(text, level)

    @property
    def following(self) -> bool:
        """A run process's task is going (launching or followed)."""
        return self.task is not None and self.kind == "run"

    # ------------------------------------------------------------ running

    def start(self, task: str, label: str, job: Job, done: Done, *, view: str | None = None, stoppable: bool = True,
              kind: str = "local", detach: threading.Event | None = None) -> None:
        """Run ``job(emit, stop)`` in a thread worker; ``done(result)`` shows its result on the UI thread."""
        session = self.session
        session.busy = label
        session.stoppable = stoppable
        self.task, self.kind, self._done = task, kind, done
        self.stop_event = threading.Event()
        self.detach = detach or threading.Event()
        self.run_dir, self.proc, self._stop_sent = None, None, False
        self._training_shown, self._epochs = False, {}
        self.progress.clear()
        if view:
            self.screen.show_view(view)
        self.say(f"{label}…" + (" (x stops)" if stoppable else ""))
        self.screen.refresh_state()
        emit, stop = (lambda event: self.emit(task, event)), self.stop_event
        self.worker = self.screen.run_worker(lambda: job(emit, stop), name=task, group="task", thread=True,
                                             exclusive=True, exit_on_error=False)

    def emit(self, task: str, event: Any) -> None:
        self.screen.post_message(EngineEvent(task, event))  # thread-safe

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker is not self.worker or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR,
                                                             WorkerState.CANCELLED):
            return
        await self.screen.mount_views()
        self.progress.clear()  # the final state replaces any progress not shown yet
        label = self.session.busy or "the task"
        done, self._done, self.worker = self._done, None, None
        self.session.busy = None
        self.session.stoppable = False
        self.task = self.kind = None
        self.run_dir = None
        try:
            if event.state == WorkerState.SUCCESS and done is not None:
                await done(worker.result)
            elif event.state == WorkerState.ERROR:
                self.failed(label, worker.error)
        finally:
            self.screen.query_one(DataView).hide_loading()
            self.screen.refresh_state()
            if self.quit_when_done:
                self.screen.app.exit()

    def failed(self, label: str, exc: BaseException | None) -> None:
        """The one place a task's exception becomes a readable line (and a bug a logged traceback)."""
        from cnn_tui.core import backend

        if is_stopped(exc):
            self.say(f"{label} stopped: {exc}", "warning")
        elif isinstance(exc, UserError):
            self.say(str(exc), "error")
        elif exc is not None and backend.is_out_of_memory(exc):
            self.say(f"{label} failed: {backend.describe_failure(exc)}", "error")
        else:
            log.error("%s failed", label, exc_info=exc)
            where = f" (details in {self.screen.app.log_path})" if getattr(self.screen.app, "log_path", None) else ""
            self.say(f"{label} failed: {backend.describe_failure(exc) if exc else 'unknown error'}{where}", "error")

    # ------------------------------------------------------------ events from the core

    @property
    def progress(self) -> ProgressThrottle:
        if self._progress is None:
            self._progress = ProgressThrottle(self.screen, self.show_event)
        return self._progress

    async def on_engine_event(self, message: EngineEvent) -> None:
        await self.screen.mount_views()
        if isinstance(message.event, (LoadProgress, BatchProgress, TuningProgress)):
            self.progress.offer(type(message.event), message)  # the newest of each kind, ≤ 10 a second
            return
        self.progress.flush()
        self.show_event(message)

    def show_event(self, message: EngineEvent) -> None:
        event, view = message.event, self.screen.view
        if isinstance(event, LoadProgress):
            if message.task in ("evaluate", "predict"):
                view("evaluation").show_progress(event.done, event.total, event.images_per_second)
            else:
                self.screen.query_one(DataView).show_loading(Path(event.folder).name, event.done, event.total,
                                                             event.images_per_second)
        elif isinstance(event, TrainingStarted):
            self.start_training_view(event)
        elif isinstance(event, BatchProgress):
            if self._training_shown:
                view("training").show_batch(event)
        elif isinstance(event, EpochEnd):
            if any(v is None for v in event.logs.values()):  # a diverged figure travels as null
                event = dataclasses.replace(event, logs={k: math.nan if v is None else v for k, v in event.logs.items()})
            if self._training_shown:
                self._epochs[event.epoch] = event
                view("training").show_epoch(event)
            logs = " · ".join(f"{k} {v:.4f}" for k, v in event.logs.items())
            self.say(f"epoch {event.epoch} of {event.epochs}: {logs}")
        elif isinstance(event, SearchPlanned):
            from cnn_tui.core.tuning.search import TuningPlan

            view("tuning").start(TuningPlan(event.strategy, list(event.candidates), event.cv, event.samples,
                                            event.fits, event.batches))
        elif isinstance(event, TuningProgress):
            view("tuning").show_progress(event)
        elif isinstance(event, FoldEnd):
            view("tuning").show_fold(event.row)
        elif isinstance(event, Notice):
            self.say(event.text, event.level)
        # TaskFinished: the end is shown once the worker has read back what the run produced

    def start_training_view(self, event: TrainingStarted) -> None:
        """Lay the training view out for ``event``; a resumed run keeps the epochs it had done."""
        kept = [self._epochs[n] for n in sorted(self._epochs) if n <= event.initial_epoch]
        what = (f"with {event.validation_samples:,} images held out for validation" if event.validation_samples
                else "on all training images")
        resumed = f", resumed at epoch {event.initial_epoch + 1}" if event.initial_epoch else ""
        title = f"Training {what}: {event.epochs} epochs, batch {event.batch_size}, {event.samples:,} images{resumed}"
        training = self.screen.view("training")
        training.start(title, event.epochs, event.batches, validation=bool(event.validation_samples))
        self._training_shown, self._epochs = True, {}
        for epoch in kept:
            self._epochs[epoch.epoch] = epoch
            training.show_epoch(epoch)

    # ------------------------------------------------------------ datasets (in-process)

    def load_train(self) -> None:
        from cnn_tui.core.runs import steps

        data, model = self.session.data, self.session.model
        channels = model.channels if model else None
        self.start("load_train", "loading the training set", lambda emit, stop: steps.load_training_set(
            data, channels=channels, emit=emit, stop=stop), self.loaded_train, view="data")

    def load_test(self) -> None:
        from cnn_tui.core.runs import steps

        session = self.session
        reference = session.model or session.train_set
        # a Keras model from elsewhere records no class names: the test folders' are taken
        names = reference.class_names if reference and getattr(reference, "names_known", True) else None
        channels = reference.channels if reference else None
        self.start("load_test", "loading the test set", lambda emit, stop: steps.load_test_set(
            session.data, class_names=names, channels=channels, emit=emit, stop=stop), self.loaded_test, view="data")

    async def loaded_train(self, images: Any) -> None:
        self.session.train_set = images
        await self.screen.query_one(DataView).show_set("training", images)
        self.say(f"training set: {len(images):,} images in {images.num_classes} classes "
                 f"({images.seconds:.1f}s{', from cache' if images.from_cache else ''})", "success")

    async def loaded_test(self, images: Any) -> None:
        self.session.test_set = images
        await self.screen.query_one(DataView).show_set("test", images)
        self.say(f"test set: {len(images):,} images in {images.num_classes} classes "
                 f"({images.seconds:.1f}s{', from cache' if images.from_cache else ''})", "success")

    # ------------------------------------------------------------ model (in-process)

    def init_model(self) -> None:
        from cnn_tui.core.runs import steps

        session = self.session
        data, hyper, images = session.data, session.hyper, session.train_set
        self.start("init_model", "building the network model", lambda emit, stop: steps.new_model(data, hyper, images),
                   self.initialised, view="model", stoppable=False)

    async def initialised(self, net: Any) -> None:
        session = self.session
        session.model = net
        session.history = {}
        total = net.totals().total
        session.model_note = f"new, {total:,} params"
        self.screen.view("model").show(net, "new, untrained")
        self.say(f"network model initialised: {total:,} parameters", "success")

    def load_model(self, path: Path) -> None:
        from cnn_tui.core.models.model import NetModel

        self.start("load_model", "loading the model", lambda emit, stop: NetModel.load(path), self.model_loaded,
                   view="model", stoppable=False)

    async def model_loaded(self, net: Any) -> None:
        session = self.session
        session.model = net
        session.model_note = f"loaded {Path(net.source).name}"
        self.screen.view("model").show(net, f"loaded from {net.source}")
        self.say(f"model loaded: {net.num_classes} classes, {net.image_size}×{net.image_size}×{net.channels} input",
                 "success")
        self.display.check_model_fits_data(net)

    def save_model(self, path: Path) -> None:
        net = self.session.model
        self.start("save_model", "saving the model", lambda emit, stop: net.save(path), self.model_saved,
                   stoppable=False)

    async def model_saved(self, path: Any) -> None:
        self.session.model_note = f"{self.session.model_note}, saved as {Path(path).name}"
        self.say(f"model saved: {path}", "success")

    # ------------------------------------------------------------ runs: training and tuning

    def train(self, *, validate: bool) -> None:
        from cnn_tui.core.runs.execute import TaskSpec

        session = self.session
        images, net = session.train_set, session.model
        try:  # a model that cannot take this data is refused before any run folder is made
            net.check_fits(num_classes=images.num_classes, image_size=images.image_size,
                           class_names=images.class_names, what="training set")
        except UserError as exc:
            self.say(str(exc), "error")
            return
        spec = TaskSpec("train", validate=session.data.validation_split if validate else None)
        config = session.hyper.first()
        what = f"with {spec.validate:.0%} held out for validation" if spec.validate else "on all training images"
        fit_images = len(images) - (round(len(images) * spec.validate) if spec.validate else 0)
        self.screen.view("training").start(  # laid out again when the run says how it trains
            f"Training {what}: {config.epochs} epochs, batch {config.batch_size} · starting the run process…",
            config.epochs, math.ceil(fit_images / config.batch_size), validation=bool(spec.validate))
        self.launch(spec, "training", start_model=net)

    def tune(self) -> None:
        from cnn_tui.core.tuning.search import combination_limit

        hyper = self.session.hyper
        combos = hyper.combination_count()  # a product of list lengths: nothing is listed
        try:
            limit = combination_limit()
        except UserError as exc:
            self.say(str(exc), "error")
            return
        if combos > limit:  # listing such a grid alone can fill the memory: offer a random sample
            question = (f"The grid has {combos:,} combinations, more than the limit of {limit:,} "
                        f"(CNN_TUI_MAX_COMBINATIONS): searched one by one, that is {combos * TUNING_FOLDS:,} trainings. "
                        f"Search {RANDOM_SAMPLE} combinations drawn at random instead?")

            def chosen(choice: str | None) -> None:
                if choice == "random":
                    self.start_tuning(strategy="random")

            self.screen.app.push_screen(ChoiceScreen(
                "Tuning grid too large", question,
                [("random", f"Search {RANDOM_SAMPLE} at random", "r"), ("cancel", "Cancel", "c")], default="cancel"),
                chosen)
            return
        if combos <= LARGE_GRID:
            self.start_tuning()
            return
        question = (f"The grid has {combos} combinations × {TUNING_FOLDS} folds = {combos * TUNING_FOLDS} "
                    f"trainings of {hyper.first().epochs}+ epochs each. This can take very long. Start?")

        def answer(yes: bool | None) -> None:
            if yes:
                self.start_tuning()

        self.screen.app.push_screen(ConfirmScreen("Large tuning grid", question, yes="Start"), answer)

    def start_tuning(self, strategy: str = "grid", prune: str = "none") -> None:
        from cnn_tui.core.runs.execute import TaskSpec

        self.launch(TaskSpec("tune", strategy=strategy, cv=TUNING_FOLDS, n_iter=RANDOM_SAMPLE,
                             max_samples=TUNING_MAX_SAMPLES, prune=prune), "tuning")

    def tune_with_options(self) -> None:
        """U: the strategy (and pruning) chosen in a dialog, then the search."""
        combos = self.session.hyper.combination_count()
        # four buttons fit an 80-column terminal; escape cancels (halving is the CLI's: --strategy halving)
        options = [("grid", "Grid", "g"), ("hyperband", "Hyperband", "h"), ("grid-median", "Grid+prune", "m"),
                   ("random", "Random", "r")]
        question = "\n".join((
            f"Grid: all {combos:,} combinations, every epoch.",
            "Hyperband: every combination a few epochs; the best third trains on, round after round.",
            "Grid+prune: a fit whose validation accuracy falls below the median stops early.",
            f"Random: {min(RANDOM_SAMPLE, combos)} combinations drawn from the grid.",
            "Escape cancels."))

        def chosen(choice: str | None) -> None:
            if choice:
                strategy, _, prune = choice.partition("-")
                self.start_tuning(strategy=strategy, prune=prune or "none")

        self.screen.app.push_screen(ChoiceScreen("Tuning strategy", question, options, default="hyperband", width=78),
                                    chosen)

    def skip_fit(self) -> None:
        """j: the run process skips the fit it trains and goes on with the next."""
        from cnn_tui.core.runs import control

        if not (self.following and self.run_dir is not None):
            self.say("no search is running", "warning")
            return
        try:
            control.skip_fit(self.run_dir)
        except UserError as exc:
            self.say(str(exc), "warning")
            return
        self.say("skipping the running fit…")

    def launch(self, spec: Any, label: str, *, start_model: Any = None) -> None:
        """Prepare a run folder and start its run process, then follow it (all in one thread worker)."""
        session = self.session
        data, hyper = session.data, session.hyper
        detach = threading.Event()

        def job(emit: Callable[[Any], None], stop: threading.Event) -> RunEnd:
            from cnn_tui.core.runs import control

            run = control.prepare(spec, data, hyper, command=COMMAND, start_model=start_model)
            self.screen.post_message(RunStarted(run.path))  # Snap saves into it from now on
            proc = control.launch(run)
            self.proc = proc
            threading.Thread(target=proc.wait, name="cnn-tui-run-reaper", daemon=True).start()
            self.run_dir = run.path
            if stop.is_set():  # x (or quit and stop) came while the process was starting
                self.stop_run(run.path)
            return self.follow(run.path, spec.task, emit, detach)

        self.start(spec.task, label, job, self.run_ended, view=RUN_VIEWS[spec.task], kind="run", detach=detach)

    def follow(self, run_dir: Path, task: str, emit: Callable[[Any], None], detach: threading.Event) -> RunEnd:
        """In the worker: every event of the run to the screen until it ends (or we detach), then its results."""
        from cnn_tui.core.runs import control

        finished = None
        for event in control.follow(run_dir, stop=detach):
            emit(event)
            if isinstance(event, TaskFinished):
                finished = event
        if detach.is_set():
            return RunEnd(run_dir, task, "detached", "")
        return read_run_end(run_dir, task, finished=finished)

    def attach(self, run_dir: Path) -> None:
        """Follow a run that is going (started by the CLI or an earlier TUI): replayed, then live; x stops it."""
        from cnn_tui.core.runs.folder import read_run

        run_dir = Path(run_dir)
        if self.task is not None:
            if self.run_dir is not None and run_dir.resolve() == self.run_dir.resolve():
                self.screen.show_view(RUN_VIEWS.get(self.task, "training"))
            else:
                self.say(f"{self.session.busy} is running; wait for it or stop it (x) before following another run",
                         "warning")
            return
        record = read_run(run_dir) or {}
        task = str(record.get("task") or "train")
        detach = threading.Event()

        def job(emit: Callable[[Any], None], stop: threading.Event) -> RunEnd:
            return self.follow(run_dir, task, emit, detach)

        self.start(task, RUN_LABELS.get(task, task), job, self.run_ended, view=RUN_VIEWS.get(task, "training"),
                   kind="run", detach=detach)
        self.run_dir = self.session.run_dir = run_dir  # x stops it from now on
        self.say(f"following run {run_dir.name}: x stops it, q leaves it running")

    def open_finished(self, run_dir: Path) -> None:
        """Show an ended run's results in the views, and take its model (e, p then work on it)."""
        if self.task is not None:
            self.say(f"{self.session.busy} is running; wait for it or stop it (x) before opening a run", "warning")
            return
        run_dir = Path(run_dir)
        self.start("open_run", f"opening run {run_dir.name}", lambda emit, stop: read_run_end(run_dir), self.opened,
                   stoppable=False)

    async def opened(self, end: RunEnd) -> None:
        self.session.run_dir = end.run_dir
        self.display.show_run(end, live=False)
        self.screen.show_view(self.display.view_of(end))

    async def run_ended(self, end: RunEnd) -> None:
        if end.status == "detached":
            self.say(f"run {end.run_dir.name} goes on without this window: the Runs view finds it again")
            return
        self.session.run_dir = end.run_dir
        self.display.show_run(end, live=True, followed=self._training_shown)

    # ------------------------------------------------------------ evaluation (in-process, a run folder of its own)

    def evaluate(self, *, confusion: bool) -> None:
        session = self.session
        net, images, data = session.model, session.test_set, session.data
        task = "predict" if confusion else "evaluate"
        try:
            net.check_fits(num_classes=images.num_classes, image_size=images.image_size,
                           class_names=images.class_names, what="test set")
        except UserError as exc:
            self.say(str(exc), "error")
            return

        def job(emit: Callable[[Any], None], stop: threading.Event) -> Any:
            from cnn_tui.core.runs import control
            from cnn_tui.core.runs.execute import Inputs, TaskSpec

            spec = TaskSpec(task)
            run = control.prepare(spec, data, None, command=COMMAND)
            self.screen.post_message(RunStarted(run.path))
            return control.run_here(run, spec, emit=emit, stop=stop, inputs=Inputs(net=net, test_set=images))

        async def done(outcome: Any) -> None:
            await self.evaluated(outcome, confusion=confusion)

        self.start(task, RUN_LABELS[task], job, done, view="evaluation")

    async def evaluated(self, outcome: Any, *, confusion: bool) -> None:
        evaluated = outcome.evaluation
        ev = evaluated.evaluation
        self.session.evaluation = ev
        self.session.run_dir = outcome.run.path
        self.display.show_evaluation(ev, confusion=confusion, files=evaluated.files,
                                     title_model=self.session.model_label())
        self.say(f"test accuracy {ev.accuracy:.2%}, loss {ev.loss:.4f}; saved in {display_path(outcome.run.path)}",
                 "success")

    # ------------------------------------------------------------ stop, quit, hang-up

    def stop(self) -> None:
        """x: in-process tasks stop after the current batch; a run is asked to stop (it saves within a batch)."""
        label = self.session.busy
        self.stop_event.set()
        if self.following and self.run_dir is not None:
            self.stop_run(self.run_dir)
        self.say(f"stopping {label} after the current batch…")

    def stop_run(self, run_dir: Path) -> None:
        """Ask the run process to stop, once (the worker may ask too if x came while it started)."""
        with self._stop_lock:
            if self._stop_sent:
                return
            self._stop_sent = True
        self.request_stop(Path(run_dir))

    def request_stop(self, run_dir: Path) -> bool:
        """Signal any run of ours to stop, without waiting; a refusal (it ended, another host's) is said."""
        from cnn_tui.core.runs import control

        try:
            control.stop(run_dir, wait=False)
        except UserError as exc:
            self.screen.post_message(EngineEvent("stop", Notice(str(exc), "warning")))  # callable from any thread
            return False
        return True

    def ask_to_stop_run(self, run_dir: Path) -> None:
        """The Runs view's k: confirm, then ask that run to stop (without waiting; it saves within a batch)."""
        run_dir = Path(run_dir)

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            if self.following and self.run_dir is not None and run_dir.resolve() == self.run_dir.resolve():
                self.stop()  # the run we follow: as x
            elif self.request_stop(run_dir):
                self.say(f"stopping run {run_dir.name} after the current batch…")
            self.screen.view("runs").refresh_runs()

        self.screen.app.push_screen(ConfirmScreen(
            "Stop run?", f"Stop run {run_dir.name}? It saves what it has (its last whole epoch or fit) and ends.",
            yes="Stop it", no="Keep it running"), answer)

    def ask_to_quit(self, unsaved: str = "") -> bool:
        """q while a task runs: ask (True: a question is on screen). A run may be left running (the default)."""
        session = self.session
        if not session.busy:
            return False
        if self.following:
            name = self.run_dir.name if self.run_dir is not None else "the new run"
            question = (f"{session.busy.capitalize()} runs in its own process (run {name}). Leave it running and "
                        f"follow it later from the Runs view, or stop it (it saves what it has)?{unsaved}")

            def chosen(choice: str | None) -> None:
                if choice == "leave":
                    self.leave()
                elif choice == "stop":
                    self.stop_and_leave()

            self.screen.app.push_screen(ChoiceScreen(
                "Quit cnn-tui?", question,
                [("leave", "Leave it running", "l"), ("stop", "Stop it", "s"), ("cancel", "Cancel", "c")],
                default="leave"), chosen)
            return True

        def answer(yes: bool | None) -> None:
            if yes and session.busy:
                self.quit_when_done = True
                if session.stoppable:
                    self.stop_event.set()
                self.say(f"stopping {session.busy}, then quitting; what was saved stays", "warning")
            elif yes:
                self.screen.app.exit()

        question = f"{session.busy.capitalize()} is running. Stop it (keeping what was saved) and quit?{unsaved}"
        self.screen.app.push_screen(ConfirmScreen("Quit cnn-tui?", question, yes="Stop and quit", no="Keep running"),
                                    answer)
        return True

    def leave(self) -> None:
        """Quit, leaving the run going: only the following stops."""
        self.detach.set()
        if self.run_dir is None:
            log.info("quitting while a run starts: it goes on")
        self.screen.app.exit()

    def stop_and_leave(self) -> None:
        """Quit after asking the run to stop (it ends by itself, saving within a batch)."""
        self.stop_event.set()
        if self.run_dir is None:  # still starting: the worker stops it once it has started, then we quit
            self.quit_when_done = True
            self.say("stopping the run as soon as its process has started, then quitting", "warning")
            return
        self.stop_run(self.run_dir)
        self.detach.set()
        self.screen.app.exit()

    def hang_up(self, signal_name: str) -> None:
        """The terminal is gone or we were told to end: a run goes on (we only stop following it); an in-process
        task is stopped (it saves) and we quit when it has ended; nothing is asked."""
        if self.following:
            run = f"run {self.run_dir.name}" if self.run_dir is not None else "the run being started"
            log.warning("%s: stopping to follow %s (it goes on) and quitting", signal_name, run)
            self.detach.set()
            self.screen.app.exit()
            return
        log.warning("%s: stopping %s and quitting", signal_name, self.session.busy or "nothing")
        if self.session.busy:
            self.quit_when_done = True
            if self.session.stoppable:
                self.stop_event.set()
        else:
            self.screen.app.exit()

    def shut_down(self) -> None:
        """The app is ending: stop following (a run goes on) and stop an in-process task, so that no worker
        thread outlives the app (Python waits for them before the process can exit)."""
        self.detach.set()
        if self.kind == "local" and self.session.stoppable:
            self.stop_event.set()

    # ------------------------------------------------------------ at startup

    def check_running_runs(self, folders: list[Path]) -> None:
        """After the first frame, in a thread: say how many runs are going in the results folders in use."""

        def count() -> None:
            from cnn_tui.core.runs.index import list_runs

            running = [s for s in list_runs(folders) if s.status == "running"]
            if running:
                some = f"{len(running)} runs are" if len(running) > 1 else "1 run is"
                self.emit("startup", Notice(f"{some} running: 7 opens Runs"))

        self.screen.run_worker(count, name="running_runs", group="startup", thread=True, exit_on_error=False)
