"""A fake MEGC 2019 release with the real files' counts and awkward properties (no licensed content).

:func:`write_fake_megc2019_release` writes, under one composite root, what a user holds after
downloading the three datasets and the official list, reproducing the properties of the real files
that the loaders must survive:

* ``CASME2/CASME2-coding-20140508.xlsx``: 255 rows of 26 subjects (no Objective Class column); through
  the megc2019 label map they give 147 clips, two "negative" clips more than the official list's 145;
  two subjects hold only clips the map excludes.
* ``SAMM/SAMM_Micro_FACS_Codes_v2.xlsx``: 159 rows of 32 subjects after the preamble rows, two of them
  with an apex outside onset..offset (``028_4_1``: 1071, 1143, 1134; ``032_3_1``: 4896, 1930, 4970),
  both in the official list.
* ``SMIC/HS/``: 164 clips of 16 subjects.
* ``combined_3class_gt.csv``: 442 rows without a header row (dataset, subject, clip, label with 0
  negative, 1 positive, 2 surprise), SAMM subjects unpadded (``28`` for ``028``), SMIC ids padded
  (``s01``, ``s01_ne_01`` for ``s1``, ``s1_ne_01``).

Every clip has a few tiny frames, so every listed clip is usable. Clip names and labels are
synthetic: only the counts and the properties above follow the real files.
"""

from __future__ import annotations

import csv
from itertools import cycle
from pathlib import Path
from typing import Any

from .micro import (
    casme2_clip_dir, casme2_frame_name, samm_clip_dir, samm_frame_name, smic_frame_name, write_casme2_coding,
    write_frame, write_samm_coding,
)

MEGC2019_CLASSES = ("negative", "positive", "surprise")
# (subjects, per class counts of the official list) as the real MEGC 2019 files hold them
OFFICIAL_COUNTS = {
    "smic": (16, {"negative": 70, "positive": 51, "surprise": 43}),
    "casme2": (24, {"negative": 88, "positive": 32, "surprise": 25}),
    "samm": (28, {"negative": 92, "positive": 26, "surprise": 15}),
}
SMIC_SUBJECTS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 15, 18, 19, 20)
BAD_APEX_ROWS = (("028_4_1", 28, 1071, 1143, 1134, "Anger"), ("032_3_1", 32, 4896, 1930, 4970, "Disgust"))


def _write_frames(folder: Path, numbers: range, name) -> None:
    for n in numbers:
        write_frame(folder / name(n), n % 200)


def write_fake_megc2019_release(root: str | Path) -> dict[str, Any]:
    """Write the fake release under ``root`` (see the module docstring) and return its accounting:
    the official list's path and per-dataset figures, the extra sheet clips and the bad-apex clips."""
    root = Path(root)
    official: list[tuple[str, str, str, int]] = []

    # CASME II, the 2014 sheet: megc2019 negative = disgust + repression
    casme2_rows: list[tuple[int, str, str]] = []
    plan = (["disgust"] * 62 + ["repression"] * 28 + ["happiness"] * 32 + ["surprise"] * 25)  # 147 mapped
    subjects = cycle(range(1, 25))
    counters: dict[int, int] = {}
    for i, emotion in enumerate(plan):
        s = next(subjects)
        counters[s] = counters.get(s, 0) + 1
        casme2_rows.append((s, f"EP{counters[s]:02d}_{i % 9 + 1:02d}f", emotion))
    others = cycle(range(1, 27))
    for i, emotion in enumerate(["others"] * 99 + ["fear"] * 2 + ["sadness"] * 7):  # 108 excluded by the map
        s = 25 + i % 2 if i < 20 else next(others)
        counters[s] = counters.get(s, 0) + 1
        casme2_rows.append((s, f"EP{counters[s]:02d}_{i % 9 + 1:02d}o", emotion))
    extra_negative = [casme2_rows[0], casme2_rows[24]]  # two negatives the official list leaves out
    rows = []
    for k, (s, name, emotion) in enumerate(casme2_rows):
        onset = 10 + k
        rows.append({"Subject": s, "Filename": name, "OnsetFrame": onset, "ApexFrame": onset + 1,
                     "OffsetFrame": onset + 2, "Action Units": "4", "Estimated Emotion": emotion})
        _write_frames(casme2_clip_dir(root / "CASME2", s, name), range(onset, onset + 3), casme2_frame_name)
        label = {"disgust": 0, "repression": 0, "happiness": 1, "surprise": 2}.get(emotion)
        if label is not None and (s, name, emotion) not in extra_negative:
            official.append(("casme2", f"sub{s:02d}", name, label))
    write_casme2_coding(root / "CASME2" / "CASME2-coding-20140508.xlsx", rows)

    # SAMM, v2 sheet: megc2019 negative = anger, contempt, disgust, fear, sadness
    samm_ids = list(range(6, 38))
    mapped = (["Anger"] * 55 + ["Contempt"] * 12 + ["Disgust"] * 8 + ["Fear"] * 8 + ["Sadness"] * 7
              + ["Happiness"] * 26 + ["Surprise"] * 15)  # 131 mapped + the two bad-apex rows = 133
    samm_rows: list[tuple[int, str, int, int, int, str]] = []
    counters = {}
    subjects = cycle(samm_ids[:28])
    for i, emotion in enumerate(mapped):
        s = next(subjects)
        counters[s] = counters.get(s, 0) + 1
        onset = 1000 + 10 * i
        samm_rows.append((s, f"{s:03d}_{counters[s]}_{i % 5 + 1}", onset, onset + 1, onset + 2, emotion))
    for name, s, onset, apex, offset, emotion in BAD_APEX_ROWS:
        samm_rows.append((s, name, onset, apex, offset, emotion))
    others = cycle(samm_ids)
    for i in range(26):
        s = next(others) if i >= 8 else samm_ids[28 + i % 4]
        counters[s] = counters.get(s, 0) + 1
        onset = 3000 + 10 * i
        samm_rows.append((s, f"{s:03d}_{counters[s]}_9", onset, onset + 1, onset + 2, "Other"))
    rows = []
    for s, name, onset, apex, offset, emotion in samm_rows:
        rows.append({"Subject": f"{s:03d}", "Filename": name, "Inducement Code": 1, "Onset Frame": onset,
                     "Apex Frame": apex, "Offset Frame": offset, "Type": "Micro - 1/2", "Action Units": "4",
                     "Notes": None, "Estimated Emotion": emotion, "Objective Classes": 7})
        _write_frames(samm_clip_dir(root / "SAMM", s, name), range(onset, offset + 1),
                      lambda n, s=s: samm_frame_name(s, n))
        label = {"Happiness": 1, "Surprise": 2, "Other": None}.get(emotion, 0)
        if label is not None:
            official.append(("samm", str(s), name, label))
    write_samm_coding(root / "SAMM" / "SAMM_Micro_FACS_Codes_v2.xlsx", rows)

    # SMIC-HS: labels from the folders
    subjects = cycle(SMIC_SUBJECTS)
    counters_smic: dict[tuple[int, str], int] = {}
    plan = ["negative"] * 70 + ["positive"] * 51 + ["surprise"] * 43
    codes = {"negative": "ne", "positive": "po", "surprise": "sur"}
    for i, label in enumerate(plan):
        s = next(subjects)
        counters_smic[s, label] = n = counters_smic.get((s, label), 0) + 1
        folder = root / "SMIC" / "HS" / f"s{s}" / "micro" / label / f"s{s}_{codes[label]}_{n:02d}"
        first = 100000 + 10 * i
        _write_frames(folder, range(first, first + 3), smic_frame_name)
        official.append(("smic", f"s{s:02d}", f"s{s:02d}_{codes[label]}_{n:02d}", MEGC2019_CLASSES.index(label)))

    order = {"smic": 0, "casme2": 1, "samm": 2}
    official.sort(key=lambda row: order[row[0]])
    gt = root / "combined_3class_gt.csv"
    with gt.open("w", newline="") as fh:
        csv.writer(fh).writerows(official)
    return {
        "root": str(root),
        "official": str(gt),
        "official_rows": len(official),
        "counts": {d: {"clips": sum(c.values()), "subjects": n, "classes": c} for d, (n, c) in OFFICIAL_COUNTS.items()},
        "sheet_rows": {"casme2": len(casme2_rows), "samm": len(samm_rows), "smic": len(plan)},
        "extra_sheet_clips": [f"casme2/sub{s:02d}/{name}" for s, name, _ in extra_negative],
        "bad_apex": [f"samm/{s:03d}/{name}" for name, s, *_ in BAD_APEX_ROWS],
    }
