"""Helpers and constants the test folders share (importable because pytest puts tests/ on sys.path).

Kept out of conftest.py: with a conftest.py in a sub-folder too, ``import conftest`` is ambiguous.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pynvml

from cnn_tui.core.data.dataset import ImageSet

SEED_HYPER = {
    "init_rate": [0.02, 0.01], "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3,
    "num_filters": [32, 40], "num_units": [512, 800], "momentum": 0.9, "drop_out": 0.2,
    "epochs": [5, 10], "batch_size": [64, 80],
}
SEED_DATA = {"num_classes": 10, "train_dir": "C:/Datasets/mnist_png/training",
             "test_dir": "C:/Datasets/mnist_png/testing", "image_size": 28}


TINY_HYPER = {
    "init_rate": 0.05,
    "decay_steps": 100,
    "decay_rate": 0.9,
    "kernel_size": 3,
    "num_filters": 8,
    "num_units": 32,
    "momentum": 0.9,
    "drop_out": 0.1,
    "epochs": 2,
    "batch_size": 8,
}


def class_pattern(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A grayscale image a small CNN separates in an epoch or two: a bright block whose
    position depends on the class, on a noisy background."""
    image = rng.integers(0, 60, (size, size)).astype(np.uint8)
    cells = 3
    cell = size // cells
    row, col = divmod(label % (cells * cells), cells)
    image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = 230
    return image


def class_ordered_set(classes=3, per_class=12, size=12) -> ImageSet:
    """An ImageSet sorted by class, as a folder scan yields them: unshuffled KFold would hold out whole classes."""
    rng = np.random.default_rng(0)
    x = np.stack([class_pattern(k, size, rng) for k in range(classes) for _ in range(per_class)])
    y = np.repeat(np.arange(classes), per_class).astype(np.int32)
    files = [f"{k}/{i}.png" for k in range(classes) for i in range(per_class)]
    return ImageSet((x[..., None] / 255).astype(np.float32), y, [str(k) for k in range(classes)], files, root=None)



def check_hyperband_of_three(result, models: Path) -> None:
    """A hyperband search of 3 combinations x 2 folds, 3 epochs: round 1 trains all six fits 1
    epoch and keeps their networks' states (``models``), round 2 trains the best combination's two
    folds on to 3 epochs."""
    assert result.status == "finished", result.message
    rungs: dict[int, list] = {}
    for row in result.rows:
        rungs.setdefault(row["rung"], []).append(row)
    assert [len(rungs[r]) for r in sorted(rungs)] == [6, 2]
    assert {row["epochs_done"] for row in rungs[0]} == {1} and {row["epochs_done"] for row in rungs[1]} == {3}
    assert all(row["status"] == "ok" for row in result.rows)
    assert len(list(models.glob("r0-*.npz"))) == 6


def write_image_folder(
    root: Path,
    classes: list[str] | int = 3,
    per_class: int = 12,
    size: int = 12,
    *,
    fmt: str = "png",
    colour: bool = False,
    seed: int = 0,
    sizes: list[int] | None = None,
) -> Path:
    """Write ``root/<class>/<i>.<fmt>`` images; returns ``root``."""
    from PIL import Image

    names = [str(i) for i in range(classes)] if isinstance(classes, int) else classes
    rng = np.random.default_rng(seed)
    for label, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = sizes[i % len(sizes)] if sizes else size
            pixels = class_pattern(label, side, rng)
            image = Image.fromarray(pixels, mode="L")
            if colour:
                tint = np.zeros((side, side, 3), dtype=np.uint8)
                tint[..., label % 3] = pixels
                tint[..., (label + 1) % 3] = pixels // 3
                image = Image.fromarray(tint, mode="RGB")
            image.save(folder / f"img_{i:03d}.{fmt}")
    return root


def fail_fits_with(monkeypatch, num_units: int, message: str = "simulated") -> None:
    """Make every tuning fit with ``num_units`` run out of memory (MemoryError) as it builds."""
    from cnn_tui.core.tuning import classifier

    real = classifier.build_network

    def out_of_memory(**kwargs):
        if kwargs["num_units"] == num_units:
            raise MemoryError(message)
        return real(**kwargs)

    monkeypatch.setattr(classifier, "build_network", out_of_memory)


# ---- patching the run processes a test starts (training and tuning from the TUI run in their own process)

CHILD_HOOKS = Path(__file__).parent / "child_hooks"


def in_run_processes(monkeypatch, hook: str, **env: str) -> None:
    """Python processes started from now on (run processes) call ``tests_support.<hook>()`` first."""
    import os

    paths = [str(CHILD_HOOKS), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.setenv("CNN_TUI_TEST_HOOK", f"tests_support:{hook}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def fail_fits_in_child() -> None:
    """``fail_fits_with`` in a run process: ``CNN_TUI_TEST_FAIL_UNITS`` names the num_units that fail."""
    import os

    import pytest

    fail_fits_with(pytest.MonkeyPatch(), int(os.environ["CNN_TUI_TEST_FAIL_UNITS"]))


def full_disk_in_child() -> None:
    """In a run process: every model.keras write fails as on a full disk (other files still write)."""
    from cnn_tui.core.errors import ResultsError
    from cnn_tui.core.models.model import NetModel

    real = NetModel.save

    def save(self, path):
        if Path(path).name == "model.keras":
            raise ResultsError("cannot write (No space left on device)", path=path)
        return real(self, path)

    NetModel.save = save


def die_in_fits_in_child() -> None:
    """In a worker process: a fit with ``CNN_TUI_TEST_DIE_UNITS`` num_units kills its process as it
    builds (as the kernel's OOM killer would)."""
    import os

    from cnn_tui.core.tuning import classifier

    units = int(os.environ["CNN_TUI_TEST_DIE_UNITS"])
    real = classifier.build_network

    def build(**kwargs):
        if kwargs.get("num_units") == units:
            os._exit(9)
        return real(**kwargs)

    classifier.build_network = build


def die_once_in_fits_in_child() -> None:
    """In a worker process: the first fit to build, in any process, kills its process (the file
    ``CNN_TUI_TEST_DIE_ONCE_FILE`` records that one did); every later fit trains."""
    import os

    from cnn_tui.core.tuning import classifier

    marker = Path(os.environ["CNN_TUI_TEST_DIE_ONCE_FILE"])
    real = classifier.build_network

    def build(**kwargs):
        try:
            marker.open("x").close()  # atomic: one process wins
        except FileExistsError:
            return real(**kwargs)
        os._exit(9)

    classifier.build_network = build


GIB = 1024 ** 3


def fake_nvml(monkeypatch, *, fail_after: int | None = None) -> dict:
    """A fake NVML (pynvml's functions replaced): two GPUs whose figures are known; with ``fail_after``,
    every utilisation read after that many raises (a driver gone away)."""
    calls = {"init": 0, "shutdown": 0, "utilization": 0}
    gpus = [dict(name="NVIDIA H100", util=87, used=10.2 * GIB, total=80 * GIB, temp=64, mw=250_000),
            dict(name=b"NVIDIA H100", util=3, used=1 * GIB, total=80 * GIB, temp=35, mw=None)]

    def init():
        calls["init"] += 1

    def utilization(handle):
        calls["utilization"] += 1
        if fail_after is not None and calls["utilization"] > fail_after:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return SimpleNamespace(gpu=gpus[handle]["util"], memory=0)

    def power(handle):
        if gpus[handle]["mw"] is None:
            raise pynvml.NVMLError_NotSupported(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpus[handle]["mw"]

    monkeypatch.setattr(pynvml, "nvmlInit", init)
    monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: calls.__setitem__("shutdown", calls["shutdown"] + 1))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: len(gpus))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: i)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: gpus[h]["name"])
    monkeypatch.setattr(pynvml, "nvmlDeviceGetUtilizationRates", utilization)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo",
                        lambda h: SimpleNamespace(used=gpus[h]["used"], total=gpus[h]["total"], free=0))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTemperature", lambda h, sensor: gpus[h]["temp"])
    monkeypatch.setattr(pynvml, "nvmlDeviceGetPowerUsage", power)
    return calls


def no_nvml(monkeypatch) -> None:
    def missing():
        raise pynvml.NVMLError_LibraryNotFound(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", missing)
