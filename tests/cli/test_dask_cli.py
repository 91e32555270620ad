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


class _Listener:
    """Something on a port of 127.0.0.1 that is not a Dask scheduler, in a thread: ``silent`` accepts
    and never answers, ``garbage`` answers bytes that are no Dask frame and closes, ``http`` is a web
    server, ``closed`` is a port nothing listens on."""

    def __init__(self, kind):
        import socket
        import threading

        self.kind, self.server, self.socket, self.held = kind, None, None, []
        if kind == "http":
            from http.server import HTTPServer, SimpleHTTPRequestHandler

            class Quiet(SimpleHTTPRequestHandler):
                def log_message(self, *args):  # its log is the server's stderr, which is this test's
                    pass

            self.server = HTTPServer(("127.0.0.1", 0), Quiet)
            self.port = self.server.server_address[1]
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
            return
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        if kind == "closed":
            self.socket.close()
            return
        self.socket.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            if self.kind == "garbage":
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n" * 4)
                conn.close()
            else:
                self.held.append(conn)  # silent: kept open, never a byte

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.socket is not None:
            self.socket.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("kind", ["silent", "http", "garbage", "closed"])
def test_a_cluster_address_where_no_scheduler_answers_is_one_line_in_seconds(capsys, params_files, tmp_path, kind):
    import time

    data, hyper = params_files(classes=2, per_class=4, size=8, hyper={"num_units": [4, 8]})
    listener = _Listener(kind)
    try:
        started = time.monotonic()
        code, out, err = run_cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper),
                                 "--cluster", f"tcp://127.0.0.1:{listener.port}")
        took = time.monotonic() - started
    finally:
        listener.close()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"tcp://127.0.0.1:{listener.port}" in lines[0]
    assert took < 20, took  # the probe's 5 s and the CLI's start, on a loaded machine (it hung, or took 35 s)
    assert not (tmp_path / "results").exists()  # no `failed` run folder left behind


def test_a_local_cluster_without_cryptography_is_refused_not_plain_tcp(capsys, params_files, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cryptography" else real(name, *a))
    data, hyper = params_files(classes=2, per_class=4, size=8, hyper={"num_units": [4, 8]})
    code, out, err = run_cli(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--cluster", "local:2")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "runs over TLS, which needs the cryptography package" in lines[0] and "pip install" in lines[0]
    assert not (tmp_path / "results").exists()
