"""CAS(ME)^3 part A loader (Li et al. 2022): the micro-expression label sheet and per-video frame folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..records import ClipRecord
from ..registry import DATASETS
from .base import cell_int, cell_text, find_dir, find_file, require_dir
from .textsheet import TextSubjectSheet


@DATASETS.register(
    "casme3", kind="clips",
    folders=("CASME3", "CAS(ME)3", "CAS(ME)^3", "casme3"),
    description="CAS(ME)^3 part A (Li et al. 2022): micro-expressions in RGB-D videos, 30 fps (colour frames read)",
)
class CASME3(TextSubjectSheet):
    """CAS(ME)^3 part A as shipped: ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` and
    ``<subject>/<video letter>/color/<n>.jpg``.

    Checked against a public toolkit that reads the release (MEB, tvaranka/meb,
    ``meb/datasets/datasets.py`` and ``config/dataset_config.py``): the sheet's name, its columns
    Subject, Filename, Onset, Apex, Offset (plus AU, Objective class and emotion), the frame path
    ``<subject>/<Filename>/color/``, several rows sharing one Filename of one subject, and a handful of
    rows whose onset, apex or offset disagree with the frames (that toolkit patches them by row number;
    here they are listed in ``skipped`` or ``warnings``, never patched nor dropped silently).

    Assumed (not documented where we looked): Subject cells read ``spNO.1`` and are kept verbatim
    (subjects become ``casme3/spNO.1``); a frame file's name is its frame number (``28.jpg``) and the
    Onset/Offset cells are those numbers; the ``color/`` folder holds the whole video, so each clip is
    cut to onset..offset; the frames sit in ROOT or in ``ROOT/part_A`` or ``ROOT/ME_A`` (the first
    that holds subject folders); emotion cells are ``happy``, ``disgust``, ``fear``, ``anger``,
    ``sad``, ``surprise`` or ``others`` (``happiness``/``sadness`` accepted as spellings). Depth frames
    (``depth/`` beside ``color/``) are not read. The Objective class column is kept in ``extra``.

    One video letter holds several micro-expressions, so a clip id is the letter and its onset:
    ``casme3/spNO.1/j@28``.
    """

    name = "casme3"
    fps = 30.0
    labels = ("happy", "disgust", "fear", "anger", "sad", "surprise", "others", "happiness", "sadness")
    columns = {
        "subject": ("subject",), "filename": ("filename",), "onset": ("onset",), "apex": ("apex",),
        "offset": ("offset",), "aus": ("au", "aus", "action units"), "emotion": ("emotion",),
    }
    required = ("subject", "filename", "onset", "apex", "offset", "emotion")
    display = {
        "subject": "Subject", "filename": "Filename", "onset": "Onset", "apex": "Apex", "offset": "Offset",
        "aus": "AU", "emotion": "emotion",
    }
    frame_dirs = ("part_A", "ME_A", ".")

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None):
        super().__init__()
        self.root = require_dir(root)
        self.annotation = find_file(
            self.root, ("cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", "cas(me)3_part_A_ME_label*.xlsx",
                        "*part_A_ME_label*.xlsx", "*part_A_ME_label*.csv"),
            "CAS(ME)^3 part A label sheet", annotation,
        )
        self.frames_root: Path = find_dir(self.root, self.frame_dirs) or self.root
        self.read_sheet(self.annotation)

    def _parse_row(
        self, source: str, n: int, row: Mapping[str, Any], use: Mapping[str, str], others: list[str],
        seen: Mapping[str, str],
    ) -> ClipRecord | None:
        letter = cell_text(row[use["filename"]])
        try:
            onset = cell_int(row[use["onset"]], column=self.display["onset"])
        except ValueError:
            onset = None  # the shared parser lists the row with the reason
        if letter and onset is not None:
            row = {**row, use["filename"]: f"{letter}@{onset}"}
        return super()._parse_row(source, n, row, use, others, seen)

    def clip_folder(self, subject: str, filename: str) -> Path:
        return self.frames_root / subject / filename.split("@")[0] / "color"
