"""The steps of tasks: load, initialise, train, evaluate, tune, each writing into a run folder.

``core.runs.execute`` strings them into the tasks a run executes, and is the one
place that ends a run: these functions write results and return outcomes that
say how their step ended (``status``, ``message``, ``details`` for run.json);
exceptions pass through to it.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_tui.core import backend, fileio
from cnn_tui.core.data.dataset import ImageSet, load_data, resolve_channels
from cnn_tui.core.data.locations import list_data
from cnn_tui.core.errors import ResultsError, UserError, disk_problem
from cnn_tui.core.events import Emit, Notice, ignore
from cnn_tui.core.inspect import rate_plot, reports
from cnn_tui.core.models.model import NetModel, build_model
from cnn_tui.core.models.threshold import Threshold
from cnn_tui.core.params.files import DataParams, HyperParams, check_fits
from cnn_tui.core.runs.folder import Run
from cnn_tui.core.training import calibration, tensorboard_logs, thresholds, uncertainty
from cnn_tui.core.training.evaluation import Evaluation, evaluate, predict_probabilities
from cnn_tui.core.training.fit import TrainResult, train
from cnn_tui.core.training.lr_finder import RateSweep, find_rate
from cnn_tui.core.tuning.fold_ensemble import keep_fold_ensemble
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import TuningPlan, TuningResult, best_hyper_params, tune


def load_training_set(
    data: DataParams, *, channels: int | None = None, emit: Emit = ignore, stop: threading.Event | None = None
) -> ImageSet:
    return _load(data, "training", channels=channels, emit=emit, stop=stop)


def load_test_set(
    data: DataParams,
    *,
    class_names: list[str] | None = None,
    channels: int | None = None,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
) -> ImageSet:
    """The test folder (or the labels CSV's test rows), checked against the training classes (or the
    model's) when known."""
    return _load(data, "test", class_names=class_names, channels=channels, emit=emit, stop=stop)


def load_validation_set(
    data: DataParams,
    *,
    class_names: list[str] | None = None,
    channels: int | None = None,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
) -> ImageSet | None:
    """The fixed validation set (``val_dir`` or the labels CSV's validation rows); None when there is none."""
    return load_data(data, "validation", class_names=class_names, channels=channels, emit=emit, stop=stop)


def _load(data: DataParams, what: str, **options: Any) -> ImageSet:
    images = load_data(data, what, **options)
    assert images is not None  # only a validation set may be absent
    return images


def validation_source(data: DataParams) -> str:
    """Where a fixed validation set comes from, in words."""
    return f"val_dir {data.val_path}" if data.val_dir else f"the validation rows of {data.labels_csv_path}"


def new_model(data: DataParams, hyper: HyperParams, train_set: ImageSet | None = None) -> NetModel:
    """Build the configured network for this data: from a loaded training set, or from the folder's listing."""
    config = hyper.first()
    check_fits(data, config)
    if train_set is not None:
        names, channels = train_set.class_names, train_set.channels
    else:
        listing = list_data(data, "training")
        assert listing is not None
        names, channels = listing.class_names, resolve_channels(listing, data.color_mode)
    backend.set_seed(data.seed)
    return build_model(config, image_size=data.image_size, channels=channels, class_names=names)


def group_details(images: ImageSet) -> dict[str, Any]:
    """What run.json records of the groups a set's images were split by (nothing without groups)."""
    if images.groups is None:
        return {}
    return {"groups": len(set(images.groups.tolist())),
            "grouped_by": "no group is on both sides of the validation hold-out or of a fold"}


BEST_WEIGHTS = "best.weights.h5"  # early stopping's best epoch so far, for a resume
# A stopped run's last whole epoch (with its optimizer), where a resume goes on from; model.keras then
# holds the kept (best) epoch, the model a user of the stopped run gets and its figures describe.
RESUME_MODEL = "resume.keras"


class EndsAsItsResult:
    """An outcome whose status and message are its result's (training, a search)."""

    result: Any

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def message(self) -> str:
        return self.result.message


@dataclass
class TrainOutcome(EndsAsItsResult):
    result: TrainResult
    run: Run
    files: dict[str, Path] = field(default_factory=dict)
    save_error: str | None = None  # the model trained but (some of) its files could not be written
    details: dict[str, Any] = field(default_factory=dict)  # for run.json


class UnwrittenFiles:
    """The files of a training that could not be written (a full disk, a folder gone): each is
    named once, as a warning when it first fails, and all of them in the run's ``save_error``."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.reasons: dict[str, str] = {}  # file name -> why, the first time it failed

    def failed(self, name: str, exc: BaseException, epoch: int | None = None) -> None:
        reason = disk_problem(exc) or (str(exc).strip().splitlines()[0][:200] if str(exc).strip()
                                       else type(exc).__name__)
        if name in self.reasons:
            return
        self.reasons[name] = reason
        when = f" after epoch {epoch}" if epoch is not None else ""
        self.emit(Notice(f"could not write {name}{when}: {reason}; training goes on", "warning"))

    def summary(self) -> str | None:
        """One line naming every file that could not be written (by reason), or None."""
        by_reason: dict[str, list[str]] = {}
        for name, why in self.reasons.items():
            by_reason.setdefault(why, []).append(name)
        return "; ".join(f"could not write {', '.join(names)}: {why}" for why, names in by_reason.items()) or None


def train_run(
    net: NetModel,
    train_set: ImageSet,
    data: DataParams,
    hyper: HyperParams,
    *,
    validate: float | None,
    run: Run,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    initial_epoch: int = 0,
    history: dict[str, list[float]] | None = None,
    calibrate: bool = False,
    operating: OperatingTarget | None = None,
) -> TrainOutcome:
    """Train (optionally holding out a stratified validation share) and write the run folder.

    The model is saved after every epoch, so a run cut off by a dropped SSH
    connection or a kill still leaves the last whole epoch's model on disk. A
    save that fails (disk full, folder gone) does not stop training: the model
    stays in memory and ``save_error`` says what could not be written. With ``calibrate``, a
    finished training fits a temperature on the validation share, kept in the model file; with
    ``operating``, it then chooses that class's threshold there (``threshold_on``).
    """
    config = hyper.first()
    net.check_fits(num_classes=train_set.num_classes, image_size=train_set.image_size,
                   class_names=train_set.class_names, what="training set")
    run.save_params(data, hyper)
    if train_set.skipped:
        reports.write_skipped_csv(train_set.skipped, run.file("skipped_files.csv"))
    fixed = (load_validation_set(data, class_names=train_set.class_names, channels=train_set.channels, emit=emit,
                                 stop=stop) if validate else None)
    if fixed is not None:
        fit_set, validation = train_set, fixed
        emit(Notice(f"validation: the {len(fixed)} images of {validation_source(data)} "
                    f"(not a validation_split hold-out)", "info"))
    else:
        fit_set, validation = train_set.split(validate, data.seed) if validate else (train_set, None)
    net.temperature = 1.0  # training changes the network: a temperature fitted before no longer fits it
    net.threshold = None  # and so does a threshold chosen before
    run.add_details(
        samples=len(fit_set), validation_samples=len(validation) if validation else 0, epochs=config.epochs,
        batch_size=config.batch_size, class_names=train_set.class_names,
        validation_from=(validation_source(data) if fixed is not None else
                         f"validation_split {validate:g} of the training set" if validate else None),
        **group_details(train_set),
    )
    model_path = run.file("model.keras")
    resume_path = run.file(RESUME_MODEL)
    history_path = run.file("history.csv")
    progress: dict[str, list[float]] = {}
    unwritten = UnwrittenFiles(emit)

    def checkpoint(epoch: int, logs: dict[str, float]) -> None:
        for key, value in logs.items():  # by epoch: a fit retried after running out of memory starts again
            values = progress.setdefault(key, [])
            del values[epoch - 1:]
            values.append(value)
        net.epochs_done = epoch  # in the file: a kill between the two writes leaves the resume point clear
        try:
            reports.write_history_csv(progress, history_path)
        except (ResultsError, OSError) as exc:
            unwritten.failed(history_path.name, exc, epoch)
        try:
            net.save(model_path)
            resume_path.unlink(missing_ok=True)  # model.keras is the newer resume point now
        except (ResultsError, OSError) as exc:
            unwritten.failed(model_path.name, exc, epoch)

    progress.update({k: list(v) for k, v in (history or {}).items()})
    title = f"{run.record['run_id']}: {fit_set.num_classes} classes, {len(fit_set)} training images"
    try:
        result = train(net, fit_set, config, validation=validation, emit=emit, stop=stop, on_epoch_end=checkpoint,
                       initial_epoch=initial_epoch, history=history, title=title, log_dir=run.file("tensorboard"),
                       best_path=run.file(BEST_WEIGHTS), on_write_error=unwritten.failed)
    except Exception as exc:
        if backend.is_out_of_memory(exc) or disk_problem(exc):
            raise UserError(f"training failed: {backend.describe_failure(exc)}") from None
        raise
    calibrated = calibrate_on(net, validation, emit, stop) if calibrate and result.status == "finished" else {}
    if operating is not None and result.status == "finished":
        calibrated.update(threshold_on(net, validation, operating, emit, stop))
    files: dict[str, Path] = {}
    try:
        files["history"] = reports.write_history_csv(result.history, history_path)
    except (ResultsError, OSError) as exc:
        unwritten.failed(history_path.name, exc)
    try:
        if result.epochs_done:
            files["plots"] = reports.plot_history(result.history, run.file("train_val_plots.png"), title,
                                                  kept_epoch=result.best_epoch)
    except (ResultsError, OSError) as exc:
        unwritten.failed("train_val_plots.png", exc)
    try:
        # a diverged model must not replace the last good checkpoint, and a run stopped before its
        # first whole epoch has no model worth a file
        if result.status == "stopped" and model_path.exists() and model_path.name not in unwritten.reasons \
                and result.epochs_done:
            os.replace(model_path, resume_path)  # the last whole epoch: a resume goes on from there
        if result.status != "failed" and result.epochs_done:
            net.epochs_done = result.epochs_done
            files["model"] = net.save(model_path)
            net.source = model_path
        elif model_path.exists():
            files["model"] = model_path  # the last good epoch, saved by the checkpoint
    except (ResultsError, OSError) as exc:
        unwritten.failed(model_path.name, exc)
    # the model saved is the kept epoch's (early stopping), so its figures are the ones to report
    kept = (result.best_epoch or result.epochs_done) - 1
    final = {k: v[min(kept, len(v) - 1)] for k, v in result.history.items() if v and k != "seconds"}
    # a resumed run's training time counts the epochs done before it too
    before = sum((history or {}).get("seconds", [])[:initial_epoch])
    details = dict(epochs_done=result.epochs_done, best_epoch=result.best_epoch, final=final,
                   train_seconds=round(before + result.seconds, 3),
                   images_per_second=round(result.images_per_second, 1), save_error=unwritten.summary(),
                   **calibrated)
    if result.out_of_memory:  # retried at a smaller batch: a resume goes on at it (the model's optimizer)
        details.update(out_of_memory_at=result.out_of_memory, trained_batch_size=result.batch_size,
                       gradient_accumulation_steps=result.accumulation)
    return TrainOutcome(result, run, files, unwritten.summary(), details)


def calibrate_on(net: NetModel, validation: ImageSet | None, emit: Emit = ignore,
                 stop: threading.Event | None = None) -> dict[str, Any]:
    """Fit the model's temperature on the held-out validation share (it stays in ``net`` and so in its
    file); what was fitted, for run.json. Without a validation share there is nothing to fit on."""
    if validation is None or not len(validation):
        emit(Notice("--calibrate needs a validation share (--validate or the data params' validation_split): "
                    "the model is left uncalibrated", "warning"))
        return {}
    net.temperature = 1.0
    probabilities = predict_probabilities(net, validation.x, stop=stop, what="validation set")
    temperature = calibration.fit_temperature(probabilities, validation.y)
    before = calibration.expected_calibration_error(probabilities, validation.y)
    after = calibration.expected_calibration_error(calibration.scaled(probabilities, temperature), validation.y)
    net.temperature = temperature
    emit(Notice(f"calibrated on {len(validation):,} validation images: temperature {temperature:.3f}, "
                f"ECE {before:.3f} → {after:.3f}"))
    return {"temperature": temperature, "validation_ece_before": before, "validation_ece_after": after}


@dataclass(frozen=True)
class OperatingTarget:
    """``--positive CLASS --target-recall R`` (or ``--target-precision P``): the threshold to choose."""

    positive: str
    metric: str  # recall | precision
    target: float


def threshold_on(net: NetModel, validation: ImageSet | None, operating: OperatingTarget, emit: Emit = ignore,
                 stop: threading.Event | None = None) -> dict[str, Any]:
    """Choose ``operating.positive``'s threshold on the held-out validation share (after any temperature:
    it stays in ``net`` and so in its file); what was chosen, for run.json. A target no threshold
    reaches leaves the model without one, saying the best value reachable."""
    if validation is None or not len(validation):
        emit(Notice("--positive needs a validation share (--validate or the data params' validation_split): "
                    "the model is left without a threshold", "warning"))
        return {}
    net.threshold = None
    probabilities = predict_probabilities(net, validation.x, stop=stop, what="validation set")
    try:
        chosen = thresholds.choose_threshold(probabilities, validation.y, net.class_names, operating.positive,
                                             operating.metric, operating.target)
    except UserError as exc:
        emit(Notice(f"{exc}; the model is left without a threshold", "warning"))
        return {}
    net.threshold = chosen
    emit(Notice(f"threshold on {len(validation):,} validation images: {chosen.describe()}"))
    return {"threshold": chosen.as_dict()}


def threshold_model(net: NetModel, data: DataParams, operating: OperatingTarget, *, emit: Emit = ignore,
                    stop: threading.Event | None = None) -> Threshold:
    """Choose a saved model's threshold on its data's validation share: the fixed validation set
    (val_dir, the labels CSV's rows) or else the training set's ``validation_split`` hold-out with the
    data's seed, the share a training of these data params held out. Never the test set."""
    thresholds.check_target(operating.positive, net.class_names, operating.metric, operating.target)
    validation = load_validation_set(data, class_names=net.class_names, channels=net.channels, emit=emit, stop=stop)
    if validation is None:
        images = load_training_set(data, channels=net.channels, emit=emit, stop=stop)
        _, validation = images.split(data.validation_split, data.seed)
    net.check_fits(num_classes=validation.num_classes, image_size=validation.image_size,
                   class_names=validation.class_names, what="validation share", channels=validation.channels)
    net.threshold = None
    probabilities = predict_probabilities(net, validation.x, stop=stop, what="validation set")
    net.threshold = thresholds.choose_threshold(probabilities, validation.y, net.class_names, operating.positive,
                                                operating.metric, operating.target)
    emit(Notice(f"threshold on {len(validation):,} validation images: {net.threshold.describe()}"))
    return net.threshold


@dataclass
class EvaluationOutcome:
    evaluation: Evaluation
    run: Run
    files: dict[str, Path] = field(default_factory=dict)
    status: str = "finished"
    trust: uncertainty.Trust | None = None  # intervals, calibration, top-k

    @property
    def message(self) -> str:
        text = f"accuracy {self.evaluation.accuracy:.4f} on {self.evaluation.samples} test images"
        if self.evaluation.tta:
            text += f" with test-time augmentation (plain {self.evaluation.plain().accuracy:.4f})"
        return text

    @property
    def details(self) -> dict[str, Any]:
        found = {"accuracy": self.evaluation.accuracy, "loss": self.evaluation.loss, "tta": self.evaluation.tta}
        if self.trust is not None:
            found.update(accuracy_low=self.trust.intervals.accuracy.low, accuracy_high=self.trust.intervals.accuracy.high,
                         ece=self.trust.ece)
        return found


def evaluate_run(
    net: NetModel,
    test_set: ImageSet,
    *,
    run: Run,
    data: DataParams | None = None,
    confusion: bool = True,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    tta: bool | None = None,
) -> EvaluationOutcome:
    """Accuracy and loss on the test set; with ``confusion`` also the matrix and per-class report.
    ``tta``: with test-time augmentation (None: as the model file records)."""
    run.save_params(data)
    evaluation = evaluate(net, test_set, emit=emit, stop=stop, tta=tta)
    files: dict[str, Path] = {}
    summary = evaluation.summary()
    report = evaluation.report()
    summary["model"] = str(net.source) if net.source else None
    summary["test_dir"] = str(test_set.root)
    summary["per_class"] = [r.__dict__ for r in report]
    trust = uncertainty.assess(evaluation)
    summary.update(trust.as_dict(evaluation.class_names))
    files["evaluation"] = fileio.write_json(run.file("evaluation.json"), fileio.without_nan(summary))
    files["predictions"] = reports.write_predictions(evaluation, run.file("predictions.npz"))
    files["reliability"] = reports.plot_reliability(trust.reliability, run.file("reliability.png"), ece=trust.ece,
                                                        ece_before=trust.ece_before, temperature=trust.temperature)
    if test_set.skipped:
        files["skipped"] = reports.write_skipped_csv(test_set.skipped, run.file("skipped_files.csv"))
    if confusion:
        matrix = evaluation.confusion()
        files["confusion_png"] = reports.plot_confusion(matrix, test_set.class_names, run.file("confusion_matrix.png"))
        files["confusion_csv"] = reports.write_confusion_csv(matrix, test_set.class_names, run.file("confusion_matrix.csv"))
        files["report"] = reports.write_report_csv(report, run.file("classification_report.csv"))
        files["misclassified"] = reports.write_misclassified_csv(evaluation, run.file("misclassified.csv"))
        files["roc_curves"], files["pr_curves"] = reports.plot_class_curves(
            evaluation, run.file("roc_curves.png"), run.file("precision_recall_curves.png"))
    return EvaluationOutcome(evaluation, run, files, trust=trust)


@dataclass
class TuningOutcome(EndsAsItsResult):
    result: TuningResult
    run: Run
    best_hyper: HyperParams | None
    files: dict[str, Path] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # for run.json


def tune_run(
    images: ImageSet,
    hyper: HyperParams,
    options: SearchOptions,
    *,
    plan: TuningPlan,
    run: Run,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    done_rows: list[dict[str, Any]] | None = None,
) -> TuningOutcome:
    """Run the search ``plan`` says (as announced) and write every fold, the per-combination table
    and the best params. The params were checked and saved in the run folder when it was made
    (``control.prepare``). ``done_rows`` are the folds a stopped search finished: a resumed search
    keeps them."""
    work = run.file(".work")  # fold rows land here as they finish, so a killed search loses nothing
    result = tune(images, hyper, options, plan=plan, emit=emit, stop=stop, work_dir=work, done_rows=done_rows,
                  log_dir=run.file("tensorboard") / "fits")
    columns = result.columns
    fold_columns = [*columns, "fold", "rung", "epochs_done", "samples", "accuracy", "loss", "fit_seconds", "status",
                    "reason", "retries"]
    files = {"folds": reports.write_rows_csv(result.rows, run.file("tuning_results.csv"), fold_columns)}
    table = result.table()
    summary_columns = [*columns, "mean_accuracy", "std_accuracy", "mean_loss", "folds", "failed", "pruned", "samples",
                       "epochs_done", "rung", "reason"]
    files["summary"] = reports.write_rows_csv(table, run.file("tuning_summary.csv"), summary_columns)
    if table and tensorboard_logs.available():  # the search in TensorBoard's HParams view
        files["tensorboard"] = tensorboard_logs.write_search(run.file("tensorboard") / "search", table, columns)
    if result.importance:  # which fields mattered (Optuna's fANOVA over the scored combinations)
        files["importance"] = reports.write_rows_csv(
            [{"field": k, "importance": round(v, 4)} for k, v in result.importance.items()],
            run.file("field_importance.csv"), ["field", "importance"])
    best = result.best()
    best_hyper = best_hyper_params(hyper, best) if best is not None else None
    if best_hyper is not None:
        files["best"] = best_hyper.save(run.file("best_hyper_params.json"))
    ensemble = None
    if options.ensemble_top and result.status == "finished":  # before .work goes: the fold models are in it
        ensemble = keep_fold_ensemble(result, work, run.path, class_names=images.class_names, hyper=hyper,
                                      top=options.ensemble_top)
        if ensemble is None:
            emit(Notice("no ensemble: fewer than two fold models finished", "warning"))
        else:
            files["ensemble"] = ensemble.path
    if result.status == "finished":  # a stopped search keeps its promoted models for the resume
        shutil.rmtree(work, ignore_errors=True)
    if result.status == "stopped":
        emit(Notice(f"partial results: {len(result.rows)} of {result.plan.fits} fits", "warning"))
    details = dict(
        strategy=options.strategy, cv=options.cv, prune=options.prune, jobs=options.jobs, cluster=options.cluster,
        fits=len(result.rows),
        fits_planned=result.plan.fits,
        combinations=len(result.plan.candidates), samples=result.plan.samples, best=best,
        best_accuracy=table[0]["mean_accuracy"] if table and not math.isnan(table[0]["mean_accuracy"]) else None,
        importance=result.importance or None,
        **group_details(images),
        **({"ensemble": ensemble.details(run.path)} if ensemble is not None else {}),
    )
    return TuningOutcome(result, run, best_hyper, files, details)


@dataclass
class RateOutcome(EndsAsItsResult):
    result: RateSweep
    run: Run
    files: dict[str, Path] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # for run.json


RATE_PLOT = "lr_find.png"
RATE_TABLE = "lr_find.csv"


def rate_run(net: NetModel, train_set: ImageSet, data: DataParams, hyper: HyperParams, *, steps: int, run: Run,
             emit: Emit = ignore, stop: threading.Event | None = None) -> RateOutcome:
    """The learning-rate finder on the run's first configuration: its sweep as a table and a plot."""
    config = hyper.first()
    net.check_fits(num_classes=train_set.num_classes, image_size=train_set.image_size,
                   class_names=train_set.class_names, what="training set")
    run.save_params(data, hyper)
    try:
        sweep = find_rate(net, train_set, config, steps=steps, emit=emit, stop=stop)
    except Exception as exc:
        if backend.is_out_of_memory(exc):
            raise UserError(f"the rate finder failed: {backend.describe_failure(exc)}") from None
        raise
    files = {"table": rate_plot.write_sweep_csv(sweep, run.file(RATE_TABLE))}
    if sweep.rates:
        files["plot"] = rate_plot.plot_sweep(sweep, run.file(RATE_PLOT), f"{run.record['run_id']}: learning-rate finder")
    if sweep.suggestion is not None:
        sweep.message += f"; suggested init_rate {round_rate(sweep.init_rate):g} ({sweep.rule})"
    else:
        sweep.message += "; too few batches for a suggestion"
    details = dict(suggested_rate=round_rate(sweep.init_rate), rule=sweep.rule, batches=len(sweep.rates),
                   sweep_seconds=round(sweep.seconds, 3))
    return RateOutcome(sweep, run, files, details)


def round_rate(rate: float | None) -> float | None:
    """A rate to two significant digits, as a person writes it in a params file."""
    return None if rate is None else float(f"{rate:.2g}")
