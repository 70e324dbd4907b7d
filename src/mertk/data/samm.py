"""SAMM loader (Davison et al. 2018): the micro-movement FACS-codes spreadsheet and its frame folders."""

from __future__ import annotations

from pathlib import Path

from ..registry import DATASETS
from .base import find_file, require_dir
from .sheet import SheetClipDataset


@DATASETS.register(
    "samm", kind="clips",
    folders=("SAMM", "samm"),
    description="SAMM (Davison et al. 2018): 32 subjects, 159 micro-movements, 200 fps, FACS-coded",
)
class SAMM(SheetClipDataset):
    """SAMM as shipped: ``SAMM_Micro_FACS_Codes_v2.xlsx`` and ``SAMM/006/006_1_2/006_05562.jpg``.

    The spreadsheet opens with preamble rows (title, notes); the header row is found by its column
    names. Frame cells may be ints or floats and are the recording's global frame numbers, which is
    what the frame files carry. Subject cells may be ``"006"`` or ``6``; subjects become ``samm/006``.
    Action Units keep the annotators' alternatives as one item (``"R12 or 14"`` -> ``"R12 or AU14"``).
    Objective Classes (1..7) are stored as ``"I"``..``"VII"``. ROOT may also be the folder that
    directly holds ``006/``. Every other column (Inducement Code, Duration, Type, Notes) is kept in
    ``extra``.
    """

    name = "samm"
    fps = 200.0
    labels = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other")
    columns = {
        "subject": ("subject",), "filename": ("filename",), "onset": ("onset frame",), "apex": ("apex frame",),
        "offset": ("offset frame",), "aus": ("action units",), "emotion": ("estimated emotion",),
        "objective": ("objective classes", "objective class"),
    }
    required = ("subject", "filename", "onset", "apex", "offset", "aus", "emotion")
    display = {
        "subject": "Subject", "filename": "Filename", "onset": "Onset Frame", "apex": "Apex Frame",
        "offset": "Offset Frame", "aus": "Action Units", "emotion": "Estimated Emotion",
        "objective": "Objective Classes",
    }

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None):
        super().__init__()
        self.root = require_dir(root)
        self.annotation = find_file(
            self.root,
            ("SAMM_Micro_FACS_Codes_v2.xlsx", "SAMM_Micro_FACS_Codes*.xlsx", "SAMM_Micro_FACS_Codes*.xls",
             "SAMM_Micro_FACS_Codes*.csv"),
            "SAMM FACS-codes spreadsheet", annotation,
        )
        self.frames_root: Path = self._frames_root()
        self.read_sheet(self.annotation)

    def _frames_root(self) -> Path:
        """``ROOT/SAMM``, else ROOT when it directly holds subject folders (``006/``), else the
        expected ``ROOT/SAMM`` (absent: every clip is then listed without frames, with that path)."""
        if (self.root / "SAMM").is_dir():
            return self.root / "SAMM"
        if any(p.is_dir() and p.name.isdigit() for p in self.root.iterdir()):
            return self.root
        self.notes.append(f"no frame folder SAMM/ under {self.root}: clips are listed without frames")
        return self.root / "SAMM"

    def subject_id(self, number: int) -> str:
        return f"{number:03d}"

    def clip_folder(self, subject: str, filename: str) -> Path:
        return self.frames_root / subject / filename
