"""Label maps: from each dataset's native emotion labels to the class sets the papers evaluate on.

A :class:`LabelMap` turns a record (its dataset, native label, action units and objective class)
into a class name of the map, or ``None`` when the map excludes that record. Maps are registered in
``LABEL_MAPS``; composites (:mod:`mertk.data.composite`) combine several datasets under one map.

Sources for each mapping are cited in its description. Native labels are compared case-insensitively.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from ..records import ClipRecord, ImageRecord
from ..registry import Registry
from .base import au_numbers

Record = ClipRecord | ImageRecord

ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


@dataclass(frozen=True)
class LabelMap:
    """A mapping from native labels of one or more datasets to an ordered class list.

    Attributes:
        name: registry name (``megc2019``).
        classes: class names in index order (the order models' outputs follow).
        table: per dataset, native label (lower case) -> class; labels absent from the table are
            excluded from this map.
        rule: optional function used instead of ``table`` (e.g. the MEGC 2018 AU rules); it
            returns a class or ``None``.
        description: what the map is and where it comes from.
    """

    name: str
    classes: tuple[str, ...]
    table: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    rule: Callable[[Record], str | None] | None = None
    description: str = ""

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.table)

    def applies_to(self, dataset: str) -> bool:
        return dataset in self.datasets

    def map(self, record: Record) -> str | None:
        """Class of ``record`` under this map, or ``None`` if the map excludes it."""
        if self.rule is not None:
            return self.rule(record)
        per_dataset = self.table.get(record.dataset)
        if per_dataset is None:
            return None
        return per_dataset.get(record.label.strip().lower())

    def index(self, class_name: str) -> int:
        return self.classes.index(class_name)

    def counts(self, records: Iterable[Record]) -> dict[str, int]:
        """Records per class (in class order) plus ``"(excluded)"`` for those the map drops."""
        tally = Counter(self.map(r) for r in records)
        out = {c: tally.get(c, 0) for c in self.classes}
        out["(excluded)"] = tally.get(None, 0)
        return out


LABEL_MAPS: Registry[LabelMap] = Registry("label map")


def _add(label_map: LabelMap) -> LabelMap:
    LABEL_MAPS.add(label_map.name, label_map, classes=label_map.classes, description=label_map.description)
    return label_map


def _invert(groups: Mapping[str, Iterable[str]]) -> dict[str, str]:
    return {native.lower(): cls for cls, natives in groups.items() for native in natives}


# ---------------------------------------------------------------------------------------------
# MEGC 2019 three classes (LAENet, STSTNet): negative / positive / surprise
# ---------------------------------------------------------------------------------------------

MEGC2019 = _add(LabelMap(
    name="megc2019",
    classes=("negative", "positive", "surprise"),
    table={
        # MEGC 2019 (See et al.) as LAENet section 3.1 states it: CASME II negative = disgust and
        # repression only (fear, sadness and others are left out), SAMM negative = anger, contempt,
        # disgust, fear, sadness, SMIC as labelled.
        "casme2": _invert({"negative": ("disgust", "repression"), "positive": ("happiness",), "surprise": ("surprise",)}),
        "samm": _invert({"negative": ("anger", "contempt", "disgust", "fear", "sadness"), "positive": ("happiness",), "surprise": ("surprise",)}),
        "smic": _invert({"negative": ("negative",), "positive": ("positive",), "surprise": ("surprise",)}),
        # The same reading on CASME, CK+ (codes 1..7) and FER2013 (codes 0..6), for pretraining.
        "casme": _invert({"negative": ("disgust", "repression", "fear", "contempt", "sadness"), "positive": ("happiness",), "surprise": ("surprise",)}),
        "ckplus": _invert({"negative": ("1", "2", "3", "4", "6"), "positive": ("5",), "surprise": ("7",)}),
        "fer2013": _invert({"negative": ("0", "1", "2", "4"), "positive": ("3",), "surprise": ("5",)}),
        "megc2019-features": _invert({"negative": ("0", "negative"), "positive": ("1", "positive"), "surprise": ("2", "surprise")}),
        # The newer datasets read the same way: negative = disgust, fear, anger, sad(ness); positive =
        # happy(iness); surprise; others (and 4DME's repression) excluded. CAS(ME)^3: Li et al. 2022,
        # TPAMI, 3-class setting; 4DME ships the coarse classes itself (Li et al. 2022, TAC); MMEW: Ben
        # et al. 2021, TPAMI, six basic emotions + others.
        "casme3": _invert({"negative": ("disgust", "fear", "anger", "sad", "sadness"), "positive": ("happy", "happiness"), "surprise": ("surprise",)}),
        "fourdme": _invert({"negative": ("negative",), "positive": ("positive",), "surprise": ("surprise",)}),
        "mmew": _invert({"negative": ("disgust", "fear", "anger", "sadness"), "positive": ("happiness",), "surprise": ("surprise",)}),
    },
    description="MEGC 2019 composite classes (SMIC-HS + CASME II + SAMM): negative, positive, surprise",
))

# ---------------------------------------------------------------------------------------------
# STRCN four classes: positive / negative / surprise / other (strcn-xia-2019 section IV.A)
# ---------------------------------------------------------------------------------------------
STRCN4 = _add(LabelMap(
    name="strcn4",
    classes=("positive", "negative", "surprise", "other"),
    table={
        "casme2": _invert({"positive": ("happiness",), "negative": ("disgust", "sadness", "fear"), "surprise": ("surprise",), "other": ("repression", "others")}),
        "samm": _invert({"positive": ("happiness",), "negative": ("anger", "contempt", "disgust", "fear", "sadness"), "surprise": ("surprise",), "other": ("other",)}),
        "casme": _invert({"positive": ("happiness",), "negative": ("disgust", "sadness", "fear", "contempt"), "surprise": ("surprise",), "other": ("tense", "repression")}),
        # SMIC has only the first three classes (the paper evaluates it with 3 classes).
        "smic": _invert({"positive": ("positive",), "negative": ("negative",), "surprise": ("surprise",)}),
    },
    description="STRCN (Xia et al. 2019): happy -> positive; disgust, sadness, fear, contempt, anger -> negative; "
    "surprise; tense, repression, others -> other; SMIC keeps its 3 classes",
))

# ---------------------------------------------------------------------------------------------
# MEGC 2018 objective classes I-V (Davison et al. 2018), used by the cost-effective CNN paper
# ---------------------------------------------------------------------------------------------
# Objective classes by action-unit combination, from Davison, Merghani and Yap, "Objective classes
# for micro-facial expression recognition" (J. Imaging 2018), Table 2. A clip's class is the class
# of the most specific listed combination contained in its (certain) AUs; ties go to the lower class.
OBJECTIVE_CLASS_AUS: dict[str, tuple[frozenset[int], ...]] = {
    "I": tuple(map(frozenset, [(6,), (12,), (6, 12), (6, 7, 12), (7, 12)])),
    "II": tuple(map(frozenset, [(1, 2), (5,), (25,), (1, 2, 25), (25, 26), (5, 24)])),
    "III": tuple(map(frozenset, [(23,), (4,), (4, 7), (4, 5), (4, 5, 7), (17, 24), (4, 6, 7), (4, 38)])),
    "IV": tuple(map(frozenset, [(10,), (9,), (4, 9), (4, 40), (4, 5, 40), (4, 7, 9), (4, 9, 17), (4, 7, 10), (4, 5, 7, 9), (7, 10)])),
    "V": tuple(map(frozenset, [(1,), (15,), (1, 4), (6, 15), (15, 17)])),
    "VI": tuple(map(frozenset, [(1, 2, 4), (20,)])),
}


def objective_class_from_aus(aus: Iterable[str]) -> str:
    """MEGC 2018 objective class (``"I"``..``"VII"``) of a set of action units.

    An exact match with a listed combination wins; otherwise the largest listed combination that
    is a subset of the clip's AUs decides (the most specific evidence); with none, class VII.
    """
    units = au_numbers(aus)
    for cls, combos in OBJECTIVE_CLASS_AUS.items():
        if units in combos:
            return cls
    best: tuple[int, int, str] | None = None
    for rank, (cls, combos) in enumerate(OBJECTIVE_CLASS_AUS.items()):
        for combo in combos:
            if combo <= units and (best is None or len(combo) > best[0] or (len(combo) == best[0] and rank < best[1])):
                best = (len(combo), rank, cls)
    return best[2] if best else "VII"


def objective_class(record: Record) -> str | None:
    """The record's objective class: the annotated column when present, else the AU rules."""
    if record.dataset not in ("casme2", "samm"):
        return None
    given = getattr(record, "objective_class", None)
    if given:
        return given
    return objective_class_from_aus(getattr(record, "aus", ()))


def _megc2018(record: Record) -> str | None:
    cls = objective_class(record)
    return cls if cls in ROMAN[:5] else None


MEGC2018 = _add(LabelMap(
    name="megc2018",
    classes=ROMAN[:5],
    table={"casme2": {}, "samm": {}},
    rule=_megc2018,
    description="MEGC 2018 composite (CASME II + SAMM), objective classes I-V (VI, VII excluded); "
    "from the Objective Class column when present, else from the action units",
))

# ---------------------------------------------------------------------------------------------
# Each paper's class subsets
# ---------------------------------------------------------------------------------------------


def _identity(dataset: str, labels: Iterable[str]) -> dict[str, dict[str, str]]:
    return {dataset: {lab: lab for lab in labels}}


_add(LabelMap("shcnn-casme5", ("disgust", "surprise", "repression", "tense", "happiness"),
              _identity("casme", ("disgust", "surprise", "repression", "tense", "happiness")),
              description="SHCNN on CASME: the 5 largest classes (fear, contempt, sadness dropped)"))
_add(LabelMap("shcnn-casme2-5", ("happiness", "others", "disgust", "repression", "surprise"),
              _identity("casme2", ("happiness", "others", "disgust", "repression", "surprise")),
              description="SHCNN on CASME II: the 5 largest classes (fear, sadness dropped)"))
_add(LabelMap("shcnn-samm3", ("positive", "negative", "surprise"),
              {"samm": _invert({"positive": ("happiness",), "negative": ("anger", "fear", "disgust", "contempt", "sadness"), "surprise": ("surprise",)})},
              description="SHCNN on SAMM: positive (happiness), negative (anger, fear, disgust, contempt; the paper's "
              "count of 92 also includes sadness), surprise"))
_add(LabelMap("c3d-casme4", ("tense", "surprise", "repression", "disgust"),
              _identity("casme", ("tense", "surprise", "repression", "disgust")),
              description="3D-CNN (Wu et al. 2022) on CASME: tense, surprise, repression, disgust"))
_add(LabelMap("c3d-casme2-5", ("surprise", "repression", "happiness", "disgust", "others"),
              _identity("casme2", ("surprise", "repression", "happiness", "disgust", "others")),
              description="3D-CNN (Wu et al. 2022) on CASME II: surprise, repression, happiness, disgust, others"))

CASME3_7 = ("happy", "disgust", "fear", "anger", "sad", "surprise", "others")
_add(LabelMap("casme3-7", CASME3_7,
              {"casme3": {**{c: c for c in CASME3_7}, "happiness": "happy", "sadness": "sad"}},
              description="CAS(ME)^3 part A seven classes as published (Li et al. 2022, TPAMI): happy, disgust, fear, "
              "anger, sad, surprise, others"))

FER2013_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_add(LabelMap("fer2013-7", FER2013_NAMES, {"fer2013": {str(i): n for i, n in enumerate(FER2013_NAMES)}},
              description="FER2013 seven classes (codes 0..6)"))
FERPLUS_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
_add(LabelMap("ferplus8", FERPLUS_CLASSES, _identity("ferplus", FERPLUS_CLASSES),
              description="FERPlus eight classes (majority vote; soft targets kept on the records)"))
CKPLUS_NAMES = {"1": "anger", "2": "contempt", "3": "disgust", "4": "fear", "5": "happy", "6": "sadness", "7": "surprise"}
_add(LabelMap("ckplus7", tuple(CKPLUS_NAMES.values()), {"ckplus": dict(CKPLUS_NAMES)},
              description="CK+ seven emotions (codes 1..7)"))


def get_label_map(name: str) -> LabelMap:
    """The registered label map ``name`` (unknown names list the valid ones)."""
    return LABEL_MAPS.get(name)


def maps_for(dataset: str) -> list[LabelMap]:
    """Every registered map that defines classes for ``dataset``."""
    return [e.obj for e in LABEL_MAPS if e.obj.applies_to(dataset)]
