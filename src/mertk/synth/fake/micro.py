"""Native-format writers and fake trees for the micro-expression datasets (CASME II, SAMM, SMIC-HS, CASME).

Two layers:

* **writers and layout helpers** (``write_casme2_coding``, ``casme2_clip_dir``, ``casme2_frame_name``,
  ...) put annotation files and frames exactly where and how the dataset owners ship them. The
  synthetic benchmark uses them to write its datasets, so the loaders read synthetic and real copies
  through the same code.
* **fake trees** (``write_fake_casme2``, ...) write a tiny deterministic copy (16x16 grey frames) and
  return their own accounting of what a loader must find: rows, clips, clips with frames, skipped
  items with the expected reason, labels and subjects. ``awkward=True`` adds the bad rows real copies
  have; ``frames=False`` writes the annotation only (a "spreadsheet-only" copy).

Writers accept ``.xlsx`` (written with openpyxl: header cells as text, ints as numbers) and ``.csv``.
Cell values are written as given, so a caller can reproduce the owners' cell types (CASME II subject
``1`` as a number, SAMM subject ``"006"`` as text) or the odd ones found in re-saved copies.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np
import openpyxl

from ...registry import FAKE_TREES

CASME2_COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion")
CASME2_OBJECTIVE = "Objective Class"
SAMM_COLUMNS = (
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Type",
    "Action Units", "Notes", "Estimated Emotion", "Objective Classes",
)
SAMM_PREAMBLE = (
    ("SAMM - Spontaneous Actions and Micro-Movements: Micro-Movement FACS Codes (v2)",),
    (),
    ("Notes:",),
    ("Onset, Apex and Offset Frame are frame numbers of the original recording.",),
    ("Inducement Code: the stimulus shown; Type: duration class of the movement.",),
    (),
)
CASME_COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Emotion")
SMIC_CODES = {"positive": "po", "negative": "ne", "surprise": "sur"}

# native spellings of each vocabulary, as the owners write them
CASME2_EMOTIONS = ("happiness", "surprise", "disgust", "repression", "others", "fear", "sadness")
SAMM_EMOTIONS = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
SMIC_EMOTIONS = ("positive", "negative", "surprise")
CASME_EMOTIONS = ("tense", "happiness", "repression", "surprise", "disgust", "fear", "contempt", "sadness")


# ----------------------------------------------------------------------------------------------
# writers and layouts
# ----------------------------------------------------------------------------------------------


def _write_table(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]], preamble: Sequence[Sequence[Any]] = ()
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.title = "Sheet1"
        for line in preamble:
            # openpyxl drops an empty append; a None cell keeps the blank row in place
            sheet.append(list(line) or [None])
        sheet.append(list(header))
        for line in rows:
            sheet.append(list(line))
        book.save(path)
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerows([list(line) for line in preamble])
            writer.writerow(header)
            writer.writerows(["" if v is None else v for v in line] for line in rows)
    else:
        raise ValueError(f"{path}: can only write .xlsx or .csv annotation files")
    return path


def write_casme2_coding(path: Path, rows: Sequence[Mapping[str, Any]], *, objective_class: bool = False) -> Path:
    """Write a CASME II coding spreadsheet (``CASME2-coding-*.xlsx``).

    Each row maps the column names (Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units,
    Estimated Emotion, and with ``objective_class`` the newer files' Objective Class) to cell values.
    A missing or ``None`` ApexFrame is written as ``"/"``, as in the owners' file.
    """
    header = CASME2_COLUMNS + ((CASME2_OBJECTIVE,) if objective_class else ())
    body = []
    for row in rows:
        values = {**row}
        if values.get("ApexFrame") is None:
            values["ApexFrame"] = "/"
        body.append([values.get(col) for col in header])
    return _write_table(path, header, body)


def casme2_clip_dir(root: Path, subject: int, filename: str, *, cropped: bool = False) -> Path:
    """Frame folder of a CASME II clip: ``CASME2_RAW_selected/sub01/EP02_01f`` or ``Cropped/sub01/EP02_01f``."""
    return Path(root) / ("Cropped" if cropped else "CASME2_RAW_selected") / f"sub{subject:02d}" / filename


def casme2_frame_name(n: int, *, cropped: bool = False) -> str:
    """File name of CASME II frame ``n``: ``img46.jpg`` (raw) or ``reg_img46.jpg`` (cropped)."""
    return f"reg_img{n}.jpg" if cropped else f"img{n}.jpg"


def write_samm_coding(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write a SAMM FACS-codes spreadsheet: the preamble rows, then the header, then ``rows``.

    Rows map the SAMM column names to values; a missing Duration is filled as
    ``Offset Frame - Onset Frame + 1`` when both are numbers, as the owners' file has it.
    """
    body = []
    for row in rows:
        values = {**row}
        onset, offset = values.get("Onset Frame"), values.get("Offset Frame")
        if values.get("Duration") is None and isinstance(onset, (int, float)) and isinstance(offset, (int, float)):
            values["Duration"] = int(offset) - int(onset) + 1
        body.append([values.get(col) for col in SAMM_COLUMNS])
    return _write_table(path, SAMM_COLUMNS, body, preamble=SAMM_PREAMBLE)


def samm_clip_dir(root: Path, subject: int, filename: str) -> Path:
    """Frame folder of a SAMM clip: ``SAMM/006/006_1_2``."""
    return Path(root) / "SAMM" / f"{subject:03d}" / filename


def samm_frame_name(subject: int, n: int) -> str:
    """File name of SAMM frame ``n`` (the recording's global frame number): ``006_05562.jpg``."""
    return f"{subject:03d}_{n:05d}.jpg"


def smic_clip_dir(root: Path, subject: int, label: str, index: int) -> Path:
    """Frame folder of a SMIC-HS clip: ``HS/s1/micro/positive/s1_po_01``."""
    code = SMIC_CODES.get(label, label[:2])
    return Path(root) / "HS" / f"s{subject}" / "micro" / label / f"s{subject}_{code}_{index:02d}"


def smic_frame_name(n: int) -> str:
    """File name of SMIC-HS frame ``n``: ``image134618.bmp`` (six digits)."""
    return f"image{n:06d}.bmp"


SMIC_APEX_COLUMNS = (
    "data", "subject", "clip", "label", "onset_frame", "apex_frame", "offset_frame",
    "onset_frame_path", "apex_frame_path", "offset_frame_path",
)
SMIC_APEX_CODES = {"negative": 0, "positive": 1, "surprise": 2}


def write_smic_apex(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write a community SMIC-HS apex table (``smic_apex.xlsx``, or ``.csv``) with the columns
    :data:`SMIC_APEX_COLUMNS`; each row maps column names to cell values, written as given."""
    return _write_table(path, SMIC_APEX_COLUMNS, [[row.get(c) for c in SMIC_APEX_COLUMNS] for row in rows])


def write_casme_coding(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write one CASME section coding sheet (Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame,
    Action Units, Emotion)."""
    return _write_table(path, CASME_COLUMNS, [[row.get(col) for col in CASME_COLUMNS] for row in rows])


def casme_clip_dir(root: Path, subject: int, filename: str, *, section: str | None = None) -> Path:
    """Frame folder of a CASME clip: ``CASME_raw_selected/sub01/EP01_5``, or ``CASME_A/sub01/EP01_5``
    when ``section`` (``"A"`` or ``"B"``) is given."""
    top = f"CASME_{section}" if section else "CASME_raw_selected"
    return Path(root) / top / f"sub{subject:02d}" / filename


def casme_frame_name(filename: str, n: int) -> str:
    """File name of CASME frame ``n`` of clip ``filename``: ``EP01_5-12.jpg``."""
    return f"{filename}-{n}.jpg"


def write_frame(path: Path, value: int, size: int = 16) -> Path:
    """Write one small deterministic grey frame (a horizontal ramp offset by ``value``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ramp = (np.arange(size, dtype=np.int64)[None, :] * 4 + value) % 256
    image = np.broadcast_to(ramp, (size, size)).astype(np.uint8)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"{path}: could not write frame")
    return path


# ----------------------------------------------------------------------------------------------
# fake trees
# ----------------------------------------------------------------------------------------------


@dataclass
class _Clip:
    """One planned annotation row and what the loader must make of it."""

    subject: int
    cell_subject: Any
    filename: str
    onset: Any
    apex: Any
    offset: Any
    label: str
    aus: str = "4+7"
    objective: int | None = None
    frames: tuple[int, ...] = ()  # frame numbers written on disk (empty: no folder)
    row_skip: str = ""  # expected reason when the row itself is rejected
    folder_skip: str = ""  # expected reason when the row is kept but its frames are not usable
    warning: str = ""  # expected warning when an annotation error is repaired and the clip kept
    warning_from_frames: bool = True  # the warning needs the frames on disk (else the sheet alone gives it)


def _normal_clips(
    rng: np.random.Generator, subjects: Sequence[int], per_subject: int, labels: Sequence[str],
    filename: Callable[[int, int], str], start: tuple[int, int],
) -> list[_Clip]:
    clips = []
    for s in subjects:
        for c in range(1, per_subject + 1):
            onset = int(rng.integers(*start))
            length = int(rng.integers(4, 8))
            apex = onset + int(rng.integers(1, length))
            clips.append(_Clip(
                subject=s, cell_subject=s, filename=filename(s, c), onset=onset, apex=apex, offset=onset + length,
                label=labels[int(rng.integers(len(labels)))], objective=int(rng.integers(1, 8)),
                frames=tuple(range(onset, onset + length + 1)),
            ))
    return clips


def _awkward_clips(subject: int, labels: Sequence[str], filename: Callable[[int, int], str], base: int) -> list[_Clip]:
    """The bad rows real copies have, all on ``subject``: each carries its expected outcome."""
    ok = labels[0]
    return [
        _Clip(subject, subject, filename(subject, 20), base, "/", base + 6, ok, frames=tuple(range(base, base + 7))),
        _Clip(subject, subject, filename(subject, 21), base + 10, base + 5, base, ok,
              row_skip=f"onset {base + 10} after offset {base}"),
        _Clip(subject, subject, filename(subject, 22), base, base + 2, base + 5, "xyz",
              row_skip="unknown emotion 'xyz'"),
        _Clip(subject, subject, filename(subject, 23), base, base + 2, base + 5, ok,
              folder_skip="frame folder not found"),
        _Clip(subject, subject, filename(subject, 24), base + 3, base + 3, base + 3, ok,
              row_skip=f"clip of one frame (onset = offset = {base + 3})"),
        _Clip(subject, subject, filename(subject, 25), base, base + 40, base + 5, ok,
              frames=tuple(range(base, base + 6)), warning=f"apex {base + 40} outside onset..offset {base}..{base + 5}", warning_from_frames=False),
        _Clip(subject, subject, filename(subject, 26), float(base), float(base + 2), float(base + 5), ok,
              frames=tuple(range(base, base + 6))),
        _Clip(subject, subject, filename(subject, 27), base + 0.5, base + 2, base + 5, ok,
              row_skip="not a whole frame number"),
        _Clip(subject, subject, filename(subject, 28), base - 3, base + 2, base + 9, ok,
              frames=tuple(range(base, base + 6)), warning=f"offset {base + 9} after the last frame"),
        _Clip(subject, subject, filename(subject, 29), base, base + 2, base + 9, ok,
              frames=tuple(n for n in range(base, base + 10) if n not in (base + 4, base + 5, base + 6)),
              warning=f"frames {base + 4}-{base + 6} missing inside {base}..{base + 9}"),
    ]


def _account(
    dataset: str, clips: Sequence[_Clip], subject_id: Callable[[int], str], frames: bool, missing_reason: str
) -> dict:
    """The loader's expected view of ``clips``: counts, labels, and every expected skip with its reason."""
    expected: dict[str, str] = {}
    kept = []
    with_frames = 0
    for clip in clips:
        key = f"{dataset}/{subject_id(clip.subject)}/{clip.filename}"
        if clip.row_skip:
            expected[key] = clip.row_skip
            continue
        kept.append(clip)
        if not frames:
            expected[key] = missing_reason
        elif clip.folder_skip:
            expected[key] = clip.folder_skip
        else:
            with_frames += 1
    labels: dict[str, int] = {}
    for clip in kept:
        labels[clip.label] = labels.get(clip.label, 0) + 1
    return {
        "rows": len(clips),
        "clips": len(kept),
        "clips_with_frames": with_frames,
        "skipped": len(expected),
        "labels": dict(sorted(labels.items())),
        "subjects": len({c.subject for c in kept}),
        "expected_skips": expected,
        "apex_missing": sorted(
            f"{dataset}/{subject_id(c.subject)}/{c.filename}" for c in kept
            if c.apex in ("/", None) or not c.onset <= c.apex <= c.offset
        ),
        "expected_warnings": {
            f"{dataset}/{subject_id(c.subject)}/{c.filename}": c.warning for c in kept
            if c.warning and (frames or not c.warning_from_frames)
        },
    }


@FAKE_TREES.register("casme2")
def write_fake_casme2(
    root: Path, *, subjects: int = 3, clips_per_subject: int = 3, seed: int = 0, cropped: bool = False,
    awkward: bool = False, frames: bool = True,
) -> dict:
    """Write a tiny CASME II copy under ``root`` (newer coding file with Objective Class).

    ``awkward`` adds, on subject 1: a row without apex ("/") that is kept, onset after offset, an
    unknown emotion, a clip whose frame folder is missing, a one-frame clip, an apex outside the
    interval, float frame cells (kept) and a non-whole frame cell; and writes two subject cells as text
    ("01", "sub01"). Returns the accounting a loader must match (see the module docstring).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)

    def name(s: int, c: int) -> str:
        return f"EP{c + 1:02d}_{s % 9 + 1:02d}f"

    clips = _normal_clips(rng, range(1, subjects + 1), clips_per_subject, CASME2_EMOTIONS, name, (20, 200))
    if awkward:
        extra = _awkward_clips(1, CASME2_EMOTIONS, name, 300)
        extra[0].cell_subject = "01"
        extra[6].cell_subject = "sub01"
        clips += extra
    rows = [
        {
            "Subject": c.cell_subject, "Filename": c.filename, "OnsetFrame": c.onset, "ApexFrame": c.apex,
            "OffsetFrame": c.offset, "Action Units": c.aus, "Estimated Emotion": c.label, "Objective Class": c.objective,
        }
        for c in clips
    ]
    annotation = write_casme2_coding(root / "CASME2-coding-20190701.xlsx", rows, objective_class=True)
    if frames:
        for c in clips:
            folder = casme2_clip_dir(root, c.subject, c.filename, cropped=cropped)
            for n in c.frames:
                write_frame(folder / casme2_frame_name(n, cropped=cropped), n)
    out = _account("casme2", clips, lambda s: f"sub{s:02d}", frames, "frame folder not found")
    return {"root": str(root), "annotation": str(annotation), **out}


@FAKE_TREES.register("samm")
def write_fake_samm(
    root: Path, *, subjects: int = 3, clips_per_subject: int = 3, seed: int = 0, cropped: bool = False,
    awkward: bool = False, frames: bool = True,
) -> dict:
    """Write a tiny SAMM copy under ``root`` (subjects 006, 007, ...; subject cells as "006" text).

    ``awkward`` adds the same bad rows as :func:`write_fake_casme2` on subject 006, plus a kept row
    whose Action Units read "R12 or 14" and one whose Subject cell is the number 6. ``cropped`` is
    accepted for a uniform signature; SAMM ships one frame layout.
    """
    del cropped
    root = Path(root)
    rng = np.random.default_rng(seed)

    def name(s: int, c: int) -> str:
        return f"{s:03d}_{c}_{c % 3 + 1}"

    ids = [5 + s for s in range(1, subjects + 1)]
    clips = _normal_clips(rng, ids, clips_per_subject, SAMM_EMOTIONS, name, (1000, 9000))
    for c in clips:
        c.cell_subject = f"{c.subject:03d}"
    if awkward:
        extra = _awkward_clips(ids[0], SAMM_EMOTIONS, name, 5562)
        for c in extra:
            c.cell_subject = f"{c.subject:03d}"
        extra[0].cell_subject = ids[0]
        extra[6].aus = "R12 or 14"
        clips += extra
    rows = [
        {
            "Subject": c.cell_subject, "Filename": c.filename, "Inducement Code": 1, "Onset Frame": c.onset,
            "Apex Frame": c.apex, "Offset Frame": c.offset, "Type": "Micro - 1/2", "Action Units": c.aus,
            "Notes": None, "Estimated Emotion": c.label, "Objective Classes": c.objective,
        }
        for c in clips
    ]
    annotation = write_samm_coding(root / "SAMM_Micro_FACS_Codes_v2.xlsx", rows)
    if frames:
        for c in clips:
            folder = samm_clip_dir(root, c.subject, c.filename)
            for n in c.frames:
                write_frame(folder / samm_frame_name(c.subject, n), n)
    out = _account("samm", clips, lambda s: f"{s:03d}", frames, "frame folder not found")
    return {"root": str(root), "annotation": str(annotation), **out}


@FAKE_TREES.register("smic")
def write_fake_smic(
    root: Path, *, subjects: int = 3, clips_per_subject: int = 3, seed: int = 0, cropped: bool = False,
    awkward: bool = False, frames: bool = True,
) -> dict:
    """Write a tiny SMIC-HS tree ``root/HS/sN/micro/<label>/sN_xx_NN/imageNNNNNN.bmp``.

    There is no spreadsheet: ``rows`` counts clip folders. ``awkward`` adds on s1: a clip under an
    unknown label folder ``angry``, a one-frame clip, an empty clip folder and a ``non_micro`` folder
    (noted by the loader, not a clip). ``frames=False`` writes the clip folders empty.
    """
    del cropped
    root = Path(root)
    rng = np.random.default_rng(seed)
    clips: list[_Clip] = []
    counters: dict[tuple[int, str], int] = {}
    for s in range(1, subjects + 1):
        for _ in range(clips_per_subject):
            label = SMIC_EMOTIONS[int(rng.integers(len(SMIC_EMOTIONS)))]
            counters[s, label] = index = counters.get((s, label), 0) + 1
            first = int(rng.integers(100000, 900000))
            last = first + int(rng.integers(4, 10))
            clips.append(_Clip(
                s, s, smic_clip_dir(root, s, label, index).name, first, None, last, label,
                frames=tuple(range(first, last + 1)),
            ))
    if awkward:
        clips += [
            _Clip(1, 1, "s1_an_01", 120000, None, 120005, "angry", frames=tuple(range(120000, 120006)),
                  row_skip="unknown emotion 'angry'"),
            _Clip(1, 1, "s1_po_09", 130000, None, 130000, "positive", frames=(130000,),
                  folder_skip="clip of one frame"),
            _Clip(1, 1, "s1_ne_09", None, None, None, "negative", folder_skip="frame folder holds no images"),
        ]
    for c in clips:
        folder = root / "HS" / f"s{c.subject}" / "micro" / c.label / c.filename
        folder.mkdir(parents=True, exist_ok=True)
        if frames:
            for n in c.frames:
                write_frame(folder / smic_frame_name(n), n)
    if awkward:
        non_micro = root / "HS" / "s1" / "non_micro" / "s1_nm_01"
        non_micro.mkdir(parents=True, exist_ok=True)
        if frames:
            for n in range(140000, 140004):
                write_frame(non_micro / smic_frame_name(n), n)
    out = _account("smic", clips, lambda s: f"s{s}", frames, "frame folder holds no images")
    return {"root": str(root), "annotation": None, **out}


def write_fake_smic_apex(root: Path, *, seed: int = 0, awkward: bool = False, name: str = "smic_apex.xlsx") -> dict:
    """Write ``root/smic_apex.xlsx`` for the SMIC-HS tree already under ``root`` (see :func:`write_fake_smic`).

    One row per clip folder of two or more frames under a known label, as the shared file has them:
    subject a bare number, label 0/1/2, onset/offset the folder's first/last frame, an apex inside,
    and absolute ``*_frame_path`` cells pointing outside ``root`` (a loader must never open them).
    ``awkward`` leaves the first clip without a row, gives the second a disagreeing label, the third
    an apex outside its frames, the fourth a zero-padded clip name (``s01_po_1``), the fifth an onset
    before its first frame, and adds a row for a clip that has no folder, a duplicate row and a row of
    another dataset. Returns ``path``, ``rows``, ``apex`` (clip key -> apex the loader must set),
    ``no_row`` (clip keys), ``warnings`` (clip key -> problem fragment) and ``expected_skips``
    (item -> reason fragment).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    clips = []
    for label_dir in sorted((root / "HS").glob("s*/micro/*")):
        for clip_dir in sorted(p for p in label_dir.iterdir() if p.is_dir()):
            numbers = sorted(int(f.stem[len("image"):]) for f in clip_dir.glob("image*.bmp"))
            if label_dir.name in SMIC_APEX_CODES:
                clips.append((int(label_dir.parent.parent.name[1:]), label_dir.name, clip_dir.name, numbers))
    rows: list[dict[str, Any]] = []
    apex: dict[str, int] = {}
    no_row: list[str] = []
    warnings: dict[str, str] = {}
    skips: dict[str, str] = {}
    usable = [c for c in clips if len(c[3]) >= 2]
    for k, (subject, label, clip, numbers) in enumerate(usable):
        key = f"smic/s{subject}/{clip}"
        value = int(numbers[int(rng.integers(1, len(numbers)))])
        row = {
            "data": "smic", "subject": subject, "clip": clip, "label": SMIC_APEX_CODES[label],
            "onset_frame": numbers[0], "apex_frame": value, "offset_frame": numbers[-1],
            **{f"{w}_frame_path": f"/data/SMIC/HS/s{subject}/micro/{label}/{clip}/{smic_frame_name(n)}"
               for w, n in (("onset", numbers[0]), ("apex", value), ("offset", numbers[-1]))},
        }
        if awkward and k == 0:
            no_row.append(key)
            continue
        if awkward and k == 1:
            row["label"] = (SMIC_APEX_CODES[label] + 1) % 3
            warnings[key] = f"label '{row['label']}'"
        if awkward and k == 2:
            row["apex_frame"] = value = numbers[-1] + 50
            warnings[key] = f"apex_frame {value} not among the clip's frames"
        if awkward and k == 3:
            code, index = clip.split("_")[1:]
            row["clip"] = f"s{subject:02d}_{code}_{int(index)}"
        if awkward and k == 4:
            row["onset_frame"] = numbers[0] - 1
            warnings[key] = f"onset_frame {numbers[0] - 1}, the folder's onset frame is {numbers[0]}"
        if not (awkward and k == 2):
            apex[key] = value
        rows.append(row)
    no_row += [f"smic/s{s}/{c}" for s, _, c, n in clips if len(n) < 2]
    if awkward:
        first, last = rows[0], rows[-1]
        rows += [{**last, "subject": 9, "clip": "s9_po_01"}, dict(last), {**first, "data": "casme2"}]
        skips["smic/s9/s9_po_01"] = "no clip folder 's9_po_01'"
        skips[f"smic/s{last['subject']}/{last['clip']}"] = "duplicate row"
        skips[f"smic/s{first['subject']}/{first['clip']}"] = "data is 'casme2'"
    path = write_smic_apex(root / name, rows)
    return {"path": path, "rows": len(rows), "apex": apex, "no_row": sorted(no_row), "warnings": warnings,
            "expected_skips": skips}


@FAKE_TREES.register("casme")
def write_fake_casme(
    root: Path, *, subjects: int = 3, clips_per_subject: int = 3, seed: int = 0, cropped: bool = False,
    awkward: bool = False, frames: bool = True,
) -> dict:
    """Write a tiny CASME copy: two section sheets (``CASME_A_Section_coding.xlsx`` for the first half of
    the subjects, ``CASME_B_Section_coding.xlsx`` for the rest) and frames under ``CASME_A/`` and
    ``CASME_B/``. Frame folders hold two frames more on each side of the annotated interval (the
    loader keeps onset..offset). ``awkward`` adds the bad rows of :func:`write_fake_casme2` to section A.
    """
    del cropped
    root = Path(root)
    rng = np.random.default_rng(seed)

    def name(s: int, c: int) -> str:
        return f"EP{c:02d}_{s % 7 + 1}"

    clips = _normal_clips(rng, range(1, subjects + 1), clips_per_subject, CASME_EMOTIONS, name, (10, 100))
    if awkward:
        clips += _awkward_clips(1, CASME_EMOTIONS, name, 200)
    half = (subjects + 1) // 2
    sections = {"A": [c for c in clips if c.subject <= half], "B": [c for c in clips if c.subject > half]}
    annotations = []
    for section, members in sections.items():
        if not members:
            continue
        rows = [
            {
                "Subject": c.cell_subject, "Filename": c.filename, "OnsetFrame": c.onset, "ApexFrame": c.apex,
                "OffsetFrame": c.offset, "Action Units": c.aus, "Emotion": c.label,
            }
            for c in members
        ]
        annotations.append(str(write_casme_coding(root / f"CASME_{section}_Section_coding.xlsx", rows)))
        if frames:
            for c in members:
                folder = casme_clip_dir(root, c.subject, c.filename, section=section)
                padded = (c.frames[0] - 2, c.frames[0] - 1, *c.frames, c.frames[-1] + 1, c.frames[-1] + 2) if c.frames else ()
                for n in padded:
                    write_frame(folder / casme_frame_name(c.filename, n), n)
    out = _account("casme", clips, lambda s: f"sub{s:02d}", frames, "frame folder not found")
    return {"root": str(root), "annotation": annotations[0], "annotations": annotations, **out}
