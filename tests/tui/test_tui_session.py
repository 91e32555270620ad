"""The rules that enable actions step by step, and what changing params does to loaded data."""

from __future__ import annotations

import numpy as np

from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.tui.session import Session


def images(n: int = 6) -> ImageSet:
    return ImageSet(np.zeros((n, 8, 8, 1), np.float32), np.arange(n) % 2, ["a", "b"], [f"{i}.png" for i in range(n)],
                    root=__import__("pathlib").Path("."))


def data(**changes) -> DataParams:
    base = {"num_classes": 2, "train_dir": "train", "test_dir": "test", "image_size": 8}
    return DataParams.from_dict({**base, **changes})


def test_actions_unlock_in_the_seed_order():
    s = Session()
    assert s.why_not("train") == "load data params first (o), or create them (n)"
    s.data = data()
    assert s.why_not("train") == "load hyper params first (O), or create them (N)"
    s.hyper = HyperParams.defaults()
    assert s.why_not("train") == "load a training dataset first (l)"
    assert s.why_not("init_model") is None
    s.train_set = images()
    assert s.why_not("train") == "initialise a network model (i) or load one (M) first"
    assert s.why_not("tune") is None
    assert s.why_not("evaluate") == "initialise a network model (i) or load one (M) first"
    s.model = object()
    assert s.why_not("train") is None and s.why_not("evaluate") == "load a test dataset first (L)"
    s.busy, s.stoppable = "training", True
    assert s.why_not("tune") == "training is running; wait for it or stop it (x)"
    assert s.why_not("stop") is None and s.why_not("about") is None
    s.keras_error = "the Keras backend 'jax' is not installed"
    s.busy = None
    assert s.why_not("train") == "Keras is not available: the Keras backend 'jax' is not installed"
    assert s.why_not("apply_best") == "run Tuning (u) first; it finds the best combination"


def test_changing_how_images_are_read_unloads_them():
    s = Session(data=data(), train_set=images(), test_set=images())
    assert s.set_data(data(validation_split=0.3)) == []  # the images are read the same way
    assert s.train_set is not None and s.test_set is not None
    notes = s.set_data(data(image_size=16))
    assert s.train_set is None and s.test_set is None
    assert notes[0].startswith("training set unloaded") and notes[1].startswith("test set unloaded")
    s.test_set = images()
    s.set_data(data(image_size=16, train_dir="other"))
    assert s.test_set is not None  # only the training folder moved
