"""One function per subcommand: load what it needs, run the core task, print, return a result dict.

The task commands (train, tune, pipeline, evaluate, predict, resume) are thin
clients of ``core.runs.control``: they check what is cheap to check, ``prepare``
a run folder, then run it here (``run_here``, the default) or in a detached
process (``--detach``, ``launch``). How a run ended is decided in the core; here
it is only printed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from cnn_tui.cli.console import CliConsole, make_table
from cnn_tui.cli.inspect_commands import cmd_explain as explain_command
from cnn_tui.cli.inspect_commands import cmd_features as features_command
from cnn_tui.cli.inspect_commands import print_mistakes
from cnn_tui.cli.overrides import apply_sets
from cnn_tui.cli.trust_tables import print_trust
from cnn_tui.core.backend import info
from cnn_tui.core.data.demo import export_digits
from cnn_tui.core.data.locations import list_data
from cnn_tui.core.errors import UserError
from cnn_tui.core.fileio import without_nan
from cnn_tui.core.models.model import NetModel, readable_size
from cnn_tui.core.models.views import chosen_tta, views_of
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control, steps
from cnn_tui.core.runs.execute import Inputs, Outcome, TaskSpec
from cnn_tui.core.runs.folder import Run
from cnn_tui.core.runs.index import find_run
from cnn_tui.core.runs.lifecycle import EXIT_OK, EXIT_STOPPED, EXIT_USER, ending_of
from cnn_tui.core.runs.results import load_history
from cnn_tui.core.training.evaluation import classify_files
from cnn_tui.core.tuning.search import ENSEMBLE_ON_CLUSTER, near_best

RESULTS = "results"  # the default parent of run folders, relative to the working folder


class Ended(Exception):
    """The command ends with a non-zero exit code: ``message`` for stderr, ``result`` for --json."""

    code = 1

    def __init__(self, message: str, result: dict[str, Any], code: int | None = None) -> None:
        super().__init__(message)
        self.message, self.result = message, without_nan(result)
        if code is not None:
            self.code = code


class Stopped(Ended):
    """The task was stopped by a signal after saving what it had (exit 130)."""

    code = EXIT_STOPPED


class Failed(Ended):
    """The task ran and failed (e.g. diverged); its run folder says so (exit 1)."""

    code = 1


Args = argparse.Namespace


def _load_params(args: Args, console: CliConsole, *, hyper: bool = True) -> tuple[DataParams, HyperParams | None]:
    data = DataParams.load(args.data)
    hyper_params = HyperParams.load(args.hyper) if hyper else None
    for warning in (*data.warnings, *(hyper_params.warnings if hyper_params else ())):
        console.warn(warning)
    return apply_sets(getattr(args, "set", None), data, hyper_params)


def _results_parent(args: Args, data: DataParams) -> Path:
    return Path(args.out) if getattr(args, "out", None) else data.results_path


def _command_line(args: Args) -> str:
    return " ".join(["cnn-tui", *sys.argv[1:]]) if sys.argv else args.command


def _counts_table(images: Any, title: str) -> Any:
    rows = [(name, count) for name, count in zip(images.class_names, images.counts())]
    return make_table(title, ["class", "images"], rows, right=[1])


def _skipped(images: Any) -> list[dict[str, str]]:
    return [{"file": s.path, "reason": s.reason} for s in getattr(images, "skipped", None) or ()]


def _skipped_in(folder: Path) -> list[dict[str, str]]:
    """The unreadable files a run listed in its skipped_files.csv."""
    try:
        with open(folder / "skipped_files.csv", encoding="utf-8", newline="") as handle:
            return [{"file": row.get("file", ""), "reason": row.get("reason", "")} for row in csv.DictReader(handle)]
    except OSError:
        return []


# ---------------------------------------------------------------- demo, info, summary


def cmd_demo(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    files = export_digits(Path(args.dir), Path(args.app_input))
    console.line(f"digits: {files.train_count} training and {files.test_count} testing images "
                 f"({files.written} written, {files.unchanged} already there)")
    console.line(f"  training folder  {files.train_dir}")
    console.line(f"  testing folder   {files.test_dir}")
    console.line(f"  data params      {files.data_params}")
    console.line(f"  hyper params     {files.hyper_params}")
    return {k: str(v) if isinstance(v, Path) else v for k, v in files.__dict__.items()}


def cmd_info(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    facts = info()
    rows = [
        ("cnn-tui", facts["cnn_tui"]), ("python", facts["python"]), ("keras", facts["keras"]),
        ("backend", f"{facts['backend']} {facts['backend_version'] or ''}".strip()),
        ("device", facts["device"]), ("cpu", f"{facts['cpu']} ({facts['cpu_count']} cores)"),
        ("gpus", ", ".join(facts["gpus"]) or "none visible to the backend"),
        ("devices", ", ".join(facts["devices"]) or "none visible to the backend"),
        *((name, version or "not installed") for name, version in facts["packages"].items()),
    ]
    table = make_table("cnn-tui info", ["", ""], rows)
    table.show_header = False  # its columns need no names: an empty header row only took a line
    console.table(table)
    return facts


def _summary_result(net: NetModel) -> dict[str, Any]:
    totals = net.totals()
    return {
        "architecture": net.config.architecture if net.config else None,
        "title": net.title,
        "layers": [row.__dict__ for row in net.summary_rows()],
        "total_params": totals.total,
        "trainable_params": totals.trainable,
        "non_trainable_params": totals.non_trainable,
        "total_bytes": totals.total_bytes,
        "input_shape": [net.image_size, net.image_size, net.channels],
        "class_names": net.class_names,
    }


def print_summary(console: CliConsole, net: NetModel) -> None:
    rows = [(f"{r.name} ({r.kind})", r.output_shape, r.params) for r in net.summary_rows()]
    console.table(make_table(f'Model: "{net.keras_model.name}" ({net.title})', ["Layer (type)", "Output Shape", "Param #"],
                             rows, right=[2]))
    t = net.totals()
    console.line(f"Total params: {t.total:,} ({readable_size(t.total_bytes)})")
    console.line(f"Trainable params: {t.trainable:,} ({readable_size(t.trainable_bytes)})")
    console.line(f"Non-trainable params: {t.non_trainable:,} ({readable_size(t.non_trainable_bytes)})")


def cmd_summary(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    data, hyper = _load_params(args, console)
    net = steps.new_model(data, hyper)
    print_summary(console, net)
    return _summary_result(net)


# ---------------------------------------------------------------- running a prepared run


def _check_training_folder(data: DataParams) -> list[str]:
    """The training folder's mistakes a listing finds (missing, wrong class count, empty class),
    before a run folder exists; returns its class names."""
    listing = list_data(data, "training")
    return listing.class_names if listing is not None else []


def _check_test_folder(data: DataParams, class_names: list[str] | None) -> None:
    list_data(data, "test", class_names=class_names)


def _prepare(args: Args, spec: TaskSpec, data: DataParams, hyper: HyperParams | None) -> Run:
    return control.prepare(spec, data, hyper, parent=_results_parent(args, data), command=_command_line(args))


def _hint_results(run: Run) -> str:
    """`` --results DIR`` when the run's folder is not under ./results (where attach and stop look)."""
    parent = run.path.parent.resolve()
    return "" if parent == (Path.cwd() / RESULTS).resolve() else f" --results {parent}"


def _detach(run: Run, console: CliConsole, command: str) -> dict[str, Any]:
    """Start the run in its own process and return: the terminal can close, the run goes on."""
    proc = control.launch(run)
    run_id, more = run.path.name, _hint_results(run)
    console.line(f"started {run_id} (pid {proc.pid}); it runs on after this terminal closes")
    console.line(f"  folder  {run.path}")
    console.line(f"  log     {run.file(control.LOG_FILE)}")
    console.line(f"  follow  cnn-tui attach {run_id}{more}")
    console.line(f"  stop    cnn-tui stop {run_id}{more}")
    console.line(f"  list    cnn-tui runs{more}")
    return {"run_id": run_id, "run_dir": str(run.path), "pid": proc.pid, "status": "running", "detached": True,
            "task": command, "log": str(run.file(control.LOG_FILE))}


def _run_foreground(run: Run, spec: TaskSpec, console: CliConsole, stop: threading.Event,
                    inputs: Inputs | None = None) -> Outcome:
    """Execute the run in this process with a progress bar; a run that ended by an exception
    (marked in its folder already) becomes the command's exit code and one line."""
    console.info(f"run folder: {run.path}")
    try:
        with console.progress(spec.label):
            return control.run_here(run, spec, emit=console.emit, stop=stop, inputs=inputs)
    except (Exception, KeyboardInterrupt) as exc:
        status, message, code = ending_of(exc)
        if code not in (EXIT_USER, EXIT_STOPPED):  # a bug, not the user's doing: keep its traceback

            traceback.print_exc()
        result = {"run_id": run.path.name, "run_dir": str(run.path), "status": status, "message": message}
        if code != EXIT_STOPPED:
            result["error"] = message
        raise Ended(message, result, code) from None


def _ended(outcome: Outcome, summary: dict[str, Any], *, stopped: str, failed: str) -> dict[str, Any]:
    """The result of a run that ran to its end; raises for the ends that are not exit 0."""
    if outcome.exit_code == EXIT_OK:
        return without_nan(summary)
    if outcome.exit_code == EXIT_STOPPED:
        raise Stopped(stopped, summary)
    if outcome.exit_code == EXIT_USER:
        raise Ended(outcome.message, {**summary, "error": outcome.message}, EXIT_USER)
    raise Ended(failed, summary, outcome.exit_code)


# ---------------------------------------------------------------- train


def _kept(outcome: Outcome) -> str:
    """What a stopped training kept: nothing is saved before its first whole epoch."""
    trained, folder = outcome.train, outcome.run.path
    if trained is not None and trained.result.epochs_done:
        return f"model and history saved in {folder}"
    return f"no whole epoch to save yet (run folder {folder})"


def _training_summary(console: CliConsole, outcome: Outcome) -> dict[str, Any]:
    """Print the history table and files of a training run; its result for --json."""
    run = outcome.run
    trained = outcome.train
    if trained is None:  # a resumed pipeline whose training was done already
        history = load_history(run.path)
        epochs = len(history.get("loss", []))
        return {"run_dir": str(run.path), "status": "finished", "message": f"trained {epochs} epochs",
                "epochs_done": epochs, "final": {k: v[-1] for k, v in history.items() if v and k != "seconds"}}
    result = trained.result
    final = {k: v[-1] for k, v in result.history.items() if v and k != "seconds"}
    summary = {
        "run_id": run.path.name, "run_dir": str(run.path), "status": result.status, "message": result.message,
        "epochs_done": result.epochs_done, "final": final, "seconds": round(result.seconds, 2),
        "images_per_second": round(result.images_per_second, 1),
        "files": {k: str(v) for k, v in trained.files.items()}, "skipped": _skipped(outcome.train_set),
    }
    if trained.save_error:
        summary["save_error"] = trained.save_error
    rows = [(str(r["epoch"]), *(r.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")), r.get("seconds"))
            for r in result.history_rows()]
    console.table(make_table("Training history", ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"],
                             rows, right=[1, 2, 3, 4, 5]))
    for name, path in trained.files.items():
        console.line(f"  {name:<8} {path}")
    return summary


def _train_result(console: CliConsole, outcome: Outcome) -> dict[str, Any]:
    summary = _training_summary(console, outcome)
    run = outcome.run
    return _ended(outcome, summary, stopped=f"{outcome.message}; {_kept(outcome)}",
                  failed=f"{outcome.message} (run folder {run.path})")


def cmd_train(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    data, hyper = _load_params(args, console)
    _check_training_folder(data)
    spec = TaskSpec("train", validate=args.validate, calibrate=args.calibrate, **_operating(args))
    run = _prepare(args, spec, data, hyper)
    if args.detach:
        return _detach(run, console, "train")
    return _train_result(console, _run_foreground(run, spec, console, stop))


# ---------------------------------------------------------------- evaluate, predict, classify


def _evaluation_result(console: CliConsole, outcome: Outcome, *, confusion: bool) -> dict[str, Any]:
    run = outcome.run
    evaluated = outcome.evaluation
    ev = evaluated.evaluation
    auc = ev.roc_auc()
    rows = [("accuracy", ev.accuracy), ("loss", ev.loss), ("test images", ev.samples)]
    if auc is not None:
        rows.append(("ROC AUC" + (" (one-vs-rest, macro)" if ev.probabilities.shape[1] > 2 else ""), auc))
    if ev.tta:  # test-time augmentation: its figures beside the plain ones
        plain, plain_auc = ev.plain(), ev.plain().roc_auc()
        tta_rows = [(name, value, plain_value) for (name, value), plain_value in
                    zip(rows, [plain.accuracy, plain.loss, plain.samples, plain_auc])]
        console.table(make_table(f"Evaluation (test-time augmentation: {len(ev.views)} views)",
                                 ["metric", "with TTA", "plain"], tta_rows, right=[1, 2]))
        console.line(f"  views: {', '.join(ev.views)}")
    else:
        console.table(make_table("Evaluation", ["metric", "value"], rows, right=[1]))
    result: dict[str, Any] = {"run_id": run.path.name, "run_dir": str(run.path), **ev.summary(),
                              "files": {k: str(v) for k, v in evaluated.files.items()},
                              "skipped": _skipped_in(run.path)}
    if confusion:
        matrix = ev.confusion()
        names = ev.class_names
        console.table(make_table("Confusion matrix (rows: true class, columns: predicted)", ["true \\ pred", *names],
                                 [(n, *map(int, matrix[i])) for i, n in enumerate(names)], right=range(1, len(names) + 1)))
        report = ev.report()
        console.table(make_table("Per-class report", ["class", "precision", "recall", "f1", "support"],
                                 [(r.label, r.precision, r.recall, r.f1, r.support) for r in report], right=[1, 2, 3, 4]))
        result.update(class_names=names, confusion_matrix=matrix.tolist(), report=[r.__dict__ for r in report])
    if ev.threshold is not None:
        console.line(f"  predictions apply the model's threshold: {ev.threshold.describe()}")
    result.update(print_trust(console, ev, evaluated.trust, per_class=confusion))
    for name, path in evaluated.files.items():
        console.line(f"  {name:<14} {path}")
    return result


def _operating(args: Args) -> dict[str, Any]:
    """--positive and its target, as TaskSpec fields."""
    return {"positive": args.positive, "target_recall": args.target_recall, "target_precision": args.target_precision}


def cmd_threshold(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    data, _ = _load_params(args, console, hyper=False)
    net = _load_model(args.model)
    spec = TaskSpec("evaluate", **_operating(args))
    operating = spec.operating_target()
    assert operating is not None  # --positive is required
    chosen = steps.threshold_model(net, data, operating, emit=console.emit, stop=stop)
    written = net.save(args.write or args.model)  # atomic: a failed write leaves the old file whole
    console.line(f"  model          {written}")  # the threshold itself: the notice above
    return {"model": str(written), "threshold": chosen.as_dict()}


def _load_model(path: str) -> NetModel:
    return NetModel.load(path)


def cmd_evaluate(args: Args, console: CliConsole, stop: threading.Event, *, confusion: bool = False) -> dict[str, Any]:
    data, _ = _load_params(args, console, hyper=False)
    net = _load_model(args.model)  # a model that cannot be used is refused before a run folder exists
    net.check_fits(num_classes=data.num_classes, image_size=data.image_size, what="data params")
    _check_test_folder(data, net.class_names if net.names_known else None)  # a foreign model takes the folders'
    spec = TaskSpec("predict" if confusion else "evaluate", model=args.model, tta=getattr(args, "tta", None))
    run = _prepare(args, spec, data, None)
    outcome = _run_foreground(run, spec, console, stop, Inputs(net=net))
    result = _evaluation_result(console, outcome, confusion=confusion)
    if getattr(args, "mistakes", None) and outcome.evaluation is not None:
        result.update(print_mistakes(console, outcome.evaluation.evaluation, args.mistakes))
    return _ended(outcome, result, stopped=outcome.message, failed=outcome.message)


def cmd_predict(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    return cmd_evaluate(args, console, stop, confusion=True)


def cmd_explain(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    return explain_command(args, console, stop)


def cmd_features(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    return features_command(args, console, stop)


def cmd_classify(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    net = _load_model(args.model)
    tta = chosen_tta(net, getattr(args, "tta", None))
    results = classify_files(net, args.images, top_k=args.top, tta=tta)
    rows = []
    for r in results:
        if r.error:
            rows.append((r.path, "unreadable", r.error))
        else:
            rows.append((r.path, r.predicted or r.top[0][0], "  ".join(f"{name} {p:.1%}" for name, p in r.top)))
    title = "Classification" + (f" (test-time augmentation: {len(views_of(net))} views)" if tta else "")
    console.table(make_table(title, ["image", "class", f"top {args.top}"], rows))
    if net.threshold is not None:
        console.line(f"  the class applies the model's threshold: {net.threshold.describe()}")
    out = {"model": args.model, "tta": tta, "threshold": net.threshold.as_dict() if net.threshold else None,
           "results": [{"path": r.path, "class": r.predicted, "top": r.top, "error": r.error} for r in results]}
    if all(r.error for r in results):
        raise UserError(f"none of the {len(results)} file(s) could be read as an image ({results[0].error})")
    return out


# ---------------------------------------------------------------- tune


def _tune_result(console: CliConsole, outcome: Outcome, spec: TaskSpec) -> dict[str, Any]:
    run = outcome.run
    tuned = outcome.tuning
    result = tuned.result
    table = result.table()
    columns = result.columns
    kind = {"grid": "Grid", "random": "Random", "halving": "Successive-halving", "hyperband": "Hyperband", "tpe": "TPE"}.get(
        spec.strategy, spec.strategy)
    title = f"{kind} search results" if result.status == "finished" else f"Partial {kind.lower()} search results"

    def percent(value: float, folds: int) -> str:
        return f"{value * 100:.2f}" if folds else "-"

    rows = [(*(str(r[c]) for c in columns), percent(r["mean_accuracy"], r["folds"]),
             percent(r["std_accuracy"], r["folds"]), r["mean_loss"], f"{r['folds']}/{spec.cv}",
             str(r.get("epochs_done") or ""),  # the epochs of its last round: hyperband trains most less
             r["reason"] or (f"{r['pruned']} pruned" if r.get("pruned") else "")) for r in table]
    near = near_best(table)
    marks = ["★" if i == 0 and tuned.best_hyper is not None else ("≈" if near[i] and r["folds"] else "")
             for i, r in enumerate(table)]
    rows = [(mark, *row) for mark, row in zip(marks, rows)]
    console.table(make_table(title, ["", *columns, "mean acc %", "std %", "mean loss", "folds", "trained", "note"], rows,
                             right=range(1 + len(columns), 1 + len(columns) + 5)))
    if sum(near[1:]):
        console.line(f"≈: {sum(near[1:])} combination(s) within the folds' spread of the best (mean ± std overlap); "
                     "the folds cannot tell them apart")
    best = result.best()
    if tuned.best_hyper is not None:
        console.line(f"best: {', '.join(f'{k}={v}' for k, v in best.items()) or '(single combination)'}"
                     f" -> {tuned.files['best']}")
    if result.importance:  # which fields mattered, most first
        console.table(make_table("Which fields mattered (fANOVA importance)", ["field", "importance"],
                                 [(k, f"{v:.3f}") for k, v in result.importance.items()], right=[1]))
    for name, path in tuned.files.items():
        console.line(f"  {name:<8} {path}")
    summary = {
        "run_id": run.path.name, "run_dir": str(run.path), "status": result.status, "message": result.message,
        "strategy": spec.strategy, "cv": spec.cv, "columns": columns, "fits_planned": result.plan.fits,
        "folds": result.rows, "table": table, "best": best, "seconds": round(result.seconds, 2),
        "files": {k: str(v) for k, v in tuned.files.items()},
        "within_spread_of_best": [{c: r[c] for c in columns} for r, n in zip(table[1:], near[1:]) if n],
        "importance": result.importance,
    }
    return _ended(outcome, summary, stopped=f"{result.message}; partial results saved in {run.path}",
                  failed=result.message)


def cmd_tune(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    data, hyper = _load_params(args, console)
    _check_training_folder(data)
    spec = TaskSpec("tune", strategy=args.strategy, cv=args.cv, n_iter=args.n_iter, max_samples=args.max_samples,
                    jobs=args.jobs, gpus=args.gpus, cluster=args.cluster, security=args.cluster_security,
                    prune=args.prune, ensemble_top=args.ensemble_top or (1 if args.ensemble else 0))
    if spec.ensemble_top and spec.cluster:  # one line before a run folder is made
        raise UserError(ENSEMBLE_ON_CLUSTER)
    run = _prepare(args, spec, data, hyper)
    if args.detach:
        return _detach(run, console, "tune")
    return _tune_result(console, _run_foreground(run, spec, console, stop), spec)


# ---------------------------------------------------------------- pipeline


def _pipeline_result(console: CliConsole, outcome: Outcome, started: float,
                     net: NetModel | None = None) -> dict[str, Any]:
    run = outcome.run
    if outcome.train_set is not None:
        console.table(_counts_table(outcome.train_set, "Training images per class"))
    training = _training_summary(console, outcome)
    if outcome.evaluation is None:  # training stopped or failed: there was no evaluation
        return _ended(outcome, training, stopped=f"{outcome.message}; {_kept(outcome)}",
                      failed=f"{outcome.message} (run folder {run.path})")
    evaluation = _evaluation_result(console, outcome, confusion=True)
    seconds = time.perf_counter() - started
    console.line(f"test accuracy {evaluation['accuracy']:.2%} in {seconds:.1f}s; results in {run.path}")
    if net is None and run.file("model.keras").exists():
        net = NetModel.load(run.file("model.keras"))
    summary = {"run_id": run.path.name, "run_dir": str(run.path), "status": outcome.status,
               "message": outcome.message, "summary": _summary_result(net) if net is not None else None,
               "training": training, "evaluation": evaluation, "seconds": round(seconds, 2),
               "test_accuracy": evaluation["accuracy"]}
    return _ended(outcome, summary, stopped=outcome.message, failed=outcome.message)


def cmd_pipeline(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    """The main job on one dataset: summary, training with validation, evaluation, confusion matrix."""
    started = time.perf_counter()
    data, hyper = _load_params(args, console)
    class_names = _check_training_folder(data)
    _check_test_folder(data, class_names)
    spec = TaskSpec("pipeline", validate=args.validate or data.validation_split, calibrate=args.calibrate,
                    **_operating(args))
    if args.detach:
        return _detach(_prepare(args, spec, data, hyper), console, "pipeline")
    preview = steps.new_model(data, hyper)  # the network the run builds (same seed), shown before it trains
    print_summary(console, preview)
    run = _prepare(args, spec, data, hyper)
    return _pipeline_result(console, _run_foreground(run, spec, console, stop), started, preview)


# ---------------------------------------------------------------- resume


def cmd_resume(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    """Go on with a stopped or interrupted train, pipeline or tune run, in its own folder."""
    started = time.perf_counter()
    folder = find_run(args.run, results_folders(args))
    run, spec = control.prepare_resume(folder)
    resumed = {"resumed": int(run.record.get("resumed") or 0) + 1}  # the run counts it once it goes on
    if args.detach:
        return {**_detach(run, console, spec.task), **resumed}
    console.info(f"resuming {spec.label} run {run.path.name}")
    try:
        outcome = _run_foreground(run, spec, console, stop)
        if spec.task == "tune":
            return {**_tune_result(console, outcome, spec), **resumed}
        if spec.task == "pipeline":
            return {**_pipeline_result(console, outcome, started), **resumed}
        return {**_train_result(console, outcome), **resumed}
    except Ended as exc:
        exc.result.update(resumed)
        raise


def results_folders(args: Args) -> list[Path]:
    """Where run commands look for runs: ./results and every --results folder."""
    return [Path.cwd() / RESULTS, *(Path(p).expanduser() for p in (getattr(args, "results", None) or ()))]
