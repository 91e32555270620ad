"""A network as cnn-tui holds it: build it from hyper params (any registered architecture,
with augmentation), describe it, save and load it safely.

A saved ``.keras`` file is Keras's own zip archive with one extra member,
``cnn_tui.json``, recording the class names, input size and hyper params the
model was trained with, so ``classify`` needs nothing but the model file.
Loading inspects the archive's ``config.json`` first and refuses Lambda layers
and custom objects before Keras deserialises anything; Keras's safe mode stays
on as a second guard.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_tui.core import fileio
from cnn_tui.core.architectures import architecture
from cnn_tui.core.backend import accelerators, load_keras
from cnn_tui.core.errors import ModelError, UserError
from cnn_tui.core.fileio import excerpt
from cnn_tui.core.memory import available_memory_bytes
from cnn_tui.core.models.augmentation import augmentation_layers
from cnn_tui.core.models.optimizers import compile_model
from cnn_tui.core.models.threshold import Threshold, recorded_threshold
from cnn_tui.core.params.files import HyperParams, ModelConfig

METADATA_MEMBER = "cnn_tui.json"
# What a member may unpack to is judged from the archive's own directory before anything is read:
# Keras's archives store their members as they are (a member holds what it takes on disk), and even
# a deflated one of float weights shrinks little. A member that claims more than this many times the
# whole archive, plus a margin for small files, is damage or a zip bomb (2 GiB of zeros in 2 MB);
# and all of them together must fit in the free memory, which is where Keras unpacks them.
UNPACKED_PER_ARCHIVE_BYTE = 8
UNPACKED_MARGIN = 64 * 2**20


@dataclass(frozen=True)
class SummaryRow:
    name: str
    kind: str
    output_shape: str
    params: int


@dataclass(frozen=True)
class ParamTotals:
    total: int
    trainable: int
    non_trainable: int
    total_bytes: int
    trainable_bytes: int
    non_trainable_bytes: int


def readable_size(nbytes: int) -> str:
    """Bytes as Keras's summary prints them: '3.12 MB'."""
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} GB"


@dataclass
class NetModel:
    """A Keras model plus what it was trained on (class names, input size, hyper params)."""

    keras_model: Any
    class_names: list[str]
    image_size: int
    channels: int
    config: ModelConfig | None = None
    source: Path | None = None
    names_known: bool = True  # False: a Keras model from elsewhere, its classes only numbered
    epochs_done: int | None = None  # whole epochs trained, recorded in the file (a resume starts there)
    # temperature scaling (``--calibrate``): probabilities are softmax(log p / T); 1.0 = as the network gives them
    temperature: float = 1.0
    # an operating threshold for one class (``--positive``): that class when its probability reaches it
    threshold: Threshold | None = None
    # a fold ensemble (``models.ensemble``): one record a member (its file, temperature); None: one network
    members: list[dict[str, Any]] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def title(self) -> str:
        """What the network is, e.g. "seed CNN: 2 convolutions x 32 filters, dense 512"."""
        if self.config is None:
            return f"Keras model '{self.keras_model.name}'"
        return architecture(self.config.architecture).title(self.config)

    def summary_rows(self) -> list[SummaryRow]:
        rows = []
        for layer in self.keras_model.layers:
            shape = tuple(layer.output.shape)
            rows.append(SummaryRow(layer.name, type(layer).__name__, str(shape), int(layer.count_params())))
        return rows

    def totals(self) -> ParamTotals:
        def count(weights: list[Any]) -> tuple[int, int]:
            n = sum(int(_prod(w.shape)) for w in weights)
            nbytes = sum(int(_prod(w.shape)) * _itemsize(w.dtype) for w in weights)
            return n, nbytes

        trainable, trainable_bytes = count(self.keras_model.trainable_weights)
        frozen, frozen_bytes = count(self.keras_model.non_trainable_weights)
        return ParamTotals(
            trainable + frozen, trainable, frozen, trainable_bytes + frozen_bytes, trainable_bytes, frozen_bytes
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "format": 1,
            "class_names": self.class_names,
            "image_size": self.image_size,
            "channels": self.channels,
            "hyper_params": self.config.as_dict() if self.config else None,
            "epochs_done": self.epochs_done,
            "temperature": self.temperature,
            "threshold": self.threshold.as_dict() if self.threshold else None,
            **({"ensemble": {"members": self.members}} if self.members is not None else {}),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model atomically: a killed process leaves the previous file whole."""
        path = Path(path)
        if path.suffix != ".keras":
            raise ModelError("model files must end in .keras", path=path)
        with fileio.atomic_path(path, suffix=".keras") as tmp:
            self.keras_model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(METADATA_MEMBER, json.dumps(self.metadata(), indent=2))
        return path

    def check_fits(
        self, *, num_classes: int, image_size: int, class_names: list[str] | None = None, what: str = "data",
        channels: int | None = None,
    ) -> None:
        """Refuse data the model cannot be used on, saying exactly what differs."""
        if channels is not None and channels != self.channels:
            kinds = {1: "grayscale (1 channel)", 3: "colour (3 channels)"}
            raise ModelError(
                f"the model expects {kinds.get(self.channels, f'{self.channels} channels')} images but the {what} "
                f"was loaded as {kinds.get(channels, f'{channels} channels')}; load it again with this model "
                "loaded, so its images are converted", path=self.source)
        if num_classes != self.num_classes:
            raise ModelError(
                f"the model classifies {self.num_classes} classes but the {what} has {num_classes}", path=self.source
            )
        if image_size != self.image_size:
            raise ModelError(
                f"the model expects {self.image_size}x{self.image_size} images but the {what} uses "
                f"image_size {image_size}",
                path=self.source,
            )
        if (class_names is not None and list(class_names) != self.class_names and self.names_known
                and not self._generic_names()):
            raise ModelError(
                f"the model's classes ({', '.join(self.class_names)}) differ from the {what}'s "
                f"({', '.join(class_names)})",
                path=self.source,
            )

    def _generic_names(self) -> bool:
        # a model from elsewhere has no names recorded: any folder names are accepted
        return self.class_names == [str(i) for i in range(self.num_classes)]

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, with_optimizer: bool = False) -> NetModel:
        """``with_optimizer``: restore the optimizer's state too (momentum, the learning-rate
        schedule's step), so training goes on where it stopped."""
        path = Path(path)
        meta = inspect_archive(path)
        keras = load_keras()
        try:
            # compile=False to predict: the optimizer's saved state is not needed, and restoring it
            # into an unbuilt optimizer only produces warnings; training again recompiles below.
            model = keras.models.load_model(path, safe_mode=True, compile=with_optimizer)
        except Exception as exc:  # Keras raises many types for a bad archive  # noqa: BLE001
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load the model ({excerpt(first_line, 200)})", path=path) from None
        shape = getattr(model, "input_shape", None)
        if not (isinstance(shape, tuple) and len(shape) == 4 and shape[1] == shape[2] and shape[3] in (1, 3)):
            raise ModelError(f"not an image classifier cnn-tui can use (input shape {shape})", path=path)
        classes = int(model.output_shape[-1])
        names = meta.get("class_names") or [str(i) for i in range(classes)]
        if len(names) != classes:
            raise ModelError(f"the model has {classes} outputs but records {len(names)} class names", path=path)
        config = _recorded_config(meta.get("hyper_params"))
        if config is not None and getattr(model, "optimizer", None) is None:
            compile_model(model, config)
        done = meta.get("epochs_done")
        return cls(model, list(names), int(shape[1]), int(shape[3]), config, path, names_known=bool(meta.get("class_names")),
                   epochs_done=done if isinstance(done, int) else None, temperature=recorded_temperature(meta, path),
                   threshold=recorded_threshold(meta, list(names), path), members=_recorded_members(meta))


def _recorded_members(meta: dict[str, Any]) -> list[dict[str, Any]] | None:
    """An ensemble's record of its members (a list of objects); None for one network or a damaged record."""
    record = meta.get("ensemble")
    members = record.get("members") if isinstance(record, dict) else None
    if not isinstance(members, list):
        return None
    return [m for m in members if isinstance(m, dict)]


def recorded_temperature(meta: dict[str, Any], path: Path) -> float:
    """The file's temperature; 1.0 (the network's own probabilities) for a file written before it existed."""
    value = meta.get("temperature", 1.0)
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ModelError(f"damaged model file: its temperature is {excerpt(json.dumps(value), 40)} "
                         "(a positive number)", path=path)
    return float(value)


def _recorded_config(hyper: Any) -> ModelConfig | None:
    """The hyper params a model file records, validated like a hyper-params file. A file written
    before a field existed lacks it, and the field's default (the old behaviour) fills in."""
    if not isinstance(hyper, dict):
        return None
    try:
        return HyperParams.from_dict(hyper).first()
    except UserError:
        return None


def inspect_archive(path: Path) -> dict[str, Any]:
    """Check a .keras archive without running anything from it; return cnn-tui's metadata."""
    if not path.exists():
        raise ModelError("model file not found", path=path)
    if path.is_dir():
        raise ModelError("is a folder, not a .keras model file", path=path)
    if path.suffix != ".keras":
        raise ModelError("not a .keras model file (Keras 3 saves models as .keras)", path=path)
    try:
        with zipfile.ZipFile(path) as archive:
            _check_unpacked_sizes(archive, path)
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelError("not a Keras model archive (no config.json inside)", path=path)
            config = json.loads(archive.read("config.json"))
            meta = json.loads(archive.read(METADATA_MEMBER)) if METADATA_MEMBER in names else {}
    except zipfile.BadZipFile:
        raise ModelError("not a Keras model file (not a zip archive, or truncated)", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError("damaged model file (its configuration is not valid JSON)", path=path) from None
    except OSError as exc:
        raise ModelError(f"cannot read the model file ({exc.strerror or exc})", path=path) from None
    unsafe = _unsafe_objects(config)
    if unsafe:
        raise ModelError(
            f"refused: the model contains {unsafe[0]}, which would run Python code from the file; "
            "cnn-tui loads models in Keras safe mode only",
            path=path,
        )
    return meta if isinstance(meta, dict) else {}


def _check_unpacked_sizes(archive: zipfile.ZipFile, path: Path) -> None:
    """Refuse an archive whose members claim to unpack to more than it can honestly hold, or to more
    than the free memory. Python's zipfile stops a member at the size the directory declares (and a
    member that lies fails its CRC there), so the declared sizes bound everything read later."""
    members = archive.infolist()
    packed = path.stat().st_size
    limit = UNPACKED_PER_ARCHIVE_BYTE * packed + UNPACKED_MARGIN
    holds = f"more than a {readable_size(packed)} archive honestly holds (a damaged file or a zip bomb)"
    for member in members:
        if member.file_size > limit:
            raise ModelError(f"refused: its member '{excerpt(member.filename)}' would unpack to "
                             f"{readable_size(member.file_size)}, {holds}", path=path)
    total = sum(member.file_size for member in members)
    if total > limit:
        raise ModelError(f"refused: its members would unpack to {readable_size(total)}, {holds}", path=path)
    free = available_memory_bytes()
    if free is not None and total > free:
        raise ModelError(f"refused: its members would unpack to {readable_size(total)}, more than the free memory "
                         f"({readable_size(free)})", path=path)


def _unsafe_objects(node: Any) -> list[str]:
    """Lambda layers and objects from outside Keras anywhere in a model config."""
    found: list[str] = []
    if isinstance(node, dict):
        name, module = node.get("class_name"), node.get("module")
        if name == "Lambda":
            found.append("a Lambda layer")
        elif isinstance(name, str) and isinstance(module, str) and not module.startswith("keras"):
            found.append(f"a custom object '{excerpt(name)}' from '{excerpt(module)}'")
        for value in node.values():
            found += _unsafe_objects(value)
    elif isinstance(node, list):
        for item in node:
            found += _unsafe_objects(item)
    return found


def _prod(shape: Any) -> int:
    result = 1
    for dim in shape:
        result *= int(dim)
    return result


def _itemsize(dtype: Any) -> int:
    import numpy as np  # noqa: PLC0415 — numpy is not loaded before a task needs it (the first frame, --help)

    return np.dtype(str(dtype)).itemsize  # Keras 3 variables carry their dtype as a name


def build_model(config: ModelConfig, *, image_size: int, channels: int, class_names: list[str]) -> NetModel:
    """The configuration's architecture, with its augmentation layers in front, compiled."""
    arch = architecture(config.architecture)
    arch.check(config, image_size)
    check_memory(config, image_size=image_size, channels=channels, classes=len(class_names))
    with precision_policy(config):
        keras_model = arch.build(config, image_size=image_size, channels=channels, classes=len(class_names),
                                 front=augmentation_layers(config))
    compile_model(keras_model, config)
    return NetModel(keras_model, list(class_names), image_size, channels, config)


class precision_policy:  # noqa: N801 - used as a context manager, named like one
    """Build under mixed_float16 when the configuration asks for it and a GPU is there (float16
    on a CPU is slower, not faster); the global policy is restored afterwards."""

    def __init__(self, config: ModelConfig) -> None:
        self.wanted = bool(config.mixed_precision)

    def __enter__(self) -> None:
        keras = load_keras()
        self.previous = keras.config.dtype_policy().name
        if self.wanted and accelerators():
            keras.config.set_dtype_policy("mixed_float16")

    def __exit__(self, *exc: Any) -> None:
        load_keras().config.set_dtype_policy(self.previous)


def layer_weights(config: ModelConfig, *, image_size: int, channels: int, classes: int) -> dict[str, int]:
    """The network's weights per layer, known before anything is built (empty when the
    architecture cannot tell, as for a pretrained backbone of fixed size)."""
    count = architecture(config.architecture).weights
    return count(config, image_size=image_size, channels=channels, classes=classes) if count else {}


# Training holds each weight about three times in float32: the value, its gradient, its momentum.
BYTES_PER_WEIGHT = 3 * 4


def check_memory(config: ModelConfig, *, image_size: int, channels: int, classes: int) -> None:
    """Refuse, in one line naming the largest layer, a network that cannot fit in memory
    (num_units 2147483647 would otherwise end in an allocator's traceback)."""

    weights = layer_weights(config, image_size=image_size, channels=channels, classes=classes)
    total = sum(weights.values())
    free = available_memory_bytes()
    if not weights or free is None or total * BYTES_PER_WEIGHT <= free:
        return
    name, biggest = max(weights.items(), key=lambda item: item[1])
    raise ModelError(
        f"the network would hold {total:,} weights ({readable_size(total * BYTES_PER_WEIGHT)} to train), more than "
        f"the free memory ({readable_size(free)}); its layer '{name}' alone has {biggest:,}: "
        "lower num_units, num_filters or image_size")
