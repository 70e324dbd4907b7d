"""Shared machinery for the native loaders: finding files, reading spreadsheets, listing frames.

Every loader builds a list of records, a list of :class:`~mertk.records.Skip` entries and a list of
:class:`~mertk.records.AnnotationIssue` warnings. A row that cannot be used is never dropped silently: it
is listed in ``skipped`` with the file, row and reason. An annotation error that has a principled
fallback (an apex outside its clip: spot it; an offset past the last frame: clip the range) keeps the
clip and is listed in ``warnings``.
Problems that make the whole dataset unusable (missing root, missing or wrong spreadsheet) raise
:class:`~mertk.errors.DataError` at construction.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import pandas as pd

from ..errors import DataError
from ..imagefiles import IMAGE_SUFFIXES
from ..records import AnnotationIssue, ClipRecord, ImageRecord, Skip, format_runs, frame_runs
from ..registry import DATASETS

_LAST_INT = re.compile(r"(\d+)(?!.*\d)")
_DIGITS = re.compile(r"\d+")


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------


def require_dir(root: str | Path, what: str = "dataset root") -> Path:
    """Return ``root`` as a Path, or raise naming it when it is not a directory."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(path, f"{what} does not exist")
    if not path.is_dir():
        raise DataError(path, f"{what} is not a directory")
    return path


def find_file(root: Path, patterns: Sequence[str], what: str, explicit: str | Path | None = None) -> Path:
    """Find one file under ``root`` matching the first glob pattern that matches anything.

    ``explicit`` (a user-given path) wins. When several files match one pattern the newest-named
    (lexicographically last, e.g. the latest ``CASME2-coding-YYYYMMDD.xlsx``) is taken.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise DataError(path, f"{what} not found")
        return path
    for pattern in patterns:
        hits = sorted(p for p in root.glob(pattern) if p.is_file() and not p.name.startswith("~$"))
        if hits:
            return hits[-1]
    raise DataError(root, f"{what} not found (looked for {', '.join(patterns)})")


def find_dir(root: Path, candidates: Sequence[str]) -> Path | None:
    """First existing directory among ``root/candidate`` (``"."`` means root itself)."""
    for name in candidates:
        path = root if name == "." else root / name
        if path.is_dir():
            return path
    return None


def id_key(text: Any) -> str:
    """A subject or clip id for matching across files: lower case, stripped, every number without its
    zero padding (``"028"`` and ``28`` -> ``"28"``; ``"s01_ne_05"`` -> ``"s1_ne_5"``; ``"EP02_01f"`` ->
    ``"ep2_1f"``). Real files spell the same id with and without padding (issue 11)."""
    return _DIGITS.sub(lambda m: str(int(m.group())), str(text).strip().lower())


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``img2`` < ``img10`` (case-insensitive)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name) if part)


def frame_files(folder: str | Path, exts: Sequence[str] = IMAGE_SUFFIXES) -> list[Path]:
    """The image files of ``folder`` whose suffix (any case) is in ``exts``, in natural order."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in exts]
    return sorted(files, key=lambda p: natural_key(p.name))


def numbered_frames(folder: Path, exts: Sequence[str] = IMAGE_SUFFIXES) -> tuple[tuple[Path, ...], tuple[int, ...]]:
    """List the image files of a frame folder, ordered by the last integer in each file name.

    Raises :class:`DataError` when two files carry the same frame number or a name has no number.
    """
    items: list[tuple[int, Path]] = []
    for path in folder.iterdir():
        if path.suffix.lower() not in exts or not path.is_file():
            continue
        match = _LAST_INT.search(path.stem)
        if match is None:
            raise DataError(path, "frame file name carries no frame number")
        items.append((int(match.group(1)), path))
    items.sort()
    numbers = [n for n, _ in items]
    dupes = [n for n, c in Counter(numbers).items() if c > 1]
    if dupes:
        raise DataError(folder, f"several files carry frame number {dupes[0]}")
    return tuple(p for _, p in items), tuple(numbers)


# ----------------------------------------------------------------------------------------------
# spreadsheets
# ----------------------------------------------------------------------------------------------


def norm_header(text: Any) -> str:
    """Normalise a column header for matching: lower case, single spaces, no trailing punctuation."""
    return re.sub(r"\s+", " ", str(text)).strip().lower().rstrip(":")


def read_table(path: Path, required: Sequence[str], *, sheet: int | str = 0, max_scan: int = 40) -> tuple[pd.DataFrame, list[int]]:
    """Read an annotation table (xlsx, xls or csv) whose header row may follow preamble rows.

    The header is the first row (within ``max_scan`` rows) that contains every name in
    ``required`` (compared after :func:`norm_header`). Returns the data rows with normalised column
    names, and for each data row its 1-based row number in the file (as a spreadsheet program
    shows it), for error messages.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            raw = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object, engine="openpyxl")
        elif suffix == ".xls":
            raw = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object, engine="xlrd")
        elif suffix in (".csv", ".txt"):
            raw = pd.read_csv(path, header=None, dtype=object, keep_default_na=False)
        else:
            raise DataError(path, f"unsupported annotation file type {suffix!r} (expected .xlsx, .xls or .csv)")
    except DataError:
        raise
    except Exception as exc:  # openpyxl/xlrd raise many types for a corrupt or foreign file
        raise DataError(path, f"cannot read as a spreadsheet ({type(exc).__name__}: {exc})") from None
    want = [norm_header(r) for r in required]
    for i in range(min(max_scan, len(raw))):
        cells = [norm_header(c) for c in raw.iloc[i].tolist() if not _blank(c)]
        if all(w in cells for w in want):
            header = [norm_header(c) if not _blank(c) else f"unnamed_{j}" for j, c in enumerate(raw.iloc[i].tolist())]
            body = raw.iloc[i + 1 :].copy()
            body.columns = _dedupe(header)
            keep = ~body.apply(lambda r: all(_blank(v) for v in r), axis=1)
            rows = [int(k) + 1 for k in body.index[keep]]
            return body[keep].reset_index(drop=True), rows
    raise DataError(path, f"no header row with columns {', '.join(required)} in the first {max_scan} rows")


def _dedupe(names: list[str]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for n in names:
        out.append(n if not seen[n] else f"{n}.{seen[n]}")
        seen[n] += 1
    return out


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def cell_text(value: Any) -> str:
    """A cell as stripped text ('' for blank); whole floats lose their '.0' (46.0 -> '46')."""
    if _blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def cell_int(value: Any, *, column: str) -> int | None:
    """Parse a frame-number cell: ints, whole floats, digit strings; blank or '/' or '-' is ``None``.

    Raises ``ValueError`` with a readable message for anything else (e.g. ``'12a'``, ``3.5``).
    """
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{column} is {value!r}, not a frame number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"{column} is {value!r}, not a whole frame number")
    text = str(value).strip()
    if text in {"/", "-", "--", "n/a", "N/A", "NA", "?"}:
        return None
    if re.fullmatch(r"\d+(\.0+)?", text):
        return int(float(text))
    raise ValueError(f"{column} is {text!r}, not a frame number")


def split_aus(value: Any) -> tuple[str, ...]:
    """Split an Action Units cell into units, keeping alternatives together.

    ``"4+7"`` -> ``("AU4", "AU7")``; ``"AU4 + AU7"`` -> same; ``"R12"`` keeps its side prefix;
    ``"4 or 7"`` / ``"AU4 or AU7"`` -> ``("AU4 or AU7",)``: the annotator's alternative is kept as
    one item rather than guessed. Bare numbers get the ``AU`` prefix.
    """
    text = cell_text(value)
    if not text or text.lower() in {"/", "-", "none", "n/a"}:
        return ()
    units = []
    for part in re.split(r"\s*\+\s*|\s*,\s*|\s*;\s*", text):
        part = part.strip()
        if not part:
            continue
        alternatives = [_au_name(a) for a in re.split(r"\s+or\s+|\s*/\s*", part, flags=re.I) if a.strip()]
        units.append(" or ".join(alternatives))
    return tuple(units)


def _au_name(token: str) -> str:
    token = token.strip()
    if re.fullmatch(r"\d+[A-Za-z]?", token):
        return f"AU{token}"
    match = re.fullmatch(r"(?i)au\s*(\d+[A-Za-z]?)", token)
    if match:
        return f"AU{match.group(1)}"
    return token


def au_numbers(aus: Iterable[str]) -> frozenset[int]:
    """The AU numbers of certain units (side prefixes L/R/B/T dropped, intensities dropped,
    alternatives 'AU4 or AU7' ignored since they are uncertain)."""
    out = set()
    for unit in aus:
        if " or " in unit:
            continue
        match = re.search(r"(\d+)", unit)
        if match:
            out.add(int(match.group(1)))
    return frozenset(out)


# ----------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------


class Dataset:
    """Base of every dataset, composites included: an indexed list of records and what could not be used.

    Subclasses set ``name``, ``kind`` (``"clips"``, ``"images"`` or ``"composite"``) and ``labels`` (the
    native vocabulary, lower case) and fill ``records``, ``skipped``, ``warnings``, ``notes``, ``rows``
    and ``annotation`` in ``__init__``. ``records`` holds every annotation row that parsed; ``usable()``
    those whose pixels were found. Indexing and iteration run over ``records`` in one order.
    """

    name: str = ""
    kind: str = ""
    labels: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.root: Path | None = Path(".")
        self.annotation: Path | None = None
        self.rows: int = 0
        self.records: list[ClipRecord | ImageRecord] = []
        self.skipped: list[Skip] = []
        self.warnings: list[AnnotationIssue] = []
        self.notes: list[str] = []

    def usable(self) -> list[ClipRecord | ImageRecord]:
        """Records whose frames are present (the ones preprocessing and training can use)."""
        return [r for r in self.records if getattr(r, "has_frames", True)]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> ClipRecord | ImageRecord:
        return self.records[i]

    def __iter__(self) -> Iterator[ClipRecord | ImageRecord]:
        return iter(self.records)

    @property
    def subjects(self) -> list[str]:
        """The distinct subjects of the records, sorted (records without a subject are not counted)."""
        return sorted({r.subject for r in self.records if r.subject})

    def skip(self, source: str, item: str, reason: str) -> None:
        self.skipped.append(Skip(source, item, reason))

    def warn(self, source: str, item: str, problem: str, fallback: str) -> None:
        self.warnings.append(AnnotationIssue(source, item, problem, fallback))


class ClipDataset(Dataset):
    """Base of the micro-expression (and CK+) loaders: the records are :class:`ClipRecord` (frame
    sequences); ``usable()`` holds those whose frames were found and are consistent."""

    kind = "clips"
    fps: float = 200.0

    def attach_frames(self, record: ClipRecord, folder: Path | None) -> ClipRecord:
        """Return ``record`` with its frames listed from ``folder``, or record a skip saying why not.

        A clip keeps its annotation (it counts in ``clips``) even when its frames are absent or
        inconsistent; the reason lands in ``skipped`` so ``info`` can say it. Annotation errors with a
        principled fallback keep the clip and land in ``warnings``: an onset or offset beyond the
        frames present is clipped to the frames found; an apex that is not among the clip's frames
        becomes unknown (spotted by the pipeline); frames missing inside the interval are listed (the
        pipeline skips such a clip unless ``allow_frame_gaps`` lets it interpolate them). A clip is
        skipped only when no usable range of two frames or more remains.
        """
        from dataclasses import replace

        if folder is None or not folder.is_dir():
            where = folder if folder is not None else "(no folder)"
            self.skip(record.source, record.key, f"frame folder not found: {where}")
            return record
        try:
            paths, numbers = numbered_frames(folder)
        except DataError as exc:
            self.skip(record.source, record.key, str(exc))
            return record
        if len(paths) == 0:
            self.skip(record.source, record.key, f"frame folder holds no images: {folder}")
            return record
        if len(paths) == 1:
            self.skip(record.source, record.key, f"clip of one frame: {folder}")
            return record
        first, last = numbers[0], numbers[-1]
        lo = record.onset if record.onset is not None else first
        hi = record.offset if record.offset is not None else last
        if hi < first or lo > last:
            self.skip(record.source, record.key,
                      f"onset..offset {lo}..{hi} holds none of the frames in {folder} ({first}..{last})")
            return record
        if lo < first:
            self.warn(record.source, record.key, f"onset {lo} before the first frame {first} in {folder}",
                      f"clipped to the frames found: onset {first}")
            lo = first
        if hi > last:
            self.warn(record.source, record.key, f"offset {hi} after the last frame {last} in {folder}",
                      f"clipped to the frames found: offset {last}")
            hi = last
        # keep the annotated interval when the folder holds more than it (raw recordings)
        pairs = [(p, n) for p, n in zip(paths, numbers) if lo <= n <= hi]
        if len(pairs) < 2:
            self.skip(record.source, record.key, f"clip of one frame between onset {lo} and offset {hi}: {folder}")
            return record
        kept = tuple(n for _, n in pairs)
        lo, hi = kept[0], kept[-1]
        apex = record.apex
        if apex is not None and apex not in kept:
            self.warn(record.source, record.key, f"apex frame {apex} not among the clip's frames {lo}..{hi} in {folder}",
                      "apex unknown: spotted")
            apex = None
        attached = replace(record, frames=tuple(p for p, _ in pairs), frame_numbers=kept, onset=lo, offset=hi, apex=apex)
        missing = attached.missing_frames
        if missing:
            longest = max(b - a + 1 for a, b in frame_runs(missing))
            self.warn(record.source, record.key, f"frames {format_runs(missing)} missing inside {lo}..{hi} in {folder}",
                      f"prepare skips the clip unless allow_frame_gaps >= {longest} interpolates them")
        return attached

    def check_interval(self, source: str, item: str, onset: int | None, offset: int | None) -> bool:
        """Validate onset < offset; record a skip (no usable frame range) and return False otherwise."""
        if onset is not None and offset is not None and onset > offset:
            self.skip(source, item, f"onset {onset} after offset {offset}")
            return False
        if onset is not None and offset is not None and onset == offset:
            self.skip(source, item, f"clip of one frame (onset = offset = {onset})")
            return False
        return True

    def checked_apex(self, source: str, item: str, onset: int | None, apex: int | None, offset: int | None) -> int | None:
        """``apex``, or ``None`` (spotted later) with a warning when it lies outside onset..offset."""
        if apex is not None and ((onset is not None and apex < onset) or (offset is not None and apex > offset)):
            self.warn(source, item, f"apex {apex} outside onset..offset {onset}..{offset}", "apex unknown: spotted")
            return None
        return apex


class ImageDataset(Dataset):
    """Base of the still-image loaders (FER2013, FERPlus, feature folders): the records are
    :class:`ImageRecord`, all usable."""

    kind = "images"

    def load_image(self, record: ImageRecord):  # pragma: no cover - overridden
        """Pixels of one record as a uint8 array (H x W or H x W x 3)."""
        raise NotImplementedError


def dataset_folder(name: str, data_root: str | Path, default: Path | None = None) -> Path:
    """The folder of dataset ``name`` under ``data_root``: the first of its registered usual folder
    names (``folders=`` of its registration, e.g. ``CASME2``, ``CASME_II``) that exists there.

    When none exists, ``default`` is returned if given, else a :class:`DataError` names what was looked for.
    """
    root = Path(data_root)
    folders = tuple(DATASETS.entry(name).meta.get("folders", ()))
    for folder in folders:
        if (root / folder).is_dir():
            return root / folder
    if default is not None:
        return default
    raise DataError(root, f"no {name} folder (looked for {', '.join(folders) or 'none registered'})")


def count_labels(records: Iterable[ClipRecord | ImageRecord]) -> dict[str, int]:
    return dict(sorted(Counter(r.label for r in records).items()))
