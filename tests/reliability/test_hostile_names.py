"""File and class names that are not valid UTF-8 (Latin-1 disks, archives from elsewhere) load,
train, and are written to CSV, JSON and PNG with the odd bytes shown as \\xNN; and any text from a
file (a CSV header, a label, a class folder's or a file's name) that holds terminal escapes or other
control characters is shown with them escaped the same way, never sent to the terminal."""

from __future__ import annotations

import json
import os
import sys

import pytest

from cnn_tui.core import fileio
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.runs.folder import read_run

from tests_support import write_image_folder

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")


def test_a_pipeline_over_non_utf8_file_and_class_names(params_files, tmp_path):
    data_path, hyper_path = params_files()
    for part in ("training", "testing"):
        folder = os.fsencode(tmp_path / "data" / part)
        os.rename(folder + b"/2", folder + b"/cl\xe9ss")
        os.rename(folder + b"/0/img_000.png", folder + b"/0/caf\xe9.png")
        with open(folder + b"/1/bad\xff.png", "wb") as handle:
            handle.write(b"not an image")
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("pipeline", validate=0.25), data, hyper, parent=tmp_path / "runs")
    outcome = control.run_here(run, TaskSpec.load(run.path))
    assert outcome.status == "finished", outcome.message
    assert read_run(run.path)["status"] == "finished"
    assert (run.path / "confusion_matrix.png").stat().st_size > 0
    matrix = (run.path / "confusion_matrix.csv").read_text(encoding="utf-8")
    assert "cl\\xe9ss" in matrix.splitlines()[0]
    assert "bad\\xff.png" in (run.path / "skipped_files.csv").read_text(encoding="utf-8")
    evaluation = json.loads((run.path / "evaluation.json").read_text(encoding="utf-8"))
    assert [row["label"] for row in evaluation["per_class"]][:3] == ["0", "1", "cl\udce9ss"]


async def test_the_tui_loads_and_shows_non_utf8_class_names(params_files, tmp_path, in_tmp):
    """Loading (l, L) and the Data view with a class folder named in Latin-1 (the screen is written as UTF-8)."""
    from tui_helpers import make_app, status, wait_idle

    data_path, hyper_path = params_files()
    for part in ("training", "testing"):
        folder = os.fsencode(tmp_path / "data" / part)
        os.rename(folder + b"/2", folder + b"/cl\xe9ss")
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("L")
        await wait_idle(pilot)
        assert app.main.session.train_set.class_names == ["0", "1", "cl\udce9ss"]
        assert "test set: 18 images in 3 classes" in status(app)
        assert "cl\\xe9ss" in app.export_screenshot()  # drawn, as \xNN


def test_the_cli_prints_non_utf8_names_on_a_strict_utf8_terminal(params_files, tmp_path):
    """With a UTF-8 locale Python's stdout refuses surrogates: every table and line shows them as \\xNN."""
    import subprocess

    data_path, hyper_path = params_files()
    for part in ("training", "testing"):
        folder = os.fsencode(tmp_path / "data" / part)
        os.rename(folder + b"/2", folder + b"/cl\xe9ss")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-m", "cnn_tui", "pipeline", "--data", str(data_path), "--hyper",
                           str(hyper_path)], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    out = done.stdout.decode("utf-8")  # strict: the output is valid UTF-8
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert "cl\\xe9ss" in out
    listed = subprocess.run([sys.executable, "-m", "cnn_tui", "runs"], cwd=tmp_path, env=env, capture_output=True,
                            timeout=120)
    assert listed.returncode == 0 and "pipeline" in listed.stdout.decode("utf-8")


# ---------------------------------------------------------------- the escape family: text from files never drives the terminal

OSC_TITLE = "\x1b]0;TITLE\x07"  # sets the terminal's title
CLEAR_RED = "\x1b[2J\x1b[31m"  # clears the screen, then writes red
HOSTILE = {
    "osc-csi": (OSC_TITLE + CLEAR_RED, "\\x1b]0;TITLE\\x07\\x1b[2J\\x1b[31m"),
    "backspace-return": ("ok\x08\x08\rNO", "ok\\x08\\x08\\rNO"),
    "c1-csi": ("\x9b2Jc1", "\\x9b2Jc1"),
    "bidi-override": ("abc\u202etxt.exe", "abc\\u202etxt.exe"),
    "newline-tab": ("two\nlines\tand", "two\\nlines\\tand"),
    "not-utf8": ("caf\udce9", "caf\\xe9"),
}


@pytest.mark.parametrize(("text", "shown"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_excerpt_shows_text_from_a_file_escaped(text, shown):
    assert fileio.excerpt(text) == shown


def test_excerpt_is_short_whatever_the_text():
    assert fileio.excerpt("a" * 1000) == "a" * 60 + "..."
    assert fileio.excerpt("\x00" * 2**24) == "\\x00" * 15 + "..."  # 16 MB of NULs: 63 characters, at once
    assert fileio.excerpt("ab\x1bcd", limit=4) == "ab..."  # an escape is never cut in two
    assert fileio.excerpt("plain name.png") == "plain name.png"
    assert fileio.readable("keeps\nlines\tand tabs \x1b[0m") == "keeps\nlines\tand tabs \\x1b[0m"


def _no_control_characters(text: str) -> None:
    assert not [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"], text


def _check(capsys, tmp_path, train: str, test: str, classes: int = 2) -> tuple[int, str, str]:
    from cnn_tui.cli import main

    data = tmp_path / "d.json"
    data.write_text(json.dumps({"num_classes": classes, "train_dir": train, "test_dir": test, "image_size": 8}))
    code = main(["check", "--data", str(data)])
    out, err = capsys.readouterr()
    _no_control_characters(out + err)
    return code, out, err


IN_A_LINE = [name for name, (text, _) in HOSTILE.items() if "\n" not in text]  # a CSV value holds no line break


@pytest.mark.parametrize("name", IN_A_LINE, ids=IN_A_LINE)
def test_check_shows_a_csv_header_from_the_file_escaped(capsys, tmp_path, name):
    text, shown = HOSTILE[name]
    (tmp_path / "t.csv").write_text(f"{text},p0,p1,p2,p3\n1,0,0,0,0\n", encoding="utf-8", errors="surrogateescape")
    code, out, err = _check(capsys, tmp_path, "t.csv", "t.csv")
    assert code == 2 and err.count("\n") == 1 and f"(it starts {shown}, p0, p1, p2, ... 1 more)" in err


@pytest.mark.parametrize("name", IN_A_LINE, ids=IN_A_LINE)
def test_check_shows_a_csv_label_from_the_file_escaped(capsys, tmp_path, name):
    text, shown = HOSTILE[name]
    rows = [f"{label},{k},{k},{k},{k}" for k in range(6) for label in ("0", text)]
    (tmp_path / "t.csv").write_text("label,p0,p1,p2,p3\n" + "\n".join(rows) + "\n", encoding="utf-8",
                                    errors="surrogateescape")
    code, out, err = _check(capsys, tmp_path, "t.csv", "t.csv")
    assert f"│ {shown}" in out  # the class table
    code, out, err = _check(capsys, tmp_path, "t.csv", "t.csv", classes=3)
    assert code == 2 and err.count("\n") == 1 and "but num_classes is 3" in err and shown in err


@pytest.mark.parametrize("name", list(HOSTILE), ids=list(HOSTILE))
def test_check_shows_class_folder_and_file_names_escaped(capsys, tmp_path, name):
    text, shown = HOSTILE[name]
    for seed, part in enumerate(("training", "testing")):
        write_image_folder(tmp_path / part, ["a", "b"], per_class=3, size=8, seed=seed)
        root = os.fsencode(tmp_path / part)
        os.rename(root + b"/b", root + b"/" + os.fsencode(text))
    (tmp_path / "training" / text / f"{text}.png").write_bytes(b"not an image")
    code, out, err = _check(capsys, tmp_path, "training", "testing")
    assert code == 1
    assert f"│ {shown}" in out  # the class tables
    assert f"training: {shown}/{shown}.png: " in out  # the finding naming the unreadable file
    code, out, err = _check(capsys, tmp_path, "training", "testing", classes=3)
    assert code == 2 and err.count("\n") == 1 and "but num_classes is 3" in err and shown in err
