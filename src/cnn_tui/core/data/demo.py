"""The built-in demo: scikit-learn's 1,797 real 8x8 handwritten digits as PNG class folders.

Files are named after the sample's index in the scikit-learn set, and a file
already holding the same bytes is left untouched, so running the export again
neither duplicates images nor changes their modification times (which would
needlessly invalidate the decoded-image cache).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_tui.core import fileio
from cnn_tui.core.errors import ResultsError
from cnn_tui.core.params.files import DataParams, HyperParams

DATA_PARAMS_NAME = "digits_data_params.json"
HYPER_PARAMS_NAME = "digits_hyper_params.json"
# Upscaled from 8x8 on load: the seed CNN's two 2x2 poolings need room, and 16x16 trains in seconds.
DEMO_IMAGE_SIZE = 16
DEMO_HYPER = {
    "init_rate": [0.02, 0.01],
    "decay_steps": 400,
    "decay_rate": 0.9,
    "kernel_size": 3,
    "num_filters": [32, 40],
    "num_units": [512, 800],
    "momentum": 0.9,
    "drop_out": 0.2,
    "epochs": [20, 10],
    "batch_size": [32, 64],
}


@dataclass(frozen=True)
class DemoFiles:
    train_dir: Path
    test_dir: Path
    data_params: Path
    hyper_params: Path
    written: int
    unchanged: int
    train_count: int
    test_count: int
    kept: tuple[str, ...] = ()  # params files already there, left as the user edited them


def export_digits(data_root: Path, app_input: Path, *, seed: int = 42, test_share: float = 0.2) -> DemoFiles:
    from sklearn.datasets import load_digits  # noqa: PLC0415 — scikit-learn is slow to import
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 — scikit-learn is slow to import

    try:  # first: a bad --app-input must not leave 1,797 images behind
        app_input.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot make the folder for the demo params ({exc.strerror or exc})",
                           path=app_input) from None
    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)  # 0..16 grey levels to 0..255
    index = np.arange(len(digits.target))
    train, test = train_test_split(index, test_size=test_share, stratify=digits.target, random_state=seed)
    base = data_root / "digits"
    written = unchanged = 0
    for split, members in (("training", train), ("testing", test)):
        for i in sorted(members):
            target = base / split / str(digits.target[i]) / f"digit_{i:04d}.png"
            buffer = io.BytesIO()
            Image.fromarray(pixels[i], mode="L").save(buffer, format="PNG")
            content = buffer.getvalue()
            if target.exists() and target.read_bytes() == content:
                unchanged += 1
                continue
            with fileio.atomic_path(target, suffix=".png") as tmp:
                tmp.write_bytes(content)
            written += 1

    data = DataParams.from_dict(
        {
            "num_classes": 10,
            "train_dir": os.path.relpath(base / "training", app_input),
            "test_dir": os.path.relpath(base / "testing", app_input),
            "image_size": DEMO_IMAGE_SIZE,
        },
        base_dir=app_input,
    )
    data_path, hyper_path = app_input / DATA_PARAMS_NAME, app_input / HYPER_PARAMS_NAME
    kept = tuple(str(p) for p in (data_path, hyper_path) if p.exists())
    if not data_path.exists():  # an existing file may hold the user's edits: never reset it
        data.save(data_path)
    if not hyper_path.exists():
        HyperParams.from_dict(DEMO_HYPER).save(hyper_path)
    return DemoFiles(base / "training", base / "testing", data_path, hyper_path, written, unchanged, len(train),
                     len(test), kept)
