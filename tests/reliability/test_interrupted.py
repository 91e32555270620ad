"""Stops, signals, kills, divergence, out-of-memory and full disks: nothing lost, nothing crashes."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cnn_tui.cli import main
from cnn_tui.core.data import dataset
from cnn_tui.core.errors import ResultsError, TaskStopped
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control, steps
from cnn_tui.core.runs.execute import Inputs, TaskSpec
from cnn_tui.core.runs.folder import Run, mark_interrupted

from tests_support import fail_fits_with


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ctrl_c_while_loading_exits_130_without_a_traceback(capsys, params_files, monkeypatch):
    data, hyper = params_files(per_class=200, size=8)
    real = dataset.decode.decode_into_array
    calls = []

    def decode_then_interrupt(*args):
        result = real(*args)
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C during the load
        calls.append(1)
        return result

    monkeypatch.setattr(dataset.decode, "decode_into_array", decode_then_interrupt)
    code, out, err = cli(capsys, "train", "--data", str(data), "--hyper", str(hyper))
    assert code == 130 and "Traceback" not in err
    assert "loading stopped after 256 of 600 images" in err
    assert len(calls) == 1


def test_stopped_evaluation_marks_the_run_stopped(tmp_path, params_files):
    data_path, hyper_path = params_files()
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    train = steps.load_training_set(data)
    net = steps.new_model(data, hyper, train)
    spec = TaskSpec("evaluate")
    run = control.prepare(spec, data, None, parent=tmp_path / "runs")
    stop = threading.Event()
    stop.set()
    with pytest.raises(TaskStopped, match="evaluation stopped after 0 of 18 images"):  # the run ends, then re-raises
        control.run_here(run, spec, stop=stop, inputs=Inputs(net=net, test_set=steps.load_test_set(data)))
    record = json.loads((run.path / "run.json").read_text())
    assert record["status"] == "stopped" and record["exit_code"] == 130


def test_the_app_is_usable_after_a_stop(capsys, params_files, monkeypatch):
    data, hyper = params_files(hyper={"epochs": 3})
    stop_now = threading.Event()
    real_train = steps.train

    def train_but_stop(*args, stop=None, **kwargs):
        if not stop_now.is_set():
            stop_now.set()
            stop.set()  # the user asked to stop before the first batch
        return real_train(*args, stop=stop, **kwargs)

    monkeypatch.setattr(steps, "train", train_but_stop)
    code, out, err = cli(capsys, "train", "--data", str(data), "--hyper", str(hyper), "--json")
    assert code == 130 and json.loads(out)["status"] == "stopped"
    code, out, err = cli(capsys, "train", "--data", str(data), "--hyper", str(hyper), "--json")
    assert code == 0 and json.loads(out)["epochs_done"] == 3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_history_checkpoint_and_run_json(params_files, sig):
    data, hyper = params_files(per_class=40, hyper={"epochs": 300, "batch_size": 4})
    proc = subprocess.Popen([sys.executable, "-m", "cnn_tui", "train", "--data", str(data), "--hyper", str(hyper), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not proc.stderr.readline().startswith("epoch   2/300"):
        pass
    proc.send_signal(sig)  # what a dropped SSH connection (SIGHUP) or a `kill` (SIGTERM) does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run_dir = Path(json.loads(out)["run_dir"])
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "stopped" and record["details"]["epochs_done"] >= 2
    assert len((run_dir / "history.csv").read_text().splitlines()) >= 3
    assert NetModel.load(run_dir / "model.keras").class_names == ["0", "1", "2"]


WRITER = textwrap.dedent("""
    import sys
    from cnn_tui.core.models.model import build_model
    from cnn_tui.core.params.files import HyperParams
    from cnn_tui.core import fileio
    hyper = HyperParams.from_dict({hyper!r})
    net = build_model(hyper.first(), image_size=12, channels=1, class_names=["a", "b"])
    folder = sys.argv[1]
    n = 0
    while True:
        net.save(folder + "/model.keras")
        hyper.save(folder + "/hyper.json")
        fileio.write_json(folder + "/results.json", {{"n": n, "pad": "x" * 100000}})
        n += 1
        print(n, flush=True)
""")


def test_sigkill_while_saving_leaves_the_previous_files_intact(tmp_path):
    from tests_support import TINY_HYPER

    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(hyper={**TINY_HYPER, "num_units": 256}))
    folder = tmp_path / "out"
    folder.mkdir()
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, text=True)
        while not proc.stdout.readline():  # the first complete round is on disk
            pass
        time.sleep(delay)
        proc.kill()
        proc.wait()
        assert NetModel.load(folder / "model.keras").class_names == ["a", "b"]
        assert HyperParams.load(folder / "hyper.json").first().num_units == 256
        assert len(json.loads((folder / "results.json").read_text())["pad"]) == 100000
        visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        assert visible == ["hyper.json", "model.keras", "results.json"]  # leftovers are hidden temp files
    leftovers = [p for p in folder.iterdir() if p.name.startswith(".")]
    for path in leftovers:
        assert ".partial" in path.name
        os.utime(path, (0, 0))  # pretend they are old
    HyperParams.load(folder / "hyper.json").save(folder / "hyper.json")
    NetModel.load(folder / "model.keras").save(folder / "model.keras")
    from cnn_tui.core import fileio

    fileio.write_json(folder / "results.json", {})
    assert [p for p in folder.iterdir() if p.name.startswith(".")] == []  # swept by the next save


def test_a_killed_run_is_relabelled_interrupted(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    run = Run.create(tmp_path, "train")
    run.record["pid"] = proc.pid
    run.write()
    proc.kill()
    proc.wait()
    assert mark_interrupted(tmp_path) == [run.path]
    record = json.loads((run.path / "run.json").read_text())
    assert record["status"] == "interrupted" and "process ended" in record["message"]
    live = Run.create(tmp_path, "train")  # our own process is alive: left alone
    assert mark_interrupted(tmp_path) == [] and json.loads((live.path / "run.json").read_text())["status"] == "running"


def test_diverging_training_ends_with_a_message_and_exit_1(capsys, params_files):
    data, hyper = params_files(hyper={"init_rate": 1e3, "epochs": 5})
    code, out, err = cli(capsys, "train", "--data", str(data), "--hyper", str(hyper), "--json")
    payload = json.loads(out)
    assert code == 1 and payload["status"] == "failed"
    assert "training diverged; try a lower init_rate" in payload["message"]
    assert payload["epochs_done"] <= 1
    record = json.loads((Path(payload["run_dir"]) / "run.json").read_text())
    assert record["status"] == "failed"


def test_out_of_memory_in_one_tuning_fit_is_a_failed_row(capsys, params_files, monkeypatch):
    fail_fits_with(monkeypatch, num_units=4096, message="simulated: the dense layer does not fit")
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: the table's note column unwrapped
    data, hyper = params_files(hyper={"epochs": 1, "num_units": [4096, 16]})
    code, out, err = cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--cv", "2")
    assert code == 0
    assert "out of memory: try a smaller batch_size" in out
    lines = [line for line in out.splitlines() if "4096" in line]
    assert lines and "0/2" in lines[0]  # no fold finished for that combination
    csv = next((Path(data).parent.parent / "results").glob("*-tune/tuning_results.csv")).read_text()
    assert csv.count(',failed,"out of memory') == 2


def test_full_disk_keeps_training_and_says_what_was_not_saved(capsys, params_files, monkeypatch):
    def no_space(self, path):
        raise ResultsError("cannot write (No space left on device)", path=path)

    monkeypatch.setattr(NetModel, "save", no_space)
    data, hyper = params_files(hyper={"epochs": 3})
    code, out, err = cli(capsys, "train", "--data", str(data), "--hyper", str(hyper), "--json")
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert lines == [lines[0]] and "could not all be saved" in lines[0] and "No space left on device" in lines[0]
    assert "could not write model.keras after epoch 1: the disk is full" in err
    run_dir = next((Path(data).parent.parent / "results").glob("*-train"))
    assert len((run_dir / "history.csv").read_text().splitlines()) == 4  # all 3 epochs trained


def test_unwritable_results_folder_is_one_line(capsys, params_files, tmp_path):
    data, hyper = params_files()
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    code, out, err = cli(capsys, "train", "--data", str(data), "--hyper", str(hyper), "--out", str(blocker / "runs"))
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"error: {blocker / 'runs'}: cannot create a run folder here")


def test_atomic_write_failure_leaves_the_old_file(tmp_path, monkeypatch):
    from cnn_tui.core import fileio

    target = fileio.write_json(tmp_path / "r.json", {"old": True})

    def broken_replace(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", broken_replace)
    with pytest.raises(ResultsError, match="No space left on device"):
        fileio.write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
