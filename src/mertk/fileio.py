"""Atomic file writes shared by every floor of mertk: a file is written to a temporary name beside its
target and renamed over it, so a killed process never leaves a half-written file that a later run trusts.

    atomic_write(run_dir / "results.json", text)          # bytes or text
    with atomic_path(run_dir / "model.onnx") as tmp:     # for writers that take a path
        writer.save(tmp)
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | Path, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends it replaces ``path``, and when the block
    raises it is removed. The temporary name ends in ``.tmp``, or with ``keep_suffix`` in ``path``'s own
    suffix (for writers that choose the format by the extension, such as OpenCV's video writer)."""
    path = Path(path)
    suffix = f".tmp{path.suffix}" if keep_suffix else ".tmp"
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem if keep_suffix else path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8) atomically, flushed to disk; returns ``path``."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    return path
