"""A device check for a GPU machine: one script, about 8 minutes, JAX and no TensorFlow needed.

    KERAS_BACKEND=jax python benchmarks/device_check.py [--quick] [--out results.json] [--write-docs]

What it measures (each part on its own: one that fails is recorded as failed, the rest go on):

- ``throughput``: images per second of ``seed_cnn``, ``cnn`` and ``resnet`` at batch 64 and 256 on
  synthetic 28x28 grey images (and ``cnn``/``resnet`` on 64x64 RGB), timed after a warm-up epoch
  (the JIT compile) so the figure is the steady state;
- ``train_vs_fit``: cnn-tui's ``core.training.fit.train`` on a ``NetModel`` against a plain Keras
  ``model.fit`` of an identically built model on the same arrays and batch (no TensorBoard logs,
  no batch augmentation: both need TensorFlow, see ``skipped``);
- ``mixed_precision``: the hyper field ``mixed_precision`` off and on (``build_model`` applies
  ``mixed_float16`` only when an accelerator is there, so on a CPU both sides run float32);
- ``concurrent_fits``: 1 fit against 2 fits at once on one device, as two **threads** of this
  process (JAX releases the GIL while a step runs); ``--jobs 2`` in a search uses processes instead,
  each importing Keras (cnn-tui sets ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` so they share the card);
- ``hyperband``: a hyperband search over 27 combinations (3 fields x 3 values) in-process, stopped
  at a time budget if it has not finished (what was done by then is reported);
- ``input_share``: the host's share of a step: the time to slice, shuffle and copy every batch of
  an epoch to the device, against the time of an epoch of ``fit`` over the same arrays.

``--quick`` shrinks every size (a minute on a CPU) so the script is tested where no GPU is.
Results go to ``--out`` (default ``$OUT/device_check.json`` when ``$OUT`` is set, else
``device_check.json`` here); ``--write-docs`` puts the Markdown section in ``docs/benchmarks.md``
(replacing its ``### GPU`` section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # run from a checkout without installing

from cnn_tui.core import backend  # noqa: E402
from cnn_tui.core.data.dataset import ImageSet  # noqa: E402
from cnn_tui.core.models.augmentation import batch_augmentation  # noqa: E402
from cnn_tui.core.models.model import build_model  # noqa: E402
from cnn_tui.core.params.files import HyperParams, ModelConfig  # noqa: E402
from cnn_tui.core.training.fit import fit_targets, train  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "### GPU"
# The seed's fields (benchmarks/bench_tuning.BASE); epochs and batch are set per measurement.
BASE = {"init_rate": 0.02, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
        "num_units": 512, "momentum": 0.9, "drop_out": 0.2, "epochs": 1, "batch_size": 64}
GRID_27 = {"init_rate": [0.003, 0.01, 0.03], "num_filters": [8, 16, 32], "drop_out": [0.1, 0.3, 0.5]}
GRID_QUICK = {"init_rate": [0.003, 0.03]}

# sizes: full (a GPU, about 8 minutes in all) and quick (a CPU, about a minute)
SIZES = {
    "full": {"grey": 8000, "grey_size": 28, "rgb": 4000, "rgb_size": 64, "timed_epochs": 2, "batches": (64, 256),
             "rgb_architectures": ("cnn", "resnet"), "small": "cnn", "compare_epochs": 3, "search_images": 4000,
             "search_epochs": 9, "search_budget": 210.0, "grid": GRID_27, "cv": 2},
    # every new network shape costs a JIT compile (seconds on a loaded CPU): few shapes, tiny arrays
    "quick": {"grey": 128, "grey_size": 16, "rgb": 64, "rgb_size": 16, "timed_epochs": 1, "batches": (64,),
              "rgb_architectures": ("cnn",), "small": "seed_cnn", "compare_epochs": 1, "search_images": 120,
              "search_epochs": 2, "search_budget": 30.0, "grid": GRID_QUICK, "cv": 2},
}


# ---------------------------------------------------------------- data and models


def synthetic(n: int, size: int, channels: int, classes: int = 10, seed: int = 0) -> ImageSet:
    """Learnable synthetic images: each class a fixed random pattern plus noise, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    patterns = rng.random((classes, size, size, channels), dtype=np.float32)
    y = np.arange(n) % classes
    rng.shuffle(y)
    x = np.clip(0.6 * patterns[y] + 0.4 * rng.random((n, size, size, channels), dtype=np.float32), 0, 1)
    return ImageSet(x=x.astype(np.float32), y=y.astype(np.int64), class_names=[str(c) for c in range(classes)],
                    files=[f"{i}.png" for i in range(n)], root=Path("synthetic"))


def config_for(architecture: str, batch: int, epochs: int, **extra: Any) -> ModelConfig:
    return ModelConfig.from_dict({**BASE, "architecture": architecture, "batch_size": batch, "epochs": epochs,
                                  **extra})


def net_for(config: ModelConfig, images: ImageSet) -> Any:
    return build_model(config, image_size=images.image_size, channels=images.channels,
                       class_names=images.class_names)


class EpochTimer:
    """Seconds of each epoch of a plain ``fit`` (a Keras callback made on first use)."""

    def __new__(cls) -> Any:
        keras = backend.load_keras()

        class _Timer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.seconds.append(time.perf_counter() - self.started)

        return _Timer()


def plain_fit(net: Any, images: ImageSet, config: ModelConfig, epochs: int) -> list[float]:
    """A plain Keras fit of ``net``'s model on the arrays: the seconds of each epoch."""
    timer = EpochTimer()
    y = fit_targets(config, images.y, net.num_classes)
    net.keras_model.fit(images.x, y, batch_size=config.batch_size, epochs=epochs, shuffle=True, verbose=0,
                        callbacks=[timer])
    return timer.seconds


def steady_rate(images: ImageSet, seconds: list[float]) -> float:
    """Images per second over the epochs after the first (the first compiles)."""
    timed = seconds[1:] or seconds
    return len(images) * len(timed) / max(sum(timed), 1e-9)


def dtype_policy(net: Any) -> str:
    policy = getattr(net.keras_model, "dtype_policy", None)
    return str(getattr(policy, "name", policy))


# ---------------------------------------------------------------- the measurements


def throughput(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    grey = synthetic(sizes["grey"], sizes["grey_size"], 1)
    rgb = synthetic(sizes["rgb"], sizes["rgb_size"], 3, seed=1)
    cases = ([(arch, grey) for arch in ("seed_cnn", "cnn", "resnet")]
             + [(arch, rgb) for arch in sizes["rgb_architectures"]])
    rows = []
    for arch, images in cases:
        for batch in sizes["batches"]:
            row = {"architecture": arch, "images": len(images), "shape": list(images.x.shape[1:]), "batch": batch}
            try:
                config = config_for(arch, batch, 1 + sizes["timed_epochs"])
                net = net_for(config, images)
                seconds = plain_fit(net, images, config, 1 + sizes["timed_epochs"])
                row.update(images_per_second=round(steady_rate(images, seconds), 1),
                           first_epoch_s=round(seconds[0], 2), params=int(net.keras_model.count_params()))
            except Exception as exc:
                row["error"] = one_line(exc)
            rows.append(row)
            say(f"  throughput {arch:8s} {row['shape']} batch {batch:3d}: "
                f"{row.get('images_per_second', row.get('error'))} images/s")
            backend.clear_session()
    return rows


def train_vs_fit(sizes: dict[str, Any]) -> dict[str, Any]:
    """The same model (built twice from one config and seed) trained by cnn-tui's ``train`` and
    by a plain ``fit``; both timed whole (compile included) and on the epochs after the first."""
    images = synthetic(sizes["grey"], sizes["grey_size"], 1)
    epochs = 1 + sizes["compare_epochs"]
    config = config_for("seed_cnn", 256, epochs)
    if batch_augmentation(config) is not None:
        return {"skipped": "batch augmentation is on (tf.data, needs TensorFlow)"}
    out: dict[str, Any] = {"architecture": "seed_cnn", "batch": 256, "epochs": epochs, "images": len(images)}
    backend.set_seed(0)
    ours = net_for(config, images)
    started = time.perf_counter()
    result = train(ours, images, config)  # no log_dir: TensorBoard event files are not written
    ours_total = time.perf_counter() - started
    seconds = result.history.get("seconds", [])
    out["train"] = {"status": result.status, "total_s": round(ours_total, 2),
                    "images_per_second": round(steady_rate(images, seconds), 1),
                    "accuracy": round(float(result.history["accuracy"][-1]), 4)}
    backend.clear_session()
    backend.set_seed(0)
    plain = net_for(config, images)
    started = time.perf_counter()
    seconds = plain_fit(plain, images, config, epochs)
    plain_total = time.perf_counter() - started
    history = plain.keras_model.history.history
    out["plain_fit"] = {"total_s": round(plain_total, 2), "images_per_second": round(steady_rate(images, seconds), 1),
                        "accuracy": round(float(history["accuracy"][-1]), 4)}
    out["train_over_plain_time"] = round(ours_total / max(plain_total, 1e-9), 3)
    backend.clear_session()
    return out


def mixed_precision(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    rgb = synthetic(sizes["rgb"], sizes["rgb_size"], 3, seed=1)
    rows = []
    for arch in sizes["rgb_architectures"]:
        for mixed in (False, True):
            row: dict[str, Any] = {"architecture": arch, "mixed_precision": mixed, "batch": 256,
                                   "shape": list(rgb.x.shape[1:])}
            try:
                config = config_for(arch, 256, 1 + sizes["timed_epochs"], mixed_precision=mixed)
                net = net_for(config, rgb)
                seconds = plain_fit(net, rgb, config, 1 + sizes["timed_epochs"])
                row.update(policy=dtype_policy(net), images_per_second=round(steady_rate(rgb, seconds), 1))
            except Exception as exc:
                row["error"] = one_line(exc)
            rows.append(row)
            say(f"  mixed precision {arch:6s} {mixed!s:5s}: {row.get('policy')} "
                f"{row.get('images_per_second', row.get('error'))} images/s")
            backend.clear_session()
    return rows


def concurrent_fits(sizes: dict[str, Any]) -> dict[str, Any]:
    """One fit alone, then two at once (two threads, two models, one device): images per second
    of the pair against one alone (the first epoch, which compiles, is left out of each)."""
    images = synthetic(sizes["grey"], sizes["grey_size"], 1)
    epochs = 1 + sizes["timed_epochs"]
    config = config_for(sizes["small"], 64, epochs)

    def one(net: Any, into: list[float]) -> None:
        into.append(steady_rate(images, plain_fit(net, images, config, epochs)))

    alone: list[float] = []
    first = net_for(config, images)
    started = time.perf_counter()
    one(first, alone)
    alone_wall = time.perf_counter() - started
    pair: list[float] = []
    errors: list[str] = []
    # built here, one after the other: building sets Keras's global dtype policy and layer names
    nets = [net_for(config, images) for _ in range(2)]

    def guarded(net: Any) -> None:
        try:
            one(net, pair)
        except Exception as exc:  # a thread's failure is reported, not lost
            errors.append(one_line(exc))

    threads = [threading.Thread(target=guarded, args=(net,)) for net in nets]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pair_wall = time.perf_counter() - started
    backend.clear_session()
    if errors:
        return {"how": "threads", "error": errors[0]}
    return {"how": "threads", "architecture": config.architecture, "batch": 64, "alone_images_per_second": round(alone[0], 1),
            "pair_images_per_second": round(sum(pair), 1), "pair_over_alone": round(sum(pair) / alone[0], 3),
            # whole fits, compiles included: 2 fits' wall time against twice one fit's (< 1: the pair gains)
            "alone_wall_s": round(alone_wall, 2), "pair_wall_s": round(pair_wall, 2),
            "pair_wall_over_two_alone": round(pair_wall / (2 * alone_wall), 3)}


def hyperband(sizes: dict[str, Any]) -> dict[str, Any]:
    """A hyperband search in-process, stopped at the budget if it has not finished by then."""
    from cnn_tui.core.tuning import search as tuning  # noqa: PLC0415 — the tuning stack: only this part needs it
    from cnn_tui.core.tuning.options import SearchOptions  # noqa: PLC0415 — as above

    images = synthetic(sizes["search_images"], sizes["grey_size"], 1, seed=2)
    hyper = HyperParams.from_dict({**BASE, "epochs": sizes["search_epochs"], "batch_size": 256, **sizes["grid"]})
    combinations = hyper.combination_count()
    stop = threading.Event()
    timer = threading.Timer(sizes["search_budget"], stop.set)
    timer.start()
    started = time.perf_counter()
    try:
        result = tuning.tune(images, hyper, SearchOptions(strategy="hyperband", cv=sizes["cv"]), stop=stop)
    finally:
        timer.cancel()
    seconds = time.perf_counter() - started
    ok = [r for r in result.rows if r.get("status") == "ok"]
    backend.clear_session()
    return {"combinations": combinations, "epochs": sizes["search_epochs"], "cv": sizes["cv"],
            "images": len(images), "budget_s": sizes["search_budget"], "status": result.status,
            "seconds": round(seconds, 1), "fits_ok": len(ok), "rows": len(result.rows),
            "fits_per_minute": round(60 * len(ok) / max(seconds, 1e-9), 1),
            "stopped_at_budget": stop.is_set()}


def input_share(sizes: dict[str, Any]) -> dict[str, Any]:
    """How long the host takes to make an epoch's batches (shuffled rows sliced from the arrays, as
    Keras's array adapter does, and copied to the device) against an epoch of ``fit``: near 0 means
    the device is not waiting for data; near 1 means it is, unless the two overlap."""
    images = synthetic(sizes["grey"], sizes["grey_size"], 1)
    config = config_for(sizes["small"], 256, 1 + sizes["timed_epochs"])
    net = net_for(config, images)
    seconds = plain_fit(net, images, config, 1 + sizes["timed_epochs"])
    epoch = (sum(seconds[1:]) / len(seconds[1:])) if len(seconds) > 1 else seconds[0]
    y = fit_targets(config, images.y, net.num_classes)
    to_device = device_copier()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    order = rng.permutation(len(images))
    for start in range(0, len(images), config.batch_size):
        rows = order[start:start + config.batch_size]
        to_device(np.take(images.x, rows, axis=0), np.take(y, rows, axis=0))
    feed = time.perf_counter() - started
    backend.clear_session()
    return {"architecture": config.architecture, "batch": config.batch_size, "images": len(images),
            "epoch_s": round(epoch, 4), "feed_s": round(feed, 4), "feed_share": round(feed / max(epoch, 1e-9), 3)}


def device_copier() -> Callable[[np.ndarray, np.ndarray], None]:
    """Copy a batch to the default device and wait for it (JAX; torch; elsewhere the host copy)."""
    name = backend.backend_name()
    if name == "jax":
        import jax  # noqa: PLC0415 — the backend's own library, loaded with Keras already

        def copy(x: np.ndarray, y: np.ndarray) -> None:
            jax.block_until_ready(jax.device_put((x, y)))
        return copy
    if name == "torch":
        import torch  # noqa: PLC0415 — as above

        def copy_torch(x: np.ndarray, y: np.ndarray) -> None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
            torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
            if device == "cuda":
                torch.cuda.synchronize()
        return copy_torch
    return lambda x, y: (np.ascontiguousarray(x), np.ascontiguousarray(y)) and None


# ---------------------------------------------------------------- machine, report, docs


def say(text: str) -> None:
    print(text, flush=True)


def one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def machine() -> dict[str, Any]:
    keras = backend.load_keras()
    facts: dict[str, Any] = {"host": socket.gethostname(), "python": platform.python_version(),
                             "platform": platform.platform(), "cpu": backend.cpu_name(), "cores": os.cpu_count(),
                             "backend": backend.backend_name(), "keras": keras.__version__,
                             "devices": list(backend.devices()), "accelerators": list(backend.accelerators()),
                             "tensorflow_installed": _installed("tensorflow"),
                             "tensorboard_installed": _installed("tensorboard")}
    if backend.backend_name() == "jax":
        import jax  # noqa: PLC0415 — the backend's own library, loaded with Keras already

        facts["jax"] = jax.__version__
        facts["jax_devices"] = [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip() for d in jax.devices()]
    return facts


def _installed(package: str) -> bool:
    from importlib.util import find_spec  # noqa: PLC0415 — only the machine facts need it

    return find_spec(package) is not None


def skipped(facts: dict[str, Any]) -> list[str]:
    """What this check leaves out on this machine, and why."""
    notes = ["batch augmentation (rand_augment, random_erasing, mixup, cutmix): tf.data in "
             "core/data/feeding.augmented_batches needs TensorFlow; every config here has it off"]
    notes.append("TensorBoard event files: train() is called without log_dir"
                 + ("" if facts.get("tensorboard_installed") else " (tensorboard is not installed here)"))
    if not facts.get("accelerators"):
        notes.append("no accelerator: mixed_precision builds float32 on a CPU (precision_policy), so on/off match")
    return notes


def markdown(report: dict[str, Any]) -> str:
    facts = report["machine"]
    lines = [SECTION, "",
             f"Measured {report['date']} by `benchmarks/device_check.py{' --quick' if report['quick'] else ''}` "
             f"on {facts['host']} ({facts['cpu']}, {facts['cores']} cores); Keras {facts['keras']} on "
             f"{facts['backend']}{' ' + facts['jax'] if 'jax' in facts else ''}; devices: "
             f"{', '.join(facts.get('jax_devices') or facts['devices']) or 'none'}; whole run {report['seconds']:.0f} s.",
             "Rerun: `KERAS_BACKEND=jax python benchmarks/device_check.py --write-docs` (JSON beside it).", ""]
    parts = report["parts"]
    rows = parts.get("throughput", {}).get("result") or []
    if rows:
        lines += ["| architecture | images | batch | images/s (after the compile epoch) | first epoch |",
                  "| --- | --- | --- | --- | --- |"]
        for r in rows:
            shape = "x".join(str(s) for s in r["shape"])
            value = r.get("images_per_second", f"failed: {r.get('error')}")
            lines.append(f"| {r['architecture']} | {r['images']} × {shape} | {r['batch']} | {value} | "
                         f"{r.get('first_epoch_s', '')} s |")
        lines.append("")
    compare = parts.get("train_vs_fit", {}).get("result")
    if compare and "train" in compare:
        lines.append(f"- cnn-tui `train()` vs plain `model.fit` (seed_cnn, batch 256, {compare['epochs']} epochs, "
                     f"{compare['images']} images): {compare['train']['total_s']} s vs "
                     f"{compare['plain_fit']['total_s']} s whole ({compare['train_over_plain_time']}×), "
                     f"{compare['train']['images_per_second']} vs {compare['plain_fit']['images_per_second']} "
                     "images/s after the first epoch.")
    for r in parts.get("mixed_precision", {}).get("result") or []:
        lines.append(f"- mixed_precision {str(r['mixed_precision']).lower()} ({r['architecture']}, batch 256, "
                     f"{'x'.join(str(s) for s in r['shape'])}): policy {r.get('policy')}, "
                     f"{r.get('images_per_second', 'failed: ' + str(r.get('error')))} images/s.")
    pair = parts.get("concurrent_fits", {}).get("result")
    if pair and "pair_over_alone" in pair:
        lines.append(f"- 2 fits at once on one device ({pair['how']}, {pair['architecture']}, batch 64): {pair['pair_images_per_second']} "
                     f"images/s together vs {pair['alone_images_per_second']} alone ({pair['pair_over_alone']}×); "
                     f"the two whole fits took {pair['pair_wall_s']} s against {pair['alone_wall_s']} s for one.")
    band = parts.get("hyperband", {}).get("result")
    if band:
        lines.append(f"- hyperband, {band['combinations']} combinations × {band['cv']} folds, {band['epochs']} epochs, "
                     f"{band['images']} images: {band['status']} in {band['seconds']} s, {band['fits_ok']} fits "
                     f"({band['fits_per_minute']} a minute)"
                     + (f"; stopped at its {band['budget_s']:.0f} s budget." if band["stopped_at_budget"] else "."))
    share = parts.get("input_share", {}).get("result")
    if share:
        lines.append(f"- input pipeline ({share['architecture']}, batch {share['batch']}): making and copying an epoch's batches "
                     f"takes {share['feed_s']} s against {share['epoch_s']} s an epoch of fit "
                     f"(share {share['feed_share']}).")
    failed = [f"{name}: {part['error']}" for name, part in parts.items() if "error" in part]
    if failed:
        lines += ["", "Failed parts: " + "; ".join(failed) + "."]
    lines += ["", "Skipped: " + "; ".join(report["skipped"]) + ".", ""]
    return "\n".join(lines)


def write_docs(text: str, path: Path = DOCS) -> None:
    """Replace the ``### GPU`` section of ``path`` (up to the next heading of level 1 to 3) with
    ``text``, or add it at the end."""
    lines = path.read_text().splitlines()
    try:
        start = lines.index(SECTION)
    except ValueError:
        start = None
    if start is None:
        new = lines + [""] + text.splitlines()
    else:
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].startswith("#") and len(lines[i]) - len(lines[i].lstrip("#")) <= 3),
                   len(lines))
        new = lines[:start] + text.splitlines() + lines[end:]
    path.write_text("\n".join(new).rstrip("\n") + "\n")


PARTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "throughput": throughput, "train_vs_fit": train_vs_fit, "mixed_precision": mixed_precision,
    "concurrent_fits": concurrent_fits, "hyperband": hyperband, "input_share": input_share,
}


def default_out() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "device_check.json" if out else Path("device_check.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: about a minute on a CPU")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default $OUT/device_check.json)")
    parser.add_argument("--write-docs", action="store_true", help="replace the GPU section of docs/benchmarks.md")
    parser.add_argument("--only", default="", help=f"comma-separated parts: {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    # chosen here, not at import, so importing this module (its tests) leaves the backend alone;
    # Keras reads it when cnn_tui.core.backend first loads it, below
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sizes = SIZES["quick" if args.quick else "full"]
    chosen = [p.strip() for p in args.only.split(",") if p.strip()] or list(PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    started = time.perf_counter()
    facts = machine()
    say(f"backend {facts['backend']} (Keras {facts['keras']}); devices: "
        f"{', '.join(facts.get('jax_devices') or facts['devices'])}; TensorFlow installed: "
        f"{facts['tensorflow_installed']}")
    backend.set_seed(0)
    report: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                              "quick": args.quick, "sizes": {k: v for k, v in sizes.items() if k != "grid"},
                              "machine": facts, "skipped": skipped(facts), "parts": {}}
    out = args.out or default_out()
    for name in chosen:
        say(f"{name} ...")
        part_started = time.perf_counter()
        try:
            report["parts"][name] = {"result": PARTS[name](sizes)}
        except Exception as exc:  # one part's failure must not lose the others
            report["parts"][name] = {"error": one_line(exc), "traceback": traceback.format_exc(limit=6)}
            say(f"  {name} failed: {one_line(exc)}")
            backend.clear_session()
        report["parts"][name]["seconds"] = round(time.perf_counter() - part_started, 1)
        say(f"  {name}: {report['parts'][name]['seconds']} s")
        report["seconds"] = time.perf_counter() - started
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str))  # after every part: a kill keeps what was done
    text = markdown(report)
    say("")
    say(text)
    if args.write_docs:
        write_docs(text)
        say(f"wrote the GPU section of {DOCS}")
    say(f"results: {out}")
    return 1 if any("error" in p for p in report["parts"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
