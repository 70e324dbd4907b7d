"""CASME II loader, and the coding-spreadsheet machinery shared with the SAMM and CASME loaders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from ..errors import DataError
from ..records import ClipRecord
from ..registry import DATASETS
from .base import ClipDataset, cell_int, cell_text, find_dir, find_file, read_table, require_dir, split_aus
from .fake.micro import write_fake_casme2

ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


def objective_roman(value: Any, *, column: str) -> str | None:
    """An objective-class cell (1..7, "1".."7" or "I".."VII") as its roman numeral; blank is ``None``.

    Raises ``ValueError`` with a readable message for anything else.
    """
    text = cell_text(value)
    if not text:
        return None
    if text.upper() in ROMAN:
        return text.upper()
    if text.isdigit() and 1 <= int(text) <= len(ROMAN):
        return ROMAN[int(text) - 1]
    raise ValueError(f"{column} is {text!r}, not 1..7 or I..VII")


def subject_number(value: Any, *, column: str = "Subject") -> int:
    """A subject cell (``1``, ``1.0``, ``"01"``, ``"sub01"``, ``"006"``) as its number."""
    text = cell_text(value)
    match = re.fullmatch(r"(?i)(?:sub(?:ject)?)?[\s_-]*0*(\d+)", text)
    if match is None:
        raise ValueError(f"{column} is {text!r}, not a subject number" if text else f"{column} is blank")
    return int(match.group(1))


class SheetClipDataset(ClipDataset):
    """A clip dataset annotated by coding spreadsheets, one row per clip (CASME II, SAMM, CASME).

    Subclasses set ``columns`` (field -> the header names that may carry it, normalised as
    :func:`~mertk.data.base.norm_header` does), ``required`` (fields whose column must exist),
    ``display`` (field -> the column name used in messages), and implement ``subject_id`` and
    ``clip_folder``. :meth:`read_sheet` parses one file: every row becomes a record or a skip.
    """

    columns: Mapping[str, tuple[str, ...]] = {}
    required: tuple[str, ...] = ("subject", "filename", "onset", "apex", "offset", "emotion")
    display: Mapping[str, str] = {}

    def subject_id(self, number: int) -> str:
        """The dataset's own spelling of subject ``number`` (``sub01``, ``006``)."""
        raise NotImplementedError

    def clip_folder(self, subject: str, filename: str) -> Path:
        """Where the frames of ``subject``'s clip ``filename`` live (it may not exist)."""
        raise NotImplementedError

    def read_sheet(self, path: Path) -> None:
        """Parse one coding spreadsheet into ``records`` and ``skipped``; raise DataError for a bad file."""
        header_names = [self.display[f] for f in self.required if len(self.columns[f]) == 1]
        table, rownums = read_table(path, header_names)
        use: dict[str, str] = {}
        for fld, names in self.columns.items():
            found = next((n for n in names if n in table.columns), None)
            if found is not None:
                use[fld] = found
            elif fld in self.required:
                raise DataError(path, f"no {self.display[fld]} column (looked for {', '.join(names)})")
        others = [c for c in table.columns if c not in use.values()]
        seen = {r.key: r.source for r in self.records}
        self.rows += len(table)
        for n, row in zip(rownums, table.to_dict("records")):
            record = self._parse_row(f"{path.name}:row {n}", n, row, use, others, seen)
            if record is not None:
                seen[record.key] = record.source
                folder = self.clip_folder(record.subject.removeprefix(f"{self.name}/"), record.clip)
                self.records.append(self.attach_frames(record, folder))

    def _parse_row(
        self, source: str, n: int, row: Mapping[str, Any], use: Mapping[str, str], others: list[str],
        seen: Mapping[str, str],
    ) -> ClipRecord | None:
        try:
            subject = self.subject_id(subject_number(row[use["subject"]], column=self.display["subject"]))
        except ValueError as exc:
            self.skip(source, f"row {n}", str(exc))
            return None
        filename = cell_text(row[use["filename"]])
        if not filename:
            self.skip(source, f"row {n}", f"{self.display['filename']} is blank")
            return None
        key = f"{self.name}/{subject}/{filename}"
        try:
            onset, apex, offset = (
                cell_int(row[use[f]], column=self.display[f]) for f in ("onset", "apex", "offset")
            )
            objective = (
                objective_roman(row[use["objective"]], column=self.display["objective"]) if "objective" in use else None
            )
        except ValueError as exc:
            self.skip(source, key, str(exc))
            return None
        for what, value in (("onset", onset), ("offset", offset)):
            if value is None:
                self.skip(source, key, f"{self.display[what]} is missing")
                return None
        label = cell_text(row[use["emotion"]])
        if not label:
            self.skip(source, key, f"{self.display['emotion']} is blank")
            return None
        if label.lower() not in self.labels:
            self.skip(source, key, f"unknown emotion {label!r} (known: {', '.join(self.labels)})")
            return None
        if not self.check_interval(source, key, onset, apex, offset):
            return None
        if key in seen:
            self.skip(source, key, f"duplicate clip (first at {seen[key]})")
            return None
        return ClipRecord(
            dataset=self.name,
            subject=f"{self.name}/{subject}",
            clip=filename,
            label=label,
            onset=onset,
            apex=apex,
            offset=offset,
            aus=split_aus(row[use["aus"]]) if "aus" in use else (),
            objective_class=objective,
            fps=self.fps,
            source=source,
            extra=tuple((c, cell_text(row[c])) for c in others if cell_text(row[c])),
        )


@DATASETS.register(
    "casme2", kind="clips", fake=write_fake_casme2,
    description="CASME II (Yan et al. 2014): 26 subjects, 255 spontaneous micro-expression clips, 200 fps",
)
class CASME2(SheetClipDataset):
    """CASME II as shipped: ``CASME2-coding-*.xlsx`` plus raw or cropped frame folders.

    ROOT holds the coding spreadsheet (the latest-named ``CASME2-coding-*.xlsx``, or an ``.xls``/``.csv``
    given as ``annotation``) and ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg`` (or ``CASME2_RAW/``)
    and/or ``Cropped/sub01/EP02_01f/reg_img46.jpg`` (or ``CASME2_Cropped/``). ``cropped=None`` takes
    the raw frames when present, else the cropped ones. Subject cells may be ``1``, ``"01"`` or
    ``"sub01"``; subjects become ``casme2/sub01``. Newer coding files' Objective Class (1..7) is stored
    as ``"I"``..``"VII"``.

    Rows whose ApexFrame is ``"/"`` or blank are **kept with** ``apex=None``: recipes that need an apex
    must spot it (e.g. with an apex spotter), never take the middle frame as if it were annotated.
    """

    name = "casme2"
    fps = 200.0
    labels = ("happiness", "surprise", "disgust", "repression", "others", "fear", "sadness")
    columns = {
        "subject": ("subject",), "filename": ("filename",), "onset": ("onsetframe",), "apex": ("apexframe",),
        "offset": ("offsetframe",), "aus": ("action units",), "emotion": ("estimated emotion",),
        "objective": ("objective class",),
    }
    required = ("subject", "filename", "onset", "apex", "offset", "aus", "emotion")
    display = {
        "subject": "Subject", "filename": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
        "offset": "OffsetFrame", "aus": "Action Units", "emotion": "Estimated Emotion", "objective": "Objective Class",
    }
    raw_dirs = ("CASME2_RAW_selected", "CASME2_RAW")
    cropped_dirs = ("Cropped", "CASME2_Cropped")

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None, cropped: bool | None = None):
        super().__init__()
        self.root = require_dir(root)
        self.annotation = find_file(
            self.root, ("CASME2-coding-*.xlsx", "CASME2-coding-*.xls", "CASME2-coding-*.csv"),
            "CASME II coding spreadsheet", annotation,
        )
        raw, crop = find_dir(self.root, self.raw_dirs), find_dir(self.root, self.cropped_dirs)
        self.cropped: bool = (raw is None and crop is not None) if cropped is None else cropped
        dirs = self.cropped_dirs if self.cropped else self.raw_dirs
        found = crop if self.cropped else raw
        if found is None:
            self.notes.append(f"no frame folder ({' or '.join(dirs)}) under {self.root}: clips are listed without frames")
        self.frames_root: Path = found if found is not None else self.root / dirs[0]
        self.read_sheet(self.annotation)

    def subject_id(self, number: int) -> str:
        return f"sub{number:02d}"

    def clip_folder(self, subject: str, filename: str) -> Path:
        return self.frames_root / subject / filename
