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


def check_writable(path: str | Path, *, folder: bool) -> Path:
    """Refuse, before any work, an output ``path`` that cannot be written (a folder, or a file when
    ``folder`` is false): a file where a folder is needed, a read-only file system, no permission.

    Missing folders are fine (they are created when written); the nearest existing one is checked.
    A full disk cannot be seen up front: the command line reports that ``OSError`` when it happens.
    """
    import os

    path = Path(path).expanduser()
    if path.exists() and path.is_dir() != folder:
        raise DataError(path, "is a folder, a file is needed" if path.is_dir() else "is a file, not a folder")
    target = path if folder else path.parent
    existing = next(p for p in (target, *target.parents) if p.exists() or p == Path(p.anchor or "."))
    if existing.exists() and not existing.is_dir():
        raise DataError(path, f"cannot write here: {existing} is a file, not a folder")
    probe = path if path.exists() else existing
    if not os.access(probe, os.W_OK):
        readonly = hasattr(os, "statvfs") and os.statvfs(probe).f_flag & getattr(os, "ST_RDONLY", 1)
        raise DataError(path, f"cannot write here: {probe} is on a read-only file system" if readonly
                        else f"cannot write here: no permission to write {probe}")
    return path


def frame_size(height: int, width: int) -> str:
    """A frame size as every message prints it: width first, labelled (``640x480 (WxH)``)."""
    return f"{int(width)}x{int(height)} (WxH)"
