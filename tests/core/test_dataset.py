import os
import tempfile
import threading

import numpy as np
import pytest
from PIL import Image

from cnn_tui.core.data import folders
from cnn_tui.core.data.cache import ImageCache, make_key
from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.data.locations import list_location
from cnn_tui.core.errors import DatasetError, TaskStopped
from cnn_tui.core.events import LoadProgress

from tests_support import write_image_folder


def test_classes_are_sorted_folder_names_and_labels_follow_them(tmp_path):
    root = write_image_folder(tmp_path / "t", ["squamous", "adeno", "normal"], per_class=4)
    images = load_images(root, image_size=12)
    assert images.class_names == ["adeno", "normal", "squamous"]
    for label, file in zip(images.y, images.files):
        assert os.path.basename(os.path.dirname(file)) == images.class_names[label]
    assert images.counts() == [4, 4, 4]


def test_pixels_are_float32_in_unit_range_with_the_right_shape(tmp_path):
    root = write_image_folder(tmp_path / "t", 2, per_class=5, size=20)
    images = load_images(root, image_size=10)
    assert images.x.dtype == np.float32 and images.x.shape == (10, 10, 10, 1)
    assert 0.0 <= images.x.min() and images.x.max() <= 1.0 and images.x.max() > 0.8


def test_shuffle_is_seeded(tmp_path):
    root = write_image_folder(tmp_path / "t", 3, per_class=6)
    a = load_images(root, image_size=12, seed=1, cache=False)
    b = load_images(root, image_size=12, seed=1, cache=False)
    c = load_images(root, image_size=12, seed=2, cache=False)
    assert a.files == b.files and a.files != c.files
    assert list(a.y[:12]) != sorted(a.y[:12])  # not in folder order


def test_mixed_formats_sizes_and_modes_load_with_corrupt_files_listed(tmp_path):
    root = tmp_path / "t"
    write_image_folder(root, ["a", "b"], per_class=3, size=16, fmt="png", sizes=[9, 16, 31])
    write_image_folder(root, ["a", "b"], per_class=2, size=16, fmt="jpg", colour=True, seed=5)
    Image.new("RGBA", (12, 12), (255, 0, 0, 128)).save(root / "a" / "rgba.png")
    Image.new("P", (12, 12)).save(root / "b" / "palette.gif")
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "a" / "fake.jpg").write_text("a text file renamed .jpg")
    (root / "b" / "empty.png").write_bytes(b"")
    good = root / "b" / "img_000.png"
    (root / "b" / "truncated.png").write_bytes(good.read_bytes()[:40])
    (root / "b" / "half.jpg").write_bytes((root / "b" / "img_000.jpg").read_bytes()[:300])
    (root / "b" / ".DS_Store").write_bytes(b"\0\1")
    images = load_images(root, image_size=8, color_mode="rgb")
    assert len(images) == 12 and images.x.shape[1:] == (8, 8, 3)
    reasons = {os.path.basename(s.path): s.reason for s in images.skipped}
    assert set(reasons) == {"notes.txt", "fake.jpg", "empty.png", "truncated.png", "half.jpg"}
    assert reasons["notes.txt"] == "not an image file type (.txt)"
    assert reasons["fake.jpg"] == "not an image Pillow can read"
    assert reasons["empty.png"] == "empty file (0 bytes)"
    assert reasons["truncated.png"] == "damaged or truncated image (its header is incomplete)"
    assert reasons["half.jpg"].startswith("truncated or corrupt image")
    assert images.notes[0] == "skipped 5 file(s) that are not readable images"


def test_auto_colour_mode_follows_the_data(tmp_path):
    gray = load_images(write_image_folder(tmp_path / "g", 2, per_class=3), image_size=8)
    colour = load_images(write_image_folder(tmp_path / "c", 2, per_class=3, colour=True), image_size=8)
    forced = load_images(tmp_path / "c", image_size=8, color_mode="grayscale")
    assert (gray.channels, colour.channels, forced.channels) == (1, 3, 1)
    assert "hold colour and were converted to grayscale" in forced.notes[-1]
    assert load_images(tmp_path / "g", image_size=8, channels=3).channels == 3  # a model can dictate it


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    folder = tmp_path / "t" / "a"
    folder.mkdir(parents=True)
    values = np.full((8, 8), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    Image.fromarray(values).save(folder / "wide.png")
    write_image_folder(tmp_path / "t", ["b"], per_class=1, size=8)
    images = load_images(tmp_path / "t", image_size=8)
    mid = images.x[images.y == 0][0]
    assert mid.mean() == pytest.approx(32768 / 257 / 255, abs=0.01)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "training folder not found"),
        (lambda root: root.mkdir(), "training folder has no class sub-folders"),
        (lambda root: (root.mkdir(), (root / "x.png").write_bytes(b"1")), "(1 images lie directly in it)"),
        (lambda root: (write_image_folder(root, 2, per_class=2), (root / "c").mkdir()), "class folder 'c' has no image files"),
        (lambda root: write_image_folder(root, 2, per_class=2), "training folder has 2 class folders (0, 1) but num_classes is 3"),
    ],
)
def test_unusable_folders_are_explained(tmp_path, setup, message):
    root = tmp_path / "training"
    setup(root)
    with pytest.raises(DatasetError) as caught:
        load_images(root, image_size=8, num_classes=3)
    assert message in str(caught.value)
    assert str(root) in str(caught.value)


def test_a_class_with_only_broken_files_is_an_error(tmp_path):
    root = write_image_folder(tmp_path / "t", 2, per_class=2)
    (root / "2").mkdir()
    (root / "2" / "bad.png").write_text("nope")
    with pytest.raises(DatasetError, match=r"class folder '2' has no readable images "
                                           r"\(1 skipped; e.g. bad.png: not an image Pillow can read\)"):
        load_images(root, image_size=8)


def test_test_classes_must_match_the_training_classes(tmp_path):
    root = write_image_folder(tmp_path / "test", ["cat", "dog", "emu"], per_class=2)
    with pytest.raises(DatasetError, match="missing bird; unexpected emu"):
        load_images(root, image_size=8, class_names=["bird", "cat", "dog"], what="test")


def test_repeated_load_is_served_from_cache_and_a_change_invalidates_it(tmp_path, _isolated_cache):
    root = write_image_folder(tmp_path / "t", 2, per_class=4)
    first = load_images(root, image_size=8)
    second = load_images(root, image_size=8)
    assert (first.from_cache, second.from_cache) == (False, True)
    np.testing.assert_array_equal(first.x, second.x)
    assert first.files == second.files
    assert len(list(_isolated_cache.glob("*.npy"))) == 1
    other_size = load_images(root, image_size=6)
    assert not other_size.from_cache
    write_image_folder(root, 2, per_class=5, seed=9)  # adds a file per class, rewrites the others
    changed = load_images(root, image_size=8)
    assert not changed.from_cache and len(changed) == 10
    assert len(list(_isolated_cache.glob("*.npy"))) == 2  # the stale 8x8 entry was replaced


def test_cache_remembers_skipped_files(tmp_path):
    root = write_image_folder(tmp_path / "t", 2, per_class=3)
    (root / "0" / "bad.png").write_text("x")
    load_images(root, image_size=8)
    again = load_images(root, image_size=8)
    assert again.from_cache and [os.path.basename(s.path) for s in again.skipped] == ["bad.png"]


def test_parallel_decoding_matches_serial(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "t", 3, per_class=30, sizes=[10, 14])
    (root / "1" / "bad.jpg").write_text("x")
    serial = load_images(root, image_size=8, cache=False, workers=1)
    monkeypatch.setattr(folders, "PARALLEL_THRESHOLD", 10)
    events = []
    parallel = load_images(root, image_size=8, cache=False, workers=2, emit=events.append)
    np.testing.assert_array_equal(serial.x, parallel.x)
    assert serial.files == parallel.files
    assert [s.path for s in parallel.skipped] == [str(root / "1" / "bad.jpg")]
    progress = [e for e in events if isinstance(e, LoadProgress)]
    assert progress[-1].done == progress[-1].total == 91


def test_stop_during_loading_raises_and_leaves_no_cache_entry(tmp_path, _isolated_cache):
    root = write_image_folder(tmp_path / "t", 2, per_class=300, size=8)
    stop = threading.Event()

    def emit(event):
        if isinstance(event, LoadProgress):
            stop.set()

    with pytest.raises(TaskStopped, match="loading stopped after 256 of 600 images"):
        load_images(root, image_size=8, emit=emit, stop=stop)
    assert list(_isolated_cache.iterdir()) == []


def test_stratified_split_and_subset_keep_every_class(tmp_path):
    images = load_images(write_image_folder(tmp_path / "t", 3, per_class=10), image_size=8)
    train, val = images.split(0.2, seed=0)
    assert len(train) == 24 and len(val) == 6
    assert val.counts() == [2, 2, 2] and train.counts() == [8, 8, 8]
    assert not set(train.files) & set(val.files)
    small = images.subset(9, seed=0)
    assert small.counts() == [3, 3, 3]


def test_split_needs_two_images_per_class(tmp_path):
    root = write_image_folder(tmp_path / "t", 2, per_class=3)
    for path in list((root / "1").iterdir())[1:]:
        path.unlink()
    images = load_images(root, image_size=8)
    with pytest.raises(DatasetError, match="needs at least 2 images in every class; the smallest class has 1"):
        images.split(0.3, seed=0)


def test_listing_skips_hidden_files_and_folders_and_lists_sub_folders(tmp_path):
    root = write_image_folder(tmp_path / "t", 2, per_class=2)
    (root / ".hidden_class").mkdir()
    (root / "0" / "._img_000.png").write_bytes(b"resource fork")
    (root / "0" / "nested.png").mkdir()
    listing = list_location(root)
    assert listing.class_names == ["0", "1"]
    assert [(os.path.basename(s.path), s.reason) for s in listing.skipped] == [
        ("nested.png", "a folder (sub-folders of a class are not read)")
    ]


def test_cache_trims_to_its_size_limit_and_never_touches_foreign_files(tmp_path):
    folder = tmp_path / "c"
    cache = ImageCache(folder, limit_mb=1)
    cache.limit_bytes = 3000
    folder.mkdir()
    (folder / "users_own.npy").write_bytes(b"x" * 5000)  # CNN_TUI_CACHE_DIR may point at a user's folder
    keys = []
    for n in range(4):
        head, key = make_key(tmp_path / f"set{n}", 30, 1, [])
        keys.append(key)
        temp = cache.new_array(key, (1, 30, 30, 1))
        cache.commit(key, head, temp, {"rows": 1})
        os.utime(folder / f"{key}.npy", (n, n))
    kept = sorted(p.name for p in folder.glob("*.npy"))
    assert kept == sorted([f"{keys[2]}.npy", f"{keys[3]}.npy", "users_own.npy"])


def test_a_stopped_parallel_load_without_cache_leaves_no_scratch_file(tmp_path, monkeypatch):
    """With the cache off, worker processes still decode into a scratch file: a stop removes it."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(folders, "PARALLEL_THRESHOLD", 10)
    root = write_image_folder(tmp_path / "t", 2, per_class=200, size=8)
    stop = threading.Event()

    def emit(event):
        if isinstance(event, LoadProgress):
            stop.set()

    with pytest.raises(TaskStopped, match="loading stopped after"):
        load_images(root, image_size=8, cache=False, workers=2, emit=emit, stop=stop)
    assert list(scratch.iterdir()) == []


def test_a_test_folder_missing_a_class_names_the_class(tmp_path):
    root = write_image_folder(tmp_path / "t", ["cat", "dog"], per_class=2, size=8)
    with pytest.raises(DatasetError, match=r"2 class folders \(cat, dog\) but num_classes is 3 \(missing cow\)"):
        load_images(root, image_size=8, num_classes=3, class_names=["cat", "cow", "dog"], what="test")
