"""``cnn-tui tune --cluster``: a local Dask cluster end to end, and bad engine options as one line
before any run folder exists."""

import json
from pathlib import Path

import pytest

from cnn_tui.cli import main

pytest.importorskip("distributed")


def run_cli(capsys, *argv):
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tune_on_a_local_dask_cluster(capsys, params_files):
    data, hyper = params_files(classes=2, per_class=8, size=8, hyper={"epochs": 1, "num_units": [4, 8]})
    code, out, err = run_cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--cv", "2",
                             "--cluster", "local:2", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["status"] == "finished", err
    assert len(payload["folds"]) == 4 and all(f["status"] == "ok" and f["retries"] == 0 for f in payload["folds"])
    assert "Dask: a local cluster of 2 worker(s) on 127.0.0.1, 2 fit(s) at once" in err
    run_dir = Path(payload["run_dir"])
    assert len((run_dir / "tuning_results.csv").read_text().splitlines()) == 5
    assert json.loads((run_dir / "best_hyper_params.json").read_text())["num_units"] == payload["best"]["num_units"]


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--cluster", "local:x"], "--cluster 'local:x': a local cluster is local:N"),
    (["--cluster", "scheduler:8786"], "is not a cluster address (tcp://scheduler:8786?)"),
    (["--cluster", "tls://scheduler:8786", "--cluster-security", "missing.yaml"], "--cluster-security: no such file"),
    (["--cluster-security", "missing.yaml"], "--cluster-security goes with --cluster"),
    (["--cluster", "local:2", "--jobs", "2"], "--jobs is for worker processes on this machine"),
    (["--cluster", "local:2", "--gpus", "0"], "--gpus is for --jobs worker processes"),
])
def test_bad_cluster_options_are_one_line_before_a_run_starts(capsys, params_files, tmp_path, extra, fragment):
    data, hyper = params_files(classes=2, per_class=4, size=8, hyper={"num_units": [4, 8]})
    code, out, err = run_cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper), *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert not (tmp_path / "results").exists()  # checked before the run folder was made
