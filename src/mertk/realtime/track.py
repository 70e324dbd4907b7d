"""Follow one face through a video cheaply: detect once, re-detect near it now and then.

dlib's HOG detector costs tens of milliseconds on a full frame, far too much for 200 fps video. The
:class:`FaceTracker` detects on the first frame only, then re-detects inside a window around the
last box (at no upsampling when the face is large enough) every ``redetect_every`` frames, or at once
when the face region changes by more than ``motion_threshold`` grey levels (a head turn, a cut). The
tracked box is smoothed (an exponential moving average of the detections), and 68 landmarks are
fitted on every frame that ran a detection.

Spotting needs crops that do not jitter, so the tracker also keeps a *crop box* (a square around the
landmarks, as the pipeline's one box per clip): it moves only when the tracked face leaves it by more
than ``tolerance`` of its side, and every move is recorded (a move is a jump in the crops).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..preprocess.crop import Box, get_box
from ..preprocess.face import FaceBox, NoFaceError, detect_faces
from ..preprocess.face import landmarks as fit_landmarks

__all__ = ["FaceTracker", "TrackState"]

_THUMB = (32, 32)  # size of the face thumbnail whose change triggers a re-detection


@dataclass(frozen=True)
class TrackState:
    """The tracker's view of one frame.

    Attributes:
        index: 0-based frame index.
        box: the smoothed face box (detector coordinates).
        crop_box: the square crop box in force for this frame (one per stable stretch of video).
        landmarks: 68 x 2 landmarks (frame coordinates) of the last frame that ran a detection.
        detected: a detection ran on this frame and found the face.
        lost: a detection ran on this frame and found no face (the previous box is kept).
    """

    index: int
    box: FaceBox
    crop_box: Box
    landmarks: np.ndarray = field(repr=False)
    detected: bool
    lost: bool = False


def _thumb(frame: np.ndarray, box: FaceBox) -> np.ndarray:
    region = frame[box.top : box.bottom, box.left : box.right]
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.ndim == 3 else region
    return cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


class FaceTracker:
    """Track the largest face of a video (see the module docstring).

    Args:
        redetect_every: frames between two re-detections (0: only on motion).
        motion_threshold: mean absolute change (grey levels, on a 32 x 32 face thumbnail) since the
            last detection that triggers a re-detection at once.
        smooth: weight of a new detection in the box's moving average (1: no smoothing).
        tolerance: share of the crop box's side the tracked face may move (or grow) before the crop box
            is placed again.
        margin: the crop box's margin around the landmarks (``square`` crop).
        upsample: dlib upsampling for the first detection and for small faces.
        source: names the video in errors.
    """

    def __init__(self, *, redetect_every: int = 25, motion_threshold: float = 12.0, smooth: float = 0.5,
                 tolerance: float = 0.15, margin: float = 0.1, upsample: int = 1, source: str = ""):
        if redetect_every < 0 or not 0 < smooth <= 1 or tolerance <= 0:
            raise ValueError("redetect_every >= 0, 0 < smooth <= 1 and tolerance > 0 are required")
        self.redetect_every, self.motion_threshold, self.smooth = redetect_every, motion_threshold, smooth
        self.tolerance, self.margin, self.upsample, self.source = tolerance, margin, upsample, source
        self.index = -1
        self.detections = 0
        self.misses = 0
        self.crop_moves: list[int] = []
        self._box: np.ndarray | None = None  # smoothed (left, top, right, bottom), float
        self._points: np.ndarray | None = None
        self._crop: Box | None = None
        self._anchor: tuple[np.ndarray, float] = (np.zeros(2), 1.0)  # landmarks' centre and scale at the crop's placing
        self._thumb: np.ndarray | None = None
        self._since = 0

    # -- set-up -----------------------------------------------------------------------------------

    def start(self, frame: np.ndarray) -> TrackState:
        """Detect the largest face in the first frame (whole frame); :class:`NoFaceError` if none."""
        boxes = detect_faces(frame, upsample=self.upsample)
        if not boxes:
            raise NoFaceError(self.source, "no face found in the first frame")
        return self._begin(frame, boxes[0], fit_landmarks(frame, boxes[0]))

    @classmethod
    def from_landmarks(cls, frame: np.ndarray, points: np.ndarray, **kwargs) -> FaceTracker:
        """A tracker started from known landmarks of ``frame`` (no detection), e.g. for benchmarks."""
        tracker = cls(**kwargs)
        pts = np.asarray(points, dtype=np.float32)
        lo, hi = np.floor(pts.min(axis=0)).astype(int), np.ceil(pts.max(axis=0)).astype(int)
        h, w = frame.shape[:2]
        box = FaceBox(max(lo[0], 0), max(lo[1], 0), min(hi[0] + 1, w), min(hi[1] + 1, h))
        tracker._begin(frame, box, pts)
        return tracker

    def _begin(self, frame: np.ndarray, box: FaceBox, points: np.ndarray) -> TrackState:
        self.index, self.detections = 0, 1
        self._box = np.array([box.left, box.top, box.right, box.bottom], dtype=np.float64)
        self._points = points.astype(np.float32)
        self._place_crop(frame.shape)
        self._thumb = _thumb(frame, box)
        self._since = 0
        return self.state(detected=True)

    # -- per frame --------------------------------------------------------------------------------

    @property
    def box(self) -> FaceBox:
        """The current smoothed face box."""
        left, top, right, bottom = np.rint(self._box).astype(int)
        return FaceBox(int(left), int(top), int(right), int(bottom))

    @property
    def crop_box(self) -> Box:
        return self._crop

    def state(self, *, detected: bool = False, lost: bool = False) -> TrackState:
        return TrackState(self.index, self.box, self._crop, self._points, detected, lost)

    def update(self, frame: np.ndarray) -> TrackState:
        """Advance to the next frame; re-detects when due or when the face region changed a lot."""
        if self._box is None:
            raise RuntimeError("FaceTracker.update before start")
        self.index += 1
        self._since += 1
        box = self.box
        due = self.redetect_every and self._since >= self.redetect_every
        if not due:
            due = float(np.mean(np.abs(_thumb(frame, box) - self._thumb))) > self.motion_threshold
        if not due:
            return self.state()
        found = self._redetect(frame, box)
        self._since = 0
        if found is None:
            self.misses += 1
            return self.state(lost=True)
        self.detections += 1
        new = np.array([found.left, found.top, found.right, found.bottom], dtype=np.float64)
        self._box = self.smooth * new + (1 - self.smooth) * self._box
        box = self.box
        self._points = fit_landmarks(frame, box)
        self._thumb = _thumb(frame, box)
        if self._left_crop():
            self._place_crop(frame.shape)
            self.crop_moves.append(self.index)
        return self.state(detected=True)

    def _redetect(self, frame: np.ndarray, box: FaceBox) -> FaceBox | None:
        """The detection nearest the last box, searched in a window of twice its size."""
        h, w = frame.shape[:2]
        pad_x, pad_y = box.width // 2, box.height // 2
        x0, y0 = max(box.left - pad_x, 0), max(box.top - pad_y, 0)
        x1, y1 = min(box.right + pad_x, w), min(box.bottom + pad_y, h)
        window = frame[y0:y1, x0:x1]
        # dlib's window is 80 px: a face at least that large needs no (4x dearer) upsampling, and a
        # larger one is found as well in a window shrunk to put it near 120 px, at a fraction of the cost.
        factor = min(1.0, 120.0 / min(box.width, box.height))
        if factor < 1.0:
            window = cv2.resize(window, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        upsample = 0 if min(box.width, box.height) >= 90 else self.upsample
        found = detect_faces(window, upsample=upsample)
        if not found:
            return None
        cx, cy = ((box.left + box.right) / 2 - x0) * factor, ((box.top + box.bottom) / 2 - y0) * factor
        best = min(found, key=lambda b: (b.left + b.right - 2 * cx) ** 2 + (b.top + b.bottom - 2 * cy) ** 2)
        return FaceBox(round(best.left / factor) + x0, round(best.top / factor) + y0,
                       min(round(best.right / factor) + x0, w), min(round(best.bottom / factor) + y0, h))

    def _place_crop(self, shape: tuple[int, ...]) -> None:
        self._crop = get_box("square", self._points, shape, margin=self.margin)
        self._anchor = _anchor(self._points)

    def _left_crop(self) -> bool:
        """Whether the face moved or changed scale past ``tolerance`` since the crop box was placed.

        Judged on landmarks that expressions barely move (nose bridge, eye corners), not on dlib's
        box, whose size jumps between the detector's pyramid scales.
        """
        centre, iod = _anchor(self._points)
        side = max(self._crop.width, self._crop.height)
        shift = float(np.abs(centre - self._anchor[0]).max())
        return shift > self.tolerance * side or abs(iod / self._anchor[1] - 1) > self.tolerance


def _anchor(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre of the nose bridge and eye corners, and the distance between the eye centres."""
    centre = points[[27, 28, 29, 30, 36, 39, 42, 45]].mean(axis=0)
    iod = float(np.hypot(*(points[42:48].mean(axis=0) - points[36:42].mean(axis=0))))
    return centre, max(iod, 1.0)
