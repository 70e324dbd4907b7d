"""Coding-spreadsheet machinery shared by the CASME II, SAMM and CASME loaders.

One row per clip: :class:`SheetClipDataset` parses every row of a coding spreadsheet into a
:class:`~mertk.records.ClipRecord` or a :class:`~mertk.records.Skip` with the file, row and reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from ..errors import DataError
from ..records import ClipRecord
from .base import ClipDataset, cell_int, cell_text, read_table, split_aus
from .labels import ROMAN



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
        if not self.check_interval(source, key, onset, offset):
            return None
        if key in seen:
            self.skip(source, key, f"duplicate clip (first at {seen[key]})")
            return None
        apex = self.checked_apex(source, key, onset, apex, offset)
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
