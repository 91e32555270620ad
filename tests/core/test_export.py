"""Export round-trips: each format available here is written, loaded back with its own runtime and
agrees with the Keras model on at least 99.9 % of the images; missing packages are one line."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

from cnn_tui.cli import main
from cnn_tui.core.backend import native_stderr_filtered
from cnn_tui.core.errors import UserError
from cnn_tui.core.models import export
from cnn_tui.core.models.model import NetModel


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> NetModel:
    """A small trained-looking classifier of 12x12 grayscale images into 3 classes, saved as .keras."""
    from cnn_tui.core.backend import load_keras

    keras = load_keras()
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((12, 12, 1)), keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    NetModel(model, ["a", "b", "c"], 12, 1).save(path)
    return NetModel.load(path)


def _skip_without(fmt: str) -> None:
    missing = export.missing_packages(fmt)
    if missing:
        pytest.skip(f"{fmt} export needs {', '.join(missing)}, not installed here")


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=pytest.mark.tensorflow_only) if f == "litert" else f
                                 for f in export.FORMATS])
def test_each_format_round_trips(net, tmp_path, fmt):
    _skip_without(fmt)
    out = export.default_path(tmp_path / "tiny.keras", fmt)
    done = export.export_and_check(net, fmt, out)
    assert done.path == out and out.exists() and done.size_bytes > 0
    assert done.parity.images == export.SAMPLE_SIZE and done.parity.ok
    assert done.parity.agreement >= 0.999 and done.parity.max_delta < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp folder left beside it


def test_an_export_replaces_the_previous_one(net, tmp_path):
    _skip_without("saved_model")
    out = tmp_path / "served"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    export.export(net, "saved_model", out)
    assert not (out / "stale.txt").exists() and (out / "saved_model.pb").exists()


def test_parity_notices_a_model_that_predicts_otherwise(net):
    x = export.sample_images(12, 1, 50)
    shifted = lambda batch: np.roll(net.keras_model.predict(batch, verbose=0), 1, axis=1)  # noqa: E731
    result = export.parity(net, shifted, x, "sample")
    assert result.images == 50 and not result.ok and result.agreement < 0.5 and result.max_delta > 0


def test_the_parity_line_reads_as_documented():
    line = export.Parity(1996, 1.0, 3e-6, "test folder").line()
    assert line == "agreement 100.00 % on 1,996 images, max |\u0394p| 3e-06"


@pytest.mark.parametrize(("name", "fmt", "says"), [
    ("m.tflite.bak", "litert", "the LiteRT (TFLite) flatbuffer's name must end in .tflite"),
    ("m.pb", "onnx", "the ONNX file's name must end in .onnx"),
])
def test_the_out_path_must_suit_the_format(tmp_path, name, fmt, says):
    with pytest.raises(UserError) as caught:
        export.check_out(tmp_path / name, fmt)
    assert str(caught.value) == f"{tmp_path / name}: {says}"


def test_a_saved_model_needs_a_folder_name(tmp_path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(UserError, match="is a file; the TensorFlow SavedModel folder needs a folder name"):
        export.check_out(tmp_path / "taken", "saved_model")


def test_a_missing_package_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    # only tf2onnx missing, whether or not the others are installed here
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else
                        (object() if name in ("onnx", "onnxruntime") else real(name, *a)))
    with pytest.raises(export.MissingPackage) as caught:
        export.check_available("onnx")
    assert str(caught.value) == "exporting to onnx needs tf2onnx: pip install 'cnn-tui[onnx]'"


# ---------------------------------------------------------------- the command


@pytest.mark.tensorflow_only
def test_cli_export_checks_on_the_test_folder(net, params_files, tmp_path, capsys):
    _skip_without("litert")
    data, _ = params_files(size=12)
    out = tmp_path / "exported" / "tiny.tflite"
    code = main(["export", str(net.source), "--format", "litert", "--out", str(out), "--data", str(data), "--json"])
    stdout, err = capsys.readouterr()
    payload = json.loads(stdout)
    assert code == 0, err
    assert payload["path"] == str(out) and out.is_file()
    assert payload["parity"]["images"] == 18 and payload["parity"]["agreement"] >= 0.999  # 3 classes x 6 test images
    assert payload["parity"]["source"].startswith("test folder ")


@pytest.mark.tensorflow_only
def test_litert_chatter_on_descriptor_2_never_reaches_the_terminal(net, tmp_path, capfd):
    """TensorFlow Lite's C++ writes "Created TensorFlow Lite XNNPACK delegate for CPU." to fd 2 as the
    parity check builds its interpreter: the user sees the export's lines only (issue 20.15)."""
    _skip_without("litert")
    code = main(["export", str(net.source), "--format", "litert", "--out", str(tmp_path / "m.tflite")])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert "parity with the Keras model" in out
    assert "XNNPACK" not in err and "XNNPACK" not in out, err


def test_the_filter_on_descriptor_2_keeps_real_errors(capfd):
    with native_stderr_filtered("XNNPACK delegate"):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nreal trouble: disk full\n")
    assert capfd.readouterr().err == "real trouble: disk full\n"


def test_cli_export_prints_the_agreement(net, tmp_path, capsys):
    _skip_without("saved_model")
    code = main(["export", str(net.source), "--format", "saved_model", "--out", str(tmp_path / "sm")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"exported TensorFlow SavedModel folder to {tmp_path / 'sm'}" in out
    assert "parity with the Keras model: agreement 100.00 % on 256 images" in out


def test_cli_export_without_the_onnx_packages_is_one_line(net, tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else
                        (object() if name in ("tf2onnx", "onnxruntime") else real(name, *a)))
    code = main(["export", str(net.source), "--format", "onnx"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["error: exporting to onnx needs onnx: pip install 'cnn-tui[onnx]'"]


def test_litert_on_another_backend_is_one_line_naming_what_to_use(net, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "backend_name", lambda: "jax")
    with pytest.raises(UserError, match="exporting to litert needs the TensorFlow backend .this is jax.: run the export "
                                        "with KERAS_BACKEND=tensorflow"):
        export.export(net, "litert", tmp_path / "tiny.tflite")
