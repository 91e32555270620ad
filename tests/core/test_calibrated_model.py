"""A model's temperature: kept in its file, applied by classify, evaluate and export; a file written
before temperatures existed loads and predicts exactly as before; --calibrate fits one."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.errors import ModelError
from cnn_tui.core.models import export
from cnn_tui.core.models.model import METADATA_MEMBER, NetModel
from cnn_tui.core.models.temperature import scaled, with_temperature
from cnn_tui.core.training import calibration
from cnn_tui.core.training.evaluation import classify_files, evaluate, predict_probabilities

from tests_support import write_image_folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny softmax classifier of 12x12 grayscale images into 3 classes, saved as .keras."""
    from cnn_tui.core.backend import load_keras

    keras = load_keras()
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    folder = tmp_path_factory.mktemp("model")
    path = NetModel(model, ["x", "y", "z"], 12, 1).save(folder / "tiny.keras")
    return path


def _rewrite_metadata(path, out, change):
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == METADATA_MEMBER:
                meta = json.loads(body)
                change(meta)
                body = json.dumps(meta).encode()
            target.writestr(item, body)
    return out


def test_an_old_model_file_without_a_temperature_predicts_as_before(saved, tmp_path):
    old = _rewrite_metadata(saved, tmp_path / "old.keras", lambda meta: meta.pop("temperature"))
    net = NetModel.load(old)
    assert net.temperature == 1.0
    x = np.random.default_rng(0).random((5, 12, 12, 1), dtype=np.float32)
    np.testing.assert_array_equal(predict_probabilities(net, x), net.keras_model.predict(x, verbose=0))


def test_the_temperature_is_kept_and_applied(saved, tmp_path):
    net = NetModel.load(saved)
    net.temperature = 2.5
    loaded = NetModel.load(net.save(tmp_path / "calibrated.keras"))
    assert loaded.temperature == 2.5
    x = np.random.default_rng(1).random((6, 12, 12, 1), dtype=np.float32)
    raw = loaded.keras_model.predict(x, verbose=0)
    got = predict_probabilities(loaded, x)
    np.testing.assert_allclose(got, scaled(raw, 2.5), rtol=1e-5)
    np.testing.assert_array_equal(got.argmax(axis=1), raw.argmax(axis=1))
    assert got.max() < raw.max()  # softer
    images = write_image_folder(tmp_path / "imgs", ["x"], per_class=2, size=12, seed=3)
    top = classify_files(loaded, sorted((images / "x").iterdir()))[0].top
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)
    wrapped = with_temperature(loaded.keras_model, 2.5)  # what export writes
    np.testing.assert_allclose(wrapped.predict(x, verbose=0), got, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("value", ["hot", -1, 0, True])
def test_a_damaged_temperature_is_one_line(saved, tmp_path, value):
    bad = _rewrite_metadata(saved, tmp_path / "bad.keras", lambda meta: meta.update(temperature=value))
    with pytest.raises(ModelError, match="temperature"):
        NetModel.load(bad)


def test_an_export_of_a_calibrated_model_gives_its_probabilities(saved, tmp_path):
    if export.missing_packages("saved_model"):
        pytest.skip("saved_model export needs TensorFlow")
    net = NetModel.load(saved)
    net.temperature = 3.0
    done = export.export_and_check(net, "saved_model", tmp_path / "served")
    assert done.parity.ok and done.parity.max_delta < 1e-4


def test_evaluate_reports_the_temperature(saved, tmp_path):
    net = NetModel.load(saved)
    net.temperature = 2.0
    test = load_images(write_image_folder(tmp_path / "test", ["x", "y", "z"], per_class=4, size=12, seed=5),
                       image_size=12, class_names=net.class_names)
    ev = evaluate(net, test)
    assert ev.temperature == 2.0
    raw = net.keras_model.predict(test.x, verbose=0)
    np.testing.assert_allclose(ev.probabilities, calibration.scaled(raw, 2.0), rtol=1e-5)
