"""4DME loader (Li et al. 2022), micro part: the micro labelling sheet and the grey frame folders."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from ..records import ClipRecord
from ..registry import DATASETS
from .base import find_file, require_dir
from .textsheet import TextSubjectSheet

_K_MARK = re.compile(r"\(\s*k\s*\)", re.I)


@DATASETS.register(
    "fourdme", kind="clips",
    folders=("4DME", "4DMicro", "fourdme"),
    description="4DME (Li et al. 2022), micro part: grey 2D frames, 60 fps (rate assumed)",
)
class FourDME(TextSubjectSheet):
    """4DME's micro-expressions as shipped: ``4DME_Labelling_Micro_release v1.xlsx`` and
    ``gray_micro/<sub_ID>/<fold_name>/``.

    Checked against a public toolkit that reads the release (MEB, tvaranka/meb,
    ``meb/datasets/datasets.py`` and ``config/dataset_config.py``): the sheet's name, its columns
    sub_ID, fold_name, Emotion, Onset, Apex, Offset and AUs, the grey frame path
    ``gray_micro/<sub_ID>/<fold_name>/``, and AUs carrying ``(k)`` marks (that toolkit leaves the marked
    units out of its AU vector; so does this loader, keeping them in ``extra["k_marked_aus"]``, since
    the mark's meaning is not documented where we looked). The sheet's other columns (one-hot emotion
    columns, eye blink, ...) are kept in ``extra``.

    Assumed: frame file names end in the frame number the Onset/Offset cells use (that toolkit checks
    the first and last file against them); sub_ID cells are kept verbatim as subject ids
    (``fourdme/<sub_ID>``); emotion cells are ``positive``, ``negative``, ``surprise``, ``repression``
    or ``others`` (any case); any other cell (e.g. one naming two emotions) is listed in ``skipped``.
    """

    name = "fourdme"
    fps = 60.0
    labels = ("positive", "negative", "surprise", "repression", "others")
    columns = {
        "subject": ("sub_id",), "filename": ("fold_name",), "onset": ("onset",), "apex": ("apex",),
        "offset": ("offset",), "aus": ("aus", "au"), "emotion": ("emotion",),
    }
    required = ("subject", "filename", "onset", "apex", "offset", "emotion")
    display = {
        "subject": "sub_ID", "filename": "fold_name", "onset": "Onset", "apex": "Apex", "offset": "Offset",
        "aus": "AUs", "emotion": "Emotion",
    }

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None):
        super().__init__()
        self.root = require_dir(root)
        self.annotation = find_file(
            self.root, ("4DME_Labelling_Micro_release v1.xlsx", "4DME_Labelling_Micro*.xlsx", "4DME_Labelling_Micro*.csv"),
            "4DME micro labelling sheet", annotation,
        )
        self.frames_root: Path = self.root / "gray_micro"
        if not self.frames_root.is_dir():
            self.notes.append(f"no frame folder gray_micro/ under {self.root}: clips are listed without frames")
        self.read_sheet(self.annotation)

    def _parse_row(
        self, source: str, n: int, row: Mapping[str, Any], use: Mapping[str, str], others: list[str],
        seen: Mapping[str, str],
    ) -> ClipRecord | None:
        record = super()._parse_row(source, n, row, use, others, seen)
        if record is None:
            return None
        marked = tuple(u for u in record.aus if _K_MARK.search(u))
        extra = record.extra + ((("k_marked_aus", "+".join(marked)),) if marked else ())
        return replace(record, aus=tuple(u for u in record.aus if u not in marked), extra=extra)

    def clip_folder(self, subject: str, filename: str) -> Path:
        return self.frames_root / subject / filename
