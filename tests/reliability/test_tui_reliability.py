"""The issue's failure cases through the terminal UI: a visible readable message, the app still usable,
nothing the user had lost."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from cnn_tui.core.data import dataset, folders
from cnn_tui.core.errors import ParamsError
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.params.files import HyperParams

from tests_support import TINY_HYPER, in_run_processes
from tui_helpers import choose_file, logged, make_app, open_form, run_record, status, table, wait_idle

SMALL = dict(classes=3, per_class=12, test_per_class=6, size=12)

# (field, what a person types, the same value as it would sit in a JSON file)
BAD_VALUES = [
    ("drop_out", "1.5", 1.5),
    ("epochs", "ten", "ten"),
    ("batch_size", "0", 0),
    ("init_rate", "-0.1", -0.1),
    ("kernel_size", "3,x", [3, "x"]),
    ("momentum", "1", 1),
    ("epochs", "2.5", 2.5),
]


async def test_forms_refuse_what_files_refuse_with_the_same_words(params_files, in_tmp):
    data, hyper = params_files(**SMALL)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot, "h")
        for field, typed, in_json in BAD_VALUES:
            with pytest.raises(ParamsError) as from_file:
                HyperParams.from_dict({**TINY_HYPER, field: in_json})
            box = form.query_one(f"#field-{field}", Input)
            before = box.value
            box.value = typed
            await pilot.pause()
            shown = str(form.query_one(f"#error-{field}").content)
            assert f"hyper params: {shown}" == str(from_file.value), field
            box.value = before
            await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.main.session.hyper.first().drop_out == TINY_HYPER["drop_out"]  # nothing changed


async def test_stop_while_loading_then_load_again(params_files, in_tmp, monkeypatch):
    data, hyper = params_files(classes=3, per_class=200, size=8)
    monkeypatch.setattr(folders, "PARALLEL_THRESHOLD", 10**9)  # decode in chunks in this process
    real = dataset.decode.decode_into_array
    app = make_app(data, hyper)

    def slow_first_chunk(*args):
        if not app.main.task_controller.current.stop.is_set():
            app.main.task_controller.current.stop.set()  # as if x was pressed while the first chunk decoded
        return real(*args)

    monkeypatch.setattr(dataset.decode, "decode_into_array", slow_first_chunk)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        assert "loading stopped after 256 of 600 images" in logged(app)
        assert app.main.session.train_set is None
        monkeypatch.setattr(dataset.decode, "decode_into_array", real)
        await pilot.press("l")
        await wait_idle(pilot)
        assert app.main.session.train_set is not None and len(app.main.session.train_set) == 600


async def test_full_disk_during_training_is_said_and_the_app_goes_on(params_files, tmp_path, in_tmp, monkeypatch):
    """The run process cannot write model.keras (full disk); the rest of its folder still writes. The run says
    so, the app says which model it holds now (the one the run started from), and saving it elsewhere works."""
    data, hyper = params_files(**SMALL, hyper={"epochs": 2})
    in_run_processes(monkeypatch, "full_disk_in_child")
    elsewhere = tmp_path / "usb" / "rescued.keras"
    elsewhere.parent.mkdir()
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in "lit":
            await pilot.press(key)
            await wait_idle(pilot)
        run = app.main.session.run_dir
        assert "could not all be saved" in status(app) and "No space left on device" in status(app)
        assert "the model here is the one it started from" in status(app)
        assert any("could not write model.keras after epoch 1: the disk is full" in text for _, text in app.main.messages)
        record = run_record(run)
        assert record["details"]["epochs_done"] == 2 and "No space left" in record["details"]["save_error"]
        assert not (run / "model.keras").exists() and (run / "history.csv").exists()
        assert app.main.session.model is not None and "trained" not in app.main.session.model_note
        await pilot.press("W")
        await choose_file(pilot, elsewhere)
        await wait_idle(pilot)
        assert status(app) == f"model saved: {elsewhere}"
    assert NetModel.load(elsewhere).class_names == ["0", "1", "2"]


async def test_untrusted_model_is_refused_and_the_app_goes_on(params_files, tmp_path, in_tmp):
    import keras

    data, hyper = params_files(**SMALL)
    gift = tmp_path / "gift.keras"
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Lambda(lambda t: t), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(gift)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("M")
        await choose_file(pilot, gift)
        await wait_idle(pilot)
        assert status(app).startswith(f"{gift}: refused: the model contains a Lambda layer")
        assert app.main.session.model is None
        await pilot.press("l")
        await wait_idle(pilot)
        assert app.main.session.train_set is not None  # still usable


async def test_out_of_memory_fit_shows_as_a_failed_row_in_the_tuning_table(params_files, in_tmp, monkeypatch):
    in_run_processes(monkeypatch, "fail_fits_in_child", CNN_TUI_TEST_FAIL_UNITS="4096")  # tuning runs there
    data, hyper = params_files(**SMALL, hyper={"epochs": 1, "num_units": [4096, 16]})
    app = make_app(data, hyper)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("u")
        await wait_idle(pilot, timeout=180)
        result = app.main.session.tuning
        assert result.status == "finished" and len(result.rows) == 6
        rows = table(app, "#results-table")
        cells = [" ".join(str(c) for c in rows.get_row_at(i)) for i in range(rows.row_count)]
        failed = [c for c in cells if "4096" in c]
        assert failed and "out of memory" in failed[0]
        assert "16" in cells[0]  # the working combination ranks first


LOAD_IN_A_FRESH_PROCESS = """
import asyncio, sys
from cnn_tui.core.data import folders
from cnn_tui.tui.app import CnnApp

folders.PARALLEL_THRESHOLD = 1  # worker processes for any folder

async def main():
    app = CnnApp(data=sys.argv[1], hyper=sys.argv[2])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        for _ in range(600):
            await pilot.pause(0.05)
            if app.main.session.train_set is not None or "failed" in " ".join(t for _, t in app.main.messages):
                break
        images = app.main.session.train_set
        print("LOADED", len(images) if images is not None else None, [t for _, t in app.main.messages][-2:])

asyncio.run(main())
"""


def test_worker_processes_start_from_inside_the_tui(params_files, tmp_path):
    """Textual swaps sys.stderr for an object without a descriptor; starting loky's processes from the
    TUI must still work. A fresh process: loky starts its helper process only once per process."""
    import subprocess
    import sys

    data, hyper = params_files(**SMALL)
    done = subprocess.run([sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS, str(data), str(hyper)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env={**__import__("os").environ, "CNN_TUI_WORKERS": "2"})
    assert "LOADED 36" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
