"""Results you can trust: the bootstrap's cost for 10,000 test images, the coverage of its 95 %
interval by simulation (test sets drawn from a known accuracy), and the expected calibration error
before and after temperature scaling on the demo digits (two networks: the demo hyper params and
the ``fast`` preset), the temperature fitted on a 20 % validation share."""

from __future__ import annotations

import time

import numpy as np

from benchmarks import common
from cnn_tui.core import backend
from cnn_tui.core.data import dataset, demo
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params import presets
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training import calibration, evaluation, fit, intervals

GROUP = "trust"


def simulated(n: int, classes: int, accuracy: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, classes, n)
    right = rng.random(n) < accuracy
    predicted = np.where(right, y, (y + rng.integers(1, classes, n)) % classes)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), predicted] = logits.max(axis=1) + rng.exponential(2.0, n)  # argmax = predicted
    p = np.exp(logits)
    return y, (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def bootstrap_cost(repeats: int) -> list[common.Figure]:
    y, p = simulated(10_000, 10, 0.95, np.random.default_rng(0))
    figures = []
    for auc, label in ((False, "accuracy, macro F1, per-class precision and recall"), (True, "the same and ROC AUC")):
        seconds = []
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            found = intervals.bootstrap(y, p, auc=auc)
            seconds.append(time.perf_counter() - started)
        note = f"{found.resamples} resamples" + (f"; ROC AUC on {found.auc_resamples} (one-vs-rest over 10 classes)"
                                                 if auc else "")
        figures.append(common.single(GROUP, f"bootstrap of 10,000 images, 10 classes: {label}",
                                     common.median(seconds), "s", op="<=", target=1.0, note=note))
    return figures


def coverage(quick: bool) -> list[common.Figure]:
    """How often the 95 % interval of accuracy holds the accuracy the test sets were drawn from."""
    trials = 200 if quick else 1000
    figures = []
    for n, truth in ((200, 0.9), (1000, 0.97), (5000, 0.8)):
        rng = np.random.default_rng(n)
        held = 0
        for trial in range(trials):
            y, p = simulated(n, 10, truth, rng)
            held += intervals.bootstrap(y, p, auc=False, seed=trial).accuracy.contains(truth)
        share = 100 * held / trials
        spread = 100 * 1.96 * (0.95 * 0.05 / trials) ** 0.5
        figures.append(common.single(GROUP, f"coverage of the 95 % interval: {n} images at {truth:.0%}", share, "%",
                                     note=f"{trials} simulated test sets (±{spread:.1f} points from the trials alone)"))
    return figures


def calibrated(label: str, hyper: HyperParams, quick: bool) -> common.Figure:
    root = common.demo_digits()
    backend.load_keras()
    backend.clear_session()
    backend.set_seed(42)
    images = dataset.load_images(root / "training", image_size=demo.DEMO_IMAGE_SIZE)
    test_set = dataset.load_images(root / "testing", image_size=demo.DEMO_IMAGE_SIZE, class_names=images.class_names)
    config = hyper.first()
    if quick:
        config = HyperParams.from_dict({**config.as_dict(), "epochs": 2}).first()
    fit_set, validation = images.split(0.2, 42)
    net = build_model(config, image_size=demo.DEMO_IMAGE_SIZE, channels=images.channels, class_names=images.class_names)
    fit.train(net, fit_set, config, validation=validation)
    temperature = calibration.fit_temperature(evaluation.predict_probabilities(net, validation.x), validation.y)
    raw = evaluation.evaluate(net, test_set)
    before = calibration.expected_calibration_error(raw.probabilities, raw.y_true)
    after = calibration.expected_calibration_error(calibration.scaled(raw.probabilities, temperature), raw.y_true)
    return common.single(GROUP, f"test ECE after temperature scaling, demo digits ({label})", after, "ECE",
                         reference=before,
                         note=f"before {before:.4f}, after {after:.4f}; T = {temperature:.3f} fitted on "
                              f"{len(validation)} validation images; test accuracy {raw.accuracy:.2%} "
                              f"({len(test_set)} images, unchanged by T)")


def run(ctx) -> list[common.Figure]:
    figures = bootstrap_cost(ctx.repeats)
    figures += coverage(ctx.quick)
    figures.append(calibrated("demo hyper params", HyperParams.from_dict(demo.DEMO_HYPER), ctx.quick))
    figures.append(calibrated("fast preset", presets.preset("fast"), ctx.quick))
    return figures


if __name__ == "__main__":
    from benchmarks.run import main

    raise SystemExit(main(["--only", GROUP]))
