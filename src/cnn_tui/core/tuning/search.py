"""Hyper-parameter search: a strategy proposes trials, an executor runs them, and this
module plans the search, records each trial as it ends, and ranks the combinations.

How the pieces fit (KerasTuner's oracle / tuner / trial):
- ``core.tuning.strategies``: the combinations (scikit-learn's ParameterGrid / ParameterSampler),
  the folds (StratifiedKFold, shuffled: images arrive ordered by class) and the rounds
  (grid and random: one; halving over images; hyperband over epochs).
- ``core.tuning.executors``: where trials run (here, worker processes, a Dask cluster).
- ``core.tuning.trials``: one trial, a typed value (params, fold, epochs done, status: finished /
  pruned / failed / stopped, scores, reason), fitted by the scikeras ``CnnClassifier`` that
  trains with ``training.train``, as ``cnn-tui train`` does.
- A trial that fails (out of memory, NaN loss, anything) is recorded with its reason and the
  search goes on, as KerasTuner fails one trial; a stop ends the running fits within a batch
  and the trials recorded so far are the partial result; a resumed search keeps them.
"""

from __future__ import annotations

import gc
import json
import math
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.environment import env_int
from cnn_tui.core.errors import DatasetError, ParamsError
from cnn_tui.core.events import ROW_FIELDS, BatchProgress, Emit, FoldEnd, Notice, TuningProgress, ignore
from cnn_tui.core.params.fields import HYPER_NAMES
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training.intervals import within_spread_of_best
from cnn_tui.core.tuning.adaptive import field_importance, tpe_rounds
from cnn_tui.core.tuning.executors import make_executor
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.strategies import (
    STRATEGIES,
    SearchSpace,
    candidates_for,
    estimate,
    halving_plan,
    hyperband_plan,
    rounds_for,
)
from cnn_tui.core.tuning.trials import Trial, TrialSpec, fold_model_path, is_finished, trial_from_row, trial_key

PRUNERS = ("none", "median")
MAX_COMBINATIONS = 1_000
PROGRESS_INTERVAL = 0.1


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class TuningPlan:
    """What a search will do, known before it starts (for confirmation and progress)."""

    strategy: str
    candidates: list[dict[str, Any]]
    cv: int
    samples: int
    fits: int
    batches: int  # estimated for halving

    @property
    def columns(self) -> list[str]:
        return list(self.candidates[0]) if self.candidates else []


def combination_limit() -> int:
    """The largest grid a grid or halving search lists (CNN_TUI_MAX_COMBINATIONS raises it)."""
    return env_int("CNN_TUI_MAX_COMBINATIONS", MAX_COMBINATIONS, low=1) or MAX_COMBINATIONS


def check_grid_size(hyper: HyperParams, strategy: str, limit: int | None = None) -> None:
    """Refuse, before anything is listed, a grid too large to search combination by combination
    (10 values in each of 9 fields are 10^9 combinations: listing them alone fills the memory)."""
    limit = limit or combination_limit()
    count = hyper.combination_count()  # a product of list lengths: nothing is listed
    if strategy != "random" and count > limit:
        fields = " x ".join(f"{len(v)} {k}" for k, v in hyper.grid().items())
        raise ParamsError(
            f"the tuning grid has {count:,} combinations ({fields}), more than the limit of {limit:,}: "
            "search a sample with the random strategy, use fewer values, or raise the limit "
            "(CNN_TUI_MAX_COMBINATIONS)", path=hyper.source)


def check_strategy(hyper: HyperParams, strategy: str) -> None:
    """Refuse a search its strategy cannot make sense of: TPE learns which values of the list-valued
    fields score best, so it needs at least one such field."""
    if strategy == "tpe" and not hyper.grid():
        raise ParamsError("--strategy tpe learns which values of the tuned fields score best, but no hyper field "
                          "holds more than one value: give one a list of values (e.g. \"num_units\": [32, 64])",
                          path=hyper.source)


def plan_search(
    hyper: HyperParams, options: SearchOptions, *, samples: int, classes: int = 2, labels: np.ndarray | None = None,
    max_combinations: int | None = None,
) -> TuningPlan:
    """What a search will do, before it starts: its candidates (a random search's drawn with the
    options' seed) and the fits and batches they take. ``labels`` (the images' classes) make the
    estimate exact; without them a balanced set of ``samples`` images is assumed."""
    strategy, cv, seed = options.strategy, options.cv, options.seed
    if strategy not in STRATEGIES:
        raise ParamsError(f"unknown tuning strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if cv < 2:
        raise ParamsError(f"cross-validation needs at least 2 folds, got {cv}")
    check_grid_size(hyper, strategy, max_combinations)
    check_strategy(hyper, strategy)
    candidates = candidates_for(hyper.grid(), strategy, options.n_iter, seed)
    y = labels if labels is not None else np.arange(samples) % max(classes, 1)
    space = SearchSpace(candidates, hyper.first().as_dict(), y, cv, seed, n_iter=options.n_iter)
    fits, images = estimate(strategy, space)
    batch = np.mean([int(space.config(c)["batch_size"]) for c in candidates])
    return TuningPlan(strategy, candidates, cv, samples, fits, max(1, math.ceil(images / batch)))


def halving_rounds(candidates: int, samples: int, cv: int, classes: int) -> list[tuple[int, int]]:
    """(combinations, images) of each round of ``halving``."""
    return halving_plan(candidates, samples, cv, classes)


def round_plan(plan: TuningPlan, classes: int, epochs: int) -> list[tuple[int, int]]:
    """(combinations, images or epochs) of each round, for the strategies that have rounds."""
    if plan.strategy == "halving":
        return halving_plan(len(plan.candidates), plan.samples, plan.cv, classes)
    if plan.strategy == "hyperband":
        return hyperband_plan(len(plan.candidates), epochs)
    return [(len(plan.candidates), epochs)]


# ---------------------------------------------------------------- result


@dataclass
class TuningResult:
    status: str  # finished | stopped | failed
    message: str
    plan: TuningPlan
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per fold, in the order they finished
    seconds: float = 0.0
    importance: dict[str, float] = field(default_factory=dict)  # tuned field -> its share (adaptive.field_importance)

    @property
    def columns(self) -> list[str]:
        return self.plan.columns

    def table(self) -> list[dict[str, Any]]:
        """One row per combination: mean/std accuracy and mean loss over its folds, best first."""
        return summarize(self.rows, self.columns, self.plan.cv)

    def best(self) -> dict[str, Any] | None:
        for row in self.table():
            if not math.isnan(row["mean_accuracy"]):
                return {c: row[c] for c in self.columns}
        return None


def summarize(rows: list[dict[str, Any]], columns: list[str], cv: int | None = None) -> list[dict[str, Any]]:
    """One row per combination, scored on its last round (halving and hyperband score the
    combinations they keep again, on more images or epochs), best first. With ``cv``, a
    combination with fewer finished folds (stopped, pruned or failed ones) ranks after the
    complete ones: one lucky fold of a stopped round is not a best."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[c] for c in columns), []).append(row)
    table = []
    for key, folds in groups.items():
        top = max(_rung(f) for f in folds)
        folds = [f for f in folds if _rung(f) == top] if any("rung" in f for f in folds) else \
            [f for f in folds if _same_round(f.get("samples", 0), top)]
        ok = [f for f in folds if is_finished(f)]
        acc = [f["accuracy"] for f in ok]
        loss = [f["loss"] for f in ok]
        pruned = sum(1 for f in folds if f.get("status") == "pruned")
        table.append(
            {
                **dict(zip(columns, key)),
                "mean_accuracy": float(np.mean(acc)) if acc else math.nan,
                "std_accuracy": float(np.std(acc)) if acc else math.nan,
                "mean_loss": float(np.mean(loss)) if loss else math.nan,
                "folds": len(ok),
                "failed": sum(1 for f in folds if f.get("status") in ("failed", "stopped")),
                "pruned": pruned,
                "samples": max(f.get("samples", 0) for f in folds),
                "epochs_done": max(int(f.get("epochs_done") or 0) for f in folds),
                "rung": top,
                "reason": next((f["reason"] for f in folds if not is_finished(f) and f.get("reason")),
                               next((f["reason"] for f in folds if f.get("reason")), "")),  # out of memory
            }
        )
    # the last round's combinations first; a combination with a pruned or failed fold after complete ones
    table.sort(key=lambda r: (cv is not None and r["folds"] < cv, -r["rung"], math.isnan(r["mean_accuracy"]),
                              r["pruned"] > 0, -np.nan_to_num(r["mean_accuracy"], nan=-1.0), -r["folds"]))
    return table


def near_best(table: list[dict[str, Any]]) -> list[bool]:
    """For each row of ``summarize``'s table, whether the folds cannot tell it from the best (first)
    row: its mean ± std overlaps the best's. Only rows scored like the best (the same round, all its
    folds) are compared; the best row itself counts as near."""
    if not table:
        return []
    top = table[0]
    comparable = [r.get("rung") == top.get("rung") and r["folds"] == top["folds"] for r in table]
    means = [r["mean_accuracy"] if ok else math.nan for r, ok in zip(table, comparable)]
    return within_spread_of_best(means, [r["std_accuracy"] for r in table])


def _rung(row: dict[str, Any]) -> int:
    if "rung" in row:
        return int(row["rung"] or 0)
    return int(row.get("samples", 0))  # rows written before rounds were numbered: halving grew the images


def _same_round(samples: int, other: int) -> bool:
    """For rows without a round number: the folds of one round differ by a few images (13 and
    14 of 27), halving's rounds by a factor of three."""
    return max(samples, other) < 1.5 * min(samples, other) if min(samples, other) > 0 else samples == other


# ---------------------------------------------------------------- running a search


def search_subset(images: ImageSet, options: SearchOptions) -> ImageSet:
    """The images a search runs on: at most ``max_samples``, every class kept in proportion."""
    return images.subset(options.max_samples, options.seed)


def tune(
    images: ImageSet,
    hyper: HyperParams,
    options: SearchOptions,
    *,
    plan: TuningPlan | None = None,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    work_dir: Path | None = None,
    done_rows: list[dict[str, Any]] | None = None,
    executor: Any = None,
    log_dir: Path | None = None,
) -> TuningResult:
    """Run the search; return every trial recorded, also when stopped (status ``stopped``).
    ``plan``: the search's plan as its caller announced it (``plan_search`` of ``search_subset``
    with these options); without it the search is planned here. ``done_rows`` (from a stopped
    search of the same plan) are recorded again, not refitted."""
    strategy, cv, seed = options.strategy, options.cv, options.seed
    if options.prune not in PRUNERS:
        raise ParamsError(f"unknown pruning {options.prune!r}; choose one of {', '.join(PRUNERS)}")
    if options.ensemble_top and options.cluster:
        raise ParamsError(ENSEMBLE_ON_CLUSTER)
    subset = search_subset(images, options)
    smallest = min(subset.counts())
    if smallest < cv:
        capped = (f" of the {len(subset):,} images the max-samples cap ({options.max_samples:,}) keeps; raise it"
                  if len(subset) < len(images) else "")
        raise DatasetError(f"{cv}-fold cross-validation needs at least {cv} images in every class; the smallest class "
                           f"has {smallest}{capped}")
    if plan is None:
        plan = plan_search(hyper, options, samples=len(subset), classes=subset.num_classes, labels=subset.y)
    elif (plan.strategy, plan.cv, plan.samples) != (strategy, cv, len(subset)):
        raise ValueError(f"the plan ({plan.strategy}, {plan.cv} folds, {plan.samples} images) is not of this search "
                         f"({strategy}, {cv} folds, {len(subset)} images)")
    stop = stop or threading.Event()
    folder = work_dir or Path(tempfile.mkdtemp(prefix="cnn-tui-tune-"))
    folder.mkdir(parents=True, exist_ok=True)
    space = SearchSpace(plan.candidates, hyper.first().as_dict(), subset.y, cv, seed,
                        prune=options.prune == "median", min_epochs=options.min_epochs,
                        log_dir=str(log_dir) if log_dir and not options.cluster else None, groups=subset.groups,
                        n_iter=options.n_iter, replay=_tried(done_rows or []),
                        save_folds=options.ensemble_top > 0)
    record = Recorder(plan, emit)
    executor = executor or make_executor(options, stop=stop, emit=record.fit_event)
    kept = {_done_key(row): row for row in done_rows or []}
    started = time.perf_counter()
    status, message = "finished", ""
    # Each fit's clear_session() collects garbage; a full pass over every object TensorFlow and
    # the app made took ~0.8 s on 2 cores. Frozen, those are skipped and only what the search
    # itself allocates is walked.
    others_froze = gc.get_freeze_count() > 0  # e.g. the TUI after importing Keras: keep theirs frozen
    gc.collect()
    gc.freeze()
    try:
        executor.start(subset.x, subset.y, folder)
        rounds = tpe_rounds(space) if strategy == "tpe" else rounds_for(strategy, space)
        specs = next(rounds)
        while True:
            ended: list[Trial] = []
            todo = []
            for spec in specs:
                row = kept.get(_done_key(spec))
                if row is not None:  # finished before the search was stopped: not trained again
                    trial = trial_from_row(spec, row)
                    ended.append(trial)
                    record.trial(trial)
                else:
                    todo.append(spec)

            def on_trial(trial: Trial, ended: list[Trial] = ended) -> None:
                ended.append(trial)
                record.trial(trial)

            executor.run(todo, on_trial, record.prepare)
            if stop.is_set():
                raise _Stopped
            try:
                specs = rounds.send(ended)
            except StopIteration:
                break
        message = f"{len(plan.candidates)} combinations x {cv} folds done"
        if strategy in ("halving", "hyperband"):
            rungs = 1 + max((int(r.get("rung") or 0) for r in record.rows), default=0)
            over = "images" if strategy == "halving" else "epochs"
            message = (f"{len(record.rows)} fits in {rungs} round(s) of {strategy} over {over}, "
                       f"{len(plan.candidates)} combinations")
        if strategy == "tpe":
            tried = len({_done_key(r)[0] for r in record.rows})
            message = f"{tried} of {len(plan.candidates)} combinations proposed by TPE x {cv} folds done"
    except _Stopped:
        status, message = "stopped", f"stopped by the user after {record.finished()} of {plan.fits} fits"
    except ValueError as exc:
        status, message = "failed", f"the search could not run: {exc}"
    finally:
        if not others_froze:
            gc.unfreeze()
        executor.close()
        if work_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    rows = [r for r in record.rows if r["status"] != "stopped"]  # a stopped fit runs again on resume
    failed = sum(1 for r in rows if r["status"] == "failed")
    pruned = sum(1 for r in rows if r["status"] == "pruned")
    if pruned and status == "finished":
        message += f"; {pruned} fit(s) pruned"
    if failed and status == "finished":
        message += f"; {failed} fit(s) failed (see the reason column)"
    result = TuningResult(status, message, plan, rows, time.perf_counter() - started)
    result.importance = field_importance(result.table(), plan.columns, cv, seed)
    return result


class _Stopped(Exception):
    pass


def _tried(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The combinations of a stopped search's rows, in the order they were first recorded."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        params = {k: v for k, v in row.items() if k not in ROW_FIELDS}
        seen.setdefault(json.dumps(params, sort_keys=True), params)
    return list(seen.values())


def _done_key(item: Any) -> tuple:
    """A trial's identity across a stop and a resume: its params, fold rows and round."""
    if isinstance(item, TrialSpec):
        return json.dumps(item.params, sort_keys=True), item.split, item.rung
    params = {k: v for k, v in item.items() if k not in ROW_FIELDS}
    return json.dumps(params, sort_keys=True), item.get("split"), int(item.get("rung") or 0)


class Recorder:
    """Keeps the rows, tells the listener (FoldEnd, TuningProgress), and knows what pruning
    compares with: every validation curve recorded so far."""

    def __init__(self, plan: TuningPlan, emit: Emit) -> None:
        self.plan = plan
        self.emit = emit
        self.rows: list[dict[str, Any]] = []
        self.curves: dict[int, list[float]] = {}
        self.lock = threading.Lock()
        self.started = time.perf_counter()
        self.batches_done = 0  # of the trials ended
        self.running = 0  # batches of the trial running here (in-process executor)
        self.running_from = 0  # the epoch that trial started at (a promoted trial goes on)
        self.last_emit = 0.0

    def finished(self) -> int:
        return sum(1 for r in self.rows if r["status"] != "stopped")

    def prepare(self, spec: TrialSpec) -> TrialSpec:
        self.running_from = spec.initial_epoch
        if spec.prune_after is None:
            return spec
        with self.lock:
            return replace(spec, prune_after={k: list(v) for k, v in self.curves.items()})

    def trial(self, trial: Trial) -> None:
        spec = trial.spec
        batch = int(spec.config.get("batch_size") or 1)
        if trial.status == "stopped":  # not a result: it runs again on resume
            with self.lock:
                self.rows.append(trial.row())
            return
        with self.lock:
            for epoch, accuracy in enumerate(trial.curve, start=spec.initial_epoch + 1):
                self.curves.setdefault(epoch, []).append(accuracy)
            self.batches_done += max(1, math.ceil(len(spec.train_rows) / batch)) * max(0, spec.epochs - spec.initial_epoch)
            self.running = 0
            row = trial.row()
            self.rows.append(row)
        self.emit(FoldEnd(row, self.finished(), self.plan.fits))
        self._progress(time.perf_counter())

    def fit_event(self, event: Any) -> None:
        """Events of a fit running in this process: its batches count towards the search's; an
        executor's notices (a cluster's workers, an unencrypted connection) go to the listener."""
        if isinstance(event, Notice):
            self.emit(event)
            return
        if not isinstance(event, BatchProgress):
            return
        self.running = max(0, event.epoch - 1 - self.running_from) * event.batches + event.batch
        now = time.perf_counter()
        if now - self.last_emit >= PROGRESS_INTERVAL:
            self._progress(now)

    def _progress(self, now: float) -> None:
        self.last_emit = now
        done = self.batches_done + self.running
        total = max(self.plan.batches, done)
        elapsed = now - self.started
        eta = elapsed / done * (total - done) if done else None
        self.emit(TuningProgress(done, total, self.finished(), self.plan.fits, eta))


ENSEMBLE_ON_CLUSTER = ("--ensemble keeps each fold's model in the run folder, which a Dask cluster's workers do not "
                       "write to; run it without --cluster (--jobs N runs fits in parallel here)")


def ensemble_folds(result: TuningResult, work_dir: Path, top: int) -> list[tuple[dict[str, Any], list[Path]]]:
    """The ``top`` best combinations whose every fold finished, best first, each with the model files
    its folds saved (``TrialSpec.save_fold``; on its last round for halving and hyperband)."""
    chosen: list[tuple[dict[str, Any], list[Path]]] = []
    columns, cv = result.columns, result.plan.cv
    for row in result.table():
        if len(chosen) == top:
            break
        if math.isnan(row["mean_accuracy"]) or row["folds"] < cv:
            continue
        params = {c: row[c] for c in columns}
        index = next((i for i, c in enumerate(result.plan.candidates) if all(c.get(k) == params[k] for k in columns)),
                     None)
        if index is None:
            continue
        folds = sorted(int(r["fold"]) for r in result.rows if is_finished(r) and int(r.get("rung") or 0) == row["rung"]
                       and all(r.get(k) == params[k] for k in columns))
        paths = [fold_model_path(work_dir, trial_key(int(row["rung"]), index, fold)) for fold in folds]
        paths = [p for p in paths if p.exists()]
        if paths:
            chosen.append((params, paths))
    return chosen


def best_hyper_params(hyper: HyperParams, best: dict[str, Any]) -> HyperParams:
    """The hyper params with every tuned field set to the best combination's single value."""
    return hyper.with_values({name: best[name] for name in HYPER_NAMES if name in best})
