"""Face crops from 68 landmarks: LAENet margins, the STRCN eye-centre box, a square box.

Landmarks are ``(68, 2)`` float arrays of ``(x, y)`` pixel coordinates in iBUG order, 0-based
(points 36-41 are the subject's right eye, i.e. the eye on the image's left; 42-47 the other eye).
A :class:`Box` is half-open, ``image[top:bottom, left:right]``. A box that reaches past the image is
clipped to it (``Box.clipped`` records that it was); a box with no pixel inside the image raises
:class:`CropError`, never an empty crop. One box is used for a whole clip, so crops never jitter.

``PreprocessError`` and :func:`as_clip` are the shared error type and clip check of the
landmark-driven and temporal stages (crop, align, magnify, temporal, apex, eyemask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..errors import PreprocessError

__all__ = [
    "Box",
    "CropError",
    "PreprocessError",
    "as_clip",
    "as_landmarks",
    "clip_box",
    "crop",
    "crop_clip",
    "get_box",
    "BOXES",
    "laenet_box",
    "resize",
    "square_box",
    "strcn_eye_box",
]

RIGHT_EYE = slice(36, 42)  # subject's right eye (image left), 0-based iBUG
LEFT_EYE = slice(42, 48)


class CropError(PreprocessError):
    """A crop box that misses the image, or landmarks that cannot place one."""


def as_clip(frames: Sequence[np.ndarray] | np.ndarray, *, min_frames: int = 1, what: str = "clip") -> np.ndarray:
    """Stack ``frames`` into one ``(T, H, W[, C])`` array, checking count and equal frame sizes."""
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4):
            raise PreprocessError(f"{what}: expected frames of shape (T, H, W) or (T, H, W, C), got {frames.shape}")
        arr = frames
    else:
        frames = list(frames)
        shapes = {np.shape(f) for f in frames}
        if len(shapes) > 1:
            raise PreprocessError(f"{what}: frames differ in size ({', '.join(map(str, sorted(shapes)))})")
        arr = np.stack(frames) if frames else np.empty((0, 0, 0))
        if frames and arr.ndim not in (3, 4):
            raise PreprocessError(f"{what}: expected (H, W) or (H, W, C) frames, got frames of shape {arr.shape[1:]}")
    if len(arr) < min_frames:
        raise PreprocessError(f"{what}: needs at least {min_frames} frame(s), got {len(arr)}")
    if arr.size == 0 and len(arr):
        raise PreprocessError(f"{what}: frames are empty (shape {arr.shape[1:]})")
    return arr


def as_landmarks(landmarks: np.ndarray, *, what: str = "landmarks") -> np.ndarray:
    """Return ``landmarks`` as a float ``(68, 2)`` array; raise on another shape or non-finite values."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        raise PreprocessError(f"{what}: expected a (68, 2) array of (x, y) points, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise PreprocessError(f"{what}: contain NaN or infinite coordinates")
    return pts


@dataclass(frozen=True)
class Box:
    """A half-open pixel box ``image[top:bottom, left:right]``; ``clipped`` if it was cut to the image."""

    top: int
    left: int
    bottom: int
    right: int
    clipped: bool = False

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


def clip_box(top: float, left: float, bottom: float, right: float, image_shape: Sequence[int], name: str) -> Box:
    """Round a box outwards to whole pixels and clip it to the image; raise if nothing is left."""
    h, w = int(image_shape[0]), int(image_shape[1])
    t, l, b, r = math.floor(top), math.floor(left), math.ceil(bottom), math.ceil(right)
    ct, cl, cb, cr = max(t, 0), max(l, 0), min(b, h), min(r, w)
    if cb <= ct or cr <= cl:
        raise CropError(
            f"{name} box rows {t}:{b}, columns {l}:{r} lies outside the {h}x{w} image (landmarks off the image?)"
        )
    return Box(ct, cl, cb, cr, clipped=(ct, cl, cb, cr) != (t, l, b, r))


def laenet_box(
    landmarks: np.ndarray, image_shape: Sequence[int], *, top: int = 25, bottom: int = 0, left: int = 5, right: int = 5
) -> Box:
    """LAENet crop: the landmarks' extent enlarged by ``top``/``bottom``/``left``/``right`` pixels.

    The box holds every pixel from ``floor(min_x) - left`` to ``floor(max_x) + right`` (inclusive)
    and likewise in y, so the pixels holding the extreme landmarks are inside it.
    """
    pts = as_landmarks(landmarks)
    x0, y0 = np.floor(pts.min(axis=0))
    x1, y1 = np.floor(pts.max(axis=0)) + 1
    return clip_box(y0 - top, x0 - left, y1 + bottom, x1 + right, image_shape, "LAENet")


def strcn_eye_box(
    landmarks: np.ndarray, image_shape: Sequence[int], *, above: float = 0.6, height: float = 2.2, width: float = 1.8
) -> Box:
    """STRCN crop from the eye centres (constants 0.4, 0.6, 2.2, 1.8 of the inter-ocular distance ``d``).

    Reading of the garbled eq. (1) (see docs/preprocessing.md): the box is ``width * d`` wide and
    ``height * d`` tall, centred horizontally on the midpoint of the eye centres (so it reaches
    ``(width - 1) / 2 * d = 0.4 d`` past each eye centre), its top ``above * d`` above the eye line.
    Its 2.2 : 1.8 aspect is STRCN-G's 300 x 245. The box is axis-aligned; the eye line's y is the
    mean of the two eye centres, each eye centre the mean of its six landmarks.
    """
    pts = as_landmarks(landmarks)
    eye_a, eye_b = pts[RIGHT_EYE].mean(axis=0), pts[LEFT_EYE].mean(axis=0)
    d = float(np.hypot(*(eye_b - eye_a)))
    if d < 1.0:
        raise CropError(f"STRCN box: eye centres are {d:.2f} px apart; landmarks are degenerate")
    cx, cy = (eye_a + eye_b) / 2
    top = cy - above * d
    return clip_box(top, cx - width * d / 2, top + height * d, cx + width * d / 2, image_shape, "STRCN eye")


def square_box(landmarks: np.ndarray, image_shape: Sequence[int], *, margin: float = 0.1) -> Box:
    """A square centred on the landmarks' extent, side = ``ceil(longer extent x (1 + 2 * margin))``.

    The box stays square unless it has to be clipped to the image.
    """
    pts = as_landmarks(landmarks)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    cx, cy = (lo + hi) / 2
    side = math.ceil(float((hi - lo).max()) * (1 + 2 * margin))
    top, left = round(cy - side / 2), round(cx - side / 2)
    return clip_box(top, left, top + side, left + side, image_shape, "square")


BOXES = {"laenet": laenet_box, "strcn": strcn_eye_box, "square": square_box}


def get_box(name: str, landmarks: np.ndarray, image_shape: Sequence[int], **kw: float) -> Box:
    """Place the crop box called ``name`` (``laenet``, ``strcn``, ``square``)."""
    if name not in BOXES:
        raise CropError(f"unknown crop {name!r}; choose from: {', '.join(sorted(BOXES))}")
    return BOXES[name](landmarks, image_shape, **kw)


def _check_inside(box: Box, shape: Sequence[int]) -> None:
    if not (0 <= box.top < box.bottom <= shape[0] and 0 <= box.left < box.right <= shape[1]):
        raise CropError(f"box rows {box.top}:{box.bottom}, columns {box.left}:{box.right} is not inside the {shape[0]}x{shape[1]} image")


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """Cut ``box`` out of one ``(H, W[, C])`` image (a view)."""
    _check_inside(box, image.shape)
    return image[box.top : box.bottom, box.left : box.right]


def crop_clip(frames: Sequence[np.ndarray] | np.ndarray, box: Box) -> np.ndarray:
    """Cut the same ``box`` out of every frame: ``(T, h, w[, C])``."""
    clip = as_clip(frames)
    _check_inside(box, clip.shape[1:])
    return clip[:, box.top : box.bottom, box.left : box.right]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size = (height, width)`` (area averaging when shrinking, bilinear when growing)."""
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise PreprocessError(f"resize: target size must be positive, got {size}")
    if image.ndim not in (2, 3) or image.size == 0:
        raise PreprocessError(f"resize: expected a non-empty (H, W[, C]) image, got shape {image.shape}")
    shrink = h * w < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
