"""Shared fixtures: tiny real image folders made on the fly, tiny hyper params, an isolated cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from cnn_tui.core.dataset import ImageSet

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own decoded-image cache, so cache state never leaks between tests."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("CNN_TUI_CACHE_DIR", str(folder))
    monkeypatch.delenv("CNN_TUI_CACHE", raising=False)
    return folder


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


@pytest.fixture
def image_folder(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "training", **kwargs) -> Path:
        return write_image_folder(tmp_path / name, **kwargs)

    return make


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


@pytest.fixture
def params_files(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Write a data-params and hyper-params pair for tiny training/testing folders."""

    def make(classes: int = 3, per_class: int = 12, test_per_class: int = 6, size: int = 12, hyper: dict | None = None,
             **data_extra) -> tuple[Path, Path]:
        write_image_folder(tmp_path / "data" / "training", classes, per_class, size, seed=1)
        write_image_folder(tmp_path / "data" / "testing", classes, test_per_class, size, seed=2)
        inputs = tmp_path / "app_input"
        inputs.mkdir(exist_ok=True)
        data = {"num_classes": classes, "train_dir": "../data/training", "test_dir": "../data/testing",
                "image_size": size, "result_dir": "../results", **data_extra}
        data_path = inputs / "data.json"
        hyper_path = inputs / "hyper.json"
        data_path.write_text(json.dumps(data))
        hyper_path.write_text(json.dumps({**TINY_HYPER, **(hyper or {})}))
        return data_path, hyper_path

    return make
