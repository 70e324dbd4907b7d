"""Errors that the command line turns into one line and exit code 2.

Every message names the file (and row, where there is one) and the problem, so a user can fix the
input without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MertkError(Exception):
    """Base class for user-facing errors (bad input, unknown names, missing files)."""


class DataError(MertkError):
    """A dataset file is missing, unreadable or malformed."""

    def __init__(self, path: str | Path | None, problem: str, *, row: int | str | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.row = row
        where = self.path or ""
        if row is not None:
            where = f"{where}, row {row}" if where else f"row {row}"
        super().__init__(f"{where}: {problem}" if where else problem)


class UnknownNameError(MertkError, KeyError):
    """A name that is not in a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PreprocessError(MertkError):
    """A preprocessing stage cannot work on its input (too few frames, mismatched sizes, no face...)."""


class ModelError(MertkError, ValueError):
    """A model was given an input that does not match its declared input spec, or a bad option."""
