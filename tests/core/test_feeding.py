"""The streaming path: uint8 pixels on disk, scaled a batch at a time, trained on through a PyDataset."""

import gc

import numpy as np
import pytest

from cnn_tui.core.data import feeding
from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training.fit import train

from tests_support import TINY_HYPER, class_ordered_set


def _uint8_view(tmp_path, images: ImageSet) -> feeding.PixelView:
    path = tmp_path / "pixels.npy"
    np.save(path, np.rint(images.x * 255).astype(np.uint8))
    source = np.load(path, mmap_mode="r")
    return feeding.PixelView(source, np.arange(len(source))[::-1].copy())  # reversed: order must be honoured


def test_a_view_reads_scaled_rows_in_the_order_asked(tmp_path):
    images = class_ordered_set()
    view = _uint8_view(tmp_path, images)
    expected = images.x[::-1]
    assert view.shape == images.x.shape and len(view) == len(images.x) and view.nbytes == images.x.nbytes
    np.testing.assert_allclose(view[[5, 0, 17]], expected[[5, 0, 17]], atol=1 / 255)
    np.testing.assert_allclose(view[3:7], expected[3:7], atol=1 / 255)
    assert view[2].dtype == np.float32 and view[2].shape == images.x.shape[1:]
    sub = view.take(np.array([4, 1]))
    assert isinstance(sub, feeding.PixelView)
    np.testing.assert_allclose(np.asarray(sub), expected[[4, 1]], atol=1 / 255)


def test_an_owned_temp_file_goes_with_the_last_view(tmp_path):
    path = tmp_path / "temp.npy"
    np.save(path, np.zeros((4, 2, 2, 1), dtype=np.uint8))
    view = feeding.PixelView(np.load(path, mmap_mode="r"), np.arange(4), owned_file=path)
    sub = view.take([1, 2])
    del view
    gc.collect()
    assert path.exists()  # the sub-view still reads it
    del sub
    gc.collect()
    assert not path.exists()


def test_training_on_a_streamed_set_learns(tmp_path):
    images = class_ordered_set(per_class=16)
    streamed = ImageSet(_uint8_view(tmp_path, images), images.y[::-1].copy(), images.class_names, images.files[::-1], root=None)
    train_set, val = streamed.split(0.25, seed=0)
    assert feeding.is_streamed(train_set.x) and feeding.is_streamed(val.x)
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 4}).first()
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    result = train(net, train_set, config, validation=val)
    assert result.status == "finished" and result.epochs_done == 4
    assert result.history["accuracy"][-1] > 0.7 and "val_accuracy" in result.history


@pytest.mark.parametrize("configured, expected", [("0", 0), ("10", 10 * 1024 * 1024)])
def test_the_stream_limit_can_be_set(monkeypatch, configured, expected):
    monkeypatch.setenv("CNN_TUI_STREAM_ABOVE_MB", configured)
    assert feeding.stream_limit_bytes() == expected


def test_a_folder_over_the_limit_loads_streamed_and_says_so(tmp_path, monkeypatch):
    from cnn_tui.core.data.dataset import load_images
    from cnn_tui.core.events import Notice
    from cnn_tui.core.training.evaluation import evaluate
    from cnn_tui.core.tuning.options import SearchOptions
    from cnn_tui.core.tuning.search import tune

    from tests_support import write_image_folder

    root = write_image_folder(tmp_path / "d", 3, per_class=12, size=12)
    whole = load_images(root, image_size=12)
    monkeypatch.setenv("CNN_TUI_STREAM_ABOVE_MB", "0")
    events = []
    streamed = load_images(root, image_size=12, emit=events.append)
    assert streamed.from_cache and feeding.is_streamed(streamed.x)
    assert any(isinstance(e, Notice) and "streaming" in e.text for e in events)
    np.testing.assert_array_equal(np.asarray(streamed.x), whole.x)
    assert streamed.files == whole.files
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 3}).first()
    net = build_model(config, image_size=12, channels=1, class_names=streamed.class_names)
    assert train(net, streamed, config).status == "finished"
    scores = evaluate(net, streamed)
    assert scores.samples == len(whole) and scores.accuracy > 0.6
    result = tune(streamed, HyperParams.from_dict({**TINY_HYPER, "num_units": [8, 16]}), SearchOptions(cv=2))
    assert result.status == "finished" and len(result.rows) == 4
