"""One function per subcommand: load what it needs, run the core job, print, return a result dict."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from cnn_tui.cli import clean_json
from cnn_tui.cli.console import CliConsole, make_table
from cnn_tui.core import jobs
from cnn_tui.core.dataset import ImageSet, TaskStopped
from cnn_tui.core.errors import UserError
from cnn_tui.core.model import NetModel, readable_size
from cnn_tui.core.params import LARGE_GRID, DataParams, HyperParams
from cnn_tui.core.runs import Run


class Stopped(Exception):
    """The task was stopped by a signal after saving what it had."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.message, self.result = message, clean_json(result)


class Failed(Exception):
    """The task ran and failed (e.g. diverged); its run folder says so."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.message, self.result = message, clean_json(result)


Args = argparse.Namespace


def _load_params(args: Args, console: CliConsole, *, hyper: bool = True) -> tuple[DataParams, HyperParams | None]:
    data = DataParams.load(args.data)
    hyper_params = HyperParams.load(args.hyper) if hyper else None
    for warning in (*data.warnings, *(hyper_params.warnings if hyper_params else ())):
        console.warn(warning)
    return data, hyper_params


def _results_parent(args: Args, data: DataParams) -> Path:
    return Path(args.out) if getattr(args, "out", None) else data.results_path


def _command_line(args: Args) -> str:
    import sys

    return " ".join(["cnn-tui", *sys.argv[1:]]) if sys.argv else args.command


def _load(console: CliConsole, what: str, loader: Any, **kwargs: Any) -> ImageSet:
    with console.progress(f"loading {what}"):
        images = loader(emit=console.emit, **kwargs)
    source = "cache" if images.from_cache else "decoded"
    console.info(
        f"{what}: {len(images):,} images, {images.num_classes} classes, "
        f"{images.image_size}x{images.image_size}x{images.channels} ({source} in {images.seconds:.2f}s)"
    )
    return images


def _counts_table(images: ImageSet, title: str) -> Any:
    rows = [(name, count) for name, count in zip(images.class_names, images.counts())]
    return make_table(title, ["class", "images"], rows, right=[1])


def _skipped(images: ImageSet) -> list[dict[str, str]]:
    return [{"file": s.path, "reason": s.reason} for s in images.skipped]


# ---------------------------------------------------------------- demo, info, summary


def cmd_demo(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    from cnn_tui.core.demo import export_digits

    files = export_digits(Path(args.dir), Path(args.app_input))
    console.line(f"digits: {files.train_count} training and {files.test_count} testing images "
                 f"({files.written} written, {files.unchanged} already there)")
    console.line(f"  training folder  {files.train_dir}")
    console.line(f"  testing folder   {files.test_dir}")
    console.line(f"  data params      {files.data_params}")
    console.line(f"  hyper params     {files.hyper_params}")
    return {k: str(v) if isinstance(v, Path) else v for k, v in files.__dict__.items()}


def cmd_info(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    from cnn_tui.core.backend import info

    facts = info()
    rows = [
        ("cnn-tui", facts["cnn_tui"]), ("python", facts["python"]), ("keras", facts["keras"]),
        ("backend", f"{facts['backend']} {facts['backend_version'] or ''}".strip()),
        ("device", facts["device"]), ("cpu", f"{facts['cpu']} ({facts['cpu_count']} cores)"),
        ("gpus", ", ".join(facts["gpus"]) or "none visible to the backend"),
        *((name, version or "not installed") for name, version in facts["packages"].items()),
    ]
    console.table(make_table("cnn-tui info", ["", ""], rows))
    return facts


def _summary_result(net: NetModel) -> dict[str, Any]:
    totals = net.totals()
    return {
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
    console.table(make_table('Model: "sequential"', ["Layer (type)", "Output Shape", "Param #"], rows, right=[2]))
    t = net.totals()
    console.line(f"Total params: {t.total:,} ({readable_size(t.total_bytes)})")
    console.line(f"Trainable params: {t.trainable:,} ({readable_size(t.trainable_bytes)})")
    console.line(f"Non-trainable params: {t.non_trainable:,} ({readable_size(t.non_trainable_bytes)})")


def cmd_summary(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    data, hyper = _load_params(args, console)
    net = jobs.new_model(data, hyper)
    print_summary(console, net)
    return _summary_result(net)


# ---------------------------------------------------------------- train


def _train(args: Args, console: CliConsole, stop: threading.Event, data: DataParams, hyper: HyperParams,
           images: ImageSet, run: Run, validate: float | None) -> tuple[NetModel, dict[str, Any]]:
    net = jobs.new_model(data, hyper, images)
    config = hyper.first()
    console.info(f"training: {config.epochs} epochs, batch {config.batch_size}, init_rate {config.init_rate:g}"
                 + (f", {validate:.0%} held out for validation" if validate else ""))
    with console.progress("training"):
        outcome = jobs.train_run(net, images, data, hyper, validate=validate, run=run, emit=console.emit, stop=stop)
    result = outcome.result
    final = {k: v[-1] for k, v in result.history.items() if v and k != "seconds"}
    summary = {
        "run_dir": str(run.path), "status": result.status, "message": result.message,
        "epochs_done": result.epochs_done, "final": final, "seconds": round(result.seconds, 2),
        "images_per_second": round(result.images_per_second, 1),
        "files": {k: str(v) for k, v in outcome.files.items()}, "skipped": _skipped(images),
    }
    rows = [(str(r["epoch"]), *(r.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")), r.get("seconds"))
            for r in result.history_rows()]
    console.table(make_table("Training history", ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"],
                             rows, right=[1, 2, 3, 4, 5]))
    for name, path in outcome.files.items():
        console.line(f"  {name:<8} {path}")
    if outcome.save_error:
        summary["save_error"] = outcome.save_error
        raise UserError(f"training ended ({result.status}) but its results could not all be saved: {outcome.save_error}")
    if result.status == "stopped":
        raise Stopped(f"{result.message}; model and history saved in {run.path}", summary)
    if result.status == "failed":
        raise Failed(f"{result.message} (run folder {run.path})", summary)
    return net, summary


def cmd_train(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    data, hyper = _load_params(args, console)
    images = _load(console, "training set", jobs.load_training_set, data=data, stop=stop)
    run = Run.create(_results_parent(args, data), "train", command=_command_line(args))
    console.info(f"run folder: {run.path}")
    _, summary = _train(args, console, stop, data, hyper, images, run, args.validate)
    return summary


# ---------------------------------------------------------------- evaluate, predict, classify


def _evaluate(console: CliConsole, stop: threading.Event, net: NetModel, data: DataParams, run: Run,
              *, confusion: bool, train_names: list[str] | None = None) -> dict[str, Any]:
    net.check_fits(num_classes=data.num_classes, image_size=data.image_size, what="data params")
    try:
        test = _load(console, "test set", jobs.load_test_set, data=data, class_names=train_names or net.class_names,
                     channels=net.channels, stop=stop)
    except UserError:
        run.finish("failed", "the test set could not be loaded")
        raise
    with console.progress("predicting"):
        outcome = jobs.evaluate_run(net, test, run=run, data=data, confusion=confusion, emit=console.emit, stop=stop)
    ev = outcome.evaluation
    auc = ev.roc_auc()
    rows = [("accuracy", ev.accuracy), ("loss", ev.loss), ("test images", ev.samples)]
    if auc is not None:
        rows.append(("ROC AUC" + (" (one-vs-rest, macro)" if ev.probabilities.shape[1] > 2 else ""), auc))
    console.table(make_table("Evaluation", ["metric", "value"], rows, right=[1]))
    result: dict[str, Any] = {"run_dir": str(run.path), **ev.summary(), "files": {k: str(v) for k, v in outcome.files.items()},
                              "skipped": _skipped(test)}
    if confusion:
        matrix = ev.confusion()
        names = test.class_names
        console.table(make_table("Confusion matrix (rows: true class, columns: predicted)", ["true \\ pred", *names],
                                 [(n, *map(int, matrix[i])) for i, n in enumerate(names)], right=range(1, len(names) + 1)))
        report = ev.report()
        console.table(make_table("Per-class report", ["class", "precision", "recall", "f1", "support"],
                                 [(r.label, r.precision, r.recall, r.f1, r.support) for r in report], right=[1, 2, 3, 4]))
        result.update(class_names=names, confusion_matrix=matrix.tolist(), report=[r.__dict__ for r in report])
    for name, path in outcome.files.items():
        console.line(f"  {name:<14} {path}")
    return result


def _load_model(path: str) -> NetModel:
    return NetModel.load(path)


def cmd_evaluate(args: Args, console: CliConsole, stop: threading.Event, *, confusion: bool = False) -> dict[str, Any]:
    data, _ = _load_params(args, console, hyper=False)
    net = _load_model(args.model)
    run = Run.create(_results_parent(args, data), "predict" if confusion else "evaluate", command=_command_line(args))
    try:
        return _evaluate(console, stop, net, data, run, confusion=confusion)
    except TaskStopped as exc:
        raise Stopped(str(exc), {"run_dir": str(run.path)}) from None


def cmd_predict(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    return cmd_evaluate(args, console, stop, confusion=True)


def cmd_classify(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    from cnn_tui.core.evaluation import classify_files

    net = _load_model(args.model)
    results = classify_files(net, args.images, top_k=args.top)
    rows = []
    for r in results:
        if r.error:
            rows.append((r.path, "unreadable", r.error))
        else:
            rows.append((r.path, r.top[0][0], "  ".join(f"{name} {p:.1%}" for name, p in r.top)))
    console.table(make_table("Classification", ["image", "class", f"top {args.top}"], rows))
    out = {"model": args.model, "results": [{"path": r.path, "top": r.top, "error": r.error} for r in results]}
    if all(r.error for r in results):
        raise UserError(f"none of the {len(results)} file(s) could be read as an image ({results[0].error})")
    return out


# ---------------------------------------------------------------- tune


def cmd_tune(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    from cnn_tui.core.tuning import plan_search

    data, hyper = _load_params(args, console)
    images = _load(console, "training set", jobs.load_training_set, data=data, stop=stop)
    plan = plan_search(hyper, samples=min(len(images), args.max_samples), strategy=args.strategy, cv=args.cv,
                       n_iter=args.n_iter, seed=data.seed)
    console.info(f"tuning ({args.strategy}): {len(plan.candidates)} combination(s) x {args.cv} folds = {plan.fits} fits "
                 f"on {plan.samples:,} images" + (f"; tuned fields: {', '.join(plan.columns)}" if plan.columns else ""))
    if not plan.columns:
        console.warn("no hyper field holds more than one value: cross-validating the single combination")
    if len(plan.candidates) > LARGE_GRID:
        console.warn(f"a large grid ({len(plan.candidates)} combinations): consider --strategy random or halving")
    run = Run.create(_results_parent(args, data), "tune", command=_command_line(args))
    console.info(f"run folder: {run.path}")
    with console.progress("tuning"):
        outcome = jobs.tune_run(images, data, hyper, run=run, strategy=args.strategy, cv=args.cv, n_iter=args.n_iter,
                                max_samples=args.max_samples, jobs=args.jobs, emit=console.emit, stop=stop)
    result = outcome.result
    table = result.table()
    columns = result.columns
    kind = {"grid": "Grid", "random": "Random", "halving": "Successive-halving"}[args.strategy]
    title = f"{kind} search results" if result.status == "finished" else f"Partial {kind.lower()} search results"

    def percent(value: float, folds: int) -> str:
        return f"{value * 100:.2f}" if folds else "-"

    rows = [(*(str(r[c]) for c in columns), percent(r["mean_accuracy"], r["folds"]),
             percent(r["std_accuracy"], r["folds"]), r["mean_loss"], f"{r['folds']}/{args.cv}",
             r["reason"] or "") for r in table]
    console.table(make_table(title, [*columns, "mean acc %", "std %", "mean loss", "folds", "note"], rows,
                             right=range(len(columns), len(columns) + 4)))
    best = result.best()
    if outcome.best_hyper is not None:
        console.line(f"best: {', '.join(f'{k}={v}' for k, v in best.items()) or '(single combination)'}"
                     f" -> {outcome.files['best']}")
    for name, path in outcome.files.items():
        console.line(f"  {name:<8} {path}")
    summary = {
        "run_dir": str(run.path), "status": result.status, "message": result.message, "strategy": args.strategy,
        "cv": args.cv, "columns": columns, "fits_planned": plan.fits, "folds": result.rows, "table": table,
        "best": best, "seconds": round(result.seconds, 2), "files": {k: str(v) for k, v in outcome.files.items()},
    }
    if result.status == "stopped":
        raise Stopped(f"{result.message}; partial results saved in {run.path}", summary)
    if result.status == "failed":
        raise Failed(result.message, summary)
    return clean_json(summary)


# ---------------------------------------------------------------- pipeline


def cmd_pipeline(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    """The main job on one dataset: summary, training with validation, evaluation, confusion matrix."""
    import time

    started = time.perf_counter()
    data, hyper = _load_params(args, console)
    images = _load(console, "training set", jobs.load_training_set, data=data, stop=stop)
    console.table(_counts_table(images, "Training images per class"))
    run = Run.create(_results_parent(args, data), "pipeline", command=_command_line(args))
    console.info(f"run folder: {run.path}")
    preview = jobs.new_model(data, hyper, images)
    print_summary(console, preview)
    net, training = _train(args, console, stop, data, hyper, images, run, args.validate)
    try:  # evaluation results go into the same run folder as the training's
        evaluation = _evaluate(console, stop, net, data, run, confusion=True, train_names=images.class_names)
    except TaskStopped as exc:
        raise Stopped(str(exc), {"run_dir": str(run.path), "training": training}) from None
    seconds = time.perf_counter() - started
    console.line(f"test accuracy {evaluation['accuracy']:.2%} in {seconds:.1f}s; results in {run.path}")
    return clean_json({"run_dir": str(run.path), "summary": _summary_result(net), "training": training,
                       "evaluation": evaluation, "seconds": round(seconds, 2),
                       "test_accuracy": evaluation["accuracy"]})
