"""Pretrained backbones from ``keras.applications`` with a new classification head.

The network is: the input (and any augmentation), grayscale repeated to 3 channels,
a resize up to the backbone's input size, a rescaling from cnn-tui's [0, 1] pixels to
the range the backbone was trained on, the backbone (a nested model named
``backbone``, built without its ImageNet classifier, global average pooled), dropout
and a softmax. Every layer is Keras's own, so the model saves and loads in safe mode.

Input size. Each backbone refuses images under 32x32 (``keras.applications`` checks
``min_size=32`` for all three), so smaller images are resized up to 32. With
pretrained weights (``imagenet`` or a file) images are resized up to at least 96:
ImageNet features were learnt on objects about 224 px wide, and at 32 px the
backbones' 32x down-sampling leaves a single 1x1 feature map, while 96 (the smallest
size Keras publishes MobileNetV2 weights for) keeps a 3x3 map at about 9x the compute
of 32. Larger images are used at their own size.

Pixel range. MobileNetV3 and EfficientNetV2 keep their built-in preprocessing
(``include_preprocessing``, the default their ImageNet weights were trained with; it
expects 0-255, and EfficientNetV2's also normalises by ImageNet's mean and variance), so
pixels are scaled by 255. ResNet50V2 has none and expects [-1, 1] (its ``preprocess_input``).

Weights (the ``weights`` field): ``none`` (random), ``imagenet`` (the file Keras names
for the backbone without its top, looked up in ``$KERAS_HOME/models/``, default
``~/.keras/models/``, else downloaded there once; offline, a one-line error names the
file and its address), or the path of a weights file: a ``.weights.h5`` saved by Keras
from the same backbone (``backbone.save_weights``), or the ``keras.applications`` notop
``.h5`` itself. A path may start with ``~``; a relative path is relative to the working
folder (a model file records the value as given, and is loaded without it).

Fine-tuning (``phases``), the recipe of Keras's transfer-learning guide: with
pretrained weights, the first ``freeze_epochs`` train only the new head with the whole
backbone frozen, then the top ``unfreeze_layers`` layers of the backbone (counted as
``backbone.layers`` lists them, as in the guide) train too, recompiled at ``init_rate *
fine_tune_rate``; batch-norm layers stay frozen throughout, so they keep running in
inference mode with their ImageNet statistics (a small batch would wreck them). The network
is built with the first stage's flags, so its summary counts what training starts with, and a
fit that does not train in stages (a tuning fit) keeps the pretrained layers frozen. With
``weights: none`` there is nothing to protect: the whole network, batch norm included,
trains from the first epoch at ``init_rate``, and ``freeze_epochs``/``unfreeze_layers``/
``fine_tune_rate`` are ignored.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui.core.architectures.inputs import input_and_front
from cnn_tui.core.architectures.phases import Phase
from cnn_tui.core.backend import load_keras
from cnn_tui.core.errors import ModelError, ParamsError

MIN_IMAGE_SIZE = 8  # smaller images hold too little to be worth resizing up
PRETRAINED_MIN_SIZE = 96  # see the module docstring
DOWNLOAD_TIMEOUT = 10  # seconds to connect, and between two chunks of a download
KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class Backbone:
    name: str
    application: str  # the keras.applications constructor
    min_size: int  # what keras.applications accepts
    scale: float  # [0, 1] pixels times scale plus offset: the range the backbone expects
    offset: float
    preprocessing_flag: bool  # the constructor takes include_preprocessing
    # The ImageNet weights without the classifier, as keras.applications names, fetches and checks them
    weights_file: str
    weights_folder: str
    weights_md5: str

    @property
    def weights_url(self) -> str:
        return f"{KERAS_WEIGHTS}{self.weights_folder}/{self.weights_file}"


BACKBONES = (
    Backbone("mobilenet_v3_small", "MobileNetV3Small", 32, 255.0, 0.0, True,
             "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", "mobilenet_v3",
             "d3e8ec802a04aa4fc771ee12a9a9b836"),
    Backbone("efficientnet_v2_b0", "EfficientNetV2B0", 32, 255.0, 0.0, True,
             "efficientnetv2-b0_notop.h5", "efficientnet_v2", "893217f2bb855e2983157299931e43ff"),
    Backbone("resnet50_v2", "ResNet50V2", 32, 2.0, -1.0, False,
             "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet", "fac2f116257151a9d068a22e544a4917"),
)
_BY_NAME = {b.name: b for b in BACKBONES}


# ---------------------------------------------------------------- the weights field


def weights_kind(value: str) -> str:
    """``none``, ``imagenet`` or ``file`` (any other value is a path)."""
    word = value.strip().lower()
    return word if word in ("none", "imagenet") else "file"


def weights_path(value: str) -> Path:
    """A weights file's path: ``~`` expanded, relative to the working folder."""
    return Path(value.strip()).expanduser()


def check_weights(value: str) -> None:
    if weights_kind(value) != "file":
        return
    if not value.strip():
        raise ParamsError("weights is empty; use none, imagenet or the path of a .h5 weights file")
    path = weights_path(value)
    if path.suffix != ".h5":
        raise ParamsError("weights must be none, imagenet or a .h5 weights file (a .weights.h5 saved by Keras, or "
                          "the keras.applications notop .h5)", path=path)
    if path.is_dir():
        raise ParamsError("weights names a folder, not a .h5 weights file", path=path)
    if not path.is_file():
        raise ParamsError("weights file not found (a relative path is taken from the working folder)", path=path)


def keras_models_dir() -> Path:
    """Where Keras caches downloaded weights: ``$KERAS_HOME/models`` (default ``~/.keras/models``),
    or ``/tmp/.keras/models`` when that home is not writable, as Keras falls back."""
    home = Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()
    if home.exists() and not os.access(home, os.W_OK):
        home = Path("/tmp/.keras")
    return home / "models"


def imagenet_file(backbone: Backbone) -> Path:
    """The backbone's ImageNet weights file: from Keras's cache, else downloaded into it."""
    target = keras_models_dir() / backbone.weights_file
    if target.is_file():
        return target
    try:
        _download(backbone.weights_url, target, backbone.weights_md5)
    except (OSError, ValueError) as exc:  # URLError, timeouts and refused connections are OSErrors
        # URLError keeps the cause in .reason, e.g. "[Errno -2] Name or service not known"
        reason = (getattr(exc, "reason", None) or exc.strerror or exc) if isinstance(exc, OSError) else exc
        raise ModelError(f"no ImageNet weights for {backbone.application} here, and the download failed ({reason}); "
                         f"download {backbone.weights_url} and place it at this path", path=target) from None
    return target


def _download(url: str, target: Path, md5: str) -> None:
    """Fetch ``url`` into ``target`` whole or not at all, checking it as Keras does (md5). A timeout
    bounds each wait, so an offline machine fails within seconds, not at the OS's TCP timeout."""
    import urllib.request  # noqa: PLC0415 — only here: it pulls in http and email modules the start-up does not need

    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise ValueError("the downloaded file is damaged: its md5 differs from Keras's")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def load_weights(base: Any, backbone: Backbone, value: str) -> None:
    """Load the ``weights`` value into the built backbone; a bad file is one line naming it."""
    kind = weights_kind(value)
    if kind == "none":
        return
    path = imagenet_file(backbone) if kind == "imagenet" else weights_path(value)
    if kind == "file":
        check_weights(value)
    try:
        # Keras reads a .weights.h5 by layer path and a legacy notop .h5 by layer order, as
        # keras.applications itself loads it; h5 weights hold arrays only, nothing that runs
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base.load_weights(str(path))
        # Keras only warns when it skips a part of the network it finds no weights for
        skipped = [w for w in caught if "freshly-initialized" in str(w.message) or "Skipping" in str(w.message)]
        if skipped:
            raise ValueError(str(skipped[0].message))
    except Exception as exc:  # h5py and Keras raise many types for a wrong or damaged file  # noqa: BLE001
        text = str(exc).strip()
        first = text.splitlines()[0][:200] if text else type(exc).__name__
        hint = "; delete it to download it again" if kind == "imagenet" else ""
        raise ModelError(f"cannot load these weights into {backbone.application}: not its weights, or a damaged "
                         f"file ({first}){hint}", path=path) from None


# ---------------------------------------------------------------- the network


BN_MOMENTUM = 0.9


def input_size(backbone: Backbone, image_size: int, weights: str = "none") -> int:
    floor = backbone.min_size if weights_kind(weights) == "none" else max(backbone.min_size, PRETRAINED_MIN_SIZE)
    return max(image_size, floor)


def build(config: Any, *, image_size: int, channels: int, classes: int, front: list[Any]) -> Any:
    keras = load_keras()
    layers = keras.layers
    backbone = _BY_NAME[config.architecture]
    inputs, x = input_and_front(keras, image_size, channels, front)
    if channels == 1:
        x = layers.Concatenate(name="to_rgb")([x, x, x])
    size = input_size(backbone, image_size, config.weights)
    if size != image_size:
        x = layers.Resizing(size, size, name="resize")(x)
    x = layers.Rescaling(backbone.scale, offset=backbone.offset, name="backbone_range")(x)
    # weights=None, then our own loading: the download and a bad file then end in one line, not a traceback
    options: dict[str, Any] = dict(include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
    if backbone.preprocessing_flag:
        options["include_preprocessing"] = True
    base = getattr(keras.applications, backbone.application)(**options)
    base.name = "backbone"  # after building: EfficientNetV2 picks its blocks by the name it is given
    load_weights(base, backbone, config.weights)
    # the flags of the first stage (see phases), so the summary's trainable count is what training
    # starts with, and fits that do not train in stages (tuning) keep pretrained features frozen
    if weights_kind(config.weights) != "none":
        if config.freeze_epochs > 0:
            freeze_all(base)
        else:
            unfreeze_top(base, config.unfreeze_layers)
    else:
        # trained from scratch: MobileNetV3's batch norm averages with momentum 0.999, so after a few
        # hundred steps its running statistics are still mostly the initial ones and inference is at
        # chance; 0.9 (PyTorch's default) settles within a few dozen steps
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = BN_MOMENTUM
    x = base(x)
    x = layers.Dropout(config.drop_out, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=backbone.name)


def check(config: Any, image_size: int) -> None:
    if image_size < MIN_IMAGE_SIZE:
        raise ParamsError(f"image_size {image_size} is too small for a pretrained backbone; "
                          f"use at least {MIN_IMAGE_SIZE}")
    check_weights(config.weights)


def title(config: Any) -> str:
    return f"{_BY_NAME[config.architecture].application} backbone (weights: {config.weights}) + new head"


# ---------------------------------------------------------------- fine-tuning


def freeze_all(base: Any) -> None:
    base.trainable = False  # Keras sets every layer inside; frozen batch norm runs in inference mode


def unfreeze_top(base: Any, count: int) -> None:
    """Train the top ``count`` layers of the backbone, except batch norm."""
    keras = load_keras()
    layers = list(base.layers)
    top = {id(layer) for layer in layers[max(0, len(layers) - count):]} if count > 0 else set()
    base.trainable = True  # the backbone's own flag gates all its layers' weights
    for layer in layers:
        layer.trainable = id(layer) in top and not isinstance(layer, keras.layers.BatchNormalization)


def train_all(base: Any) -> None:
    base.trainable = True


def phases(keras_model: Any, config: Any) -> list[Phase]:
    """The stages of training: the backbone frozen for ``freeze_epochs``, then its top layers trained
    at ``fine_tune_rate`` times the rate (one stage when there are no pretrained weights)."""
    base = keras_model.get_layer("backbone")
    frozen = min(config.freeze_epochs, config.epochs)

    def span(epochs: int, warmup: int) -> Any:
        return config.replace(epochs=max(1, epochs), warmup_epochs=min(warmup, max(0, epochs - 1)))

    if weights_kind(config.weights) == "none":
        return [Phase(config.epochs, lambda: train_all(base), span(config.epochs, config.warmup_epochs))]
    return [
        Phase(frozen, lambda: freeze_all(base), span(frozen, config.warmup_epochs)),
        Phase(config.epochs, lambda: unfreeze_top(base, config.unfreeze_layers),
              span(config.epochs - frozen, 0 if frozen else config.warmup_epochs), config.fine_tune_rate),
    ]


ARCHITECTURES = tuple(dict(name=b.name, build=build, check=check, title=title, pretrained=True, phases=phases)
                      for b in BACKBONES)
