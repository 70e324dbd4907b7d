"""Files of a run directory that workers and resumes share: its name (:func:`run_dir_for`), one fold
file per finished fold and, with nested selection, one choice per fold (:func:`save_choice`), written
atomically (:func:`mertk.fileio.atomic_write`). Imported by the serial
runner, the Ray workers and nested selection alike, so it depends on no other part of the engine that trains."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write


def _safe_name(fold: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in fold)


def save_fold(folds_dir: Path, result: Any) -> Path:
    """Write one finished fold to ``folds/<fold>.npz`` atomically (temporary file, then rename)."""
    folds_dir.mkdir(parents=True, exist_ok=True)
    path = folds_dir / f"{_safe_name(result.fold)}.npz"
    buffer = io.BytesIO()
    np.savez(buffer, fold=np.array(result.fold), test_index=np.asarray(result.test_index, dtype=np.int64),
             probs=np.asarray(result.probs, dtype=np.float32),
             history=np.array(json.dumps(list(result.history), default=float)),
             seconds=np.array(float(result.seconds)),
             selected_epoch=np.array(int(getattr(result, "selected_epoch", 0) or 0)),
             **({"test_curve": np.asarray(result.test_curve, dtype=np.float16)}
                if getattr(result, "test_curve", None) is not None else {}))
    atomic_write(path, buffer.getvalue())
    return path


def save_choice(run_dir: Path, fold: str, choice: dict[str, Any]) -> Path:
    """Write nested selection's choice for ``fold`` to ``selection/<fold>.json`` atomically."""
    folder = Path(run_dir) / "selection"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe_name(fold)}.json"
    atomic_write(path, json.dumps({"fold": fold, **choice}, indent=2))
    return path


def load_choices(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Nested selection's choices of a run directory by fold name (a corrupt file is a DataError naming it)."""
    out: dict[str, dict[str, Any]] = {}
    folder = Path(run_dir) / "selection"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            raw = json.loads(path.read_text())
            out[raw.pop("fold")] = raw
        except (ValueError, KeyError, AttributeError) as exc:
            raise DataError(path, f"cannot read the fold's choice ({type(exc).__name__}); delete it and its fold "
                                  "file to select that fold again") from None
    return out


@dataclass
class SavedFold:
    fold: str
    test_index: np.ndarray
    probs: np.ndarray
    history: list[dict]
    seconds: float
    selected_epoch: int = 0
    test_curve: np.ndarray | None = None


def load_folds(folds_dir: Path) -> dict[str, SavedFold]:
    """The finished folds of a run directory (a corrupt file is a DataError naming it)."""
    out: dict[str, SavedFold] = {}
    for path in sorted(folds_dir.glob("*.npz")) if folds_dir.is_dir() else ():
        try:
            with np.load(path) as z:
                saved = SavedFold(str(z["fold"]), z["test_index"], z["probs"], json.loads(str(z["history"])),
                                  float(z["seconds"]), int(z["selected_epoch"]) if "selected_epoch" in z else 0,
                                  z["test_curve"].astype(np.float32) if "test_curve" in z else None)
        except Exception as exc:  # numpy/zipfile raise many types for a truncated file
            raise DataError(path, f"cannot read the fold file ({type(exc).__name__}: {exc}); delete it to retrain "
                                  "that fold") from None
        out[saved.fold] = saved
    return out


def run_dir_for(config: Any, out: Path) -> Path:
    """The run directory of a :class:`~mertk.engine.runconfig.RunConfig` under ``out``:
    ``<recipe>-<digest of the configuration>``."""
    return out / f"{config.recipe.name}-{config.digest()}"


def write_clips(path: Path, features: Any, y: Any, classes: Any) -> None:
    """Write ``clips.csv``: one row per clip the run used, in the run's order, so a report reads the
    run instead of re-running it. Columns: ``record_id``, ``dataset``, ``subject``, ``clip`` (as
    ``predictions.csv`` names it), ``label``, ``class_index`` and ``cache_key`` (the clip's entry in the
    feature cache; empty for a run without a cache)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("record_id", "dataset", "subject", "clip", "label", "class_index", "cache_key"))
    for feat, index in zip(features, y):
        r = feat.record
        clip = getattr(r, "clip", None) or getattr(r, "item", "")
        record_id = getattr(r, "key", None) or f"{r.dataset}/{getattr(r, 'item', '')}"
        writer.writerow((record_id, r.dataset, r.subject or "", clip, classes[int(index)], int(index), feat.key))
    atomic_write(path, buffer.getvalue())
