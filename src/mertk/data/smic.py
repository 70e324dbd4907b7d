"""SMIC-HS loader (Li et al. 2013): labels and clips come from the folder tree, there is no spreadsheet."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ..errors import DataError
from ..records import ClipRecord
from ..registry import DATASETS
from .base import ClipDataset, cell_int, cell_text, numbered_frames, read_table, require_dir

_SUBJECT = re.compile(r"(?i)s0*(\d+)")
_CLIP = re.compile(r"(?i)s0*(\d+)_([a-z]+)_0*(\d+)")
APEX_COLUMNS = ("subject", "clip", "apex_frame")
APEX_LABELS = {"0": "negative", "1": "positive", "2": "surprise"}


@DATASETS.register(
    "smic", kind="clips",
    folders=("SMIC", "SMIC-HS", "SMIC_HS", "SMIC_all_raw", "smic"),
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

    ``annotation`` may name a community apex file (the widely shared ``smic_apex.xlsx``, or the same
    table as csv) with columns ``data, subject, clip, label, onset_frame, apex_frame, offset_frame``
    (and ``*_frame_path`` columns, which are never opened): ``subject`` a bare number (``20``),
    ``clip`` the clip folder's name (``s20_ne_01``; zero-padding ignored), frames the numbers of the
    ``imageNNNNNN.bmp`` files, ``label`` 0 negative, 1 positive, 2 surprise (or the names). A row's
    apex then replaces spotting: the record gets ``apex`` and ``apex_source`` (``FILE, row N``).
    The clip folder stays the clip: SMIC-HS ships each clip trimmed to its onset..offset, so the
    file's onset/offset do not narrow it; where they differ from the folder's first/last frame, or the
    file's label from the folder's, the clip keeps the folder's and a warning lists it. An apex outside
    the clip's frames is a warning and stays ``None`` (spotted). Rows naming no clip folder, duplicate
    rows and rows of another dataset (``data``) are skipped; clips without a row are noted (spotted).
    """

    name = "smic"
    fps = 100.0
    labels = ("positive", "negative", "surprise")

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None):
        super().__init__()
        self.root = require_dir(root)
        hs = self.root / "HS" if (self.root / "HS").is_dir() else self.root
        subjects = sorted(
            (int(m.group(1)), p) for p in hs.iterdir() if p.is_dir() and (m := _SUBJECT.fullmatch(p.name))
        )
        if not subjects:
            raise DataError(self.root, "no SMIC-HS subject folders (expected HS/s1/micro/<label>/<clip>/)")
        self.hs = hs
        for number, folder in subjects:
            self._read_subject(f"s{number}", folder)
        if annotation is not None:
            self.annotation = Path(annotation).expanduser()
            if not self.annotation.is_file():
                raise DataError(self.annotation, "SMIC apex file not found")
            self._read_apex_file(self.annotation)

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

    def _read_apex_file(self, path: Path) -> None:
        table, row_numbers = read_table(path, APEX_COLUMNS)
        index = {_clip_id(r.clip): i for i, r in enumerate(self.records)}
        claimed: dict[int, str] = {}
        for values, row in zip(table.to_dict("records"), row_numbers):
            source = f"{path}, row {row}"
            clip = cell_text(values.get("clip"))
            subject = cell_text(values.get("subject"))
            digits = re.findall(r"\d+", subject)
            item = f"{self.name}/s{int(digits[-1])}/{clip}" if digits else f"{self.name}/{clip}"
            data = cell_text(values.get("data")).lower()
            if data and not data.startswith("smic"):
                self.skip(source, item, f"data is {data!r}, not smic")
                continue
            i = index.get(_clip_id(clip, subject))
            if i is None:
                self.skip(source, item, f"no clip folder {clip!r} of subject {subject!r} under {self.hs}")
                continue
            if i in claimed:
                self.skip(source, item, f"duplicate row for {self.records[i].key} (first at {claimed[i]})")
                continue
            claimed[i] = source
            try:
                onset, apex, offset = (cell_int(values.get(c), column=c) for c in ("onset_frame", "apex_frame", "offset_frame"))
            except ValueError as exc:
                self.skip(source, item, str(exc))
                continue
            self.records[i] = self._apply_apex(self.records[i], source, values.get("label"), onset, apex, offset)
        missing = [r.key for i, r in enumerate(self.records) if i not in claimed]
        if missing:
            self.notes.append(f"{len(missing)} clip(s) have no row in {path}, apex spotted: {', '.join(missing)}")

    def _apply_apex(self, record: ClipRecord, source: str, label, onset: int | None, apex: int | None, offset: int | None) -> ClipRecord:
        named = cell_text(label).lower()
        named = APEX_LABELS.get(named, named)
        if named and named != record.label.lower():
            self.warn(source, record.key, f"label {cell_text(label)!r} ({named}), the folder says {record.label!r}",
                      "folder label kept")
        numbers = record.frame_numbers
        for what, value, folder_value in (("onset", onset, numbers[0] if numbers else None),
                                          ("offset", offset, numbers[-1] if numbers else None)):
            if value is not None and folder_value is not None and value != folder_value:
                self.warn(source, record.key, f"{what}_frame {value}, the folder's {what} frame is {folder_value}",
                          "the clip folder's frames kept")
        if apex is None:
            return record
        if apex not in numbers:
            where = f"{numbers[0]}..{numbers[-1]}" if numbers else "none found"
            self.warn(source, record.key, f"apex_frame {apex} not among the clip's frames ({where})", "apex unknown: spotted")
            return record
        return replace(record, apex=apex, apex_source=source)


def _clip_id(clip: str, subject: str = "") -> tuple:
    """A SMIC clip name compared whatever its zero-padding (``s03_ne_01`` = ``s3_ne_1``); a bare
    ``subject`` number must agree with the clip's own."""
    m = _CLIP.fullmatch(clip.strip())
    if m is None:
        return ("raw", clip.strip().lower())
    number = int(m.group(1))
    digits = re.findall(r"\d+", subject)
    if digits and int(digits[-1]) != number:
        return ("mismatch", subject, clip)
    return (number, m.group(2).lower(), int(m.group(3)))
