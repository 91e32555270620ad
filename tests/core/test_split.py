"""Splitting one class-folder set: stratified, seeded, links or copies, originals untouched."""

import json
import os

import numpy as np
import pytest

from cnn_tui.core.data import split
from cnn_tui.core.data.locations import list_location
from cnn_tui.core.data.split import split_folder
from cnn_tui.core.errors import DatasetError, ResultsError, UserError
from cnn_tui.core.params.files import DataParams

from tests_support import write_image_folder


def snapshot(root):
    """Every file under root: relative path -> (bytes, mtime_ns)."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = (handle.read(), os.stat(path).st_mtime_ns)
    return out


def files_of(root):
    return sorted(os.path.relpath(os.path.join(f, n), root) for f, _, names in os.walk(root) for n in names)


def test_split_is_stratified_and_leaves_the_originals(tmp_path):
    source = write_image_folder(tmp_path / "all", ["a", "b", "c"], per_class=10)
    write_image_folder(source, ["a"], per_class=20, seed=3)  # "a" now holds 20 (img_000..019 rewritten)
    before = snapshot(source)
    result = split_folder(source, tmp_path / "out", test=0.2, seed=1)
    assert result.counts == {"training": [16, 8, 8], "testing": [4, 2, 2]}
    assert result.linked == 40 and result.copied == 0
    assert snapshot(source) == before
    assert sorted(files_of(tmp_path / "out" / "training") + files_of(tmp_path / "out" / "testing")) == sorted(before)
    assert not set(files_of(tmp_path / "out" / "training")) & set(files_of(tmp_path / "out" / "testing"))
    # hard links share the original's inode; nothing hidden is left behind
    linked = tmp_path / "out" / "testing" / files_of(tmp_path / "out" / "testing")[0]
    assert os.stat(linked).st_ino == os.stat(source / os.path.relpath(linked, tmp_path / "out" / "testing")).st_ino
    assert sorted(os.listdir(tmp_path / "out")) == ["data_params.json", "testing", "training"]


def test_split_writes_data_params_that_load_the_result(tmp_path):
    source = write_image_folder(tmp_path / "all", 3, per_class=10, size=12)
    result = split_folder(source, tmp_path / "out", seed=0)
    saved = json.loads(result.data_params.read_text())
    assert saved == {"num_classes": 3, "train_dir": "training", "test_dir": "testing", "image_size": 12, "seed": 0}
    data = DataParams.load(result.data_params)
    assert list_location(data.train_path).counts() == [8, 8, 8]
    assert list_location(data.test_path).counts() == [2, 2, 2]


def test_split_is_reproducible_with_a_seed(tmp_path):
    source = write_image_folder(tmp_path / "all", 2, per_class=15)
    split_folder(source, tmp_path / "one", seed=7)
    split_folder(source, tmp_path / "two", seed=7)
    split_folder(source, tmp_path / "three", seed=8)
    assert files_of(tmp_path / "one") == files_of(tmp_path / "two")
    assert files_of(tmp_path / "one" / "testing") != files_of(tmp_path / "three" / "testing")


def test_copy_makes_independent_files_and_val_a_third_folder(tmp_path):
    source = write_image_folder(tmp_path / "all", 2, per_class=20)
    result = split_folder(source, tmp_path / "out", test=0.2, val=0.1, copy=True)
    assert result.counts == {"training": [14, 14], "validation": [2, 2], "testing": [4, 4]}
    assert (result.linked, result.copied) == (0, 40)
    copied = tmp_path / "out" / "validation" / files_of(tmp_path / "out" / "validation")[0]
    assert os.stat(copied).st_ino != os.stat(source / os.path.relpath(copied, tmp_path / "out" / "validation")).st_ino


def test_split_refuses_a_non_empty_output_folder_and_writes_nothing(tmp_path):
    source = write_image_folder(tmp_path / "all", 2, per_class=10)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match=r"out: the output folder is not empty \(1 entries\)"):
        split_folder(source, out)
    assert os.listdir(out) == ["keep.txt"]
    with pytest.raises(UserError, match="inside the folder being split"):
        split_folder(source, source / "split")
    assert sorted(os.listdir(source)) == ["0", "1"]


def test_an_empty_output_folder_is_used(tmp_path):
    source = write_image_folder(tmp_path / "all", 2, per_class=10)
    (tmp_path / "out").mkdir()
    assert split_folder(source, tmp_path / "out").counts["testing"] == [2, 2]


def test_a_class_too_small_to_split_is_one_line_and_nothing_is_written(tmp_path):
    source = write_image_folder(tmp_path / "all", ["a", "b"], per_class=6)
    for path in sorted((source / "b").iterdir())[1:]:
        path.unlink()
    with pytest.raises(DatasetError, match="at least 2 images in every class; the smallest class has 1"):
        split_folder(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("test", "val", "message"), [
    (0.0, 0.0, "the test share must be between 0 and 1, got 0"),
    (0.5, 0.5, r"the test and validation shares \(0.5 \+ 0.5\) leave nothing for training"),
])
def test_shares_are_checked(tmp_path, test, val, message):
    with pytest.raises(UserError, match=message):
        split_folder(tmp_path, tmp_path / "out", test=test, val=val)


def test_a_failing_copy_leaves_no_half_split(tmp_path, monkeypatch):
    source = write_image_folder(tmp_path / "all", 2, per_class=10)
    calls = []

    def full_disk(src, dst):
        calls.append(dst)
        if len(calls) > 5:
            raise OSError(28, "No space left on device", str(dst))
        return np.array(0)

    monkeypatch.setattr(split.shutil, "copy2", full_disk)
    with pytest.raises(ResultsError, match="cannot split \\(No space left on device\\); nothing was kept"):
        split_folder(source, tmp_path / "out", copy=True)
    assert not (tmp_path / "out").exists()
    assert len(files_of(source)) == 20
