"""CASME II loader (coding spreadsheet + raw or cropped frame folders)."""

from __future__ import annotations

from pathlib import Path

from ..registry import DATASETS
from .base import find_dir, find_file, require_dir
from .sheet import SheetClipDataset


@DATASETS.register(
    "casme2", kind="clips",
    folders=("CASME2", "CASME_II", "CASME II", "CASMEII", "casme2"),
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
