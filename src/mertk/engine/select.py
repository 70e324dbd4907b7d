"""Nested selection: trainer hyper-parameters chosen inside each outer fold, never by its test subjects.

For every outer fold, :func:`~mertk.engine.protocols.inner_validation` moves a share
(``train.val_fraction``) of the fold's *training* subjects into an inner validation set. Every
combination of the ``--select-grid`` values is trained on the remaining training subjects and scored
by UF1 on the inner validation clips (the first best combination wins a tie); the fold is then trained
on all its training subjects with the chosen values and predicts its test subjects. The outer test
samples are never given to the selection's trainer. This is what papers that pick each subject's best
test epoch should have done.

The grid takes ``train.*`` keys (the trainer's settings: ``train.lr``, ``train.epochs``...). It is
the recipe's ``select_grid`` (a list of ``train.KEY=V1,V2`` strings) merged with ``--select-grid``
(:func:`~mertk.engine.grid.with_select_grid`: a key on the command line replaces the recipe's). The chosen values and
the inner scores are written per fold to ``selection.json`` in the run directory (a seed ensemble's
member: in its own folder) and copied into ``results.json``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import MertkError
from .grid import parse_select_grid


def select_for_fold(model_name: str, kwargs: dict, x: Any, y_samples: Any, clip_fold: Any, samples: Any,
                    subjects: Sequence[str], y: np.ndarray, classes: Sequence[str], config: Any,
                    grid: Sequence[dict[str, Any]], inference: str, seed: int,
                    init_state: dict | None = None) -> dict[str, Any]:
    """Choose one combination of ``grid`` for ``clip_fold`` by UF1 on inner validation subjects.

    Returns ``{"chosen": values, "inner_uf1": [score per combination], "val_subjects": [...]}``.
    """
    from .metrics import megc_metrics
    from .protocols import Fold, inner_validation
    from .inputs import aggregate
    from .samples import sample_folds
    from .train import train_folds

    inner = inner_validation(clip_fold, subjects, fraction=config.val_fraction, seed=seed)
    (fold,) = sample_folds([Fold(f"{clip_fold.name}.select", inner.train, inner.val)], samples)
    owners = samples.owner[np.asarray(fold.test)]
    clips = list(dict.fromkeys(owners.tolist()))
    scores = []
    for values in grid:
        cfg = dataclasses.replace(config, **values, select="last")
        (result,) = train_folds(model_name, kwargs, x, y_samples, [fold], cfg, init_state=init_state,
                                batched=False, progress=False)
        pred = [aggregate(result.probs[owners == c], inference, samples.apex[np.asarray(fold.test)[owners == c]])[1]
                for c in clips]
        scores.append(float(megc_metrics([classes[y[c]] for c in clips], [classes[p] for p in pred],
                                         list(classes))["uf1"]))
    best = int(np.argmax(scores))
    return {"chosen": grid[best], "inner_uf1": scores,
            "val_subjects": sorted({str(subjects[i]) for i in inner.val})}


def train_selected(model_name: str, kwargs: dict, x: Any, y_samples: Any, clip_folds: Sequence[Any],
                   folds: Sequence[Any], todo: Sequence[Any], samples: Any, subjects: Sequence[str], y: np.ndarray,
                   classes: Sequence[str], config: Any, grid: Sequence[str], inference: str, seed: int,
                   run_dir: Path, init_state: dict | None = None, progress: bool = True) -> dict[str, Any]:
    """Select and train every fold of ``todo`` (see the module docstring); returns ``selection.json``.

    ``run_dir`` is the folder of ``selection.json`` and ``folds/`` (a run, or an ensemble member's folder)."""
    from ..progress import ProgressBar
    from ..fileio import atomic_write
    from .rundir import save_fold
    from .train import train_folds

    combos = parse_select_grid(grid)
    path = run_dir / "selection.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(path.read_text()) if path.is_file() else {}
    by_name = {f.name: f for f in clip_folds}
    with ProgressBar(progress, len(todo), f"{model_name}: {len(todo)} folds, {len(combos)} combinations each") as advance:
        for fold in todo:
            choice = select_for_fold(model_name, kwargs, x, y_samples, by_name[fold.name], samples, subjects, y,
                                     classes, config, combos, inference, seed, init_state)
            cfg = dataclasses.replace(config, **choice["chosen"])
            (result,) = train_folds(model_name, kwargs, x, y_samples, [fold], cfg, init_state=init_state,
                                    batched=False, progress=False)
            record[fold.name] = choice
            atomic_write(path, json.dumps(record, indent=2))
            save_fold(run_dir / "folds", result)
            advance(1)
    return {f.name: record.get(f.name) for f in folds}
