"""Composite datasets: several datasets read by their own loaders and relabelled by one label map.

``Composite("megc2019", root)`` finds SMIC-HS, CASME II and SAMM under ``root`` (each in its usual
folder name, e.g. ``root/CASME2``), or takes explicit ``roots={"casme2": path, ...}``. Records keep
their namespaced subjects (``casme2/sub01``), so LOSO over a composite never merges two people; the
mapped class replaces ``label`` and the native label is kept in ``extra["native_label"]``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import pandas as pd

from ..errors import DataError
from ..records import AnnotationIssue, ClipRecord, ImageRecord, Skip
from ..registry import DATASETS, Registry
from .base import count_labels, require_dir
from .labels import LabelMap, get_label_map

# Folder names each component is commonly kept under inside a composite root.
COMPONENT_FOLDERS: dict[str, tuple[str, ...]] = {
    "casme2": ("CASME2", "CASME_II", "CASME II", "CASMEII", "casme2"),
    "samm": ("SAMM", "samm"),
    "smic": ("SMIC", "SMIC-HS", "SMIC_HS", "SMIC_all_raw", "smic"),
    "casme": ("CASME", "casme"),
    "ckplus": ("CK+", "CKPlus", "ckplus", "CK"),
    "casme3": ("CASME3", "CAS(ME)3", "CAS(ME)^3", "casme3"),
    "fourdme": ("4DME", "4DMicro", "fourdme"),
    "mmew": ("MMEW", "mmew"),
}


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


def locate_component(root: Path, component: str) -> Path:
    """The folder of ``component`` inside a composite root (its usual names), or a DataError."""
    for name in COMPONENT_FOLDERS.get(component, (component,)):
        if (root / name).is_dir():
            return root / name
    raise DataError(root, f"no {component} folder (looked for {', '.join(COMPONENT_FOLDERS.get(component, (component,)))})")


class Composite:
    """Records of several datasets under one label map (see the module docstring).

    Args:
        name: registered composite (``megc2019``, ``megc2018``, ``strcn-casme2-samm``).
        root: folder holding the component datasets in their usual folder names; may be ``None``
            when ``roots`` names every component.
        roots: explicit component roots, overriding ``root``.
        loader_kwargs: per-component keyword arguments for the loaders (e.g. ``{"casme2": {"cropped": True}}``).
    """

    def __init__(self, name: str, root: str | Path | None = None, *, roots: Mapping[str, str | Path] | None = None,
                 loader_kwargs: Mapping[str, Mapping[str, Any]] | None = None):
        from . import open_dataset

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
                path = locate_component(self.root, component)
            else:
                raise DataError(None, f"composite {name}: no root given for {component}")
            self.parts[component] = open_dataset(component, path, **dict((loader_kwargs or {}).get(component, {})))
        self.records: list[ClipRecord | ImageRecord] = []
        self.excluded: Counter[tuple[str, str]] = Counter()
        for component, part in self.parts.items():
            for record in part.records:
                cls = self.label_map.map(record)
                if cls is None:
                    self.excluded[(component, record.label)] += 1
                    continue
                extra = dict(record.extra)
                extra["native_label"] = record.label
                self.records.append(replace(record, label=cls, extra=tuple(extra.items())))

    # the same surface as the single-dataset loaders ------------------------------------------------
    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts.values())

    @property
    def skipped(self) -> list[Skip]:
        return [s for p in self.parts.values() for s in p.skipped]

    @property
    def warnings(self) -> list[AnnotationIssue]:
        return [w for p in self.parts.values() for w in getattr(p, "warnings", [])]

    @property
    def notes(self) -> list[str]:
        return [f"{c}: {n}" for c, p in self.parts.items() for n in p.notes]

    @property
    def subjects(self) -> list[str]:
        return sorted({r.subject for r in self.records if r.subject})

    @property
    def classes(self) -> tuple[str, ...]:
        return self.label_map.classes

    def usable(self) -> list[ClipRecord | ImageRecord]:
        return [r for r in self.records if getattr(r, "has_frames", True)]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> ClipRecord | ImageRecord:
        return self.records[i]

    def __iter__(self) -> Iterator[ClipRecord | ImageRecord]:
        return iter(self.records)

    def per_dataset(self) -> dict[str, dict[str, int]]:
        """Class counts of each component (mapped classes), in class order."""
        out = {}
        for component in self.parts:
            tally = count_labels(r for r in self.records if r.dataset == component)
            out[component] = {c: tally.get(c, 0) for c in self.classes}
        return out


# ---------------------------------------------------------------------------------------------
# checking a composite against an official ground-truth list
# ---------------------------------------------------------------------------------------------
_DATASET_ALIASES = {
    "smic": "smic", "smic-hs": "smic", "smic_hs": "smic", "hs": "smic",
    "casme2": "casme2", "casme ii": "casme2", "casme_ii": "casme2", "casmeii": "casme2", "casme_2": "casme2",
    "samm": "samm", "casme": "casme",
}
_LABEL_COLUMNS = ("emotion", "label", "class", "emotion_class", "objective class", "objective_class", "emotion class")
_CLIP_COLUMNS = ("filename", "clip", "video", "sample", "name")


def _subject_key(dataset: str, subject: str) -> str:
    """Namespaced subject from a ground-truth cell, normalised like the loaders do."""
    text = str(subject).strip()
    if dataset == "casme2":
        digits = "".join(ch for ch in text if ch.isdigit())
        return f"casme2/sub{int(digits):02d}" if digits else f"casme2/{text}"
    if dataset == "samm":
        digits = "".join(ch for ch in text if ch.isdigit())
        return f"samm/{int(digits):03d}" if digits else f"samm/{text}"
    if dataset == "smic":
        digits = "".join(ch for ch in text if ch.isdigit())
        return f"smic/s{int(digits)}" if digits else f"smic/{text}"
    return f"{dataset}/{text}"


def read_ground_truth(path: str | Path, classes: tuple[str, ...]) -> dict[tuple[str, str], str]:
    """Read an official ground-truth list: one row per clip with dataset, subject, clip and class.

    Column names are matched loosely (``dataset``; ``subject``; ``filename``/``clip``/``video``;
    ``emotion``/``label``/``class``); class cells may be names or integer indices into ``classes``.
    Returns ``{(namespaced subject, clip): class}``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "ground-truth list not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DataError(path, f"cannot read as CSV ({exc})") from None
    columns = {c.strip().lower(): c for c in table.columns}

    def pick(options: tuple[str, ...], what: str) -> str:
        for option in options:
            if option in columns:
                return columns[option]
        raise DataError(path, f"no {what} column (expected one of {', '.join(options)}; found {', '.join(table.columns)})")

    c_dataset = pick(("dataset", "database", "db"), "dataset")
    c_subject = pick(("subject", "sub"), "subject")
    c_clip = pick(_CLIP_COLUMNS, "clip")
    c_label = pick(_LABEL_COLUMNS, "label")
    out: dict[tuple[str, str], str] = {}
    for i, row in table.iterrows():
        line = int(i) + 2
        dataset = _DATASET_ALIASES.get(row[c_dataset].strip().lower())
        if dataset is None:
            raise DataError(path, f"unknown dataset {row[c_dataset]!r}", row=line)
        label = row[c_label].strip()
        if label.isdigit():
            index = int(label)
            if not 0 <= index < len(classes):
                raise DataError(path, f"class index {index} outside 0..{len(classes) - 1}", row=line)
            label = classes[index]
        elif label.lower() in classes:
            label = label.lower()
        else:
            raise DataError(path, f"unknown class {label!r} (known: {', '.join(classes)})", row=line)
        out[(_subject_key(dataset, row[c_subject]), row[c_clip].strip())] = label
    return out


def check_against_ground_truth(composite: Composite, path: str | Path) -> dict[str, Any]:
    """Compare a composite's mapped labels with an official list; every disagreement is listed."""
    truth = read_ground_truth(path, composite.classes)
    ours = {(r.subject, r.clip): r.label for r in composite.records}
    mismatched = [
        {"subject": s, "clip": c, "ours": ours[(s, c)], "official": truth[(s, c)]}
        for (s, c) in sorted(set(ours) & set(truth)) if ours[(s, c)] != truth[(s, c)]
    ]
    return {
        "file": str(path),
        "official_clips": len(truth),
        "our_clips": len(ours),
        "agree": len(set(ours) & set(truth)) - len(mismatched),
        "label_mismatches": mismatched,
        "only_official": [{"subject": s, "clip": c} for s, c in sorted(set(truth) - set(ours))],
        "only_ours": [{"subject": s, "clip": c} for s, c in sorted(set(ours) - set(truth))],
    }
