"""What running a task as its own process costs, and how fast its events reach a follower.

- End to end, a 2-epoch training run on 8,000 28×28 PNGs through the run process
  (``control.prepare`` + ``launch`` + ``follow`` to its end: a detached process that
  claims its folder, beats, and writes every event to ``events.jsonl``) against the path
  runs took before, in-process (load, build, ``steps.train_run``), in a fresh Python process
  of its own. Both import Keras once, so the ratio is the cost of the run machinery.
- From starting a run to its ``TrainingStarted`` event (what a TUI that already has Keras
  waits for before the first epoch's progress shows: the new process imports Keras and
  loads the cached set itself).
- Follow latency: a writer process emits events at 20 a second, each stamped with its
  write time; ``control.follow`` in this process yields them; the delay from write to
  yield, p50/p95.
- Attach latency: the same writer, followed by the TUI (headless, 120×36) through
  ``TaskController.attach``: the delay from write to the line shown on the screen's status line (the
  notices' path; batch progress is held to ten updates a second on purpose).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks import common
from benchmarks.common import Figure

GROUP = "runs"
IMAGES = 8_000
EPOCHS = 2
HYPER = {"init_rate": 0.02, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
         "num_units": 512, "momentum": 0.9, "drop_out": 0.2, "epochs": EPOCHS, "batch_size": 64}

IN_PROCESS = textwrap.dedent("""
    import sys
    from cnn_tui.core.runs import steps
    from cnn_tui.core.params.files import DataParams, HyperParams
    from cnn_tui.core.runs.folder import Run
    data, hyper = DataParams.load(sys.argv[1]), HyperParams.load(sys.argv[2])
    images = steps.load_training_set(data)
    net = steps.new_model(data, hyper, images)
    run = Run.create(data.results_path, "train", command="bench")
    outcome = steps.train_run(net, images, data, hyper, validate=None, run=run)
    run.finish(outcome.status, outcome.message, **outcome.details)
    assert outcome.status == "finished", outcome.message
""")

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cnn_tui.core.events import Notice
    from cnn_tui.core.runs.events_file import EventWriter
    writer = EventWriter(Path(sys.argv[1]))
    for i in range(int(sys.argv[2])):
        writer(Notice(repr(time.time())))
        time.sleep(0.05)
    writer.close()
""")


def write_params(folder: Path, quick: bool) -> tuple[Path, Path]:
    root = common.synthetic_pngs(2_000 if quick else 20_000)
    count = 1_500 if quick else IMAGES
    # the first ``count`` files of each class folder, linked into a set of that size
    training = folder / "training"
    for class_dir in sorted((root / "training").iterdir()):
        target = training / class_dir.name
        target.mkdir(parents=True)
        for i, png in enumerate(sorted(class_dir.iterdir())):
            if i >= count // 10:
                break
            (target / png.name).symlink_to(png)
    data = folder / "data.json"
    data.write_text(json.dumps({"num_classes": 10, "train_dir": str(training), "test_dir": str(root / "testing"),
                                "image_size": 28, "color_mode": "grayscale", "result_dir": str(folder / "results")}))
    hyper = folder / "hyper.json"
    hyper.write_text(json.dumps(HYPER))
    return data, hyper


def run(ctx) -> list[Figure]:
    from cnn_tui.core.params.files import DataParams, HyperParams
    from cnn_tui.core.runs import control
    from cnn_tui.core.runs.execute import TaskSpec

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        folder = Path(tmp)
        data_path, hyper_path = write_params(folder, ctx.quick)
        data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
        first_event: list[float] = []

        def through_run_process() -> None:
            started = time.perf_counter()
            run = control.prepare(TaskSpec("train"), data, hyper, command="bench")
            proc = control.launch(run)
            for event in control.follow(run.path):
                if type(event).__name__ == "TrainingStarted":
                    first_event.append(time.perf_counter() - started)
            code = proc.wait()
            assert code == 0, (run.file("run.log").read_text()[-500:], code)

        def in_process() -> None:
            subprocess.run([sys.executable, "-c", IN_PROCESS, str(data_path), str(hyper_path)], check=True,
                           capture_output=True)

        count = 1_500 if ctx.quick else IMAGES
        common.log(f"   runs: {count} images 28x28, {EPOCHS} epochs, batch 64")
        t_ours, t_ref = common.alternate(through_run_process, in_process, ctx.repeats)
        figures.append(common.overhead(GROUP, f"2-epoch training run: run process vs in-process ({count:,} PNGs)",
                                       t_ours, t_ref, target=1.05))
        figures.append(common.single(GROUP, "start of a run → its TrainingStarted event (median)",
                                     common.median(first_event), "s",
                                     note="the run process imports Keras and reads the cached set itself"))
        figures += follow_latency(folder, 200 if not ctx.quick else 60)
        figures += asyncio.run(attach_latency(folder, 200 if not ctx.quick else 60))
    return figures


def follow_latency(folder: Path, count: int) -> list[Figure]:
    from cnn_tui.core.runs import events_file

    run_dir = folder / "latency"
    run_dir.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), str(count)])
    delays = []
    for event in events_file.follow(run_dir, alive=lambda: writer.poll() is None):
        delays.append(time.time() - float(event.text))
    writer.wait()
    delays.sort()
    p50 = delays[len(delays) // 2]
    p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
    return [
        common.single(GROUP, f"event written → read by a follower, p95 ({len(delays)} events)", p95 * 1000, "ms",
                      op="<=", target=200, note=f"p50 {p50 * 1000:.0f} ms; polls every 50 ms"),
    ]


def start_writer(run_dir: Path, count: int) -> subprocess.Popen:
    """A stand-in run: a process writing stamped notices, recorded in run.json as the run's process."""
    from datetime import datetime

    from cnn_tui.core.runs import processes

    run_dir.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), str(count)])
    record = {"run_id": run_dir.name, "task": "train", "status": "running", "started": datetime.now().isoformat(),
              **processes.identity(writer.pid)}
    (run_dir / "run.json").write_text(json.dumps(record))
    return writer


async def attach_latency(folder: Path, count: int) -> list[Figure]:
    from cnn_tui.tui.app import CnnApp

    run_dir = folder / "attached"
    app = CnnApp(warm_keras=False)
    delays: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        main = app.main
        await main.mount_views()
        shown = main.say

        def say(text: str, level: str = "info") -> None:
            shown(text, level)
            try:
                delays.append(time.time() - float(text))
            except ValueError:
                pass

        main.say = say  # the task controller reports through the screen's say
        writer = start_writer(run_dir, count)
        main.task_controller.attach(run_dir)
        deadline = time.monotonic() + 120
        while (writer.poll() is None or main.session.busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        writer.wait()
        await pilot.pause()
    delays.sort()
    if not delays:
        return []
    p50 = delays[len(delays) // 2]
    p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
    return [common.single(GROUP, f"event written → shown in the TUI attached to the run, p95 ({len(delays)} events)",
                          p95 * 1000, "ms", op="<=", target=200, note=f"p50 {p50 * 1000:.0f} ms")]
