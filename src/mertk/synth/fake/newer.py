"""Native-format writers and fake trees for the newer micro-expression datasets: CAS(ME)^3 part A, 4DME, MMEW.

The same two layers as :mod:`mertk.synth.fake.micro`: writers and layout helpers that put the label sheet
and frames where the owners ship them (the synthetic benchmark uses them too), and fake trees that
return their own accounting of what a loader must find. Layout details that no public source we found
documents are marked *assumed* in the loaders' docstrings; the writers follow the same assumptions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...registry import FAKE_TREES
from .micro import _account, _awkward_clips, _Clip, _normal_clips, _write_table, write_frame

CASME3_SHEET = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
CASME3_COLUMNS = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion")
FOURDME_SHEET = "4DME_Labelling_Micro_release v1.xlsx"
FOURDME_COLUMNS = ("sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs")
MMEW_SHEET = "MMEW_Micro_Exp.xlsx"
MMEW_COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
                "remarks")

CASME3_EMOTIONS = ("happy", "disgust", "fear", "anger", "sad", "surprise", "others")
FOURDME_EMOTIONS = ("Positive", "Negative", "Surprise", "Repression", "Others")
MMEW_EMOTIONS = ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "others")


# ----------------------------------------------------------------------------------------------
# writers and layouts
# ----------------------------------------------------------------------------------------------


def _write_rows(path: Path, header: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    return _write_table(path, header, [[row.get(col) for col in header] for row in rows])


def write_casme3_labels(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write a CAS(ME)^3 part A label sheet (Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion)."""
    return _write_rows(path, CASME3_COLUMNS, rows)


def casme3_video_dir(root: Path, subject: str, letter: str) -> Path:
    """Colour frames of one CAS(ME)^3 video: ``spNO.1/j/color``."""
    return Path(root) / subject / letter / "color"


def casme3_frame_name(n: int) -> str:
    """File name of CAS(ME)^3 frame ``n``: ``28.jpg`` (assumed)."""
    return f"{n}.jpg"


def write_fourdme_labels(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write a 4DME micro labelling sheet (sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs)."""
    return _write_rows(path, FOURDME_COLUMNS, rows)


def fourdme_clip_dir(root: Path, subject: str, fold_name: str) -> Path:
    """Grey frames of a 4DME micro clip: ``gray_micro/<sub_ID>/<fold_name>``."""
    return Path(root) / "gray_micro" / subject / fold_name


def fourdme_frame_name(n: int) -> str:
    """File name of 4DME frame ``n``: ``img12.jpg`` (assumed; the loader reads the last number)."""
    return f"img{n}.jpg"


def write_mmew_labels(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write an MMEW micro-expression sheet (Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame,
    Action Units, Estimated Emotion, remarks)."""
    return _write_rows(path, MMEW_COLUMNS, rows)


def mmew_clip_dir(root: Path, emotion: str, filename: str) -> Path:
    """Frames of an MMEW micro clip: ``Micro_Expression/<emotion>/<Filename>``."""
    return Path(root) / "Micro_Expression" / emotion / filename


def mmew_frame_name(n: int) -> str:
    """File name of MMEW frame ``n``: ``12.jpg`` (assumed)."""
    return f"{n}.jpg"


# ----------------------------------------------------------------------------------------------
# fake trees
# ----------------------------------------------------------------------------------------------


@FAKE_TREES.register("casme3")
def write_fake_casme3(
    root: Path, *, subjects: int = 3, clips_per_subject: int = 3, seed: int = 0, cropped: bool = False,
    awkward: bool = False, frames: bool = True,
) -> dict:
    """Write a tiny CAS(ME)^3 part A copy: subjects ``spNO.1``...; clips alternate between video letters
    ``a`` and ``b``, so a letter holds several clips; each letter's ``color/`` folder holds the whole
    video (frames 0..last offset + 2), cut by the loader to each clip's onset..offset.

    ``awkward`` adds on ``spNO.1``, video ``j``: two clips in the one letter (one without apex, kept),
    onset after offset, an unknown emotion, a repeated row (duplicate), a non-whole onset, an offset
    beyond the video's last frame (``acc["expected_listed"]``: a skip or a warning, as the shared
    frame checks decide), and a clip in letter ``k`` whose folder is missing.
    """
    del cropped
    root = Path(root)
    rng = np.random.default_rng(seed)
    clips: list[_Clip] = []
    letters: dict[tuple[int, str], int] = {}
    for s in range(1, subjects + 1):
        for c in range(clips_per_subject):
            letter = "ab"[c % 2]
            onset = 10 + 40 * (c // 2) + int(rng.integers(0, 10))
            length = int(rng.integers(4, 8))
            apex = onset + int(rng.integers(1, length))
            label = CASME3_EMOTIONS[int(rng.integers(len(CASME3_EMOTIONS)))]
            clips.append(_Clip(s, f"spNO.{s}", f"{letter}@{onset}", onset, apex, onset + length, label, aus="L12+AU4"))
            letters[s, letter] = max(letters.get((s, letter), 0), onset + length + 2)
    listed: dict[str, str] = {}
    if awkward:
        ok = CASME3_EMOTIONS[0]
        clips += [
            _Clip(1, "spNO.1", "j@28", 28, 30, 34, ok),
            _Clip(1, "spNO.1", "j@40", 40, "/", 46, ok),
            _Clip(1, "spNO.1", "j@60", 60, 58, 55, ok, row_skip="onset 60 after offset 55"),
            _Clip(1, "spNO.1", "j@70", 70, 72, 75, "xyz", row_skip="unknown emotion 'xyz'"),
            _Clip(1, "spNO.1", "j@28", 28, 31, 34, ok, row_skip="duplicate clip"),
            _Clip(1, "spNO.1", "j", 85.5, 87, 89, ok, row_skip="not a whole frame number"),
            _Clip(1, "spNO.1", "k@10", 10, 12, 15, ok, folder_skip="frame folder not found"),
        ]
        letters[1, "j"] = 90
        beyond = _Clip(1, "spNO.1", "j@80", 80, 84, 400, ok)
        clips.append(beyond)
        listed["casme3/spNO.1/j@80"] = "offset"
    rows = [
        {"Subject": c.cell_subject, "Filename": c.filename.split("@")[0], "Onset": c.onset, "Apex": c.apex,
         "Offset": c.offset, "AU": c.aus, "Objective class": c.objective, "emotion": c.label}
        for c in clips
    ]
    annotation = write_casme3_labels(root / CASME3_SHEET, rows)
    if frames:
        for (s, letter), last in letters.items():
            folder = casme3_video_dir(root, f"spNO.{s}", letter)
            for n in range(0, last + 1):
                write_frame(folder / casme3_frame_name(n), n)
    out = _account("casme3", [c for c in clips if c.filename != "j@80"], lambda s: f"spNO.{s}", frames,
                   "frame folder not found")
    out["rows"] = len(clips)
    if awkward:
        out["clips"] += 1
        out["labels"][beyond.label] = out["labels"].get(beyond.label, 0) + 1
    if not frames:
        out["expected_skips"].update({k: "frame folder not found" for k in listed})
        out["skipped"] = len(out["expected_skips"])
        listed = {}
    return {"root": str(root), "annotation": str(annotation), "expected_listed": listed, **out}


@FAKE_TREES.register("fourdme")
def write_fake_fourdme(
    root: Path, *, subjects: int = 3, clips_per_subject: int = 3, seed: int = 0, cropped: bool = False,
    awkward: bool = False, frames: bool = True,
) -> dict:
    """Write a tiny 4DME micro copy: sub_IDs ``S01``..., clips ``S01_01``..., emotions in title case,
    AUs with ``(k)`` marks on every second clip (``AU4(k)+AU7``). ``awkward`` adds the bad rows of
    :func:`~mertk.synth.fake.micro.write_fake_casme2` on ``S01``."""
    del cropped
    root = Path(root)
    rng = np.random.default_rng(seed)

    def name(s: int, c: int) -> str:
        return f"S{s:02d}_{c:02d}"

    clips = _normal_clips(rng, range(1, subjects + 1), clips_per_subject, FOURDME_EMOTIONS, name, (20, 200))
    if awkward:
        clips += _awkward_clips(1, FOURDME_EMOTIONS, name, 300)
    for i, c in enumerate(clips):
        c.cell_subject = f"S{c.subject:02d}"
        c.aus = "AU4(k)+AU7" if i % 2 else "AU12"
    rows = [
        {"sub_ID": c.cell_subject, "fold_name": c.filename, "Emotion": c.label, "Onset": c.onset, "Apex": c.apex,
         "Offset": c.offset, "AUs": c.aus}
        for c in clips
    ]
    annotation = write_fourdme_labels(root / FOURDME_SHEET, rows)
    if frames:
        for c in clips:
            for n in c.frames:
                write_frame(fourdme_clip_dir(root, c.cell_subject, c.filename) / fourdme_frame_name(n), n)
    out = _account("fourdme", clips, lambda s: f"S{s:02d}", frames, "frame folder not found")
    return {"root": str(root), "annotation": str(annotation), **out}


@FAKE_TREES.register("mmew")
def write_fake_mmew(
    root: Path, *, subjects: int = 3, clips_per_subject: int = 3, seed: int = 0, cropped: bool = False,
    awkward: bool = False, frames: bool = True,
) -> dict:
    """Write a tiny MMEW micro copy: Subjects ``S01``..., clips ``S01_01``... under
    ``Micro_Expression/<emotion>/``. ``awkward`` adds the bad rows of
    :func:`~mertk.synth.fake.micro.write_fake_casme2` on ``S01``, plus an ``others`` clip whose folder
    sits under ``repression/`` (found by the loader's lookup over emotion folders)."""
    del cropped
    root = Path(root)
    rng = np.random.default_rng(seed)

    def name(s: int, c: int) -> str:
        return f"S{s:02d}_{c:02d}"

    clips = _normal_clips(rng, range(1, subjects + 1), clips_per_subject, MMEW_EMOTIONS, name, (20, 200))
    folders = {id(c): c.label for c in clips}
    if awkward:
        extra = _awkward_clips(1, MMEW_EMOTIONS, name, 300)
        moved = _Clip(1, 1, name(1, 30), 300, 302, 306, "others", frames=tuple(range(300, 307)))
        folders.update({id(c): c.label for c in extra})
        folders[id(moved)] = "repression"
        clips += [*extra, moved]
    for c in clips:
        c.cell_subject = f"S{c.subject:02d}"
    rows = [
        {"Subject": c.cell_subject, "Filename": c.filename, "OnsetFrame": c.onset, "ApexFrame": c.apex,
         "OffsetFrame": c.offset, "Action Units": c.aus, "Estimated Emotion": c.label, "remarks": None}
        for c in clips
    ]
    annotation = write_mmew_labels(root / MMEW_SHEET, rows)
    if frames:
        for c in clips:
            for n in c.frames:
                write_frame(mmew_clip_dir(root, folders[id(c)], c.filename) / mmew_frame_name(n), n)
    out = _account("mmew", clips, lambda s: f"S{s:02d}", frames, "frame folder not found")
    return {"root": str(root), "annotation": str(annotation), **out}
