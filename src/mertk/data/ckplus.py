"""CK+ (extended Cohn-Kanade) loader: posed macro-expression sequences, used by LAENet for pretraining.

Native layout::

    cohn-kanade-images/S005/001/S005_001_00000001.png ... S005_001_00000011.png
    Emotion/S005/001/S005_001_00000011_emotion.txt      # "   3.0000000e+00"

Each sequence runs from a neutral first frame to the peak of the expression in its last frame, and
only the labelled sequences (327 of 593 in the official release) carry an emotion file, named after
the peak frame. As LAENet does, a labelled sequence becomes one clip with onset = first frame and
apex = offset = the emotion file's (last) frame. Recorded at 30 fps.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

from ..errors import DataError
from ..records import ClipRecord, ImageRecord
from ..registry import DATASETS
from .base import ClipDataset, find_dir, require_dir

IMAGE_DIRS = (
    "cohn-kanade-images",
    "extended-cohn-kanade-images/cohn-kanade-images",
    "CK+/cohn-kanade-images",
    "CK+/extended-cohn-kanade-images/cohn-kanade-images",
)
EMOTION_DIRS = (
    "Emotion",
    "Emotion_labels/Emotion",
    "Emotion_labels",
    "CK+/Emotion",
    "CK+/Emotion_labels/Emotion",
    "CK+/Emotion_labels",
)
_EMOTION_FILE = re.compile(r"^(S\d+)_(\d+)_(\d+)_emotion$")


@DATASETS.register(
    "ckplus",
    kind="clips",
    folders=("CK+", "CKPlus", "ckplus", "CK"),
    description="CK+ posed macro-expression sequences (7 emotions, 30 fps); onset = first, apex = last frame",
)
class CKPlus(ClipDataset):
    """The labelled CK+ sequences as clips.

    Args:
        root: folder holding ``cohn-kanade-images`` and ``Emotion`` (also accepted:
            ``extended-cohn-kanade-images/cohn-kanade-images``, ``Emotion_labels/Emotion``, and both
            under ``CK+/``).
        annotation: the ``Emotion`` folder, where it lies elsewhere.

    ``rows`` counts the emotion files found; a file whose value is not a whole number in 1..7 is
    skipped; a labelled sequence without its image folder is kept without frames and listed in
    ``skipped``. Unlabelled sequences are normal in CK+ and only counted in ``notes``.
    """

    name = "ckplus"
    fps = 30.0
    label_names = {
        "1": "anger", "2": "contempt", "3": "disgust", "4": "fear", "5": "happy", "6": "sadness", "7": "surprise",
    }
    labels = tuple(label_names)

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None) -> None:
        super().__init__()
        self.root = require_dir(root)
        images = find_dir(self.root, IMAGE_DIRS)
        if images is None:
            raise DataError(self.root, f"CK+ image folder not found (looked for {', '.join(IMAGE_DIRS)})")
        if annotation is not None:
            emotion_dir = require_dir(annotation, "CK+ Emotion folder")
        else:
            emotion_dir = find_dir(self.root, EMOTION_DIRS)
            if emotion_dir is None:
                raise DataError(self.root, f"CK+ Emotion folder not found (looked for {', '.join(EMOTION_DIRS)})")
        self.images_dir = images
        self.annotation = emotion_dir

        labelled: set[tuple[str, str]] = set()
        for folder in sorted(p for p in emotion_dir.glob("S*/*") if p.is_dir()):
            files = sorted(folder.glob("*_emotion.txt"))
            if not files:
                continue
            self.rows += len(files)
            labelled.add((folder.parent.name, folder.name))
            if len(files) > 1:
                for f in files:
                    self.skip(str(f), f"ckplus/{folder.parent.name}/{folder.parent.name}_{folder.name}", f"several emotion files in {folder}")
                continue
            record = self._parse(files[0])
            if record is not None:
                self.records.append(self._with_frames(record, images / folder.parent.name / folder.name))

        unlabelled = sum(
            1 for p in images.glob("S*/*") if p.is_dir() and (p.parent.name, p.name) not in labelled
        )
        if unlabelled:
            self.notes.append(
                f"{unlabelled} sequence{'s' if unlabelled != 1 else ''} without an emotion file "
                "(CK+ labels 327 of its 593 sequences; expected)"
            )

    def _parse(self, path: Path) -> ClipRecord | None:
        match = _EMOTION_FILE.match(path.stem)
        if match is None:
            self.skip(str(path), path.stem, "file name is not S###_###_########_emotion.txt")
            return None
        subject, seq, frame = match.group(1), match.group(2), int(match.group(3))
        clip = f"{subject}_{seq}"
        key = f"ckplus/{subject}/{clip}"
        text = path.read_text(errors="replace").strip()
        try:
            value = float(text)
        except ValueError:
            self.skip(str(path), key, f"emotion {text!r} is not a number")
            return None
        if not (math.isfinite(value) and value.is_integer() and 1 <= value <= 7):
            self.skip(str(path), key, f"emotion {text!r} is not a CK+ code in 1..7")
            return None
        return ClipRecord(
            dataset=self.name,
            subject=f"ckplus/{subject}",
            clip=clip,
            label=str(int(value)),
            apex=frame,
            offset=frame,
            fps=self.fps,
            source=str(path),
        )

    def _with_frames(self, record: ClipRecord, folder: Path) -> ClipRecord:
        record = self.attach_frames(record, folder)
        return replace(record, onset=record.frame_numbers[0]) if record.has_frames else record

    def peak_images(self) -> list[ImageRecord]:
        """The last (peak) frame of every labelled sequence whose frames were found."""
        return [
            ImageRecord(
                dataset=self.name,
                item=r.frames[-1].name,
                label=r.label,
                subject=r.subject,
                path=r.frames[-1],
                source=r.source,
            )
            for r in self.usable()
        ]
