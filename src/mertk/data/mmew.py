"""MMEW loader (Ben et al. 2021), micro part: ``MMEW_Micro_Exp.xlsx`` and per-emotion frame folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..records import ClipRecord
from ..registry import DATASETS
from .base import cell_text, find_file, require_dir
from .textsheet import TextSubjectSheet


@DATASETS.register(
    "mmew", kind="clips",
    folders=("MMEW", "mmew"),
    description="MMEW (Ben et al. 2021), micro part: 300 micro-expressions of 36 subjects, 90 fps",
)
class MMEW(TextSubjectSheet):
    """MMEW's micro-expressions as shipped: ``MMEW_Micro_Exp.xlsx`` and
    ``Micro_Expression/<emotion>/<Filename>/``.

    Checked against a public toolkit that reads the release (MEB, tvaranka/meb,
    ``meb/datasets/datasets.py`` and ``config/dataset_config.py``): the sheet's name, its columns
    Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion and remarks
    (kept in ``extra``), the frame path ``Micro_Expression/<Estimated Emotion>/<Filename>/``, and rows
    whose apex and offset disagree with the frames (that toolkit patches 16 of them by row number; here
    they are listed in ``skipped`` or ``warnings``).

    Assumed: frame file names end in the frame number the sheet uses (that toolkit checks the first and
    last file against OnsetFrame/OffsetFrame); Subject cells are kept verbatim (``mmew/<Subject>``);
    emotion cells are ``happiness``, ``surprise``, ``disgust``, ``fear``, ``sadness``, ``anger`` or
    ``others`` (any case). The emotion folder is the emotion cell as written; when it is absent the
    clip's Filename is looked up under every emotion folder (that toolkit renames ``others`` to
    ``repression`` before building paths, so copies may hold either), first hit in sorted order.
    """

    name = "mmew"
    fps = 90.0
    labels = ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "others")
    columns = {
        "subject": ("subject",), "filename": ("filename",), "onset": ("onsetframe",), "apex": ("apexframe",),
        "offset": ("offsetframe",), "aus": ("action units",), "emotion": ("estimated emotion",),
    }
    required = ("subject", "filename", "onset", "apex", "offset", "aus", "emotion")
    display = {
        "subject": "Subject", "filename": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
        "offset": "OffsetFrame", "aus": "Action Units", "emotion": "Estimated Emotion",
    }

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None):
        super().__init__()
        self.root = require_dir(root)
        self.annotation = find_file(
            self.root, ("MMEW_Micro_Exp.xlsx", "MMEW_Micro_Exp*.xlsx", "MMEW_Micro_Exp*.csv"),
            "MMEW micro-expression sheet", annotation,
        )
        self.frames_root: Path = self.root / "Micro_Expression"
        if not self.frames_root.is_dir():
            self.notes.append(f"no frame folder Micro_Expression/ under {self.root}: clips are listed without frames")
        self._emotion: dict[tuple[str, str], str] = {}
        self.read_sheet(self.annotation)

    def _parse_row(
        self, source: str, n: int, row: Mapping[str, Any], use: Mapping[str, str], others: list[str],
        seen: Mapping[str, str],
    ) -> ClipRecord | None:
        record = super()._parse_row(source, n, row, use, others, seen)
        if record is not None:
            self._emotion[(record.subject.removeprefix(f"{self.name}/"), record.clip)] = cell_text(row[use["emotion"]])
        return record

    def clip_folder(self, subject: str, filename: str) -> Path:
        expected = self.frames_root / self._emotion.get((subject, filename), "") / filename
        if expected.is_dir() or not self.frames_root.is_dir():
            return expected
        hits = sorted(p / filename for p in self.frames_root.iterdir() if (p / filename).is_dir())
        return hits[0] if hits else expected
