"""``mertk info``: what a user runs first on a copy of a dataset.

:func:`describe` opens a dataset (or composite) and reports the annotation rows parsed, the clips whose
frames were found, subjects, label counts (native and under every applicable label map), every
skipped row or clip with its reason, every repaired annotation error (warnings) and where each apex
comes from. For a composite it says how it was defined (the official clip list, or the sheets through
the label map) and prints the per-component table. It works on a spreadsheet whose frame folders are
absent.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import MertkError
from .base import count_labels
from .composite import Composite
from .labels import maps_for


def describe(name: str, root: str | Path, *, annotation: str | Path | None = None,
             official: str | Path | None = None, **loader: Any) -> dict[str, Any]:
    """Describe dataset ``name`` at ``root`` as a JSON-ready dict (see the module docstring); ``loader``
    holds further loader keyword arguments (``allow_outside_root``)."""
    from ..registry import DATASETS
    from . import open_dataset

    is_composite = DATASETS.entry(name).meta.get("kind") == "composite"
    if annotation is not None and is_composite:
        raise MertkError(f"--annotation applies to a single dataset, not to the composite {name!r}")
    if official is not None and not is_composite:
        raise MertkError(f"--official defines a composite from an official clip list; {name!r} is not a composite")
    kwargs: dict[str, Any] = dict(loader)
    if annotation is not None:
        kwargs["annotation"] = annotation
    if official is not None:
        kwargs["official"] = official
    ds = open_dataset(name, root, **kwargs)

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
        report["definition"] = (f"the official list {ds.official}" if ds.official is not None
                                else "built from the sheets, not the official list")
        report["labels"] = dict(sorted(Counter(f"{r.dataset}:{dict(r.extra)['native_label']}" for r in records).items()))
        report["mapped"] = {ds.label_map.name: {c: sum(r.label == c for r in records) for c in ds.classes}}
        report["per_dataset"] = ds.per_dataset()
        report["component_table"] = ds.component_table()
        report["excluded"] = {f"{d}:{lab}": n for (d, lab), n in sorted(ds.excluded.items())}
        report["components"] = {
            c: {"root": str(p.root), "rows": p.rows, "clips": len(p.records),
                "clips_with_frames": sum(getattr(r, "has_frames", True) for r in p.records)}
            for c, p in ds.parts.items()
        }
    else:
        report["labels"] = count_labels(records)
        report["mapped"] = {m.name: m.counts(records) for m in maps_for(name)}
    warnings = list(getattr(ds, "warnings", []))
    clip_records = [r for r in records if hasattr(r, "apex")]
    if clip_records:
        report["rows_without_apex"] = sum(r.apex is None for r in clip_records)
        report["apex_sources"] = apex_sources(clip_records, warnings)
    report["warnings"] = [{"row": w.source, "clip": w.item, "problem": w.problem, "fallback": w.fallback}
                          for w in warnings]
    report["skipped"] = [{"row": s.source, "clip": s.item, "reason": s.reason} for s in ds.skipped]
    report["notes"] = list(ds.notes)
    if records and not with_frames:
        report["frames_note"] = _no_frames_reason(ds.skipped)
    if is_composite and ds.official_check is not None:
        report["official_check"] = ds.official_check
    return report


def apex_sources(records: list, warnings: list) -> dict[str, int]:
    """How many clips take their apex from each source: the annotation file, a separate apex file, or
    the spotter (no apex annotated, or an annotated apex that was an error)."""
    repaired = {w.item for w in warnings if w.problem.startswith("apex")}
    tally: Counter[str] = Counter()
    for r in records:
        if r.apex is not None:
            origin = r.apex_source or r.source
            tally[origin.split(":row ")[0].split(", row ")[0] or "annotation"] += 1
        elif r.key in repaired:
            tally["spotted (annotated apex is an error)"] += 1
        else:
            tally["spotted (no apex annotated)"] += 1
    return dict(sorted(tally.items()))


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
    if report.get("definition"):
        lines.append(f"  composite          {report['definition']}")
    lines.append("  labels             " + _counts(report["labels"]))
    for name, counts in report["mapped"].items():
        lines.append(f"  -> {name:<15} " + _counts(counts))
    for component, row in report.get("component_table", {}).items():
        lines.append(f"     {component:<15} {row['clips']} clips, {row['subjects']} subjects: " + _counts(row["classes"]))
        if "official" in row:
            off = row["official"]
            lines.append(f"     {'  official':<15} {off['clips']} clips, {off['subjects']} subjects: " + _counts(off["classes"]))
    if report.get("excluded"):
        lines.append("  excluded           " + _counts(report["excluded"]))
    if report.get("apex_sources"):
        lines.append("  apex from          " + _counts(report["apex_sources"]))
    if report.get("frames_note"):
        lines.append(f"  frames             {report['frames_note']}")
    for note in report.get("notes", []):
        lines.append(f"  note               {note}")
    warnings = report.get("warnings", [])
    lines.append(f"  warnings           {len(warnings)} (annotation errors repaired, clips kept)")
    for item in warnings[:max_skipped]:
        lines.append(f"    {item['row']}  {item['clip']}: {item['problem']} -> {item['fallback']}")
    if len(warnings) > max_skipped:
        lines.append(f"    ... {len(warnings) - max_skipped} more (use --json for the full list)")
    skipped = report["skipped"]
    lines.append(f"  skipped            {len(skipped)}")
    for item in skipped[:max_skipped]:
        lines.append(f"    {item['row']}  {item['clip']}: {item['reason']}")
    if len(skipped) > max_skipped:
        lines.append(f"    ... {len(skipped) - max_skipped} more (use --json for the full list)")
    check = report.get("official_check")
    if check:
        lines.append(
            f"  official list      {check['official_clips']} listed, {check['matched']} found; against the sheets: "
            f"{len(check['label_disagreements'])} label disagreements, {len(check['only_official'])} only in the list, "
            f"{len(check['only_sheets'])} only in the sheets"
        )
        for m in check["label_disagreements"][:max_skipped]:
            lines.append(f"    {m['clip']}: sheet {m['native']} -> {m['sheet'] or 'excluded'}, official {m['official']}")
        for m in check["only_official"][:max_skipped]:
            lines.append(f"    {m['clip']}: only in the official list ({m['reason']})")
        for m in check["only_sheets"][:max_skipped]:
            lines.append(f"    {m['clip']}: only in the sheets ({m['sheet']})")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"
