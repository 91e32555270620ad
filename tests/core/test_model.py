import json
import zipfile

import numpy as np
import pytest

from cnn_tui.core.errors import ModelError
from cnn_tui.core.models.model import NetModel, build_model, readable_size
from cnn_tui.core.params.files import HyperParams

from tests_support import TINY_HYPER

SEED = {"init_rate": 0.02, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
        "num_units": 512, "momentum": 0.9, "drop_out": 0.2, "epochs": 5, "batch_size": 64}


def test_seed_cnn_on_mnist_shape_has_818026_parameters():
    net = build_model(HyperParams.from_dict(SEED).first(), image_size=28, channels=1, class_names=list("0123456789"))
    rows = net.summary_rows()
    assert [(r.name, r.kind, r.output_shape, r.params) for r in rows] == [
        ("conv2d", "Conv2D", "(None, 28, 28, 32)", 320),
        ("max_pooling2d", "MaxPooling2D", "(None, 14, 14, 32)", 0),
        ("conv2d_1", "Conv2D", "(None, 14, 14, 32)", 9248),
        ("max_pooling2d_1", "MaxPooling2D", "(None, 7, 7, 32)", 0),
        ("flatten", "Flatten", "(None, 1568)", 0),
        ("dense", "Dense", "(None, 512)", 803328),
        ("dropout", "Dropout", "(None, 512)", 0),
        ("dense_1", "Dense", "(None, 10)", 5130),
    ]
    totals = net.totals()
    assert (totals.total, totals.trainable, totals.non_trainable) == (818026, 818026, 0)
    assert readable_size(totals.total_bytes) == "3.12 MB"
    assert readable_size(totals.non_trainable_bytes) == "0.00 B"


def test_save_and_load_keep_weights_and_class_names(tmp_path):
    config = HyperParams.from_dict(TINY_HYPER).first()
    net = build_model(config, image_size=8, channels=3, class_names=["cat", "dog"])
    path = net.save(tmp_path / "m.keras")
    assert not [p for p in tmp_path.iterdir() if p.name != "m.keras"]  # no temp files left
    loaded = NetModel.load(path)
    assert (loaded.class_names, loaded.image_size, loaded.channels, loaded.config) == (["cat", "dog"], 8, 3, config)
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(net.keras_model.predict(x, verbose=0), loaded.keras_model.predict(x, verbose=0), rtol=1e-5)


def test_a_plain_keras_model_loads_with_index_class_names(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "plain.keras")
    loaded = NetModel.load(tmp_path / "plain.keras")
    assert loaded.class_names == ["0", "1", "2"] and loaded.image_size == 6


def test_lambda_layers_are_refused_before_anything_runs(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelError, match="refused: the model contains a Lambda layer"):
        NetModel.load(tmp_path / "lambda.keras")


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"just text", "renamed.keras", "not a Keras model file (not a zip archive, or truncated)"),
        (None, "missing.keras", "model file not found"),
        (b"x", "model.h5", "not a .keras model file (Keras 3 saves models as .keras)"),
    ],
)
def test_unusable_model_files_are_explained(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as caught:
        NetModel.load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_truncated_model_file_is_refused(tmp_path):
    net = build_model(HyperParams.from_dict(TINY_HYPER).first(), image_size=8, channels=1, class_names=["a", "b"])
    good = net.save(tmp_path / "good.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match="not a zip archive, or truncated"):
        NetModel.load(tmp_path / "cut.keras")


def test_custom_objects_are_refused(tmp_path):
    net = build_model(HyperParams.from_dict(TINY_HYPER).first(), image_size=8, channels=1, class_names=["a", "b"])
    path = net.save(tmp_path / "m.keras")
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["module"] = "evil_package.layers"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "evil.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelError, match="custom object 'Conv2D' from 'evil_package.layers'"):
        NetModel.load(tmp_path / "evil.keras")


def test_model_that_does_not_fit_the_data_is_refused():
    net = build_model(HyperParams.from_dict(TINY_HYPER).first(), image_size=8, channels=1, class_names=["a", "b"])
    with pytest.raises(ModelError, match="classifies 2 classes but the test set has 3"):
        net.check_fits(num_classes=3, image_size=8, what="test set")
    with pytest.raises(ModelError, match="expects 8x8 images but the data uses image_size 16"):
        net.check_fits(num_classes=2, image_size=16)
    with pytest.raises(ModelError, match=r"classes \(a, b\) differ from the data's \(a, c\)"):
        net.check_fits(num_classes=2, image_size=8, class_names=["a", "c"])
    net.check_fits(num_classes=2, image_size=8, class_names=["a", "b"])


@pytest.mark.parametrize(("field", "value", "layer"), [("num_units", 2_147_483_647, "dense"), ("num_filters", 100_000, "conv2d_1")])
def test_a_network_too_big_for_memory_is_one_line_naming_its_largest_layer(field, value, layer):

    from cnn_tui.core.errors import ModelError
    from cnn_tui.core.params.files import ModelConfig

    config = ModelConfig(init_rate=0.02, decay_steps=400, decay_rate=0.9, kernel_size=3, num_filters=32, num_units=512,
                         momentum=0.9, drop_out=0.2, epochs=1, batch_size=64).replace(**{field: value})
    with pytest.raises(ModelError, match=rf"more than the free memory .* layer '{layer}' alone has"):
        build_model(config, image_size=28, channels=1, class_names=[str(i) for i in range(10)])
