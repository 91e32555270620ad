"""Tuning: our grid search vs a plain scikeras + GridSearchCV script on the same grid and
data; halving vs the full grid (time and the quality of the pick); memory across 12 fits."""

from __future__ import annotations

import os
import time

from benchmarks import common
from cnn_tui.core import backend, dataset, tuning
from cnn_tui.core.events import FoldEnd
from cnn_tui.core.params import HyperParams

BASE = {"init_rate": 0.02, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
        "num_units": 512, "momentum": 0.9, "drop_out": 0.2, "epochs": 3, "batch_size": 64}
GRID_4 = {"num_filters": [16, 32], "num_units": [128, 512]}  # 4 combinations x 3 folds = 12 fits
GRID_8 = {**GRID_4, "init_rate": [0.02, 0.005]}  # halving needs a few rounds to make a difference


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def digits(ctx) -> dataset.ImageSet:
    root = ctx.data_dir or common.demo_digits()
    return dataset.load_images(root / "training", image_size=16, color_mode="grayscale")


def plain_search(images: dataset.ImageSet, grid: dict) -> float:
    """What a user writes by hand: scikeras around the same network, GridSearchCV, same folds."""
    from scikeras.wrappers import KerasClassifier
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    def network(num_filters, num_units, init_rate, **_):
        return tuning.build_network(init_rate, BASE["decay_steps"], BASE["decay_rate"], BASE["kernel_size"], num_filters,
                                     num_units, BASE["momentum"], BASE["drop_out"], images.image_size, images.channels,
                                     images.num_classes)

    clf = KerasClassifier(model=network, loss="sparse_categorical_crossentropy", epochs=BASE["epochs"],
                          batch_size=BASE["batch_size"], verbose=0, num_filters=32, num_units=512, init_rate=0.02)
    search = GridSearchCV(clf, grid, cv=StratifiedKFold(3, shuffle=True, random_state=42), scoring="accuracy", refit=False)
    search.fit(images.x, images.y)
    return float(search.best_score_)


def run(ctx) -> list[common.Figure]:
    backend.load_keras()
    images = digits(ctx)
    if ctx.quick:
        images = images.subset(600, 1)
    hyper4 = HyperParams.from_dict({**BASE, **GRID_4})
    memory: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, FoldEnd):
            memory.append(rss_mib())

    def ours() -> None:
        memory.clear()
        result = tuning.tune(images, hyper4, strategy="grid", cv=3, emit=on_event)
        assert result.status == "finished" and len(result.rows) == 12, result.message

    common.log(f"   tuning: {len(images)} images {images.image_size}x{images.image_size}, 4 combinations x 3 folds, "
               f"{BASE['epochs']} epochs")
    t_ours, t_plain = common.alternate(ours, lambda: plain_search(images, GRID_4), max(1, min(ctx.repeats, 2)), warm=False)
    growth = (memory[-1] - memory[0]) / memory[0] * 100
    figures = [
        common.overhead("tuning", "grid search, 12 fits: ours vs scikeras+GridSearchCV", t_ours, t_plain, target=1.05),
        common.single("tuning", "RSS growth, first fit -> 12th fit", growth, "%", op="<=", target=10.0,
                      note=f"{memory[0]:.0f} -> {memory[-1]:.0f} MiB"),
    ]
    if ctx.quick:
        figures += halving(images, "demo digits", BASE)
    else:
        # On the 1,437 digits per-fit overhead dominates and halving's extra fits make it slower
        # (0.7x measured); where fits are data-bound its small early rounds pay off.
        pngs = dataset.load_images(common.synthetic_pngs() / "training", image_size=28, color_mode="grayscale")
        figures += halving(pngs.subset(4_500, 1), "PNG 28x28, 4,500 images", {**BASE, "epochs": 2})
    return figures


def halving(images: dataset.ImageSet, label: str, base: dict) -> list[common.Figure]:
    common.log(f"   halving vs grid: {label}")
    hyper8 = HyperParams.from_dict({**base, **GRID_8})
    started = time.perf_counter()
    grid = tuning.tune(images, hyper8, strategy="grid", cv=3)
    t_grid = time.perf_counter() - started
    started = time.perf_counter()
    halved = tuning.tune(images, hyper8, strategy="halving", cv=3)
    t_halving = time.perf_counter() - started
    table = grid.table()
    columns = grid.columns

    def key(row):
        return tuple(row[c] for c in columns)

    cv_accuracy = {key(row): row["mean_accuracy"] for row in table}
    best_grid, best_halving = grid.best(), halved.best()
    picked = cv_accuracy[key(best_halving)]
    same = key(best_grid) == key(best_halving)
    note = (f"grid best {dict(zip(columns, key(best_grid)))} at {cv_accuracy[key(best_grid)]:.4f} mean CV accuracy; "
            f"halving picked {'the same' if same else dict(zip(columns, key(best_halving)))}, "
            f"{picked:.4f} in the full grid; {len(halved.rows)} vs {len(grid.rows)} fits")
    return [
        common.speedup("tuning", f"halving vs full grid, 8 combinations, {label}", [t_halving], [t_grid], op=None, note=note),
        common.single("tuning", f"accuracy given up by halving's pick, {label}", (cv_accuracy[key(best_grid)] - picked) * 100, "points",
                      op="<=", target=1.0, note="mean CV accuracy, grid best minus halving's pick (both from the full grid)"),
    ]


if __name__ == "__main__":
    from benchmarks.run import main

    raise SystemExit(main(["--only", "tuning"]))
