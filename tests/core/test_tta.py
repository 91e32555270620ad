"""Test-time augmentation: fixed views of each image, their probabilities averaged; the choice kept
in the model file, overridden per call; old model files without it classify as before."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnn_tui.cli import main
from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.models.model import METADATA_MEMBER, NetModel, build_model
from cnn_tui.core.models.views import IDENTITY, View, chosen_tta, tta_views, views_of
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training.evaluation import classify_files, evaluate, predict_probabilities

from tests_support import TINY_HYPER, write_image_folder


def test_a_shift_moves_the_content_and_repeats_the_edge():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    right = View("right 1px", dx=1).apply(x)[0, :, :, 0]
    assert right[:, 1:].tolist() == x[0, :, :3, 0].tolist() and right[:, 0].tolist() == x[0, :, 0, 0].tolist()
    up = View("up 2px", dy=-2).apply(x)[0, :, :, 0]
    assert up[:2].tolist() == x[0, 2:, :, 0].tolist() and up[2].tolist() == up[3].tolist() == x[0, 3, :, 0].tolist()
    mirrored = View("mirror", mirror=True).apply(x)[0, :, :, 0]
    assert mirrored.tolist() == x[0, :, ::-1, 0].tolist()
    assert IDENTITY.apply(x).tolist() == x.tolist()


def test_the_views_mirror_only_where_training_flipped_left_to_right():
    names = [v.name for v in tta_views(28)]
    assert names == ["identity", "right 2px", "left 2px", "down 2px", "up 2px"]  # 28 / 16 rounds to 2
    assert [v.name for v in tta_views(12, "horizontal")][-1] == "mirror"
    assert [v.name for v in tta_views(12, "horizontal_and_vertical")][-1] == "mirror"
    assert "mirror" not in [v.name for v in tta_views(12, "vertical")]
    assert tta_views(8)[1].dx == 1  # at least one pixel


def _file(images) -> Path:
    """The first image's file (the set records paths under its root)."""
    first = Path(images.files[0])
    return first if first.is_absolute() else Path(images.root) / first


@pytest.fixture
def trained(tmp_path):
    images = load_images(write_image_folder(tmp_path / "t", 3, per_class=10, size=12), image_size=12)
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "flip": "horizontal", "tta": True}).first()
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    net.keras_model.fit(images.x, images.y, epochs=1, verbose=0)
    return net, images


def test_tta_averages_exactly_the_views_it_names(trained):
    net, images = trained
    evaluation = evaluate(net, images, tta=True)
    views = {v.name: v for v in views_of(net)}
    assert evaluation.tta and evaluation.views == list(views) and "mirror" in views
    manual = np.mean([net.keras_model.predict(views[name].apply(images.x), verbose=0) for name in evaluation.views],
                     axis=0)
    np.testing.assert_allclose(evaluation.probabilities, manual, atol=1e-6)
    plain = net.keras_model.predict(images.x, verbose=0)
    np.testing.assert_allclose(evaluation.plain().probabilities, plain, atol=1e-6)
    assert not np.allclose(evaluation.probabilities, plain, atol=1e-4)  # the views changed something
    summary = evaluation.summary()
    assert summary["tta"] is True and summary["tta_views"] == evaluation.views
    assert summary["plain"]["accuracy"] == evaluation.plain().accuracy and summary["accuracy"] == evaluation.accuracy


def test_one_view_is_plain_inference(trained):
    net, images = trained
    plain = predict_probabilities(net, images.x)
    np.testing.assert_allclose(predict_probabilities(net, images.x, views=[IDENTITY]), plain, atol=1e-7)
    no_tta = evaluate(net, images, tta=False)
    assert not no_tta.tta and no_tta.views == [] and no_tta.summary()["tta"] is False
    np.testing.assert_allclose(no_tta.probabilities, plain, atol=1e-7)


def test_the_model_file_keeps_the_choice_and_a_call_overrides_it(trained, tmp_path):
    net, images = trained
    path = net.save(tmp_path / "m.keras")
    loaded = NetModel.load(path)
    assert loaded.config.tta is True and chosen_tta(loaded) and not chosen_tta(loaded, False)
    with zipfile.ZipFile(path) as archive:
        assert json.loads(archive.read(METADATA_MEMBER))["hyper_params"]["tta"] is True
    image = _file(images)
    with_tta = classify_files(loaded, [image])[0].top
    without = classify_files(loaded, [image], tta=False)[0].top
    x = images.x[:1]
    expected = np.mean([loaded.keras_model.predict(v.apply(x), verbose=0) for v in views_of(loaded)], axis=0)[0]
    assert with_tta[0][1] == pytest.approx(float(expected.max()), abs=1e-5)
    assert without[0][1] == pytest.approx(float(loaded.keras_model.predict(x, verbose=0)[0].max()), abs=1e-5)


def test_an_old_model_file_without_tta_loads_and_classifies_plainly(trained, tmp_path):
    net, images = trained
    path = net.save(tmp_path / "old.keras")
    old = tmp_path / "older.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:  # as a version before tta wrote it
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == METADATA_MEMBER:
                meta = json.loads(body)
                del meta["hyper_params"]["tta"], meta["hyper_params"]["ema"]
                body = json.dumps(meta).encode()
            target.writestr(item, body)
    loaded = NetModel.load(old)
    assert loaded.config.tta is False and not chosen_tta(loaded)
    image = _file(images)
    top = classify_files(loaded, [image])[0].top
    assert top[0][1] == pytest.approx(float(loaded.keras_model.predict(images.x[:1], verbose=0)[0].max()), abs=1e-5)


def test_tta_is_a_true_or_false_field():
    assert HyperParams.from_dict({"tta": True}).first().tta is True
    assert HyperParams.from_dict({}).first().tta is False
    with pytest.raises(Exception, match="tta.*true or false"):
        HyperParams.from_dict({"tta": "yes"})


def test_evaluate_and_classify_take_tta_from_the_command_line(capsys, params_files, tmp_path):
    data, hyper = params_files(hyper={"epochs": 1})
    code = main(["train", "--data", str(data), "--hyper", str(hyper), "--json"])
    trained = json.loads(capsys.readouterr().out)
    model = Path(trained["run_dir"]) / "model.keras"
    assert main(["evaluate", "--data", str(data), "--model", str(model), "--tta", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["tta"] is True and evaluated["tta_views"][0] == "identity" and "accuracy" in evaluated["plain"]
    written = json.loads((Path(evaluated["run_dir"]) / "evaluation.json").read_text())
    assert written["tta"] is True and written["plain"]["accuracy"] == evaluated["plain"]["accuracy"]
    assert main(["evaluate", "--data", str(data), "--model", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is False  # the model chose none
    assert main(["predict", "--data", str(data), "--model", str(model), "--tta"]) == 0
    out = capsys.readouterr().out
    assert "with TTA" in out and "plain" in out and "views: identity" in out
    image = tmp_path / "data" / "testing" / "0" / "img_000.png"
    assert code == 0 and main(["classify", "--model", str(model), str(image), "--tta", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is True
