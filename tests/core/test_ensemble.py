"""Fold ensembles: one .keras model whose output is the mean of its members' probabilities (each
member's temperature applied first); it saves, loads, evaluates, classifies, takes TTA and exports."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.errors import ModelError, UserError
from cnn_tui.core.models import export
from cnn_tui.core.models.ensemble import average, ensemble_files
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.training.ensembles import compare
from cnn_tui.core.training.evaluation import classify_files, evaluate, predict_probabilities

from tests_support import write_image_folder

SIZE = 10


def _member(folder, name, seed, *, classes=("a", "b", "c"), size=SIZE, temperature=1.0):
    from cnn_tui.core.backend import load_keras

    keras = load_keras()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((size, size, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(len(classes), activation="softmax")])
    net = NetModel(model, list(classes), size, 1, temperature=temperature)
    return net.save(folder / name)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("members")
    return [_member(folder, "m1.keras", 1), _member(folder, "m2.keras", 2, temperature=2.5),
            _member(folder, "m3.keras", 3)]


@pytest.fixture(scope="module")
def saved(members, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble") / "e.keras"
    ensemble_files(members, out)
    return out


def _images(n=7, seed=0):
    return np.random.default_rng(seed).random((n, SIZE, SIZE, 1), dtype=np.float32)


def test_the_ensemble_is_the_mean_of_its_members_probabilities(members, saved):
    x = _images()
    each = [predict_probabilities(NetModel.load(p), x) for p in members]  # member 2's temperature applied
    assert not np.allclose(each[1], NetModel.load(members[1]).keras_model.predict(x, verbose=0))
    net = NetModel.load(saved)
    np.testing.assert_allclose(predict_probabilities(net, x), np.mean(each, axis=0), rtol=1e-5, atol=1e-6)
    assert net.temperature == 1.0 and net.class_names == ["a", "b", "c"] and net.image_size == SIZE
    assert [m["model"] for m in net.members] == [str(p) for p in members]
    assert [m["temperature"] for m in net.members] == [1.0, 2.5, 1.0]


def test_a_model_without_members_records_none(members):
    assert NetModel.load(members[0]).members is None
    assert "ensemble" not in NetModel.load(members[0]).metadata()


def test_classify_evaluate_and_tta_work_on_the_ensemble(saved, tmp_path):
    net = NetModel.load(saved)
    folder = write_image_folder(tmp_path / "test", ["a", "b", "c"], per_class=4, size=SIZE, seed=5)
    test_set = load_images(folder, image_size=SIZE, channels=1)
    result = evaluate(net, test_set)
    assert result.samples == 12 and 0 <= result.accuracy <= 1
    with_views = evaluate(net, test_set, tta=True)
    assert with_views.tta and with_views.probabilities.shape == (12, 3)
    top = classify_files(net, sorted((folder / "a").iterdir()))[0].top
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)


def test_the_comparison_scores_each_member_and_the_ensemble(saved, members, tmp_path):
    net = NetModel.load(saved)
    folder = write_image_folder(tmp_path / "test", ["a", "b", "c"], per_class=5, size=SIZE, seed=6)
    test_set = load_images(folder, image_size=SIZE, channels=1)
    found = compare(net, test_set)
    assert [m.name for m in found.members] == [str(p) for p in members]
    for scored, path in zip(found.members, members):  # the nested member is the member file, temperature and all
        alone = evaluate(NetModel.load(path), test_set)
        assert scored.accuracy.value == pytest.approx(alone.accuracy)
        assert scored.accuracy.low <= scored.accuracy.value <= scored.accuracy.high
    assert found.ensemble.accuracy.value == pytest.approx(evaluate(net, test_set).accuracy)
    assert found.against_best.images == 15
    assert found.as_dict()["best_member"] == found.best_member.name


def test_the_ensemble_exports_as_a_saved_model(saved, tmp_path):
    if export.missing_packages("saved_model"):
        pytest.skip("no TensorFlow for a SavedModel")
    net = NetModel.load(saved)
    done = export.export_and_check(net, "saved_model", tmp_path / "served")
    assert done.parity.ok and done.parity.max_delta < 1e-4


def test_members_of_other_classes_are_one_line_naming_the_file(members, tmp_path):
    other = _member(tmp_path, "other.keras", 4, classes=("a", "b", "d"))
    with pytest.raises(ModelError) as caught:
        ensemble_files([members[0], other], tmp_path / "e.keras")
    text = str(caught.value)
    assert "\n" not in text and "other.keras" in text and "classes" in text
    assert not (tmp_path / "e.keras").exists()


def test_members_of_another_size_are_refused(members, tmp_path):
    other = _member(tmp_path, "big.keras", 4, size=12)
    with pytest.raises(ModelError, match=r"big\.keras.*input \(12x12"):
        ensemble_files([members[0], other], tmp_path / "e.keras")


def test_one_model_is_no_ensemble(members):
    with pytest.raises(UserError, match="at least 2"):
        average([NetModel.load(members[0])])

