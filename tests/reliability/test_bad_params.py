"""Bad params files and values: a clear ParamsError naming the file and field, never another exception."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.params import DATA_FIELDS, HYPER_FIELDS, HYPER_NAMES, DataParams, HyperParams

from tests_support import SEED_DATA, SEED_HYPER

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
field_names = st.sampled_from([*HYPER_NAMES, *(f.name for f in DATA_FIELDS), "unknown", ""])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, json_values, max_size=12))
def test_hyper_loader_accepts_or_raises_params_error(data):
    try:
        hyper = HyperParams.from_dict(data)
    except ParamsError as exc:
        assert str(exc).startswith("hyper params: ")
        return
    assert hyper.first().epochs >= 1 and hyper.combination_count() >= 1


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(HYPER_NAMES), json_values, max_size=10))
def test_any_single_field_value_on_seed_params(overrides):
    try:
        HyperParams.from_dict({**SEED_HYPER, **overrides})
    except ParamsError:
        pass


@settings(max_examples=300)
@given(st.dictionaries(field_names, json_values, max_size=10))
def test_data_loader_accepts_or_raises_params_error(data):
    try:
        DataParams.from_dict(data)
    except ParamsError:
        pass


@settings(max_examples=200)
@given(json_values | st.text())
def test_any_file_content_loads_or_raises_params_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("p") / "h.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    for loader in (HyperParams.load, DataParams.load):
        try:
            loader(path)
        except ParamsError as exc:
            assert str(exc).startswith(str(path))


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(HYPER_NAMES), st.text(max_size=12)))
def test_form_text_accepts_or_raises_params_error(texts):
    try:
        HyperParams.from_text({**HyperParams.from_dict(SEED_HYPER).as_text(), **texts})
    except ParamsError:
        pass


def test_binary_file_is_explained(tmp_path):
    path = tmp_path / "h.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(ParamsError, match="not a text file, so not hyper params JSON"):
        HyperParams.load(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"num_classes": 10, "train_dir": "a", "test_dir": "b", "image_size": 28', "not valid JSON (line 1, column 72: Expecting ',' delimiter)"),
        ("", "not valid JSON (line 1, column 1: Expecting value)"),
        ('"just a string"', "data params must be a JSON object {...}, got a str"),
        ('{"num_classes": "ten", "train_dir": "a", "test_dir": "b", "image_size": 28}', "num_classes must be a whole number, got 'ten'"),
        ('{"train_dir": "a", "test_dir": "b"}', "missing fields: num_classes, image_size"),
        ('{"num_classes": 10, "train_dir": 5, "test_dir": "b", "image_size": 28}', "train_dir must be text, got 5"),
        ('{"num_classes": 1, "train_dir": "a", "test_dir": "b", "image_size": 28}', "num_classes must be at least 2, got 1"),
        ('{"num_classes": [2, 3], "train_dir": "a", "test_dir": "b", "image_size": 28}', "num_classes must be a whole number, got [2, 3]"),
    ],
)
def test_bad_data_params_files(tmp_path, text, message):
    path = tmp_path / "d.json"
    path.write_text(text)
    with pytest.raises(ParamsError) as caught:
        DataParams.load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_huge_grid_warns_with_the_combination_count():
    hyper = HyperParams.from_dict({**SEED_HYPER, "kernel_size": [3, 5], "drop_out": [0.1, 0.2, 0.3]})
    assert hyper.warnings == (
        "hyper params: the tuning grid has 192 combinations (576 fits with 3 folds); "
        "consider fewer values, or the random or halving strategy",
    )
    assert HyperParams.from_dict(SEED_HYPER).warnings == ()  # the seed's 32 are fine


@pytest.mark.parametrize(("field", "value"), [("epochs", 10**400), ("init_rate", 1e308 * 10), ("batch_size", -(10**20))])
def test_absurd_numbers_are_refused_not_crashing(field, value):
    with pytest.raises(ParamsError, match=field):
        HyperParams.from_dict({**SEED_HYPER, field: value})


def test_labels_exist_for_every_form_field():
    assert all(spec.label for spec in (*HYPER_FIELDS, *DATA_FIELDS))
