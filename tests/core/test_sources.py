"""A CSV of pixels and CIFAR-10 binary batches load like the same images in class folders."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_tui.core.data.cache import ImageCache
from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.data.locations import list_location
from cnn_tui.core.errors import DatasetError
from cnn_tui.core.params.files import DataParams
from cnn_tui.core.runs.steps import load_test_set, load_training_set

from tests_support import class_pattern

LABELS = ["0", "1", "2"]


def gray_images(per_class=5, side=10, seed=0):
    rng = np.random.default_rng(seed)
    return [(k, class_pattern(k, side, rng)) for _ in range(per_class) for k in range(len(LABELS))]


def write_csv(path: Path, images, header="pixel", extra_lines=()):
    side = images[0][1].shape[0]
    lines = []
    if header == "pixel":
        lines.append(",".join(["label", *(f"pixel{i}" for i in range(side * side))]))
    elif header == "1x1":
        lines.append(",".join(["label", *(f"{r}x{c}" for r in range(1, side + 1) for c in range(1, side + 1))]))
    for label, pixels in images:
        lines.append(",".join([LABELS[label], *map(str, pixels.ravel().tolist())]))
    lines[1:1] = list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_folder(root: Path, images, mode="L"):
    for i, (label, pixels) in enumerate(images):
        folder = root / LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode=mode).save(folder / f"img_{i:03d}.png")
    return root


def sorted_pixels(images):
    """Pixels ordered by content, so two loads compare whatever their file order."""
    flat = images.x.reshape(len(images), -1)
    keys = np.lexsort(flat.T[::-1])
    return flat[keys], images.y[keys]


@pytest.mark.parametrize("header", ["pixel", "1x1", None])
def test_a_csv_of_pixels_loads_to_the_same_arrays_as_the_folder(tmp_path, header):
    images = gray_images()
    csv = write_csv(tmp_path / "train.csv", images, header=header)
    folder = write_folder(tmp_path / "folder", images)
    for size, mode in ((10, "auto"), (7, "auto"), (12, "rgb")):
        from_csv = load_images(csv, image_size=size, color_mode=mode, num_classes=3)
        from_folder = load_images(folder, image_size=size, color_mode=mode, num_classes=3)
        assert from_csv.class_names == from_folder.class_names == LABELS
        assert from_csv.x.shape == from_folder.x.shape == (15, size, size, 1 if mode == "auto" else 3)
        a, ya = sorted_pixels(from_csv)
        b, yb = sorted_pixels(from_folder)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    first = 2 if header else 1
    lines = sorted(int(f.rsplit(":", 1)[1]) for f in from_csv.files)
    assert lines == list(range(first, first + 15)) and from_csv.files[0].startswith(f"{csv}:")


def test_a_csv_load_is_served_from_the_cache_the_second_time(tmp_path, _isolated_cache):
    csv = write_csv(tmp_path / "train.csv", gray_images())
    first = load_images(csv, image_size=8)
    again = load_images(csv, image_size=8)
    assert (first.from_cache, again.from_cache) == (False, True)
    np.testing.assert_array_equal(first.x, again.x)
    assert len(list(_isolated_cache.glob("*.npy"))) == 1


def test_a_malformed_csv_row_is_skipped_with_its_line_number(tmp_path):
    images = gray_images(per_class=3)
    good = ",".join(["1", *["7"] * 100])
    bad_rows = [
        ",".join(["2", *["5"] * 99]),  # line 2: one pixel short
        ",".join(["0", "x", *["5"] * 99]),  # line 3: not a number
        ",".join(["1", "300", *["5"] * 99]),  # line 4: out of range
        ",".join(["", *["5"] * 100]),  # line 5: no label
        good,  # line 6: fine
    ]
    csv = write_csv(tmp_path / "t.csv", images, extra_lines=bad_rows)
    loaded = load_images(csv, image_size=10, num_classes=3)
    assert len(loaded) == 10
    reasons = {s.path: s.reason for s in loaded.skipped}
    assert reasons == {
        f"{csv}:2": "100 values, expected 101",
        f"{csv}:3": "pixel 1 is not a number ('x')",
        f"{csv}:4": "pixel 1 is 300, outside 0-255",
        f"{csv}:5": "no label",
    }
    assert loaded.notes[0] == "skipped 4 row(s) that cannot be used"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "training CSV file is empty"),
        ("name,pixel0,pixel1,pixel2,pixel3\n1,0,0,0,0\n",
         "line 1: the header has no 'label' column (it starts name, pixel0, pixel1, pixel2, ... 1 more)"),
        ("label,p0,p1,p2\n1,0,0,0\n", "line 1: 3 pixel columns do not make a square grayscale image (a square of 1x1 has 1)"),
        ("label,p0,p1,p2,p3\n", "training CSV file has no image rows after line 1"),
    ],
)
def test_a_malformed_csv_file_is_one_line_naming_the_file_and_place(tmp_path, content, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    with pytest.raises(DatasetError) as caught:
        load_images(csv, image_size=8)
    assert str(caught.value) == f"{csv}: {message}"


def test_a_csv_with_a_byte_order_mark_crlf_ends_and_blank_lines_loads_as_the_plain_one(tmp_path):
    """Rows are read again where the listing found them: every way a line may begin and end counts."""
    images = gray_images()
    plain = write_csv(tmp_path / "plain.csv", images)
    lines = plain.read_text().splitlines()
    windows = tmp_path / "excel.csv"
    windows.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(line.encode() for line in [lines[0], "", *lines[1:], ""]))
    for header in (True, False):
        if not header:  # a file without a header begins with its first row (and the mark)
            plain.write_text("\n".join(lines[1:]) + "\n")
            windows.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines[1:]).encode())
        a, b = (load_images(p, image_size=10, num_classes=3, cache=False) for p in (plain, windows))
        assert a.class_names == b.class_names == LABELS and not a.skipped and not b.skipped
        np.testing.assert_array_equal(sorted_pixels(a)[0], sorted_pixels(b)[0])


def test_a_csv_changed_between_listing_and_decoding_skips_what_moved(tmp_path):
    csv = write_csv(tmp_path / "t.csv", gray_images(per_class=2))
    listing = list_location(csv)
    csv.write_text(csv.read_text()[:-200])  # the last row cut short
    decoded = listing.decode((len(listing.files), 10, 10, 1), temp=None, emit=lambda e: None, stop=None)
    assert [reason for _, reason in decoded.failures] == ["the row changed after the file was listed"]


def test_a_csv_with_the_wrong_number_of_classes_says_so(tmp_path):
    csv = write_csv(tmp_path / "t.csv", gray_images())
    with pytest.raises(DatasetError, match=r"training set has 3 classes \(0, 1, 2\) but num_classes is 10"):
        list_location(csv, num_classes=10)


# ---------------------------------------------------------------- CIFAR


def colour_images(per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(k, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(per_class) for k in range(3)]


def write_batches(folder: Path, images, names=("cat", "dog", "emu"), batches=2, test=None):
    folder.mkdir(parents=True, exist_ok=True)
    if names is not None:
        (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")

    def records(part):
        return b"".join(bytes([label]) + pixels.transpose(2, 0, 1).tobytes() for label, pixels in part)

    for b in range(batches):
        (folder / f"data_batch_{b + 1}.bin").write_bytes(records(images[b::batches]))
    if test is not None:
        (folder / "test_batch.bin").write_bytes(records(test))
    return folder


def test_cifar_batches_load_to_the_same_arrays_as_the_folder(tmp_path):
    images, test = colour_images(), colour_images(per_class=2, seed=1)
    batches = write_batches(tmp_path / "cifar", images, test=test)
    folder = tmp_path / "folder"
    for i, (label, pixels) in enumerate(images):
        (folder / ["cat", "dog", "emu"][label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="RGB").save(folder / ["cat", "dog", "emu"][label] / f"{i}.png")
    for size, mode in ((32, "auto"), (16, "auto"), (32, "grayscale")):
        a_set = load_images(batches, image_size=size, color_mode=mode)
        b_set = load_images(folder, image_size=size, color_mode=mode)
        assert a_set.class_names == b_set.class_names == ["cat", "dog", "emu"]
        assert a_set.channels == (1 if mode == "grayscale" else 3)
        a, ya = sorted_pixels(a_set)
        b, yb = sorted_pixels(b_set)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    gray = load_images(batches, image_size=8, color_mode="grayscale")
    assert "12 of 12 images hold colour and were converted to grayscale" in gray.notes[-1]
    # The same folder is a training set (data_batch_*) and a test set (test_batch.bin), cached apart.
    tested = load_images(batches, image_size=32, what="test", class_names=["cat", "dog", "emu"])
    assert len(tested) == 6 and tested.root == batches / "test_batch.bin"
    trained = load_images(batches, image_size=32)
    assert trained.from_cache and len(trained) == 12 and trained.root == batches / "data_batch_*.bin"
    one = load_images(batches / "data_batch_2.bin", image_size=32)
    assert len(one) == 6 and all(f.startswith(str(batches / "data_batch_2.bin:")) for f in one.files)


def test_cifar_without_meta_names_classes_by_label(tmp_path):
    batches = write_batches(tmp_path / "c", colour_images(per_class=2), names=None)
    assert list_location(batches).class_names == ["0", "1", "2"]


def test_a_cut_short_batch_is_one_line_naming_the_record(tmp_path):
    batches = write_batches(tmp_path / "c", colour_images(per_class=2))
    batch = batches / "data_batch_1.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(DatasetError) as caught:
        load_images(batches, image_size=8)
    assert str(caught.value) == (f"{batch}: 9119 bytes are not whole 3073-byte records (1 label byte + 3,072 pixel "
                                 "bytes): record 3 at byte 6146 is cut short after 2973 bytes")


def test_a_record_with_an_unknown_label_is_skipped_with_its_place(tmp_path):
    images = colour_images(per_class=2)
    images[3] = (7, images[3][1])  # batch 2 (odd images), record 2
    batches = write_batches(tmp_path / "c", images)
    loaded = load_images(batches, image_size=8)
    assert len(loaded) == 5
    assert [(s.path, s.reason) for s in loaded.skipped] == [
        (f"{batches / 'data_batch_2.bin'}:2", "label 7, but batches.meta.txt names 3 classes")]
    assert loaded.notes[0] == "skipped 1 record(s) that cannot be used"


def test_a_folder_with_only_a_test_batch_is_no_training_set(tmp_path):
    folder = tmp_path / "c"
    write_batches(folder, [], batches=0, test=colour_images(per_class=1))
    with pytest.raises(DatasetError, match="holds CIFAR batches but no data_batch_"):
        list_location(folder)


def test_data_params_may_name_a_csv_and_a_batch_folder(tmp_path):
    write_csv(tmp_path / "train.csv", gray_images())
    write_batches(tmp_path / "cifar", colour_images(per_class=2), test=colour_images(per_class=1))
    csv = DataParams.from_dict({"num_classes": 3, "train_dir": "train.csv", "test_dir": "train.csv",
                                "image_size": 10}, base_dir=tmp_path)
    cifar = DataParams.from_dict({"num_classes": 3, "train_dir": "cifar", "test_dir": "cifar",
                                  "image_size": 8}, base_dir=tmp_path)
    assert len(load_training_set(csv)) == 15
    assert (len(load_training_set(cifar)), len(load_test_set(cifar))) == (6, 3)


def test_no_cache_decodes_into_memory(tmp_path):
    csv = write_csv(tmp_path / "t.csv", gray_images())
    loaded = load_images(csv, image_size=10, cache=False)
    assert not loaded.from_cache and isinstance(loaded.x, np.ndarray) and len(loaded) == 15
    assert ImageCache.default() is not None
