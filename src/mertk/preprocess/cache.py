"""Content-addressed cache for preprocessed features.

The key of an entry is the SHA-256 of a canonical JSON document holding the content hashes of every
input file, every parameter of the stages that ran, and ``PIPELINE_VERSION``; change any of them and
the key changes. Entries are ``.npz`` files written atomically (:func:`mertk.fileio.atomic_write`: a temporary file
in the same folder, then a rename), so a killed run never leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import MertkError
from ..fileio import atomic_write

# Bump when a stage's output changes for the same inputs and parameters.
# 2: grey frames reach the flow methods on 0..1 (were 0..255 read as 0..1)
# 3: strain from the unmasked flow; resized flows scale u, v by the resize ratios; HSI images of a clip share its peak
PIPELINE_VERSION = "3"


class CacheError(MertkError):
    """A cache entry or folder that cannot be read or written."""


@lru_cache(maxsize=65536)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (memoised per path, size and modification time)."""
    st = os.stat(path)
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


def _canonical(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _canonical(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return {"ndarray": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(), "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, float):
        return repr(value)  # exact, and distinguishes 1.0 from 1
    return value


def cache_key(*, inputs: Iterable[str | Path] = (), params: Mapping[str, Any] | None = None, version: str = PIPELINE_VERSION) -> str:
    """Key of an entry: content of every input file + every parameter + the pipeline version."""
    doc = {
        "version": version,
        "inputs": [file_digest(p) for p in inputs],
        "params": _canonical(dict(params or {})),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class FeatureCache:
    """A folder of ``.npz`` entries addressed by :func:`cache_key` (two-level fan-out by key prefix)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key`` or ``None``; an unreadable entry raises CacheError."""
        path = self.path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                out = {name: data[name] for name in data.files}
        except Exception as exc:
            raise CacheError(f"{path}: unreadable cache entry ({type(exc).__name__}: {exc}); delete it to rebuild") from None
        self.hits += 1
        return out

    def put(self, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Store ``arrays`` under ``key`` atomically and return the entry's path."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
        try:
            atomic_write(path, buffer.getvalue())
        except OSError as exc:
            if exc.filename is None:  # a full disk: name the entry
                raise OSError(exc.errno, exc.strerror, str(path)) from None
            raise
        return path

    def get_or_compute(self, key: str, compute) -> dict[str, np.ndarray]:
        """Cached arrays for ``key``, computing and storing them with ``compute()`` on a miss."""
        found = self.get(key)
        if found is not None:
            return found
        arrays = compute()
        self.put(key, arrays)
        return {k: np.asarray(v) for k, v in arrays.items()}
