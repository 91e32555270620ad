"""Feature maps and Grad-CAM: layers found in nested models, one grid per convolution, a heatmap
that points at the planted feature, one-line errors."""

import threading

import numpy as np
import pytest
from PIL import Image

from cnn_tui.core.backend import load_keras, set_seed
from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.errors import ModelError, UserError
from cnn_tui.core.inspect import explain, explain_plots
from cnn_tui.core.models.model import NetModel, build_model
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training.fit import train

from tests_support import TINY_HYPER

SIZE = 16


def _seed_net(size: int = 12, classes=("a", "b", "c")) -> NetModel:
    config = HyperParams.from_dict(TINY_HYPER).first()
    return build_model(config, image_size=size, channels=1, class_names=list(classes))


def _nested_net() -> NetModel:
    """A functional model with a backbone nested as a sub-model, preprocessing and augmentation at the
    input: the shape the architecture registry builds (keras.applications backbones nest like this)."""
    keras = load_keras()
    layers = keras.layers
    inner_in = keras.Input((SIZE, SIZE, 3))
    y = layers.Conv2D(6, 3, padding="same", name="stem")(inner_in)
    y = layers.BatchNormalization(name="stem_bn")(y)
    y = layers.ReLU(name="stem_relu")(y)
    y = layers.DepthwiseConv2D(3, padding="same", name="depthwise")(y)
    y = layers.MaxPooling2D(name="pool")(y)
    y = layers.SeparableConv2D(5, 3, padding="same", activation="relu", name="separable")(y)
    backbone = keras.Model(inner_in, y, name="backbone")
    inputs = keras.Input((SIZE, SIZE, 1))
    z = layers.RandomFlip("horizontal", name="flip")(inputs)  # augmentation: off at inference
    z = layers.Rescaling(2.0, offset=-1.0, name="scale")(z)
    z = layers.Concatenate(name="to_rgb")([z, z, z])
    z = backbone(z)
    z = layers.Conv2D(4, 1, activation="relu", name="head_conv")(z)
    z = layers.GlobalAveragePooling2D(name="gap")(z)
    outputs = layers.Dense(3, activation="softmax", name="classes")(z)
    return NetModel(keras.Model(inputs, outputs, name="nested"), ["a", "b", "c"], SIZE, 1)


def _image(seed: int = 0, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (size, size, 1)).astype(np.float32)


def test_seed_cnn_has_one_grid_per_convolution_with_its_channels():
    net = _seed_net()
    image = _image(size=12)
    features = explain.feature_maps(net, image)
    assert [(m.layer, m.kind, m.activations.shape) for m in features.maps] == [
        ("conv2d", "Conv2D", (12, 12, 8)), ("conv2d_1", "Conv2D", (6, 6, 8))]
    expected = net.keras_model.predict(image[None], verbose=0)[0]
    np.testing.assert_allclose(features.probabilities, expected, rtol=1e-5, atol=1e-6)
    assert features.predicted == net.class_names[int(expected.argmax())]
    keras = load_keras()
    first = keras.Model(net.keras_model.inputs, net.keras_model.get_layer("conv2d").output)
    np.testing.assert_allclose(features.maps[0].activations, first.predict(image[None], verbose=0)[0], atol=1e-5)


def test_nested_backbone_conv_layers_are_found_and_recorded():
    net = _nested_net()
    paths = [path for path, _ in explain.conv_layers(net.keras_model)]
    assert paths == ["backbone/stem", "backbone/depthwise", "backbone/separable", "head_conv"]
    features = explain.feature_maps(net, _image())
    assert [(m.layer, m.kind, m.channels, m.activations.shape[:2]) for m in features.maps] == [
        ("backbone/stem", "Conv2D", 6, (16, 16)), ("backbone/depthwise", "DepthwiseConv2D", 6, (16, 16)),
        ("backbone/separable", "SeparableConv2D", 5, (8, 8)), ("head_conv", "Conv2D", 4, (8, 8))]
    # the nested layer's values are the inner model's own (the input went through the outer preprocessing)
    keras = load_keras()
    backbone = net.keras_model.get_layer("backbone")
    stem = keras.Model(backbone.inputs, backbone.get_layer("stem").output)
    rgb = np.repeat(_image() * 2.0 - 1.0, 3, axis=-1)[None]
    np.testing.assert_allclose(features.maps[0].activations, stem.predict(rgb, verbose=0)[0], atol=1e-5)
    # nothing stays wrapped, and the model predicts as before
    assert not [layer.name for _, layer in explain.leaf_layers(net.keras_model) if "call" in vars(layer)]
    np.testing.assert_allclose(net.keras_model.predict(_image()[None], verbose=0)[0], features.probabilities, atol=1e-6)


def test_grad_cam_layer_is_the_last_image_shaped_output():
    assert explain.grad_cam_layer(_seed_net(), _image(size=12))[0] == "max_pooling2d_1"  # before flatten
    assert explain.grad_cam_layer(_nested_net(), _image())[0] == "head_conv"  # before global pooling


def test_another_threads_calls_are_not_watched():
    net = _seed_net()
    seen = {}
    with explain._watching(explain.leaf_layers(net.keras_model)) as watch:
        thread = threading.Thread(target=lambda: seen.update(out=net.keras_model(_image(size=12)[None])))
        thread.start()
        thread.join()
        assert watch.order == []  # the other thread's forward pass ran untouched
    assert seen["out"].shape == (1, 3)


def _spot_detector() -> NetModel:
    """Built by hand: a conv that fires on bright pixels, global average pooling, and a dense layer for
    which that response means class "spot"; Grad-CAM must point where the bright square is."""
    keras = load_keras()
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="detect")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="classes")(x)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[..., 0, 0] = 1.0  # channel 0: brightness of the 3x3 neighbourhood
    kernel[..., 0, 1] = -1.0  # channel 1: darkness (never positive on these images)
    model.get_layer("detect").set_weights([kernel, np.array([-4.0, 0.0], np.float32)])
    model.get_layer("classes").set_weights([np.array([[-10.0, 10.0], [0.0, 0.0]], np.float32),
                                            np.array([1.0, 0.0], np.float32)])
    return NetModel(model, ["plain", "spot"], SIZE, 1)


@pytest.mark.parametrize("method", explain.METHODS)
def test_heatmap_peaks_where_the_planted_square_is(method):
    net = _spot_detector()
    for top, left in ((2, 3), (10, 9)):
        image = np.full((SIZE, SIZE, 1), 0.2, np.float32)
        image[top:top + 4, left:left + 4] = 1.0
        cam = explain.grad_cam(net, image, "spot", method=method)
        assert cam.explained == "spot" and cam.predicted == "spot" and cam.layer == "detect"
        assert cam.heatmap.shape == (SIZE, SIZE) and cam.heatmap.max() == pytest.approx(1.0)
        row, col = np.unravel_index(cam.heatmap.argmax(), cam.heatmap.shape)
        assert top <= row < top + 4 and left <= col < left + 4
        outside = np.ones((SIZE, SIZE), bool)
        outside[top - 1:top + 5, left - 1:left + 5] = False
        assert cam.heatmap[outside].max() == 0.0


def _corners(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class 0: a bright square top left; class 1: bottom right; class 2: none, on noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, (n, SIZE, SIZE, 1)).astype(np.float32)
    y = np.arange(n) % 3
    x[y == 0, 1:6, 1:6] = 1.0
    x[y == 1, -6:-1, -6:-1] = 1.0
    return x, y.astype(np.int32)


def test_trained_seed_cnn_looks_at_the_square_that_decides_the_class():
    set_seed(3)
    x, y = _corners(60, 0)
    names = ["top_left", "bottom_right", "none"]
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 3}).first()
    net = build_model(config, image_size=SIZE, channels=1, class_names=names)
    train(net, ImageSet(x, y, names, [f"{i}.png" for i in range(60)], root=None), config)
    test_x, test_y = _corners(6, 1)
    for image, label in zip(test_x, test_y):
        if label == 2:
            continue
        cam = explain.grad_cam(net, image)
        assert cam.predicted == names[label]
        heat = cam.upsampled()
        mine, other = (slice(1, 6), slice(-6, -1)) if label == 0 else (slice(-6, -1), slice(1, 6))
        assert heat[mine, mine].mean() > 0.3 > heat[other, other].mean() + 0.2
        row, col = np.unravel_index(heat.argmax(), heat.shape)
        half = SIZE // 2
        assert (row < half and col < half) if label == 0 else (row >= half and col >= half)


def test_mosaic_lays_out_every_channel_or_the_most_active():
    activations = np.zeros((4, 5, 6), np.float32)
    for k in range(6):
        activations[..., k] = k  # channel k is as strong as its number
    activations[0, 0, 3] = 30.0  # lifts its mean (4.35) above channel 4's
    grid, shown = explain.mosaic(activations, columns=3)
    assert shown == list(range(6)) and grid.shape == (2 * 4 + 1, 3 * 5 + 2)
    assert np.isnan(grid[4, 0]) and np.isnan(grid[0, 5])  # the gaps
    assert grid[0, 0] == 0.0  # a constant channel is drawn dark, not divided by zero
    assert grid[5, 0] == 1.0 and grid[5, 1] == 0.0  # channel 3 (row 2, column 1): its bright pixel, its maximum
    grid, shown = explain.mosaic(activations, max_channels=2, columns=2)
    assert shown == [3, 5]  # the most active, in their order


def test_plots_are_written(tmp_path):
    net = _nested_net()
    image = _image()
    cam_png = explain_plots.plot_grad_cam(explain.grad_cam(net, image), tmp_path / "cam.png", "x.png")
    maps_png = explain_plots.plot_features(explain.feature_maps(net, image), tmp_path / "maps.png", "x.png")
    for path in (cam_png, maps_png):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_the_grad_cam_png_holds_every_heatmap_shown(tmp_path):
    """The TUI shows the predicted and the true class's heatmaps: the PNG holds both, one row each."""
    net, image = _nested_net(), _image()
    predicted = explain.grad_cam(net, image)
    other = explain.grad_cam(net, image, (predicted.class_index + 1) % len(net.class_names))
    one = Image.open(explain_plots.plot_grad_cam(predicted, tmp_path / "one.png")).size
    two = Image.open(explain_plots.plot_grad_cam([predicted, other], tmp_path / "two.png")).size
    assert two[0] == one[0] and two[1] > 1.8 * one[1]


def test_figure_names_never_collide_across_folders(tmp_path):
    """Real sets repeat 0001.png across class folders: a/img.png and b/img.png get two figures."""
    names = {explain_plots.figure_name("gradcam", tmp_path / folder / "img.png") for folder in ("a", "b")}
    assert len(names) == 2
    assert all(name.startswith(("gradcam-a-img-", "gradcam-b-img-")) and name.endswith(".png") for name in names)
    assert explain_plots.figure_name("features", tmp_path / "a" / "img.png") != explain_plots.figure_name(
        "features", tmp_path / "c" / "a" / "img.png")  # the same last folder elsewhere: the hash tells them apart
    odd = explain_plots.figure_name("features", tmp_path / "a b\x1b[2J" / "x y.png")
    assert "/" not in odd and "\x1b" not in odd and " " not in odd


def test_mistakes_are_one_line_errors(tmp_path):
    net = _seed_net()
    with pytest.raises(UserError, match="missing.png: file not found"):
        explain.load_image(tmp_path / "missing.png", net)
    (tmp_path / "junk.png").write_text("not an image")
    with pytest.raises(UserError, match="junk.png: cannot be read as an image"):
        explain.load_image(tmp_path / "junk.png", net)
    with pytest.raises(UserError, match="no class named 'zebra'"):
        explain.grad_cam(net, _image(size=12), "zebra")
    with pytest.raises(UserError, match="unknown heatmap method"):
        explain.grad_cam(net, _image(size=12), method="magic")
    keras = load_keras()
    inputs = keras.Input((12, 12, 1))
    dense = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    flat = NetModel(dense, ["a", "b", "c"], 12, 1)
    with pytest.raises(ModelError, match="no convolution layers"):
        explain.feature_maps(flat, _image(size=12))
    with pytest.raises(ModelError, match="no convolution layers"):
        explain.grad_cam(flat, _image(size=12))


@pytest.mark.parametrize("architecture, size", [("cnn", 16), ("resnet", 16), ("mobilenet_v3_small", 32)])
def test_every_architecture_after_saving_and_loading(tmp_path, architecture, size):
    """The registry's networks, augmentation in front, read back from their file: one grid per convolution
    (a backbone's nested ones included) with the layer's channels, and a heatmap."""
    hyper = HyperParams.from_dict({**TINY_HYPER, "architecture": architecture, "flip": "horizontal",
                                   "rotation": 0.1})
    built = build_model(hyper.first(), image_size=size, channels=1, class_names=["a", "b", "c"])
    net = NetModel.load(built.save(tmp_path / "model.keras"))
    image = _image(size=size)
    features = explain.feature_maps(net, image)
    convs = dict(explain.conv_layers(net.keras_model))
    assert sorted(m.layer for m in features.maps) == sorted(convs)  # every convolution, once (in the order they ran)
    for fmap in features.maps:
        assert fmap.channels == convs[fmap.layer].output.shape[-1]
    if architecture == "mobilenet_v3_small":
        assert all(m.layer.startswith("backbone/") for m in features.maps)
    np.testing.assert_allclose(features.probabilities, net.keras_model.predict(image[None], verbose=0)[0], atol=1e-5)
    cam = explain.grad_cam(net, image)
    assert cam.heatmap.ndim == 2 and 0.0 <= cam.heatmap.min() and cam.heatmap.max() <= 1.0
    assert cam.layer in {path for path, _ in explain.leaf_layers(net.keras_model)}
