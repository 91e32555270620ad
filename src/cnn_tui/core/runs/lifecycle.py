"""A run's lifecycle in the process that runs it, and the one place that decides how a run ended.

``RunSession`` is a run folder held by this process, from claim to release::

    with RunSession(run, spec.task, resumed=spec.resume, emit=emit) as session:
        outcome = execute(run, spec, emit=session.emit, ...)
        session.end(outcome.status, outcome.message, outcome.exit_code, outcome.details)

Entering claims the folder (its lock, and this process's identity in run.json),
starts the heartbeat and opens the events file; ``emit`` writes each event there
and hands it to the caller's. ``end`` writes how the run ended: the
``TaskFinished`` event, then run.json. Leaving ends a run that was not ended by
the exception that left the block (``ending_of``: a stop is ``stopped``, a user's
mistake ``failed`` with its one line, anything else a bug), then stops the
heartbeat, closes the events file and releases the lock, on every way out.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from cnn_tui.core import backend
from cnn_tui.core.errors import ResultsError, TaskStopped, UserError, disk_problem
from cnn_tui.core.events import Emit, Notice, TaskFinished, ignore
from cnn_tui.core.runs.events_file import EventWriter
from cnn_tui.core.runs.folder import HEARTBEAT_SECONDS, Run

EXIT_OK, EXIT_FAILED, EXIT_USER, EXIT_STOPPED = 0, 1, 2, 130
NO_ENDING = "the run's code returned without saying how the run ended"


def ending_of(exc: BaseException) -> tuple[str, str, int]:
    """The status, the one-line message and the exit code of a run that ended with ``exc``."""
    if isinstance(exc, (TaskStopped, KeyboardInterrupt)):
        return "stopped", str(exc) or "interrupted", EXIT_STOPPED
    if isinstance(exc, UserError):
        return "failed", str(exc), EXIT_USER
    if isinstance(exc, Exception) and (backend.is_out_of_memory(exc) or disk_problem(exc)):
        return "failed", backend.describe_failure(exc), EXIT_USER
    return "failed", backend.describe_failure(exc), EXIT_FAILED


def exit_code_of(status: str) -> int:
    """The exit code of a run that ended with ``status`` (when its process could not say: killed)."""
    return {"finished": EXIT_OK, "stopped": EXIT_STOPPED}.get(status, EXIT_FAILED)


class RunSession:
    """This process's hold on ``run`` while it runs ``task``: claimed, beating, its events written,
    ended once, released."""

    def __init__(self, run: Run, task: str, *, resumed: bool = False, emit: Emit = ignore,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.run = run
        self.task = task
        self.resumed = resumed
        self.heartbeat_seconds = heartbeat_seconds
        self._caller_emit = emit
        self._writer: EventWriter | None = None
        self.ending: tuple[str, str, int] | None = None  # (status, message, exit code) once ended

    def __enter__(self) -> RunSession:
        self.run.claim()  # RunBusy: another process holds it, there is nothing of ours to undo
        try:
            if self.resumed:  # written with the next heartbeat or the ending
                self.run.record["resumed"] = int(self.run.record.get("resumed") or 0) + 1
            self._writer = EventWriter(self.run.path)
            self.run.start_heartbeat(self.heartbeat_seconds)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def emit(self, event: Any) -> None:
        """Write ``event`` to the run's events file, then hand it to the caller."""
        if self._writer is not None:
            failed = self._writer.failed
            self._writer(event)
            if self._writer.failed and not failed:  # named once, to whoever follows this process
                why = disk_problem(self._writer.error) or str(self._writer.error)
                self._caller_emit(Notice(f"could not write {self._writer.path.name} ({why}); the run goes on, "
                                         "followers see no more of it", "warning"))
        self._caller_emit(event)

    def end(self, status: str, message: str, exit_code: int, details: dict[str, Any] | None = None) -> None:
        """Write how the run ended (once: a later call changes nothing)."""
        if self.ending is not None:
            return
        self.ending = (status, message, exit_code)
        try:
            # the event first: a follower stops reading once run.json says the run ended
            self.emit(TaskFinished(self.task, status, message, {"exit_code": exit_code, "run_dir": str(self.run.path)}))
        finally:
            try:
                self.run.finish(status, message, exit_code=exit_code, **(details or {}))
            except ResultsError as exc:  # even run.json cannot be written (a full disk): said on the terminal
                # (a detached run's is its run.log), and the caller's result still stands
                print(f"cnn-tui: {exc}; run {self.run.path.name} ended {status}"
                      f"{f': {message}' if message else ''}", file=sys.stderr, flush=True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if exc is not None:
                self.end(*ending_of(exc))
            elif self.ending is None:
                self.end("failed", NO_ENDING, EXIT_FAILED)
        finally:
            self.run.release()  # stops the heartbeat too
            if self._writer is not None:
                self._writer.close()
