"""The disk fills (or its quota does, or it turns read-only) while a run trains: never "out of
memory", training goes on, every file that could not be written is named once, and the run's
status is written when it can be, else said on the terminal."""

import errno
import json
import os
from pathlib import Path

import keras
import pytest

from cnn_tui.cli import main
from cnn_tui.core import backend
from cnn_tui.core.errors import ResultsError, disk_problem
from cnn_tui.core.inspect import reports
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.runs.folder import Run
from cnn_tui.core.runs.lifecycle import RunSession
from cnn_tui.core.training import tensorboard_logs

DISK_ERRNOS = [errno.ENOSPC, errno.EDQUOT, errno.EROFS]


def failing(number):
    def fail(*args, **kwargs):
        raise OSError(number, os.strerror(number))

    return fail


def tensorflow_full_disk(*args, **kwargs):
    """What TensorBoard's writer raises through TensorFlow's file system on a full disk: a
    ResourceExhaustedError, the error TensorFlow also raises for an exhausted GPU."""
    import tensorflow as tf

    raise tf.errors.ResourceExhaustedError(None, None, "tensorboard/train/events.out: No space left on device")


# writer -> (how to break it, the name the run must give)
WRITERS = {
    "model": (lambda mp, fail: mp.setattr(NetModel, "save", fail), "model.keras"),
    "history": (lambda mp, fail: mp.setattr(reports, "write_history_csv", fail), "history.csv"),
    "plot": (lambda mp, fail: mp.setattr(reports, "plot_history", fail), "train_val_plots.png"),
    "tensorboard": (lambda mp, fail: mp.setattr(tensorboard_logs.EpochWriter, "epoch", fail), "tensorboard/"),
    "best weights": (lambda mp, fail: mp.setattr(keras.Model, "save_weights", fail), "best.weights.h5"),
}
CASES = [(w, errno.ENOSPC) for w in WRITERS] + [("model", errno.EDQUOT), ("model", errno.EROFS),
                                                ("tensorboard", errno.EDQUOT), ("history", errno.EROFS)]


@pytest.mark.parametrize(("writer", "number"), CASES, ids=[f"{w}-{errno.errorcode[n]}" for w, n in CASES])
def test_a_file_that_cannot_be_written_is_named_once_and_training_goes_on(capsys, params_files, monkeypatch,
                                                                          writer, number):
    patch, name = WRITERS[writer]
    patch(monkeypatch, failing(number))
    data, hyper = params_files(classes=2, per_class=6, size=8, hyper={"epochs": 3, "patience": 5})
    code = main(["train", "--data", str(data), "--hyper", str(hyper), "--validate", "0.25"])
    out, err = capsys.readouterr()
    assert "out of memory" not in out + err and "Traceback" not in err
    assert code == 2, err  # trained, but not all of it saved
    warnings = [line for line in err.splitlines() if line.startswith(f"warning: could not write {name}")]
    assert len(warnings) == 1, err  # once, not every epoch
    assert "training goes on" in warnings[0] and os.strerror(number) in warnings[0]
    run_dir = next((Path(data).parent.parent / "results").glob("*-train"))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["details"]["epochs_done"] == 3  # all 3 epochs trained
    assert name in record["details"]["save_error"] and os.strerror(number) in record["details"]["save_error"]
    assert name in record["message"]
    if writer != "model":  # the model is still saved when another file is not
        assert NetModel.load(run_dir / "model.keras").epochs_done == 3


def test_every_file_that_could_not_be_written_is_named(capsys, params_files, monkeypatch):
    for writer in ("model", "plot", "tensorboard"):
        WRITERS[writer][0](monkeypatch, failing(errno.ENOSPC))
    data, hyper = params_files(classes=2, per_class=6, size=8, hyper={"epochs": 2})
    code = main(["train", "--data", str(data), "--hyper", str(hyper)])
    out, err = capsys.readouterr()
    assert code == 2
    error = [line for line in err.splitlines() if line.startswith("error")]
    assert len(error) == 1 and all(name in error[0] for name in ("model.keras", "train_val_plots.png", "tensorboard/"))


@pytest.mark.parametrize("number", DISK_ERRNOS, ids=[errno.errorcode[n] for n in DISK_ERRNOS])
def test_a_disk_error_is_never_out_of_memory(number):
    tf = pytest.importorskip("tensorflow")
    text = os.strerror(number)
    for exc in (OSError(number, text), ResultsError(f"cannot write ({text})", path="x/model.keras"),
                tf.errors.ResourceExhaustedError(None, None, f"events.out.tfevents: {text}")):
        assert not backend.is_out_of_memory(exc), exc
        assert disk_problem(exc) is not None and text in backend.describe_failure(exc)
    wrapped = ResultsError("cannot write")
    wrapped.__cause__ = OSError(number, text)
    assert disk_problem(wrapped) is not None
    # a GPU that ran out is still out of memory
    assert backend.is_out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))
    assert disk_problem(ValueError("bad")) is None


def test_tensorflows_full_disk_in_the_tensorboard_writer_is_not_out_of_memory(capsys, params_files, monkeypatch):
    """The case the issue saw: TensorBoard's writer on a full disk ended training as 'out of memory'."""
    pytest.importorskip("tensorflow")
    monkeypatch.setattr(tensorboard_logs.EpochWriter, "epoch", tensorflow_full_disk)
    data, hyper = params_files(classes=2, per_class=6, size=8, hyper={"epochs": 2})
    code = main(["train", "--data", str(data), "--hyper", str(hyper)])
    out, err = capsys.readouterr()
    assert "out of memory" not in out + err and code == 2
    assert sum(line.startswith("warning: could not write tensorboard/") for line in err.splitlines()) == 1
    run_dir = next((Path(data).parent.parent / "results").glob("*-train"))
    assert NetModel.load(run_dir / "model.keras").epochs_done == 2


def test_a_run_json_that_cannot_be_written_is_said_on_the_terminal(tmp_path, monkeypatch, capsys):
    run = Run.create(tmp_path / "results", "train")
    with RunSession(run, "train") as session:
        def full(self):  # as fileio's atomic write says it
            raise ResultsError("cannot write (No space left on device)", path=self.path / "run.json")

        monkeypatch.setattr(Run, "_write", full)
        session.end("finished", "trained 3 epochs", 0)
    err = capsys.readouterr().err
    assert f"run {run.path.name} ended finished: trained 3 epochs" in err and "No space left on device" in err


def test_an_events_file_that_cannot_be_written_is_named_once(tmp_path):
    from cnn_tui.core.events import Notice

    heard = []
    run = Run.create(tmp_path / "results", "train")
    with RunSession(run, "train", emit=heard.append) as session:
        session._writer._handle.write = failing(errno.ENOSPC)
        for i in range(3):
            session.emit(Notice(f"n{i}"))
        session.end("finished", "", 0)
    told = [e.text for e in heard if isinstance(e, Notice) and "could not write events.jsonl" in e.text]
    assert len(told) == 1 and "the disk is full" in told[0]
