"""TensorBoard files are there and hold the figures: read back with tensorboard's own event reader."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tensorboard", reason="the tensorboard package is not installed")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402

from cnn_tui.core.training import tensorboard_logs  # noqa: E402


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of the scalar summaries in an event-file folder."""
    reader = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    reader.Reload()
    out = {}
    for tag in reader.Tags()["tensors"]:
        if reader.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue  # e.g. the hparams session's own record
        out[tag] = [(e.step, float(np.asarray(e.tensor_proto.float_val or [np.nan])[0])) for e in reader.Tensors(tag)]
    return out


def test_epoch_writer_splits_training_and_validation_figures(tmp_path):
    writer = tensorboard_logs.EpochWriter(tmp_path / "tb")
    writer.epoch(1, {"loss": 0.9, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.4}, rate=0.01)
    writer.epoch(2, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.8, "val_accuracy": 0.6, "note": "x"}, rate=0.005)
    writer.close()
    train, validation = scalars(tmp_path / "tb" / "train"), scalars(tmp_path / "tb" / "validation")
    assert set(train) == {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}
    assert set(validation) == {"epoch_loss", "epoch_accuracy"}
    assert train["epoch_loss"] == [(1, pytest.approx(0.9)), (2, pytest.approx(0.5))]
    assert validation["epoch_accuracy"] == [(1, pytest.approx(0.4)), (2, pytest.approx(0.6))]
    assert train["epoch_learning_rate"] == [(1, pytest.approx(0.01)), (2, pytest.approx(0.005))]


def test_the_keras_callback_logs_every_epoch_of_a_fit(tmp_path):
    from cnn_tui.core.backend import load_keras

    keras = load_keras()
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 6, 6, 1), dtype=np.float32), rng.integers(0, 2, 40)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = tensorboard_logs.epoch_callback(tmp_path / "tb")
    history = model.fit(x, y, epochs=3, batch_size=20, validation_split=0.25, verbose=0, callbacks=[callback])
    train, validation = scalars(tmp_path / "tb" / "train"), scalars(tmp_path / "tb" / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [1, 2, 3]
    assert [v for _, v in train["epoch_loss"]] == pytest.approx(history.history["loss"], rel=1e-5)
    assert [v for _, v in validation["epoch_accuracy"]] == pytest.approx(history.history["val_accuracy"], rel=1e-5)
    rates = [v for _, v in train["epoch_learning_rate"]]
    assert rates == pytest.approx([0.1 * 0.5 ** (2 * epoch) for epoch in (1, 2, 3)], rel=1e-4)  # 2 batches an epoch


def test_a_search_is_written_as_hparams_sessions(tmp_path):
    table = [
        {"num_units": 16, "init_rate": 0.01, "mean_accuracy": 0.9, "std_accuracy": 0.02, "mean_loss": 0.3},
        {"num_units": 8, "init_rate": 0.01, "mean_accuracy": math.nan, "std_accuracy": math.nan, "mean_loss": math.nan},
    ]
    root = tensorboard_logs.write_search(tmp_path / "hparams", table, ["num_units", "init_rate"])
    sessions = sorted(p.name for p in root.iterdir())
    assert sessions == ["num_units=16,init_rate=0.01", "num_units=8,init_rate=0.01"]
    found = {}
    for name in sessions:
        reader = EventAccumulator(str(root / name), size_guidance={"tensors": 0})
        reader.Reload()
        content = reader.PluginTagToContent(hparams_metadata.PLUGIN_NAME)[hparams_metadata.SESSION_START_INFO_TAG]
        info = hparams_metadata.parse_session_start_info_plugin_data(content)
        found[name] = ({k: v.number_value for k, v in info.hparams.items()}, scalars(root / name))
    params, figures = found["num_units=16,init_rate=0.01"]
    assert params == {"num_units": 16.0, "init_rate": pytest.approx(0.01)}
    assert figures["search/mean_accuracy"] == [(0, pytest.approx(0.9))]
    assert set(figures) == {"search/mean_accuracy", "search/std_accuracy", "search/mean_loss"}
    params, figures = found["num_units=8,init_rate=0.01"]
    assert params["num_units"] == 8.0 and figures == {}  # failed folds: the session, without figures


def test_fit_folders_name_the_combination_and_fold(tmp_path):
    folder = tensorboard_logs.fit_log_dir(tmp_path, {"optimizer": "adam", "drop_out": 0.25, "flip": "a/b"}, 2)
    assert folder == tmp_path / "optimizer=adam,drop_out=0.25,flip=a_b" / "fold2"


def test_the_callbacks_factory_logs_when_given_a_folder(tmp_path):
    from cnn_tui.core.params.files import HyperParams
    from cnn_tui.core.training.callbacks import training_callbacks

    config = HyperParams.defaults().first()
    with_logs = training_callbacks(config, validation=True, log_dir=tmp_path / "tensorboard")
    without = training_callbacks(config, validation=True)
    logged = [c for c in with_logs if type(c).__name__ == "TensorBoardEpochs"]
    assert len(logged) == 1 and logged[0].log_dir == tmp_path / "tensorboard"
    assert not [c for c in without if type(c).__name__ == "TensorBoardEpochs"]


def test_a_writer_made_before_keras_keeps_tensorflows_load_time_lines_off_the_terminal(tmp_path):
    """A search on a cluster never builds a network here: the first TensorFlow import in this
    process is the writer's (tf.io.gfile), and its C++ libraries print as they load."""
    import os
    import subprocess
    import sys

    pytest.importorskip("tensorflow")
    script = ("import sys; from pathlib import Path; from cnn_tui.core.training import tensorboard_logs as t; "
              f"t._writer(Path({str(tmp_path / 'logs')!r})).close(); "
              "print('tensorflow' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "True"  # the writer did import TensorFlow ...
    assert "oneDNN" not in shown.stderr and "InitializeLog" not in shown.stderr, shown.stderr  # ... quietly
