"""Hyper-parameter search: scikeras ``KerasClassifier`` inside scikit-learn's searches.
This module plans and runs the search; ``search_fits`` holds what happens inside each fit.

How the pieces fit:
- The search sees ``X`` as a column of row indices into the image array, and
  the classifier's feature encoder turns indices into images. scikit-learn then
  copies only indices when it splits folds, and ``clone`` never deep-copies
  pixels (``SearchData`` deep-copies to itself).
- Folds come from an explicit ``StratifiedKFold(shuffle=True)``: scikeras 0.13
  is not recognised as a classifier by scikit-learn >= 1.7, and a plain ``cv=3``
  would then use unshuffled ``KFold`` on class-ordered data. ``CnnClassifier``
  also declares classifier tags, for halving's stratified subsampling.
- Each fit's result is recorded by the scorer the moment the fold finishes
  (params, fold, accuracy, log loss, fit seconds), not parsed from output.
- A Keras callback counts batches for progress and ends the fit within one batch
  when stop is requested; the search then raises ``TaskStopped`` and the folds
  recorded so far are the partial result.
- A fit that fails (out of memory, NaN loss, anything) is recorded as failed
  with its reason and the search goes on, as KerasTuner fails one trial.
- With ``jobs > 1`` fits run in joblib worker processes: rows travel through an
  append-only JSONL file the parent tails, and stop through a flag file.
"""

from __future__ import annotations

import gc
import math
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.dataset import ImageSet, TaskStopped
from cnn_tui.core.errors import DatasetError, ParamsError
from cnn_tui.core.events import Emit, ignore
from cnn_tui.core.params import HYPER_NAMES, HyperParams
from cnn_tui.core.search_fits import (
    LIVE,
    DoneFits,
    FileWatcher,
    LiveContext,
    SearchData,
    build_network,
    classifier_class,
    score_fold,
)

STRATEGIES = ("grid", "random", "halving")
HALVING_FACTOR = 3
MAX_COMBINATIONS = 1_000


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
    from cnn_tui.core.environment import env_int

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


def plan_search(
    hyper: HyperParams, *, samples: int, strategy: str = "grid", cv: int = 3, n_iter: int = 10, seed: int = 42,
    max_combinations: int | None = None, classes: int = 2,
) -> TuningPlan:
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if strategy not in STRATEGIES:
        raise ParamsError(f"unknown tuning strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if cv < 2:
        raise ParamsError(f"cross-validation needs at least 2 folds, got {cv}")
    check_grid_size(hyper, strategy, max_combinations)
    grid = hyper.grid()
    if strategy == "random":
        count = min(n_iter, hyper.combination_count())
        # ParameterSampler draws indices into the grid and builds only those combinations
        candidates = [dict(c) for c in ParameterSampler(grid, count, random_state=seed)] if grid else [{}]
    else:
        candidates = [dict(c) for c in ParameterGrid(grid)]
    base = hyper.first()
    fold_train = samples * (cv - 1) / cv

    def batches_for(candidate: dict[str, Any], n_train: float) -> int:
        config = base.replace(**candidate)
        return config.epochs * max(1, math.ceil(n_train / config.batch_size))

    if strategy != "halving":
        fits = len(candidates) * cv
        batches = sum(batches_for(c, fold_train) for c in candidates) * cv
    else:
        fits, batches = 0, 0
        for alive, resources in halving_rounds(len(candidates), samples, cv, classes):
            fits += alive * cv
            batches += sum(batches_for(c, resources * (cv - 1) / cv) for c in candidates[:alive]) * cv
    return TuningPlan(strategy, candidates, cv, samples, fits, batches)


def halving_rounds(candidates: int, samples: int, cv: int, classes: int) -> list[tuple[int, int]]:
    """(combinations, images) of each round, as scikit-learn's successive halving with
    ``min_resources="exhaust"`` runs them: on little data it runs fewer rounds than the
    combinations would need (12 images and 9 combinations: one round of 9)."""
    required = 1 + math.floor(math.log(candidates, HALVING_FACTOR)) if candidates > 1 else 1
    smallest = max(cv * 2 * classes, samples // HALVING_FACTOR ** (required - 1))
    if smallest > samples:
        return [(candidates, samples)]  # scikit-learn refuses to run this; the search reports why
    possible = 1 + math.floor(math.log(samples // smallest, HALVING_FACTOR))
    rounds, alive = [], candidates
    for i in range(min(possible, required)):
        rounds.append((alive, min(int(HALVING_FACTOR**i * smallest), samples)))
        alive = math.ceil(alive / HALVING_FACTOR)
    return rounds


# ---------------------------------------------------------------- result


@dataclass
class TuningResult:
    status: str  # finished | stopped | failed
    message: str
    plan: TuningPlan
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per fold, in the order they finished
    seconds: float = 0.0

    @property
    def columns(self) -> list[str]:
        return self.plan.columns

    def table(self) -> list[dict[str, Any]]:
        """One row per combination: mean/std accuracy and mean loss over its folds, best first."""
        return summarize(self.rows, self.columns)

    def best(self) -> dict[str, Any] | None:
        for row in self.table():
            if not math.isnan(row["mean_accuracy"]):
                return {c: row[c] for c in self.columns}
        return None


def same_round(samples: int, other: int) -> bool:
    """Whether two fits trained in the same round: the folds of one round differ by a few
    images (13 and 14 of 27), halving's rounds by a factor of HALVING_FACTOR."""
    return max(samples, other) < 1.5 * min(samples, other) if min(samples, other) > 0 else samples == other


def summarize(rows: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        # successive halving scores a combination again on more data: the last round counts
        groups.setdefault(tuple(row[c] for c in columns), []).append(row)
    table = []
    for key, folds in groups.items():
        top = max(f.get("samples", 0) for f in folds)
        folds = [f for f in folds if same_round(f.get("samples", 0), top)]
        ok = [f for f in folds if f["status"] == "ok"]
        acc = [f["accuracy"] for f in ok]
        loss = [f["loss"] for f in ok]
        table.append(
            {
                **dict(zip(columns, key)),
                "mean_accuracy": float(np.mean(acc)) if acc else math.nan,
                "std_accuracy": float(np.std(acc)) if acc else math.nan,
                "mean_loss": float(np.mean(loss)) if loss else math.nan,
                "folds": len(ok),
                "failed": len(folds) - len(ok),
                "samples": top,
                "reason": next((f["reason"] for f in folds if f["status"] != "ok"), ""),
            }
        )
    # halving's finalists (scored on the most data) rank above combinations dropped earlier
    table.sort(key=lambda r: (-r["samples"], math.isnan(r["mean_accuracy"]), -np.nan_to_num(r["mean_accuracy"], nan=-1.0), -r["folds"]))
    return table


# ---------------------------------------------------------------- running a search


def tune(
    images: ImageSet,
    hyper: HyperParams,
    *,
    strategy: str = "grid",
    cv: int = 3,
    n_iter: int = 10,
    max_samples: int = 10_000,
    seed: int = 42,
    jobs: int = 1,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    work_dir: Path | None = None,
    done_rows: list[dict[str, Any]] | None = None,
) -> TuningResult:
    """Run the search; return every fold recorded, also when stopped (status ``stopped``).
    ``done_rows`` (from a stopped search of the same plan) are recorded again, not refitted."""
    from joblib import parallel_config
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold

    from cnn_tui.core.pool import ignore_interrupts, search_backend
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    subset = images.subset(max_samples, seed)
    smallest = min(subset.counts())
    if smallest < cv:
        capped = (f" of the {len(subset):,} images the max-samples cap ({max_samples:,}) keeps; raise it"
                  if len(subset) < len(images) else "")
        raise DatasetError(f"{cv}-fold cross-validation needs at least {cv} images in every class; the smallest class "
                           f"has {smallest}{capped}")
    plan = plan_search(hyper, samples=len(subset), strategy=strategy, cv=cv, n_iter=n_iter, seed=seed,
                       classes=subset.num_classes)
    token = uuid.uuid4().hex[:12]
    folder = work_dir or Path(tempfile.mkdtemp(prefix="cnn-tui-tune-"))
    folder.mkdir(parents=True, exist_ok=True)
    context = LiveContext(token, folder, plan, emit, stop, jobs)
    LIVE[token] = context

    estimator = classifier_class()(
        model=build_network,
        loss=None,  # the network is compiled by build_network with the loss its hyper params ask for
        verbose=0,
        data=SearchData(subset.x),
        token=token,
        folder=str(folder),
        columns=plan.columns,
        done=DoneFits(done_rows, plan.columns) if done_rows else None,
        seed=seed,
        image_size=subset.image_size,
        channels=subset.channels,
        num_classes=subset.num_classes,
        **hyper.first().as_dict(),
    )
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    # return_train_score=False: the scorer records validation folds only (halving defaults to True)
    common = dict(scoring=score_fold, cv=folds, refit=False, error_score="raise", n_jobs=jobs, verbose=0,
                  return_train_score=False)
    grid = hyper.grid()
    if strategy == "grid":
        search = GridSearchCV(estimator, grid or [{}], **common)
    elif strategy == "random":
        search = RandomizedSearchCV(estimator, grid or {}, n_iter=len(plan.candidates), random_state=seed, **common)
    else:
        search = HalvingGridSearchCV(
            estimator, grid or {}, factor=HALVING_FACTOR, resource="n_samples", min_resources="exhaust",
            random_state=seed, **common,
        )

    indices = np.arange(len(subset)).reshape(-1, 1)
    watcher = FileWatcher(context) if jobs > 1 else None
    started = time.perf_counter()
    status, message = "finished", ""
    # Each fit's clear_session() collects garbage; a full pass over every object TensorFlow and
    # the app made took ~0.8 s on 2 cores. Frozen, those are skipped and only what the search
    # itself allocates is walked.
    others_froze = gc.get_freeze_count() > 0  # e.g. the TUI after importing Keras: keep theirs frozen
    gc.collect()
    gc.freeze()
    try:
        with warnings.catch_warnings(), parallel_config(backend=search_backend(), initializer=ignore_interrupts):
            warnings.simplefilter("ignore")  # sklearn and scikeras chatter; failures are in the rows
            search.fit(indices, subset.y)
        message = f"{len(plan.candidates)} combinations x {cv} folds done"
        if strategy == "halving":
            rounds = len(halving_rounds(len(plan.candidates), plan.samples, cv, subset.num_classes))
            message = f"{len(context.rows)} fits in {rounds} round(s) of halving over {len(plan.candidates)} combinations"
    except TaskStopped:
        status, message = "stopped", f"stopped by the user after {len(context.rows)} of {plan.fits} fits"
    except ValueError as exc:
        status, message = "failed", f"the search could not run: {exc}"
    finally:
        if not others_froze:
            gc.unfreeze()
        if watcher:
            watcher.close()
        LIVE.pop(token, None)
        if work_dir is None:
            for path in folder.iterdir():
                path.unlink(missing_ok=True)
            folder.rmdir()
    failed = sum(1 for r in context.rows if r["status"] != "ok")
    if failed and status == "finished":
        message += f"; {failed} fit(s) failed (see the reason column)"
    return TuningResult(status, message, plan, context.rows, time.perf_counter() - started)


def best_hyper_params(hyper: HyperParams, best: dict[str, Any]) -> HyperParams:
    """The hyper params with every tuned field set to the best combination's single value."""
    return hyper.with_values({name: best[name] for name in HYPER_NAMES if name in best})
