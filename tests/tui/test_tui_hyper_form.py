"""The hyper-params form of issue 10: sections, only the fields that apply (followed live), choices
typed or stepped with ↑ ↓, help for the focused field, a seed file saved back as a seed file, the
augmentation preview, presets; the Data view's hyper block and the kept epoch on the curves."""

from __future__ import annotations

import json
import threading

import numpy as np
from textual.widgets import Button, Input, Label, Static

from cnn_tui.core.models import augmentation
from cnn_tui.core.params.fields import HYPER_GROUPS
from cnn_tui.core.runs.results import RunEnding
from cnn_tui.tui.parts.run_display import RunResults
from cnn_tui.tui.widgets.augment_preview import AugmentPreview
from cnn_tui.tui.widgets.charts import HistoryChart
from cnn_tui.tui.widgets.form import ParamsForm

from tui_helpers import choose_file, make_app, open_form, plain, text_of, wait_for


def shown_rows(form_screen) -> set[str]:
    form = form_screen.query_one(ParamsForm)
    return {spec.name for spec in form.specs if form_screen.query_one(f"#row-{spec.name}").display}


async def set_field(pilot, screen, name: str, value: str) -> None:
    screen.query_one(f"#field-{name}", Input).value = value
    await pilot.pause()


async def test_form_shows_sections_and_only_the_fields_that_apply(params_files, in_tmp):
    data, hyper = params_files()
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot, "h")
        sections = [str(label.content) for label in form.query(".form-section").results(Label)]
        assert sections == [group.capitalize() for group in HYPER_GROUPS]
        shown = shown_rows(form)
        assert {"architecture", "kernel_size", "num_filters", "num_units", "drop_out", "rotation", "momentum",
                "decay_steps"} <= shown
        assert not shown & {"blocks", "batch_norm", "weights", "freeze_epochs", "warmup_epochs", "reduce_on_plateau"}
        await set_field(pilot, form, "architecture", "cnn")
        shown = shown_rows(form)
        assert {"blocks", "batch_norm", "convs_per_block", "head", "num_units", "kernel_size"} <= shown
        assert not shown & {"weights", "freeze_epochs"}
        await set_field(pilot, form, "architecture", "mobilenet_v3_small")
        shown = shown_rows(form)
        assert {"weights", "freeze_epochs", "unfreeze_layers", "drop_out"} <= shown
        assert not shown & {"kernel_size", "num_units", "blocks", "batch_norm"}
        # a list (a tuning grid) shows what any listed architecture uses
        await set_field(pilot, form, "architecture", "seed_cnn, resnet")
        assert {"kernel_size", "num_units", "blocks"} <= shown_rows(form)
        # the training section follows the optimizer and the schedule
        await set_field(pilot, form, "optimizer", "adam")
        await set_field(pilot, form, "schedule", "cosine")
        shown = shown_rows(form)
        assert "warmup_epochs" in shown and not shown & {"momentum", "decay_steps", "decay_rate"}
        # what a hidden field holds is kept: not in the texts, so the params keep the file's value
        assert "momentum" not in form.query_one(ParamsForm).texts()
        assert not form.query_one("#ok", Button).disabled
        await pilot.click("#ok")
        await pilot.pause()
        values = app.main.session.hyper.values
        assert values["architecture"] == ["seed_cnn", "resnet"] and values["optimizer"] == "adam"
        assert values["momentum"] == 0.9  # from the file, hidden in the form


async def test_saving_the_form_of_a_seed_file_writes_a_seed_file(params_files, tmp_path, in_tmp):
    data, hyper = params_files()
    seed_keys = list(json.loads(hyper.read_text()))
    app = make_app(data, hyper)
    target, changed = tmp_path / "same.json", tmp_path / "rotated.json"
    async with app.run_test(size=(100, 30)) as pilot:
        await open_form(pilot, "h")
        await pilot.click("#ok")
        await pilot.pause()
        await pilot.press("S")
        await choose_file(pilot, target)
        assert list(json.loads(target.read_text())) == seed_keys  # no field added, none lost, same order
        form = await open_form(pilot, "h")
        await set_field(pilot, form, "rotation", "0.1")
        await pilot.click("#ok")
        await pilot.pause()
        await pilot.press("S")
        await choose_file(pilot, changed)
        saved = json.loads(changed.read_text())
        assert set(saved) == {*seed_keys, "rotation"} and saved["rotation"] == 0.1


async def test_a_wrong_choice_is_one_line_naming_the_field(params_files, in_tmp):
    data, hyper = params_files()
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot, "h")
        await set_field(pilot, form, "architecture", "cnn,resnett")
        problem = str(form.query_one("#error-architecture").content)
        assert problem.startswith("architecture must be one of seed_cnn, cnn, resnet") and "'resnett'" in problem
        assert form.query_one("#ok", Button).disabled
        # the focused field's whole problem shows under the form, in one line of text
        assert str(form.query_one("#field-help", Static).content) == problem
        await pilot.press("enter")
        error = str(form.query_one("#form-error").content)
        assert error == problem and "\n" not in error
        assert app.screen is form  # not accepted
        await set_field(pilot, form, "architecture", "cnn")
        await set_field(pilot, form, "batch_norm", "maybe")
        assert str(form.query_one("#error-batch_norm").content) == "batch_norm must be true or false, got 'maybe'"
        await set_field(pilot, form, "batch_norm", "false")
        await set_field(pilot, form, "rotation", "")
        assert str(form.query_one("#error-rotation").content) == "rotation is empty"


async def test_choices_step_with_arrows_and_complete_as_typed(params_files, in_tmp):
    data, hyper = params_files()
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot, "h")
        field = form.query_one("#field-architecture", Input)
        assert form.focused is field
        assert "seed_cnn | cnn | resnet" in plain(form.query_one("#field-help", Static).content)
        await pilot.press("down")
        assert field.value == "cnn"
        await pilot.press("up", "up")
        assert field.value == "resnet50_v2"  # round the end
        field.value = "seed_cnn,re"
        field.cursor_position = len(field.value)
        await pilot.pause()
        await pilot.press("right")  # takes the completion
        assert field.value == "seed_cnn,resnet"
        await pilot.press("down")  # steps the last of the listed values
        assert field.value == "seed_cnn,mobilenet_v3_small"
        # a field's help follows the focus
        form.query_one("#field-rotation", Input).focus()
        await pilot.pause()
        assert "0.05 is 18 degrees" in plain(form.query_one("#field-help", Static).content)


async def test_augmentation_preview_draws_eight_and_follows_the_fields(params_files, in_tmp, monkeypatch):
    data, hyper = params_files()
    threads = []
    real = augmentation.augmented_samples

    def watched(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(augmentation, "augmented_samples", watched)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 40)) as pilot:
        form = await open_form(pilot, "h")
        preview = form.query_one(AugmentPreview)
        assert not preview.display  # shown while an augmentation field has the focus
        form.query_one("#field-rotation", Input).focus()
        await pilot.pause()
        assert preview.display
        await set_field(pilot, form, "rotation", "0.1")
        await wait_for(pilot, lambda: preview.drawn_config is not None and preview.drawn_config.rotation == 0.1,
                       timeout=120, what="the preview")
        first = preview.samples
        assert first.shape in ((8, 12, 12, 3), (8, 12, 12, 1))
        assert len({s.tobytes() for s in first}) == 8
        assert len(preview.query(".preview-thumb")) == 8
        assert "8 ways" in plain(preview.query_one(".preview-title", Label).content)
        # typing quickly is one redraw, with the last value
        drawn = preview.drawn
        rotation = form.query_one("#field-rotation", Input)
        for text in ("0.2", "0.3", "0.35"):
            rotation.value = text
        await pilot.pause()
        await wait_for(pilot, lambda: preview.drawn_config.rotation == 0.35, timeout=60, what="the redraw")
        await pilot.pause(0.5)
        assert preview.drawn == drawn + 1
        assert not np.allclose(first, preview.samples)
        assert len(preview.query(".preview-thumb")) == 8
        assert threads and all(t is not threading.main_thread() for t in threads)  # Keras off the UI thread
        # a value that does not parse keeps the last preview
        await set_field(pilot, form, "rotation", "lots")
        await pilot.pause(0.5)
        assert preview.drawn == drawn + 1 and preview.drawn_config.rotation == 0.35


async def test_augmentation_preview_shows_a_mixed_pair_with_its_labels(params_files, in_tmp):
    data, hyper = params_files()
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 40)) as pilot:
        form = await open_form(pilot, "h")
        preview = form.query_one(AugmentPreview)
        form.query_one("#field-mixup", Input).focus()
        await pilot.pause()
        assert preview.display  # mixup is an augmentation field
        await set_field(pilot, form, "mixup", "0.4")
        await wait_for(pilot, lambda: preview.drawn_config is not None and preview.drawn_config.mixup == 0.4,
                       timeout=120, what="the mixed preview")
        assert preview.shares is not None and preview.shares.shape == (8,)
        assert preview.names[0] != preview.names[1]  # two images of two classes
        assert len(preview.query(".preview-thumb")) == 8 and len(preview.query(".preview-source")) == 2
        labels = plain(preview.query_one(".preview-labels", Label).content)
        first, second = preview.names
        share = float(preview.shares[0])
        assert f"1: {share:.1f} {first} + {1 - share:.1f} {second}" in labels
        assert "mixed 8 ways" in plain(preview.query_one(".preview-title", Label).content)
        await set_field(pilot, form, "mixup", "0")  # off again: one image, no mixed labels
        await set_field(pilot, form, "rand_augment", "0.5")
        await wait_for(pilot, lambda: preview.drawn_config.rand_augment == 0.5, timeout=60, what="the redraw")
        assert preview.shares is None and not preview.query_one(".preview-labels", Label).display
        assert len(preview.query(".preview-source")) == 0 and "8 ways" in plain(
            preview.query_one(".preview-title", Label).content)


async def test_preset_menu_entry_fills_the_form(params_files, in_tmp):
    from cnn_tui.core.params import presets

    data, hyper = params_files()
    name = "accurate" if "accurate" in presets.preset_names() else presets.preset_names()[0]
    expected = presets.preset(name)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("P")
        await pilot.pause()
        assert app.screen.query_one(f"#choice-{name}", Button)
        await pilot.click(f"#choice-{name}")
        await pilot.pause()
        form = app.screen.query_one(ParamsForm)
        texts = form.texts()
        for field, text in expected.as_text().items():
            if field in texts:
                assert texts[field] == text, field
        await pilot.click("#ok")
        await pilot.pause()
        made = app.main.session.hyper
        assert made.first() == expected.first() and made.source is None
        assert "hyper params new" in text_of(app, "#status")


async def test_data_view_lists_what_sets_the_configuration_apart_by_section(params_files, in_tmp):
    from cnn_tui.core.params import presets

    data, hyper = params_files(hyper={"optimizer": "adam", "rotation": 0.1, "zoom": 0.0})
    app = make_app(data, hyper)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        block = " ".join(text_of(app, "#hyper-params").split())
        assert "Architecture seed_cnn" in block  # not in the file: its default
        for section in ("Network", "Augmentation", "Training"):
            assert section in block
        assert "Rotation 0.1" in block and "Zoom" not in block  # zoom: at its default
        assert "Optimizer adam" in block and "Momentum" not in block  # momentum: sgd only
        assert "Epochs" in block and "Kernel size" in block  # the seed's fields, as the file gives them
        # a preset holds every field: the block lists a dozen or so, not all of them
        app.main.params.apply_params("hyper", presets.preset("fast"), "new")
        await pilot.pause()
        lines = text_of(app, "#hyper-params").strip().splitlines()
        block = " ".join(" ".join(lines).split())
        assert "Architecture cnn" in block and "Conv blocks" in block and "Backbone weights" not in block
        assert len(lines) < 25


def _ending(run_dir, message: str, details: dict) -> RunEnding:
    """A finished training run, as the core reads one back."""
    return RunEnding(run_dir, run_dir.name, "train", "finished", message, exit_code=0, seconds=1.0, metrics={},
                     record={"details": details})


async def test_kept_epoch_marked_on_the_curves(in_tmp, tmp_path):
    app = make_app()
    history = {"loss": [1.0, 0.5, 0.6, 0.7], "accuracy": [0.5, 0.8, 0.7, 0.7],
               "val_loss": [1.1, 0.4, 0.6, 0.8], "val_accuracy": [0.5, 0.9, 0.8, 0.7]}
    end = RunResults(_ending(tmp_path, "early stopping after 4 epochs",
                             {"epochs_done": 4, "best_epoch": 2, "epochs": 10, "samples": 10, "batch_size": 5}),
                     history=history)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.main.mount_views()
        app.main.task_controller.display.show_run(end, live=False)
        await pilot.pause()
        assert "kept epoch 2 (early stopping)" in text_of(app, "#chart-legend")
        assert all(chart.kept == 2 for chart in app.main.query(HistoryChart))
        title = text_of(app, "#training-title")
        assert "val_accuracy 0.9000 · val_loss 0.4000 (epoch 2, kept)" in title  # the model's figures
        # a run without early stopping marks nothing
        plain_end = RunResults(_ending(tmp_path, "done", {"epochs_done": 4}), history=history)
        app.main.task_controller.display.show_run(plain_end, live=False)
        await pilot.pause()
        assert "kept" not in text_of(app, "#chart-legend")
        assert all(chart.kept is None for chart in app.main.query(HistoryChart))
        assert "val_loss 0.8000" in text_of(app, "#training-title")

