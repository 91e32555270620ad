"""Shared pieces of the benchmarks: alternating timers, results, machine facts, test data.

Every benchmark runs ours and the reference alternately in one process (or one script
run), so both see the same machine state, and reports the median of each and their ratio.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA_HOME = Path(os.environ.get("CNN_TUI_BENCH_DATA", Path.home() / ".cache" / "cnn-tui-bench"))


@dataclass
class Figure:
    """One measured figure against its target.

    ``ratio`` is defined per figure (``ratio_means``): speed-ups are reference/ours (bigger
    is better), overheads are ours/reference (smaller is better); ``op`` says which way
    the target goes.
    """

    group: str
    name: str
    ours: float | None
    reference: float | None
    unit: str
    ratio: float | None
    ratio_means: str
    op: str | None = None  # ">=" or "<=" ; None: reported only, no target
    target: float | None = None
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.op is None or self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target if self.op == ">=" else self.ratio <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def alternate(ours: Callable[[], Any], reference: Callable[[], Any], repeats: int, *, warm: bool = True) -> tuple[list[float], list[float]]:
    """Time ``ours`` and ``reference`` alternately ``repeats`` times each (after one untimed
    call of each when ``warm``), swapping who goes first every round."""
    if warm:
        ours()
        reference()
    times_ours: list[float] = []
    times_ref: list[float] = []
    for round_ in range(repeats):
        pair = [(ours, times_ours), (reference, times_ref)]
        if round_ % 2:
            pair.reverse()
        for func, sink in pair:
            gc.collect()
            started = time.perf_counter()
            func()
            sink.append(time.perf_counter() - started)
    return times_ours, times_ref


def _best_note(ratio: float | None, note: str, runs: int) -> str:
    """On a machine whose speed jumps between runs, the fastest run of each side shows what
    the code costs; the median (the figure itself) shows what a user meets."""
    if ratio is None or runs < 2:
        return note
    return f"fastest runs: {ratio:.3g}×" + (f"; {note}" if note else "")


def speedup(group: str, name: str, ours: list[float], reference: list[float], *, op: str | None = ">=",
            target: float | None = None, note: str = "") -> Figure:
    """A figure where bigger ratio = ours faster (reference time / our time)."""
    a, b = median(ours), median(reference)
    best = min(reference) / min(ours) if min(ours) else None
    return Figure(group, name, a, b, "s", b / a if a else None, "reference time / our time", op, target,
                  _best_note(best, note, len(ours)), {"ours": ours, "reference": reference})


def overhead(group: str, name: str, ours: list[float], reference: list[float], *, target: float | None = None,
             note: str = "", unit: str = "s") -> Figure:
    """A figure where smaller ratio = less overhead (our time / reference time)."""
    a, b = median(ours), median(reference)
    best = min(ours) / min(reference) if min(reference) else None
    return Figure(group, name, a, b, unit, a / b if b else None, "our time / reference time", "<=" if target else None, target,
                  _best_note(best, note, len(ours)), {"ours": ours, "reference": reference})


def single(group: str, name: str, value: float, unit: str, *, op: str | None = None, target: float | None = None,
           note: str = "", reference: float | None = None) -> Figure:
    """A figure with one value of ours (optionally against a plain reference value)."""
    return Figure(group, name, value, reference, unit, value, f"value in {unit}", op, target, note)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("cnn-tui", "keras", "tensorflow-cpu", "tensorflow", "jax", "numpy", "pillow", "scikit-learn", "scikeras",
                 "textual", "joblib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine() -> dict[str, Any]:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cores": cores,
        "cpu": cpu_model(),
        "memory_gib": memory_gib,
        "gpu": os.environ.get("CNN_TUI_BENCH_GPU", "none"),
        "os": f"{platform.system()} {platform.release()}",
        "load_average_at_start": load,
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "versions": versions(),
    }


# ---------- test data: demo digits and synthetic sets, made once and reused ----------


def demo_digits() -> Path:
    """The demo digits folder (training/, testing/), exported once under DATA_HOME."""
    from cnn_tui.core.data import demo

    root = DATA_HOME / "digits"
    if not (root / "training").is_dir():
        demo.export_digits(DATA_HOME, DATA_HOME / "app_input")
    return root


def _write_set(root: Path, count: int, classes: int, make: Callable[[np.random.Generator, int], Any], suffix: str, **save: Any) -> Path:
    done = root / ".complete"
    if done.exists():
        return root
    rng = np.random.default_rng(0)
    for index in range(count):
        label = index % classes
        split = "testing" if (index // classes) % 10 == 9 else "training"  # a tenth of every class
        folder = root / split / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        make(rng, label).save(folder / f"img_{index:06d}{suffix}", **save)
    done.write_text(str(count))
    return root


def synthetic_pngs(count: int = 20_000, size: int = 28, classes: int = 10) -> Path:
    """Grayscale PNGs: a bright square whose position depends on the class, plus noise."""
    from PIL import Image

    def make(rng: np.random.Generator, label: int) -> Image.Image:
        pixels = rng.integers(0, 60, (size, size), dtype=np.uint8)
        if rng.random() < 0.1:  # one image in ten shows another class's pattern: no set scores 100 %
            label = int(rng.integers(0, classes))
        r, c = divmod(label, 4)
        pixels[r * 6 + 2 : r * 6 + 8, c * 6 + 2 : c * 6 + 8] = 230
        return Image.fromarray(pixels, "L")

    return _write_set(DATA_HOME / f"png{count}_{size}_v3", count, classes, make, ".png")


def synthetic_jpegs(count: int = 2_000, width: int = 500, height: int = 375, classes: int = 4) -> Path:
    """Photo-sized colour JPEGs (smoothed noise, so they compress like photos do)."""
    from PIL import Image, ImageFilter

    def make(rng: np.random.Generator, label: int) -> Image.Image:
        small = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
        small[..., label % 3] //= 2
        return Image.fromarray(small, "RGB").resize((width, height), Image.BILINEAR).filter(ImageFilter.GaussianBlur(1))

    return _write_set(DATA_HOME / f"jpeg{count}_{width}x{height}_v2", count, classes, make, ".jpg", quality=90)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
