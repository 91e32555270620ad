"""Accuracy for reference: test accuracy and training time of the shipped demo hyper params and of
each preset (core/params/presets.py) on the demo digits, at the demo's size and upsampled to 28x28; the
``fast`` preset against ``seed`` side by side; the cost of augmentation per epoch; and, with
--data-dir, the seed's hyper params on a real folder."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from benchmarks import common
from cnn_tui.core import backend
from cnn_tui.core.data import dataset, demo
from cnn_tui.core.errors import UserError
from cnn_tui.core.models.augmentation import AUGMENTATION_FIELDS
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params import presets
from cnn_tui.core.params.files import HyperParams, ModelConfig
from cnn_tui.core.training import evaluation, fit

# The seed's first values (seeds/README.md) for a user folder; the demo ships its own.
SEED_FIRST = {"init_rate": 0.02, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
              "num_units": 512, "momentum": 0.9, "drop_out": 0.2, "epochs": 5, "batch_size": 64}
# The demo data params' size (the 8x8 scans resized up on load, as `cnn-tui demo` writes them) and
# MNIST's 28x28 (the same scans resized up further on load).
PRESET_SIZES = (demo.DEMO_IMAGE_SIZE, 28)
ACCURATE_TARGET = 99.0  # % test accuracy on the demo digits (issue 10; the demo params reach 98.3 %)
AUGMENTATION_SIZE = 28


@dataclass
class Trained:
    accuracy: float  # %
    loss: float
    train_accuracy: float  # % in the last epoch, measured while training (augmentation and dropout on)
    seconds: float  # training only: no loading, no evaluation
    epoch_seconds: list[float]
    epochs_done: int
    best_epoch: int | None
    train_count: int
    test_count: int
    channels: int

    def describe(self, image_size: int, config: ModelConfig) -> str:
        kept = f", kept epoch {self.best_epoch}" if self.best_epoch and self.best_epoch != self.epochs_done else ""
        return (f"{self.train_count} training / {self.test_count} test images at {image_size}x{image_size}x"
                f"{self.channels}, {self.epochs_done} of {config.epochs} epochs{kept}, batch {config.batch_size}, "
                f"trained in {self.seconds:.1f} s; test loss {self.loss:.3f}; last epoch's training accuracy "
                f"{self.train_accuracy:.1f} %")


def train_and_test(root, image_size: int, config: ModelConfig) -> Trained:
    """Train on root/training (resized to image_size on load, no validation: as `cnn-tui train` does)
    and score on root/testing."""
    backend.load_keras()
    backend.clear_session()
    backend.set_seed(42)
    train_set = dataset.load_images(root / "training", image_size=image_size)
    test_set = dataset.load_images(root / "testing", image_size=image_size, class_names=train_set.class_names,
                                   channels=train_set.channels)
    net = build_model(config, image_size=image_size, channels=train_set.channels, class_names=train_set.class_names)
    started = time.perf_counter()
    result = fit.train(net, train_set, config)
    seconds = time.perf_counter() - started
    assert result.status == "finished", result.message
    scores = evaluation.evaluate(net, test_set)
    return Trained(scores.accuracy * 100, scores.loss, result.history["accuracy"][-1] * 100, seconds,
                   list(result.history["seconds"]), result.epochs_done, result.best_epoch, len(train_set),
                   len(test_set), train_set.channels)


def accuracy_on(root, image_size: int, hyper: HyperParams, label: str) -> common.Figure:
    config = hyper.first()
    trained = train_and_test(root, image_size, config)
    return common.single("accuracy", label, trained.accuracy, "%", note=trained.describe(image_size, config))


def transfer_config(quick: bool) -> tuple[ModelConfig, str]:
    """The transfer preset with ImageNet weights when Keras has them (or can download them), else from
    random weights: the weights are what the preset is about, so the label says which ran."""
    config = presets.preset("transfer").first()
    if quick:
        return config.replace(weights="none"), "weights none"
    try:
        build_model(config, image_size=32, channels=1, class_names=["a", "b"])
        return config, "weights imagenet"
    except UserError:  # offline, and not in ~/.keras/models
        return config.replace(weights="none"), "weights none: ImageNet weights not available offline"


def preset_figures(root, quick: bool) -> list[common.Figure]:
    figures: list[common.Figure] = []
    configs = {name: presets.preset(name).first() for name in ("seed", "fast", "accurate")}
    transfer, weights_note = transfer_config(quick)
    configs["transfer"] = transfer
    if quick:  # checks the benchmark runs: one size, an epoch or two
        configs = {name: c.replace(epochs=min(c.epochs, 2), warmup_epochs=0) for name, c in configs.items()}
    for size in PRESET_SIZES[:1] if quick else PRESET_SIZES:
        where = f"demo digits {size}x{size}" + (" (8x8 scans resized on load, as the demo params)"
                                                 if size == demo.DEMO_IMAGE_SIZE else " (upsampled on load)")
        done = {name: train_and_test(root, size, config) for name, config in configs.items()}
        for name, trained in done.items():
            label = f"{name} preset, {where}: test accuracy" + (f" ({weights_note})" if name == "transfer" else "")
            target = dict(op=">=", target=ACCURATE_TARGET) if name == "accurate" else {}
            figures.append(common.single("accuracy", label, trained.accuracy, "%",
                                         note=trained.describe(size, configs[name]), **target))
        fast, seed = done["fast"], done["seed"]
        figures.append(common.Figure(
            "accuracy", f"fast vs seed, {where}: training time", fast.seconds, seed.seconds, "s",
            fast.seconds / seed.seconds, "our time / reference time", note=(
                f"fast {fast.accuracy:.1f} % in {fast.epochs_done} epochs vs seed {seed.accuracy:.1f} % in "
                f"{seed.epochs_done}; per epoch {statistics.median(fast.epoch_seconds):.2f} s vs "
                f"{statistics.median(seed.epoch_seconds):.2f} s"),
            samples={"ours": [fast.seconds], "reference": [seed.seconds]}))
    return figures


def augmentation_cost(root, repeats: int, quick: bool) -> common.Figure:
    """Seconds per epoch of the accurate preset's network with its augmentation against the same network
    without: trained alternately, the first epoch of each (tracing, warm-up) left out."""
    config = presets.preset("accurate").first().replace(epochs=2 if quick else 4, warmup_epochs=0, patience=0)
    plain = config.replace(**{name: ("none" if name == "flip" else 0.0) for name in AUGMENTATION_FIELDS})
    train_set = dataset.load_images(root / "training", image_size=AUGMENTATION_SIZE)
    per_epoch: dict[str, list[float]] = {"ours": [], "reference": []}

    def epochs_of(side: str, chosen: ModelConfig) -> None:
        backend.clear_session()
        backend.set_seed(42)
        net = build_model(chosen, image_size=AUGMENTATION_SIZE, channels=train_set.channels,
                          class_names=train_set.class_names)
        per_epoch[side] += fit.train(net, train_set, chosen).history["seconds"][1:]

    for round_ in range(repeats):
        sides = [("ours", config), ("reference", plain)]
        for side, chosen in sides[::-1] if round_ % 2 else sides:  # who goes first swaps every round
            epochs_of(side, chosen)
    augment = ", ".join(f"{name} {getattr(config, name)}" for name in AUGMENTATION_FIELDS
                        if getattr(config, name) not in (0, 0.0, "none"))
    return common.overhead("accuracy", f"augmentation cost per epoch: accurate preset with vs without ({augment})",
                           per_epoch["ours"], per_epoch["reference"],
                           note=f"{len(train_set)} demo digits at {AUGMENTATION_SIZE}x{AUGMENTATION_SIZE}, seconds "
                                f"per epoch, {len(per_epoch['ours'])} epochs a side")


def run(ctx) -> list[common.Figure]:
    root = common.demo_digits()
    hyper = HyperParams.from_dict(demo.DEMO_HYPER)
    if ctx.quick:
        hyper = hyper.with_values({"epochs": 2})
    figures = [accuracy_on(root, demo.DEMO_IMAGE_SIZE, hyper, "test accuracy, demo digits (demo hyper params)")]
    figures += preset_figures(root, ctx.quick)
    figures.append(augmentation_cost(root, ctx.repeats, ctx.quick))
    if ctx.data_dir:
        seed = HyperParams.from_dict({**SEED_FIRST, "epochs": 1 if ctx.quick else SEED_FIRST["epochs"]})
        figures.append(accuracy_on(ctx.data_dir, 64, seed, f"test accuracy, {ctx.data_dir.name} (seed hyper params, 64x64)"))
    return figures


if __name__ == "__main__":
    from benchmarks.run import main

    raise SystemExit(main(["--only", "accuracy"]))
