"""Responsiveness of the TUI while it works, and the cost of training through it.

The app runs headless (``run_test``, 120×36) on the demo digits and is driven by its own keys:
Keras warming up after the first frame, loading the training set (l), training (i, t) and a
small tuning grid (u). While each runs, a Textual ``set_interval`` timer ticking every 10 ms
records how late each tick fires (the gap to the previous tick minus 10 ms): p99 and max per
phase. Training through the TUI (its worker, events and widgets) is compared with a plain
``model.fit`` of the same model on the same arrays and batch size, alternating, epoch by epoch.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import Figure

GROUP = "responsiveness"
TICK = 0.010
LAG_P99, LAG_MAX = 0.050, 0.150
SIZE = (120, 36)


class LagProbe:
    """A Textual interval timer on the app; ``lags`` holds how late each tick came (seconds)."""

    def __init__(self, app: Any) -> None:
        self.lags: list[float] = []
        self.previous: float | None = None
        self.timer = app.set_interval(TICK, self.tick, pause=True)

    def tick(self) -> None:
        now = time.perf_counter()
        if self.previous is not None:
            self.lags.append(max(0.0, now - self.previous - TICK))
        self.previous = now

    def start(self) -> None:
        self.lags, self.previous = [], None
        self.timer.resume()

    def stop(self) -> list[float]:
        self.timer.pause()
        return self.lags


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def write_params(folder: Path, digits: Path, *, epochs: int) -> tuple[Path, Path, Path]:
    results = folder / "results"
    data = {"num_classes": 10, "train_dir": str(digits / "training"), "test_dir": str(digits / "testing"),
            "image_size": 16, "result_dir": str(results)}
    base = {"init_rate": 0.01, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
            "num_units": 256, "momentum": 0.9, "drop_out": 0.2, "batch_size": 32}
    tune = {**base, "num_filters": [16, 32], "epochs": 1, "batch_size": 64}
    common.write_json(folder / "data.json", data)
    common.write_json(folder / "hyper.json", {**base, "epochs": epochs})
    common.write_json(folder / "tune.json", tune)
    return folder / "data.json", folder / "hyper.json", folder / "tune.json"


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        await asyncio.sleep(0.02)


async def run_phase(pilot: Any, probe: LagProbe | None, key: str, what: str, timeout: float = 900) -> list[float]:
    """Press ``key`` and record the lag (unless ``probe`` is None) until the task it starts has ended
    and what it shows is drawn."""
    main = pilot.app.main
    before = len(main.messages)
    if probe is not None:
        probe.start()
    await pilot.press(key)
    started = lambda: main.session.busy is not None or any(level == "success" for level, _ in list(main.messages)[before:])  # noqa: E731
    try:
        await wait_until(started, 10, f"{what} to start")
    except TimeoutError:
        raise RuntimeError(f"{what} did not start: {[text for _, text in list(main.messages)[before:]]}") from None
    await wait_until(lambda: main.session.busy is None, timeout, f"{what} to end")
    await pilot.pause()
    return probe.stop() if probe is not None else []


def plain_fit_epochs(net: Any, images: Any, batch_size: int, epochs: int) -> list[float]:
    """``model.fit`` with nothing but a timer: seconds of each epoch."""
    from cnn_tui.core import backend

    keras = backend.load_keras()
    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds.append(time.perf_counter() - self.started)

    net.keras_model.fit(images.x, images.y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
                        callbacks=[Timer()])
    return seconds


def steady(seconds: list[float]) -> float:
    """The median epoch time without the first epoch (which traces and compiles the step)."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


async def measure(ctx: Any, folder: Path) -> list[Figure]:
    from cnn_tui.core.params.files import DataParams, HyperParams
    from cnn_tui.core.runs import steps
    from cnn_tui.tui.app import CnnApp

    epochs = 3 if ctx.quick else 8
    data_path, hyper_path, tune_path = write_params(folder, common.demo_digits(), epochs=epochs)
    app = CnnApp(data=data_path, hyper=hyper_path, warm_keras=True)
    lags: dict[str, list[float]] = {}
    ours: list[float] = []
    reference: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        probe = LagProbe(app)
        await wait_until(lambda: main.session.data is not None and main.session.hyper is not None, 30, "the params")

        # Keras imported in the background after the first frame, then the decoding pool started
        probe.start()
        await wait_until(lambda: main.device_label != "loading Keras…", 300, "Keras")
        await asyncio.sleep(1.0)  # the pool warm-up that follows
        lags["Keras warm-up after the first frame"] = probe.stop()
        if main.session.keras_error:
            raise RuntimeError(main.session.keras_error)

        lags["loading the demo digits' training set (l)"] = await run_phase(pilot, probe, "l", "loading")
        images = main.session.train_set
        batch_size = main.session.hyper.first().batch_size

        # training through the TUI and plain model.fit, alternating. Round 0 (the session's first
        # training, as a user meets it) records the lag and is not timed; the timed rounds run
        # without the 10 ms timer, which would otherwise add its own wake-ups to ours.
        training_lags: list[float] = []
        for round_ in range(ctx.repeats + 1):
            order = ("tui", "plain") if round_ % 2 == 0 else ("plain", "tui")
            for side in order:
                if side == "tui":
                    await run_phase(pilot, None if round_ else probe, "i", "initialising the model")
                    phase = await run_phase(pilot, None if round_ else probe, "t", "training")
                    if round_:
                        ours.append(steady(main.session.history["seconds"]))
                    else:
                        training_lags = phase
                else:
                    net = steps.new_model(main.session.data, main.session.hyper, images)
                    seconds = plain_fit_epochs(net, images, batch_size, epochs)
                    if round_:
                        reference.append(steady(seconds))
        lags[f"first training of the session, {epochs} epochs (t)"] = training_lags
        common.log(f"   epoch seconds, TUI: {[round(t, 3) for t in ours]}, plain: {[round(t, 3) for t in reference]}")

        main.session.set_hyper(HyperParams.load(tune_path))
        main.refresh_state()
        lags["tuning, 2 combinations × 3 folds (u)"] = await run_phase(pilot, probe, "u", "tuning")
        if main.session.tuning is None or main.session.tuning.status != "finished":
            raise RuntimeError("tuning did not finish")

        # a folder big enough that loading it is something a user waits for
        pngs = common.synthetic_pngs(2_000 if ctx.quick else 20_000)
        big = {"num_classes": 10, "train_dir": str(pngs / "training"), "test_dir": str(pngs / "testing"), "image_size": 28}
        common.write_json(folder / "big.json", big)
        main.session.set_data(DataParams.load(folder / "big.json"))
        main.refresh_state()
        count = sum(1 for _ in (pngs / "training").rglob("*.png"))
        lags[f"loading {count:,} PNGs 28x28, not cached (l)"] = await run_phase(pilot, probe, "l", "loading")

    figures = []
    for phase, values in lags.items():
        p99, worst = percentile(values, 0.99), max(values, default=float("nan"))
        note = f"{len(values)} ticks of {TICK * 1000:.0f} ms; max {worst * 1000:.0f} ms (target ≤ {LAG_MAX * 1000:.0f} ms)"
        figures.append(common.single(GROUP, f"event-loop lag p99: {phase}", p99, "s", op="<=", target=LAG_P99,
                                     note=note))
        figures.append(common.single(GROUP, f"event-loop lag max: {phase}", worst, "s", op="<=", target=LAG_MAX,
                                     note=f"p50 {percentile(values, 0.5) * 1000:.1f} ms"))
    figures.append(common.overhead(GROUP, "epoch time: training in the TUI vs plain model.fit", ours, reference,
                                   target=1.10, note=f"demo digits 16×16, batch {batch_size}, median of epochs "
                                                      f"2–{epochs} per run; same process, alternating"))
    return figures


def run(ctx: Any) -> list[Figure]:
    folder = Path(tempfile.mkdtemp(prefix="cnn-tui-responsiveness-"))
    os.environ["CNN_TUI_CACHE"] = "0"  # loading decodes the images every time
    try:
        return asyncio.run(measure(ctx, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
