"""MEGC metrics (SPEC section 5) and the ``mertk metrics PREDICTIONS.csv`` report.

MEGC scores a cross-validated run on the pooled predictions: TP, FP and FN of each class are summed
over all folds, then

- UF1 = mean over classes of F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c),
- UAR = mean over classes of recall_c = TP_c / (TP_c + FN_c).

This is not the mean of per-fold scores (a LOSO fold holds one subject and often lacks classes).

Classes that an evaluation set lacks (a composite's per-dataset rows, a single fold) are handled by
averaging each score over the classes where it is defined:

- F1_c is defined when class c has samples or predictions; a class predicted but absent from the
  truth has F1 = 0 and counts in UF1 (its false positives are an error);
- recall_c is defined when class c has samples; UAR averages over those;
- a class with neither samples nor predictions counts in neither and is listed in ``absent``.

MEGC 2019 scores each dataset over the classes present in it; on its data every dataset holds all
three classes, so the rule above gives the same numbers there and only states explicitly what
happens when a class is missing. Precision of a class that is never predicted is 0 by convention
(its F1 is 0 whenever it has samples).

STRCN's "F1-score" pools P and R over classes before combining them; for single-label predictions
that pooled F1 equals accuracy, so it is not reported separately.

scikit-learn is not a dependency; the confusion matrix is one ``np.add.at`` and the rest is arithmetic
on its rows and columns, so it is written here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, MertkError

REQUIRED_COLUMNS = ("dataset", "subject", "clip", "y_true", "y_pred")
PROB_PREFIX = "p_"
_INT = re.compile(r"[+-]?\d+")


class MetricsError(MertkError, ValueError):
    """Metrics were asked of inconsistent inputs (lengths differ, no samples, a label outside the classes)."""


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den > 0 else None


def sort_labels(labels: Sequence[Any]) -> list[str]:
    """Distinct labels as strings, sorted numerically when all are integers, else as text."""
    distinct = {str(label).strip() for label in labels}
    if distinct and all(_INT.fullmatch(label) for label in distinct):
        return sorted(distinct, key=lambda s: (int(s), s))
    return sorted(distinct)


def _check_classes(classes: Sequence[Any]) -> list[str]:
    names = [str(c).strip() for c in classes]
    if not names:
        raise MetricsError("no classes given")
    seen: set[str] = set()
    for name in names:
        if name == "" or name in seen:
            raise MetricsError(f"classes must be distinct non-empty names (got {', '.join(names)})")
        seen.add(name)
    return names


def megc_metrics(y_true: Sequence[Any], y_pred: Sequence[Any], classes: Sequence[str]) -> dict[str, Any]:
    """MEGC scores of pooled predictions (see the module docstring for absent classes).

    Labels are matched to ``classes`` by their string form (an int label ``2`` is class ``"2"``); map
    integer class indices to names first. Returns ``accuracy``, ``uf1``, ``uar``, ``macro_f1`` (= UF1),
    ``per_class`` ({class: precision, recall, f1, support, tp, fp, fn}; ``recall``/``f1`` are ``None``
    where undefined), ``confusion`` (rows = true, columns = predicted, in ``classes`` order),
    ``classes``, ``n``, ``uf1_classes`` / ``uar_classes`` (the classes each mean is over) and ``absent``.
    """
    names = _check_classes(classes)
    true = [str(v).strip() for v in y_true]
    pred = [str(v).strip() for v in y_pred]
    if len(true) != len(pred):
        raise MetricsError(f"{len(true)} true labels but {len(pred)} predictions")
    if not true:
        raise MetricsError("no predictions to score")
    index = {name: i for i, name in enumerate(names)}
    for what, values in (("true label", true), ("prediction", pred)):
        for i, value in enumerate(values):
            if value not in index:
                raise MetricsError(f"sample {i}: {what} {value!r} is not a class ({', '.join(names)})")
    ti = np.fromiter((index[v] for v in true), dtype=np.intp, count=len(true))
    pi = np.fromiter((index[v] for v in pred), dtype=np.intp, count=len(pred))
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(confusion, (ti, pi), 1)
    tp = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    fp, fn = predicted - tp, support - tp

    per_class: dict[str, dict[str, Any]] = {}
    f1s: list[float] = []
    recalls: list[float] = []
    uf1_classes, uar_classes, absent = [], [], []
    for c, name in enumerate(names):
        f1 = _ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c])
        recall = _ratio(tp[c], support[c])
        per_class[name] = {
            "precision": 0.0 if predicted[c] == 0 else float(tp[c]) / float(predicted[c]),
            "recall": recall,
            "f1": f1,
            "support": int(support[c]),
            "tp": int(tp[c]),
            "fp": int(fp[c]),
            "fn": int(fn[c]),
        }
        if f1 is None:
            absent.append(name)
        else:
            f1s.append(f1)
            uf1_classes.append(name)
        if recall is not None:
            recalls.append(recall)
            uar_classes.append(name)
    uf1 = float(np.mean(f1s))  # n > 0, so some class has samples: both means are over >= 1 class
    return {
        "n": len(true),
        "accuracy": float(tp.sum()) / len(true),
        "uf1": uf1,
        "uar": float(np.mean(recalls)),
        "macro_f1": uf1,
        "classes": names,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "uf1_classes": uf1_classes,
        "uar_classes": uar_classes,
        "absent": absent,
    }


def _source(df: pd.DataFrame) -> str | None:
    return df.attrs.get("path")


def _row(df: pd.DataFrame, position: int) -> int | str:
    """The CSV line of a row (header = line 1) when ``df`` came from :func:`read_predictions`."""
    return position + 2 if _source(df) is not None else str(df.index[position])


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions CSV; every problem is a one-line :class:`DataError`.

    Required columns: dataset, subject, clip, y_true, y_pred (names matched after stripping and
    lower-casing); optional: fold and probability columns ``p_<class>``. Cells are read as text, so
    int and string labels are treated alike; labels, ids and folds are stripped. Rejected: a missing
    file, an empty file or one with no rows, a missing column, an empty label/dataset/clip cell, a
    non-numeric probability, and a clip listed twice. The frame keeps the file in ``attrs["path"]``
    so later errors can name the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "predictions file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(path, "empty file: no header and no rows") from None
    except Exception as exc:  # pandas raises many types for a foreign or corrupt file
        raise DataError(path, f"cannot read as CSV ({type(exc).__name__}: {exc})") from None
    # fixed column names are matched case-insensitively; p_<class> keeps the class's spelling
    fixed = (*REQUIRED_COLUMNS, "fold")
    stripped = [str(c).strip() for c in frame.columns]
    frame.columns = [c.lower() if c.lower() in fixed else c for c in stripped]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}")
    if len(set(frame.columns)) != len(frame.columns):
        raise DataError(path, f"duplicate column names ({', '.join(map(str, frame.columns))})")
    if frame.empty:
        raise DataError(path, "no prediction rows (header only)")
    frame = frame.reset_index(drop=True)
    frame.attrs["path"] = str(path)
    text_columns = [*REQUIRED_COLUMNS, *(["fold"] if "fold" in frame.columns else [])]
    for column in text_columns:
        frame[column] = frame[column].str.strip()
    for column in ("dataset", "clip", "y_true", "y_pred"):
        empty = np.flatnonzero((frame[column] == "").to_numpy())
        if empty.size:
            raise DataError(path, f"empty {column}", row=_row(frame, int(empty[0])))
    for column in [c for c in frame.columns if c.startswith(PROB_PREFIX)]:
        values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            raise DataError(
                path, f"{column} is not a number: {frame[column].iloc[bad[0]]!r}", row=_row(frame, int(bad[0]))
            )
        numbers = values.to_numpy(dtype=float)
        outside = np.flatnonzero(~np.isfinite(numbers) | (numbers < 0) | (numbers > 1 + 1e-6))
        if outside.size:
            raise DataError(path, f"{column} must be a probability in [0, 1], got {frame[column].iloc[outside[0]]!r}",
                            row=_row(frame, int(outside[0])))
        frame[column] = values.astype(float)
    key = frame[["dataset", "subject", "clip"]]
    dup = np.flatnonzero(key.duplicated().to_numpy())
    if dup.size:
        j = int(dup[0])
        first = int(np.flatnonzero((key == key.iloc[j]).all(axis=1).to_numpy())[0])
        raise DataError(
            path,
            f"clip {frame['dataset'].iloc[j]}/{frame['subject'].iloc[j]}/{frame['clip'].iloc[j]} is listed twice "
            f"(first at row {_row(frame, first)})",
            row=_row(frame, j),
        )
    return frame


def probability_classes(df: pd.DataFrame) -> list[str]:
    """Class names of the ``p_<class>`` columns, in column order."""
    return [c[len(PROB_PREFIX):] for c in df.columns if c.startswith(PROB_PREFIX)]


def _resolve_classes(df: pd.DataFrame, classes: Sequence[str] | None) -> list[str]:
    if classes is not None:
        return _check_classes(classes)
    from_probs = probability_classes(df)
    if from_probs:
        return from_probs
    return sort_labels([*df["y_true"], *df["y_pred"]])


def metrics_report(df: pd.DataFrame, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`megc_metrics` over all rows plus ``per_dataset`` and, with a fold column, ``per_fold``.

    The class list is ``classes`` if given, else the ``p_<class>`` columns' classes in column order
    (the order the run wrote), else the sorted union of true and predicted labels (numerically when all
    are integers). A label outside the class list raises :class:`DataError` naming the file and row.
    Breakdowns are recomputed within each group's rows with the same class list, so a group lacking a
    class is scored as the module docstring says; each entry holds accuracy, uf1, uar, n and ``recall``
    per class (``None`` for a class without samples in the group).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(_source(df), f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")
    if df.empty:
        raise DataError(_source(df), "no prediction rows")
    names = _resolve_classes(df, classes)
    known = set(names)
    true = df["y_true"].astype(str).str.strip().to_numpy()
    pred = df["y_pred"].astype(str).str.strip().to_numpy()
    for column, values in (("y_true", true), ("y_pred", pred)):
        unknown = np.flatnonzero([v not in known for v in values])
        if unknown.size:
            i = int(unknown[0])
            raise DataError(
                _source(df), f"{column} {values[i]!r} is not a class ({', '.join(names)})", row=_row(df, i)
            )
    report = megc_metrics(true, pred, names)

    def breakdown(column: str) -> dict[str, dict[str, Any]]:
        groups = df[column].astype(str).str.strip().to_numpy()
        out = {}
        for group in sort_labels(groups):
            mask = groups == group
            m = megc_metrics(true[mask], pred[mask], names)
            out[group] = {"accuracy": m["accuracy"], "uf1": m["uf1"], "uar": m["uar"], "n": m["n"],
                          "absent": m["absent"], "uar_classes": m["uar_classes"],
                          "recall": {c: pc["recall"] for c, pc in m["per_class"].items()}}
        return out

    report["per_dataset"] = breakdown("dataset")
    if "fold" in df.columns:
        report["per_fold"] = breakdown("fold")
    return report


def metrics_command(path: Path, *, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """What ``mertk metrics PREDICTIONS.csv [--classes a,b,c]`` prints as JSON: :func:`metrics_report`
    of the file, plus ``path``."""
    df = read_predictions(path)
    try:
        report = metrics_report(df, classes)
    except MetricsError as exc:  # a bad --classes list: name the file it was meant for
        raise DataError(path, str(exc)) from None
    return {"path": str(path), **report}


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-align the first column, right-align the rest."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_metrics(report: dict[str, Any]) -> str:
    """A readable report: overall scores, per-class P/R/F1/support, per dataset (and fold), confusion."""
    names = report["classes"]
    lines = []
    if "path" in report:
        lines.append(f"predictions: {report['path']}")
    lines.append(
        f"overall ({report['n']} samples, {len(names)} classes): accuracy {_fmt(report['accuracy'])}  "
        f"UF1 {_fmt(report['uf1'])}  UAR {_fmt(report['uar'])}"
    )
    if report["absent"]:
        lines.append(f"classes with no samples and no predictions (left out of UF1/UAR): {', '.join(report['absent'])}")
    lines.append("")
    rows = [
        [name, _fmt(pc["precision"]), _fmt(pc["recall"]), _fmt(pc["f1"]), str(pc["support"])]
        for name, pc in report["per_class"].items()
    ]
    lines += _table(["class", "precision", "recall", "f1", "support"], rows)
    for key, title in (("per_dataset", "dataset"), ("per_fold", "fold")):
        groups = report.get(key)
        if not groups:
            continue
        if key == "per_fold" and len(groups) > 40:
            lines += ["", f"{len(groups)} folds: per-fold scores are in the JSON report (--json)"]
            continue
        lines.append("")
        rows = [[g, str(m["n"]), _fmt(m["accuracy"]), _fmt(m["uf1"]), _fmt(m["uar"])] for g, m in groups.items()]
        lines += _table([title, "n", "accuracy", "UF1", "UAR"], rows)
    lines.append("")
    lines.append("confusion matrix (rows = true, columns = predicted)")
    lines += _table(["true \\ pred", *names], [[name, *map(str, row)] for name, row in zip(names, report["confusion"])])
    return "\n".join(lines)
