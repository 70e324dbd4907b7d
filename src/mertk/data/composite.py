"""Composite datasets: several datasets read by their own loaders and relabelled by one label map.

``Composite("megc2019", root)`` finds SMIC-HS, CASME II and SAMM under ``root`` (each in its usual
folder name, registered with its loader as ``folders=``, e.g. ``root/CASME2``), or takes explicit ``roots={"casme2": path, ...}``. Records keep
their namespaced subjects (``casme2/sub01``), so LOSO over a composite never merges two people; the
mapped class replaces ``label`` and the native label is kept in ``extra["native_label"]``.

With ``official=FILE`` (an official clip list such as MEGC 2019's ``combined_3class_gt.csv``, with or
without a header row) the composite is exactly the listed clips with the listed labels; ids match
whatever their zero-padding (``28`` = ``028``, ``s01`` = ``s1``), and every disagreement with the
spreadsheets is listed in :attr:`Composite.official_check`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..errors import DataError
from ..records import ClipRecord, ImageRecord
from ..registry import DATASETS, Registry
from .base import Dataset, count_labels, dataset_folder, id_key, require_dir
from .labels import LabelMap, get_label_map

@dataclass(frozen=True)
class CompositeSpec:
    name: str
    components: tuple[str, ...]
    label_map: str
    description: str


COMPOSITES: Registry[CompositeSpec] = Registry("composite")


def _spec(spec: CompositeSpec) -> CompositeSpec:
    COMPOSITES.add(spec.name, spec, description=spec.description)
    DATASETS.add(
        spec.name,
        lambda root, **kw: Composite(spec.name, root, **kw),
        kind="composite",
        description=spec.description,
        components=spec.components,
        label_map=spec.label_map,
    )
    return spec


_spec(CompositeSpec("megc2019", ("smic", "casme2", "samm"), "megc2019",
                    "MEGC 2019 composite: SMIC-HS + CASME II + SAMM as negative/positive/surprise (442 clips, 68 subjects on the official files)"))
_spec(CompositeSpec("megc2018", ("casme2", "samm"), "megc2018",
                    "MEGC 2018 composite: CASME II + SAMM, objective classes I-V (253 clips on the official files)"))
_spec(CompositeSpec("strcn-casme2-samm", ("casme2", "samm"), "strcn4",
                    "STRCN's CASME II + SAMM composite in 4 classes (positive, negative, surprise, other)"))
_spec(CompositeSpec("cd6me", ("casme", "casme2", "samm", "casme3", "fourdme", "mmew"), "megc2019",
                    "Six-dataset composite (CASME, CASME II, SAMM, CAS(ME)^3 part A, 4DME, MMEW) as negative/positive/surprise; subjects namespaced per dataset, never merged"))


class Composite(Dataset):
    """Records of several datasets under one label map (see the module docstring); ``kind`` is
    ``"composite"``, ``parts`` holds the component datasets and ``classes`` the mapped classes.

    Args:
        name: registered composite (``megc2019``, ``megc2018``, ``strcn-casme2-samm``).
        root: folder holding the component datasets in their usual folder names; may be ``None``
            when ``roots`` names every component.
        roots: explicit component roots, overriding ``root``.
        loader_kwargs: per-component keyword arguments for the loaders (e.g. ``{"casme2": {"cropped": True}}``).
        official: an official clip list defining the composite (see the module docstring); ``None``
            builds it from the spreadsheets through the label map.
    """

    kind = "composite"

    def __init__(self, name: str, root: str | Path | None = None, *, roots: Mapping[str, str | Path] | None = None,
                 loader_kwargs: Mapping[str, Mapping[str, Any]] | None = None, official: str | Path | None = None):
        from . import open_dataset

        super().__init__()
        self.spec = COMPOSITES.get(name)
        self.name = name
        self.label_map: LabelMap = get_label_map(self.spec.label_map)
        self.root = require_dir(root, "composite root") if root is not None else None
        roots = dict(roots or {})
        self.parts = {}
        for component in self.spec.components:
            if component in roots:
                path = Path(roots[component])
            elif self.root is not None:
                path = dataset_folder(component, self.root)
            else:
                raise DataError(None, f"composite {name}: no root given for {component}")
            self.parts[component] = open_dataset(component, path, **dict((loader_kwargs or {}).get(component, {})))
        self.rows = sum(p.rows for p in self.parts.values())
        self.skipped = [s for p in self.parts.values() for s in p.skipped]
        self.warnings = [w for p in self.parts.values() for w in p.warnings]
        self.notes = [f"{c}: {n}" for c, p in self.parts.items() for n in p.notes]
        self.excluded: Counter[tuple[str, str]] = Counter()
        sheet_records: list[ClipRecord | ImageRecord] = []
        for component, part in self.parts.items():
            for record in part.records:
                cls = self.label_map.map(record)
                if cls is None:
                    self.excluded[(component, record.label)] += 1
                    continue
                sheet_records.append(_relabel(record, cls))
        self.official: Path | None = None
        self.official_check: dict[str, Any] | None = None
        if official is None:
            self.records = sheet_records
        else:
            self._from_official(Path(official).expanduser(), sheet_records)

    def _from_official(self, path: Path, sheet_records: list[ClipRecord | ImageRecord]) -> None:
        """Keep exactly the clips of the official list, with its labels; list every disagreement."""
        entries = read_official_list(path, self.classes, self.spec.components)
        self.official = path
        self.excluded = Counter()
        every = {_match_key(r): r for part in self.parts.values() for r in part.records}
        mapped = {_match_key(r): r.label for r in sheet_records}
        row_skips = {_match_key_of(s.item): s for part in self.parts.values() for s in part.skipped}
        mismatched, only_official = [], []
        listed = set()
        for entry in entries:
            key = (entry.dataset, id_key(entry.subject), id_key(entry.clip))
            listed.add(key)
            record = every.get(key)
            item = f"{entry.dataset}/{entry.subject}/{entry.clip}"
            if record is None:
                skip = row_skips.get(key)
                reason = (f"in the official list but its annotation row was skipped: {skip.reason}" if skip is not None
                          else f"in the official list but not in the {entry.dataset} annotation")
                self.skip(entry.source, item, reason)
                only_official.append({"clip": item, "official": entry.label,
                                      "reason": "row skipped" if skip is not None else "not in the annotation"})
                continue
            sheet = mapped.get(key)
            if sheet != entry.label:
                mismatched.append({"clip": record.key, "native": record.label, "sheet": sheet, "official": entry.label})
            self.records.append(_relabel(record, entry.label, official=True))
        only_sheets = [{"clip": r.key, "sheet": r.label} for r in sheet_records if _match_key(r) not in listed]
        for r in (r for r in every.values() if _match_key(r) not in listed):
            self.excluded[(r.dataset, r.label)] += 1
        self.official_check = {
            "file": str(path),
            "official_clips": len(entries),
            "sheet_clips": len(sheet_records),
            "matched": len(self.records),
            "label_disagreements": mismatched,
            "only_official": only_official,
            "only_sheets": only_sheets,
            "official_counts": _official_counts(entries, self.classes),
        }

    @property
    def classes(self) -> tuple[str, ...]:
        return self.label_map.classes

    def per_dataset(self) -> dict[str, dict[str, int]]:
        """Class counts of each component (mapped classes), in class order."""
        out = {}
        for component in self.parts:
            tally = count_labels(r for r in self.records if r.dataset == component)
            out[component] = {c: tally.get(c, 0) for c in self.classes}
        return out

    def component_table(self) -> dict[str, dict[str, Any]]:
        """Per component: clips, clips with frames, subjects and class counts (what ``info`` and the run
        report print), beside the official list's own figures when the composite was built from one."""
        official = (self.official_check or {}).get("official_counts", {})
        out: dict[str, dict[str, Any]] = {}
        for component, counts in self.per_dataset().items():
            members = [r for r in self.records if r.dataset == component]
            row: dict[str, Any] = {
                "clips": len(members),
                "clips_with_frames": sum(getattr(r, "has_frames", True) for r in members),
                "subjects": len({r.subject for r in members}),
                "classes": counts,
            }
            if component in official:
                row["official"] = official[component]
            out[component] = row
        return out


# ---------------------------------------------------------------------------------------------
# official clip lists
# ---------------------------------------------------------------------------------------------
_DATASET_ALIASES = {
    "smic": "smic", "smic-hs": "smic", "smic_hs": "smic", "hs": "smic",
    "casme2": "casme2", "casme ii": "casme2", "casme_ii": "casme2", "casmeii": "casme2", "casme_2": "casme2",
    "casme-2": "casme2", "samm": "samm", "casme": "casme",
}
_DATASET_COLUMNS = ("dataset", "database", "db", "data")
_SUBJECT_COLUMNS = ("subject", "sub")
_CLIP_COLUMNS = ("filename", "filename_o", "clip", "video", "sample", "name")
_LABEL_COLUMNS = ("emotion", "label", "class", "emotion_class", "objective class", "objective_class", "emotion class")
def _match_key(record: ClipRecord | ImageRecord) -> tuple[str, str, str]:
    subject = (record.subject or "").split("/", 1)[-1]
    clip = record.clip if isinstance(record, ClipRecord) else record.item
    return record.dataset, id_key(subject), id_key(clip)


def _match_key_of(item: str) -> tuple[str, str, str]:
    """The match key of a loader skip's item (``dataset/subject/clip``)."""
    parts = item.split("/")
    if len(parts) < 3:
        return ("", "", id_key(item))
    return parts[0], id_key(parts[1]), id_key("/".join(parts[2:]))


def _relabel(record: ClipRecord | ImageRecord, cls: str, *, official: bool = False) -> ClipRecord | ImageRecord:
    extra = dict(record.extra)
    extra.setdefault("native_label", record.label)
    if official:
        extra["official_label"] = cls
    return replace(record, label=cls, extra=tuple(extra.items()))


@dataclass(frozen=True)
class OfficialEntry:
    """One row of an official clip list."""

    dataset: str
    subject: str
    clip: str
    label: str
    source: str


def read_official_list(path: str | Path, classes: tuple[str, ...],
                       components: tuple[str, ...] | None = None) -> list[OfficialEntry]:
    """Read an official clip list: one row per clip with dataset, subject, clip and class.

    A list without a header row (as MEGC 2019's ``combined_3class_gt.csv`` is distributed) has its four
    columns in that order. With a header, column names are matched loosely (``dataset``; ``subject`` /
    ``sub``; ``filename`` / ``clip`` / ``video``; ``emotion`` / ``label`` / ``class``). Class cells are
    names or indices into ``classes`` (MEGC 2019: 0 negative, 1 positive, 2 surprise). A bad row is a
    :class:`DataError` naming the file and row: the list defines the composite, so it is not guessed at.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "official clip list not found")
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # pandas raises many types for a foreign or corrupt file
        raise DataError(path, f"cannot read as CSV ({type(exc).__name__}: {exc})") from None
    if raw.empty:
        raise DataError(path, "the official clip list is empty")
    first = [str(c).strip().lower() for c in raw.iloc[0]]
    known = set(_DATASET_COLUMNS + _SUBJECT_COLUMNS + _CLIP_COLUMNS + _LABEL_COLUMNS)
    if known & set(first):
        def pick(options: tuple[str, ...], what: str) -> int:
            for option in options:
                if option in first:
                    return first.index(option)
            raise DataError(path, f"no {what} column (expected one of {', '.join(options)}; found {', '.join(first)})")

        columns = [pick(_DATASET_COLUMNS, "dataset"), pick(_SUBJECT_COLUMNS, "subject"), pick(_CLIP_COLUMNS, "clip"),
                   pick(_LABEL_COLUMNS, "label")]
        body, offset = raw.iloc[1:], 1
    else:
        if raw.shape[1] != 4:
            raise DataError(path, f"a list without a header row needs 4 columns (dataset, subject, clip, label), "
                                  f"found {raw.shape[1]}")
        columns, body, offset = [0, 1, 2, 3], raw, 0
    entries: list[OfficialEntry] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, values in enumerate(body.itertuples(index=False)):
        line = i + 1 + offset
        cells = [str(values[c]).strip() for c in columns]
        if not any(cells):
            continue
        dataset = _DATASET_ALIASES.get(cells[0].lower())
        if dataset is None:
            raise DataError(path, f"unknown dataset {cells[0]!r} (known: smic, casme2, samm, casme)", row=line)
        if components is not None and dataset not in components:
            raise DataError(path, f"dataset {dataset!r} is not a component of this composite ({', '.join(components)})",
                            row=line)
        if not cells[1] or not cells[2]:
            raise DataError(path, "blank subject or clip", row=line)
        label = cells[3]
        if label.isdigit():
            index = int(label)
            if not 0 <= index < len(classes):
                raise DataError(path, f"class index {index} outside 0..{len(classes) - 1}", row=line)
            label = classes[index]
        elif label.lower() in classes:
            label = label.lower()
        else:
            raise DataError(path, f"unknown class {label!r} (known: {', '.join(classes)})", row=line)
        key = (dataset, id_key(cells[1]), id_key(cells[2]))
        if key in seen:
            raise DataError(path, f"clip {cells[1]}/{cells[2]} listed twice (first at row {seen[key]})", row=line)
        seen[key] = line
        entries.append(OfficialEntry(dataset, cells[1], cells[2], label, f"{path.name}, row {line}"))
    return entries


def _official_counts(entries: list[OfficialEntry], classes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for dataset in dict.fromkeys(e.dataset for e in entries):
        members = [e for e in entries if e.dataset == dataset]
        tally = Counter(e.label for e in members)
        out[dataset] = {"clips": len(members), "subjects": len({id_key(e.subject) for e in members}),
                        "classes": {c: tally.get(c, 0) for c in classes}}
    return out
