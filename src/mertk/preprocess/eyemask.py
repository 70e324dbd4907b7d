"""Masks: LAENet's eye masks from landmark polygons, and STRCN-A's micro-expression-aware pixels.

Eye masks (LAENet): the polygons of landmarks 37-42 and 43-48 (1-based iBUG), i.e. 36-41 and 42-47
0-based, filled (optionally dilated) and zeroed in an image or a flow field, to hide blinks and
glasses reflections.

STRCN-A mask: the heat map ``E(x, y) = sum_i sum_t |I_i(x, y, t) - I_i(x, y, 0)|`` over the clips
given (summed over colour channels), keeping the top ``percentile`` % of pixels. It is a fitted
quantity: fit it on the training clips of a fold only (:func:`fit_strcn_mask`) and apply the same
mask to that fold's test clips (:func:`apply_strcn_mask`), so nothing measured on test data chooses it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

from .crop import PreprocessError, as_clip, as_landmarks

__all__ = ["MaskError", "apply_eye_mask", "apply_strcn_mask", "eye_mask", "fit_strcn_mask"]

EYE_POLYGONS = (tuple(range(36, 42)), tuple(range(42, 48)))
_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices in cv2.fillPoly


class MaskError(PreprocessError):
    """Masks and images that do not fit together, or clips a mask cannot be fitted on."""


def eye_mask(
    shape: Sequence[int], landmarks: np.ndarray, *, dilate: int = 0, from_shape: Sequence[int] | None = None
) -> np.ndarray:
    """Boolean ``(H, W)`` mask, true inside the two eye polygons.

    ``landmarks`` are in the pixel coordinates of an image of ``from_shape`` (default ``shape``)
    and are scaled to ``shape``, so the mask of a 28x28 flow can be drawn from the crop's landmarks.
    ``dilate`` grows the mask by that many pixels (elliptical structuring element).
    """
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise MaskError(f"eye mask: shape must be positive, got {tuple(shape)}")
    if dilate < 0:
        raise MaskError(f"eye mask: dilate must be >= 0, got {dilate}")
    pts = as_landmarks(landmarks, what="eye-mask landmarks")
    if from_shape is not None:
        pts = (pts + 0.5) * np.array([w / from_shape[1], h / from_shape[0]]) - 0.5  # pixel centres stay centres
    canvas = np.zeros((h, w), dtype=np.uint8)
    polys = [np.rint(pts[list(idx)] * (1 << _SHIFT)).astype(np.int32) for idx in EYE_POLYGONS]
    cv2.fillPoly(canvas, polys, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    if dilate:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        canvas = cv2.dilate(canvas, kernel)
    return canvas.astype(bool)


def apply_eye_mask(image_or_flow: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of an ``(H, W[, C])`` image or flow with the masked pixels set to zero."""
    arr = np.asarray(image_or_flow)
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or arr.shape[:2] != m.shape:
        raise MaskError(f"eye mask of shape {m.shape} does not match image of shape {arr.shape}")
    out = arr.copy()
    out[m] = 0
    return out


def fit_strcn_mask(train_clips: Iterable[Sequence[np.ndarray] | np.ndarray], *, percentile: float = 30.0) -> np.ndarray:
    """STRCN-A's mask from training clips only: the top ``percentile`` % of the difference heat map.

    Exactly ``round(percentile / 100 * H * W)`` pixels are selected (ties broken by raster order).
    All clips must have the same frame size; returns a boolean ``(H, W)`` mask.
    """
    if not 0 < percentile <= 100:
        raise MaskError(f"STRCN mask: percentile must be in (0, 100], got {percentile}")
    heat: np.ndarray | None = None
    for i, frames in enumerate(train_clips):
        clip = as_clip(frames, what=f"STRCN mask training clip {i}").astype(np.float64)
        d = np.abs(clip - clip[0]).sum(axis=0)
        d = d.sum(axis=-1) if d.ndim == 3 else d
        if heat is None:
            heat = d
        elif heat.shape != d.shape:
            raise MaskError(f"STRCN mask: training clip {i} has frames of {d.shape}, earlier clips {heat.shape}")
        else:
            heat += d
    if heat is None:
        raise MaskError("STRCN mask: no training clips given")
    n_keep = int(round(percentile / 100.0 * heat.size))
    if n_keep < 1:
        raise MaskError(f"STRCN mask: {percentile}% of {heat.size} pixels selects none")
    order = np.argsort(-heat.ravel(), kind="stable")
    mask = np.zeros(heat.size, dtype=bool)
    mask[order[:n_keep]] = True
    return mask.reshape(heat.shape)


def apply_strcn_mask(clip: Sequence[np.ndarray] | np.ndarray, mask: np.ndarray) -> np.ndarray:
    """STRCN-A input: the masked pixels of every frame, ``(n_pixels, T, C)`` (``C = 1`` for grey).

    Pixels are in raster order of the mask.
    """
    frames = as_clip(clip, what="STRCN-A clip")
    m = np.asarray(mask, dtype=bool)
    if m.shape != frames.shape[1:3]:
        raise MaskError(f"STRCN mask of shape {m.shape} does not match frames of shape {frames.shape[1:3]}")
    selected = frames[:, m]  # (T, n_pixels[, C])
    if selected.ndim == 2:
        selected = selected[..., None]
    return np.ascontiguousarray(selected.transpose(1, 0, 2))
