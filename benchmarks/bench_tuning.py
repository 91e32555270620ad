"""Tuning on the demo digits (1,437 training images at 16x16):

- a 12-fit grid (4 combinations x 3 folds, 3 epochs) run by each executor: in-process (ours
  against the seed's plain scikit-learn ``GridSearchCV`` over the same scikeras classifier),
  ``jobs=2`` worker processes, and a local Dask cluster (``cluster="local:2"``), in rotation;
  the RSS of every process involved (this one, the workers) after each fit;
- hyperband against the full grid on 16 combinations (4 learning rates x 4 filter counts),
  3 folds, 9 epochs: the time of each, and the quality of hyperband's pick measured in the full
  grid's table; on the digits, and on them at MNIST's size (28x28, shifted and rotated copies:
  5,748 images), where an epoch costs more than building a network; and on the digits with 27
  combinations (3 fields x 3 values) of 27 epochs, a search as people often run one;
- on a machine with a GPU: fits per minute with 1 and 2 fits at once on that one GPU.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from cnn_tui.core import backend
from cnn_tui.core.events import FoldEnd
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import steps
from cnn_tui.core.tuning import search as tuning
from cnn_tui.core.tuning.classifier import build_network, classifier_class
from cnn_tui.core.tuning.options import SearchOptions

# The seed's ten fields; the default architecture (seed_cnn: the seed's two convolutions).
BASE = {"init_rate": 0.02, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
        "num_units": 512, "momentum": 0.9, "drop_out": 0.2, "epochs": 3, "batch_size": 64}
GRID_4 = {"num_filters": [16, 32], "num_units": [128, 512]}  # 4 combinations x 3 folds = 12 fits
# Two fields that matter on the digits: 9 epochs of SGD at 0.001 leave the network under-trained,
# 4 filters leave it narrow; 16 combinations x 3 folds = 48 fits for the full grid.
GRID_16 = {"init_rate": [0.001, 0.003, 0.01, 0.03], "num_filters": [4, 8, 16, 32]}
# A search as people often run one: three fields of three values, 27 epochs: 27 combinations x 3
# folds = 81 fits for the full grid; hyperband runs 4 rounds (27 x 1 epoch, 9 x 3, 3 x 9, 1 x 27).
GRID_27 = {"init_rate": [0.003, 0.01, 0.03], "num_filters": [8, 16, 32], "drop_out": [0.1, 0.3, 0.5]}
EPOCHS_27 = 27
QUICK_GRID = {"init_rate": [0.001, 0.01, 0.03], "num_filters": [16]}  # 3 combinations: still 2 rounds
EPOCHS = 9
QUICK_EPOCHS = 3
CLUSTER = "local:2"


# ---------------------------------------------------------------- memory of a process tree


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of one process, from /proc (0 when it has gone)."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (default: this one): worker processes, a Dask cluster's
    nannies and workers, loky's resource tracker."""
    root = pid or os.getpid()
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields start after the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_mib() -> dict[int, float]:
    """RSS of this process and every process below it, by pid (shared libraries count in each)."""
    pids = [os.getpid(), *descendants()]
    return {pid: rss for pid in pids if (rss := rss_mib(pid)) > 0}


def growth(samples: list[dict[int, float]]) -> tuple[float, float, float]:
    """(first, last, growth in %) of the summed RSS, from after the first fit to after the last."""
    first, last = sum(samples[0].values()), sum(samples[-1].values())
    return first, last, (last - first) / first * 100 if first else math.nan


def most_grown(samples: list[dict[int, float]]) -> str:
    """The process that grew most (of those there from the first reading to the last)."""
    both = [pid for pid in samples[0] if pid in samples[-1]]
    if len(samples[-1]) < 2 or not both:
        return ""
    pid = max(both, key=lambda p: samples[-1][p] - samples[0][p])
    first, last = samples[0][pid], samples[-1][pid]
    return f"most grown: {'this process' if pid == os.getpid() else 'a child process'} {first:.0f} -> {last:.0f} MiB; "


def profile(samples: list[dict[int, float]]) -> str:
    """The summed RSS after a few of the fits, to tell a steady climb (a leak) from a settling."""
    picks = sorted({0, len(samples) // 3, 2 * len(samples) // 3, len(samples) - 1})
    return ", ".join(f"{sum(samples[i].values()):.0f}" for i in picks) + f" MiB after fits {', '.join(str(i + 1) for i in picks)}"


# ---------------------------------------------------------------- running sides in rotation


def rotate(sides: dict[str, Callable[[], Any]], repeats: int, *, optional: tuple[str, ...] = (),
           once: tuple[str, ...] = ()) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Time every side ``repeats`` times, in rotation (who goes first moves on each round), so
    all of them meet the same machine; the sides in ``once`` run in the first round only. A side
    named in ``optional`` that raises is dropped, its error kept; any other side's error is raised."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    errors: dict[str, str] = {}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if name in errors or (round_ and name in once):
                continue
            gc.collect()
            started = time.perf_counter()
            try:
                sides[name]()
            except Exception as exc:
                if name not in optional:
                    raise
                errors[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                common.log(f"   {name} failed and is left out: {errors[name]}")
                continue
            times[name].append(time.perf_counter() - started)
    return times, errors


def cluster_ready() -> str | None:
    """None when ``--cluster local:2`` can run here; else why not."""
    try:
        import distributed  # noqa: F401

        from cnn_tui.core.tuning import dask_executor  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------- the searches


def digits(quick: bool = False) -> Any:
    """The demo digits' training folder as ``cnn-tui tune`` loads it."""
    root = common.demo_digits()
    data = DataParams.from_dict({"num_classes": 10, "train_dir": str(root / "training"),
                                 "test_dir": str(root / "testing"), "image_size": 16})
    images = steps.load_training_set(data)
    return images.subset(600, 1) if quick else images


def larger_digits(copies: int = 3) -> Any:
    """The demo digits at MNIST's size: 28x28, each training image with ``copies`` shifted and
    rotated copies (1,437 x 4 = 5,748 images), where an epoch costs seconds on a CPU, as on the
    data sets people tune on; the fixed cost of a fit weighs less there than on the small digits."""
    from scipy import ndimage  # noqa: PLC0415 — SciPy: only this benchmark needs it

    root = common.demo_digits()
    data = DataParams.from_dict({"num_classes": 10, "train_dir": str(root / "training"),
                                 "test_dir": str(root / "testing"), "image_size": 28})
    images = steps.load_training_set(data)
    rng = np.random.default_rng(0)
    moved = []
    for _ in range(copies):
        for picture in images.x[..., 0]:
            turned = ndimage.rotate(picture, rng.uniform(-12, 12), reshape=False, order=1, mode="constant")
            moved.append(ndimage.shift(turned, rng.uniform(-2, 2, size=2), order=1, mode="constant"))
    x = np.concatenate([images.x, np.clip(np.stack(moved), 0, 1)[..., None].astype(np.float32)])
    y = np.concatenate([images.y] * (copies + 1))
    return replace(images, x=x, y=y, files=[f"{i}" for i in range(len(y))])


def plain_search(images: Any, hyper: HyperParams) -> float:
    """The seed's way: scikit-learn's GridSearchCV over the scikeras classifier, fitted on the
    images themselves, same folds (stratified, shuffled, seed 42)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: PLC0415 — scikit-learn: seconds to import

    config = hyper.first().as_dict()
    clf = classifier_class()(model=build_network, loss=None, verbose=0, image_size=images.image_size,
                             channels=images.channels, num_classes=images.num_classes, **config)
    grid = {k: v for k, v in hyper.grid().items()}
    search = GridSearchCV(clf, grid, cv=StratifiedKFold(3, shuffle=True, random_state=42), scoring="accuracy",
                          refit=False, error_score="raise")
    search.fit(images.x, images.y)
    return float(search.best_score_)


def searcher(images: Any, hyper: HyperParams, memory: list[list[dict[int, float]]], **options: Any
             ) -> Callable[[], None]:
    """A 12-fit grid search with ``options`` (jobs, cluster: ``SearchOptions`` fields), noting the
    process tree's RSS after every fit (a list of readings for each run)."""
    fits = hyper.combination_count() * 3

    def on_event(event: Any) -> None:
        if isinstance(event, FoldEnd):
            memory[-1].append(tree_rss_mib())

    def search() -> None:
        memory.append([])  # one list of readings a run
        result = tuning.tune(images, hyper, SearchOptions(strategy="grid", cv=3, **options), emit=on_event)
        ok = sum(1 for r in result.rows if r["status"] == "ok")
        if result.status != "finished" or ok != fits:
            raise RuntimeError(f"{result.status}: {result.message} ({ok} of {fits} fits finished)")

    return search


def executors(images: Any, repeats: int) -> list[common.Figure]:
    """The 12-fit grid by each executor and by the plain GridSearchCV; RSS in each executor."""
    hyper = HyperParams.from_dict({**BASE, **GRID_4})
    memory: dict[str, list[list[dict[int, float]]]] = {"in-process": [], "jobs=2": [], CLUSTER: []}
    sides: dict[str, Callable[[], Any]] = {
        "in-process": searcher(images, hyper, memory["in-process"]),
        "GridSearchCV": lambda: plain_search(images, hyper),
        "jobs=2": searcher(images, hyper, memory["jobs=2"], jobs=2),
    }
    missing = cluster_ready()
    if missing is None:
        sides[CLUSTER] = searcher(images, hyper, memory[CLUSTER], cluster=CLUSTER)
    else:
        common.log(f"   --cluster {CLUSTER}: {missing}")
    common.log(f"   12-fit grid: {len(images)} images {images.image_size}x{images.image_size}, 4 combinations x 3 folds, "
               f"{BASE['epochs']} epochs; sides {', '.join(sides)}; {repeats} round(s)")
    # the worker sides once (each run starts its processes: ~70 s on the loaded 2-core machine)
    # one untimed fit first: this process's one-time TensorFlow costs go to no side
    tuning.tune(images, HyperParams.from_dict({**BASE, "epochs": 1}), SearchOptions(cv=2))
    times, errors = rotate(sides, repeats, optional=(CLUSTER, "jobs=2"), once=("jobs=2", CLUSTER))
    figures = [common.overhead("tuning", "grid search, 12 fits: ours (in-process) vs scikeras+GridSearchCV",
                               times["in-process"], times["GridSearchCV"], target=1.05,
                               note="GridSearchCV over the same CnnClassifier, images in memory, same folds")]
    cores = len(os.sched_getaffinity(0))
    if times["jobs=2"]:
        figures.append(common.speedup(
            "tuning", "grid search, 12 fits: --jobs 2 vs --jobs 1", times["jobs=2"], times["in-process"], op=None,
            note=f"{cores} cores: two fits share them (the gain is for machines with more cores or GPUs); "
                 "includes starting 2 worker processes (each imports TensorFlow)"))
    if times.get(CLUSTER):
        figures.append(common.overhead(
            "tuning", f"grid search, 12 fits: --cluster {CLUSTER} vs --jobs 2", times[CLUSTER], times["jobs=2"],
            note="the cost of Dask: starting a local cluster (scheduler, 2 workers), scattering the images, tasks"))
    for name, label in (("in-process", "in-process (this process)"), ("jobs=2", "--jobs 2 (this process + workers)"),
                        (CLUSTER, f"--cluster {CLUSTER} (this process + cluster processes)")):
        runs = [samples for samples in memory[name] if len(samples) >= 2]
        if name in errors or not runs:
            continue
        # the run that grew most is the figure; each run's readings are in the note
        worst = max(runs, key=lambda samples: growth(samples)[2])
        others = "; ".join(f"run {i + 1}: {growth(r)[2]:.1f} % ({profile(r)})" for i, r in enumerate(runs))
        first, last, grown = growth(worst)
        figures.append(common.single("tuning", f"RSS growth over a 12-fit search, {label}", grown, "%", op="<=",
                                     target=10.0, note=f"{first:.0f} -> {last:.0f} MiB summed over {len(worst[-1])} "
                                     f"process(es), after the first fit -> after the 12th: "
                                     f"{(last - first) / (len(worst) - 1):.1f} MiB a fit; {most_grown(worst)}{others}"))
    if missing is not None or CLUSTER in errors:
        why = errors.get(CLUSTER, missing)
        figures.append(common.Figure("tuning", f"grid search, 12 fits: --cluster {CLUSTER} vs --jobs 2", None, None,
                                     "s", None, "our time / reference time", note=f"not measured: {why}"))
    return figures


def epochs_trained(row: dict[str, Any], rounds: list[tuple[int, int]]) -> int:
    """The epochs a fit trained: a fit promoted by hyperband goes on from its last round's epochs
    (grid and random fits are all in round 0, from epoch 0)."""
    rung = int(row.get("rung") or 0)
    done = int(row["epochs_done"] if "epochs_done" in row else row["epochs"])  # "epochs" in rows before 83acacd
    return done - (rounds[rung - 1][1] if 0 < rung <= len(rounds) else 0)


def epoch_costs(rows: list[dict[str, Any]], rounds: list[tuple[int, int]]) -> tuple[float, float]:
    """(fixed seconds a fit, seconds an epoch), fitted by least squares over the fits of both
    searches: what every fit costs whatever its epochs (build, compile, trace, score) and what
    each epoch adds."""
    trained = [epochs_trained(r, rounds) for r in rows]
    seconds = [float(r["fit_seconds"]) for r in rows]
    if len(set(trained)) < 2:
        return math.nan, math.nan
    slope, intercept = np.polyfit(trained, seconds, 1)
    return float(intercept), float(slope)


def pick_gap(grid: tuning.TuningResult, other: tuning.TuningResult) -> tuple[float, dict, dict, float, float]:
    """How good ``other``'s pick is, in the full grid's table: (points of mean CV accuracy given
    up, the grid's best, other's pick, the best's accuracy, the pick's accuracy)."""
    columns = grid.columns
    accuracy = {tuple(row[c] for c in columns): row["mean_accuracy"] for row in grid.table()}
    best, pick = grid.best(), other.best()
    if best is None or pick is None:
        return math.nan, best or {}, pick or {}, math.nan, math.nan
    top = accuracy[tuple(best[c] for c in columns)]
    picked = accuracy[tuple(pick[c] for c in columns)]
    return (top - picked) * 100, best, pick, top, picked


def standing(grid: tuning.TuningResult, band: tuning.TuningResult, best: dict, pick: dict) -> str:
    """Where the pick stands in the grid's table, the spread of the grid's best over its folds,
    and how far the grid's best got in hyperband's rounds."""
    if not best or not pick:
        return ""
    columns = grid.columns
    table = grid.table()
    keys = [tuple(row[c] for c in columns) for row in table]
    rank = keys.index(tuple(pick[c] for c in columns)) + 1
    spread = table[0]["std_accuracy"]
    reached = max((int(r.get("rung") or 0) for r in band.rows if all(r[c] == best[c] for c in columns)), default=-1)
    return (f" ({_ordinal(rank)} of {len(table)}); the grid best's accuracy varies by {spread * 100:.2f} points (std) "
            f"over its folds; hyperband took it to round {reached + 1} of {1 + max(int(r.get('rung') or 0) for r in band.rows)}")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def hyperband_vs_grid(images: Any, quick: bool = False, search: Callable[..., tuning.TuningResult] = tuning.tune,
                      data: str = "", fold_noise: bool = False, plan: tuple[dict[str, list[Any]], int] | None = None
                      ) -> list[common.Figure]:
    """Hyperband against the full grid: time, fits, epochs trained and the pick's quality; with
    ``fold_noise``, also what the grid's own pick moves with another seed (folds, initial weights).
    ``plan``: (grid values, epochs) instead of the 16 combinations of 9 epochs."""
    grid_values, epochs = plan or ((QUICK_GRID, QUICK_EPOCHS) if quick else (GRID_16, EPOCHS))
    hyper = HyperParams.from_dict({**BASE, "epochs": epochs, **grid_values})
    combos = hyper.combination_count()
    label = f"{combos} combinations x 3 folds, {epochs} epochs{f', {data}' if data else ''}"
    rounds = tuning.hyperband_plan(combos, epochs)
    common.log(f"   hyperband vs grid: {label}; hyperband rounds (combinations, epochs): {rounds}")
    results, seconds = {}, {}
    for strategy in ("hyperband", "grid"):
        gc.collect()
        started = time.perf_counter()
        results[strategy] = search(images, hyper, SearchOptions(strategy=strategy, cv=3))
        seconds[strategy] = time.perf_counter() - started
        result = results[strategy]
        common.log(f"   {strategy}: {seconds[strategy]:.0f} s, {len(result.rows)} fits, {result.status}: {result.message}")
    grid, band = results["grid"], results["hyperband"]
    gap, best, pick, top, picked = pick_gap(grid, band)
    worked = {name: sum(epochs_trained(r, rounds) for r in result.rows) for name, result in results.items()}
    in_fits = {name: sum(float(r["fit_seconds"]) for r in result.rows) for name, result in results.items()}
    fixed, per_epoch = epoch_costs(grid.rows + band.rows, rounds)
    note = (f"{len(band.rows)} fits vs {len(grid.rows)}, {worked['hyperband']} epochs trained vs {worked['grid']} "
            f"({worked['grid'] / max(worked['hyperband'], 1):.1f}x fewer); rounds {rounds}; inside fit() "
            f"{in_fits['hyperband']:.0f} s vs {in_fits['grid']:.0f} s, the rest (clearing the session, scoring the "
            f"fold, saving models to promote) {seconds['hyperband'] - in_fits['hyperband']:.0f} s vs "
            f"{seconds['grid'] - in_fits['grid']:.0f} s; a fit() costs {fixed:.2f} s whatever its epochs + "
            f"{per_epoch:.2f} s an epoch (least squares over both searches' fits)")
    pick_note = (f"grid best {_short(best)} at {top:.4f} mean CV accuracy; hyperband picked "
                 f"{'the same' if best == pick else _short(pick)}, {picked:.4f} in the full grid"
                 + standing(grid, band, best, pick))
    figures = []
    if fold_noise:  # what the grid's own pick gives up when its folds and initial weights are drawn again
        other = search(images, hyper, SearchOptions(strategy="grid", cv=3, seed=43))
        noise, _, moved, _, moved_score = pick_gap(grid, other)
        figures.append(common.single(
            "tuning", f"accuracy given up by the grid's own pick with another seed, {label}", noise, "points",
            note=f"the full grid again with seed 43 instead of 42 (other folds, other initial weights) picked "
                 f"{'the same' if moved == best else _short(moved)}, {moved_score:.4f} in the first grid's table: "
                 "how far a pick moves by chance alone"))
    return [
        common.speedup("tuning", f"hyperband vs full grid, {label}", [seconds["hyperband"]], [seconds["grid"]],
                       op=">=", target=3.0, note=note),
        common.single("tuning", f"accuracy given up by hyperband's pick, {label}", gap, "points", op="<=",
                      target=0.5, note=pick_note),
        *figures,
    ]


def _short(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())


def gpu_fits_per_minute(images: Any) -> list[common.Figure]:
    """Fits per minute on one GPU with 1 and then 2 fits at once (worker processes on GPU 0).
    Runs only where the backend sees a GPU."""
    gpus = backend.accelerators()
    if not gpus:
        common.log("   GPU fits per minute: no GPU visible to the backend, skipped")
        return []
    hyper = HyperParams.from_dict({**BASE, **GRID_4})
    seconds = {}
    for jobs in (1, 2):
        started = time.perf_counter()
        result = tuning.tune(images, hyper, SearchOptions(strategy="grid", cv=3, jobs=jobs, gpus=("0",)))
        seconds[jobs] = time.perf_counter() - started
        assert result.status == "finished", result.message
    rate = {jobs: 12 / s * 60 for jobs, s in seconds.items()}
    return [
        common.single("tuning", "fits per minute on one GPU, 1 fit at a time", rate[1], "fits/min",
                      note=f"{gpus[0]}; 12 fits of {BASE['epochs']} epochs, one worker process"),
        common.single("tuning", "fits per minute on one GPU, 2 fits at once", rate[2], "fits/min",
                      note=f"{rate[2] / rate[1]:.2f}x the rate of one at a time; two worker processes on GPU 0"),
    ]


def run(ctx: Any) -> list[common.Figure]:
    backend.load_keras()
    images = digits(ctx.quick)
    figures = executors(images, ctx.repeats)  # the worker sides once
    figures += hyperband_vs_grid(images, ctx.quick, fold_noise=not ctx.quick)
    if not ctx.quick:  # ~6 and ~8 min more on the 2-core machine
        larger = larger_digits()
        figures += hyperband_vs_grid(larger, data=f"{len(larger):,} images 28x28")
        figures += hyperband_vs_grid(images, plan=(GRID_27, EPOCHS_27))
    figures += gpu_fits_per_minute(images)
    return figures


if __name__ == "__main__":
    from benchmarks.run import main

    raise SystemExit(main(["--only", "tuning"]))
