"""The machine in view: while a run goes, a ``SystemSample`` about once a second.

``SystemMonitor`` samples on a daemon thread of the run's process: each GPU's utilisation, memory,
temperature and power through NVML (``pynvml``, from the nvidia-ml-py package, when it and the
driver's library are there) and the host's CPU and memory (psutil). The samples go to the run's
``emit``, so they land in ``events.jsonl`` and whoever follows the run (the TUI, ``cnn-tui attach``)
sees them. Sampling never blocks or fails the run: without NVML, or after any NVML error, the GPU
part is left out (decided once, not retried every second); a sample that cannot be taken is skipped.
``describe`` is the one compact line the TUI and ``cnn-tui runs`` show; ``last_sample`` reads the
newest sample back from the end of a run's events file.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import psutil

from cnn_tui.core.environment import env_seconds
from cnn_tui.core.events import Emit, SystemSample
from cnn_tui.core.runs.events_file import EVENTS_FILE, decode

try:  # the optional nvidia-ml-py package (the gpu extra); without it, CPU and memory only
    import pynvml
except ImportError:  # pragma: no cover - installed with the test extra
    pynvml = None

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 1.0
SAMPLE_VARIABLE = "CNN_TUI_SYSTEM_SAMPLE_SECONDS"
SAMPLED_TASKS = ("train", "tune", "pipeline")  # the long ones; an evaluation is over in seconds
MIB = 1024 * 1024
TAIL_BYTES = 256 * 1024  # how far back from its end ``last_sample`` reads a run's events file


def sample_seconds() -> float:
    """The interval between samples: CNN_TUI_SYSTEM_SAMPLE_SECONDS (0 turns sampling off), else 1 s."""
    return env_seconds(SAMPLE_VARIABLE, SAMPLE_SECONDS)


class Gpus:
    """NVML's GPUs: opened once; any NVML error leaves the GPU part out from then on."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.open = False
        if pynvml is None:
            return
        try:
            pynvml.nvmlInit()
            self.open = True
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception as exc:  # NVMLError_LibraryNotFound on a machine without the driver, or anything else
            log.debug("no GPU figures: %s", exc)
            self.close()

    def sample(self) -> list[dict[str, Any]]:
        if not self.handles:
            return []
        try:
            return [self._one(index, handle) for index, handle in enumerate(self.handles)]
        except Exception as exc:  # a driver gone away, a GPU fallen off the bus: no more GPU figures
            log.warning("GPU figures left out from now on: %s", exc)
            self.close()
            return []

    @staticmethod
    def _one(index: int, handle: Any) -> dict[str, Any]:
        def figure(read: Any) -> Any:
            try:
                return read()
            except pynvml.NVMLError_NotSupported:  # e.g. power on some boards: that figure only
                return None

        memory = figure(lambda: pynvml.nvmlDeviceGetMemoryInfo(handle))
        name = figure(lambda: pynvml.nvmlDeviceGetName(handle))
        power = figure(lambda: pynvml.nvmlDeviceGetPowerUsage(handle))  # milliwatts
        return {
            "index": index,
            "name": name.decode() if isinstance(name, bytes) else name,
            "utilization": figure(lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
            "memory_used_mb": round(memory.used / MIB, 1) if memory is not None else None,
            "memory_total_mb": round(memory.total / MIB, 1) if memory is not None else None,
            "temperature_c": figure(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
            "power_w": round(power / 1000, 1) if power is not None else None,
        }

    def close(self) -> None:
        self.handles = []
        if self.open:
            self.open = False
            try:
                pynvml.nvmlShutdown()
            except Exception:  # shutting down what failed: nothing left to do
                pass


def host_sample() -> tuple[float | None, float | None, float | None]:
    """The host's CPU use since the last call (%) and its memory used and total (MiB)."""
    try:
        cpu = float(psutil.cpu_percent(interval=None))
    except Exception:  # /proc unreadable in an odd container: no CPU figure
        cpu = None
    try:
        memory = psutil.virtual_memory()
        used, total = round((memory.total - memory.available) / MIB, 1), round(memory.total / MIB, 1)
    except Exception:
        used = total = None
    return cpu, used, total


def take_sample(gpus: Gpus) -> SystemSample:
    cpu, used, total = host_sample()
    return SystemSample(gpus.sample(), cpu, used, total)


class SystemMonitor:
    """``with SystemMonitor(emit):`` emits a ``SystemSample`` every ``interval`` seconds until the block
    ends (0 or less: none). The thread is a daemon and opens NVML itself, so a slow driver never
    delays the run; leaving the block waits for it at most ``interval`` + 1 s."""

    def __init__(self, emit: Emit, interval: float | None = None) -> None:
        self.emit = emit
        self.interval = sample_seconds() if interval is None else interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples = 0

    def __enter__(self) -> SystemMonitor:
        if self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="system-monitor", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 1.0)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        gpus = Gpus()
        try:
            host_sample()  # the first CPU figure counts from here
            while not self._stop.wait(self.interval):
                try:
                    sample = take_sample(gpus)
                    if self._stop.is_set():  # the run ended while sampling: nothing after its end
                        return
                    self.emit(sample)
                    self.samples += 1
                except Exception as exc:  # the run must not notice its monitor
                    log.debug("system sample skipped: %s", exc)
        finally:
            gpus.close()


def _gb(mib: float) -> str:
    gb = mib / 1024
    return f"{gb:.0f}" if gb >= 10 and abs(gb - round(gb)) < 0.05 else f"{gb:.1f}"


def _gpu_text(gpu: dict[str, Any], label: str, compact: bool) -> str:
    gb, degrees, watts = ("G", "°", "W") if compact else (" GB", "°C", " W")
    figures = [label]
    if gpu.get("utilization") is not None:
        figures.append(f"{gpu['utilization']:.0f}%")
    if gpu.get("memory_used_mb") is not None and gpu.get("memory_total_mb"):
        figures.append(f"{_gb(gpu['memory_used_mb'])}/{_gb(gpu['memory_total_mb'])}{gb}")
    if gpu.get("temperature_c") is not None:
        figures.append(f"{gpu['temperature_c']:.0f}{degrees}")
    if gpu.get("power_w") is not None:
        figures.append(f"{gpu['power_w']:.0f}{watts}")
    return " ".join(figures)


def _all_gpus(gpus: list[dict[str, Any]]) -> dict[str, Any]:
    """Several GPUs as one: mean utilisation, memory and power summed, the hottest temperature."""
    def known(key: str) -> list[float]:
        return [g[key] for g in gpus if g.get(key) is not None]

    util, used, total = known("utilization"), known("memory_used_mb"), known("memory_total_mb")
    temperature, power = known("temperature_c"), known("power_w")
    return {"utilization": sum(util) / len(util) if util else None,
            "memory_used_mb": sum(used) if used else None, "memory_total_mb": sum(total) if total else None,
            "temperature_c": max(temperature) if temperature else None, "power_w": sum(power) if power else None}


def _host_text(sample: SystemSample, compact: bool) -> list[str]:
    parts = []
    if sample.cpu_percent is not None:
        parts.append(f"CPU {sample.cpu_percent:.0f}%")
    if sample.memory_used_mb is not None and sample.memory_total_mb:
        parts.append(f"RAM {_gb(sample.memory_used_mb)}/{_gb(sample.memory_total_mb)}{'G' if compact else ' GB'}")
    return parts


def describe(sample: SystemSample, width: int | None = None) -> str:
    """One line: ``GPU0 87% 10.2/80 GB 64°C 250 W · CPU 43% · RAM 5.1/128 GB``. Where that is wider
    than ``width``, the units shrink (``10.2/80G 64° 250W``), then several GPUs are summed into one
    (``4 GPUs 87% 41/320G 71° 1000W``: their mean use, memory and power summed, the hottest)."""
    full = " · ".join([*(_gpu_text(g, f"GPU{g.get('index', '')}", False) for g in sample.gpus),
                       *_host_text(sample, False)])
    if width is None or len(full) <= width:
        return full
    compact = " · ".join([*(_gpu_text(g, f"GPU{g.get('index', '')}", True) for g in sample.gpus),
                          *_host_text(sample, True)])
    if len(compact) <= width or len(sample.gpus) < 2:
        return compact
    return " · ".join([_gpu_text(_all_gpus(sample.gpus), f"{len(sample.gpus)} GPUs", True), *_host_text(sample, True)])


def last_sample(folder: Path) -> SystemSample | None:
    """The newest ``SystemSample`` in the run's events file (read from its last 256 KiB), or None."""
    try:
        with open(folder / EVENTS_FILE, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            tail = handle.read()
    except OSError:
        return None
    for raw in reversed(tail.split(b"\n")):
        if b'"SystemSample"' in raw:
            event = decode(raw.decode("utf-8", errors="replace"))
            if isinstance(event, SystemSample):
                return event
    return None
