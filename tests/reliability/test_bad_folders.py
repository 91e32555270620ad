"""Unusable folders end in one clear message naming the folder; nothing is half-loaded."""

import os
import stat

import numpy as np
import pytest
from PIL import Image

from cnn_tui.core.data import decode, folders, pool
from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.errors import DatasetError
from cnn_tui.core.events import LoadProgress, Notice
from cnn_tui.core.params.files import DataParams
from cnn_tui.core.runs.steps import load_test_set, load_training_set

from tests_support import write_image_folder


def params(tmp_path, **fields):
    base = {"num_classes": 2, "train_dir": "training", "test_dir": "testing", "image_size": 8}
    return DataParams.from_dict({**base, **fields}, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        ("missing", "{root}: training folder not found"),
        ("empty", "{root}: training folder has no class sub-folders; put each class's images in its own folder, "
                  "e.g. training/cat/, training/dog/"),
        ("loose", "{root}: training folder has no class sub-folders (2 images lie directly in it); put each class's "
                  "images in its own folder, e.g. training/cat/, training/dog/"),
        ("empty_class", "{root}/1: class folder '1' has no image files"),
        ("three", "{root}: training folder has 3 class folders (0, 1, 2) but num_classes is 2"),
        ("file", "{root}: training folder is a file, not a folder (nor a .csv of pixels or a CIFAR .bin batch)"),
    ],
)
def test_folder_problems(tmp_path, build, expected):
    root = tmp_path / "training"
    if build == "empty":
        root.mkdir()
    elif build == "loose":
        root.mkdir()
        for name in ("a.png", "b.jpg"):
            Image.new("L", (4, 4)).save(root / name)
    elif build == "empty_class":
        write_image_folder(root, ["0"], per_class=2)
        (root / "1").mkdir()
    elif build == "three":
        write_image_folder(root, 3, per_class=2)
    elif build == "file":
        root.write_text("oops")
    with pytest.raises(DatasetError) as caught:
        load_training_set(params(tmp_path))
    assert str(caught.value) == expected.format(root=root)


@pytest.mark.parametrize(
    ("test_classes", "fragment"),
    [
        (["cat", "dog", "emu"], "test folder has 3 class folders (cat, dog, emu) but num_classes is 2"),
        (["cat", "fox"], "test classes differ from the model's classes: missing dog; unexpected fox"),
    ],
)
def test_test_classes_must_match_training(tmp_path, test_classes, fragment):
    write_image_folder(tmp_path / "training", ["cat", "dog"], per_class=2)
    write_image_folder(tmp_path / "testing", test_classes, per_class=2)
    data = params(tmp_path)
    train = load_training_set(data)
    with pytest.raises(DatasetError) as caught:
        load_test_set(data, class_names=train.class_names)
    assert fragment in str(caught.value) and str(tmp_path / "testing") in str(caught.value)


def _deny(monkeypatch, path, module_function):
    """Make ``path`` unreadable: really (chmod) when not root, else as the OS would answer (EACCES)."""
    if os.geteuid() != 0:
        os.chmod(path, 0)
        return
    owner, name = module_function
    real = getattr(owner, name)

    def denied(target, *args, **kwargs):
        if os.fspath(target) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(target))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(owner, name, denied)


def test_unreadable_training_folder(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "training", 2, per_class=2)
    _deny(monkeypatch, root, (os, "scandir"))
    try:
        with pytest.raises(DatasetError) as caught:
            load_training_set(params(tmp_path))
        assert str(caught.value) == f"{root}: training folder cannot be read (permission denied)"
    finally:
        os.chmod(root, stat.S_IRWXU)


def test_unreadable_image_file_is_skipped_and_listed(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "training", 2, per_class=3)
    secret = root / "1" / "img_001.png"
    _deny(monkeypatch, secret, (decode.Image, "open"))
    _deny(monkeypatch, secret, (decode, "_plain_png"))  # plain PNGs are read without Image.open
    try:
        images = load_images(root, image_size=8, cache=False)
        assert [(s.path, s.reason) for s in images.skipped] == [(str(secret), "permission denied")]
        assert len(images) == 5
    finally:
        os.chmod(secret, stat.S_IRUSR | stat.S_IWUSR)


def test_parallel_loading_works_from_stdin_scripts(tmp_path):
    """Worker processes must not re-import the caller's __main__ (stdin, notebooks, unguarded scripts)."""
    import subprocess
    import sys

    root = write_image_folder(tmp_path / "t", 2, per_class=30, size=8)
    script = (
        "from cnn_tui.core.data import dataset, folders\n"
        "folders.PARALLEL_THRESHOLD = 10\n"
        f"images = dataset.load_images({str(root)!r}, image_size=8, cache=False, workers=2)\n"
        "print(len(images))\n"
    )
    result = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["60"]


def test_a_dead_decoding_worker_falls_back_to_this_process(tmp_path, monkeypatch):
    import signal

    root = write_image_folder(tmp_path / "t", 3, per_class=120, size=8)
    expected = load_images(root, image_size=8, cache=False, workers=1)
    monkeypatch.setattr(folders, "PARALLEL_THRESHOLD", 10)
    events = []
    killed = []

    def emit(event):
        events.append(event)
        if isinstance(event, LoadProgress) and not killed:
            for pid in list(pool.process_pool(2).executor._processes):  # noqa: SLF001
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    images = load_images(root, image_size=8, cache=False, workers=2, emit=emit)
    assert killed
    np.testing.assert_array_equal(images.x, expected.x)
    assert any(isinstance(e, Notice) and "worker process died" in e.text for e in events)
