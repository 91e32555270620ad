"""Data health: imbalance, duplicates within a set, leakage across sets, odd sizes, colour, unreadable files."""

import shutil

from PIL import Image

from cnn_tui.core.data.health import check_data, check_folder
from cnn_tui.core.params.files import DataParams

from tests_support import write_image_folder


def params(tmp_path):
    return DataParams.from_dict({"num_classes": 3, "train_dir": "training", "test_dir": "testing",
                                 "image_size": 12}, base_dir=tmp_path)


def clean_sets(tmp_path):
    write_image_folder(tmp_path / "training", 3, per_class=8, seed=1)
    write_image_folder(tmp_path / "testing", 3, per_class=4, seed=2)
    return params(tmp_path)


def test_a_clean_pair_of_sets_has_no_findings(tmp_path):
    report = check_data(clean_sets(tmp_path))
    assert report.ok and report.findings == []
    train, test = report.sets
    assert (train.counts, test.counts) == ([8, 8, 8], [4, 4, 4])
    assert train.imbalance == 1.0 and train.usual_size == (12, 12) and train.colour == 0


def test_check_finds_planted_leaks_across_training_and_testing(tmp_path):
    data = clean_sets(tmp_path)
    # a test image copied into training under another name (a renamed copy is still a leak)
    shutil.copy(tmp_path / "testing" / "2" / "img_001.png", tmp_path / "training" / "2" / "renamed.png")
    shutil.copy(tmp_path / "testing" / "0" / "img_003.png", tmp_path / "training" / "1" / "other_class.png")
    report = check_data(data)
    leaks = [f for f in report.findings if f.kind == "leak"]
    assert [f.message for f in leaks] == [
        "leak: test image 0/img_003.png is also in the training set (1/other_class.png)",
        "leak: test image 2/img_001.png is also in the training set (2/renamed.png)",
    ]
    assert {f.kind for f in report.findings} == {"leak"} and not report.ok


def test_check_finds_duplicates_within_a_set(tmp_path):
    root = write_image_folder(tmp_path / "training", ["a", "b"], per_class=5)
    shutil.copy(root / "a" / "img_000.png", root / "a" / "copy.png")
    shutil.copy(root / "a" / "img_000.png", root / "b" / "zz.png")
    report = check_folder(root)
    assert [f.message for f in report.findings] == [
        "training: 3 identical images, labelled differently (a, b): a/copy.png, a/img_000.png, b/zz.png"]


def test_check_finds_a_planted_imbalance_and_hints_class_weight(tmp_path):
    root = write_image_folder(tmp_path / "training", ["cat", "dog", "emu"], per_class=4)
    write_image_folder(tmp_path / "more", ["cat"], per_class=12, seed=9)
    for i, path in enumerate(sorted((tmp_path / "more" / "cat").iterdir())):
        shutil.copy(path, root / "cat" / f"extra_{i}.png")
    report = check_folder(root)
    assert report.sets[0].counts == [16, 4, 4] and report.sets[0].imbalance == 4.0
    assert [f.message for f in report.findings] == [
        "training: classes are imbalanced: 'cat' has 16 images, 'dog' 4 (ratio 4.0); "
        "set class_weight: balanced in the hyper params"]


def test_check_finds_odd_sizes_odd_colour_and_unreadable_files(tmp_path):
    root = write_image_folder(tmp_path / "training", ["a", "b"], per_class=12, size=16)
    Image.new("L", (64, 16), 90).save(root / "a" / "wide.png")
    Image.new("RGB", (16, 16), (200, 10, 10)).save(root / "b" / "red.png")
    (root / "b" / "broken.png").write_bytes((root / "b" / "img_000.png").read_bytes()[:40])
    (root / "b" / "notes.txt").write_text("hello")
    report = check_folder(root)
    messages = sorted(f.message for f in report.findings)
    assert messages == [
        "training: a/wide.png is 64x16, far from the usual 16x16",
        "training: b/broken.png: damaged or truncated image (its header is incomplete)",
        "training: b/notes.txt: not an image file type (.txt)",
        "training: b/red.png is colour; 96% of the images are grayscale",
    ]
    assert report.sets[0].unreadable == 2 and report.sets[0].colour == 1


def test_check_reads_a_csv_of_pixels_and_finds_a_leak_between_csvs(tmp_path):
    header = "label," + ",".join(f"pixel{i}" for i in range(16))
    rows = [f"{k % 2}," + ",".join(str((k * 7 + i) % 256) for i in range(16)) for k in range(10)]
    (tmp_path / "train.csv").write_text("\n".join([header, *rows]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join([header, rows[3], f"0,{','.join(['1'] * 16)}",
                                                  f"1,{','.join(['2'] * 16)}"]) + "\n")
    data = DataParams.from_dict({"num_classes": 2, "train_dir": "train.csv", "test_dir": "test.csv",
                                 "image_size": 4}, base_dir=tmp_path)
    report = check_data(data)
    assert [f.message for f in report.findings] == [
        "leak: test image test.csv:2 is also in the training set (train.csv:5)"]
