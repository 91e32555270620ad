"""The streaming path: images that would not fit in memory as float32 stay as uint8 on disk
(the decoded-image cache's memory-mapped .npy) and are scaled a batch at a time.

``PixelView`` stands in for the float32 array wherever an ImageSet's ``x`` is used: slicing
or indexing it returns scaled float32 rows, ``take`` makes a lazy sub-view. ``Batches`` hands
it to Keras as a ``keras.utils.PyDataset``. ``augmented_batches`` feeds training batches through
the batch augmentation (RandAugment, erasing, MixUp, CutMix) as a ``tf.data.Dataset``.
"""

from __future__ import annotations

import math
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.backend import load_keras
from cnn_tui.core.environment import env_int
from cnn_tui.core.errors import UserError
from cnn_tui.core.memory import available_memory_bytes

SCALE = np.float32(1 / 255)
STREAM_ABOVE_SHARE = 0.5  # stream when the float32 array would take over half the available memory


def stream_limit_bytes() -> int | None:
    """Above this many float32 bytes the loader streams; CNN_TUI_STREAM_ABOVE_MB overrides."""
    configured = env_int("CNN_TUI_STREAM_ABOVE_MB", None)
    if configured is not None:
        return configured * 1024 * 1024
    available = available_memory_bytes()
    return int(available * STREAM_ABOVE_SHARE) if available else None


class PixelView:
    """Rows of a uint8 image array, read as float32 in [0, 1] only when indexed."""

    dtype = np.dtype(np.float32)

    def __init__(self, source: np.ndarray, rows: np.ndarray, owned_file: Path | None = None) -> None:
        # a memmap's own indexing wraps every result in a memmap; the plain view is faster
        self.source = source.view(np.ndarray) if isinstance(source, np.memmap) else source
        self.rows = np.asarray(rows, dtype=np.int64)
        self.owned_file = owned_file
        if owned_file is not None:  # a temp file only this view uses: gone with the last view
            weakref.finalize(self, _unlink, owned_file)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.source.shape[1:])

    @property
    def ndim(self) -> int:
        return self.source.ndim

    @property
    def nbytes(self) -> int:
        """What the view would take as a float32 array."""
        return int(np.prod(self.shape)) * 4

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        picked = self.rows[key]
        if np.ndim(picked) == 0:
            return np.multiply(self.source[int(picked)], SCALE, dtype=np.float32)
        # memory-mapped reads go fastest in file order; put the rows back in the asked order after
        order = np.argsort(picked, kind="stable")
        out = np.empty((len(picked), *self.source.shape[1:]), dtype=np.float32)
        out[order] = np.multiply(self.source[picked[order]], SCALE, dtype=np.float32)
        return out

    def take(self, indices: Any, axis: int = 0) -> PixelView:
        """A lazy sub-view (same signature as ``ndarray.take`` so ImageSet code serves both)."""
        if axis != 0:
            raise ValueError("a PixelView is taken along its first axis only")
        view = PixelView(self.source, self.rows[np.asarray(indices)])
        view._keep = self  # the temp file lives as long as any view of it
        return view

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out.astype(dtype) if dtype is not None else out


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def is_streamed(x: Any) -> bool:
    return isinstance(x, PixelView)


def batches(x: PixelView, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0) -> Any:
    """A ``keras.utils.PyDataset`` over ``x``: one scaled batch at a time, reshuffled each epoch.

    Two reader threads prepare the next batches while the current one trains (numpy's copy
    and scaling release the GIL)."""
    keras = load_keras()

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=2, use_multiprocessing=False, max_queue_size=8)
            self.order = np.arange(len(x))
            self.rng = np.random.default_rng(seed)
            if shuffle:
                self.rng.shuffle(self.order)

        def __len__(self) -> int:
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = self.order[index * batch_size : (index + 1) * batch_size]
            return x[rows], y[rows]

        def on_epoch_end(self) -> None:
            if shuffle:
                self.rng.shuffle(self.order)

    return Batches()


def augmented_batches(x: Any, y: np.ndarray, batch_size: int, augmentation: Any, *, seed: int = 0,
                      class_weights: np.ndarray | None = None) -> Any:
    """Training batches through a batch augmentation (``core.models.augmentation.BatchAugmentation``):
    a ``tf.data.Dataset`` of (images, labels[, sample weights]), reshuffled each epoch.

    ``x`` is an array or a ``PixelView`` (read a batch at a time either way); ``y`` one-hot rows
    when the augmentation mixes labels. Keras's image layers are tf.data-safe on every backend, so
    this runs in TensorFlow's graph also under JAX. ``class_weights`` (one per class) become
    sample weights from the labels as mixed: a blend of two images weighs what its classes weigh,
    as much of each as it holds (Keras's ``class_weight`` would weigh it by its larger share only).
    """
    try:
        import tensorflow as tf  # noqa: PLC0415 — TensorFlow loads lazily (seconds), and only when batches are augmented
    except ImportError:
        raise UserError("rand_augment, random_erasing, mixup and cutmix run in TensorFlow's tf.data; install "
                        "tensorflow-cpu (or tensorflow) next to your Keras backend, or set them to 0") from None
    load_keras()  # the layers below need Keras loaded the way cnn-tui loads it
    count = len(x)

    def rows() -> Any:
        order = np.random.default_rng([seed, rows.epoch]).permutation(count)
        rows.epoch += 1
        for start in range(0, count, batch_size):
            picked = np.sort(order[start : start + batch_size])  # file order: fastest from a memory map
            yield np.asarray(x[picked], dtype=np.float32), y[picked]

    rows.epoch = 0  # type: ignore[attr-defined]
    spec = (tf.TensorSpec((None, *x.shape[1:]), tf.float32), tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)))
    choose = tf.random.Generator.from_seed(seed)
    weights = None if class_weights is None else tf.constant(np.asarray(class_weights, np.float32))

    def augment(images: Any, labels: Any) -> Any:
        for layer in augmentation.image_layers:
            images = layer(images, training=True)
        mixers = augmentation.mixers
        if mixers:
            data = {"images": images, "labels": tf.cast(labels, tf.float32)}
            if len(mixers) == 1:
                data = mixers[0](data, training=True)
            else:  # one or the other, each batch
                data = tf.cond(choose.uniform(()) < 0.5, lambda: mixers[0](dict(data), training=True),
                               lambda: mixers[1](dict(data), training=True))
            images, labels = data["images"], data["labels"]
        images = tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0)
        if weights is None:
            return images, labels
        soft = tf.cast(labels, tf.float32)
        sample_weight = (tf.reduce_sum(soft * weights, axis=-1) if soft.shape.rank == 2
                         else tf.gather(weights, tf.cast(labels, tf.int32)))
        return images, labels, sample_weight

    dataset = tf.data.Dataset.from_generator(rows, output_signature=spec)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(count / batch_size)))
    return dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
