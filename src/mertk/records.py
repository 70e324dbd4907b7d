"""Frozen records passed between pipeline stages.

Records carry metadata only (paths, frame numbers, labels), never pixels, so a whole dataset index is
cheap to build, hash and pickle. Frame numbers are the numbers printed in the dataset's own file
names (CASME II ``img46.jpg`` is frame 46), which is what the annotation spreadsheets refer to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence


def frame_runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Runs of consecutive frame numbers: ``(27, 28, 29, 40)`` -> ``[(27, 29), (40, 40)]``."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return [(a, b) for a, b in runs]


def format_runs(numbers: Sequence[int]) -> str:
    """Frame numbers as compact runs: ``(27, 28, 29, 40)`` -> ``"27-29, 40"``."""
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in frame_runs(numbers))


@dataclass(frozen=True)
class Skip:
    """An annotation row or a clip that a loader could not use, and why.

    ``source`` is the file (and row) the item came from; ``item`` names the clip or row.
    """

    source: str
    item: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "item": self.item, "reason": self.reason}


@dataclass(frozen=True)
class AnnotationIssue:
    """An annotation error that a loader repaired with a principled fallback instead of losing the clip.

    ``problem`` says what the file gives (``apex 1143 outside onset..offset 1071..1134``), ``fallback``
    what was done instead (``apex unknown: spotted``). The clip stays in the dataset.
    """

    source: str
    item: str
    problem: str
    fallback: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "item": self.item, "problem": self.problem, "fallback": self.fallback}


@dataclass(frozen=True)
class ClipRecord:
    """One annotated video clip (a micro-expression, or a CK+ macro sequence).

    Attributes:
        dataset: registry name of the dataset (``casme2``, ``samm``, ``smic``, ``casme``, ``ckplus``).
        subject: subject id namespaced by dataset (``casme2/sub01``), so LOSO never merges two people.
        clip: the clip's id as the dataset names it (``EP02_01f``, ``006_1_2``, ``s1_po_01``).
        label: the emotion as the dataset names it (``happiness``, ``Anger``, ``positive``, ``7``),
            stripped of surrounding white space but otherwise untouched; label maps normalise it.
        frames: frame image paths in temporal order; empty when the frame folder was not found.
        frame_numbers: the frame number of each path (parallel to ``frames``).
        onset, apex, offset: annotated frame numbers; ``apex`` is ``None`` where the dataset has no
            apex (SMIC) or the row lacks one (some CASME II rows).
        aus: action units as annotated, one string per unit (``"AU4"``, ``"R12"``, ``"AU4 or AU7"``).
        objective_class: MEGC 2018 objective class (``"I"`` .. ``"VII"``) when the dataset gives one.
        fps: frame rate of the recording.
        source: annotation file and row the record came from, for error messages and reports.
        apex_source: where ``apex`` came from when not from ``source`` (a separate apex file such as
            ``smic_apex.xlsx, row 12``); empty when it is the annotation row's own (or ``apex`` is ``None``).
        extra: any further annotation columns, kept verbatim.
    """

    dataset: str
    subject: str
    clip: str
    label: str
    frames: tuple[Path, ...] = ()
    frame_numbers: tuple[int, ...] = ()
    onset: int | None = None
    apex: int | None = None
    offset: int | None = None
    aus: tuple[str, ...] = ()
    objective_class: str | None = None
    fps: float = 200.0
    source: str = ""
    apex_source: str = ""
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """Globally unique id: ``dataset/clip`` with the subject, e.g. ``casme2/sub01/EP02_01f``."""
        return f"{self.subject}/{self.clip}"

    @property
    def has_frames(self) -> bool:
        return len(self.frames) > 0

    @property
    def missing_frames(self) -> tuple[int, ...]:
        """Frame numbers absent between the first and the last frame found (the datasets number
        frames consecutively, so a hole means a lost file)."""
        if len(self.frame_numbers) < 2:
            return ()
        present = set(self.frame_numbers)
        return tuple(n for n in range(self.frame_numbers[0], self.frame_numbers[-1] + 1) if n not in present)

    def index_of(self, frame_number: int) -> int:
        """Position in ``frames`` of an annotated frame number (raises ``ValueError`` if absent)."""
        try:
            return self.frame_numbers.index(frame_number)
        except ValueError:
            raise ValueError(
                f"{self.key}: frame {frame_number} is not among the clip's frames "
                f"({self.frame_numbers[0] if self.frame_numbers else '-'}.."
                f"{self.frame_numbers[-1] if self.frame_numbers else '-'})"
            ) from None

    def frame_path(self, frame_number: int) -> Path:
        return self.frames[self.index_of(frame_number)]

    def with_label(self, label: str) -> "ClipRecord":
        return replace(self, label=label)


@dataclass(frozen=True)
class ImageRecord:
    """One still image: a FER2013/FERPlus face, a CK+ frame, or a precomputed feature image.

    Attributes:
        dataset: registry name of the dataset.
        item: the image's id (``fer2013/00001``, ``fer0000001.png``, a file name).
        label: the emotion as the dataset names it (string form of FER2013's 0..6, FERPlus's majority
            class, a feature folder's class).
        subject: namespaced subject id where known (CK+, feature folders), else ``None``.
        path: image file, or ``None`` where pixels live inside a table (FER2013's csv).
        index: row of the pixel table (FER2013), else ``None``.
        split: official split name (``Training``/``PublicTest``/``PrivateTest``) where the dataset has one.
        soft_label: vote distribution over ``soft_classes`` (FERPlus), summing to 1.
        soft_classes: class names of ``soft_label``.
        source: file and row the record came from.
    """

    dataset: str
    item: str
    label: str
    subject: str | None = None
    path: Path | None = None
    index: int | None = None
    split: str | None = None
    soft_label: tuple[float, ...] | None = None
    soft_classes: tuple[str, ...] | None = None
    source: str = ""
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def with_label(self, label: str) -> "ImageRecord":
        return replace(self, label=label)
