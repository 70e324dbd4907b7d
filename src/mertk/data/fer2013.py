"""FER2013 and FERPlus loaders: 48x48 grayscale faces whose pixels live inside ``fer2013.csv``.

FER2013 (Kaggle, 2013): ``fer2013.csv`` with columns ``emotion`` (0 angry, 1 disgust, 2 fear,
3 happy, 4 sad, 5 surprise, 6 neutral), ``pixels`` (2304 space-separated values) and ``Usage``
(Training 28,709 / PublicTest 3,589 / PrivateTest 3,589 rows).

FERPlus (Barsoum et al., 2016): ``fer2013new.csv`` re-labels the same images, row by row, with the
votes of 10 taggers over neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
unknown and NF (not a face). SHCNN trains on the vote distribution over the 8 emotions as a soft
target and discards the "unclear" images (520 of PublicTest).

SHCNN's split use for both: ``Training`` to train, ``PrivateTest`` to validate, ``PublicTest`` to
test (:data:`SHCNN_SPLITS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, UnknownNameError
from ..records import ImageRecord
from ..registry import DATASETS
from .base import ImageDataset, find_file, norm_header

SIDE = 48
N_PIXELS = SIDE * SIDE
USAGES = ("Training", "PublicTest", "PrivateTest")
SHCNN_SPLITS = {"train": "Training", "val": "PrivateTest", "test": "PublicTest"}
FERPLUS_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
_CHUNK_ROWS = 2048


def parse_pixel_rows(texts: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
    """Parse FER2013 ``pixels`` cells into an (n_good, 48, 48) uint8 array, vectorised.

    Returns the pixels of the good rows (in order) and, for every bad row, its position in
    ``texts`` and the reason (wrong count, non-numeric text, value outside 0..255).

    Written by hand because neither pandas nor numpy parses a column of space-separated integer
    lists while reporting per-row problems: ``str.split`` on the real file makes 82 million Python
    strings (minutes, gigabytes) and ``np.fromstring`` stops silently at bad text. This works on the
    ASCII bytes of a chunk of rows at a time: separators give token boundaries, and a token's value
    is read from its last three digits.
    """
    good: list[np.ndarray] = []
    problems: dict[int, str] = {}
    for start in range(0, len(texts), _CHUNK_ROWS):
        chunk = texts[start : start + _CHUNK_ROWS]
        pixels, bad = _parse_chunk(chunk)
        good.append(pixels)
        problems.update({start + i: reason for i, reason in bad.items()})
    if not good:
        return np.zeros((0, SIDE, SIDE), np.uint8), problems
    return np.concatenate(good).reshape(-1, SIDE, SIDE), problems


def _parse_chunk(texts: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
    n = len(texts)
    texts = [t if "\n" not in t else "?" for t in texts]  # a row is one line of the joined buffer
    # two leading separators so that the three digits before any token end can be indexed
    buf = np.frombuffer(("  " + "\n".join(texts)).encode("ascii", errors="replace"), dtype=np.uint8)
    digits = np.count_nonzero((buf - 48) < 10)  # uint8 arithmetic wraps the bytes below '0'
    clean = digits + np.count_nonzero(buf == 32) + n - 1 == len(buf)
    seps = np.flatnonzero(buf <= 32 if clean else (buf == 32) | (buf == 10)).astype(np.int32)
    newlines = np.flatnonzero(buf[seps] == 10)  # index in ``seps`` of each row end
    # token i runs from just after separator i + 1 to separator i + 2 (or the end)
    starts = seps[1:] + 1
    ends = np.append(seps[2:], np.int32(len(buf)))
    per_row = np.diff(newlines, prepend=1, append=len(seps))
    lengths = ends - starts
    if not (lengths > 0).all():  # runs of white space leave empty tokens; they are not values
        real = lengths > 0
        per_row = np.add.reduceat(real.astype(np.int64), np.concatenate(([0], newlines - 1)))
        starts, ends, lengths = starts[real], ends[real], lengths[real]

    bad: dict[int, str] = {}
    if not clean:
        row_start = np.concatenate(([2], seps[newlines] + 1))
        odd = np.flatnonzero(~((buf == 32) | (buf == 10) | ((buf - 48) < 10)))
        for r in np.unique(np.searchsorted(row_start, odd, side="right") - 1).tolist():
            bad[r] = "pixels hold text that is not a whole number 0..255"
    for r in np.flatnonzero(per_row != N_PIXELS).tolist():
        bad.setdefault(r, f"{per_row[r]} pixel values, expected {N_PIXELS} (48 x 48)")

    values = buf[ends - 1].astype(np.int16) - 48
    for back, scale in ((2, 10), (3, 100)):
        digit = buf[ends - back].astype(np.int16) - 48
        digit[lengths < back] = 0
        values += scale * digit
    row_end = np.cumsum(per_row)
    for t in np.flatnonzero((values > 255) | (lengths > 3)).tolist():
        text = buf[starts[t] : ends[t]].tobytes().decode()
        r = int(np.searchsorted(row_end, t, side="right"))
        if r in bad:
            continue
        if text.isdigit() and int(text) <= 255:  # leading zeros: '0012' is 12
            values[t] = int(text)
        else:
            bad[r] = f"pixel value {text} outside 0..255"

    keep = np.ones(n, dtype=bool)
    keep[list(bad)] = False
    if bad:
        values = values[np.repeat(keep, per_row)]
    return values.astype(np.uint8).reshape(-1, N_PIXELS), bad


def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """Read a FER csv as text with columns renamed to ``required``'s spelling (matched loosely)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for a foreign or corrupt file
        raise DataError(path, f"cannot read as csv ({type(exc).__name__}: {exc})") from None
    by_norm = {norm_header(c): c for c in frame.columns}
    rename = {}
    for name in required:
        column = by_norm.get(norm_header(name))
        if column is None:
            raise DataError(path, f"missing column {name!r} (found: {', '.join(map(str, frame.columns))})")
        rename[column] = name
    return frame.rename(columns=rename)


def _locate(root: str | Path, name: str, explicit: str | Path | None, what: str) -> Path:
    """``root`` may be the csv itself or a folder holding it (also one folder deep, as Kaggle's tar)."""
    path = Path(root).expanduser()
    if explicit is None and path.is_file():
        return path
    if explicit is None and not path.exists():
        raise DataError(path, "dataset root does not exist")
    return find_file(path, (name, f"*/{name}"), what, explicit=explicit)


def _split_name(split: str | None) -> str | None:
    if split is None:
        return None
    for usage in USAGES:
        if split.lower() == usage.lower():
            return usage
    if split.lower() in SHCNN_SPLITS:
        return SHCNN_SPLITS[split.lower()]
    raise UnknownNameError(
        f"unknown split {split!r}; choose from: {', '.join(USAGES)} (or SHCNN's {', '.join(SHCNN_SPLITS)})"
    )


class _FerBase(ImageDataset):
    """Shared parts: pixel table, split filter, ``splits()`` and ``load_image``."""

    pixels: np.ndarray

    def splits(self) -> dict[str, list[ImageRecord]]:
        """Records by official split (Training, PublicTest, PrivateTest); SHCNN trains on Training,
        validates on PrivateTest and tests on PublicTest (see :data:`SHCNN_SPLITS`)."""
        out: dict[str, list[ImageRecord]] = {u: [] for u in USAGES}
        for record in self.records:
            out[record.split].append(record)
        return out

    def load_image(self, record: ImageRecord) -> np.ndarray:
        """The 48 x 48 uint8 grayscale face of ``record``."""
        if record.index is None or not 0 <= record.index < len(self.pixels):
            raise DataError(record.source or None, f"{record.item}: no pixel row {record.index} in this dataset")
        return self.pixels[record.index]

    def _keep(self, table: np.ndarray, rows: list[int], split: str | None) -> None:
        """Keep the pixel rows of the records (whose ``index`` counts them in order)."""
        self.pixels = table[rows] if rows else np.zeros((0, SIDE, SIDE), np.uint8)
        if split is not None:
            self.notes.append(f"kept split {split}: {len(self.records)} images")


@DATASETS.register(
    "fer2013",
    kind="images",
    folders=("FER2013", "fer2013"),
    description="FER2013 48x48 faces, 7 emotions, Training/PublicTest/PrivateTest (pixels inside fer2013.csv)",
)
class FER2013(_FerBase):
    """FER2013 from ``fer2013.csv``.

    Args:
        root: the csv, or a folder holding ``fer2013.csv`` (directly or one folder deep).
        split: keep one split only: ``Training``, ``PublicTest``, ``PrivateTest`` (any case), or SHCNN's
            ``train`` / ``val`` / ``test`` (= Training / PrivateTest / PublicTest).
        annotation: explicit path of the csv.

    ``pixels`` holds the kept faces (N x 48 x 48 uint8); each record's ``index`` points into it. Records
    are ``fer2013/<row>`` with the 0-based data row (FERPlus's ``fer<row:07d>.png``); ``label`` is the
    code as text ("0".."6"). A row with a bad pixel string, an unknown emotion or Usage is skipped
    with its file row; ``rows`` and ``skipped`` always cover the whole file.
    """

    name = "fer2013"
    label_names = {"0": "angry", "1": "disgust", "2": "fear", "3": "happy", "4": "sad", "5": "surprise", "6": "neutral"}
    labels = tuple(label_names)

    def __init__(self, root: str | Path, *, split: str | None = None, annotation: str | Path | None = None) -> None:
        super().__init__()
        wanted = _split_name(split)
        path = _locate(root, "fer2013.csv", annotation, "fer2013.csv")
        self.root, self.annotation = path.parent, path
        frame = _read_csv(path, ("emotion", "pixels", "Usage"))
        self.rows = len(frame)
        table, bad = parse_pixel_rows(frame["pixels"].tolist())
        good_rows = np.flatnonzero(~np.isin(np.arange(self.rows), list(bad)))
        position = {int(r): i for i, r in enumerate(good_rows)}
        rows: list[int] = []
        for r, (emotion, usage) in enumerate(zip(frame["emotion"].str.strip(), frame["Usage"].str.strip())):
            item, source = f"fer2013/{r:05d}", f"{path}, row {r + 2}"
            if r in bad:
                self.skip(source, item, bad[r])
            elif emotion not in self.label_names:
                self.skip(source, item, f"emotion {emotion!r} is not a FER2013 code 0..6")
            elif usage not in USAGES:
                self.skip(source, item, f"Usage {usage!r} is not {', '.join(USAGES[:-1])} or {USAGES[-1]}")
            elif wanted is None or usage == wanted:
                rows.append(position[r])
                self.records.append(
                    ImageRecord(
                        dataset=self.name, item=item, label=emotion, split=usage, index=len(rows) - 1, source=source
                    )
                )
        self._keep(table, rows, wanted)


@DATASETS.register(
    "ferplus",
    kind="images",
    folders=("FERPlus", "FER2013", "ferplus"),
    description="FERPlus: FER2013 faces re-labelled by 10 taggers; 8-emotion vote distribution as soft target",
)
class FERPlus(_FerBase):
    """FERPlus from ``fer2013new.csv`` (votes) and ``fer2013.csv`` (pixels), aligned row by row.

    Args:
        root: a folder holding both csvs (directly or one folder deep), or ``fer2013new.csv`` itself.
        split: as for :class:`FER2013`.
        annotation: explicit path of ``fer2013new.csv``.
        fer2013: explicit path of ``fer2013.csv`` (default: found beside ``fer2013new.csv`` or in ``root``).

    Per row, following the FERPlus authors and SHCNN: an empty ``Image name`` is not a face (skipped);
    the soft target ``soft_label`` is the vote distribution over the 8 emotions (:data:`FERPLUS_CLASSES`;
    unknown and NF left out); a row is "unclear" and skipped when unknown + NF hold more than half of
    all its votes, or when no emotion got a vote. ``label`` is the emotion with most votes; a tie goes
    to the class that comes first in :data:`FERPLUS_CLASSES`. ``unclear`` counts the unclear rows per
    split. Raises :class:`DataError` when the two files differ in row count.
    """

    name = "ferplus"
    label_names = {c: c for c in FERPLUS_CLASSES}
    labels = FERPLUS_CLASSES

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | None = None,
        annotation: str | Path | None = None,
        fer2013: str | Path | None = None,
    ) -> None:
        super().__init__()
        wanted = _split_name(split)
        path = _locate(root, "fer2013new.csv", annotation, "fer2013new.csv")
        self.root, self.annotation = path.parent, path
        if fer2013 is None:
            beside = path.parent / "fer2013.csv"
            fer_path = beside if beside.is_file() else _locate(Path(root), "fer2013.csv", None, "fer2013.csv")
        else:
            fer_path = _locate(fer2013, "fer2013.csv", None, "fer2013.csv")
        if fer_path == path:
            raise DataError(path, "fer2013.csv not found beside fer2013new.csv")
        self.fer2013_path = fer_path

        columns = ("Usage", "Image name", *FERPLUS_CLASSES, "unknown", "NF")
        frame = _read_csv(path, columns)
        pixel_frame = _read_csv(fer_path, ("pixels",))
        if len(frame) != len(pixel_frame):
            raise DataError(
                path,
                f"{len(frame)} rows but {fer_path} has {len(pixel_frame)}; the files must be aligned row by row",
            )
        self.rows = len(frame)
        table, bad = parse_pixel_rows(pixel_frame["pixels"].tolist())
        good_rows = np.flatnonzero(~np.isin(np.arange(self.rows), list(bad)))
        position = {int(r): i for i, r in enumerate(good_rows)}

        votes_text = frame[list(columns[2:])].apply(lambda c: c.str.strip())
        votes = votes_text.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        whole = (np.isfinite(votes) & (votes >= 0) & (votes == np.round(votes))).all(axis=1)
        emotion_votes, other_votes = votes[:, :8].sum(axis=1), votes[:, 8:].sum(axis=1)
        unclear = (emotion_votes == 0) | (other_votes > (emotion_votes + other_votes) / 2)
        majority = np.argmax(votes[:, :8], axis=1)  # first maximum: ties go to the earlier class
        with np.errstate(invalid="ignore", divide="ignore"):
            soft = votes[:, :8] / emotion_votes[:, None]
        self.unclear: dict[str, int] = dict.fromkeys(USAGES, 0)
        rows: list[int] = []
        for r, (usage, name) in enumerate(zip(frame["Usage"].str.strip(), frame["Image name"].str.strip())):
            item, source = name or f"row {r + 2}", f"{path}, row {r + 2}"
            if not name:
                self.skip(source, item, "no image name (not a face)")
            elif usage not in USAGES:
                self.skip(source, item, f"Usage {usage!r} is not {', '.join(USAGES[:-1])} or {USAGES[-1]}")
            elif not whole[r]:
                self.skip(source, item, f"vote counts {'/'.join(votes_text.iloc[r])} are not whole numbers >= 0")
            elif r in bad:
                self.skip(source, item, f"pixels in {fer_path}, row {r + 2}: {bad[r]}")
            elif unclear[r]:
                total = int(emotion_votes[r] + other_votes[r])
                why = "no votes for any of the 8 emotions" if emotion_votes[r] == 0 else (
                    f"unknown + NF hold {int(other_votes[r])} of {total} votes"
                )
                self.skip(source, item, f"unclear: {why}")
                self.unclear[usage] += 1
            elif wanted is None or usage == wanted:
                rows.append(position[r])
                self.records.append(
                    ImageRecord(
                        dataset=self.name,
                        item=name,
                        label=FERPLUS_CLASSES[majority[r]],
                        split=usage,
                        soft_label=tuple(soft[r].tolist()),
                        soft_classes=FERPLUS_CLASSES,
                        index=len(rows) - 1,
                        source=source,
                    )
                )
        if any(self.unclear.values()):
            counts = ", ".join(f"{u} {n}" for u, n in self.unclear.items() if n)
            self.notes.append(f"unclear images discarded (unknown + NF majority or no emotion votes): {counts}")
        self._keep(table, rows, wanted)
