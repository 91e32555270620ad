"""Accuracy for reference: test accuracy after training with the shipped hyper params'
first values on the demo digits, and on a real folder given with --data-dir."""

from __future__ import annotations

import time

from benchmarks import common
from cnn_tui.core import backend, dataset, demo, evaluation, training
from cnn_tui.core.model import build_model
from cnn_tui.core.params import HyperParams

# The seed's first values (seeds/README.md) for a user folder; the demo ships its own.
SEED_FIRST = {"init_rate": 0.02, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
              "num_units": 512, "momentum": 0.9, "drop_out": 0.2, "epochs": 5, "batch_size": 64}


def accuracy_on(root, image_size: int, hyper: HyperParams, label: str) -> common.Figure:
    backend.load_keras()
    backend.clear_session()
    backend.set_seed(42)
    train_set = dataset.load_images(root / "training", image_size=image_size)
    test_set = dataset.load_images(root / "testing", image_size=image_size, class_names=train_set.class_names,
                                   channels=train_set.channels)
    config = hyper.first()
    net = build_model(config, image_size=image_size, channels=train_set.channels, class_names=train_set.class_names)
    started = time.perf_counter()
    result = training.train(net, train_set, config)
    seconds = time.perf_counter() - started
    scores = evaluation.evaluate(net, test_set)
    note = (f"{len(train_set)} training / {len(test_set)} test images at {image_size}x{image_size}x{train_set.channels}, "
            f"{config.epochs} epochs, batch {config.batch_size}, trained in {seconds:.1f} s; test loss {scores.loss:.3f}")
    assert result.status == "finished", result.message
    return common.single("accuracy", label, scores.accuracy * 100, "%", note=note)


def run(ctx) -> list[common.Figure]:
    hyper = HyperParams.from_dict(demo.DEMO_HYPER)
    if ctx.quick:
        hyper = hyper.with_values({"epochs": 2})
    figures = [accuracy_on(common.demo_digits(), demo.DEMO_IMAGE_SIZE, hyper, "test accuracy, demo digits (demo hyper params)")]
    if ctx.data_dir:
        seed = HyperParams.from_dict({**SEED_FIRST, "epochs": 1 if ctx.quick else SEED_FIRST["epochs"]})
        figures.append(accuracy_on(ctx.data_dir, 64, seed, f"test accuracy, {ctx.data_dir.name} (seed hyper params, 64x64)"))
    return figures


if __name__ == "__main__":
    from benchmarks.run import main

    raise SystemExit(main(["--only", "accuracy"]))
