"""The App menu's data tools: "Split a folder…" (a form, a task, then its data params) and
"Check data health" (a task whose findings the Data view lists)."""

from __future__ import annotations

import shutil

from cnn_tui.tui.screens.confirm import ConfirmScreen
from cnn_tui.tui.screens.split_form import SplitScreen
from cnn_tui.tui.widgets.form import ParamsForm

from tests_support import write_image_folder
from tui_helpers import logged, make_app, text_of, wait_for, wait_idle


async def test_check_data_health_lists_a_planted_leak_in_the_data_view(params_files, in_tmp):
    data, hyper = params_files(classes=3, per_class=8, test_per_class=4)
    root = data.parent.parent / "data"
    shutil.copy(root / "testing" / "1" / "img_002.png", root / "training" / "1" / "again.png")
    app = make_app(data, hyper)
    async with app.run_test(size=(120, 40)) as pilot:
        assert not app.main.query_one("#data-health").display
        await pilot.press("H")
        await wait_idle(pilot)
        health = text_of(app, "#data-health")
        assert "Data health 1 problem(s)" in health
        assert "leak: test image 1/img_002.png is also in the training set (1/again.png)" in health
        assert "training (data/training): 25 images · 3 classes · imbalance 1.12" in health
        assert app.main.query_one("#data-health").display
        assert "data health: 1 problem(s); the Data view lists them" in logged(app)


async def test_split_a_folder_from_the_menu_then_load_its_params(in_tmp):
    source = write_image_folder(in_tmp / "all", ["cat", "dog"], per_class=10)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("F")
        await wait_for(pilot, lambda: isinstance(app.screen, SplitScreen), what="the split dialog")
        form = app.screen.query_one(ParamsForm)
        form.set_value("folder", "all")
        form.set_value("out", "all")  # not empty: refused as you type
        await pilot.pause()
        assert app.screen.query_one("#ok").disabled
        form.set_value("out", "split")
        form.set_value("test", "0.3")
        await pilot.pause()
        assert not app.screen.query_one("#ok").disabled
        await pilot.click("#ok")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question after the split")
        assert "split into split: 14 training, 6 testing (20 hard links, 0 copies)" in logged(app)
        await pilot.press("y")
        await pilot.pause()
        data = app.main.session.data
        assert data.train_path == in_tmp / "split" / "training" and data.num_classes == 2
        assert sorted(p.name for p in (in_tmp / "split" / "testing" / "cat").iterdir()) != []
        assert len(list((source / "cat").iterdir())) == 10  # the originals stay


def test_the_data_params_form_names_a_csv_and_cifar_batches(tmp_path):
    from cnn_tui.tui.screens.params_form import folder_note

    (tmp_path / "train.csv").write_text("label,p0\n1,0\n")
    (tmp_path / "cifar").mkdir()
    (tmp_path / "cifar" / "test_batch.bin").write_bytes(b"")
    assert folder_note(tmp_path / "train.csv", 10).plain == f"{tmp_path / 'train.csv'} is a CSV file of pixels"
    assert folder_note(tmp_path / "cifar", 10).plain == f"CIFAR batches in {tmp_path / 'cifar'}"
    assert folder_note(tmp_path / "notes.txt", 10).plain.endswith("does not exist yet")
