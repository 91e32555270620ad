"""What a run executes.

A ``TaskSpec`` (saved as ``task.json`` in the run folder, beside the run's
``data_params.json`` and ``hyper_params.json``) says which task to run and with
which options. ``execute`` runs it in the current process: loads what the task
needs, calls the steps in ``core.runs.steps`` and returns the ``Outcome``, or
raises. It runs inside the run's ``RunSession`` (``core.runs.lifecycle``), which
ends the run either way; the CLI's foreground runs, the detached run process
(``core.runs.process``) and the TUI's in-process tasks all come through
``control.run_here``, which holds that session.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_tui.core import backend, fileio
from cnn_tui.core.errors import ResultsError
from cnn_tui.core.events import Emit, FoldEnd, Notice, SearchPlanned, ignore
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.params.files import LARGE_GRID, DataParams, HyperParams
from cnn_tui.core.runs import steps
from cnn_tui.core.runs.events_file import read_events
from cnn_tui.core.runs.folder import TASK_LABELS, Run, read_record
from cnn_tui.core.runs.lifecycle import EXIT_OK, EXIT_USER, exit_code_of
from cnn_tui.core.runs.results import load_history
from cnn_tui.core.training import averaging, thresholds
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import plan_search, search_subset

TASK_FILE = "task.json"
TASKS = ("train", "tune", "pipeline", "evaluate", "predict", "lr_find")
RESUMABLE = ("train", "pipeline", "tune")
DEFAULT_TARGET_RECALL = 0.95  # --positive without a target: the screening case, 95 % of the class found


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _text_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


# what each field of a task.json may hold: a task.json is data (anyone may have edited it), checked
# before anything runs with it
def _fraction_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1)


_TASK_FIELD_CHECKS = {
    "task": lambda v: v in TASKS,
    "validate": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1),
    "model": _text_or_none, "cluster": _text_or_none, "security": _text_or_none,
    "strategy": lambda v: isinstance(v, str), "prune": lambda v: isinstance(v, str),
    "cv": _whole, "n_iter": _whole, "max_samples": _whole, "jobs": _whole,
    "gpus": lambda v: v is None or (isinstance(v, list) and all(isinstance(g, (str, int)) and not isinstance(g, bool) for g in v)),
    "resume": lambda v: isinstance(v, bool), "calibrate": lambda v: isinstance(v, bool),
    "sweep_steps": _whole,
    "tta": lambda v: v is None or isinstance(v, bool),
    "positive": _text_or_none,
    "target_recall": _fraction_or_none, "target_precision": _fraction_or_none,
    "ensemble_top": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
}


@dataclass
class TaskSpec:
    """A task and its options; the params are files in the run folder."""

    task: str
    validate: float | None = None  # train, pipeline: the share held out for validation
    model: str | None = None  # train: the model to start from; evaluate, predict: the model to use
    strategy: str = "grid"  # tune
    cv: int = 3
    n_iter: int = 10
    max_samples: int = 10_000
    jobs: int = 1  # tune: fits at once in worker processes
    gpus: list[str] | None = None  # tune: one GPU per worker process, round-robin
    cluster: str | None = None  # tune: a Dask scheduler's address, or local:N
    security: str | None = None  # tune: a Dask security (TLS) file for --cluster
    prune: str = "none"  # tune: none | median
    resume: bool = False  # go on from what the run's folder holds
    sweep_steps: int = 200  # lr_find: the most batches the rate sweep trains
    tta: bool | None = None  # evaluate, predict: test-time augmentation; None: as the model file records
    calibrate: bool = False  # train, pipeline: fit a temperature on the validation share after training
    # train, pipeline: choose this class's operating threshold on the validation share after training
    positive: str | None = None
    target_recall: float | None = None  # ... meeting this recall (or the precision below)
    target_precision: float | None = None
    ensemble_top: int = 0  # tune: average the fold models of this many best combinations (0: no ensemble)

    def operating_target(self) -> steps.OperatingTarget | None:
        """``--positive`` with its target; None without one."""
        if self.positive is None:
            return None
        if self.target_precision is not None:
            return steps.OperatingTarget(self.positive, "precision", self.target_precision)
        return steps.OperatingTarget(self.positive, "recall", self.target_recall if self.target_recall is not None
                                     else DEFAULT_TARGET_RECALL)

    def save(self, folder: Path) -> Path:
        return fileio.write_json(folder / TASK_FILE, dataclasses.asdict(self))

    @classmethod
    def load(cls, folder: Path) -> TaskSpec:
        body = read_record(folder / TASK_FILE)
        if body is None:
            raise ResultsError("the run folder has no readable task.json (not started by this version?)", path=folder)
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in body.items() if k in names}
        for name, value in values.items():
            if not _TASK_FIELD_CHECKS[name](value):
                shown = json.dumps(value)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise ResultsError(f"task.json is damaged: {name} is {shown}", path=folder)
        if "task" not in values:
            raise ResultsError("task.json is damaged: it names no task", path=folder)
        return cls(**values)

    @property
    def label(self) -> str:
        """The task as the user knows it."""
        if self.task == "train" and self.validate:
            return "training with validation"
        return TASK_LABELS[self.task]

    def search_options(self, seed: int) -> SearchOptions:
        """A tune task's search settings, with the data params' ``seed`` (the subset, folds and draws)."""
        return SearchOptions(strategy=self.strategy, cv=self.cv, n_iter=self.n_iter, max_samples=self.max_samples,
                             seed=seed, prune=self.prune, jobs=self.jobs, gpus=tuple(self.gpus or ()),
                             cluster=self.cluster, security=self.security, ensemble_top=self.ensemble_top)


@dataclass
class Inputs:
    """What a caller already holds in memory (the TUI): used instead of loading it again."""

    train_set: Any = None
    test_set: Any = None
    net: Any = None


@dataclass
class Outcome:
    """How a task ended, with what it produced for a caller in the same process."""

    task: str
    status: str
    message: str
    exit_code: int
    run: Run
    train: steps.TrainOutcome | None = None
    evaluation: steps.EvaluationOutcome | None = None
    tuning: steps.TuningOutcome | None = None
    rates: steps.RateOutcome | None = None
    train_set: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskContext:
    """What every task's steps take: the run folder, the task, its params, where events go, the stop
    event and what the caller already holds in memory."""

    run: Run
    spec: TaskSpec
    data: DataParams
    hyper: HyperParams | None
    emit: Emit
    stop: threading.Event
    inputs: Inputs

    def needs_hyper(self) -> HyperParams:
        if self.hyper is None:
            raise ResultsError("the run has no hyper_params.json", path=self.run.path)
        return self.hyper


def load_params(run: Run) -> tuple[DataParams, HyperParams | None]:
    data = DataParams.load(run.file("data_params.json"))
    hyper_file = run.file("hyper_params.json")
    return data, HyperParams.load(hyper_file) if hyper_file.exists() else None


def execute(run: Run, spec: TaskSpec, *, emit: Emit = ignore, stop: threading.Event | None = None,
            inputs: Inputs | None = None) -> Outcome:
    """Run ``spec`` in this process, in ``run``'s folder: its outcome, or the exception the task ended
    with. Ending the run is its session's (``RunSession``)."""
    data, hyper = load_params(run)
    task = TaskContext(run, spec, data, hyper, emit, stop or threading.Event(), inputs or Inputs())
    return _TASK_RUNNERS[spec.task](task)


# ---------------------------------------------------------------- the tasks


def _loaded(images: Any, what: str, emit: Emit) -> Any:
    source = "cache" if images.from_cache else "decoded"
    emit(Notice(f"{what}: {len(images):,} images, {images.num_classes} classes, "
                f"{images.image_size}x{images.image_size}x{images.channels} ({source} in {images.seconds:.2f}s)"))
    return images


def _training_set(task: TaskContext, channels: int | None = None) -> Any:
    if task.inputs.train_set is not None:
        return task.inputs.train_set
    loaded = steps.load_training_set(task.data, channels=channels, emit=task.emit, stop=task.stop)
    return _loaded(loaded, "training set", task.emit)


def _train_step(task: TaskContext) -> tuple[Any, Any, steps.TrainOutcome | None]:
    """Train (or go on training) in the run; returns the model, the training set and the training outcome."""
    run, spec, data, emit, inputs = task.run, task.spec, task.data, task.emit, task.inputs
    hyper = task.needs_hyper()
    config = hyper.first()
    initial_epoch, history, net = 0, None, None
    # seeded before a model is loaded (its layers draw their random seeds as they are made) and the
    # fit, so a run from a given model (the TUI's start model) trains alike every time, as a run
    # whose model ``new_model`` builds (seeded the same) does
    backend.set_seed(data.seed)
    # a stopped run keeps its last whole epoch apart (its model.keras is the kept, best epoch)
    resume_from = run.file(steps.RESUME_MODEL) if run.file(steps.RESUME_MODEL).exists() else run.file("model.keras")
    if spec.resume and resume_from.exists():
        net = NetModel.load(resume_from, with_optimizer=True)
        averaging.training_weights_back(net.keras_model)  # ema: train on from the trained weights, not the average
        history = load_history(run.path)
        # the model file records its epochs; history.csv may hold one more if a kill fell between the writes
        initial_epoch = net.epochs_done if net.epochs_done is not None else len(history.get("loss", []))
        history = {k: v[:initial_epoch] for k, v in history.items()}
        emit(Notice(f"resuming at epoch {initial_epoch + 1} of {config.epochs}"))
    elif spec.resume:
        emit(Notice("the run was stopped before its first whole epoch: training starts from the beginning"))
    if net is None and inputs.net is not None:
        net = inputs.net
    elif net is None and spec.model:
        net = NetModel.load(spec.model, with_optimizer=True)
    images = _training_set(task, channels=net.channels if net is not None else None)
    if (operating := spec.operating_target()) is not None:  # a bad class or target: said now, not after training
        thresholds.check_target(operating.positive, images.class_names, operating.metric, operating.target)
    if net is None:
        net = steps.new_model(data, hyper, images)
    if spec.resume and spec.task == "pipeline" and initial_epoch >= config.epochs:
        return net, images, None  # training was done: the evaluation is what is left
    emit(Notice(f"training: {config.epochs} epochs, batch {config.batch_size}, init_rate {config.init_rate:g}"
                + (f", {spec.validate:.0%} held out for validation" if spec.validate else "")))
    outcome = steps.train_run(net, images, data, hyper, validate=spec.validate, run=run, emit=emit, stop=task.stop,
                              initial_epoch=initial_epoch, history=history, calibrate=spec.calibrate,
                              operating=operating)
    return net, images, outcome


def _train(task: TaskContext) -> Outcome:
    _, images, trained = _train_step(task)
    return _training_outcome(task, trained, images)


def _training_outcome(task: TaskContext, trained: steps.TrainOutcome, images: Any) -> Outcome:
    status, message = trained.status, trained.message
    code = exit_code_of(status)
    if trained.save_error:
        message = f"training ended ({status}) but its results could not all be saved: {trained.save_error}"
        code = EXIT_USER
    return Outcome(task.spec.task, status, message, code, task.run, train=trained, train_set=images,
                   details=trained.details)


def _evaluate(task: TaskContext) -> Outcome:
    net = task.inputs.net or NetModel.load(task.spec.model or "")
    evaluated = _evaluation_step(task, net, test=task.inputs.test_set, confusion=task.spec.task == "predict")
    return Outcome(task.spec.task, "finished", evaluated.message, EXIT_OK, task.run, evaluation=evaluated,
                   details=evaluated.details)


def _evaluation_step(task: TaskContext, net: Any, *, test: Any, confusion: bool,
                     class_names: list[str] | None = None) -> steps.EvaluationOutcome:
    data, emit, stop = task.data, task.emit, task.stop
    if test is None:
        net.check_fits(num_classes=data.num_classes, image_size=data.image_size, what="data params")
        names = class_names or (net.class_names if net.names_known else None)
        test = _loaded(steps.load_test_set(data, class_names=names, channels=net.channels, emit=emit, stop=stop),
                       "test set", emit)
    net.check_fits(num_classes=test.num_classes, image_size=test.image_size, class_names=test.class_names,
                   what="test set", channels=test.channels)
    adopt_folder_names(net, test.class_names, emit)
    return steps.evaluate_run(net, test, run=task.run, data=data, confusion=confusion, emit=emit, stop=stop,
                              tta=task.spec.tta)


def adopt_folder_names(net: Any, names: list[str], emit: Emit) -> None:
    """A Keras model saved elsewhere records no class names: the folders' (sorted) names are taken,
    the class counts having been checked to agree."""
    if not net.names_known and list(names) != net.class_names:
        net.class_names = list(names)
        net.names_known = True
        emit(Notice(f"the model records no class names: the test folders' are used, in sorted order "
                    f"({', '.join(names)})", "warning"))


def _pipeline(task: TaskContext) -> Outcome:
    net, images, trained = _train_step(task)
    if trained is not None and trained.status != "finished":
        return _training_outcome(task, trained, images)
    evaluated = _evaluation_step(task, net, test=task.inputs.test_set, confusion=True, class_names=images.class_names)
    details = {**(trained.details if trained else {}), **evaluated.details}
    message = f"test accuracy {evaluated.evaluation.accuracy:.2%}"
    return Outcome(task.spec.task, "finished", message, EXIT_OK, task.run, train=trained, evaluation=evaluated,
                   train_set=images, details=details)


def _tune(task: TaskContext) -> Outcome:
    run, spec, data, emit = task.run, task.spec, task.data, task.emit
    hyper = task.needs_hyper()
    images = _training_set(task)
    options = spec.search_options(data.seed)
    subset = search_subset(images, options)
    # planned once: the plan announced here is the one the search runs
    plan = plan_search(hyper, options, samples=len(subset), classes=subset.num_classes, labels=subset.y)
    rounds = spec.strategy in ("halving", "hyperband")  # fewer fits than the product: rounds drop combinations
    fits = f": {plan.fits} fits planned in rounds" if rounds else f" = {plan.fits} fits"
    pruning = ", median pruning" if spec.prune == "median" else ""
    tuned_fields = f"; tuned fields: {', '.join(plan.columns)}" if plan.columns else ""
    if spec.strategy == "tpe":  # adaptive: which combinations run is learnt as the search goes
        emit(Notice(f"tuning (tpe{pruning}): {min(spec.n_iter, len(plan.candidates))} of {len(plan.candidates)} "
                    f"combination(s), proposed one after another by Optuna's TPE sampler from the scores so far, "
                    f"x {spec.cv} folds: at most {plan.fits} fits on {plan.samples:,} images{tuned_fields}"))
    else:
        emit(Notice(f"tuning ({spec.strategy}{pruning}): {len(plan.candidates)} combination(s) x {spec.cv} folds{fits} "
                    f"on {plan.samples:,} images{tuned_fields}"))
    if not plan.columns:
        emit(Notice("no hyper field holds more than one value: cross-validating the single combination", "warning"))
    if len(plan.candidates) > LARGE_GRID:
        emit(Notice(f"a large grid ({len(plan.candidates)} combinations): consider --strategy random",
                    "warning"))
    done_rows = finished_folds(run) if spec.resume else None
    if done_rows:
        emit(Notice(f"resuming: {len(done_rows)} finished fit(s) kept, the rest run now"))
    emit(SearchPlanned(plan.strategy, plan.candidates, plan.cv, plan.samples, plan.fits, plan.batches))
    tuned = steps.tune_run(images, hyper, options, plan=plan, run=run, emit=emit, stop=task.stop, done_rows=done_rows)
    return Outcome(spec.task, tuned.status, tuned.message, exit_code_of(tuned.status), run, tuning=tuned,
                   train_set=images, details=tuned.details)


def finished_folds(run: Run) -> list[dict[str, Any]]:
    """The fits a search in this run folder finished, from its event stream."""
    rows = {}
    for event in read_events(run.path):
        if isinstance(event, FoldEnd):
            row = {k: v for k, v in event.row.items() if k != "fold"}
            rows[json.dumps(row, sort_keys=True)] = row  # a resumed search reports its kept fits again
    return list(rows.values())


def _lr_find(task: TaskContext) -> Outcome:
    """The learning-rate finder on a new network of the run's hyper params (or the given model);
    the model is restored after the sweep and no model file is written."""
    run, spec, data, emit = task.run, task.spec, task.data, task.emit
    hyper = task.needs_hyper()
    backend.set_seed(data.seed)
    net = task.inputs.net or (NetModel.load(spec.model) if spec.model else None)
    images = _training_set(task, channels=net.channels if net is not None else None)
    if net is None:
        net = steps.new_model(data, hyper, images)
    emit(Notice(f"learning-rate finder: up to {spec.sweep_steps} batches of {hyper.first().batch_size}, "
                "the rate from 1e-07 growing until the loss explodes"))
    found = steps.rate_run(net, images, data, hyper, steps=spec.sweep_steps, run=run, emit=emit, stop=task.stop)
    return Outcome(spec.task, found.status, found.message, exit_code_of(found.status), run, rates=found,
                   train_set=images, details=found.details)


_TASK_RUNNERS = {"train": _train, "evaluate": _evaluate, "predict": _evaluate, "pipeline": _pipeline, "tune": _tune,
                 "lr_find": _lr_find}
