"""Labels from a CSV of image paths, a fixed validation folder, and groups (patients) that no split separates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnn_tui.core.data.dataset import load_data, load_images
from cnn_tui.core.data.health import check_data
from cnn_tui.core.data.labels_csv import CsvColumns, read_labels_csv
from cnn_tui.core.data.locations import list_data
from cnn_tui.core.data.split import split_folder
from cnn_tui.core.errors import DatasetError
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import tune
from cnn_tui.core.tuning.strategies import STRATEGIES
from tests.tests_support import write_image_folder

TINY = {"num_filters": 2, "num_units": 4, "kernel_size": 3, "batch_size": 8, "init_rate": 0.02, "epochs": 1}


def png(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def patient_set(root, patients=8, per_patient=3, split=None):
    """images/P<k>_s<i>.png, patient k of class k % 2; labels.csv: path,label,patient[,split]."""
    lines = ["path,label,patient" + (",split" if split else "")]
    for k in range(patients):
        for i in range(per_patient):
            name = f"images/P{k}_s{i}.png"
            png(root / name, 40 + 150 * (k % 2) + i)
            row = f"{name},{'ab'[k % 2]},P{k}"
            lines.append(row + (f",{split(k)}" if split else ""))
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def csv_params(tmp_path, **extra):
    data = {"num_classes": 2, "image_size": 8, "labels_csv": "labels.csv", **extra}
    (tmp_path / "data.json").write_text(json.dumps(data))
    return DataParams.load(tmp_path / "data.json")


def test_a_labels_csv_loads_the_good_rows_and_lists_every_bad_one_with_its_line(tmp_path):
    for name in ("a1.png", "a2.png", "b1.png", "b2.png", "dup.png", "twice.png", "empty.png"):
        png(tmp_path / "images" / name, 200 if name[0] in "bt" else 30)
    png(tmp_path / "outside.png", 30)  # exists, but lies outside the images folder
    rows = [
        "filename;class",  # line 1: ';' separators, a BOM before it, the usual names of other tools
        "a1.png;cat",  # 2
        "a2.png;cat",  # 3
        "b1.png;dog",  # 4
        "sub/../b2.png;dog",  # 5: normalised, still inside
        "missing.png;cat",  # 6: no such file
        "empty.png;",  # 7: empty label
        "dup.png;cat",  # 8: two labels for one path ...
        "dup.png;dog",  # 9: ... both rows left out
        "../outside.png;cat",  # 10: escapes the images folder
        f"{tmp_path / 'outside.png'};cat",  # 11: absolute, outside
        "caf\udce9.png;cat",  # 12: not UTF-8 (a Latin-1 byte)
        "twice.png;dog",  # 13
        "twice.png;dog",  # 14: listed again with the same label: the first is used
    ]
    data = b"\xef\xbb\xbf" + "\n".join(rows).encode("utf-8", "surrogateescape") + b"\n"
    (tmp_path / "images" / "labels.csv").write_bytes(data)
    listing = read_labels_csv(tmp_path / "images" / "labels.csv")
    assert listing.class_names == ["cat", "dog"]
    assert sorted(listing.names) == ["a1.png", "a2.png", "b1.png", "b2.png", "twice.png"]
    lines = {int(s.path.rsplit(":", 1)[1]): s.reason for s in listing.skipped}
    assert sorted(lines) == [6, 7, 8, 10, 11, 12, 14]
    assert "not found" in lines[6] and "empty label" in lines[7] and "two labels" in lines[8]
    assert "line 9" in lines[8] and "outside" in lines[10] and "outside" in lines[11]
    assert "UTF-8" in lines[12] and "line 13" in lines[14]
    images = load_images(tmp_path / "images" / "labels.csv", image_size=8, cache=False)
    assert len(images) == 5 and images.counts() == [2, 3]
    assert {s.path.rsplit(":", 1)[1] for s in images.skipped} == {str(n) for n in lines}
    # each image has its label: the dogs are the bright ones
    assert all((images.x[i].mean() > 0.5) == (images.y[i] == 1) for i in range(len(images)))


def test_a_labels_csv_mistake_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "labels.csv").write_text("name,kind\nx.png,cat\n")
    with pytest.raises(DatasetError, match="no path or filename or image or file column") as caught:
        read_labels_csv(tmp_path / "labels.csv")
    assert "labels.csv" in str(caught.value) and "\n" not in str(caught.value)
    (tmp_path / "labels.csv").write_text("path,label\nx.png,cat\n")
    with pytest.raises(DatasetError, match="no usable rows"):
        read_labels_csv(tmp_path / "labels.csv")
    with pytest.raises(DatasetError, match="no column 'lbl'"):
        read_labels_csv(tmp_path / "labels.csv", columns=CsvColumns(label="lbl"))


def test_a_split_column_is_obeyed_exactly(tmp_path):
    spellings = ["training", "Train", "valid", "dev", "TEST", "testing", "val", "train"]
    patient_set(tmp_path, patients=8, per_patient=2, split=lambda k: spellings[k])
    data = csv_params(tmp_path)
    parts = {"training": {0, 1, 7}, "validation": {2, 3, 6}, "test": {4, 5}}
    for what, patients in parts.items():
        images = load_data(data, what, cache=False)
        found = {f.rsplit("/", 1)[1] for f in images.files}
        assert found == {f"P{k}_s{i}.png" for k in patients for i in range(2)}, what
    assert list_data(data, "test").class_names == ["a", "b"]


def test_an_unknown_split_is_a_reported_row(tmp_path):
    csv = patient_set(tmp_path, patients=4, per_patient=1, split=lambda k: ["train", "test", "holdout", "val"][k])
    listing = read_labels_csv(csv)
    assert [s.path for s in listing.skipped] == ["labels.csv:4"]
    assert "holdout" in listing.skipped[0].reason


def test_without_a_split_column_the_csv_trains_and_test_dir_tests(tmp_path):
    patient_set(tmp_path, patients=4, per_patient=2)
    write_image_folder(tmp_path / "test", ["a", "b"], per_class=2, size=8)
    data = csv_params(tmp_path, test_dir="test")
    assert len(load_data(data, "training", cache=False)) == 8
    assert len(load_data(data, "test", cache=False)) == 4
    assert load_data(data, "validation") is None  # training holds out validation_split
    with pytest.raises(DatasetError, match="no test set"):
        list_data(csv_params(tmp_path), "test")


def straddling(groups_of, *parts) -> set:
    seen = [set(groups_of(p)) for p in parts]
    return set.intersection(*seen)


def test_groups_never_straddle_the_validation_hold_out(tmp_path):
    patient_set(tmp_path, patients=12, per_patient=3)
    images = load_data(csv_params(tmp_path), "training", cache=False)
    assert images.groups is not None and len(set(images.groups)) == 12
    for seed in range(5):
        kept, held = images.split(0.25, seed)
        assert not set(kept.groups) & set(held.groups)
        assert len(kept) + len(held) == 36 and 6 <= len(held) <= 12


def test_groups_never_straddle_split_and_check_finds_planted_leakage(tmp_path):
    csv = patient_set(tmp_path / "set", patients=12, per_patient=3)
    result = split_folder(csv, tmp_path / "out", test=0.25, val=0.2, seed=3)
    assert result.groups == 12
    out = tmp_path / "out"

    def patients(part):
        return {p.name.split("__")[0] for p in (out / part).rglob("*.png")}

    assert not patients("training") & patients("testing")
    assert not patients("training") & patients("validation") and not patients("validation") & patients("testing")
    assert len(patients("training") | patients("validation") | patients("testing")) == 12
    data = DataParams.load(out / "data_params.json")
    assert data.val_dir == "validation" and data.group_pattern
    report = check_data(data)
    assert not [f for f in report.findings if f.kind == "group_leak"]
    # plant one training image of a test patient: check names the group and the files
    victim = next((out / "testing").rglob("*.png"))
    group = victim.name.split("__")[0]
    planted = out / "training" / victim.parent.name / f"{group}__planted.png"
    png(planted, 99)
    leaks = [f for f in check_data(data).findings if f.kind == "group_leak"]
    assert len(leaks) == 1 and f"group {group} " in leaks[0].message
    assert f"{victim.parent.name}/{group}__planted.png" in leaks[0].files


def test_a_group_pattern_groups_folder_files_and_check_says_which_match_none(tmp_path):
    root = tmp_path / "all"
    for k in range(10):
        for i in range(2):
            png(root / "ab"[k % 2] / f"P{k}_slice{i}.png", 30 + 150 * (k % 2) + i)
    png(root / "a" / "stray.png", 31)
    result = split_folder(root, tmp_path / "out", test=0.3, seed=0, group_pattern=r"^(P\d+)_")
    assert result.groups == 11  # ten patients and the stray file on its own

    def patients(part):
        return {p.name.split("_")[0] for p in (tmp_path / "out" / part).rglob("P*.png")}

    assert not patients("training") & patients("testing")
    data = DataParams.load(tmp_path / "out" / "data_params.json")
    assert data.group_pattern == r"^(P\d+)_"
    findings = check_data(data).findings
    assert any(f.kind == "ungrouped" and "stray.png" in f.message for f in findings)


class ScriptedExecutor:
    """Runs no network; records every trial's rows."""

    name = "scripted"

    def __init__(self):
        self.runs = []

    def start(self, x, y, work_dir):
        pass

    def run(self, specs, on_trial, prepare):
        from cnn_tui.core.tuning.trials import Trial

        for spec in specs:
            spec = prepare(spec)
            self.runs.append(spec)
            on_trial(Trial(spec, "finished", spec.epochs, 0.5 + spec.params.get("num_units", 0) / 100, 0.5, 0.01,
                           model_file=f"/nowhere/{spec.key}.keras" if spec.keep_model else None))

    def close(self):
        pass


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_groups_never_straddle_a_fold_of_any_strategy(tmp_path, strategy):
    patient_set(tmp_path, patients=18, per_patient=4)
    images = load_data(csv_params(tmp_path), "training", cache=False)
    hyper = HyperParams.from_dict({**TINY, "num_units": list(range(1, 10)), "epochs": 9})
    executor = ScriptedExecutor()
    result = tune(images, hyper, SearchOptions(strategy=strategy, cv=3, n_iter=4), executor=executor)
    assert result.status == "finished", result.message
    assert executor.runs
    for spec in executor.runs:
        train, held = set(images.groups[spec.train_rows]), set(images.groups[spec.test_rows])
        assert not train & held, (strategy, spec.key)


def test_val_dir_is_used_instead_of_validation_split(tmp_path):
    from cnn_tui.core.models.model import build_model
    from cnn_tui.core.runs import steps
    from cnn_tui.core.runs.folder import Run

    write_image_folder(tmp_path / "training", ["a", "b"], per_class=8, size=8)
    write_image_folder(tmp_path / "validation", ["a", "b"], per_class=3, size=8, seed=1)
    data = DataParams.from_dict({"num_classes": 2, "train_dir": "training", "test_dir": "training", "image_size": 8,
                                 "val_dir": "validation"}, base_dir=tmp_path)
    images = steps.load_training_set(data)
    hyper = HyperParams.from_dict(TINY)
    net = build_model(hyper.first(), image_size=8, channels=1, class_names=images.class_names)
    run = Run.create(tmp_path / "results", "train")
    said = []
    outcome = steps.train_run(net, images, data, hyper, validate=0.2, run=run, emit=said.append)
    assert outcome.status == "finished", outcome.message
    record = json.loads((run.path / "run.json").read_text())["details"]
    assert record["samples"] == 16 and record["validation_samples"] == 6  # all training images, all of val_dir
    assert "val_dir" in record["validation_from"]
    assert any("validation: the 6 images of val_dir" in getattr(e, "text", "") for e in said)
    assert "val_accuracy" in outcome.result.history


def test_training_on_a_csv_validates_on_its_val_rows_and_records_its_groups(tmp_path):
    from cnn_tui.core.models.model import build_model
    from cnn_tui.core.runs import steps
    from cnn_tui.core.runs.folder import Run

    patient_set(tmp_path, patients=8, per_patient=2, split=lambda k: "val" if k in (2, 3) else "train")
    data = csv_params(tmp_path)
    images = steps.load_training_set(data)
    hyper = HyperParams.from_dict(TINY)
    net = build_model(hyper.first(), image_size=8, channels=1, class_names=images.class_names)
    run = Run.create(tmp_path / "results", "train")
    outcome = steps.train_run(net, images, data, hyper, validate=0.5, run=run)
    record = json.loads((run.path / "run.json").read_text())["details"]
    assert (record["samples"], record["validation_samples"], record["groups"]) == (12, 4, 6)
    assert "validation rows" in record["validation_from"]
    assert outcome.status == "finished", outcome.message


def test_data_params_with_a_labels_csv_need_no_folders_and_refuse_a_bad_group_pattern(tmp_path):
    from cnn_tui.core.errors import ParamsError

    data = DataParams.from_dict({"num_classes": 2, "image_size": 8, "labels_csv": "labels.csv"}, base_dir=tmp_path)
    assert data.labels_csv_path == tmp_path / "labels.csv" and data.images_path == tmp_path
    again = DataParams.from_dict(data.to_dict(), base_dir=tmp_path)
    assert again.labels_csv == "labels.csv" and again.train_dir == ""
    with pytest.raises(ParamsError, match="train_dir is empty"):
        DataParams.from_dict({"num_classes": 2, "image_size": 8, "train_dir": "", "test_dir": "t"})
    with pytest.raises(ParamsError, match="group_pattern needs a group"):
        DataParams.from_dict({"num_classes": 2, "image_size": 8, "train_dir": "t", "test_dir": "t",
                              "group_pattern": "P\\d+"})
    with pytest.raises(ParamsError, match="group_pattern is not a regular expression"):
        DataParams.from_dict({"num_classes": 2, "image_size": 8, "train_dir": "t", "test_dir": "t",
                              "group_pattern": "(P"})


def test_check_finds_a_patient_a_csvs_split_column_puts_in_training_and_testing(tmp_path):
    def part(k):
        return "test" if k in (1, 4) else "train"

    patient_set(tmp_path, patients=6, per_patient=2, split=part)
    csv = tmp_path / "labels.csv"
    csv.write_text(csv.read_text().replace("images/P2_s1.png,a,P2,train", "images/P2_s1.png,a,P2,test"))
    findings = check_data(csv_params(tmp_path)).findings
    leaks = [f for f in findings if f.kind == "group_leak"]
    assert len(leaks) == 1 and "group P2 " in leaks[0].message
    assert set(leaks[0].files) == {"images/P2_s0.png", "images/P2_s1.png"}
