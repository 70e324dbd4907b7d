"""The layout of the SAMM long-video release (SAMM-LV, Yap et al. 2020) and a small fake tree in it.

The layout constants are shared with the synthetic long videos (:mod:`mertk.synth.long`), so the
``samm-long`` loader reads the fake tree, the synthetic recordings and a real copy through one code path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...registry import FAKE_TREES
from .micro import _write_table, write_frame

LONG_ROOT = "SAMM_longvideos"
LONG_XLSX = "SAMM_LongVideos_V1_Release.xlsx"
LONG_COLUMNS = ("Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type",
                "Action Units", "Notes")
LONG_PREAMBLE = (
    ("SAMM Long Videos - Micro and Macro Expression Annotations (V1 Release)",),
    (),
    ("Onset, Apex and Offset are frame numbers of the long video (first frame = 1).",),
    ("Type: Micro - 1/2 (micro-expression) or Macro (macro-expression).",),
    (),
)
MICRO_TYPE, MACRO_TYPE = "Micro - 1/2", "Macro"


@FAKE_TREES.register("samm-long")
def write_fake_samm_long(root: Path, *, videos: int = 2, frames: int = 40, seed: int = 0,
                         awkward: bool = False) -> dict[str, Any]:
    """Write a tiny SAMM long-video copy under ``root/SAMM_longvideos``: the workbook (preamble rows,
    then the header) and videos ``006_1``, ``007_1``, ... of ``frames`` 16x16 grey frames, each holding
    one micro- and one macro-expression event at random places.

    ``awkward`` adds a micro event of video ``099_1``, whose folder is absent (the loader keeps the
    event's annotation and lists it in ``skipped``). Returns ``rows``, ``clips``, ``clips_with_frames``,
    ``labels``, ``subjects``, ``skipped`` (count) and ``expected_skips`` (record key -> reason fragment).
    """
    folder = Path(root) / LONG_ROOT
    rng = np.random.default_rng(seed)
    rows: list[list[Any]] = []
    labels = {"micro": 0, "macro": 0}
    for v in range(videos):
        sid = f"{6 + v:03d}"
        name = f"{sid}_1"
        for n in range(1, frames + 1):
            write_frame(folder / name / f"{name}_{n:05d}.jpg", n)
        micro_on = int(rng.integers(2, frames // 2 - 8))
        macro_on = int(rng.integers(frames // 2, frames - 12))
        spans = ((MICRO_TYPE, micro_on, micro_on + 2, micro_on + 5), (MACRO_TYPE, macro_on, macro_on + 4, macro_on + 10))
        for k, (kind, onset, apex, offset) in enumerate(spans, start=1):
            rows.append([sid, f"{name}_{k}", 1, onset, apex, offset, offset - onset + 1, kind, "4+7", None])
            labels["micro" if kind == MICRO_TYPE else "macro"] += 1
    skipped: dict[str, str] = {}
    if awkward:
        rows.append(["099", "099_1_1", 1, 3, 5, 8, 6, MICRO_TYPE, "12", None])
        labels["micro"] += 1
        skipped["samm-long/099/099_1_1"] = "frame folder not found"
    annotation = _write_table(folder / LONG_XLSX, LONG_COLUMNS, rows, preamble=LONG_PREAMBLE)
    return {"root": str(folder), "annotation": str(annotation), "rows": len(rows), "clips": len(rows),
            "clips_with_frames": len(rows) - len(skipped), "labels": labels,
            "subjects": videos + bool(awkward), "skipped": len(skipped), "expected_skips": skipped}
