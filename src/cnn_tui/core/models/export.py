"""Export a trained model to the formats models are deployed in, and check the export predicts
what the Keras model predicts.

``export`` writes the artifact with Keras 3's ``model.export`` (TensorFlow SavedModel, ONNX through
tf2onnx, LiteRT/TFLite through TensorFlow's converter), into a temp folder beside the target that
replaces it once whole. ``parity`` loads the artifact back with its own runtime (TensorFlow,
ONNX Runtime, the LiteRT interpreter), scores the same images with it and with the Keras model,
and says how often their top-1 classes agree and how far apart their probabilities get.

Keras and the runtimes are imported when used: the core stays light to import.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.backend import backend_name, native_stderr_filtered
from cnn_tui.core.errors import UserError
from cnn_tui.core.models.temperature import scaled, with_temperature

# our name -> (Keras's name, what the artifact is, the file suffix it needs ("" for a folder))
FORMATS: dict[str, tuple[str, str, str]] = {
    "saved_model": ("tf_saved_model", "TensorFlow SavedModel folder", ""),
    "onnx": ("onnx", "ONNX file", ".onnx"),
    "litert": ("litert", "LiteRT (TFLite) flatbuffer", ".tflite"),
}
# the packages a format needs besides Keras, and the extra that installs them
NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "saved_model": (("tensorflow",), "cpu"),
    "onnx": (("tensorflow", "tf2onnx", "onnx", "onnxruntime"), "onnx"),
    "litert": (("tensorflow",), "cpu"),
}
# the Keras backends a format's exporter works on (Keras builds LiteRT from a TensorFlow or torch graph)
BACKENDS: dict[str, tuple[str, ...]] = {"litert": ("tensorflow", "torch")}
AGREEMENT_FLOOR = 0.999  # below this share of equal top-1 classes the export is not the same model
SAMPLE_SIZE = 256  # images in the built-in sample when no test folder is given
CHUNK = 256


class MissingPackage(UserError):
    """An optional package a format needs is not installed; the message names the extra."""


@dataclass(frozen=True)
class Parity:
    images: int
    agreement: float  # share of images whose top-1 class is the same, 0..1
    max_delta: float  # the largest |p_keras - p_export| over every image and class
    source: str  # what was scored: the test folder or the built-in sample

    @property
    def ok(self) -> bool:
        return self.agreement >= AGREEMENT_FLOOR

    def line(self) -> str:
        return (f"agreement {self.agreement * 100:.2f} % on {self.images:,} images, "
                f"max |\N{GREEK CAPITAL LETTER DELTA}p| {self.max_delta:.0e}")

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "agreement": self.agreement, "max_delta": self.max_delta,
                "source": self.source, "ok": self.ok}


def missing_packages(fmt: str) -> list[str]:
    return [name for name in NEEDS[fmt][0] if importlib.util.find_spec(name) is None]


def check_available(fmt: str) -> None:
    """One line naming the extra to install when a package the format needs is missing."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    missing = missing_packages(fmt)
    if missing:
        extra = NEEDS[fmt][1]
        raise MissingPackage(f"exporting to {fmt} needs {', '.join(missing)}: pip install 'cnn-tui[{extra}]'")


def check_backend(fmt: str) -> None:
    """One line where the running Keras backend cannot write ``fmt``, saying what to do instead."""
    name = backend_name()
    if name not in BACKENDS.get(fmt, (name,)):
        raise UserError(f"exporting to {fmt} needs the TensorFlow backend (this is {name}): run the export "
                        f"with KERAS_BACKEND=tensorflow (the .keras file is the same), or export to saved_model")


def default_path(model_path: str | Path, fmt: str) -> Path:
    """Beside the model: ``model_saved_model/``, ``model.onnx``, ``model.tflite``."""
    model_path = Path(model_path)
    suffix = FORMATS[fmt][2]
    return model_path.with_name(model_path.stem + (suffix or f"_{fmt}"))


def check_out(out: Path, fmt: str) -> None:
    suffix = FORMATS[fmt][2]
    if suffix and out.suffix != suffix:
        raise UserError(f"the {FORMATS[fmt][1]}'s name must end in {suffix}", path=out)
    if suffix and out.is_dir():
        raise UserError(f"is a folder; the {FORMATS[fmt][1]} is a file", path=out)
    if not suffix and out.exists() and not out.is_dir():
        raise UserError(f"is a file; the {FORMATS[fmt][1]} needs a folder name", path=out)
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError("is a file, not a folder", path=out.parent)


def export(net: Any, fmt: str, out: str | Path) -> Path:
    """Write ``net`` (a ``NetModel``) as ``fmt`` to ``out``; an existing artifact there is replaced
    only once the new one is whole."""
    check_available(fmt)
    check_backend(fmt)
    out = Path(out)
    check_out(out, fmt)
    keras_format = FORMATS[fmt][0]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as exc:
        raise UserError(f"cannot write here ({exc.strerror or exc})", path=out.parent) from None
    try:
        artifact = work / out.name
        model = net.keras_model
        # a model loaded from a file has not been called yet, and the ONNX exporter refuses such a model
        model(np.zeros((1, net.image_size, net.image_size, net.channels), dtype=np.float32), training=False)
        # a calibrated model's file gives calibrated probabilities, as classify does
        model = with_temperature(model, getattr(net, "temperature", 1.0))
        if model is not net.keras_model:
            model(np.zeros((1, net.image_size, net.image_size, net.channels), dtype=np.float32), training=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf2onnx's and TensorFlow's deprecation notes are not the user's
            try:
                model.export(str(artifact), format=keras_format, verbose=False)
            except ValueError as exc:  # e.g. LiteRT with the JAX backend
                raise UserError(f"cannot export to {fmt}: {str(exc).strip().splitlines()[0]}") from None
        if out.is_dir():
            shutil.rmtree(out)
        artifact.replace(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def artifact_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


# ---------------------------------------------------------------- loading an artifact back


def load_predictor(fmt: str, path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 image batch to class probabilities, run by the format's own runtime."""
    path = Path(path)
    if fmt == "saved_model":
        return _saved_model(path)
    if fmt == "onnx":
        return _onnx(path)
    if fmt == "litert":
        return _litert(path)
    raise UserError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")


def _saved_model(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

    loaded = tf.saved_model.load(str(path))

    def predict(x: np.ndarray) -> np.ndarray:
        # through ``loaded`` each time: the endpoint alone does not keep the loaded variables alive
        serve = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
        out = serve(tf.constant(x))
        if isinstance(out, dict):  # a signature returns its outputs by name
            out = next(iter(out.values()))
        return np.asarray(out)

    return predict


def _onnx(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    if importlib.util.find_spec("onnxruntime") is None:
        raise MissingPackage("checking an ONNX export needs onnxruntime: pip install 'cnn-tui[onnx]'")
    import onnxruntime  # noqa: PLC0415 — an optional export package, loaded only to export

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: np.asarray(session.run(None, {name: x})[0])


def _interpreter(path: Path) -> Any:
    """The LiteRT interpreter: the ai-edge-litert package when installed (TensorFlow's own is
    deprecated), else TensorFlow's."""
    if importlib.util.find_spec("ai_edge_litert") is not None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 — an optional export package, loaded only to export
    else:
        import tensorflow as tf  # noqa: PLC0415 — Keras and its backend load lazily (seconds): not at start-up

        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation note names a package to move to: not the user's concern
        return Interpreter(model_path=str(path))


def _litert(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    interpreter = _interpreter(path)
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    shape: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        if list(x.shape) != shape:  # the batch dimension is dynamic: size the tensors to this batch
            interpreter.resize_tensor_input(source["index"], list(x.shape))
            interpreter.allocate_tensors()
            shape[:] = list(x.shape)
        interpreter.set_tensor(source["index"], x.astype(source["dtype"], copy=False))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    return predict


# ---------------------------------------------------------------- parity


def sample_images(image_size: int, channels: int, count: int = SAMPLE_SIZE) -> np.ndarray:
    """Real images when no test folder is given: scikit-learn's handwritten digits, resized to
    the model's input and repeated over its channels, in [0, 1] as the app feeds images."""
    from PIL import Image  # noqa: PLC0415 — Pillow is not loaded before an image is read (the first frame, --help)
    from sklearn.datasets import load_digits  # noqa: PLC0415 — scikit-learn loads lazily (about a second): not at start-up

    digits = load_digits().images[:count]  # 8x8, values 0..16
    out = np.empty((len(digits), image_size, image_size, channels), dtype=np.float32)
    for i, digit in enumerate(digits):
        image = Image.fromarray((digit * (255 / 16)).astype(np.uint8)).resize((image_size, image_size),
                                                                                Image.Resampling.BILINEAR)
        out[i] = (np.asarray(image, dtype=np.float32) / 255.0)[..., None]
    return out


def _in_chunks(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.concatenate([predict(np.ascontiguousarray(x[i : i + CHUNK], dtype=np.float32))
                           for i in range(0, len(x), CHUNK)])


def parity(net: Any, predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, source: str) -> Parity:
    """Score ``x`` with the Keras model and with the exported one; compare."""
    if len(x) == 0:
        raise UserError(f"no images to compare the export on ({source})")
    expected = scaled(_in_chunks(lambda batch: net.keras_model.predict(batch, batch_size=CHUNK, verbose=0), x),
                      getattr(net, "temperature", 1.0))
    got = _in_chunks(predict, x).reshape(expected.shape)
    agreement = float(np.mean(expected.argmax(axis=1) == got.argmax(axis=1)))
    return Parity(len(x), agreement, float(np.max(np.abs(expected - got))), source)


@dataclass(frozen=True)
class Exported:
    fmt: str
    path: Path
    size_bytes: int
    seconds: float
    parity: Parity

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.fmt, "path": str(self.path), "size_bytes": self.size_bytes,
                "seconds": round(self.seconds, 2), "parity": self.parity.as_dict()}


# what the runtimes' C++ writes to descriptor 2 as they start: not the user's concern (anything else still shows)
NATIVE_NOISE = ("Created TensorFlow Lite XNNPACK delegate",)


def export_and_check(net: Any, fmt: str, out: str | Path, images: np.ndarray | None = None,
                     source: str = "") -> Exported:
    """Export, then score ``images`` (default: the built-in sample) with both models."""
    with native_stderr_filtered(*NATIVE_NOISE):
        started = time.perf_counter()
        path = export(net, fmt, out)
        seconds = time.perf_counter() - started
        if images is None:
            images, source = sample_images(net.image_size, net.channels), "built-in sample (scikit-learn digits)"
        checked = parity(net, load_predictor(fmt, path), images, source)
    return Exported(fmt, path, artifact_size(path), seconds, checked)
