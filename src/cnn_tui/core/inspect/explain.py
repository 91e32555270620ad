"""Look inside a model for one image: the activations of each convolution (feature maps) and
a Grad-CAM heatmap of where the image made the model choose a class.

Models come in many shapes (the seed's Sequential CNN, functional networks, a keras.applications
backbone nested as a sub-model, preprocessing and augmentation layers at the input), so layers
are found by walking ``model.layers`` into nested models. A nested layer's ``output`` belongs to
its inner graph, which ``keras.Model(model.inputs, ...)`` cannot reach; instead the layers are
watched while the model itself runs on the image: their ``call`` is wrapped for the duration
(in this thread only), which records what they return and, for Grad-CAM, adds a zero tensor the
gradient is taken against. That works for any nesting and, with the matching gradient function,
for the TensorFlow and JAX backends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cnn_tui.core.backend import backend_name, load_keras
from cnn_tui.core.data.decode import DecodeError, decode, why_not_a_file
from cnn_tui.core.errors import ModelError, UserError

CONV_KINDS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")
SMALL = 1e-12  # keeps log(p) finite when a class's probability is 0

_lock = threading.Lock()  # one inspection at a time: the wrapped calls are per layer object
_here = threading.local()  # the watcher of this thread, so a predict in another thread runs untouched


# ---------------------------------------------------------------- finding layers


def leaf_layers(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every layer that is not itself a model, with its path ("backbone/conv_1"), nested models walked."""
    found = []
    for layer in getattr(model, "layers", ()):
        path = f"{prefix}{layer.name}"
        if getattr(layer, "layers", None) is not None and hasattr(layer, "inputs"):  # a nested Model
            found += leaf_layers(layer, prefix=f"{path}/")
        else:
            found.append((path, layer))
    return found


def is_conv(layer: Any) -> bool:
    """A 2-D convolution of any kind (subclasses included, e.g. a custom Conv2D)."""
    keras = load_keras()
    kinds = tuple(getattr(keras.layers, name) for name in CONV_KINDS if hasattr(keras.layers, name))
    return isinstance(layer, kinds)


def conv_layers(model: Any) -> list[tuple[str, Any]]:
    """The convolutions among the leaf layers, in the model's layer order."""
    return [(path, layer) for path, layer in leaf_layers(model) if is_conv(layer)]


# ---------------------------------------------------------------- watching layers while the model runs


class _Watch:
    """Records the first output of each watched layer in call order; adds ``delta`` to ``target``'s;
    with ``logits`` set, the ``head`` layer leaves out its softmax (in this thread only)."""

    def __init__(self) -> None:
        self.outputs: dict[int, Any] = {}  # id(layer) -> its output
        self.order: list[tuple[str, Any]] = []  # (path, layer) in the order they ran
        self.target: Any = None
        self.delta: Any = None
        self.head: Any = None
        self.logits = False

    def here(self) -> bool:
        return getattr(_here, "watch", None) is self

    def reset(self) -> None:
        self.outputs.clear()
        self.order.clear()

    def wrap(self, path: str, layer: Any, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not self.here():
                return original(*args, **kwargs)
            if layer is self.head and self.logits and _is_softmax_layer(layer):
                out = args[0] if args else next(iter(kwargs.values()))
            else:
                out = original(*args, **kwargs)
            if id(layer) in self.outputs:
                return out
            if layer is self.target and self.delta is not None:
                out = out + self.delta
            self.outputs[id(layer)] = out
            self.order.append((path, layer))
            return out

        return call

    def unsquashed(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def activation(x: Any) -> Any:
            return x if self.here() and self.logits else original(x)

        return activation


def _is_softmax(function: Any) -> bool:
    return getattr(function, "__name__", "") == "softmax"


def _is_softmax_layer(layer: Any) -> bool:
    return type(layer).__name__ == "Softmax"


@contextmanager
def _watching(layers: list[tuple[str, Any]], head: Any = None) -> Iterator[_Watch]:
    """Wrap the layers' ``call`` (and the softmax of ``head``, a model's last layer) while the block runs."""
    watch = _Watch()
    watch.head = head
    with _lock:
        patched, squashed = [], None
        try:
            for path, layer in layers:
                if "call" in vars(layer):  # wrapped already (a layer shared by two paths)
                    continue
                object.__setattr__(layer, "call", watch.wrap(path, layer, layer.call))
                patched.append(layer)
            if head is not None and _is_softmax(getattr(head, "activation", None)):
                squashed = head.activation
                object.__setattr__(head, "activation", watch.unsquashed(squashed))
            _here.watch = watch
            yield watch
        finally:
            _here.watch = None
            for layer in patched:
                object.__delattr__(layer, "call")
            if squashed is not None:
                object.__setattr__(head, "activation", squashed)


def _forward(model: Any, x: np.ndarray) -> Any:
    return model(x, training=False)  # augmentation and dropout are off, batch norm uses its averages


def _as_numpy(value: Any) -> np.ndarray:
    keras = load_keras()
    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float32)


# ---------------------------------------------------------------- reading an image


def load_image(path: str | Path, net: Any) -> np.ndarray:
    """The image file as the model takes it, the way ``classify`` reads it: (size, size, channels)
    float32 in [0, 1]. One-line errors name the file."""
    if problem := why_not_a_file(path):
        raise UserError(problem, path=path)
    try:
        pixels, _ = decode(str(path), net.image_size, net.channels)
    except DecodeError as exc:
        raise UserError(f"cannot be read as an image ({exc})", path=path) from None
    return pixels.astype(np.float32) / 255.0


def _batch(pixels: np.ndarray, net: Any) -> np.ndarray:
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    expected = (net.image_size, net.image_size, net.channels)
    if pixels.shape != expected:
        raise UserError(f"the image is {pixels.shape}, the model takes {expected}")
    return pixels[None]


def _class_index(net: Any, chosen: int | str | None, probabilities: np.ndarray) -> int:
    if chosen is None:
        return int(probabilities.argmax())
    if isinstance(chosen, str):
        if chosen in net.class_names:
            return net.class_names.index(chosen)
        raise UserError(f"no class named {chosen!r}; the model's classes: {', '.join(net.class_names)}")
    if not 0 <= int(chosen) < net.num_classes:
        raise UserError(f"class {chosen} is out of range (the model has {net.num_classes} classes)")
    return int(chosen)


# ---------------------------------------------------------------- feature maps


@dataclass(frozen=True)
class FeatureMap:
    layer: str  # its path, nested models included: "mobilenetv3small/conv"
    kind: str  # Conv2D, DepthwiseConv2D ...
    activations: np.ndarray  # (height, width, channels)

    @property
    def channels(self) -> int:
        return int(self.activations.shape[-1])


@dataclass
class Features:
    image: np.ndarray  # (size, size, channels) in [0, 1]
    class_names: list[str]
    probabilities: np.ndarray
    maps: list[FeatureMap] = field(default_factory=list)

    @property
    def predicted(self) -> str:
        return self.class_names[int(self.probabilities.argmax())]

    @property
    def probability(self) -> float:
        return float(self.probabilities.max())

    def drawn(self) -> tuple[list[FeatureMap], list[FeatureMap]]:
        """(the maps worth drawing, the 1×1 ones): a 1×1 output (squeeze-and-excitation, a backbone's
        last convolutions on small images) is one number a channel, no picture."""
        pictures = [m for m in self.maps if m.activations.shape[0] * m.activations.shape[1] > 1]
        return pictures, [m for m in self.maps if m not in pictures]


def feature_maps(net: Any, pixels: np.ndarray) -> Features:
    """The activations of every convolution (in the order they run) for one image, and its prediction."""
    model = net.keras_model
    convs = conv_layers(model)
    if not convs:
        raise ModelError("the model has no convolution layers, so it has no feature maps", path=net.source)
    x = _batch(pixels, net)
    with _watching(convs) as watch:
        probabilities = _as_numpy(_forward(model, x))[0]
    maps = []
    for path, layer in watch.order:
        out = _as_numpy(watch.outputs[id(layer)])
        if out.ndim == 4:  # (1, h, w, c); a convolution outside the image path (e.g. 1-D) has none
            maps.append(FeatureMap(path, type(layer).__name__, out[0]))
    return Features(x[0], list(net.class_names), probabilities, maps)


def mosaic(activations: np.ndarray, *, max_channels: int | None = None, columns: int | None = None,
           gap: int = 1, fill: float = np.nan) -> tuple[np.ndarray, list[int]]:
    """The channels of one layer side by side, each scaled to [0, 1] on its own (a dead channel stays 0),
    with ``gap`` pixels of ``fill`` between them (NaN: drawn as background). With ``max_channels``, the most active channels are shown
    (in their order). Returns the grid and the channel numbers shown."""
    h, w, c = activations.shape
    chosen = list(range(c))
    if max_channels is not None and c > max_channels:
        strength = activations.reshape(-1, c).mean(axis=0)
        chosen = sorted(np.argsort(-strength, kind="stable")[:max_channels].tolist())
    count = len(chosen)
    columns = max(1, min(columns or int(np.ceil(np.sqrt(count))), count))
    rows = int(np.ceil(count / columns))
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), fill, dtype=np.float32)
    for k, channel in enumerate(chosen):
        plane = activations[..., channel].astype(np.float32)
        low, high = float(plane.min()), float(plane.max())
        scaled = (plane - low) / (high - low) if high > low else np.zeros_like(plane)
        r, col = divmod(k, columns)
        grid[r * (h + gap): r * (h + gap) + h, col * (w + gap): col * (w + gap) + w] = scaled
    return grid, chosen


# ---------------------------------------------------------------- Grad-CAM


@dataclass
class GradCam:
    image: np.ndarray  # (size, size, channels) in [0, 1]
    heatmap: np.ndarray  # (h, w) in [0, 1] at the layer's resolution
    layer: str
    class_names: list[str]
    probabilities: np.ndarray
    class_index: int  # the class explained
    method: str = "hirescam"

    @property
    def explained(self) -> str:
        return self.class_names[self.class_index]

    @property
    def predicted(self) -> str:
        return self.class_names[int(self.probabilities.argmax())]

    def upsampled(self, size: int | None = None) -> np.ndarray:
        """The heatmap stretched (bilinear) over ``size`` x ``size`` pixels (the image's size by default)."""
        return resize(self.heatmap, size or self.image.shape[0], smooth=True)


def _run_order(net: Any, pixels: np.ndarray) -> list[tuple[str, Any, tuple[int, ...]]]:
    """Every leaf layer that runs for this image, in the order it runs, with its output's shape."""
    model = net.keras_model
    with _watching(leaf_layers(model)) as watch:
        _forward(model, _batch(pixels, net))
    return [(path, layer, tuple(getattr(watch.outputs[id(layer)], "shape", ()))) for path, layer in watch.order]


def grad_cam_layer(net: Any, pixels: np.ndarray) -> tuple[str, Any]:
    """The layer Grad-CAM looks at: the last one with an image-shaped (4-D) output after the last
    convolution, i.e. what the network pools globally or flattens (the seed CNN: its last max-pooling;
    a ResNet: its last block's activation)."""
    return _target(net, _run_order(net, pixels))


def _target(net: Any, order: list[tuple[str, Any, tuple[int, ...]]]) -> tuple[str, Any]:
    last = max((i for i, (_, layer, shape) in enumerate(order) if is_conv(layer) and len(shape) == 4), default=None)
    if last is None:
        raise ModelError("the model has no convolution layers, so Grad-CAM has nothing to look at", path=net.source)
    end = last
    while end + 1 < len(order) and len(order[end + 1][2]) == 4:
        end += 1
    return order[end][0], order[end][1]


def _head(order: list[tuple[str, Any, tuple[int, ...]]]) -> Any:
    """The model's last layer when it ends in a softmax (its activation, or a Softmax layer), else None."""
    if not order:
        return None
    layer = order[-1][1]
    return layer if _is_softmax(getattr(layer, "activation", None)) or _is_softmax_layer(layer) else None


METHODS = ("hirescam", "gradcam")


def method_label(method: str) -> str:
    return {"hirescam": "Grad-CAM (HiResCAM)", "gradcam": "Grad-CAM"}.get(method, method)


def grad_cam(net: Any, pixels: np.ndarray, class_index: int | str | None = None, *,
             method: str = "hirescam") -> GradCam:
    """A class-activation heatmap over ``grad_cam_layer``: the layer's activations times the gradient of
    the class's score, summed over channels, negative parts dropped, scaled to [0, 1].

    ``gradcam`` (Selvaraju et al.) first averages each channel's gradient over the map; ``hirescam``
    (Draelos & Carin), the default, keeps the gradient of each position. Where the network averages the
    map globally the two agree; where it flattens it (the seed CNN) the averaged weights cancel out and,
    measured on images with a planted square, often leave an empty map, while HiResCAM finds the square.
    The score is the class's logit, before the softmax: a confident softmax rounds to 1.0 and its
    gradient to 0. ``class_index`` (an index or a class name): the class to explain, the predicted one
    by default."""
    if method not in METHODS:
        raise UserError(f"unknown heatmap method {method!r}; choose {' or '.join(METHODS)}")
    model = net.keras_model
    x = _batch(pixels, net)
    order = _run_order(net, pixels)
    path, layer = _target(net, order)
    head = _head(order)
    backend = backend_name()
    gradient = {"tensorflow": _gradient_tensorflow, "jax": _gradient_jax}.get(backend)
    if gradient is None:
        raise UserError(f"Grad-CAM needs the TensorFlow or JAX backend; KERAS_BACKEND is {backend!r}")
    with _watching([(path, layer)] + ([("head", head)] if head is not None and head is not layer else []),
                   head=head) as watch:
        watch.target = layer
        probabilities = _as_numpy(_forward(model, x))[0]
        wanted = _class_index(net, class_index, probabilities)
        shape = tuple(int(d) for d in watch.outputs[id(layer)].shape)
        # logits when the head's softmax can be left out; else log-probabilities, or a foreign model's output
        watch.logits = head is not None
        score = "raw" if head is not None or not _is_probability(probabilities) else "log"
        activations, grads = gradient(model, x, watch, shape, wanted, score)
    weights = grads[0] if method == "hirescam" else grads[0].mean(axis=(0, 1))
    cam = np.maximum((activations[0] * weights).sum(axis=-1), 0.0)
    top = float(cam.max())
    heatmap = (cam / top if top > 0 else cam).astype(np.float32)
    return GradCam(x[0], heatmap, path, list(net.class_names), probabilities, wanted, method)


def _is_probability(output: np.ndarray) -> bool:
    """Softmax outputs (every cnn-tui model); a foreign model's logits are explained as they are."""
    return bool(output.min() >= 0 and abs(float(output.sum()) - 1.0) < 1e-3)


def _gradient_tensorflow(model: Any, x: np.ndarray, watch: _Watch, shape: tuple[int, ...], wanted: int,
                         score: str) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

    delta = tf.zeros(shape)
    watch.delta = delta
    watch.reset()
    with tf.GradientTape() as tape:
        tape.watch(delta)
        out = _forward(model, x)
        value = tf.math.log(out[0, wanted] + SMALL) if score == "log" else out[0, wanted]
    grads = tape.gradient(value, delta)
    if grads is None:  # the class does not depend on that layer (should not happen for the last conv block)
        grads = tf.zeros(shape)
    return _as_numpy(watch.outputs[id(watch.target)]), np.asarray(grads, dtype=np.float32)


def _gradient_jax(model: Any, x: np.ndarray, watch: _Watch, shape: tuple[int, ...], wanted: int,
                  score: str) -> tuple[np.ndarray, np.ndarray]:
    import jax  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up
    import jax.numpy as jnp  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

    def value(delta: Any) -> tuple[Any, Any]:
        watch.delta = delta
        watch.reset()
        out = _forward(model, x)
        return (jnp.log(out[0, wanted] + SMALL) if score == "log" else out[0, wanted]), watch.outputs[id(watch.target)]

    (_, activations), grads = jax.value_and_grad(value, has_aux=True)(jnp.zeros(shape, dtype=jnp.float32))
    return np.asarray(activations, dtype=np.float32), np.asarray(grads, dtype=np.float32)


# ---------------------------------------------------------------- pictures (numpy, no matplotlib)


def resize(plane: np.ndarray, size: int, *, smooth: bool) -> np.ndarray:
    """A 2-D float array resized to ``size`` x ``size`` (bilinear, or nearest for pixels)."""
    image = Image.fromarray(np.asarray(plane, dtype=np.float32), mode="F")
    resample = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    return np.asarray(image.resize((size, size), resample), dtype=np.float32)


def heat_colours(values: np.ndarray) -> np.ndarray:
    """A jet-like colour map (blue → cyan → yellow → red) for values in [0, 1]: (..., 3) in [0, 1]."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # where red, green and blue peak
    return np.clip(1.5 - np.abs(4.0 * (v - centres)), 0.0, 1.0)


def overlay(cam: GradCam, size: int | None = None, alpha: float = 0.45) -> np.ndarray:
    """The image (grey or colour) with the heatmap laid over it: (size, size, 3) in [0, 1]."""
    size = size or cam.image.shape[0]
    image = cam.image
    planes = [resize(image[..., k], size, smooth=False) for k in range(image.shape[-1])]
    rgb = np.stack(planes * 3 if len(planes) == 1 else planes, axis=-1)
    heat = heat_colours(cam.upsampled(size))
    return np.clip((1 - alpha) * rgb + alpha * heat, 0.0, 1.0)
