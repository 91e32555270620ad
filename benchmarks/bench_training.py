"""Training overhead: our train() (events, throttled progress, history, stop checks) vs a
plain ``model.fit`` on the same model, arrays and batch size; and which input form trains
fastest (numpy arrays vs keras.utils.PyDataset vs tf.data)."""

from __future__ import annotations

import math

import numpy as np

from benchmarks import common
from cnn_tui.core import backend
from cnn_tui.core.data import dataset, feeding
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params.files import ModelConfig
from cnn_tui.core.training import fit as training

# The seed hyper params' first values (seeds/README.md), 28x28 grayscale like MNIST.
SEED = ModelConfig(init_rate=0.02, decay_steps=400, decay_rate=0.9, kernel_size=3, num_filters=32, num_units=512,
                   momentum=0.9, drop_out=0.2, epochs=2, batch_size=64)


def training_arrays(quick: bool) -> dataset.ImageSet:
    root = common.synthetic_pngs(2_000 if quick else 20_000)
    images = dataset.load_images(root / "training", image_size=28, color_mode="grayscale")
    return images.take(np.arange(min(len(images), 1_500 if quick else 6_000)))


def fresh_model(images: dataset.ImageSet, config: ModelConfig):
    backend.clear_session()
    backend.set_seed(1)
    return build_model(config, image_size=28, channels=1, class_names=images.class_names)


def run(ctx) -> list[common.Figure]:
    keras = backend.load_keras()
    images = training_arrays(ctx.quick)
    config = SEED
    events = []

    def ours() -> None:
        net = fresh_model(images, config)
        result = training.train(net, images, config, emit=events.append)
        assert result.status == "finished", result.message

    def plain() -> None:
        net = fresh_model(images, config)
        net.keras_model.fit(images.x, images.y, batch_size=config.batch_size, epochs=config.epochs, shuffle=True, verbose=0)

    common.log(f"   training: {len(images)} images 28x28, {config.epochs} epochs, batch {config.batch_size}")
    # a 5 % target needs more than 3 a side
    t_ours, t_plain = common.alternate(ours, plain, ctx.repeats if ctx.quick else max(ctx.repeats, 5))
    n = len(images) * config.epochs
    per_second = n / common.median(t_ours)
    figures = [
        common.overhead("training", f"train() vs model.fit, {len(images)} imgs x {config.epochs} epochs", t_ours, t_plain, target=1.05,
                        note=f"{per_second:,.0f} images/s ours; {len(events) // (len(t_ours) + 1)} events a run"),
    ]
    figures += input_forms(keras, images, config, ctx)
    figures.append(streamed_vs_in_memory(images, config, ctx))
    return figures


def streamed_vs_in_memory(images: dataset.ImageSet, config: ModelConfig, ctx) -> common.Figure:
    """The streaming path (8-bit on disk, scaled per batch through a PyDataset) against the
    in-memory float32 arrays, same images: what a too-big folder costs in speed."""
    import os

    root = common.synthetic_pngs(2_000 if ctx.quick else 20_000) / "training"
    os.environ["CNN_TUI_STREAM_ABOVE_MB"] = "0"
    try:
        streamed = dataset.load_images(root, image_size=28, color_mode="grayscale").take(np.arange(len(images)))
    finally:
        del os.environ["CNN_TUI_STREAM_ABOVE_MB"]
    assert feeding.is_streamed(streamed.x)

    def fit(data: dataset.ImageSet):
        def go() -> None:
            net = fresh_model(data, config)
            assert training.train(net, data, config).status == "finished"
        return go

    t_stream, t_memory = common.alternate(fit(streamed), fit(images), max(1, ctx.repeats - 1))
    return common.overhead("training", "streamed from disk vs in-memory arrays", t_stream, t_memory,
                           note=f"the cost of the streaming path (used above {feeding.STREAM_ABOVE_SHARE:.0%} of free memory); "
                                f"the whole folder's 8-bit file is {streamed.x.source.nbytes / 2**20:.0f} MiB, mapped, "
                                f"vs {images.x.nbytes / 2**20:.0f} MiB float32 in memory for these {len(images)} images")


def input_forms(keras, images: dataset.ImageSet, config: ModelConfig, ctx) -> list[common.Figure]:
    """The same fit fed three ways; the ratio is each form's time over numpy arrays'."""
    x, y, batch = images.x, images.y, config.batch_size

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.order = np.arange(len(x))

        def __len__(self) -> int:
            return math.ceil(len(x) / batch)

        def __getitem__(self, index: int):
            rows = self.order[index * batch : (index + 1) * batch]
            return x[rows], y[rows]

        def on_epoch_end(self) -> None:
            np.random.default_rng().shuffle(self.order)

    def fit(data, **kw) -> None:
        net = fresh_model(images, config)
        net.keras_model.fit(data, epochs=config.epochs, verbose=0, shuffle=False, **kw)  # both shuffle themselves

    def numpy_arrays() -> None:
        net = fresh_model(images, config)
        net.keras_model.fit(x, y, batch_size=batch, epochs=config.epochs, shuffle=True, verbose=0)

    figures = []
    forms = {"keras.utils.PyDataset": lambda: fit(Batches())}
    if backend.backend_name() == "tensorflow":
        import tensorflow as tf

        def tf_data() -> None:
            ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(batch).prefetch(tf.data.AUTOTUNE)
            fit(ds)

        forms["tf.data (shuffled, prefetched)"] = tf_data
    for name, form in forms.items():
        t_form, t_numpy = common.alternate(form, numpy_arrays, max(1, ctx.repeats - 1), warm=False)
        figures.append(common.overhead("training", f"input form: {name} vs numpy arrays", t_form, t_numpy,
                                       note="ratio > 1: numpy arrays (what train() uses) are faster"))
    return figures


if __name__ == "__main__":
    from benchmarks.run import main

    raise SystemExit(main(["--only", "training"]))
