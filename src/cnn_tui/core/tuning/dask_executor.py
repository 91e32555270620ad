"""A search's trials as Dask tasks (``--cluster``): on an existing scheduler
(``tcp://HOST:8786``, ``tls://HOST:8786``) or on a local cluster started for the search
(``local:N``: N worker processes, one thread each, on 127.0.0.1 only, over TLS with a
certificate made for it when ``cryptography`` is installed).

Dask schedules; this module only decides what to hand it and keeps the same promises as
``executors.ProcessExecutor``:

- The images go to the cluster once: ``scatter`` of the uint8 pixels (a quarter of the
  float32 array) and the labels, copied to every worker at the start; each trial task takes
  those futures, and a worker wraps the pixels in ``feeding.PixelView`` (scaled per batch).
- At most as many trials are submitted as the cluster has fit slots (worker threads, or
  GPUs when workers declare ``--resources GPU=1``): each is ``prepare``d when it is handed
  over, so pruning compares with every fit that ended before, and trials come back, in this
  thread, as they end.
- Stop: a ``distributed.Event`` the running fits poll (at most every half second); trials not
  yet running are cancelled.
- A worker that dies: the trial runs once more (Dask's ``KilledWorker``), then is recorded as
  failed with the reason; the search goes on. On the local cluster the scheduler retries
  nothing itself (``allowed-failures`` 0), so "once more" is ours; a remote scheduler's own
  ``distributed.scheduler.allowed-failures`` retries come first and count as retries (each
  start of a trial is logged on the scheduler as an event, so a rerun Dask made by itself
  shows). If every worker holding the images died, they are scattered again.
- Models a promoted hyperband trial goes on from travel as bytes: a worker fits in a temp
  folder of its own and returns the saved model, written here under ``<work>/models``.

A Dask scheduler runs whatever code a client sends it, and so do its workers: a scheduler port
must never be reachable unencrypted by anyone but its owner (README, "Tuning across several
servers"). ``check_search`` (``run_control.prepare``) validates ``--cluster`` and ``--cluster-security``
before a run folder exists; it contacts nothing and imports no more of Dask than its configuration.
``reach_scheduler`` (also before the run folder) then asks the address, within ``PROBE_TIMEOUT``,
whether a Dask scheduler answers there: a closed port, a silent listener or a web server is one
line, not a hang (Dask's handshake waits for an answer without a deadline) nor a ``failed`` run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import logging
import math
import random
import re
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import cnn_tui
from cnn_tui.core.data.feeding import PixelView
from cnn_tui.core.data.pool import interrupts_held
from cnn_tui.core.errors import ParamsError, TaskStopped, UserError
from cnn_tui.core.events import Emit, Notice, ignore
from cnn_tui.core.tuning import fit_pool
from cnn_tui.core.tuning.trials import Trial, TrialSpec, run_trial

INSTALL = "pip install 'cnn-tui[dask]'"
DEFAULT_PORT = 8786
MAX_LOCAL_WORKERS = 256
CONNECT_TIMEOUT = 30.0  # seconds to reach a scheduler
PROBE_TIMEOUT = 5.0  # seconds a scheduler may take to answer who it is (reach_scheduler)
WORKERS_TIMEOUT = 120.0  # seconds a scheduler may take to have a first worker
STOP_POLL = 0.5  # a running fit asks the scheduler whether the search stopped at most this often
STOP_GRACE = 120.0  # after a stop, how long running fits may take to end (within a batch) before they are cancelled
WAIT = 0.2  # the dispatch loop's tick: how soon a stop is seen here
RETRIES = 1  # as executors.RETRIES: a trial whose worker died runs once more
LOST_DATA_RETRIES = 3  # re-sends of the images after every worker holding them died
MAX_SUBMISSIONS = 6  # a trial that keeps being lost with workers that die before it starts is failed after this

SECURITY_KEYS = {  # --cluster-security file key -> distributed.security.Security argument
    "tls-ca-file": "tls_ca_file",
    "tls-client-cert": "tls_client_cert",
    "tls-client-key": "tls_client_key",
    "tls-ciphers": "tls_ciphers",
    "tls-min-version": "tls_min_version",
    "tls-max-version": "tls_max_version",
    "require-encryption": "require_encryption",
}
FILE_KEYS = ("tls-ca-file", "tls-client-cert", "tls-client-key")


# ---------------------------------------------------------------- checking --cluster


@dataclass(frozen=True)
class ClusterTarget:
    """A parsed ``--cluster``: a scheduler's address, or a local cluster of ``workers``."""

    text: str
    address: str | None = None  # tcp://host:port or tls://host:port
    workers: int = 0  # local:N
    security: dict[str, Any] | None = None  # Security(**security), from --cluster-security
    security_file: str | None = None

    @property
    def local(self) -> bool:
        return self.address is None

    @property
    def host(self) -> str:
        return _split(self.address or "")[1]

    def warning(self) -> str | None:
        """What the user must hear about this connection before trusting it (None: nothing)."""
        if self.local or self.address.startswith("tls://") or _is_loopback(self.host):
            return None
        return (f"the connection to the Dask scheduler {self.address} is not encrypted and anyone who can reach its "
                "port can run code on its workers; use tls:// with --cluster-security (README: Tuning across "
                "several servers)")


_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d+))?$")


def _split(address: str) -> tuple[str, str, int]:
    match = _ADDRESS.match(address)
    if not match:
        return "", "", 0
    return match[1], match[2], int(match[3] or DEFAULT_PORT)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_cluster(text: str, security: str | None = None) -> ClusterTarget:
    """``--cluster`` and ``--cluster-security`` parsed and checked, or one ``ParamsError`` line;
    a ``UserError`` naming the extra when Dask is not installed. Cheap: reads the security file
    (and that its certificate files exist) and, for tls:// without it, Dask's configuration; contacts nothing."""
    value = (text or "").strip()
    usage = "give tcp://HOST:8786 or tls://HOST:8786 (a running Dask scheduler) or local:N (N workers here)"
    if value.lower().startswith("local"):
        count = value[len("local"):]
        if not count.startswith(":") or not count[1:].strip().isdigit():
            raise ParamsError(f"--cluster {text!r}: a local cluster is local:N, N the number of workers (local:2)")
        workers = int(count[1:])
        if not 1 <= workers <= MAX_LOCAL_WORKERS:
            raise ParamsError(f"--cluster {text!r}: a local cluster has 1 to {MAX_LOCAL_WORKERS} workers")
        if security:
            raise ParamsError("--cluster-security is for a remote scheduler (tcp:// or tls://); a local cluster "
                              "listens on 127.0.0.1 only")
        _require_dask()
        if importlib.util.find_spec("cryptography") is None:  # no TLS: any user of this machine could connect
            raise UserError(f"--cluster {text}: a local cluster runs over TLS, which needs the cryptography "
                            f"package: {INSTALL} (or pip install cryptography)")
        return ClusterTarget(value, workers=workers)
    scheme, host, port = _split(value)
    if not scheme:
        hint = f" (tcp://{value}?)" if re.match(r"^[A-Za-z0-9._-]+:\d+$", value) else ""
        raise ParamsError(f"--cluster {text!r} is not a cluster address{hint}: {usage}")
    if not 1 <= port <= 65535:
        raise ParamsError(f"--cluster {text!r}: the port must be 1 to 65535")
    address = f"{scheme}://{host}:{port}"
    settings = load_security(security) if security else None
    if settings and settings.get("require_encryption") and scheme == "tcp":
        raise ParamsError(f"--cluster {text!r}: the security file requires encryption; the address must be tls://")
    if scheme == "tls" and settings is not None and not settings.get("tls_ca_file"):
        raise ParamsError("--cluster-security: a tls:// scheduler needs tls-ca-file (and tls-client-cert, "
                          "tls-client-key when the scheduler checks clients)", path=security)
    _require_dask()
    if scheme == "tls" and settings is None and not _configured_ca_file():
        raise ParamsError(f"--cluster {text!r}: TLS needs certificates: --cluster-security FILE (tls-ca-file, "
                          "tls-client-cert, tls-client-key) or Dask's configuration (distributed.comm.tls)")
    return ClusterTarget(value, address=address, security=settings,
                         security_file=str(Path(security).expanduser().resolve()) if security else None)


def check_search(cluster: str | None, security: str | None, *, jobs: int = 1,
                 gpus: list[str] | None = None) -> str | None:
    """A search's engine options checked together, before its run folder exists (``run_control.prepare``);
    returns the security file as an absolute path (a run resumed from another folder still finds it)."""
    if not cluster:
        if security:
            raise ParamsError("--cluster-security goes with --cluster tls://HOST:PORT (or tcp://)")
        return None
    if jobs > 1:
        raise ParamsError("--jobs is for worker processes on this machine; on a Dask cluster (--cluster) each "
                          "worker thread (or GPU) runs one fit at a time")
    if gpus:
        raise ParamsError("--gpus is for --jobs worker processes; on a Dask cluster each worker declares its GPU "
                          "(dask worker ... --resources GPU=1, one worker per GPU with CUDA_VISIBLE_DEVICES)")
    return check_cluster(cluster, security).security_file


def reach_scheduler(target: ClusterTarget, *, timeout: float = PROBE_TIMEOUT,
                    stop: threading.Event | None = None) -> None:
    """That a Dask scheduler answers at ``target``'s address within ``timeout`` seconds, or one
    ``UserError`` line: nothing listens there, something that is not a scheduler does (a web
    server, a silent port), or it does not answer in time. A set ``stop`` ends the wait with
    ``TaskStopped``. Nothing to do for a local cluster (it is started for the search)."""
    if target.local:
        return
    _, host, port = _split(target.address)
    try:  # a closed port at once (Dask's own connect retries a refusal until its timeout)
        socket.create_connection((host.strip("[]"), port), timeout=timeout).close()
    except OSError as exc:
        reason = "nothing listens on that port" if isinstance(exc, ConnectionRefusedError) else \
            f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(f"cannot reach the Dask scheduler {target.address}: {reason}") from None
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            outcome["who"] = asyncio.run(asyncio.wait_for(_identity(target), timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc

    asker = threading.Thread(target=ask, name="cnn-tui-dask-probe", daemon=True)
    asker.start()
    deadline = time.monotonic() + timeout + 1.0
    while asker.is_alive() and time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise TaskStopped("stopped while waiting for the Dask scheduler")
        asker.join(WAIT)
    error = outcome.get("error")
    who = outcome.get("who")
    if asker.is_alive() or isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        raise UserError(f"{target.address} does not answer as a Dask scheduler within {timeout:g} s (is something "
                        "else listening on that port?)")
    if error is not None:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UserError(f"{target.address} is not a Dask scheduler, or refused this connection ({first})")
    if not isinstance(who, dict) or who.get("type") != "Scheduler":
        kind = who.get("type") if isinstance(who, dict) else type(who).__name__
        raise UserError(f"{target.address} is not a Dask scheduler (it answers as {str(kind)[:40]!r})")


async def _identity(target: ClusterTarget) -> Any:
    """Dask's handshake and an ``identity`` call to ``target`` (a scheduler answers its type)."""
    from distributed.comm import connect  # noqa: PLC0415 — Dask: optional, and slow to import
    from distributed.security import Security  # noqa: PLC0415 — Dask: optional, and slow to import

    security = Security(**_security_arguments(target.security)) if target.security is not None else Security()
    comm = await connect(target.address, timeout=PROBE_TIMEOUT, **security.get_connection_args("client"))
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _configured_ca_file() -> str | None:
    """The CA file Dask's own configuration names (~/.config/dask/*.yaml, DASK_DISTRIBUTED__COMM__TLS__CA_FILE)."""
    import dask.config  # noqa: PLC0415 — Dask: optional, and slow to import

    return dask.config.get("distributed.comm.tls.ca-file", None)


def _require_dask() -> None:
    if importlib.util.find_spec("distributed") is None:
        raise UserError(f"--cluster runs the fits with Dask, which is not installed: {INSTALL}")


def load_security(path: str) -> dict[str, Any]:
    """The ``Security`` arguments a ``--cluster-security`` file gives: a YAML (or JSON) mapping of
    tls-ca-file, tls-client-cert, tls-client-key, tls-ciphers, tls-min-version, tls-max-version,
    require-encryption; certificate paths relative to the file's folder. One line for any error."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ParamsError("--cluster-security: no such file", path=path)
    try:
        import yaml  # noqa: PLC0415 — a dependency of Dask, which may not be installed

        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except ImportError:
        raise UserError(f"--cluster runs the fits with Dask, which is not installed: {INSTALL}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"--cluster-security: cannot read it ({exc})", path=path) from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"--cluster-security: not YAML or JSON ({str(exc).splitlines()[0]})", path=path) from None
    if not isinstance(data, dict) or not data:
        raise ParamsError(f"--cluster-security: expected a mapping with {', '.join(SECURITY_KEYS)}", path=path)
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("_", "-").lower()
        if name not in SECURITY_KEYS:
            raise ParamsError(f"--cluster-security: unknown key {key!r}; known: {', '.join(SECURITY_KEYS)}", path=path)
        if name == "require-encryption":
            if not isinstance(value, bool):
                raise ParamsError(f"--cluster-security: {key} must be true or false", path=path)
        elif name in FILE_KEYS:
            where = (file.parent / str(value)).expanduser() if not Path(str(value)).expanduser().is_absolute() \
                else Path(str(value)).expanduser()
            if not where.is_file():
                raise ParamsError(f"--cluster-security: {key} {value}: no such file", path=path)
            value = str(where.resolve())
        elif name in ("tls-min-version", "tls-max-version"):
            if str(value) not in ("1.2", "1.3"):
                raise ParamsError(f"--cluster-security: {key} must be 1.2 or 1.3", path=path)
            value = str(value)
        elif not isinstance(value, str):
            raise ParamsError(f"--cluster-security: {key} must be text", path=path)
        settings[SECURITY_KEYS[name]] = value
    if ("tls_client_cert" in settings) != ("tls_client_key" in settings):
        raise ParamsError("--cluster-security: tls-client-cert and tls-client-key go together", path=path)
    return settings


def _security_arguments(settings: dict[str, Any]) -> dict[str, Any]:
    versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
    return {k: versions[v] if k in ("tls_min_version", "tls_max_version") else v for k, v in settings.items()}


# ---------------------------------------------------------------- on a worker


class _ClusterFlag:
    """The search's stop as a running fit sees it: the cluster Event, asked at most every
    ``STOP_POLL`` seconds (``run_trial`` polls its stop every 50 ms; a scheduler round trip
    each time would be 20 a second per fit)."""

    def __init__(self, event: Any) -> None:
        self.event = event
        self.value = False
        self.checked = -math.inf

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self.value and now - self.checked >= STOP_POLL:
            self.checked = now
            try:
                self.value = bool(self.event.is_set())
            except Exception:  # noqa: BLE001 - scheduler unreachable: the worker is lost anyway, the fit goes on
                pass
        return self.value


def _dask_trial(spec: TrialSpec, pixels: np.ndarray, labels: np.ndarray, search: str,
                start_model: bytes | None = None) -> tuple[Trial, bytes | None, int]:
    """One trial on a Dask worker: (the trial, its saved model's bytes or None, how many times it
    has started). ``pixels`` are the scattered uint8 images (the worker's own copy, not copied
    again); a model to go on from arrives as bytes and a model kept for the next round goes back as
    bytes: the worker's folders are not this machine's."""
    from distributed import Event, get_client, get_worker  # noqa: PLC0415 — Dask: optional, and slow to import

    _private_sizeof_random()
    fit_pool.pool().serve(search)
    client = get_client()  # in this task's thread: the trial's polling thread would not find the worker
    # every start is logged on the scheduler: retries it made by itself (allowed-failures) count too
    topic = _starts_topic(search, spec.key)
    get_worker().log_event(topic, "start")
    flag = _ClusterFlag(Event(_stop_name(search), client=client))
    work = tempfile.mkdtemp(prefix="cnn-tui-trial-")
    try:
        if start_model is not None:
            path = Path(work) / f"start{_suffix(spec.start_model)}"  # a network's state (.npz) or a model
            path.write_bytes(start_model)
            spec = replace(spec, start_model=str(path))
        trial = run_trial(spec, PixelView(pixels, np.arange(len(pixels))), labels, stop=flag, work_dir=work)
        model = Path(trial.model_file).read_bytes() if trial.model_file else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    try:
        starts = len(client.get_events(topic))
    except Exception:  # noqa: BLE001 - a count for the table, not worth a fit
        starts = 1
    # the file's name says what it holds (a network's state or a whole model); its folder was the worker's
    return replace(trial, model_file=Path(trial.model_file).name if trial.model_file else None), model, starts


def _suffix(path: str | None) -> str:
    return Path(path).suffix if path else ".keras"


def _stop_name(search: str) -> str:
    return f"cnn-tui-stop-{search}"


def _starts_topic(search: str, key: str) -> str:
    return f"cnn-tui-{search}-{key}"


def _private_sizeof_random() -> None:
    """Keras draws the default seeds of layers and initializers from Python's global ``random``
    (after ``set_random_seed`` seeded it), and a Dask worker's event loop draws from it too while
    the fit builds: ``dask.sizeof`` samples the items of every list and dict it measures. The
    interleaving changed a seeded fit's weights from run to run (3 of 8 fits differed from the same
    fits in-process). Dask's estimates get a generator of their own; the global one is left to the fit."""
    import dask.sizeof  # noqa: PLC0415 — Dask: optional, and slow to import

    if dask.sizeof.random is random:
        dask.sizeof.random = random.Random(0)


def _worker_version() -> str:
    """What a worker answers before the search (run by ``Client.run``): it can import cnn-tui."""
    return cnn_tui.__version__


def dask_setup(worker: Any) -> None:
    """Local-cluster workers preload this module (restarted ones too): a Ctrl-C in the terminal
    reaches every process of its group, and the search, not each worker, decides what it means."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the worker process's main thread: leave it
        pass


# ---------------------------------------------------------------- the executor


def _local_security() -> dict[str, Any]:
    """TLS with a certificate made for this cluster and held in memory (``Security.temporary``):
    127.0.0.1 keeps other machines out, not the other users of this one, and whoever can connect
    can run code as this user. Needs ``cryptography`` (in the dask extra); without it, no cluster
    (``check_cluster`` refused it before the run began: a local cluster is never plain TCP)."""
    if importlib.util.find_spec("cryptography") is None:
        raise UserError(f"a local Dask cluster runs over TLS, which needs the cryptography package: {INSTALL}")
    from distributed.security import Security  # noqa: PLC0415 — Dask: optional, and slow to import

    return {"security": Security.temporary(), "protocol": "tls://"}


def uint8_pixels(x: Any) -> np.ndarray:
    """The images as uint8, as they were decoded (exact), in memory: what is sent to the workers."""
    if isinstance(x, PixelView) and x.source.dtype == np.uint8:
        return np.ascontiguousarray(x.source[x.rows])
    out = np.empty(tuple(x.shape), dtype=np.uint8)
    for start in range(0, len(x), 1024):
        out[start:start + 1024] = np.rint(np.asarray(x[start:start + 1024]) * 255)
    return out


@dataclass
class _Attempt:
    spec: TrialSpec  # as dispatched here (local start_model path, pruning reference)
    deaths: int = 0  # times its worker died while it ran
    lost: int = 0  # times it was resubmitted because the images were lost
    number: int = 0  # submissions so far (a fresh key each)


class DaskExecutor:
    """Trials as tasks on a Dask cluster (see the module's docstring)."""

    name = "dask"

    def __init__(self, cluster: str, *, stop: threading.Event, security: str | None = None,
                 emit: Emit = ignore) -> None:
        self.target = check_cluster(cluster, security)
        self.stop = stop
        self.emit = emit
        self.client: Any = None
        self.cluster: Any = None
        self.search = uuid.uuid4().hex[:10]
        self.gpus = False
        self.slots = 1
        self.slots_checked = -math.inf
        self.stopped = False
        self.event: Any = None
        self.changed = threading.Event()  # a submitted trial ended

    # -------------------------------------------------------- connecting

    def start(self, x: Any, y: np.ndarray, work_dir: Path) -> None:
        self.work_dir = work_dir
        reach_scheduler(self.target, stop=self.stop)
        self.client = self._connect()
        waiting_since = time.monotonic()
        while True:  # a second at a time: a stop (SIGTERM) ends a run that waits for a worker
            if self.stop.is_set():
                raise TaskStopped("stopped while waiting for the Dask scheduler's workers")
            try:
                self.client.wait_for_workers(1, timeout=1.0)
                break
            except (TimeoutError, OSError):
                if time.monotonic() - waiting_since >= WORKERS_TIMEOUT:
                    raise UserError(f"the Dask scheduler {self.target.address} has no workers (waited "
                                    f"{WORKERS_TIMEOUT:.0f} s): start some with `dask worker {self.target.address} "
                                    "--nthreads 1`") from None
        self._check_workers()
        from distributed import Event  # noqa: PLC0415 — Dask: optional, and slow to import

        self.event = Event(_stop_name(self.search), client=self.client)
        self.pixels = uint8_pixels(x)
        self.labels = np.asarray(y)
        self._send_images()
        self._refresh_slots(force=True)
        where = self.target.address or f"a local cluster of {self.target.workers} worker(s) on 127.0.0.1"
        self.emit(Notice(f"Dask: {where}, {self.slots} fit(s) at once{' (one per GPU)' if self.gpus else ''}"))
        warning = self.target.warning()
        if warning:
            self.emit(Notice(warning, "warning"))

    def _connect(self) -> Any:
        import dask  # noqa: PLC0415 — Dask: optional, and slow to import
        from distributed import Client  # noqa: PLC0415 — Dask: optional, and slow to import

        if self.target.local:
            from distributed import LocalCluster  # noqa: PLC0415 — Dask: optional, and slow to import

            config = {
                # no retries of the scheduler's own: "once more, then failed" is counted here
                "distributed.scheduler.allowed-failures": 0,
                # the images stay on every worker between trials (the memory manager would drop the copies of
                # workers that are between two fits, and send them again for the next)
                "distributed.scheduler.active-memory-manager.start": False,
                "distributed.worker.preload": [__name__],  # dask_setup: workers ignore Ctrl-C
                # the statistical profiler feeds a dashboard this cluster does not have: sampling each fit's
                # thread every 10 ms would only take CPU from the fits
                "distributed.worker.profile.enabled": False,
            }
            # interrupts held: the worker processes start with Ctrl-C ignored (the preload covers restarts)
            with dask.config.set(config), interrupts_held():
                self.cluster = LocalCluster(
                    n_workers=self.target.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    # the scheduler's HTTP server (a dashboard where bokeh is installed) starts anyway: on a free
                    # port of 127.0.0.1 (None meant 8787 and a warning whenever another cluster had it)
                    dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL,
                    # a fit's memory is Keras's, not Dask's data: no spilling, pausing or killing by Dask's
                    # estimate (the operating system still ends a worker that takes too much: it died)
                    memory_limit=0, **_local_security())
            return Client(self.cluster, set_as_default=False)  # with the cluster's security
        from distributed.security import Security  # noqa: PLC0415 — Dask: optional, and slow to import

        security = Security(**_security_arguments(self.target.security)) if self.target.security is not None \
            else Security()  # Dask's own configuration (distributed.comm.tls.*, DASK_DISTRIBUTED__COMM__...)
        try:
            return Client(self.target.address, security=security, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot reach the Dask scheduler {self.target.address}: {first}") from None

    def _check_workers(self) -> None:
        """Every worker must import cnn-tui (the trials are its code); a different version is a warning."""
        try:
            versions = self.client.run(_worker_version)
        except Exception as exc:  # noqa: BLE001 - a worker without cnn-tui raises its ImportError here
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise UserError(f"the Dask workers cannot run cnn-tui's fits ({type(exc).__name__}: {first}): install "
                            f"cnn-tui {cnn_tui.__version__} on every worker") from None
        other = sorted({v for v in versions.values() if v != cnn_tui.__version__})
        if other:
            self.emit(Notice(f"Dask workers run cnn-tui {', '.join(other)}, this machine {cnn_tui.__version__}: "
                             "results may differ", "warning"))

    def _send_images(self) -> None:
        """The images and labels to every worker, once (workers copy them from one another)."""
        self.images_future = self.client.scatter(self.pixels, broadcast=True, hash=False)
        self.labels_future = self.client.scatter(self.labels, broadcast=True, hash=False)

    def _images_lost(self) -> bool:
        return self.images_future.status != "finished" or self.labels_future.status != "finished"

    def _refresh_slots(self, force: bool = False) -> None:
        """How many fits the cluster runs at once: its GPUs where workers declare them, else its
        threads. Workers come and go, so asked again every few seconds."""
        now = time.monotonic()
        if not force and now - self.slots_checked < 2.0:
            return
        self.slots_checked = now
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except TypeError:  # distributed before 2025: every worker, always
            info = self.client.scheduler_info()
        workers = list(info.get("workers", {}).values())
        gpus = sum(float((w.get("resources") or {}).get("GPU", 0)) for w in workers)
        self.gpus = self.gpus or gpus > 0  # once GPUs were seen, fits keep asking for one
        threads = sum(int(w.get("nthreads") or 0) for w in workers)
        self.slots = max(1, int(gpus) if self.gpus else threads)

    # -------------------------------------------------------- running

    def _submit(self, attempt: _Attempt) -> Any:
        spec = attempt.spec
        if self._images_lost():  # every worker holding them died: send them again
            self._send_images()
        model = None
        if spec.start_model:
            model = self.client.scatter(Path(spec.start_model).read_bytes(), hash=False)
        key = f"cnn-tui-{self.search}-{spec.key}" + (f"-try{attempt.number + 1}" if attempt.number else "")
        attempt.number += 1
        future = self.client.submit(_dask_trial, spec, self.images_future, self.labels_future, self.search, model,
                                    key=key, pure=False, resources={"GPU": 1} if self.gpus else None)
        future.add_done_callback(lambda _: self.changed.set())
        return future

    def run(self, specs: list[TrialSpec], on_trial: Any, prepare: Any) -> None:
        try:
            self._run(specs, on_trial, prepare)
        except OSError as exc:  # the scheduler went away (distributed's CommClosedError is an OSError)
            raise UserError(f"lost the Dask scheduler {self.target.address or self.target.text} ({type(exc).__name__}"
                            f": {str(exc).strip()[:200]}); the fits finished so far are kept: resume the run") \
                from None

    def _run(self, specs: list[TrialSpec], on_trial: Any, prepare: Any) -> None:
        pending = list(specs)
        running: dict[Any, _Attempt] = {}
        stopped_at: float | None = None

        def dispatch(attempt: _Attempt) -> None:
            try:
                running[self._submit(attempt)] = attempt
            except FileNotFoundError as exc:  # its previous round's model is gone from here
                on_trial(Trial(attempt.spec, "failed", reason=f"cannot read the model to go on from ({exc})",
                               retries=attempt.deaths))

        while pending or running:
            if self.stop.is_set() and stopped_at is None:
                stopped_at = time.monotonic()
                pending.clear()
                self._stop(running)
            if stopped_at is not None and time.monotonic() - stopped_at > STOP_GRACE:
                for future in running:  # a fit that did not end within the grace: it still sees the stop event
                    future.cancel()
                return
            self._refresh_slots()
            while pending and len(running) < self.slots:
                dispatch(_Attempt(prepare(pending.pop(0))))
            if not running:
                break
            # distributed.wait would look for a default client (this one is not: the caller's own Dask
            # code keeps its own); the futures' callbacks wake this thread instead
            self.changed.wait(WAIT)
            self.changed.clear()
            for future in [f for f in running if f.done()]:
                attempt = running.pop(future)
                trial = self._ended(future, attempt, stopping=stopped_at is not None)
                if trial is None:  # run again
                    dispatch(attempt)
                else:
                    on_trial(trial)

    def _ended(self, future: Any, attempt: _Attempt, *, stopping: bool) -> Trial | None:
        """The trial a finished task stands for, or None when it is to run again."""
        from distributed import KilledWorker  # noqa: PLC0415 — Dask: optional, and slow to import

        spec = attempt.spec
        if future.status == "finished":
            try:
                trial, model, starts = future.result()
            except Exception as exc:  # noqa: BLE001 - the result could not come back (its worker just died)
                return self._infrastructure(attempt, exc, stopping)
            local = None
            if model is not None:
                path = self.work_dir / "models" / f"{spec.key}{_suffix(trial.model_file)}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(model)
                local = str(path)
            # the starts count the scheduler's own reruns after a worker died as well as ours
            return replace(trial, spec=spec, model_file=local, retries=max(attempt.deaths, starts - 1))
        exc = future.exception() if future.status == "error" else None
        if isinstance(exc, KilledWorker):
            # Dask blames every task its dead worker held, also one that only waited there behind the
            # fit that killed it; the starts logged say which deaths were this trial's own
            starts = self._starts(spec.key)
            if starts is None:  # not known: each death the scheduler reports counts
                attempt.deaths += exc.allowed_failures + 1
            else:
                attempt.deaths = max(attempt.deaths, starts)  # every start so far ended in a death
            if stopping:
                return Trial(spec, "stopped", reason="the search was stopped", retries=max(0, attempt.deaths - 1))
            if attempt.deaths <= RETRIES and attempt.number < MAX_SUBMISSIONS:
                return None
            where = getattr(exc.last_worker, "address", "")
            return Trial(spec, "failed", reason=f"its Dask worker died {max(1, attempt.deaths)} time(s)"
                         f"{f' (last {where})' if where else ''}", retries=max(0, attempt.deaths - 1))
        return self._infrastructure(attempt, exc, stopping)

    def _starts(self, key: str) -> int | None:
        """How many times a trial has started on a worker (its logged starts), None if unknown."""
        try:
            return len(self.client.get_events(_starts_topic(self.search, key)))
        except Exception:  # noqa: BLE001 - the count is a refinement; without it every death counts
            return None

    def _infrastructure(self, attempt: _Attempt, exc: BaseException | None, stopping: bool) -> Trial | None:
        """A task that ended without a trial and not by a worker's death: cancelled by the stop,
        or its images lost with the last worker that held them (sent again, the trial runs again),
        or an error of Dask's or of the worker's installation (recorded, the search goes on)."""
        spec = attempt.spec
        if stopping:
            return Trial(spec, "stopped", reason="the search was stopped", retries=attempt.deaths)
        if self._images_lost() and attempt.lost < LOST_DATA_RETRIES:
            attempt.lost += 1
            return None
        what = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}" if exc and str(exc).strip() else \
            type(exc).__name__ if exc else "cancelled by the cluster"
        return Trial(spec, "failed", reason=f"the Dask task failed ({what})", retries=attempt.deaths)

    def _stop(self, running: dict[Any, _Attempt]) -> None:
        """Tell running fits to end (within a batch) and cancel those not started yet."""
        self.stopped = True
        try:
            self.event.set()
            busy = {key for keys in self.client.processing().values() for key in keys}
        except Exception:  # noqa: BLE001 - the scheduler is gone: nothing runs there any more
            busy = set()
        for future in [f for f in running if f.key not in busy]:
            future.cancel()

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                if self.event is not None and not self.stopped:  # a stopped search leaves its event set:
                    self.event.clear()  # cancelled fits may still be polling it
            except Exception:  # noqa: BLE001 - closing: the scheduler may be gone
                pass
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            try:
                cluster.close()
            except Exception:  # noqa: BLE001
                pass
