"""The demo export: digits written once, params files never reset once the user has edited them."""

from __future__ import annotations

import json

import pytest

from cnn_tui.core.data.demo import export_digits
from cnn_tui.core.errors import UserError


def test_running_the_demo_again_keeps_edited_params(tmp_path):
    first = export_digits(tmp_path / "d", tmp_path / "in")
    assert first.kept == () and first.written == first.train_count + first.test_count
    hyper = json.loads(first.hyper_params.read_text())
    hyper["epochs"] = 99
    first.hyper_params.write_text(json.dumps(hyper))
    again = export_digits(tmp_path / "d", tmp_path / "in")
    assert again.written == 0 and set(again.kept) == {str(first.data_params), str(first.hyper_params)}
    assert json.loads(first.hyper_params.read_text())["epochs"] == 99


def test_an_app_input_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "in").write_text("not a folder")
    with pytest.raises(UserError, match="cannot make the folder for the demo params"):
        export_digits(tmp_path / "d", tmp_path / "in")
