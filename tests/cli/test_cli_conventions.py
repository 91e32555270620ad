"""The CLI behaves as terminal users expect: each command's own usage line, text shown as it is
(never read as Rich markup), no TUI without a terminal, JSON errors under --json, the environment
variables in --help, and --set FIELD=VALUE for one run."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from cnn_tui.cli import main
from cnn_tui.cli.console import CliConsole
from cnn_tui.core.environment import VARIABLES
from cnn_tui.core.events import LoadProgress, Notice

SRC = Path(__file__).resolve().parents[2] / "src" / "cnn_tui"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- usage


def test_a_commands_usage_line_is_its_own(capsys):
    code, out, err = run(capsys, "train", "--data", "x.json")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: cnn-tui train [-h]")
    assert "COMMAND" not in err and "--model M.keras" not in err  # nothing of the top-level usage
    assert lines[-1] == "cnn-tui train: error: the following arguments are required: --hyper"


def test_an_unknown_option_is_reported_with_the_commands_usage(capsys):
    code, _, err = run(capsys, "runs", "--bogus")
    assert code == 2
    assert err.startswith("usage: cnn-tui runs") and err.strip().endswith("unrecognized arguments: --bogus")


# ---------------------------------------------------------------- plain text, never markup


def test_a_path_with_brackets_is_one_line_naming_it(capsys, params_files, tmp_path):
    _, hyper = params_files()
    weird = tmp_path / "x[/y]" / "[bold]d.json"
    code, out, err = run(capsys, "train", "--data", str(weird), "--hyper", str(hyper))
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"error: {weird}: data params file not found"]


def _console() -> tuple[CliConsole, io.StringIO]:
    console = CliConsole()
    buffer = io.StringIO()
    console.err = Console(file=buffer, force_terminal=True, color_system=None, width=200, emoji=False)
    return console, buffer


@pytest.mark.parametrize("text", ["pip install 'cnn-tui[onnx]' (or '[/]')", "[bold]x[/bold] [/] [link=y]", ":smile: ]["])
def test_messages_are_shown_as_typed(text):
    console, buffer = _console()
    console.emit(Notice(text, level="warning"))
    console.info(text)
    console.error(text)
    assert buffer.getvalue().splitlines() == [f"warning: {text}", text, f"error: {text}"]


def test_progress_descriptions_are_plain_text():
    """A folder named like markup is the bar's text as it is (Rich's TextColumn parses markup by default)."""
    console, buffer = _console()
    with console.progress("loading"):
        console.emit(LoadProgress("/data/[red]x", 1, 2, 10.0))
        console._progress.refresh()  # noqa: SLF001 — draw now, not on the refresh thread's schedule
    assert "loading [red]x " in buffer.getvalue()


# ---------------------------------------------------------------- no terminal


def test_without_a_terminal_the_tui_is_not_started(capsys, monkeypatch):
    started = []
    monkeypatch.setattr("cnn_tui.tui.run_tui", lambda *args: started.append(args) or 0)
    code, out, err = run(capsys)  # pytest's stdin and stdout are not terminals
    assert code == 2 and out == "" and not started
    assert err.strip().splitlines() == ["error: the terminal UI needs a terminal; see cnn-tui --help"]


def test_a_pipe_gets_one_line_not_escape_codes():
    done = subprocess.run([sys.executable, "-m", "cnn_tui"], input="\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "" and "\x1b" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: the terminal UI needs a terminal; see cnn-tui --help"]


# ---------------------------------------------------------------- --json errors


@pytest.mark.parametrize(("argv", "command", "says"), [
    (["train", "--json", "--data", "x.json"], "train", "the following arguments are required: --hyper"),
    (["tune", "--json", "--cv", "1", "--data", "d", "--hyper", "h"], "tune", "--cv: must be at least 2"),
    (["runs", "--json", "--bogus"], "runs", "unrecognized arguments: --bogus"),
    (["trainn", "--json"], None, "invalid choice: 'trainn'"),
])
def test_usage_errors_under_json_are_one_json_object(capsys, argv, command, says):
    code, out, err = run(capsys, *argv)
    assert code == 2
    payload = json.loads(out)  # the whole of stdout is one object
    assert payload["exit_code"] == 2 and payload["command"] == command and says in payload["error"]
    assert len(err.strip().splitlines()) == 1 and says in err  # stderr: the line alone, no usage


def test_a_user_mistake_under_json_is_one_json_object(capsys, tmp_path):
    code, out, _ = run(capsys, "summary", "--json", "--data", str(tmp_path / "[x].json"), "--hyper", "h.json")
    payload = json.loads(out)
    assert code == 2 and payload == {"command": "summary", "exit_code": 2,
                                     "error": f"{tmp_path / '[x].json'}: data params file not found"}


# ---------------------------------------------------------------- environment in --help


def test_help_ends_with_the_environment_variables(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    tail = out[out.index("environment variables:"):]
    assert tail.strip().splitlines()[1:] and [line.split()[0] for line in tail.strip().splitlines()[1:]] == \
        [name for name, _ in VARIABLES]


def test_every_variable_the_code_reads_is_in_the_table():
    names = {name for name, _ in VARIABLES}
    read = set()
    for path in SRC.rglob("*.py"):
        read |= set(re.findall(r"\b(CNN_TUI_[A-Z_]+|KERAS_BACKEND)\b", path.read_text(encoding="utf-8")))
    assert read and read <= names, sorted(read - names)


# ---------------------------------------------------------------- --set


def test_set_overrides_hyper_and_data_fields_for_one_run(capsys, params_files, tmp_path):
    data, hyper = params_files(hyper={"num_filters": 8})
    code, out, err = run(capsys, "summary", "--json", "--data", str(data), "--hyper", str(hyper),
                         "--set", "num_filters=4", "--set", "image_size=16", "--set", "num_filters=5")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["input_shape"] == [16, 16, 1]
    assert payload["layers"][0]["output_shape"] == "(None, 16, 16, 5)"  # the last --set of a field wins
    assert json.loads(hyper.read_text())["num_filters"] == 8  # the file is left as it was


@pytest.mark.parametrize(("item", "says"), [
    ("epochs=0", "--set epochs: must be at least 1, got 0"),
    ("epochs=three", "--set epochs: must be a whole number, got 'three'"),
    ("epochs", "--set takes FIELD=VALUE"),
    ("=3", "--set takes FIELD=VALUE"),
    ("no_such_field=1", "--set no_such_field: no such field; fields: "),
    ("image_size=2", "--set image_size: must be in [4, 2048], got 2"),
    ("color_mode=sepia", "--set color_mode: must be one of"),
    ("kernel_size=9", "kernel_size 9 is larger than"),  # checked with the data, as a file's value is
])
def test_set_is_validated_like_the_file(capsys, params_files, item, says):
    data, hyper = params_files()
    code, out, err = run(capsys, "train", "--data", str(data), "--hyper", str(hyper), "--set", item)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], err


def test_set_of_a_hyper_field_where_no_hyper_params_are_read(capsys, params_files, tmp_path):
    data, _ = params_files()
    code, _, err = run(capsys, "evaluate", "--data", str(data), "--model", str(tmp_path / "m.keras"),
                       "--set", "epochs=2")
    assert code == 2 and "--set epochs: a hyper params field, and this command reads no hyper params" in err


def test_a_run_records_the_params_it_used(capsys, params_files, tmp_path):
    data, hyper = params_files()
    code, out, err = run(capsys, "train", "--json", "--data", str(data), "--hyper", str(hyper),
                         "--set", "epochs=1", "--set", "num_units=6", "--set", f"result_dir={tmp_path / 'elsewhere'}")
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    assert run_dir.parent == tmp_path / "elsewhere"
    recorded = json.loads((run_dir / "hyper_params.json").read_text())
    assert recorded["epochs"] == 1 and recorded["num_units"] == 6


def test_the_guide_lists_every_variable():
    table = (SRC.parents[1] / "docs" / "guide" / "environment.md").read_text(encoding="utf-8")
    missing = [name for name, _ in VARIABLES if f"| `{name}` |" not in table]
    assert not missing, missing
