"""``mertk compare``: runs side by side, as the papers print them.

Rows are methods (recipe / model and the ``--set`` overrides that tell the runs apart), columns are
each dataset of the per-dataset breakdown plus the composite overall, each with UF1, UAR and accuracy.
The table holds the honest figures (the run's protocol: last epoch or an inner validation split).
The inflated "best test epoch" figure that many papers print is shown only in a separate, labelled
table, and only where the run recorded per-epoch test predictions (``train.test_curve``); otherwise
it says "not recorded".

A per-class table gives each class's recall, overall and per dataset, which is where a run's UF1
and UAR are won or lost. A seed ensemble (``ensemble.seeds``) is followed, in both tables, by one row
per seed, and the honest table adds the seeds' mean ± standard deviation. Runs with the ``leave_one_dataset_out`` protocol also get a per-held-out-dataset table: one line per
run and held-out dataset (each tested by the model trained on the other datasets), with its clips and
UF1, UAR and accuracy, then the run's overall line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import MertkError, check_writable
from .analysis import load_run, recipe_overrides

METRICS = (("UF1", "uf1"), ("UAR", "uar"), ("Acc", "accuracy"))
NOT_RECORDED = "not recorded"
LODO = "leave_one_dataset_out"


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def _fmt_spread(value: dict[str, Any] | None) -> str:
    if not value:
        return "-"
    return _fmt(value["mean"]) + ("" if value.get("std") is None else f" ± {value['std']:.4f}")


def compare(run_dirs: Sequence[str | Path]) -> dict[str, Any]:
    """Collect the figures of several run directories.

    Returns:
        ``{"datasets": [... , "overall"], "runs": [{"run_dir", "label", "recipe", "model", "sets",
        "distinguishing", "classes", "protocol", "scores": {dataset: {"uf1", "uar", "accuracy", "n"}},
        "held_out": {dataset: {...}} (leave-one-dataset-out runs: the per-fold figures, one fold per
        held-out dataset) | None, "recall": {dataset | "overall": {class: recall}}},
        "inflated": {"uf1", "uar", "accuracy", "epochs", "label"} | None, "members": [{"seed", "scores",
        "recall"}] (a seed ensemble's members; else empty), "member_mean": {dataset | "overall": {metric:
        {"mean", "std"}}} | None}], "notes": [...]}``.

    Raises:
        DataError: a folder is not a run directory (no ``results.json``).
        MertkError: no run, or one run directory given twice.
    """
    if not run_dirs:
        raise MertkError("compare: give at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    seen: dict[Path, str] = {}
    for run, given in zip(runs, run_dirs):
        key = run.run_dir.resolve()
        if key in seen:
            raise MertkError(f"compare: {given} is the same run directory as {seen[key]}")
        seen[key] = str(given)
    rows = []
    datasets: list[str] = []
    for run in runs:
        r = run.results
        _name, sets = recipe_overrides(run.config.recipe.to_dict()) if run.config is not None else (None, [])
        scores = _scores(r.get("report") or {}, r["metrics"])
        datasets += [name for name in scores if name != "overall" and name not in datasets]
        ensemble = r.get("ensemble") or None
        members = [{"seed": m["seed"], "scores": _scores(m["report"], m["metrics"]), "recall": _recalls(m["report"])}
                   for m in (ensemble or {}).get("members", [])]
        inflated = r.get("best_test_epoch_inflated") or None
        held_out = None
        if r.get("protocol") == LODO:
            held_out = {name: {k: v.get(k) for _, k in METRICS} | {"n": v.get("n")}
                        for name, v in (r.get("report", {}).get("per_fold") or {}).items()}
        rows.append({"run_dir": str(run.run_dir), "recipe": r.get("recipe"), "model": r.get("model"), "sets": sets,
                     "classes": list(r.get("classes") or []), "scores": scores, "inflated": inflated,
                     "selection": r.get("selection"), "protocol": r.get("protocol"), "held_out": held_out,
                     "recall": _recalls(r.get("report") or {}), "members": members,
                     "member_mean": None if ensemble is None else
                     {**ensemble.get("member_mean_per_dataset", {}), "overall": ensemble["member_mean"]}})
    common = set.intersection(*(set(row["sets"]) for row in rows)) if rows else set()
    labels: dict[str, int] = {}
    for row in rows:
        row["distinguishing"] = [s for s in row["sets"] if s not in common]
        label = f"{row['recipe']} / {row['model']}" + (" " + " ".join(row["distinguishing"]) if row["distinguishing"] else "")
        if row["members"]:
            label += f" [ensemble of seeds {','.join(str(m['seed']) for m in row['members'])}]"
        labels[label] = labels.get(label, 0) + 1
        row["label"] = label
    for row in rows:  # identical methods (e.g. different data) are told apart by their folder
        if labels[row["label"]] > 1:
            row["label"] += f" ({Path(row['run_dir']).name})"
    notes = []
    class_sets = {tuple(row["classes"]) for row in rows}
    if len(class_sets) > 1:
        notes.append("the runs use different class sets (" + "; ".join(", ".join(c) for c in sorted(class_sets))
                     + "): figures compare only within a run's own classes")
    if common:
        notes.append("shared by every run: " + " ".join(f"--set {s}" for s in sorted(common)))
    selections = {row["selection"] for row in rows if row["selection"]}
    if len(selections) > 1:
        notes.append("the runs select their epoch differently: " + ", ".join(sorted(selections)))
    return {"datasets": datasets + ["overall"], "runs": rows, "notes": notes}


def _scores(report: dict[str, Any], metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """UF1, UAR, accuracy and n per dataset of a metrics report, and ``overall`` from its metrics."""
    scores = {name: {k: v.get(k) for _, k in METRICS} | {"n": v.get("n")}
              for name, v in (report.get("per_dataset") or {}).items()}
    scores["overall"] = {k: metrics.get(k) for _, k in METRICS} | {"n": metrics.get("n")}
    return scores


def _member_rows(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A seed ensemble's rows below its own: ``(label, {"scores", "recall"})`` per seed."""
    return [(f"  {row['label']} [seed {m['seed']}]", m) for m in row.get("members") or []]


def _recalls(report: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Recall per class, overall and per dataset (``{group: {class: recall}}``); a run written before
    per-dataset recalls were recorded has only ``overall``."""
    out = {name: dict(v["recall"]) for name, v in (report.get("per_dataset") or {}).items() if "recall" in v}
    if report.get("per_class"):
        out["overall"] = {c: pc.get("recall") for c, pc in report["per_class"].items()}
    return out


def format_compare(result: dict[str, Any], *, markdown: bool = True) -> str:
    """The honest table, the per-held-out-dataset table (leave-one-dataset-out runs), the separately
    labelled inflated table, the per-class recall table, then notes (Markdown or plain)."""
    datasets = result["datasets"]
    header = ["method"] + [f"{d} {m}" for d in datasets for m, _ in METRICS]
    body = []
    for row in result["runs"]:
        for label, scores in [(row["label"], row["scores"]), *((lab, m["scores"]) for lab, m in _member_rows(row))]:
            cells = [label]
            for d in datasets:
                s = scores.get(d)
                cells += [_fmt(s.get(k)) if s else "-" for _, k in METRICS]
            body.append(cells)
        if row.get("member_mean"):
            cells = [f"  {row['label']} [seeds: mean ± std]"]
            for d in datasets:
                v = row["member_mean"].get(d) or {}
                cells += [_fmt_spread(v.get(k)) for _, k in METRICS]
            body.append(cells)
    inflated_header = ["method", "UF1", "UAR", "Acc", "epochs per fold"]
    inflated = []
    for row in result["runs"]:
        f = row["inflated"]
        if f:
            inflated.append([row["label"], _fmt(f.get("uf1")), _fmt(f.get("uar")), _fmt(f.get("accuracy")),
                             " ".join(str(e) for e in f.get("epochs", []))])
        else:
            inflated.append([row["label"], NOT_RECORDED, NOT_RECORDED, NOT_RECORDED,
                             "run with --set train.test_curve=true to record it"])
    out = ["Honest figures (each run's protocol: no test fold chooses anything)", "",
           _table(header, body, markdown), ""]
    held = [row for row in result["runs"] if row.get("held_out")]
    if held:
        lines = []
        for row in held:
            for name, s in row["held_out"].items():
                lines.append([row["label"], name, str(s.get("n") or "-")] + [_fmt(s.get(k)) for _, k in METRICS])
            s = row["scores"]["overall"]
            lines.append([row["label"], "overall", str(s.get("n") or "-")] + [_fmt(s.get(k)) for _, k in METRICS])
        out += ["Leave one dataset out (honest): each held-out dataset tested by the model trained on the others", "",
                _table(["method", "held-out dataset", "clips"] + [m for m, _ in METRICS], lines, markdown), ""]
    out += ["Best test epoch per fold (INFLATED: each fold's epoch chosen by its own test accuracy; for comparison "
            "with papers only, overall)", "",
            _table(inflated_header, inflated, markdown)]
    classes = list(dict.fromkeys(c for row in result["runs"] for c in row["classes"]))
    if classes and any(row["recall"] for row in result["runs"]):
        lines = []
        for row in result["runs"]:
            for label, recalls in [(row["label"], row["recall"]), *((lab, m["recall"]) for lab, m in _member_rows(row))]:
                for group in datasets:
                    recall = recalls.get(group)
                    if recall is not None:
                        lines.append([label, group] + [_fmt(recall.get(c)) if c in recall else "-" for c in classes])
        out += ["", "Recall per class (honest; '-': no such clip in that dataset, or a class outside the run's set)", "",
                _table(["method", "dataset"] + classes, lines, markdown)]
    if result["notes"]:
        out += [""] + [f"note: {n}" for n in result["notes"]]
    return "\n".join(out) + "\n"


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt_row(header), "  ".join("-" * w for w in widths)] + [fmt_row(r) for r in rows])


def seed_summary(result: dict[str, Any], groups: Sequence[Sequence[str | Path]],
                 labels: Sequence[str]) -> dict[str, Any]:
    """Mean and sample standard deviation over the runs of each group (one method over seeds).

    ``result`` is :func:`compare` of every run; ``groups[i]`` lists the run directories of method
    ``labels[i]``. Returns ``{"datasets", "rows": [{"label", "runs", "scores": {dataset: {metric:
    {"mean", "std"}}}}]}``; ``std`` is ``None`` for a single run.
    """
    import numpy as np

    by_dir = {str(Path(row["run_dir"]).resolve()): row for row in result["runs"]}
    rows = []
    for label, dirs in zip(labels, groups):
        members = [by_dir[str(Path(d).resolve())] for d in dirs]
        scores: dict[str, dict[str, dict[str, float | None]]] = {}
        for d in result["datasets"]:
            for _, k in METRICS:
                values = [m["scores"][d][k] for m in members if d in m["scores"] and m["scores"][d].get(k) is not None]
                if values:
                    scores.setdefault(d, {})[k] = {"mean": float(np.mean(values)),
                                                   "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}
        rows.append({"label": label, "runs": len(members), "scores": scores})
    return {"datasets": result["datasets"], "rows": rows}


def format_seed_summary(summary: dict[str, Any], *, markdown: bool = True) -> str:
    """The :func:`seed_summary` table: ``mean ± std`` per dataset and metric, one row per method."""
    datasets = summary["datasets"]
    header = ["method", "seeds"] + [f"{d} {m}" for d in datasets for m, _ in METRICS]
    body = []
    for row in summary["rows"]:
        cells = [row["label"], str(row["runs"])]
        for d in datasets:
            for _, k in METRICS:
                v = row["scores"].get(d, {}).get(k)
                cells.append("-" if v is None else f"{v['mean']:.4f}" + ("" if v["std"] is None else f" ± {v['std']:.4f}"))
        body.append(cells)
    return "Mean ± std over seeds (honest figures)\n\n" + _table(header, body, markdown) + "\n"


HELP = "compare run directories side by side (UF1 / UAR / accuracy per dataset and overall)"


def add_compare_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``mertk compare`` to an argparse sub-parsers object."""
    p = sub.add_parser("compare", help=HELP, description=HELP + ". The inflated best-test-epoch figure, where "
                       "recorded, is kept in a separate table.")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run directories (hold results.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--markdown", type=Path, default=None, metavar="OUT.md", help="also write the tables as Markdown")
    return p


def cmd_compare(args: argparse.Namespace) -> int:
    """Run :func:`compare` for parsed arguments and print the table."""
    if args.markdown is not None:
        check_writable(args.markdown, folder=False)
    result = compare(args.run_dirs)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(format_compare(result, markdown=True))
    print(json.dumps(result, indent=2, default=str) if args.json else format_compare(result, markdown=False))
    return 0
