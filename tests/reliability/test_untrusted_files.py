"""Files from strangers: model files are refused without running their code, and before they are
unpacked when they claim more than they can hold; data files that hold too much, or rows that are
not numbers, end in one short line or a listed skip; user files are never touched."""

import hashlib
import json
import os
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from cnn_tui.cli import main
from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.models import model as model_module


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


# ---------------------------------------------------------------- the size family: files that claim or hold too much

GIB = 2**30
PIXELS_HEADER = b"label,p0,p1,p2,p3\n"


def _sparse(path: Path, head: bytes, size: int = GIB) -> Path:
    """``head``, then NUL bytes up to ``size``: a hole the file system does not store (no disk, instant)."""
    path.write_bytes(head)
    os.truncate(path, size)
    return path


def _huge_header(path: Path) -> Path:
    path.write_bytes(b"label," + b"pixel_with_a_long_name," * 400_000 + b"\n1,0\n")  # a 9 MB header
    return path


def _one_enormous_line(path: Path) -> Path:
    path.write_bytes(PIXELS_HEADER + b"1," + b"0," * 3_000_000 + b"0\n")  # 6 MB in one row
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _sparse(p, b""), "line 1: longer than 4,194,304 bytes without a line break"),
        (lambda p: _sparse(p, b"label,pixel0"), "line 1: longer than 4,194,304 bytes without a line break"),
        (lambda p: _sparse(p, PIXELS_HEADER), "line 2: longer than 416 bytes, more than a row of 5 values holds"),
        (lambda p: _sparse(p, PIXELS_HEADER + b"1,0,0,0,0\n2,0,"), "line 3: longer than 416 bytes"),
        (lambda p: _sparse(p, b"1,0,0,0,0\n" * 3, 64 * 2**20), "line 4: longer than 416 bytes"),
        (_huge_header, "line 1: longer than 4,194,304 bytes without a line break"),
        (_one_enormous_line, "line 2: longer than 416 bytes, more than a row of 5 values holds"),
    ],
    ids=["sparse-1GB", "sparse-after-a-word", "sparse-after-a-header", "sparse-mid-row", "sparse-after-rows",
         "huge-header", "enormous-row"],
)
def test_an_oversized_csv_fails_fast_in_one_short_line_and_little_memory(capsys, tmp_path, make, message):
    csv = make(tmp_path / "train.csv")
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"num_classes": 2, "train_dir": "train.csv", "test_dir": "train.csv", "image_size": 4}))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        code, out, err = cli(capsys, "check", "--data", str(data))
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and out == ""
    assert len(err) < 400 and err.count("\n") == 1 and "\x00" not in err, err[:400]
    assert err.startswith(f"error: {csv}: {message}")
    assert seconds < 3 and peak < 32 * 2**20, (seconds, peak)


def _keras_like(path: Path, members: dict[str, bytes], declared: dict[str, int] | None = None) -> Path:
    """A zip with ``members``; ``declared`` overrides what the central directory says a member holds
    uncompressed (a lie Python's zipfile believes: it stops there, and the CRC fails)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for info in archive.filelist:
            if declared and info.filename in declared:
                info.file_size = declared[info.filename]
    return path


CONFIG = json.dumps({"class_name": "Sequential", "config": {"layers": []}}).encode()


def _zeros_bomb(path: Path) -> Path:
    """128 MiB of zeros deflated into 0.6 MB: what the member really holds, not a lie."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("config.json", CONFIG)
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            block = bytes(2**20)
            for _ in range(128):
                member.write(block)
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: _keras_like(p, {"config.json": CONFIG, "model.weights.h5": b"\0" * 1000},
                               {"model.weights.h5": 2 * GIB}),
         "its member 'model.weights.h5' would unpack to 2.00 GB"),
        (lambda p: _keras_like(p, {"config.json": CONFIG}, {"config.json": 2 * GIB}),
         "its member 'config.json' would unpack to 2.00 GB"),
        (lambda p: _keras_like(p, {"config.json": CONFIG, "cnn_tui.json": b"{}"}, {"cnn_tui.json": 3 * GIB}),
         "its member 'cnn_tui.json' would unpack to 3.00 GB"),
        (lambda p: _keras_like(p, {"config.json": CONFIG, **{f"assets/{i}": b"x" for i in range(80)}},
                               {f"assets/{i}": 50 * 2**20 for i in range(80)}),
         "its members would unpack to 3.91 GB"),
        (lambda p: _keras_like(p, {"config.json": CONFIG, "model.weights.h5": b"\0" * 1000},
                               {"model.weights.h5": 2**62}),
         "its member 'model.weights.h5' would unpack to 4294967296.00 GB, more than a "),
        (_zeros_bomb, "its member 'model.weights.h5' would unpack to 128.00 MB"),
    ],
    ids=["weights-declare-2GiB", "config-declares-2GiB", "metadata-declares-3GiB", "many-members",
         "declares-4-EiB", "zeros-bomb"],
)
def test_a_model_archive_that_unpacks_to_too_much_is_refused_before_keras_reads_it(capsys, tmp_path, make, fragment):
    path = make(tmp_path / "gift.keras")
    started = time.perf_counter()
    code, out, err = cli(capsys, "classify", "--model", str(path), str(tmp_path / "nothing.png"))
    assert time.perf_counter() - started < 3
    assert code == 2 and len(err) < 400 and err.count("\n") == 1, err[:400]
    assert err.startswith(f"error: {path}: refused: {fragment}"), err


def test_a_model_archive_bigger_than_the_free_memory_is_refused(capsys, tmp_path, monkeypatch):
    path = _keras_like(tmp_path / "big.keras", {"config.json": CONFIG, "model.weights.h5": bytes(3 * 2**20)})
    monkeypatch.setattr(model_module, "available_memory_bytes", lambda: 2**20)
    code, out, err = cli(capsys, "classify", "--model", str(path), str(tmp_path / "nothing.png"))
    assert code == 2 and err.strip() == (f"error: {path}: refused: its members would unpack to 3.00 MB, more than "
                                         "the free memory (1.00 MB)")


# ---------------------------------------------------------------- rows that are not numbers: skipped and listed

SIDE2 = "label,p0,p1,p2,p3"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("x,x,x,x,x", "pixel 1 is not a number ('x')"),
        ("y,1,2,z,4", "pixel 3 is not a number ('z')"),
        ("e,e,e,e,e", "pixel 1 is not a number ('e')"),
        ("q,nan,nan,nan,nan", "pixel 1 is empty or not a number"),
        ("q,inf,1,2,3", "pixel 1 is empty or not a number"),
        ("w,,,,", "pixel 1 is empty or not a number"),
        ("w, , , , ", "pixel 1 is empty or not a number"),
        ('"w","","","",""', "pixel 1 is empty or not a number"),
        ("v,-,.,+,1", "pixel 1 is not a number ('-')"),
        ("v,300,0,0,0", "pixel 1 is 300, outside 0-255"),
        ("v,-1,0,0,0", "pixel 1 is -1, outside 0-255"),
        (",,,,", "no label"),
        ("\x1b[2J,x,x,x,x", "pixel 1 is not a number ('x')"),
        ("L" * 300 + ",1,2,3,4", "a label of 300 characters (a class name holds at most 255, as a folder name)"),
    ],
    ids=["all-x", "one-non-number", "exponent-letters", "nan", "inf", "empty", "blank-fields", "quoted-empty",
         "signs-and-dots", "too-bright", "negative", "empty-row", "escape-label", "label-too-long"],
)
def test_a_csv_row_that_is_not_numbers_is_skipped_and_listed_not_made_a_class(tmp_path, row, reason):
    good = ["0,1,2,3,4", "1,5,6,7,8", "0,9,9,9,9", "1,4,4,4,4"]
    csv = tmp_path / "train.csv"
    csv.write_text("\n".join([SIDE2, good[0], row, *good[1:]]) + "\n")
    images = load_images(csv, image_size=4, num_classes=2, cache=False)
    assert images.class_names == ["0", "1"] and len(images) == 4
    assert [(s.path, s.reason) for s in images.skipped] == [(f"{csv}:3", reason)]
