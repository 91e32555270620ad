"""Bad params files and values: a clear ParamsError naming the file and field, never another exception."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.params.fields import DATA_FIELDS, HYPER_FIELDS, HYPER_NAMES
from cnn_tui.core.params.files import DataParams, HyperParams

from tests_support import SEED_HYPER

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
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
        ('{"num_classes": 10, "train_dir": "a", "test_dir": "b", "image_size": 28',
         "not valid JSON (line 1, column 72: Expecting ',' delimiter)"),
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
        "consider fewer values, or the random strategy (it samples the grid)",
    )
    assert HyperParams.from_dict(SEED_HYPER).warnings == ()  # the seed's 32 are fine


@pytest.mark.parametrize(("field", "value"), [("epochs", 10**400), ("init_rate", 1e308 * 10), ("batch_size", -(10**20))])
def test_absurd_numbers_are_refused_not_crashing(field, value):
    with pytest.raises(ParamsError, match=field):
        HyperParams.from_dict({**SEED_HYPER, field: value})


def test_labels_exist_for_every_form_field():
    assert all(spec.label for spec in (*HYPER_FIELDS, *DATA_FIELDS))


def _huge_grid() -> HyperParams:
    values = {name: list(range(1, 11)) for name in ("decay_steps", "kernel_size", "num_filters", "num_units", "epochs",
                                                     "batch_size")}
    return HyperParams.from_dict({**SEED_HYPER, **values, "init_rate": [i / 100 for i in range(1, 11)],
                                  "momentum": [i / 20 for i in range(10)], "drop_out": [i / 20 for i in range(10)]})


def test_a_huge_grid_is_refused_before_it_is_listed_and_random_search_samples_it():
    from cnn_tui.core.tuning.options import SearchOptions
    from cnn_tui.core.tuning.search import plan_search

    hyper = _huge_grid()
    assert hyper.combination_count() == 10**9
    with pytest.raises(ParamsError, match=r"1,000,000,000 combinations .* more than the limit of 1,000"):
        plan_search(hyper, SearchOptions(strategy="grid"), samples=100)
    with pytest.raises(ParamsError, match="more than the limit"):
        plan_search(hyper, SearchOptions(strategy="halving"), samples=100)
    plan = plan_search(hyper, SearchOptions(strategy="random", n_iter=4), samples=100)
    assert len(plan.candidates) == 4 and plan.fits == 12


def test_the_combination_limit_can_be_raised(monkeypatch):
    from cnn_tui.core.tuning.options import SearchOptions
    from cnn_tui.core.tuning.search import plan_search

    hyper = HyperParams.from_dict({**SEED_HYPER, "num_units": list(range(1, 41)), "num_filters": list(range(1, 41)),
                                   "init_rate": 0.02, "epochs": 5, "batch_size": 64})
    with pytest.raises(ParamsError, match="1,600 combinations"):
        plan_search(hyper, SearchOptions(), samples=100)
    monkeypatch.setenv("CNN_TUI_MAX_COMBINATIONS", "2000")
    assert len(plan_search(hyper, SearchOptions(), samples=100).candidates) == 1600


def test_duplicate_values_in_a_hyper_list_are_tuned_once_and_said():
    hyper = HyperParams.from_dict({**SEED_HYPER, "init_rate": [0.02, 0.02]})
    assert "init_rate" not in hyper.grid()
    assert any("init_rate lists a value more than once" in w for w in hyper.warnings)


@pytest.mark.parametrize(("name", "value"), [("CNN_TUI_CACHE_MAX_MB", "abc"), ("CNN_TUI_WORKERS", "0"),
                                             ("CNN_TUI_STREAM_ABOVE_MB", "-5"), ("CNN_TUI_CACHE", "maybe"),
                                             ("CNN_TUI_MAX_COMBINATIONS", "1e3")])
def test_a_bad_environment_variable_is_one_line_naming_it(monkeypatch, name, value):
    from cnn_tui.core.data import cache, feeding, pool
    from cnn_tui.core.errors import UserError
    from cnn_tui.core.tuning import search

    monkeypatch.setenv(name, value)
    readers = {"CNN_TUI_CACHE_MAX_MB": lambda: cache.ImageCache(cache.Path("/tmp")),
               "CNN_TUI_WORKERS": pool.worker_count, "CNN_TUI_STREAM_ABOVE_MB": feeding.stream_limit_bytes,
               "CNN_TUI_CACHE": cache.cache_dir, "CNN_TUI_MAX_COMBINATIONS": search.combination_limit}
    with pytest.raises(UserError, match=f"environment variable {name} must"):
        readers[name]()
