"""CASME loader (Yan et al. 2013): per-section coding spreadsheets and per-clip frame folders."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

from ..errors import DataError
from ..registry import DATASETS
from .base import find_file, require_dir
from .sheet import SheetClipDataset

CODING_PATTERNS = ("*coding*.xlsx", "*coding*.xls", "*coding*.csv")


@DATASETS.register(
    "casme", kind="clips",
    folders=("CASME", "casme"),
    description="CASME (Yan et al. 2013): 19 subjects, sections A and B, 8 emotions, 60 fps",
)
class CASME(SheetClipDataset):
    """CASME (sections A and B).

    We could not inspect the real release, so the layout is an assumption, kept loose:

    * Annotation: every file in ROOT whose name contains ``coding`` (any case) and ends in ``.xlsx``,
      ``.xls`` or ``.csv`` is read, one per section (e.g. ``CASME_A_Section_coding.xls``); each row
      keeps its file in ``source``. ``annotation=`` reads that one file only. Columns Subject,
      Filename, OnsetFrame, ApexFrame, OffsetFrame, Emotion (or Estimated Emotion), and Action Units
      when present; others go to ``extra``.
    * Subject numbers are unique across sections (19 people in all); subjects become ``casme/sub01``.
      The same subject and Filename in two section files is a duplicate and skipped.
    * Frames: the first of ``CASME_A/``, ``CASME_B/``, ``CASME_raw_selected/`` and ROOT itself holding
      ``sub01/<Filename>/`` (or ``sub1/``) with images whose names end in the frame number
      (``EP01_5-12.jpg``). A folder holding more than the annotated interval is cut to onset..offset.
    * Rows without an apex are kept with ``apex=None`` (as for CASME II).
    """

    name = "casme"
    fps = 60.0
    labels = ("tense", "happiness", "repression", "surprise", "disgust", "fear", "contempt", "sadness")
    columns = {
        "subject": ("subject",), "filename": ("filename",), "onset": ("onsetframe",), "apex": ("apexframe",),
        "offset": ("offsetframe",), "aus": ("action units",), "emotion": ("emotion", "estimated emotion"),
    }
    required = ("subject", "filename", "onset", "apex", "offset", "emotion")
    display = {
        "subject": "Subject", "filename": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
        "offset": "OffsetFrame", "aus": "Action Units", "emotion": "Emotion",
    }
    frame_dirs = ("CASME_A", "CASME_B", "CASME_raw_selected", ".")

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None):
        super().__init__()
        self.root = require_dir(root)
        if annotation is not None:
            files = [find_file(self.root, CODING_PATTERNS, "CASME coding spreadsheet", annotation)]
        else:
            files = sorted(
                p for p in self.root.iterdir()
                if p.is_file() and not p.name.startswith("~$") and any(fnmatch(p.name.lower(), pat) for pat in CODING_PATTERNS)
            )
            if not files:
                raise DataError(self.root, f"CASME coding spreadsheet not found (looked for {', '.join(CODING_PATTERNS)})")
        self.annotation = files[0]
        self.annotations: tuple[Path, ...] = tuple(files)
        self.frame_roots: tuple[Path, ...] = tuple(
            self.root if d == "." else self.root / d for d in self.frame_dirs if (self.root / d).is_dir()
        )
        self.notes.append(
            "frame folders searched (first hit wins): " + ", ".join(f"{p}/subNN/<Filename>" for p in self.frame_roots)
        )
        for path in files:
            self.read_sheet(path)

    def subject_id(self, number: int) -> str:
        return f"sub{number:02d}"

    def clip_folder(self, subject: str, filename: str) -> Path:
        """The first search folder holding ``subject/filename`` (``sub1`` accepted for ``sub01``);
        when none does, the path under the first search folder, for the skip message."""
        names = (subject, f"sub{int(subject[3:])}")
        for top in self.frame_roots:
            for name in names:
                folder = top / name / filename
                if folder.is_dir():
                    return folder
        return self.frame_roots[0] / subject / filename
