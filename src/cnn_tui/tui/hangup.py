"""Leave promptly when the terminal goes away (SSH drop, closed window) or on SIGTERM.

Why this exists: Textual's ``LinuxDriver`` draws through a ``WriterThread``: ``driver.write()`` puts the
text on a queue of at most 30 items and the thread writes it to the terminal. When the terminal hangs up,
the thread's next write raises ``OSError`` (EIO) and the thread dies; the queue then fills and the next
``driver.write()`` (a frame, or the terminal restore in ``stop_application_mode``, or the ``put(None)`` of
``driver.close()``) blocks the event loop forever, so ``app.exit()`` never completes and the process
lingers. A terminal that stops reading without hanging up (a frozen link) blocks the same way.

What this module does, all behind one ``Guard`` per app run:

* ``GuardedDriver`` (a ``LinuxDriver``; ``launch`` makes it the app's driver class) hands the writer thread
  a file whose failed writes mark the terminal gone instead of killing the thread; once the terminal is
  gone every write is dropped, the input thread is told to stop (a hung-up tty reads as an endless EOF
  that it would spin on), ``stop_application_mode`` restores nothing, and ``close`` never waits long.
  While the terminal is alive its writes wait on the queue as before, but in short slices, so they give
  up as soon as it is known to be gone; once the app is leaving, a terminal that takes no output for
  ``LEAVING_WAIT_S`` (a frozen link) counts as gone too, so the normal exit is not held up by it.
* A daemon thread (the guardian) waits, with ``poll``, for the terminal to hang up (POLLHUP: noticed even
  when nothing is being drawn and no signal comes, e.g. a pty that is not the controlling terminal) and
  for SIGHUP/SIGTERM, whose handlers only write a byte to a pipe (they run in the main thread, perhaps
  while it is inside a lock, so they must not take any). SIGHUP counts as the terminal gone.
* Either one asks the app to leave normally, through the main screen's ``TaskController.hang_up`` (which
  stops an in-process task and quits when it is done), and arms the watchdog: if the process is still alive
  ``GRACE_S`` seconds later, whatever it is stuck on, the guardian logs the main thread's stack, flushes
  the logs and ends the process with ``os._exit(128 + signal)`` (129 for a hang-up, 143 for SIGTERM).
  A thread cannot act while another holds the GIL for good or once the interpreter is finalizing, so a
  kernel timer backs it up: SIGALRM, left at its default action, kills the process ``BACKSTOP_S`` later.
* Once the app has returned after a hang-up or SIGTERM, ``leave`` ends the process without the
  interpreter's finalization, which took up to 5 s with TensorFlow loaded on a busy 2-core machine and
  is where the watchdog cannot act; with Keras loaded it first joins the threads and runs the atexit
  handlers, under the watchdog (without, ``launch`` skips them on any quit).

Headless and web drivers (tests, ``textual serve``) keep the plain asyncio signal handlers.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import os
import queue
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any, NoReturn

from textual.app import App
from textual.drivers.linux_driver import LinuxDriver

GRACE_S = 5.0  # seconds from a hang-up or SIGTERM to the forced exit, if the normal one has not happened
WRITE_SLICE_S = 0.25  # a blocked write re-checks this often whether the terminal is gone
CLOSE_WAIT_S = 1.0  # how long close() waits for the writer thread once the terminal is gone
LEAVING_WAIT_S = 1.0  # leaving (hang-up, SIGTERM): a terminal that takes no output this long counts as gone
BACKSTOP_S = 2.0  # seconds after GRACE_S: SIGALRM kills the process if even the watchdog could not run

log = logging.getLogger("cnn_tui.tui")

_WAKE = 0  # guardian pipe bytes other than signal numbers: look at the state again
_CLOSE = 255  # the app has ended


class Guard:
    """Knows whether the terminal is gone; turns a hang-up or SIGTERM into a prompt, bounded exit."""

    def __init__(self) -> None:
        self.gone = threading.Event()  # the terminal is gone: draw nothing more
        self.driver: GuardedDriver | None = None
        self.ending: str | None = None  # the signal name we are leaving for
        self._code = 0
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: contextvars.Context | None = None
        self._on_hang_up: Callable[[str], Any] | None = None
        self._previous: dict[int, Any] = {}
        self._backstop = False  # SIGALRM may end the process (checked in ``watch``)
        self._wake_r, self._wake_w = os.pipe()  # kept for the life of the process (one app per process)
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------ setup (main thread, in the app's loop)

    def watch(self, on_hang_up: Callable[[str], Any]) -> None:
        """Call ``on_hang_up(signal_name)`` on the app's loop when the terminal goes or SIGHUP/SIGTERM come."""
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()  # the app's (Textual's active_app), as add_signal_handler would
        self._on_hang_up = on_hang_up
        self._backstop = hasattr(signal, "setitimer") and signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
        for sig in (getattr(signal, "SIGHUP", None), signal.SIGTERM):
            if sig is None:
                continue
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: the terminal is still watched
                break
        self._thread = threading.Thread(target=self._guard, name="cnn-tui-hangup", daemon=True)
        self._thread.start()
        if self.ending is not None:  # the terminal went before the app was mounted
            self._call_hang_up(self.ending)

    def close(self) -> None:
        """The app has returned: put the signal handlers back. A watchdog already armed stays armed."""
        if self._closed:
            return
        self._closed = True
        for sig, previous in self._previous.items():
            try:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
            except (ValueError, TypeError):
                pass
        self._previous.clear()
        self._poke(_CLOSE)

    # ------------------------------------------------------------ events (any thread)

    def _on_signal(self, signum: int, frame: object) -> None:
        # A Python signal handler runs in the main thread between two bytecodes, maybe while the main
        # thread holds a lock (a logging handler's, the writer queue's): take none, just wake the guardian.
        self._poke(signum)

    def _poke(self, byte: int) -> None:
        try:
            os.write(self._wake_w, bytes((byte,)))
        except OSError:  # a full pipe already holds a wake-up; a closed one: nobody is listening
            pass

    def terminal_gone(self, how: str) -> None:
        """No more drawing, then leave as on SIGHUP."""
        if self.gone.is_set():
            return
        self.gone.set()
        log.warning("terminal gone (%s): drawing stops", how)
        if self.driver is not None:
            self.driver.stop_input()
        self._end("SIGHUP")

    def _end(self, signal_name: str) -> None:
        with self._lock:
            if self.ending is not None:
                return
            self.ending = signal_name
            self._code = 128 + int(signal.Signals[signal_name])
            self._deadline = time.monotonic() + GRACE_S
        if self._backstop:  # any thread may arm it; SIGALRM's default action ends the process
            signal.setitimer(signal.ITIMER_REAL, GRACE_S + BACKSTOP_S)
        log.info("%s: leaving; the process ends within %gs at most", signal_name, GRACE_S)
        self._poke(_WAKE)  # the guardian now waits for the deadline
        self._call_hang_up(signal_name)

    def leave(self, code: int, *, clean_up: bool = True) -> NoReturn:
        """After the app has returned from a hang-up or SIGTERM: end the process, skipping the interpreter's
        finalization, where no thread can act any more. With ``clean_up``, first do what the interpreter
        does first when it exits, while the watchdog still watches: the threading atexit hooks (loky's
        executor shutdown among them) and the joins of the other threads, then the atexit handlers."""
        log.info("%s: the app has ended; exiting", self.ending)
        steps = (getattr(threading, "_shutdown", None), getattr(atexit, "_run_exitfuncs", None)) if clean_up else ()
        for step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception:  # noqa: BLE001  (the process is ending anyway)
                log.debug("exit step %s failed", step, exc_info=True)
        _flush_logs()
        os._exit(code)

    def _call_hang_up(self, signal_name: str) -> None:
        if self._loop is None or self._on_hang_up is None:
            return  # not watching yet: ``watch`` calls it
        try:
            self._loop.call_soon_threadsafe(self._on_hang_up, signal_name, context=self._context)
        except RuntimeError:  # the loop is closed: the app has already ended, the watchdog stays
            pass

    # ------------------------------------------------------------ the guardian thread

    def _guard(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        terminals = self._terminal_fds()
        for fd in terminals:
            poller.register(fd, 0)  # POLLHUP, POLLERR and POLLNVAL are always reported
        try:
            while True:
                deadline = self._deadline
                if deadline is None and self._closed:
                    return
                timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000) + 1)
                events = poller.poll(timeout)
                if deadline is not None and time.monotonic() >= deadline:
                    self._exit_now()
                for fd, mask in events:
                    if fd == self._wake_r:
                        for byte in os.read(self._wake_r, 64):
                            if byte not in (_WAKE, _CLOSE):
                                name = signal.Signals(byte).name
                                if byte == getattr(signal, "SIGHUP", None):
                                    self.terminal_gone("SIGHUP")
                                self._end(name)
                    elif mask & (select.POLLHUP | select.POLLERR):
                        poller.unregister(fd)
                        self.terminal_gone("it hung up")
                    else:  # POLLNVAL: cannot happen with our own descriptors; stop watching it
                        poller.unregister(fd)
        finally:  # the wake-up pipe stays open: a late poke must never write into a reused descriptor
            for fd in terminals:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _terminal_fds(self) -> list[int]:
        """Our own copies of the terminal's descriptors (stdin and the one Textual draws on), so none is
        closed or reused under the poll."""
        fds = [0]
        if self.driver is not None:
            try:
                fds.append(self.driver.output_fileno())
            except (OSError, ValueError, AttributeError):
                pass
        own = []
        for fd in dict.fromkeys(fds):
            try:
                if os.isatty(fd):
                    own.append(os.dup(fd))
            except OSError:
                pass
        return own

    def _exit_now(self) -> None:
        main = sys._current_frames().get(threading.main_thread().ident or -1)
        stack = "".join(traceback.format_stack(main)[-8:]) if main is not None else "(gone)\n"
        log.error("%s: still running %gs later; ending the process now. Main thread:\n%s",
                  self.ending, GRACE_S, stack.rstrip())
        _flush_logs()
        os._exit(self._code)


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # noqa: BLE001
            pass


class _TerminalOutput:
    """The file Textual's writer thread writes to: a failed write (EIO, EPIPE: the terminal is gone) marks
    the terminal gone instead of killing the thread, and nothing is written once it is gone."""

    def __init__(self, file: IO[str], guard: Guard) -> None:
        self._file = file
        self._guard = guard

    def write(self, text: str) -> int:
        if not self._guard.gone.is_set():
            try:
                return self._file.write(text)
            except (OSError, ValueError) as error:  # ValueError: the file was closed
                self._guard.terminal_gone(f"writing failed: {error}")
        return len(text)

    def flush(self) -> None:
        if not self._guard.gone.is_set():
            try:
                self._file.flush()
            except (OSError, ValueError) as error:
                self._guard.terminal_gone(f"writing failed: {error}")

    def fileno(self) -> int:
        return self._file.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class GuardedDriver(LinuxDriver):
    """Textual's Linux driver, made unable to block on a terminal that is gone (see the module docstring).

    It uses two private attributes of Textual 8's LinuxDriver and WriterThread: ``_file`` (what the writer
    thread writes to) and the writer thread's ``_queue``; without the latter it writes as LinuxDriver does.
    """

    guard: Guard  # set on the subclass ``guard_terminal`` makes

    def __init__(self, app: App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard.driver = self
        self._file = _TerminalOutput(self._file, self.guard)

    def output_fileno(self) -> int:
        return self._file.fileno()

    def stop_input(self) -> None:
        """Any thread: end the input thread (a hung-up tty is always readable, with nothing to read)."""
        self.exit_event.set()

    def write(self, data: str) -> None:
        if self.guard.gone.is_set():
            return
        writer = self._writer_thread
        assert writer is not None, "Driver must be in application mode"
        put = getattr(getattr(writer, "_queue", None), "put", None)
        if put is None:
            writer.write(data)
            return
        waited = 0.0
        while True:
            try:
                put(data, timeout=WRITE_SLICE_S)
                return
            except queue.Full:  # a slow or stuck terminal
                waited += WRITE_SLICE_S
                if self.guard.gone.is_set():
                    return
                if not writer.is_alive():
                    self.guard.terminal_gone("the writer thread died")
                    return
                if self.guard.ending is not None and waited >= LEAVING_WAIT_S:
                    self.guard.terminal_gone(f"it took no output for {waited:.0f}s while we leave")
                    return

    def stop_application_mode(self) -> None:
        if self.guard.gone.is_set():
            self.disable_input()  # writes nothing now; the terminal's settings cannot be restored
            return
        super().stop_application_mode()

    def close(self) -> None:
        writer = self._writer_thread
        if writer is None:
            return
        self.write(None)  # type: ignore[arg-type]  # the writer thread's end marker, like WriterThread.stop
        waited = 0.0
        while writer.is_alive() and not self.guard.gone.is_set():
            writer.join(WRITE_SLICE_S)
            waited += WRITE_SLICE_S
            if self.guard.ending is not None and waited >= LEAVING_WAIT_S and writer.is_alive():
                self.guard.terminal_gone(f"it took no output for {waited:.0f}s while we leave")
        if self.guard.gone.is_set():
            try:
                writer._queue.put_nowait(None)  # type: ignore[attr-defined]
            except (queue.Full, AttributeError):
                pass  # the thread drops what is queued and then blocks on get(): it is a daemon thread
            writer.join(CLOSE_WAIT_S)


def guard_terminal(app: App) -> Guard | None:
    """Make ``app`` draw through a ``GuardedDriver``; None where it would not use Textual's LinuxDriver."""
    if app.driver_class is not LinuxDriver:
        return None
    guard = Guard()
    app.driver_class = type("GuardedDriver", (GuardedDriver,), {"guard": guard})
    return guard


def watch(app: App, on_hang_up: Callable[[str], Any]) -> None:
    """From the app's loop, once mounted: SIGHUP, SIGTERM or a hung-up terminal call ``on_hang_up(name)``."""
    guard = getattr(getattr(app, "_driver", None), "guard", None)
    if isinstance(guard, Guard):
        guard.watch(on_hang_up)
        return
    loop = asyncio.get_running_loop()  # no terminal of ours to lose: plain handlers, no watchdog
    for sig in (getattr(signal, "SIGHUP", None), signal.SIGTERM):
        if sig is None:
            continue
        try:
            loop.add_signal_handler(sig, on_hang_up, signal.Signals(sig).name)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
            return
