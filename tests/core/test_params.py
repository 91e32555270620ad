import json
from pathlib import Path

import pytest

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.params.files import DataParams, HyperParams, check_fits

from tests_support import SEED_DATA, SEED_HYPER


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_seed_hyper_params_round_trip_unchanged(tmp_path):
    source = write(tmp_path / "h.json", SEED_HYPER)
    hyper = HyperParams.load(source)
    saved = hyper.save(tmp_path / "out.json")
    assert json.loads(saved.read_text()) == SEED_HYPER
    assert hyper.warnings == ()


def test_training_uses_first_values_and_grid_holds_lists():
    hyper = HyperParams.from_dict(SEED_HYPER)
    config = hyper.first()
    assert (config.init_rate, config.num_filters, config.num_units, config.epochs, config.batch_size) == (0.02, 32, 512, 5, 64)
    assert config.kernel_size == 3 and isinstance(config.kernel_size, int)
    assert hyper.grid() == {"init_rate": [0.02, 0.01], "num_filters": [32, 40], "num_units": [512, 800],
                            "epochs": [5, 10], "batch_size": [64, 80]}
    assert hyper.combination_count() == 32
    combos = list(hyper.combinations())
    assert len(combos) == 32 and len({tuple(c.values()) for c in combos}) == 32


def test_any_field_may_be_a_list_and_joins_the_grid():
    hyper = HyperParams.from_dict({**SEED_HYPER, "kernel_size": [3, 5], "drop_out": [0.1, 0.3, 0.5]})
    assert hyper.grid()["kernel_size"] == [3, 5]
    assert hyper.combination_count() == 32 * 2 * 3
    assert hyper.first().drop_out == 0.1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("drop_out", 1.5, "drop_out must be in [0, 1), got 1.5"),
        ("init_rate", -0.1, "init_rate must be greater than 0, got -0.1"),
        ("batch_size", 0, "batch_size must be at least 1, got 0"),
        ("epochs", "ten", "epochs must be a whole number, got 'ten'"),
        ("epochs", 2.5, "epochs must be a whole number, got 2.5"),
        ("num_units", [], "num_units is an empty list; give at least one value"),
        ("momentum", True, "momentum must be a number, got true"),
        ("kernel_size", [3, "x"], "kernel_size must be a whole number, got 'x'"),
    ],
)
def test_bad_hyper_values_are_explained(tmp_path, field, value, message):
    path = write(tmp_path / "h.json", {**SEED_HYPER, field: value})
    with pytest.raises(ParamsError) as caught:
        HyperParams.load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_whole_floats_are_accepted_for_integer_fields():
    hyper = HyperParams.from_dict({**SEED_HYPER, "epochs": 3.0})
    assert hyper.first().epochs == 3 and isinstance(hyper.first().epochs, int)


def test_several_problems_are_reported_together():
    data = {**SEED_HYPER, "drop_out": 2, "batch_size": -1, "optimizer": "rmsprop"}
    with pytest.raises(ParamsError) as caught:
        HyperParams.from_dict(data)
    text = str(caught.value)
    assert "optimizer must be one of sgd, adam, adamw, got 'rmsprop'" in text
    assert "drop_out must be in [0, 1), got 2" in text and "batch_size must be at least 1, got -1" in text


def test_unknown_fields_are_reported_and_kept(tmp_path):
    path = write(tmp_path / "h.json", {**SEED_HYPER, "optimiser": "adam"})
    hyper = HyperParams.load(path)
    assert hyper.warnings == ("hyper params: unknown field kept but not used: optimiser",)
    assert json.loads(hyper.save(tmp_path / "o.json").read_text())["optimiser"] == "adam"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes)"),
        ('{"init_rate": 0.1', "not valid JSON (line 1, column 18: Expecting ',' delimiter)"),
        ("[1, 2]", "hyper params must be a JSON object {...}, got a list"),
    ],
)
def test_broken_files_are_explained(tmp_path, text, message):
    path = write(tmp_path / "h.json", text)
    with pytest.raises(ParamsError, match=None) as caught:
        HyperParams.load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ParamsError) as caught:
        DataParams.load(tmp_path / "nope.json")
    assert str(caught.value) == f"{tmp_path / 'nope.json'}: data params file not found"


def test_seed_data_params_round_trip(tmp_path):
    path = write(tmp_path / "d.json", SEED_DATA)
    data = DataParams.load(path)
    assert (data.num_classes, data.image_size, data.color_mode, data.result_dir) == (10, 28, "auto", None)
    assert json.loads(data.save(tmp_path / "copy.json").read_text()) == SEED_DATA


def test_relative_folders_resolve_against_the_json_folder(tmp_path, monkeypatch):
    (tmp_path / "inputs").mkdir()
    path = write(tmp_path / "inputs" / "d.json", {**SEED_DATA, "train_dir": "../data/train", "test_dir": "test",
                                                 "result_dir": "../out"})
    monkeypatch.chdir("/")
    data = DataParams.load(path)
    assert data.train_path == (tmp_path / "data" / "train").resolve()
    assert data.test_path == (tmp_path / "inputs" / "test").resolve()
    assert data.results_path == (tmp_path / "out").resolve()
    # saved elsewhere, relative folders still point at the same places
    (tmp_path / "deeper" / "x").mkdir(parents=True)
    moved = json.loads(data.save(tmp_path / "deeper" / "x" / "d.json").read_text())
    assert moved["train_dir"] == "../../data/train" and moved["test_dir"] == "../../inputs/test"


def test_optional_data_fields_validate_and_save_only_when_used(tmp_path):
    data = DataParams.from_dict({**SEED_DATA, "color_mode": "rgb", "seed": 7})
    assert data.color_mode == "rgb" and data.seed == 7
    assert set(data.to_dict()) == {*SEED_DATA, "color_mode", "seed"}
    with pytest.raises(ParamsError, match="color_mode must be one of auto, grayscale, rgb, got 'cmyk'"):
        DataParams.from_dict({**SEED_DATA, "color_mode": "cmyk"})
    with pytest.raises(ParamsError, match="image_size must be in \\[4, 2048\\], got 1"):
        DataParams.from_dict({**SEED_DATA, "image_size": 1})
    with pytest.raises(ParamsError, match="train_dir is empty"):
        DataParams.from_dict({**SEED_DATA, "train_dir": " "})


def test_form_text_parses_csv_fields_and_refuses_bad_ones():
    texts = HyperParams.from_dict(SEED_HYPER).as_text()
    assert texts["init_rate"] == "0.02,0.01" and texts["decay_steps"] == "400"
    hyper = HyperParams.from_text({**texts, "init_rate": "0.05, 0.02 ,0.01"})
    assert hyper.values["init_rate"] == [0.05, 0.02, 0.01]
    with pytest.raises(ParamsError) as caught:
        HyperParams.from_text({**texts, "momentum": "0.9,0.8", "epochs": "5,,6", "drop_out": "abc"})
    text = str(caught.value)
    assert "epochs has an empty value between commas" in text
    assert "drop_out must be a number, got 'abc'" in text
    assert "momentum must be in [0, 1)" not in text  # momentum lists are allowed


def test_apply_best_combination_gives_scalars():
    hyper = HyperParams.from_dict(SEED_HYPER)
    best = hyper.with_values({"init_rate": 0.01, "epochs": 10})
    assert best.values["init_rate"] == 0.01 and best.values["epochs"] == 10
    assert best.values["num_units"] == [512, 800]


def test_kernel_must_fit_the_pooled_image():
    data = DataParams.from_dict({**SEED_DATA, "image_size": 8})
    hyper = HyperParams.from_dict({**SEED_HYPER, "kernel_size": 5})
    with pytest.raises(ParamsError, match="kernel_size 5 is larger than the 4x4 image"):
        check_fits(data, hyper.first())
    check_fits(data, hyper.with_values({"kernel_size": 3}).first())
