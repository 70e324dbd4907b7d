"""Apex spotters: one signature, ``(frames, *, landmarks=None, **kw) -> int`` (an index into frames).

Registered in :data:`mertk.registry.SPOTTERS` (the ``annotation`` spotter, reading the dataset's own
apex, belongs to the pipeline):

- ``std_diff`` (STRCN eq. 5): ``argmax_t std(I_t - I_0)``.
- ``dc_rois_lbp`` (Liong et al. 2015, D&C-RoIs, used by STSTNet and LAENet): uniform LBP histograms
  in the two eye-and-brow and the mouth regions placed from the first frame's landmarks; for each
  frame and region the feature difference ``1 - corr(h_0, h_t)`` (Pearson correlation with the first
  frame's histogram), summed over the regions; then a divide-and-conquer peak search over that curve
  (:func:`divide_and_conquer_peak`).
- ``flow_peak``: the frame whose mean optical-flow magnitude from the first frame is largest; the
  flow method is passed in as ``flow_fn(first, frame) -> (H, W, 2)`` array.
"""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np
from scipy.signal import find_peaks
from skimage.feature import local_binary_pattern

from ..registry import SPOTTERS
from .crop import Box, PreprocessError, clip_box, as_clip, as_landmarks

__all__ = ["ApexError", "dc_rois_lbp", "divide_and_conquer_peak", "flow_peak", "lbp_rois", "std_diff"]

# 0-based iBUG indices of the D&C-RoIs regions
ROI_POINTS = {
    "right_eye_brow": list(range(17, 22)) + list(range(36, 42)),
    "left_eye_brow": list(range(22, 27)) + list(range(42, 48)),
    "mouth": list(range(48, 68)),
}


class ApexError(PreprocessError):
    """A clip or arguments that an apex spotter cannot use."""


def _grey(clip: np.ndarray) -> np.ndarray:
    if clip.shape[-1] != 3:
        raise ApexError(f"expected grey or 3-channel RGB frames, got {clip.shape[-1]} channels")
    return clip @ np.array([0.299, 0.587, 0.114])


def std_diff(frames: Sequence[np.ndarray] | np.ndarray, *, landmarks: np.ndarray | None = None) -> int:
    """STRCN: the frame whose difference from the first frame has the largest standard deviation.

    ``landmarks`` is accepted for the common signature and not used. A clip without change gives 0.
    """
    clip = as_clip(frames, what="std_diff clip").astype(np.float64)
    diffs = (clip - clip[0]).reshape(len(clip), -1)
    return int(np.argmax(diffs.std(axis=1)))


def lbp_rois(landmarks: np.ndarray, image_shape: Sequence[int], *, margin: float = 0.15) -> dict[str, Box]:
    """The D&C-RoIs regions: each region's landmark extent enlarged by ``margin`` of its longer side."""
    pts = as_landmarks(landmarks)
    boxes = {}
    for name, idx in ROI_POINTS.items():
        lo, hi = pts[idx].min(axis=0), pts[idx].max(axis=0)
        pad = margin * float((hi - lo).max())
        boxes[name] = clip_box(lo[1] - pad, lo[0] - pad, hi[1] + pad + 1, hi[0] + pad + 1, image_shape, f"{name} RoI")
    return boxes


def _lbp_features(grey_u8: np.ndarray, box: Box, grid: tuple[int, int], points: int, radius: float) -> np.ndarray:
    codes = local_binary_pattern(grey_u8[box.top : box.bottom, box.left : box.right], points, radius, "nri_uniform")
    n_bins = points * (points - 1) + 3
    rows = np.array_split(np.arange(codes.shape[0]), grid[0])
    cols = np.array_split(np.arange(codes.shape[1]), grid[1])
    hists = [
        np.bincount(codes[np.ix_(r, c)].astype(int).ravel(), minlength=n_bins) / max(r.size * c.size, 1)
        for r in rows
        for c in cols
    ]
    return np.concatenate(hists)


def _as_uint8(clip: np.ndarray) -> np.ndarray:
    if clip.dtype == np.uint8:
        return clip
    if np.issubdtype(clip.dtype, np.floating) and clip.min() >= 0.0 and clip.max() <= 1.0:
        return np.rint(clip * 255.0).astype(np.uint8)
    raise ApexError(f"dc_rois_lbp: frames must be uint8 or float in [0, 1], got {clip.dtype} in [{clip.min()}, {clip.max()}]")


def divide_and_conquer_peak(curve: np.ndarray) -> int:
    """Liong et al.'s divide-and-conquer peak search over a feature-difference curve.

    The candidates are the curve's local maxima (its arg-max if it has none). The frame range is
    halved repeatedly, keeping the half whose candidates have the larger summed height above the
    curve's median (the noise floor; the earlier half on a tie), until one candidate is left, so many
    small noise peaks do not outweigh one real peak.
    """
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 1 or len(c) == 0:
        raise ApexError(f"divide_and_conquer_peak: expected a non-empty 1-D curve, got shape {c.shape}")
    cand = find_peaks(c)[0]
    if len(cand) == 0:
        return int(np.argmax(c))
    height = np.maximum(c - np.median(c), 0.0)
    lo, hi = 0, len(c)
    while len(cand) > 1:
        mid = (lo + hi) // 2
        left, right = cand[cand < mid], cand[cand >= mid]
        if len(right) == 0 or (len(left) and height[left].sum() >= height[right].sum()):
            cand, hi = left, mid
        else:
            cand, lo = right, mid
    return int(cand[0])


def dc_rois_lbp(
    frames: Sequence[np.ndarray] | np.ndarray,
    *,
    landmarks: np.ndarray | None = None,
    points: int = 8,
    radius: float = 1.0,
    grid: tuple[int, int] = (2, 2),
    margin: float = 0.15,
) -> int:
    """D&C-RoIs apex spotting (Liong et al. 2015); ``landmarks`` are the first frame's ``(68, 2)``.

    ``(T, 68, 2)`` per-frame landmarks are accepted; the first frame's place the regions for the
    whole clip. Each region is split into a ``grid`` of blocks with one uniform-LBP histogram each
    (``points`` neighbours on a circle of ``radius``). Float frames in ``[0, 1]`` are quantised to
    8 bits, since LBP compares neighbouring grey values.
    """
    clip = as_clip(frames, what="dc_rois_lbp clip")
    if landmarks is None:
        raise ApexError("dc_rois_lbp needs the first frame's 68 landmarks to place its regions")
    pts = np.asarray(landmarks, dtype=np.float64)
    pts = pts[0] if pts.ndim == 3 else pts
    grey = _as_uint8(clip)
    if grey.ndim == 4:
        grey = np.rint(_grey(grey)).astype(np.uint8)
    boxes = lbp_rois(pts, grey.shape[1:3], margin=margin)
    curve = np.zeros(len(grey))
    for box in boxes.values():
        feats = np.stack([_lbp_features(g, box, grid, points, radius) for g in grey])
        ref = feats[0] - feats[0].mean()
        cur = feats - feats.mean(axis=1, keepdims=True)
        denom = np.linalg.norm(cur, axis=1) * np.linalg.norm(ref)
        corr = np.divide(cur @ ref, denom, out=np.ones(len(grey)), where=denom > 0)
        curve += 1.0 - corr
    return divide_and_conquer_peak(curve)


def flow_peak(
    frames: Sequence[np.ndarray] | np.ndarray,
    *,
    landmarks: np.ndarray | None = None,
    flow_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    mask: np.ndarray | None = None,
    percentile: float = 99.0,
    eye_dilate: int = 4,
) -> int:
    """The frame whose local motion from the first frame peaks.

    For every frame ``flow_fn(first, frame)`` gives an ``(H, W, 2)`` flow. Inside the region scored
    (the landmarks' convex hull without the dilated eye polygons when ``landmarks`` are given, so that
    blinks do not count; else the whole frame; intersected with ``mask`` when given) the median flow is
    subtracted, which removes head drift and other global motion, and the frame's score is the
    ``percentile`` of the residual magnitude: a micro-expression moves a small part of the face.

    Scoring the plain mean magnitude instead followed the drift, which grows through a clip, and missed
    the synthetic benchmark's apex by 13 frames on average; this rule (percentile 99 chosen on seed 0)
    misses it by 1.9 frames on an unseen seed (``benchmarks/bench_preprocess.py``).
    """
    from .eyemask import eye_mask

    clip = as_clip(frames, what="flow_peak clip")
    if flow_fn is None:
        raise ApexError("flow_peak needs flow_fn(first, frame) -> (H, W, 2) flow")
    if mask is not None and mask.shape != clip.shape[1:3]:
        raise ApexError(f"flow_peak: mask shape {mask.shape} does not match frames {clip.shape[1:3]}")
    if not 0 < percentile <= 100:
        raise ApexError(f"flow_peak: percentile must be in (0, 100], got {percentile}")
    region = np.ones(clip.shape[1:3], dtype=bool) if mask is None else mask.astype(bool)
    if landmarks is not None:
        pts = as_landmarks(landmarks)
        hull = np.zeros(clip.shape[1:3], dtype=np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.rint(pts).astype(np.int32)), 1)
        region &= hull.astype(bool) & ~eye_mask(clip.shape[1:3], pts, dilate=eye_dilate)
    if not region.any():
        raise ApexError("flow_peak: the region to score is empty (mask and landmarks do not overlap)")
    scores = np.zeros(len(clip))
    for t in range(1, len(clip)):
        flow = np.asarray(flow_fn(clip[0], clip[t]))
        if flow.shape != clip.shape[1:3] + (2,):
            raise ApexError(f"flow_peak: flow_fn returned shape {flow.shape}, expected {clip.shape[1:3] + (2,)}")
        vectors = flow[region]
        residual = vectors - np.median(vectors, axis=0)
        scores[t] = np.percentile(np.hypot(residual[:, 0], residual[:, 1]), percentile)
    return int(np.argmax(scores))


SPOTTERS.add("std_diff", std_diff, paper="STRCN (Xia et al. 2019), eq. 5", needs_landmarks=False)
SPOTTERS.add("dc_rois_lbp", dc_rois_lbp, paper="D&C-RoIs (Liong et al. 2015), as in STSTNet/LAENet", needs_landmarks=True)
SPOTTERS.add("flow_peak", flow_peak, paper="flow-magnitude peak", needs_landmarks=False, needs_flow=True)
