"""Coding spreadsheets whose Subject cells are names, not numbers (CAS(ME)^3 ``spNO.1``, 4DME, MMEW).

:class:`TextSubjectSheet` reuses :class:`~mertk.data.sheet.SheetClipDataset` row by row; only the
subject is kept as the file spells it (stripped), since these datasets' subject ids are not
``sub01``-style numbers.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..records import ClipRecord
from .base import cell_text
from .sheet import SheetClipDataset


class TextSubjectSheet(SheetClipDataset):
    """A :class:`SheetClipDataset` whose subject ids are the Subject cells' text, verbatim."""

    def __init__(self) -> None:
        super().__init__()
        self._subject_names: list[str] = []

    def subject_id(self, number: int) -> str:
        return self._subject_names[number]

    def _parse_row(
        self, source: str, n: int, row: Mapping[str, Any], use: Mapping[str, str], others: list[str],
        seen: Mapping[str, str],
    ) -> ClipRecord | None:
        text = cell_text(row[use["subject"]])
        if text:
            if text not in self._subject_names:
                self._subject_names.append(text)
            # the shared parser reads a number; hand it this subject's index, turned back by subject_id
            row = {**row, use["subject"]: self._subject_names.index(text)}
        return super()._parse_row(source, n, row, use, others, seen)
