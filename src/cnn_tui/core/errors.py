"""The one family of errors a user can cause.

Anything raised as a ``UserError`` is shown as a single line (CLI: stderr and
exit code 2; TUI: a notification), never as a traceback. Everything else is a
bug and is allowed to surface as one.
"""

from __future__ import annotations


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
