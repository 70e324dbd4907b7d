"""``mertk info``: what a user runs first on a copy of a dataset.

:func:`describe` opens a dataset (or composite) and reports the annotation rows parsed, the clips whose
frames were found, subjects, label counts (native and under every applicable label map) and every
skipped row or clip with its reason. It works on a spreadsheet whose frame folders are absent.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import MertkError
from .base import count_labels
from .composite import Composite, check_against_ground_truth
from .labels import maps_for


def describe(
    name: str, root: str | Path, *, annotation: str | Path | None = None, gt: str | Path | None = None, **loader: Any
) -> dict[str, Any]:
    """Describe dataset ``name`` at ``root`` as a JSON-ready dict (see the module docstring); ``loader``
    holds further loader keyword arguments (``allow_outside_root``)."""
    from . import open_dataset

    kwargs: dict[str, Any] = dict(loader)
    if annotation is not None:
        kwargs["annotation"] = annotation
    ds = open_dataset(name, root, **kwargs)
    is_composite = isinstance(ds, Composite)
    if annotation is not None and is_composite:
        raise MertkError(f"--annotation applies to a single dataset, not to the composite {name!r}")
    if gt is not None and not is_composite:
        raise MertkError(f"--gt checks a composite against an official list; {name!r} is not a composite")

    records = ds.records
    with_frames = [r for r in records if getattr(r, "has_frames", True)]
    report: dict[str, Any] = {
        "dataset": name,
        "root": str(Path(root)),
        "annotation": None if is_composite or ds.annotation is None else str(ds.annotation),
        "rows": ds.rows,
        "clips": len(records),
        "clips_with_frames": len(with_frames),
        "subjects": len(ds.subjects),
    }
    if is_composite:
        report["labels"] = dict(sorted(Counter(f"{r.dataset}:{dict(r.extra)['native_label']}" for r in records).items()))
        report["mapped"] = {ds.label_map.name: {c: sum(r.label == c for r in records) for c in ds.classes}}
        report["per_dataset"] = ds.per_dataset()
        report["excluded"] = {f"{d}:{lab}": n for (d, lab), n in sorted(ds.excluded.items())}
        report["components"] = {
            c: {"root": str(p.root), "rows": p.rows, "clips": len(p.records),
                "clips_with_frames": sum(getattr(r, "has_frames", True) for r in p.records)}
            for c, p in ds.parts.items()
        }
    else:
        report["labels"] = count_labels(records)
        report["mapped"] = {m.name: m.counts(records) for m in maps_for(name)}
    clip_records = [r for r in records if hasattr(r, "apex")]
    if clip_records:
        report["rows_without_apex"] = sum(r.apex is None for r in clip_records)
    report["skipped"] = [{"row": s.source, "clip": s.item, "reason": s.reason} for s in ds.skipped]
    report["notes"] = list(ds.notes)
    if records and not with_frames:
        report["frames_note"] = _no_frames_reason(ds.skipped)
    if gt is not None:
        report["ground_truth_check"] = check_against_ground_truth(ds, gt)
    return report


def _no_frames_reason(skipped: list) -> str:
    reasons = Counter(s.reason.split(":")[0] for s in skipped)
    if not reasons:
        return "no clip has frames"
    top, n = reasons.most_common(1)[0]
    example = next(s.reason for s in skipped if s.reason.startswith(top)).partition(":")[2].strip()
    return f"no clip has frames; {n} clip(s): {top}" + (f" (e.g. {example})" if example else "")


def format_info(report: dict[str, Any], *, max_skipped: int = 40) -> str:
    """Human-readable rendering of :func:`describe`'s report."""
    lines = [f"{report['dataset']} at {report['root']}"]
    if report.get("annotation"):
        lines.append(f"  annotation         {report['annotation']}")
    lines.append(f"  rows parsed        {report['rows']}")
    lines.append(f"  clips              {report['clips']} ({report['clips_with_frames']} with frames)")
    if "rows_without_apex" in report:
        lines.append(f"  without apex       {report['rows_without_apex']}")
    lines.append(f"  subjects           {report['subjects']}")
    lines.append("  labels             " + _counts(report["labels"]))
    for name, counts in report["mapped"].items():
        lines.append(f"  -> {name:<15} " + _counts(counts))
    for component, counts in report.get("per_dataset", {}).items():
        lines.append(f"     {component:<15} " + _counts(counts))
    if report.get("excluded"):
        lines.append("  excluded by map    " + _counts(report["excluded"]))
    if report.get("frames_note"):
        lines.append(f"  frames             {report['frames_note']}")
    for note in report.get("notes", []):
        lines.append(f"  note               {note}")
    skipped = report["skipped"]
    lines.append(f"  skipped            {len(skipped)}")
    for item in skipped[:max_skipped]:
        lines.append(f"    {item['row']}  {item['clip']}: {item['reason']}")
    if len(skipped) > max_skipped:
        lines.append(f"    ... {len(skipped) - max_skipped} more (use --json for the full list)")
    check = report.get("ground_truth_check")
    if check:
        lines.append(
            f"  ground truth       {check['agree']} agree, {len(check['label_mismatches'])} label mismatches, "
            f"{len(check['only_official'])} only in the official list, {len(check['only_ours'])} only here"
        )
        for m in check["label_mismatches"][:max_skipped]:
            lines.append(f"    {m['subject']}/{m['clip']}: ours {m['ours']}, official {m['official']}")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"
