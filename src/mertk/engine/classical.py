"""Folds of a classical model (registered with ``kind="classical"``, e.g. LBP-TOP + SVM).

A classical model is fitted, not trained by gradient: for every fold :func:`fit_folds`

1. chooses the hyper-parameters with :func:`select_hyperparameters`, which receives only the fold's
   training clips and their subjects: each candidate of the model's ``search`` is scored by
   subject-wise inner folds (``sklearn.model_selection.GroupKFold`` over the training subjects),
   and the candidate of highest pooled inner UAR (a MEGC metric) wins (ties: the first candidate);
2. fits the model with them on all training clips and predicts the test clips.

Descriptors (e.g. LBP-TOP histograms) are fixed functions of one clip with nothing fitted, so they
are computed once for every clip and candidate setting (``model.descriptors``, keyed by
``model.descriptor_key(candidate)``); only the rows of a fold's training clips reach its selection
and its fit. Each fold's history holds one row per candidate with its inner
score, the chosen one marked ``chosen: true``; ``results.json`` lists the chosen values per fold.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from ..progress import ProgressBar
from .protocols import Fold
from .train import FoldResult


def select_hyperparameters(model: Any, features: dict[tuple, np.ndarray], y: np.ndarray, groups: np.ndarray,
                           *, seed: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Choose among ``model.candidates()`` by subject-wise inner validation on TRAINING clips only.

    Args:
        model: the unfitted classical model (its ``candidates``, ``inner_folds``, ``with_hyperparameters``).
        features: ``{model.descriptor_key(candidate): (n, F)}`` descriptors of the fold's training clips only.
        y, groups: their classes and subjects.

    Returns:
        ``(chosen, rows)``: the chosen candidate and one row per candidate (its values, ``inner_uar``,
        ``inner_folds``, ``chosen``). With one candidate, or fewer than two training subjects, the
        first candidate is taken unscored (``inner_uar`` is ``None``).
    """
    from sklearn.model_selection import GroupKFold

    from .metrics import megc_metrics

    candidates = model.candidates()
    subjects = np.unique(groups)
    k = min(model.inner_folds, len(subjects))
    if len(candidates) == 1 or k < 2:
        return candidates[0], [{**candidates[0], "inner_uar": None, "inner_folds": 0, "chosen": True}]
    splits = list(GroupKFold(n_splits=k).split(np.zeros(len(y)), y, groups))
    classes = [str(c) for c in range(model.num_classes)]
    rows = []
    for cand in candidates:
        x = features[model.descriptor_key(cand)]
        pred = np.empty_like(y)
        for tr, va in splits:
            est = model.with_hyperparameters(**cand).fit(x[tr], y[tr], seed=seed)
            pred[va] = est.decision_function(x[va]).argmax(axis=1)
        rows.append({**cand, "inner_uar": megc_metrics(y, pred, classes)["uar"], "inner_folds": k, "chosen": False})
    best = int(np.argmax([r["inner_uar"] for r in rows]))
    rows[best]["chosen"] = True
    return candidates[best], rows


def fit_folds(model_name: str, model_kwargs: dict, clips: Sequence[np.ndarray], y: np.ndarray, groups: Sequence[str],
              folds: Sequence[Fold], *, seed: int = 0, progress: bool = True,
              on_fold_done: Callable[[FoldResult], None] | None = None,
              skip_folds: set[str] | frozenset[str] = frozenset()) -> list[FoldResult]:
    """Select, fit and predict every fold not in ``skip_folds`` (module docstring).

    Args:
        model_name, model_kwargs: a registered classical model.
        clips: one model input per sample (``clip_rgb`` uint8 clips); folds index into it.
        y: ``(N,)`` class indices; groups: the subject of every sample.
        folds: train/test sample positions (``val`` is not used: the inner folds replace it).

    Returns:
        The :class:`~mertk.engine.train.FoldResult` of each fitted fold (no state dict, epoch 0).
    """
    from ..models import create_model

    model = create_model(model_name, **model_kwargs)
    todo = [f for f in folds if f.name not in skip_folds]
    if not todo:
        return []
    y = np.asarray(y)
    groups = np.asarray(groups)
    features = model.descriptors(clips, progress=progress)
    results = []
    with ProgressBar(progress, len(todo), f"{model_name}: {len(todo)} folds (inner selection + fit)") as advance:
        for fold in todo:
            start = time.perf_counter()
            train, test = np.asarray(fold.train, dtype=np.int64), np.asarray(fold.test, dtype=np.int64)
            chosen, rows = select_hyperparameters(model, {k: v[train] for k, v in features.items()}, y[train],
                                                  groups[train], seed=seed)
            x = features[model.descriptor_key(chosen)]
            est = model.with_hyperparameters(**chosen).fit(x[train], y[train], seed=seed)
            probs = est.predict_proba(x[test])
            result = FoldResult(fold.name, test, probs, rows, time.perf_counter() - start, None)
            results.append(result)
            if on_fold_done is not None:
                on_fold_done(result)
            advance(1)
    return results


def chosen_hyperparameters(history: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The chosen candidate recorded in a fold's history (``None`` for a trained, not fitted, fold)."""
    for row in history:
        if row.get("chosen"):
            return {k: v for k, v in row.items() if k != "chosen"}
    return None
