"""The Dask executor (``--cluster``): a local cluster runs the same trials as in-process, a dead
worker's fit is retried then failed, a stop cancels what has not started, hyperband's models
travel to and from the workers, and bad ``--cluster`` values are one line."""

from __future__ import annotations

import threading

import pytest

from cnn_tui.core.errors import ParamsError, UserError
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import tune
from tests.tests_support import check_hyperband_of_three, class_ordered_set, in_run_processes

pytest.importorskip("distributed")

from cnn_tui.core.tuning.dask_executor import check_cluster, load_security  # noqa: E402

TINY = {"num_filters": 2, "num_units": 4, "kernel_size": 3, "batch_size": 8, "init_rate": 0.02, "epochs": 1}


def trials(result):
    return sorted((r["num_units"], r["fold"], r["split"], r["status"], r["epochs_done"]) for r in result.rows)


def test_a_local_cluster_runs_the_same_trials_as_one_process(tmp_path):
    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4]})
    here = tune(images, hyper, SearchOptions(cv=2))
    there = tune(images, hyper, SearchOptions(cv=2, cluster="local:2"), work_dir=tmp_path)
    assert there.status == "finished", there.message
    assert trials(there) == trials(here) and len(there.rows) == 4
    assert all(r["retries"] == 0 for r in there.rows)
    # the same fits on the same rows give the same scores (seeded), wherever they ran
    assert sorted(r["accuracy"] for r in there.rows) == pytest.approx(sorted(r["accuracy"] for r in here.rows))


def test_a_fit_whose_dask_worker_dies_runs_again_then_counts_as_failed(monkeypatch, tmp_path):
    # the worker processes Dask starts (and restarts) inherit the environment: each runs the hook
    in_run_processes(monkeypatch, "die_in_fits_in_child", CNN_TUI_TEST_DIE_UNITS="4")
    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4, 6]})
    result = tune(images, hyper, SearchOptions(cv=2, cluster="local:2"), work_dir=tmp_path)
    assert result.status == "finished", result.message
    died = [r for r in result.rows if r["num_units"] == 4]
    assert len(died) == 2 and all(r["status"] == "failed" and r["retries"] == 1 for r in died), died
    assert all("Dask worker died 2 time(s)" in r["reason"] for r in died)
    # the others ran (when both workers holding the images died at once, the images were sent again)
    assert sorted((r["num_units"], r["status"]) for r in result.rows if r["num_units"] != 4) == \
        [(2, "ok"), (2, "ok"), (6, "ok"), (6, "ok")], result.rows
    assert "2 fit(s) failed" in result.message


def test_a_stopped_search_on_a_cluster_cancels_the_fits_not_started(monkeypatch, tmp_path):
    from cnn_tui.core.events import FoldEnd
    from cnn_tui.core.tuning.dask_executor import DaskExecutor

    # every trial handed to Dask at once, so that most wait in its queue when the search stops
    monkeypatch.setattr(DaskExecutor, "_refresh_slots", lambda self, force=False: setattr(self, "slots", 8))
    ended_as = []
    real_ended = DaskExecutor._ended

    def ended(self, future, attempt, *, stopping):
        ended_as.append(future.status)
        return real_ended(self, future, attempt, stopping=stopping)

    monkeypatch.setattr(DaskExecutor, "_ended", ended)
    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4, 6, 8], "epochs": 3, "batch_size": 2})
    stop = threading.Event()
    folds = []

    def emit(event):
        if isinstance(event, FoldEnd):
            folds.append(event.row)
            stop.set()  # after the first fit: the worker holds one or two more (one running), the rest wait in the queue

    result = tune(images, hyper, SearchOptions(cv=2, cluster="local:1"), stop=stop, work_dir=tmp_path, emit=emit)
    assert result.status == "stopped"
    assert len(folds) == 1 and [row["status"] for row in result.rows] == ["ok"]  # a fit the stop ended is no result
    # the fits on the worker ended as stopped (within a batch), the queued ones never ran
    assert ended_as.count("finished") <= 3 and ended_as.count("cancelled") >= 5, ended_as


def test_hyperband_on_a_cluster_goes_on_from_the_models_the_workers_sent_back(tmp_path):
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4, 6], "epochs": 3})
    result = tune(class_ordered_set(classes=2, per_class=6, size=8), hyper,
                  SearchOptions(strategy="hyperband", cv=2, cluster="local:2"), work_dir=tmp_path)
    check_hyperband_of_three(result, tmp_path / "models")  # the states written here, from the workers' bytes


@pytest.mark.parametrize(("value", "fragment"), [
    ("local", "a local cluster is local:N"),
    ("local:0", "1 to 256 workers"),
    ("local:two", "a local cluster is local:N"),
    ("10.0.0.5:8786", "is not a cluster address (tcp://10.0.0.5:8786?)"),
    ("http://host:8786", "is not a cluster address"),
    ("tcp://host:99999", "the port must be 1 to 65535"),
    ("tcp://", "is not a cluster address"),
])
def test_a_bad_cluster_value_is_one_line(value, fragment):
    with pytest.raises(ParamsError) as error:
        check_cluster(value)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_cluster_addresses_parse_and_warn_when_unencrypted_off_this_machine():
    assert check_cluster("local:3").workers == 3 and check_cluster("local:3").local
    remote = check_cluster("tcp://gpu1.example.org")
    assert remote.address == "tcp://gpu1.example.org:8786" and not remote.local
    assert "not encrypted" in remote.warning()
    assert check_cluster("tcp://127.0.0.1:8786").warning() is None
    assert check_cluster("tcp://[::1]:8786").warning() is None


def test_the_security_file_is_checked_before_anything_connects(monkeypatch, tmp_path):
    monkeypatch.delenv("DASK_DISTRIBUTED__COMM__TLS__CA_FILE", raising=False)
    with pytest.raises(ParamsError, match="TLS needs certificates: --cluster-security FILE"):
        check_cluster("tls://host:8786")  # nor does Dask's configuration name any
    with pytest.raises(ParamsError, match="no such file"):
        check_cluster("tls://host:8786", str(tmp_path / "missing.yaml"))
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("-")
    good = tmp_path / "sec.yaml"
    good.write_text("tls-ca-file: ca.pem\ntls_client_cert: client.pem\ntls-client-key: client.key\n"
                    "require-encryption: true\n")
    target = check_cluster("tls://host:8786", str(good))
    assert target.warning() is None
    assert target.security == {"tls_ca_file": str(tmp_path / "ca.pem"), "tls_client_cert": str(tmp_path / "client.pem"),
                               "tls_client_key": str(tmp_path / "client.key"), "require_encryption": True}
    with pytest.raises(ParamsError, match="requires encryption; the address must be tls://"):
        check_cluster("tcp://host:8786", str(good))
    bad = tmp_path / "bad.yaml"
    for text, fragment in [("tls-ca-file: nowhere.pem\n", "tls-ca-file nowhere.pem: no such file"),
                           ("tls-ca-cert: ca.pem\n", "unknown key 'tls-ca-cert'"),
                           ("[1, 2]\n", "expected a mapping"),
                           ("tls-ca-file: [\n", "not YAML or JSON"),
                           ("tls-ca-file: ca.pem\ntls-client-cert: client.pem\n", "go together"),
                           ("require-encryption: maybe\n", "must be true or false")]:
        bad.write_text(text)
        with pytest.raises(ParamsError) as error:
            load_security(str(bad))
        assert fragment in str(error.value) and "\n" not in str(error.value), text
    with pytest.raises(ParamsError, match="is for a remote scheduler"):
        check_cluster("local:2", str(good))


def test_without_dask_the_error_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install 'cnn-tui\[dask\]'"):
        check_cluster("local:2")


def test_an_unreachable_scheduler_is_one_line(monkeypatch, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4]})
    monkeypatch.setattr("cnn_tui.core.tuning.dask_executor.CONNECT_TIMEOUT", 2.0)
    with pytest.raises(UserError) as error:
        tune(images, hyper, SearchOptions(cv=2, cluster=f"tcp://127.0.0.1:{port}"), work_dir=tmp_path)
    assert f"cannot reach the Dask scheduler tcp://127.0.0.1:{port}" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_search_on_an_existing_tls_scheduler_with_gpu_workers(tmp_path):
    """The remote path: a scheduler this search did not start (its default settings: Dask's memory
    manager on, its own retries), reached over TLS with a --cluster-security file; its worker
    declares one GPU, so one fit runs at a time although the worker has two threads."""
    pytest.importorskip("cryptography")
    import logging

    from distributed import LocalCluster
    from distributed.security import Security

    from cnn_tui.core.events import Notice

    secret = Security.temporary()  # the PEM texts, written as the files a user would have
    for name, text in [("ca.pem", secret.tls_ca_file), ("client.pem", secret.tls_client_cert),
                       ("client.key", secret.tls_client_key)]:
        (tmp_path / name).write_text(text)
    (tmp_path / "sec.yaml").write_text("tls-ca-file: ca.pem\ntls-client-cert: client.pem\ntls-client-key: client.key\n"
                                       "require-encryption: true\ntls-min-version: 1.2\n")
    notices = []
    with LocalCluster(n_workers=1, threads_per_worker=2, resources={"GPU": 1}, host="127.0.0.1", protocol="tls://",
                      security=secret, dashboard_address=None, silence_logs=logging.CRITICAL) as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        images = class_ordered_set(classes=2, per_class=6, size=8)
        hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4]})
        options = SearchOptions(cv=2, cluster=cluster.scheduler_address, security=str(tmp_path / "sec.yaml"))
        result = tune(images, hyper, options, work_dir=tmp_path / "work",
                      emit=lambda e: isinstance(e, Notice) and notices.append(e.text))
    assert result.status == "finished", result.message
    assert sorted((r["num_units"], r["status"]) for r in result.rows) == [(2, "ok"), (2, "ok"), (4, "ok"), (4, "ok")]
    assert f"Dask: {cluster.scheduler_address}, 1 fit(s) at once (one per GPU)" in notices
    assert not any("not encrypted" in text for text in notices)


class _Done:
    """A finished Dask future, as ``DaskExecutor._ended`` reads it."""

    def __init__(self, status, exception=None):
        self.status, self.error = status, exception

    def exception(self):
        return self.error


def test_a_remote_schedulers_own_retries_count_and_ours_come_only_after(tmp_path):
    from distributed import KilledWorker

    from cnn_tui.core.tuning.dask_executor import DaskExecutor, _Attempt
    from cnn_tui.core.tuning.strategies import SearchSpace, grid_rounds

    images = class_ordered_set(classes=2, per_class=6, size=8)
    spec = next(grid_rounds(SearchSpace([{}], HyperParams.from_dict(TINY).first().as_dict(), images.y, 2, 0)))[0]
    executor = DaskExecutor("tcp://127.0.0.1:8786", stop=threading.Event())
    executor.images_future = executor.labels_future = _Done("finished")
    starts = {"count": None}  # the scheduler's log of the trial's starts (None: it could not say)
    executor._starts = lambda key: starts["count"]

    class Worker:
        address = "tcp://10.0.0.7:40000"

    # the scheduler already ran it 4 times (allowed-failures 3): failed, retried 3x, not sent again
    attempt = _Attempt(spec)
    trial = executor._ended(_Done("error", KilledWorker("k", Worker(), 3)), attempt, stopping=False)
    assert trial.status == "failed" and trial.retries == 3
    assert trial.reason == "its Dask worker died 4 time(s) (last tcp://10.0.0.7:40000)"
    # a scheduler that retries nothing (allowed-failures 0): once more here, then failed
    attempt = _Attempt(spec)
    assert executor._ended(_Done("error", KilledWorker("k", Worker(), 0)), attempt, stopping=False) is None
    trial = executor._ended(_Done("error", KilledWorker("k", Worker(), 0)), attempt, stopping=False)
    assert trial.status == "failed" and trial.retries == 1
    # with the starts known: a death while it only waited on the worker is not its own
    attempt = _Attempt(spec, number=1)
    starts["count"] = 0
    assert executor._ended(_Done("error", KilledWorker("k", Worker(), 0)), attempt, stopping=False) is None
    starts["count"] = 1
    assert executor._ended(_Done("error", KilledWorker("k", Worker(), 0)), attempt, stopping=False) is None
    starts["count"] = 2
    trial = executor._ended(_Done("error", KilledWorker("k", Worker(), 0)), attempt, stopping=False)
    assert trial.status == "failed" and trial.retries == 1 and "died 2 time(s)" in trial.reason
    starts["count"] = None
    # a stop while its worker died: not a result, not retried
    trial = executor._ended(_Done("error", KilledWorker("k", Worker(), 0)), _Attempt(spec), stopping=True)
    assert trial.status == "stopped"
    # anything else (a worker without cnn-tui, say): failed with the reason, the search goes on
    trial = executor._ended(_Done("error", ModuleNotFoundError("No module named 'cnn_tui'")), _Attempt(spec),
                            stopping=False)
    assert trial.status == "failed" and "ModuleNotFoundError: No module named 'cnn_tui'" in trial.reason


def test_a_fit_the_scheduler_reran_by_itself_counts_as_retried(monkeypatch, tmp_path):
    """On a scheduler with Dask's default settings (it reruns a dead worker's task up to 3 times),
    the rerun is Dask's, not ours: the fit still says it was retried."""
    import logging

    from distributed import LocalCluster

    in_run_processes(monkeypatch, "die_once_in_fits_in_child", CNN_TUI_TEST_DIE_ONCE_FILE=str(tmp_path / "died"))
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster:
        images = class_ordered_set(classes=2, per_class=6, size=8)
        hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4]})
        result = tune(images, hyper, SearchOptions(cv=2, cluster=cluster.scheduler_address), work_dir=tmp_path / "work")
    assert result.status == "finished", result.message
    assert (tmp_path / "died").exists()
    assert [r["status"] for r in result.rows] == ["ok"] * 4
    assert sorted(r["retries"] for r in result.rows) == [0, 0, 0, 1]


def test_a_stop_ends_the_wait_for_a_scheduler_that_does_not_answer():
    """SIGTERM sets the run's stop event: a run waiting on a silent port ends stopped, at once."""
    import socket
    import time

    from cnn_tui.core.errors import TaskStopped
    from cnn_tui.core.tuning.dask_executor import reach_scheduler

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        target = check_cluster(f"tcp://127.0.0.1:{silent.getsockname()[1]}")
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(TaskStopped):
            reach_scheduler(target, timeout=60, stop=stop)
        assert time.monotonic() - started < 3
        with pytest.raises(UserError, match="does not answer as a Dask scheduler within 1 s"):
            reach_scheduler(target, timeout=1)


def test_a_real_scheduler_answers_the_probe():
    import logging

    from distributed import LocalCluster

    from cnn_tui.core.tuning.dask_executor import reach_scheduler

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, silence_logs=logging.CRITICAL) as cluster:
        reach_scheduler(check_cluster(cluster.scheduler_address))  # no error


def test_a_local_cluster_needs_cryptography(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cryptography" else real(name, *a))
    with pytest.raises(UserError, match="needs the cryptography package"):
        check_cluster("local:2")
