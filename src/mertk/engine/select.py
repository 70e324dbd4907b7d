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
(:func:`~mertk.engine.grid.with_select_grid`: a key on the command line replaces the recipe's). The
chosen values and the inner scores of each fold are written to ``selection/<fold>.json`` in the run
directory (a seed ensemble's member: in its own folder) before the fold's file, and gathered into
``results.json``. Folds run one after another (:func:`train_selected`) or as Ray tasks
(``--workers``, :func:`mertk.engine.parallel.train_folds_ray`), each selecting and training its fold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np


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


@dataclass(frozen=True)
class Selection:
    """What nested selection needs beside the trainer's inputs: the outer clip folds by name, the
    samples, the clips' subjects and class indices, the class names, the grid's combinations
    (:func:`~mertk.engine.grid.parse_select_grid`), the inference rule, the seed of the inner splits and
    the folder of ``folds/`` and ``selection/`` (a run's, or a seed ensemble member's)."""

    clip_folds: Mapping[str, Any]
    samples: Any
    subjects: Sequence[str]
    y: np.ndarray
    classes: Sequence[str]
    combos: Sequence[dict[str, Any]]
    inference: str
    seed: int
    run_dir: Path


def select_and_train(model_name: str, kwargs: dict, x: Any, y_samples: Any, fold: Any, config: Any,
                     selection: Selection, init_state: dict | None = None) -> tuple[dict[str, Any], Any]:
    """Choose the values of sample fold ``fold`` on its inner validation subjects, train it with them and
    save the choice, then the fold file (so a fold file always has its choice); returns both."""
    from .rundir import save_choice, save_fold
    from .train import train_folds

    choice = select_for_fold(model_name, kwargs, x, y_samples, selection.clip_folds[fold.name], selection.samples,
                             selection.subjects, selection.y, selection.classes, config, selection.combos,
                             selection.inference, selection.seed, init_state)
    (result,) = train_folds(model_name, kwargs, x, y_samples, [fold], dataclasses.replace(config, **choice["chosen"]),
                            init_state=init_state, batched=False, progress=False)
    save_choice(selection.run_dir, fold.name, choice)
    save_fold(selection.run_dir / "folds", result)
    return choice, result


def train_selected(model_name: str, kwargs: dict, x: Any, y_samples: Any, todo: Sequence[Any], config: Any,
                   selection: Selection, init_state: dict | None = None, progress: bool = True) -> None:
    """Select and train every fold of ``todo`` one after another (see the module docstring; on Ray:
    :func:`mertk.engine.parallel.train_folds_ray` with ``selection``)."""
    from ..progress import ProgressBar

    label = f"{model_name}: {len(todo)} folds, {len(selection.combos)} combinations each"
    with ProgressBar(progress, len(todo), label) as advance:
        for fold in todo:
            select_and_train(model_name, kwargs, x, y_samples, fold, config, selection, init_state)
            advance(1)
