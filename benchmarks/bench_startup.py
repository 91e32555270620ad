"""Start-up: ``cnn-tui --help`` and the TUI's first frame, in real processes.

The reference is ``python -c "import keras"``: what the seed app pays before it shows anything.
The TUI runs in a pseudo-terminal (120×36, TERM=xterm-256color) that answers the queries an
xterm answers (device attributes, cell size in pixels) and ignores the Kitty graphics query, as
xterm does; the clock stops when the main screen's text appears on the terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from benchmarks import common
from benchmarks.common import Figure

GROUP = "startup"
ROWS, COLUMNS = 36, 120
FIRST_FRAME_TEXT = "Data params"  # the Data view, shown first, always names the data params
READY_TEXT = "ready · m opens the menus"
ESCAPES = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|_[^\x1b]*\x1b\\|P[^\x1b]*\x1b\\|[()][A-Z0-9]|[=>78MDEc])")
# What an xterm-like terminal answers: primary device attributes (no Sixel) and the cell size.
ANSWERS = {b"\x1b[c": b"\x1b[?64;1;2;6;9;15;22c", b"\x1b[0c": b"\x1b[?64;1;2;6;9;15;22c",
           b"\x1b[16t": b"\x1b[6;20;10t"}


def cnn_tui_command() -> list[str]:
    script = Path(sys.executable).with_name("cnn-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cnn_tui"]


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CNN_TUI_", "TEXTUAL"))}
    env.update(TERM="xterm-256color", COLORTERM="truecolor", HOME=str(home), XDG_CACHE_HOME=str(home / "cache"),
               CNN_TUI_LOG=str(home / "tui.log"), COLUMNS=str(COLUMNS), LINES=str(ROWS))
    return env


def _answer(master: int, chunk: bytes, pending: bytes) -> bytes:
    """Answer the terminal queries found in ``pending + chunk``; return the unanswered tail."""
    buffer = pending + chunk
    for query, reply in ANSWERS.items():
        count = buffer.count(query)
        for _ in range(count):
            os.write(master, reply)
        if count:
            buffer = buffer.replace(query, b"")
    return buffer[-8:]


def first_frame(args: list[str], home: Path, cwd: Path, *, wait_keras: bool = False, timeout: float = 60,
                command: list[str] | None = None) -> dict[str, float]:
    """Start the TUI in a pseudo-terminal; seconds until the first frame shows (and, with ``wait_keras``,
    until the log says Keras is ready); then quit with q as a user would."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    started = time.perf_counter()
    proc = subprocess.Popen((command or cnn_tui_command()) + args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env=environment(home), start_new_session=True)
    os.close(slave)
    out = {}
    seen, pending = b"", b""
    log = home / "tui.log"
    try:
        deadline = started + timeout
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                pending = _answer(master, chunk, pending)
                if "frame" not in out:
                    seen += chunk
                    if FIRST_FRAME_TEXT.encode() in ESCAPES.sub(b"", seen):
                        out["frame"] = time.perf_counter() - started
            if "frame" in out and not wait_keras:
                break
            if wait_keras and "frame" in out and log.exists():
                match = re.search(r"Keras ready \((.*)\) ([0-9.]+)s after launch", log.read_text(errors="replace"))
                if match:
                    out["keras"] = time.perf_counter() - started
                    break
        if "frame" not in out:
            raise RuntimeError(f"no first frame within {timeout:.0f}s; terminal showed: "
                               f"{ESCAPES.sub(b'', seen)[-400:].decode(errors='replace')!r}")
        os.write(master, b"q")
        quit_deadline = time.perf_counter() + 20
        while proc.poll() is None and time.perf_counter() < quit_deadline:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    pass
        if proc.poll() is None:
            raise RuntimeError("the TUI did not quit on q")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return out


def run_process(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def run(ctx) -> list[Figure]:
    home = Path(tempfile.mkdtemp(prefix="cnn-tui-startup-"))
    try:
        return measure(ctx, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def measure(ctx, home: Path) -> list[Figure]:
    repeats = max(ctx.repeats, 3) if not ctx.quick else 2
    env = environment(home)
    figures: list[Figure] = []

    # --help against importing Keras (what the seed pays before it shows anything)
    import_keras = [sys.executable, "-c", "import keras"]
    help_times, keras_times = common.alternate(lambda: run_process(cnn_tui_command() + ["--help"], env),
                                               lambda: run_process(import_keras, env), repeats)
    figures.append(common.speedup(GROUP, "cnn-tui --help vs python -c 'import keras'", help_times, keras_times,
                                  op=None, note="real processes"))

    # first frame: an empty start, and the demo's params as `make run` opens them
    digits = common.demo_digits()
    app_input = digits.parent / "app_input"
    demo_args = ["--data", str(app_input / "digits_data_params.json"),
                 "--hyper", str(app_input / "digits_hyper_params.json")]
    cases = (("first frame of the TUI, no params", []), ("first frame of the TUI, demo params", demo_args))
    for name, args in cases:
        first_frame(args, home, home)  # untimed: files in the page cache, .pyc written
        times = [first_frame(args, home, home)["frame"] for _ in range(repeats)]
        figure = common.single(GROUP, name, common.median(times), "s", op="<=", target=0.5,
                               reference=common.median(keras_times),
                               note=f"pty {COLUMNS}×{ROWS}; min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
                                    "reference: import keras")
        figure.samples = {"ours": times}
        figures.append(figure)
        common.log(f"   {name}: {[round(t, 3) for t in times]}")

    # the floor: a minimal Textual app showing the same text, started the same way
    floor = [sys.executable, str(Path(__file__).with_name("textual_floor.py"))]
    first_frame([], home, home, command=floor)
    floor_times = [first_frame([], home, home, command=floor)["frame"] for _ in range(repeats)]
    ours_times = figures[-1].samples["ours"]
    figures.append(common.overhead(GROUP, "first frame, demo params vs a minimal Textual app (the floor)", ours_times, floor_times,
                                   note="header, one line, footer: what Textual itself needs to import and draw"))

    # Keras is imported in the background after the first frame
    timing = first_frame(demo_args, home, home, wait_keras=True, timeout=120)
    figures.append(common.single(GROUP, "Keras ready in the background after launch", timing["keras"], "s",
                                 reference=common.median(keras_times),
                                 note=f"first frame at {timing['frame'] * 1000:.0f} ms; the UI works meanwhile"))
    return figures
