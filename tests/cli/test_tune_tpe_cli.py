"""cnn-tui tune --strategy tpe through the real CLI: the plan it announces, the run folder's files
(field_importance.csv among them), --json, and the one-line refusal of a search with nothing to learn."""

import csv
import json
from pathlib import Path

import pytest

from cnn_tui.cli import main


def run_cli(capsys, *argv):
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tune_tpe_writes_its_results_and_which_fields_mattered(capsys, params_files):
    data, hyper = params_files(size=8, per_class=10, hyper={"epochs": 1, "num_units": [8, 32],
                                                            "init_rate": [0.001, 0.05]})
    code, out, err = run_cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--cv", "2",
                             "--strategy", "tpe", "--n-iter", "3", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["status"] == "finished" and payload["strategy"] == "tpe"
    assert "tuning (tpe): 3 of 4 combination(s), proposed one after another by Optuna's TPE sampler" in err
    assert "at most 6 fits" in err
    assert len(payload["folds"]) == 6 and len(payload["table"]) == 3
    run_dir = Path(payload["run_dir"])
    assert (run_dir / "tuning_summary.csv").exists() and (run_dir / "best_hyper_params.json").exists()
    if payload["importance"]:  # the three scores differed: which fields mattered, most first
        with open(run_dir / "field_importance.csv") as f:
            rows = list(csv.DictReader(f))
        assert [r["field"] for r in rows] == list(payload["importance"])
        assert set(payload["importance"]) <= {"num_units", "init_rate"}
        assert abs(sum(float(r["importance"]) for r in rows) - 1.0) < 0.01


def test_tune_tpe_prints_the_importance_table(capsys, params_files):
    data, hyper = params_files(size=8, per_class=10, hyper={"epochs": 1, "num_units": [8, 32],
                                                            "init_rate": [0.0001, 0.1]})
    code, out, err = run_cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--cv", "2",
                             "--strategy", "tpe", "--n-iter", "4")
    assert code == 0, err
    assert "TPE search results" in out
    assert "Which fields mattered (fANOVA importance)" in out and "importance" in out


def test_tpe_with_no_tuned_field_is_a_one_line_error(capsys, params_files):
    data, hyper = params_files(hyper={"epochs": 1})
    code, out, err = run_cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--strategy", "tpe")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"error: {hyper}: --strategy tpe learns which values of the tuned fields score best, but no hyper field "
        'holds more than one value: give one a list of values (e.g. "num_units": [32, 64])']


@pytest.mark.slow  # a Dask cluster starts: about a minute alone, several under load
def test_tune_tpe_on_a_local_dask_cluster(capsys, params_files):
    data, hyper = params_files(classes=2, per_class=8, size=8, hyper={"epochs": 1, "num_units": [4, 8],
                                                                      "num_filters": [4, 8]})
    code, out, err = run_cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--cv", "2",
                             "--strategy", "tpe", "--n-iter", "3", "--cluster", "local:2", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["status"] == "finished", err
    assert "Dask: a local cluster of 2 worker(s)" in err
    assert len(payload["folds"]) == 6 and all(f["status"] == "ok" for f in payload["folds"])
    assert len({(f["num_units"], f["num_filters"]) for f in payload["folds"]}) == 3
