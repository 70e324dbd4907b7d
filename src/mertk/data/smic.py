"""SMIC-HS loader (Li et al. 2013): labels and clips come from the folder tree, there is no spreadsheet."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ..records import ClipRecord
from ..registry import DATASETS
from .base import ClipDataset, numbered_frames, require_dir
from .fake.micro import write_fake_smic

_SUBJECT = re.compile(r"(?i)s0*(\d+)")


@DATASETS.register(
    "smic", kind="clips", fake=write_fake_smic,
    description="SMIC-HS (Li et al. 2013): 16 subjects, 164 micro-expression clips, 100 fps, 3 classes",
)
class SMIC(ClipDataset):
    """SMIC-HS as shipped: ``HS/s1/micro/positive/s1_po_01/image134618.bmp``.

    ROOT is the folder holding ``HS/`` or ``HS`` itself. Each folder under ``sN/micro/<label>/`` is a
    clip (``rows`` counts them); the label is the ``<label>`` folder's name and must be positive,
    negative or surprise (any other is skipped with the reason). SMIC has no apex annotation:
    ``apex`` is ``None``, ``onset`` and ``offset`` are the first and last frame numbers found.
    ``non_micro`` folders (non-micro-expression recordings) are noted in ``notes``, not loaded.
    Subjects become ``smic/s1``.
    """

    name = "smic"
    fps = 100.0
    labels = ("positive", "negative", "surprise")

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None):
        super().__init__()
        self.root = require_dir(root)
        if annotation is not None:
            raise DataError(annotation, "SMIC-HS has no annotation file: labels come from the folder names")
        hs = self.root / "HS" if (self.root / "HS").is_dir() else self.root
        subjects = sorted(
            (int(m.group(1)), p) for p in hs.iterdir() if p.is_dir() and (m := _SUBJECT.fullmatch(p.name))
        )
        if not subjects:
            raise DataError(self.root, "no SMIC-HS subject folders (expected HS/s1/micro/<label>/<clip>/)")
        self.hs = hs
        for number, folder in subjects:
            self._read_subject(f"s{number}", folder)

    def _read_subject(self, subject: str, folder: Path) -> None:
        micro = folder / "micro"
        non_micro = folder / "non_micro"
        if non_micro.is_dir():
            count = sum(1 for p in non_micro.iterdir() if p.is_dir())
            self.notes.append(f"{non_micro}: {count} non-micro-expression clip folder(s), not loaded")
        if not micro.is_dir():
            self.notes.append(f"{folder}: no micro/ folder")
            return
        for label_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
            for clip_dir in sorted(p for p in label_dir.iterdir() if p.is_dir()):
                self.rows += 1
                self._read_clip(subject, label_dir.name.strip(), clip_dir)

    def _read_clip(self, subject: str, label: str, clip_dir: Path) -> None:
        source = str(clip_dir.relative_to(self.hs.parent))
        key = f"{self.name}/{subject}/{clip_dir.name}"
        if label.lower() not in self.labels:
            self.skip(source, key, f"unknown emotion {label!r} (known: {', '.join(self.labels)})")
            return
        first = next((r.source for r in self.records if r.key == key), None)
        if first is not None:
            self.skip(source, key, f"duplicate clip (first at {first})")
            return
        try:
            _, numbers = numbered_frames(clip_dir)
        except DataError:
            numbers = ()  # attach_frames below records the same error as the skip reason
        record = ClipRecord(
            dataset=self.name, subject=f"{self.name}/{subject}", clip=clip_dir.name, label=label,
            onset=numbers[0] if numbers else None, offset=numbers[-1] if numbers else None,
            fps=self.fps, source=source,
        )
        self.records.append(self.attach_frames(record, clip_dir))
