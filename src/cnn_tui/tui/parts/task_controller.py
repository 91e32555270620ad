"""The main screen's task — the one thing it is doing now — held by the ``TaskController``: what runs, how to
stop it, how it ended. The task itself is one ``CurrentTask`` value, made when it starts and dropped when it ends.

Two kinds of task, one at a time (the action table disables the others and says why):

* **Runs** — training (t, v) and tuning (u) run in a detached run process (``core.runs.control``) that
  outlives the TUI, the terminal and the SSH connection. A thread worker prepares the run folder (the
  TUI's model is saved into it and is what the run trains), launches the process and follows its
  ``events.jsonl``, posting each event to the screen; when the run has ended it reads back what the run
  produced (model, history, search) for the next task. ``attach`` follows a run started elsewhere (the
  CLI, an earlier TUI) the same way; ``open_finished`` shows an ended run's results.
* **In-process** — loading the sets, building / loading / saving a model (plain thread workers), and
  evaluation / prediction (``control.run_here``: a run folder of their own, ended by the core).

The screen's action table, worker state changes and engine messages lead here. Core events travel to the
UI thread as ``EngineEvent`` messages; progress is throttled to ten updates a second. Every way a task ends
(finished, stopped, a user error, a bug) goes through ``on_worker_state_changed``, the one place that turns
errors into a readable line. The TUI never ends a run: the run's own process (or ``run_here``) does. What
the dialogs say is ``screens.questions``'; this module decides what to do with the answers.

The screen provides: ``session``, ``say``, ``dirty``, ``show_view``, ``view(name)``, ``mount_views``,
``refresh_state``, ``post_message``, ``run_worker``, ``query_one`` and ``app``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.worker import Worker, WorkerState

from cnn_tui.core import backend
from cnn_tui.core.errors import TaskStopped, UserError
from cnn_tui.core.events import (
    BatchProgress,
    EpochEnd,
    FoldEnd,
    LoadProgress,
    Notice,
    SearchPlanned,
    SystemSample,
    TaskFinished,
    TrainingStarted,
    TuningProgress,
)
from cnn_tui.core.params.files import LARGE_GRID
from cnn_tui.core.runs.folder import task_label
from cnn_tui.tui.messages import EngineEvent, RunStarted
from cnn_tui.tui.parts.run_display import RUN_VIEWS, RunDisplay, RunResults, read_run_results
from cnn_tui.tui.parts.screen_part import ScreenPart
from cnn_tui.tui.screens import questions
from cnn_tui.tui.throttle import ProgressThrottle
from cnn_tui.tui.widgets.data_view import DataView
from cnn_tui.tui.widgets.tables import display_path

log = logging.getLogger("cnn_tui.tui")

COMMAND = "cnn-tui (TUI)"  # run.json's "command" for the runs the TUI starts
TUNING_FOLDS = 3
TUNING_MAX_SAMPLES = 10_000
LONG_TUNING_SECONDS = 120  # u asks first when a search would take longer than this, whatever its combination count
# until a training in this session measured the speed: the seed CNN on two CPU cores trains about 4,000
# 16x16 grey images a second (the demo's 96 fits of 20 epochs took about 7 minutes), fewer as images grow
ASSUMED_PIXELS_PER_SECOND = 4000.0 * 16 * 16


def tuning_seconds(combinations: int, folds: int, epochs: int, images: int,
                   history: dict[str, list[float]] | None = None, trained_images: int = 0,
                   pixels: int = 16 * 16) -> float:
    """About how long a grid search takes: every fit trains on (folds-1)/folds of ``images`` (capped as the
    TUI caps them) for ``epochs`` epochs, at the speed of the session's last training (``history``'s
    seconds per epoch over its ``trained_images``) or, before one, ``ASSUMED_PIXELS_PER_SECOND`` over
    ``pixels`` values an image (size x size x channels)."""
    per_fit = min(images, TUNING_MAX_SAMPLES) * (folds - 1) / max(folds, 1)
    seconds = [s for s in (history or {}).get("seconds", []) if s and s > 0]
    measured = seconds and trained_images
    rate = trained_images / (sum(seconds) / len(seconds)) if measured else ASSUMED_PIXELS_PER_SECOND / max(pixels, 1)
    return combinations * folds * max(epochs, 1) * per_fit / max(rate, 1e-9)
RANDOM_SAMPLE = 50  # combinations a random search draws from a grid too large to search whole
ENDED = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)

Emit = Callable[[Any], None]  # hands a core event to the screen (from any thread)
WorkFunction = Callable[[Emit, threading.Event], Any]  # a task's work, in a thread worker: work(emit, stop)
ShowResult = Callable[[Any], Awaitable[None]]  # shows what the work returned, on the UI thread


def is_stopped(exc: BaseException | None) -> bool:
    return isinstance(exc, TaskStopped)


@dataclass(eq=False)
class CurrentTask:
    """The task the main screen is doing now, from its start to its end.

    Not frozen: the worker notes the run folder and process once the run has started, and x, q and a
    hang-up mark what is to happen; a new task is a new ``CurrentTask``, so nothing is carried over."""

    name: str  # "train", "load_train"…: the worker's name, and the source of its events
    label: str  # "training", "loading the training set": how the status line and the messages call it
    show_result: ShowResult
    stoppable: bool = True
    follows_run: bool = False  # True: the events of a run process are followed; False: the work runs here
    stop: threading.Event = field(default_factory=threading.Event)  # in-process work checks it every batch
    detach: threading.Event = field(default_factory=threading.Event)  # set: stop following the run (it goes on)
    run_dir: Path | None = None  # the run followed, once its process has taken it over
    proc: Any = None  # the run process this TUI launched (a Popen, reaped by a thread)
    worker: Worker | None = None
    quit_when_done: bool = False
    training_shown: bool = False  # the training view was laid out for this task
    epochs: dict[int, EpochEnd] = field(default_factory=dict)  # the epochs shown, by number (a resumed run restarts)
    _stop_requested: bool = field(default=False, init=False)
    _stop_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def first_stop_request(self) -> bool:
        """True the first time only: the worker may ask the run to stop (x came while it started) as x does."""
        with self._stop_lock:
            first, self._stop_requested = not self._stop_requested, True
        return first


class TaskController(ScreenPart):
    """Starts the main screen's task, follows its run, stops it and shows how it ended."""

    def __init__(self, screen: Any) -> None:
        super().__init__(screen)
        self.display = RunDisplay(screen)  # how ended runs and evaluations are shown
        self.current: CurrentTask | None = None  # None: idle
        self._progress: ProgressThrottle | None = None

    @property
    def following(self) -> bool:
        """A run process's task is going (launching or followed)."""
        return self.current is not None and self.current.follows_run

    def following_run(self, run_dir: Path) -> bool:
        """The task follows the run in ``run_dir`` (its process has started)."""
        task = self.current
        return (task is not None and task.follows_run and task.run_dir is not None
                and Path(run_dir).resolve() == task.run_dir.resolve())

    # ------------------------------------------------------------ running

    def start(self, name: str, label: str, work: WorkFunction, show_result: ShowResult, *, view: str | None = None,
              stoppable: bool = True) -> None:
        """Run ``work(emit, stop)`` in a thread worker; ``show_result(result)`` shows its result on the UI thread."""
        self.begin(CurrentTask(name, label, show_result, stoppable=stoppable), work, view=view)

    def begin(self, task: CurrentTask, work: WorkFunction, *, view: str | None = None) -> None:
        """Make ``task`` the current task and run its ``work`` in a thread worker."""
        session = self.session
        session.busy = task.label
        session.stoppable = task.stoppable
        self.current = task
        self.progress.clear()
        if view:
            self.screen.show_view(view)
        self.say(f"{task.label}…" + (" (x stops)" if task.stoppable else ""))
        self.screen.refresh_state()

        def emit(event: Any) -> None:
            self.emit(task.name, event)

        task.worker = self.screen.run_worker(lambda: work(emit, task.stop), name=task.name, group="task",
                                             thread=True, exclusive=True, exit_on_error=False)

    def emit(self, source: str, event: Any) -> None:
        self.screen.post_message(EngineEvent(source, event))  # thread-safe

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        task, worker = self.current, event.worker
        if task is None or worker is not task.worker or event.state not in ENDED:
            return
        if event.state == WorkerState.CANCELLED:  # the app ends: a cancelled worker's thread runs on unless told
            self.let_go(task)
        await self.screen.mount_views()
        self.progress.clear()  # the final state replaces any progress not shown yet
        self.current = None
        self.session.busy = None
        self.session.stoppable = False
        try:
            if event.state == WorkerState.SUCCESS:
                await task.show_result(worker.result)
            elif event.state == WorkerState.ERROR:
                self.failed(task.label, worker.error)
        finally:
            self.screen.query_one(DataView).hide_loading()
            self.screen.refresh_state()
            if task.quit_when_done:
                self.screen.app.exit()

    def failed(self, label: str, exc: BaseException | None) -> None:
        """The one place a task's exception becomes a readable line (and a bug a logged traceback)."""
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
        event, view, task = message.event, self.screen.view, self.current
        training_shown = task is not None and task.training_shown
        if isinstance(event, LoadProgress):
            if message.source in ("evaluate", "predict"):
                view("evaluation").show_progress(event.done, event.total, event.images_per_second)
            else:
                self.screen.query_one(DataView).show_loading(Path(event.folder).name, event.done, event.total,
                                                             event.images_per_second)
        elif isinstance(event, TrainingStarted):
            if task is not None:  # a run's events come while it is the task
                self.start_training_view(task, event)
        elif isinstance(event, BatchProgress):
            if training_shown:
                view("training").show_batch(event)
        elif isinstance(event, EpochEnd):
            if any(v is None for v in event.logs.values()):  # a diverged figure travels as null
                event = dataclasses.replace(event, logs={k: math.nan if v is None else v for k, v in event.logs.items()})
            if training_shown:
                task.epochs[event.epoch] = event
                view("training").show_epoch(event)
            logs = " · ".join(f"{k} {v:.4f}" for k, v in event.logs.items())
            self.say(f"epoch {event.epoch} of {event.epochs}: {logs}")
        elif isinstance(event, SearchPlanned):
            from cnn_tui.core.tuning.search import TuningPlan  # noqa: PLC0415 — imports numpy: not before the first frame

            view("tuning").start(TuningPlan(event.strategy, list(event.candidates), event.cv, event.samples,
                                            event.fits, event.batches))
        elif isinstance(event, TuningProgress):
            view("tuning").show_progress(event)
        elif isinstance(event, FoldEnd):
            view("tuning").show_fold(event.row)
        elif isinstance(event, SystemSample):  # the view of what the run is doing now
            if training_shown:
                view("training").show_system(event)
            if task is not None and task.name in ("tune", "pipeline"):
                view("tuning").show_system(event)
        elif isinstance(event, Notice):
            self.say(event.text, event.level)
        # TaskFinished: the end is shown once the worker has read back what the run produced

    def start_training_view(self, task: CurrentTask, event: TrainingStarted) -> None:
        """Lay the training view out for ``event``; a resumed run keeps the epochs it had done."""
        kept = [task.epochs[n] for n in sorted(task.epochs) if n <= event.initial_epoch]
        what = (f"with {event.validation_samples:,} images held out for validation" if event.validation_samples
                else "on all training images")
        resumed = f", resumed at epoch {event.initial_epoch + 1}" if event.initial_epoch else ""
        title = f"Training {what}: {event.epochs} epochs, batch {event.batch_size}, {event.samples:,} images{resumed}"
        training = self.screen.view("training")
        training.start(title, event.epochs, event.batches, validation=bool(event.validation_samples))
        task.training_shown, task.epochs = True, {}
        for epoch in kept:
            task.epochs[epoch.epoch] = epoch
            training.show_epoch(epoch)

    # ------------------------------------------------------------ datasets (in-process)

    def load_train(self) -> None:
        from cnn_tui.core.runs import steps  # noqa: PLC0415 — imports numpy: not before the first frame

        data, model = self.session.data, self.session.model
        channels = model.channels if model else None
        self.start("load_train", "loading the training set", lambda emit, stop: steps.load_training_set(
            data, channels=channels, emit=emit, stop=stop), self.loaded_train, view="data")

    def load_test(self) -> None:
        from cnn_tui.core.runs import steps  # noqa: PLC0415 — imports numpy: not before the first frame

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
        from cnn_tui.core.runs import steps  # noqa: PLC0415 — imports numpy: not before the first frame

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
        from cnn_tui.core.models.model import NetModel  # noqa: PLC0415 — the first frame shows no model (10 ms)

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

    async def train(self, *, validate: bool = False, calibrate: bool = False) -> None:
        from cnn_tui.core.runs.execute import TaskSpec  # noqa: PLC0415 — imports numpy: not before the first frame

        await self.screen.mount_views()  # the training view is laid out before the run starts
        session = self.session
        images, net = session.train_set, session.model
        try:  # a model that cannot take this data is refused before any run folder is made
            net.check_fits(num_classes=images.num_classes, image_size=images.image_size,
                           class_names=images.class_names, what="training set")
        except UserError as exc:
            self.say(str(exc), "error")
            return
        spec = TaskSpec("train", validate=session.data.validation_split if validate else None, calibrate=calibrate)
        config = session.hyper.first()
        what = f"with {spec.validate:.0%} held out for validation" if spec.validate else "on all training images"
        fit_images = len(images) - (round(len(images) * spec.validate) if spec.validate else 0)
        self.screen.view("training").start(  # laid out again when the run says how it trains
            f"Training {what}: {config.epochs} epochs, batch {config.batch_size} · starting the run process…",
            config.epochs, math.ceil(fit_images / config.batch_size), validation=bool(spec.validate))
        self.launch(spec, "training", start_model=net)

    async def train_with_validation(self) -> None:
        await self.train(validate=True)

    async def train_calibrated(self) -> None:
        """Train holding out the data params' validation_split (always > 0), then fit a temperature on it."""
        await self.train(validate=True, calibrate=True)

    def tune(self) -> None:
        from cnn_tui.core.tuning.search import combination_limit  # noqa: PLC0415 — imports numpy: not before the first frame

        hyper = self.session.hyper
        combos = hyper.combination_count()  # a product of list lengths: nothing is listed
        try:
            limit = combination_limit()
        except UserError as exc:
            self.say(str(exc), "error")
            return
        if combos > limit:  # listing such a grid alone can fill the memory: offer a random sample
            def chosen(choice: str | None) -> None:
                if choice == questions.SEARCH_AT_RANDOM:
                    self.start_tuning(strategy="random")

            self.screen.app.push_screen(questions.grid_too_large(combos, limit, TUNING_FOLDS, RANDOM_SAMPLE), chosen)
            return
        epochs = hyper.first().epochs
        train_set = self.session.train_set
        images = len(train_set) if train_set is not None else 0
        pixels = train_set.image_size ** 2 * train_set.channels if train_set is not None else 16 * 16
        seconds = tuning_seconds(combos, TUNING_FOLDS, epochs, images, self.session.history, images, pixels)
        if combos <= LARGE_GRID and seconds <= LONG_TUNING_SECONDS:
            self.start_tuning()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.start_tuning()

        self.screen.app.push_screen(questions.large_grid(combos, TUNING_FOLDS, epochs, seconds), answer)

    def start_tuning(self, strategy: str = "grid", prune: str = "none") -> None:
        from cnn_tui.core.runs.execute import TaskSpec  # noqa: PLC0415 — imports numpy: not before the first frame

        self.launch(TaskSpec("tune", strategy=strategy, cv=TUNING_FOLDS, n_iter=RANDOM_SAMPLE,
                             max_samples=TUNING_MAX_SAMPLES, prune=prune), "tuning")

    def tune_with_options(self) -> None:
        """U: the strategy (and pruning) chosen in a dialog, then the search."""
        def chosen(choice: str | None) -> None:
            if choice:
                strategy, prune = questions.TUNING_STRATEGIES[choice]
                self.start_tuning(strategy=strategy, prune=prune)

        combos = self.session.hyper.combination_count()
        self.screen.app.push_screen(questions.tuning_strategy(combos, RANDOM_SAMPLE), chosen)

    async def lr_find(self) -> None:
        """f: the learning-rate finder, a run like training (stoppable, its own folder, outlives the TUI);
        its batches move the training view's progress bars."""
        from cnn_tui.core.runs.execute import TaskSpec  # noqa: PLC0415 — imports numpy: not before the first frame

        await self.screen.mount_views()
        spec = TaskSpec("lr_find")
        self.screen.view("training").start(
            f"Learning-rate finder: up to {spec.sweep_steps} batches of {self.session.hyper.first().batch_size}, "
            "the rate growing from 1e-7 until the loss explodes · starting the run process…",
            1, spec.sweep_steps, validation=False)
        self.launch(spec, "learning-rate finder")
        if self.current is not None:
            self.current.training_shown = True

    def skip_fit(self) -> None:
        """j: the run process skips the fit it trains and goes on with the next."""
        from cnn_tui.core.runs import control  # noqa: PLC0415 — imports numpy: not before the first frame

        task = self.current
        if not (self.following and task.run_dir is not None):
            self.say("no search is running", "warning")
            return
        try:
            control.skip_fit(task.run_dir)
        except UserError as exc:
            self.say(str(exc), "warning")
            return
        self.say("skipping the running fit…")

    def launch(self, spec: Any, label: str, *, start_model: Any = None) -> None:
        """Prepare a run folder and start its run process, then follow it (all in one thread worker)."""
        session = self.session
        data, hyper = session.data, session.hyper
        task = self.run_task(spec.task, label)

        def work(emit: Emit, stop: threading.Event) -> RunResults:
            from cnn_tui.core.runs import control  # noqa: PLC0415 — imports numpy: not before the first frame

            run = control.prepare(spec, data, hyper, command=COMMAND, start_model=start_model)
            self.screen.post_message(RunStarted(run.path))  # Snap saves into it from now on
            proc = control.launch(run)
            task.proc = proc
            threading.Thread(target=proc.wait, name="cnn-tui-run-reaper", daemon=True).start()
            task.run_dir = run.path
            if stop.is_set():  # x (or quit and stop) came while the process was starting
                self.stop_run(task)
            return self.follow(run.path, emit, task.detach)

        self.begin(task, work, view=RUN_VIEWS[spec.task])

    def follow(self, run_dir: Path, emit: Emit, detach: threading.Event) -> RunResults:
        """In the worker: every event of the run to the screen until it ends (or we detach), then its results."""
        from cnn_tui.core.runs import control  # noqa: PLC0415 — imports numpy: not before the first frame

        finished = None
        for event in control.follow(run_dir, stop=detach):
            emit(event)
            if isinstance(event, TaskFinished):
                finished = event
        if detach.is_set():
            return RunResults.detached_from(run_dir)
        return read_run_results(run_dir, finished=finished)

    def open_run(self, run_dir: Path, *, running: bool) -> None:
        """Enter in the Runs view: follow a running run, or open an ended one."""
        if running:
            self.attach(run_dir)
        else:
            self.open_finished(run_dir)

    def attach(self, run_dir: Path) -> None:
        """Follow a run that is going (started by the CLI or an earlier TUI): replayed, then live; x stops it."""
        from cnn_tui.core.runs.folder import read_run  # noqa: PLC0415 — the first frame lists no runs (6 ms)

        run_dir = Path(run_dir)
        if (current := self.current) is not None:
            if current.run_dir is not None and run_dir.resolve() == current.run_dir.resolve():
                self.screen.show_view(RUN_VIEWS.get(current.name, "training"))
            else:
                self.say(f"{current.label} is running; wait for it or stop it (x) before following another run",
                         "warning")
            return
        record = read_run(run_dir) or {}
        name = str(record.get("task") or "train")
        task = self.run_task(name, task_label(name), run_dir=run_dir)  # x stops it from the start

        def work(emit: Emit, stop: threading.Event) -> RunResults:
            return self.follow(run_dir, emit, task.detach)

        self.begin(task, work, view=RUN_VIEWS.get(name, "training"))
        self.session.run_dir = run_dir
        self.say(f"following run {run_dir.name}: x stops it, q leaves it running")

    def open_finished(self, run_dir: Path) -> None:
        """Show an ended run's results in the views, and take its model (e, p then work on it)."""
        if self.current is not None:
            self.say(f"{self.current.label} is running; wait for it or stop it (x) before opening a run", "warning")
            return
        run_dir = Path(run_dir)
        self.start("open_run", f"opening run {run_dir.name}", lambda emit, stop: read_run_results(run_dir), self.opened,
                   stoppable=False)

    async def opened(self, end: RunResults) -> None:
        self.session.run_dir = end.ending.run_dir
        self.display.show_run(end, live=False)
        self.screen.show_view(self.display.view_of(end))

    def run_task(self, name: str, label: str, **state: Any) -> CurrentTask:
        """A task that follows a run process; its end is shown by ``run_ended``."""
        task = CurrentTask(name, label, lambda end: self.run_ended(task, end), follows_run=True, **state)
        return task

    async def run_ended(self, task: CurrentTask, end: RunResults) -> None:
        if end.detached:
            self.say(f"run {end.ending.run_dir.name} goes on without this window: the Runs view finds it again")
            return
        self.session.run_dir = end.ending.run_dir
        self.display.show_run(end, live=True, followed=task.training_shown)

    # ------------------------------------------------------------ evaluation (in-process, a run folder of its own)

    def evaluate(self) -> None:
        self.run_on_test_set(confusion=False)

    def predict(self) -> None:
        self.run_on_test_set(confusion=True)

    def predict_with_tta(self) -> None:
        self.run_on_test_set(confusion=True, tta=True)

    def run_on_test_set(self, *, confusion: bool, tta: bool | None = None) -> None:
        """Evaluation (accuracy, loss, per-class report), or with ``confusion`` prediction (the matrix too).
        ``tta``: with test-time augmentation (None: as the model records, its hyper params' tta)."""
        session = self.session
        net, images, data = session.model, session.test_set, session.data
        name = "predict" if confusion else "evaluate"
        try:
            net.check_fits(num_classes=images.num_classes, image_size=images.image_size,
                           class_names=images.class_names, what="test set")
        except UserError as exc:
            self.say(str(exc), "error")
            return

        def work(emit: Emit, stop: threading.Event) -> Any:
            from cnn_tui.core.runs import control  # noqa: PLC0415 — imports numpy: not before the first frame
            from cnn_tui.core.runs.execute import Inputs, TaskSpec  # noqa: PLC0415 — as control

            spec = TaskSpec(name, tta=tta)
            run = control.prepare(spec, data, None, command=COMMAND)
            source = getattr(net, "source", None)  # the model a training run saved: this evaluation is linked to it
            if source is not None and (Path(source).parent / "run.json").is_file() and Path(source).parent != run.path:
                run.add_details(model_run=str(Path(source).parent.resolve()))
            self.screen.post_message(RunStarted(run.path))
            return control.run_here(run, spec, emit=emit, stop=stop, inputs=Inputs(net=net, test_set=images))

        async def show_result(outcome: Any) -> None:
            await self.evaluated(outcome, confusion=confusion)

        self.start(name, task_label(name), work, show_result, view="evaluation")

    async def evaluated(self, outcome: Any, *, confusion: bool) -> None:
        evaluated = outcome.evaluation
        ev = evaluated.evaluation
        self.session.evaluation = ev
        self.session.run_dir = outcome.run.path
        self.display.show_evaluation(ev, confusion=confusion, files=evaluated.files,
                                     title_model=self.session.model_label())
        tta = f" with test-time augmentation (plain {ev.plain().accuracy:.2%})" if ev.tta else ""
        self.say(f"test accuracy {ev.accuracy:.2%}{tta}, loss {ev.loss:.4f}; saved in {display_path(outcome.run.path)}",
                 "success")

    # ------------------------------------------------------------ stop, quit, hang-up

    def stop(self) -> None:
        """x: in-process tasks stop after the current batch; a run is asked to stop (it saves within a batch)."""
        task = self.current
        if task is None:
            return
        task.stop.set()
        if task.follows_run and task.run_dir is not None:
            self.stop_run(task)
        self.say(f"stopping {task.label} after the current batch…")

    def stop_run(self, task: CurrentTask) -> None:
        """Ask ``task``'s run process to stop, once (the worker may ask too if x came while it started)."""
        if task.run_dir is not None and task.first_stop_request():
            self.request_stop(task.run_dir)

    def request_stop(self, run_dir: Path) -> bool:
        """Signal any run of ours to stop, without waiting; a refusal (it ended, another host's) is said."""
        from cnn_tui.core.runs import control  # noqa: PLC0415 — imports numpy: not before the first frame

        try:
            control.stop(Path(run_dir), wait=False)
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
            if self.following_run(run_dir):
                self.stop()  # the run we follow: as x
            elif self.request_stop(run_dir):
                self.say(f"stopping run {run_dir.name} after the current batch…")
            self.screen.view("runs").refresh_runs()

        self.screen.app.push_screen(questions.stop_run(run_dir.name), answer)

    def quit(self) -> None:
        """q: quit, asking first while a task runs (a run may be left running) or params are not saved."""
        unsaved = questions.unsaved_params_note(self.screen.dirty)
        if self.ask_to_quit(unsaved):
            return
        if unsaved:
            def answer(yes: bool | None) -> None:
                if yes:
                    self.screen.app.exit()

            self.screen.app.push_screen(questions.quit_with_unsaved_params(unsaved), answer)
            return
        self.screen.app.exit()

    def ask_to_quit(self, unsaved: str = "") -> bool:
        """q while a task runs: ask (True: a question is on screen). A run may be left running (the default)."""
        task = self.current
        if task is None:
            return False
        if task.follows_run:
            def chosen(choice: str | None) -> None:
                if choice == questions.LEAVE_RUNNING:
                    self.leave(task)
                elif choice == questions.STOP_RUN:
                    self.stop_and_leave(task)

            run_name = task.run_dir.name if task.run_dir is not None else None
            self.screen.app.push_screen(questions.quit_while_run_goes(task.label, run_name, unsaved), chosen)
            return True

        def answer(yes: bool | None) -> None:
            if yes and self.current is task:
                task.quit_when_done = True
                if task.stoppable:
                    task.stop.set()
                self.say(f"stopping {task.label}, then quitting; what was saved stays", "warning")
            elif yes:
                self.screen.app.exit()

        self.screen.app.push_screen(questions.quit_while_task_runs(task.label, unsaved), answer)
        return True

    def leave(self, task: CurrentTask) -> None:
        """Quit, leaving the run going: only the following stops."""
        task.detach.set()
        if task.run_dir is None:
            log.info("quitting while a run starts: it goes on")
        self.screen.app.exit()

    def stop_and_leave(self, task: CurrentTask) -> None:
        """Quit after asking the run to stop (it ends by itself, saving within a batch)."""
        task.stop.set()
        if task.run_dir is None:  # still starting: the worker stops it once it has started, then we quit
            task.quit_when_done = True
            self.say("stopping the run as soon as its process has started, then quitting", "warning")
            return
        self.stop_run(task)
        task.detach.set()
        self.screen.app.exit()

    def hang_up(self, signal_name: str) -> None:
        """The terminal is gone or we were told to end: a run goes on (we only stop following it); an in-process
        task is stopped (it saves) and we quit when it has ended; nothing is asked."""
        task = self.current
        if task is not None and task.follows_run:
            run = f"run {task.run_dir.name}" if task.run_dir is not None else "the run being started"
            log.warning("%s: stopping to follow %s (it goes on) and quitting", signal_name, run)
            task.detach.set()
            self.screen.app.exit()
            return
        log.warning("%s: stopping %s and quitting", signal_name, task.label if task is not None else "nothing")
        if task is not None:
            task.quit_when_done = True
            if task.stoppable:
                task.stop.set()
        else:
            self.screen.app.exit()

    def shut_down(self) -> None:
        """The app is ending: let the task go (its worker may have been cancelled and the task dropped already)."""
        if self.current is not None:
            self.let_go(self.current)

    @staticmethod
    def let_go(task: CurrentTask) -> None:
        """Stop following the run (it goes on) and stop in-process work, so that no worker thread outlives the
        app (Python waits for them before the process can exit)."""
        task.detach.set()
        if not task.follows_run and task.stoppable:
            task.stop.set()

    # ------------------------------------------------------------ at startup

    def check_running_runs(self, folders: list[Path]) -> None:
        """After the first frame, in a thread: say how many runs are going in the results folders in use."""

        def count() -> None:
            from cnn_tui.core.runs.index import list_runs  # noqa: PLC0415 — the first frame lists no runs (8 ms)

            running = [s for s in list_runs(folders) if s.status == "running"]
            if running:
                some = f"{len(running)} runs are" if len(running) > 1 else "1 run is"
                self.emit("startup", Notice(f"{some} running: 7 opens Runs"))

        self.screen.run_worker(count, name="running_runs", group="startup", thread=True, exit_on_error=False)
