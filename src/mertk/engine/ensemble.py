"""Seed ensembles (a recipe's ``ensemble.seeds``): every fold trained once per seed, probabilities averaged.

A member is the run's trainer with its ``seed`` replaced; its fold files lie in
``members/seed-<S>/folds/`` of the run directory (with nested selection, its ``selection/`` beside
them), so a killed ensemble resumes member by member and fold by fold. The ensemble's probabilities
for a test sample are the mean of its members' (:func:`average_folds`); the clip's aggregation (a
per-frame vote, ten crops) then runs on that mean exactly as for one model. ``results.json`` holds the
ensemble's figures as the run's and, under ``ensemble``, every member's with their mean ± standard
deviation (:func:`member_summary`), so a reader sees both the spread over seeds and the ensemble's gain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import MertkError
from .rundir import SavedFold

#: the figures summarised over members, overall and per dataset
SUMMARY_METRICS = ("uf1", "uar", "accuracy")


def member_dir(run_dir: Path, seed: int) -> Path:
    """The folder of the member trained with ``seed``: its ``folds/``, ``predictions.csv``, ``selection/``."""
    return Path(run_dir) / "members" / f"seed-{seed}"


def average_folds(members: Sequence[Mapping[str, SavedFold]]) -> dict[str, SavedFold]:
    """One :class:`SavedFold` per fold whose probabilities (and per-epoch test curve, when every member
    recorded one) are the mean of the members'. The history is the first member's, the time the sum,
    the selected epoch the members' median.

    Raises:
        MertkError: the members did not test the same samples of a fold (not one run's members).
    """
    first = members[0]
    out: dict[str, SavedFold] = {}
    for name, saved in first.items():
        folds = [m[name] for m in members]
        if any(not np.array_equal(f.test_index, saved.test_index) for f in folds):
            raise MertkError(f"ensemble: the members tested different samples in fold {name}")
        curves = [f.test_curve for f in folds]
        epochs = [f.selected_epoch for f in folds if f.selected_epoch]
        out[name] = SavedFold(
            fold=name, test_index=saved.test_index,
            probs=np.mean([f.probs for f in folds], axis=0).astype(np.float32),
            history=saved.history, seconds=float(sum(f.seconds for f in folds)),
            selected_epoch=int(np.median(epochs)) if epochs else 0,
            test_curve=None if any(c is None for c in curves) else np.mean(curves, axis=0).astype(np.float32))
    return out


def _mean_std(values: Sequence[float]) -> dict[str, float | None]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def member_summary(seeds: Sequence[int], reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``results.json``'s ``ensemble`` entry from every member's metrics report (in ``seeds`` order).

    Returns ``{"seeds", "members": [{"seed", "folder", "metrics", "report"}], "member_mean": {metric:
    {"mean", "std"}}, "member_mean_per_dataset": {dataset: {metric: {"mean", "std"}}}}``; ``std`` is
    the sample standard deviation over the members.
    """
    members = [{"seed": int(s), "folder": f"members/seed-{s}",
                "metrics": {k: r[k] for k in (*SUMMARY_METRICS, "macro_f1", "n") if k in r}, "report": {k: v for k, v in r.items() if k != "per_fold"}}
               for s, r in zip(seeds, reports)]
    per_dataset: dict[str, dict[str, dict[str, float | None]]] = {}
    for name in dict.fromkeys(n for r in reports for n in (r.get("per_dataset") or {})):
        for k in SUMMARY_METRICS:
            values = [r["per_dataset"][name][k] for r in reports
                      if name in (r.get("per_dataset") or {}) and r["per_dataset"][name].get(k) is not None]
            if values:
                per_dataset.setdefault(name, {})[k] = _mean_std(values)
    return {"seeds": [int(s) for s in seeds], "members": members,
            "member_mean": {k: _mean_std([r[k] for r in reports]) for k in SUMMARY_METRICS},
            "member_mean_per_dataset": per_dataset}
