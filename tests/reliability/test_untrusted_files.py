"""Model files from strangers are refused without running their code; user files are never touched."""

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from cnn_tui.cli import main


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lambda_model(path: Path, marker: Path) -> Path:
    """A .keras file whose Lambda layer would create ``marker`` if its code ever ran."""
    import keras

    def side_effect(t):
        marker.write_text("code from the model file ran")
        return t

    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Lambda(side_effect), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(path)
    marker.unlink(missing_ok=True)  # building the model above ran it once; the file must not run it again
    return path


def test_lambda_model_is_refused_and_its_code_never_runs(capsys, params_files, tmp_path):
    data, _ = params_files()
    marker = tmp_path / "ran.txt"
    model = lambda_model(tmp_path / "gift.keras", marker)
    for command in ("evaluate", "predict"):
        code, out, err = cli(capsys, command, "--data", str(data), "--model", str(model))
        assert code == 2 and err.strip().splitlines() == [
            f"error: {model}: refused: the model contains a Lambda layer, which would run Python code from the "
            "file; cnn-tui loads models in Keras safe mode only"
        ]
    code, out, err = cli(capsys, "classify", "--model", str(model), str(tmp_path / "data" / "testing" / "0" / "img_000.png"))
    assert code == 2 and "refused" in err
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100), "not a Keras model file (not a zip archive, or truncated)"),
        (lambda p: zipfile.ZipFile(p, "w").writestr("readme.txt", "hi"), "not a Keras model archive (no config.json inside)"),
        (lambda p: zipfile.ZipFile(p, "w").writestr("config.json", "{broken"), "damaged model file (its configuration is not valid JSON)"),
    ],
)
def test_renamed_and_damaged_files(capsys, params_files, tmp_path, make, message):
    data, _ = params_files()
    path = tmp_path / "model.keras"
    make(path)
    code, out, err = cli(capsys, "evaluate", "--data", str(data), "--model", str(path))
    assert code == 2 and err.strip() == f"error: {path}: {message}"


def _fingerprint(root: Path, skip: set[str]) -> dict[str, str]:
    prints = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in skip or not path.is_file():
            continue
        prints[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest() + f":{path.stat().st_mtime_ns}"
    return prints


def test_commands_change_nothing_outside_results(capsys, params_files, tmp_path, _isolated_cache):
    data, hyper = params_files(hyper={"epochs": 1, "num_units": [8, 16]})
    before = _fingerprint(tmp_path, skip={"results", _isolated_cache.name})
    code, out, _ = cli(capsys, "train", "--data", str(data), "--hyper", str(hyper), "--json")
    assert code == 0
    model = json.loads(out)["files"]["model"]
    for argv in (["evaluate", "--data", str(data), "--model", model], ["predict", "--data", str(data), "--model", model],
                 ["tune", "--data", str(data), "--hyper", str(hyper), "--cv", "2"],
                 ["classify", "--model", model, str(tmp_path / "data" / "testing" / "1" / "img_000.png")]):
        assert cli(capsys, *argv)[0] == 0
    assert _fingerprint(tmp_path, skip={"results", _isolated_cache.name}) == before
    assert len(list((tmp_path / "results").iterdir())) == 4  # train, evaluate, predict, tune
