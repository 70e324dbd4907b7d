"""SAMM long videos (SAMM-LV, Yap et al. 2020; MEGC 2019-2021 spotting): whole recordings and the
micro- and macro-expression intervals annotated in them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError
from ..records import ClipRecord
from ..registry import DATASETS
from .base import ClipDataset, cell_int, cell_text, find_file, numbered_frames, read_table, require_dir, split_aus
from .sheet import subject_number

def _synthetic_fps(root: Path) -> float | None:
    """The frame rate recorded by ``mertk synth``'s long videos (100 fps), else ``None``."""
    import json

    path = root / "ground_truth.json"
    if not path.is_file():
        return None
    try:
        truth = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return float(truth["fps"]) if str(truth.get("format", "")).startswith("mertk-synth-long-videos") else None


TYPES = {"micro - 1/2": "micro", "micro": "micro", "macro": "macro"}


@DATASETS.register(
    "samm-long", kind="clips",
    description="SAMM long videos (Yap et al. 2020): whole 200 fps recordings with micro- and "
    "macro-expression intervals, for spotting",
)
class SAMMLong(ClipDataset):
    """SAMM long videos as released: ``SAMM_LongVideos_V1_Release.xlsx`` and ``006_1/006_1_00001.jpg``.

    The workbook opens with preamble rows; the header (Subject, Filename, Inducement Code, Onset,
    Apex, Offset, Duration, Type, Action Units, Notes) is found by its column names. ``Filename``
    ``006_1_3`` is event 3 of video ``006_1``. One record per event: its frames are the video's frames
    from Onset to Offset, ``label`` is ``"micro"`` or ``"macro"`` (from Type ``"Micro - 1/2"`` /
    ``"Macro"``), and ``extra`` keeps ``video`` and the other columns (Type, Inducement Code, Duration,
    Notes). The frame rate is 200 fps (SAMM's), the ``fps`` argument, or the one in a synthetic
    copy's ``ground_truth.json``. ROOT is the folder holding the workbook and the video folders, or its parent (with a
    ``SAMM_longvideos/`` folder, as ``mertk synth`` writes it).

    Every row must parse: a spotting ground truth with a silently missing event would miscount
    recall, so a bad row raises :class:`~mertk.errors.DataError` naming the file and row. A video
    folder that is absent is listed in ``skipped`` (its events keep their annotation, without frames).
    """

    name = "samm-long"
    fps = 200.0
    labels = ("micro", "macro")
    required = ("Subject", "Filename", "Onset", "Apex", "Offset", "Type")

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None, fps: float | None = None):
        super().__init__()
        root = require_dir(root)
        if (root / "SAMM_longvideos").is_dir():
            root = root / "SAMM_longvideos"
        self.root = root
        self.fps = float(fps) if fps is not None else _synthetic_fps(root) or self.fps
        self.annotation = find_file(root, ("SAMM_LongVideos*.xlsx", "SAMM_LongVideos*.xls", "SAMM_LongVideos*.csv"),
                                    "SAMM long-video annotation workbook", annotation)
        self._videos: dict[str, tuple[tuple[Path, ...], tuple[int, ...]]] = {}
        self._read(self.annotation)

    def _read(self, path: Path) -> None:
        table, rownums = read_table(path, self.required)
        self.rows = len(table)
        seen: dict[str, int] = {}
        for n, row in zip(rownums, table.to_dict("records")):
            try:
                record = self._parse(path, n, row)
            except ValueError as exc:
                raise DataError(path, str(exc), row=n) from None
            if record.clip in seen:
                raise DataError(path, f"duplicate event {record.clip} (first at row {seen[record.clip]})", row=n)
            seen[record.clip] = n
            video = dict(record.extra)["video"]
            folder = self.root / video
            if video not in self._videos and folder.is_dir():
                self._videos[video] = numbered_frames(folder)
            self.records.append(self.attach_frames(record, folder))

    def _parse(self, path: Path, n: int, row: dict[str, Any]) -> ClipRecord:
        subject = f"{subject_number(row['subject']):03d}"
        filename = cell_text(row["filename"])
        parts = filename.rsplit("_", 1)
        if len(parts) != 2 or not parts[1].isdigit() or not parts[0]:
            raise ValueError(f"Filename is {filename!r}, not <video>_<event> (e.g. 006_1_1)")
        video = parts[0]
        onset, apex, offset = (cell_int(row[c], column=c.title()) for c in ("onset", "apex", "offset"))
        if onset is None or offset is None:
            raise ValueError(f"{filename}: Onset and Offset are required")
        if not onset <= offset or (apex is not None and not onset <= apex <= offset):
            raise ValueError(f"{filename}: frames are not Onset <= Apex <= Offset ({onset}, {apex}, {offset})")
        kind = TYPES.get(" ".join(cell_text(row["type"]).lower().split()))
        if kind is None:
            raise ValueError(f"{filename}: Type is {cell_text(row['type'])!r}, not 'Micro - 1/2' or 'Macro'")
        known = {"subject", "filename", "onset", "apex", "offset", "action units"}
        extra = (("video", video),) + tuple((c, cell_text(v)) for c, v in row.items()
                                            if c not in known and cell_text(v))
        return ClipRecord(dataset=self.name, subject=f"{self.name}/{subject}", clip=filename, label=kind,
                          onset=onset, apex=apex, offset=offset, aus=split_aus(row.get("action units")),
                          fps=self.fps, source=f"{path.name}:row {n}", extra=extra)

    def videos(self) -> list[tuple[str, tuple[Path, ...], list[ClipRecord]]]:
        """Every video whose folder was found: (name, all its frame paths in order, its events)."""
        out = []
        for video, (paths, _) in sorted(self._videos.items()):
            events = [r for r in self.records if dict(r.extra)["video"] == video]
            out.append((video, paths, events))
        return out

    def video_frame_numbers(self, video: str) -> tuple[int, ...]:
        """The frame numbers of ``video``'s frames (parallel to the paths of :meth:`videos`)."""
        if video not in self._videos:
            raise DataError(self.root / video, "video folder not found")
        return self._videos[video][1]
