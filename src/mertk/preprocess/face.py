"""Face detection and 68-point landmarks (dlib's HOG detector and the iBUG shape predictor).

The predictor weights ship inside the ``face_recognition_models`` package. That package's own
``__init__`` imports ``pkg_resources`` (absent from recent setuptools), so the model file is located
from the package's spec without importing it. Models load once per process.

Landmarks follow the iBUG-68 order, 0-based: jaw 0-16, brows 17-26, nose 27-35, eyes 36-41 (the
subject's right eye, on the image's left) and 42-47, mouth 48-67. Coordinates are (x, y) in pixels
of the image given.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, MertkError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


class FaceModelError(MertkError):
    """The dlib landmark model (package ``face_recognition_models``) is not installed."""


class NoFaceError(DataError):
    """No face was found in an image; the message names the image's source."""

    def __init__(self, source: str | Path | None, problem: str = "no face found"):
        super().__init__(source or "image", problem)


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in pixel coordinates; ``right`` and ``bottom`` are exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)


def predictor_path() -> Path:
    """Path of the 68-point shape predictor inside the installed ``face_recognition_models``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FaceModelError(
            "the 68-point landmark model is missing: install the package face-recognition-models"
        )
    path = Path(spec.origin).parent / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FaceModelError(f"{path}: landmark model file not found (reinstall face-recognition-models)")
    return path


@lru_cache(maxsize=1)
def _detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _predictor() -> Any:
    import dlib

    return dlib.shape_predictor(str(predictor_path()))


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """Grey (H, W) or colour (H, W, 3|4) image as a C-contiguous uint8 array dlib accepts."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"expected a grey (H, W) or colour (H, W, 3) image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def detect_faces(image: np.ndarray, upsample: int = 1) -> list[FaceBox]:
    """All frontal faces in ``image`` (grey or RGB), largest first (ties: higher detector score).

    ``upsample`` doubles the image that many times before detection, finding smaller faces at a
    higher cost. Boxes are clipped to the image.
    """
    arr = _as_uint8(image)
    h, w = arr.shape[:2]
    rects, scores, _ = _detector().run(arr, upsample, 0.0)
    boxes = []
    for rect, score in zip(rects, scores):
        box = FaceBox(max(rect.left(), 0), max(rect.top(), 0), min(rect.right() + 1, w), min(rect.bottom() + 1, h))
        if box.area > 0:
            boxes.append((box.area, float(score), box))
    boxes.sort(key=lambda t: (-t[0], -t[1]))
    return [b for _, _, b in boxes]


def detect_face(image: np.ndarray, *, source: str | Path = "", upsample: int = 1) -> FaceBox:
    """The largest face in ``image``; raises :class:`NoFaceError` naming ``source`` if there is none."""
    boxes = detect_faces(image, upsample)
    if not boxes:
        raise NoFaceError(source)
    return boxes[0]


def landmarks(image: np.ndarray, box: FaceBox) -> np.ndarray:
    """The 68 iBUG landmarks of the face in ``box``, as a (68, 2) float32 array of (x, y)."""
    import dlib

    arr = _as_uint8(image)
    shape = _predictor()(arr, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def face_landmarks(image: np.ndarray, *, source: str | Path = "", upsample: int = 1) -> tuple[FaceBox, np.ndarray]:
    """Detect the largest face and its 68 landmarks; raises :class:`NoFaceError` when none."""
    box = detect_face(image, source=source, upsample=upsample)
    return box, landmarks(image, box)
