"""The one family of errors a user can cause.

Anything raised as a ``UserError`` is shown as a single line (CLI: stderr and
exit code 2; TUI: a notification), never as a traceback. Everything else is a
bug and is allowed to surface as one.
"""

from __future__ import annotations

import errno

# a write that failed because of the disk, not of the program or the memory: errno -> what it means
DISK_ERRNOS = {errno.ENOSPC: "the disk is full (No space left on device)",
               errno.EDQUOT: "the disk quota is used up (Disk quota exceeded)",
               errno.EROFS: "the file system is read-only (Read-only file system)"}
# the same, as TensorFlow's file system reports it: it keeps strerror's text, not the errno
# (ENOSPC and EDQUOT become RESOURCE_EXHAUSTED, the status TensorFlow also gives an exhausted GPU)
_DISK_TEXTS = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
               "Read-only file system": errno.EROFS}


class TaskStopped(Exception):
    """The user asked a task to stop; what was done so far is kept by the caller."""


class UserError(Exception):
    """A problem with the user's files, folders or values, explained in one line."""

    def __init__(self, message: str, *, path: object | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ParamsError(UserError):
    """A data-params or hyper-params file or value is wrong."""


class DatasetError(UserError):
    """An image folder cannot be used."""


class ModelError(UserError):
    """A model file cannot be loaded or does not fit the data."""


class ResultsError(UserError):
    """A results folder or file cannot be written."""


def disk_problem(exc: BaseException | None) -> str | None:
    """What ``exc`` (or an exception it was raised from) says is wrong with the disk: "the disk is
    full (No space left on device)", the quota, a read-only file system; None when it is not that."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return DISK_ERRNOS[exc.errno]
        text = str(exc)
        for words, number in _DISK_TEXTS.items():
            if words in text:
                return DISK_ERRNOS[number]
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
