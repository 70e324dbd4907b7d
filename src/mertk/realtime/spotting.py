"""Spotting micro- and macro-expressions in a long face sequence, and the MEGC spotting metrics.

Both spotters follow the main-directional-maximal-difference idea of Moilanen, Zhao and Pietikainen
(2014) as used by the MEGC 2019-2021 spotting baselines: a frame ``t`` is compared with the frames
``k`` before and ``k`` after it; a facial movement that starts and ends within ``[t - k, t + k]``
(``k`` about half the movement's length) makes ``t`` differ from both, while slow changes (head
drift, lighting wander) cancel. Per frame:

``feature`` (Moilanen et al.): block means of the grey face (the region inside the landmark hull,
  eyes removed, each frame divided by its own mean to cancel flicker); the difference is
  ``|B_t - (B_{t-k} + B_{t+k}) / 2|`` per block and the frame's score the mean of its largest third.
``flow``: dense flow (OpenCV DIS, preset ultrafast: ``dis`` of :mod:`mertk.preprocess.flow`) from frame
  ``t - k`` to ``t`` and from ``t + k`` to ``t``; in each the median flow of the face region is
  removed (head drift and global motion, as :func:`mertk.preprocess.apex.flow_peak` does), the
  residual vectors are averaged per block and the frame's score is the mean of the largest third of
  the block magnitudes, averaged over the two flows.

Then, per time scale ``k`` (``k_s``, seconds; one or more): the contrast
``C_t = F_t - (F_{t-k} + F_{t+k}) / 2`` (Moilanen et al.'s step, which removes the echoes of an event at
``t +- k``); peaks of ``C`` above ``median(C) + z * 1.4826 * MAD(C)`` (the sequence's own noise
level), at least ``k`` apart, are detections. Each detection becomes an interval on a second curve,
the distance of every frame from the neutral face (block features minus their running median over
``2 baseline_s``; events are short and rare, so that median is neutral): the apex is the farthest
frame within ``k`` of the peak and the interval grows from it while the distance stays above
``frac`` of its height over the median. Overlapping intervals (a macro-expression fires a peak in
each phase) are merged. An event is ``micro`` when it lasts at most ``max_micro_s``.

Eye blinks are suppressed by leaving out the dilated eye polygons of the landmarks; without
landmarks the whole frame is scored. Frames are downscaled by ``scale`` (default 0.5) before either
spotter, for speed and to average out sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np
from scipy.signal import find_peaks

from ..errors import PreprocessError

__all__ = ["SpottedEvent", "SpottingError", "spot_events", "spotting_metrics", "interval_iou", "METHODS", "DEFAULTS"]

METHODS = ("flow", "feature")
# The shortest micro-expression in the literature's definition (1/25 s, Ekman; Yan et al. 2013), a
# bound taken from the definition, not tuned: shorter detections are dropped.
MIN_EVENT_S = 0.04

# "feature" is the default: on the selection seeds 1 and 2 its micro-event F1 was 0.50 and 0.78 against
# 0.40 and 0.62 for "flow" (benchmarks/bench_spotting.py --seeds 1,2), and it is ~10x faster.
# Chosen on the synthetic long videos of seeds 1 and 2 (4 subjects each; a grid over z, frac, k_s and
# block for "feature", the same values checked for "flow"); figures are reported on seeds 3 and 4,
# which no choice looked at (benchmarks/bench_spotting.py --seeds 3,4).
DEFAULTS: dict[str, dict[str, Any]] = {
    "flow": {"scale": 0.5, "k_s": (0.15,), "z": 4.0, "frac": 0.1, "block": 10, "eye_dilate": 3, "baseline_s": 2.0},
    "feature": {"scale": 0.5, "k_s": (0.15,), "z": 4.0, "frac": 0.1, "block": 10, "eye_dilate": 3,
                "baseline_s": 2.0},
}


class SpottingError(PreprocessError):
    """Frames, landmarks or parameters that the spotter cannot use."""


@dataclass(frozen=True)
class SpottedEvent:
    """One spotted facial movement; frame indices are 0-based into the frames given."""

    onset: int
    apex: int
    offset: int
    score: float  # peak contrast in units of the sequence's robust noise level
    kind: str  # "micro" or "macro" (by duration at the given fps)


def _grey_frames(frames: np.ndarray) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim == 4 and arr.shape[-1] == 3:
        if arr.dtype != np.uint8:
            raise SpottingError(f"spotting: colour frames must be uint8, got {arr.dtype}")
        arr = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in arr])
    elif arr.ndim != 3:
        raise SpottingError(f"spotting: expected frames of shape (T, H, W) or (T, H, W, 3), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.uint8):
        raise SpottingError(f"spotting: unsupported frame dtype {arr.dtype}; use uint8 or float")
    grey = arr.astype(np.float32)
    if not np.isfinite(grey).all():
        raise SpottingError("spotting: frames contain NaN or infinite values")
    if np.issubdtype(arr.dtype, np.floating) and grey.size and grey.max() <= 1.0:
        grey = grey * 255.0  # float frames on a 0..1 scale
    if min(grey.shape[1:]) < 16:
        raise SpottingError(f"spotting: frames of {grey.shape[1]}x{grey.shape[2]} px are too small (need 16x16)")
    return grey


def _region(shape: tuple[int, int], landmarks: np.ndarray | None, scale: float, eye_dilate: int) -> np.ndarray:
    """Pixels scored: the landmark hull (brows to chin) without the dilated eyes, else everything."""
    if landmarks is None:
        return np.ones(shape, bool)
    from ..preprocess.eyemask import eye_mask

    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (68, 2) or not np.isfinite(pts).all():
        raise SpottingError(f"spotting: landmarks must be a finite (68, 2) array, got shape {pts.shape}")
    pts = (pts + 0.5) * scale - 0.5
    hull = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.rint(pts).astype(np.int32)), 1)
    region = hull.astype(bool) & ~eye_mask(shape, pts, dilate=eye_dilate)
    if region.sum() < 16:
        raise SpottingError("spotting: the face region from the landmarks is (almost) empty; are they in crop coordinates?")
    return region


def _blocks(region: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Block label image (-1 outside the scored region) and the pixel count per block; blocks keep at
    least half their pixels inside the region."""
    h, w = region.shape
    rows, cols = (np.arange(h) // block), (np.arange(w) // block)
    ids = rows[:, None] * (cols.max() + 1) + cols[None, :]
    counts = np.bincount(ids[region], minlength=ids.max() + 1)
    keep = counts >= 0.5 * block * block
    if not keep.any():
        keep = counts > 0
    remap = np.full(ids.max() + 1, -1)
    remap[keep] = np.arange(keep.sum())
    labels = np.where(region, remap[ids], -1)
    return labels, np.bincount(labels[labels >= 0], minlength=int(keep.sum())).astype(np.float64)


def _block_mean(values: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    inside = labels >= 0
    return np.bincount(labels[inside], weights=values[inside], minlength=len(counts)) / counts


def _top_third(x: np.ndarray) -> float:
    m = max(1, len(x) // 3)
    return float(np.partition(x, len(x) - m)[len(x) - m:].mean())


def _block_features(grey: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``(T, blocks)`` block means, each frame divided by its own mean (a global gain: flicker)."""
    feats = np.stack([_block_mean(f, labels, counts) for f in grey])
    return feats / np.maximum(feats.mean(1, keepdims=True), 1e-6)


def _feature_curve(feats: np.ndarray, k: int) -> np.ndarray:
    """MDMD: the largest third of ``|B_t - (B_{t-k} + B_{t+k}) / 2|`` (one side at the ends)."""
    t = len(feats)
    idx = np.arange(t)
    tail, head = feats[np.clip(idx - k, 0, t - 1)], feats[np.clip(idx + k, 0, t - 1)]
    ref = 0.5 * (tail + head)
    ref[idx - k < 0] = head[idx - k < 0]
    ref[idx + k >= t] = tail[idx + k >= t]
    return np.array([_top_third(row) for row in np.abs(feats - ref)])


def _baseline_curve(feats: np.ndarray, half: int) -> np.ndarray:
    """Distance of each frame from the neutral face, estimated as the running median of the block
    features over ``2 half + 1`` frames (events are short and rare, so the median is neutral)."""
    from scipy.ndimage import median_filter

    size = min(2 * half + 1, len(feats) if len(feats) % 2 else len(feats) - 1)
    neutral = median_filter(feats, size=(max(size, 1), 1), mode="nearest")
    return np.array([_top_third(row) for row in np.abs(feats - neutral)])


def _flow_curve(grey: np.ndarray, region: np.ndarray, labels: np.ndarray, counts: np.ndarray, k: int,
                flow: Any) -> np.ndarray:
    """The flow spotter's curve: median-removed DIS flow ``t - k -> t`` and ``t + k -> t``, averaged
    per block; the largest third of the block magnitudes, mean of the two flows."""
    frames8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    t = len(frames8)
    curve = np.zeros(t)
    full = np.zeros(grey.shape[1:] + (2,), np.float32)
    for i in range(t):
        mags = []
        for j in (i - k, i + k):
            if not 0 <= j < t:
                continue
            f = flow(frames8[j], frames8[i])
            full[region] = f[region] - np.median(f[region], axis=0)
            u = _block_mean(full[..., 0], labels, counts)
            v = _block_mean(full[..., 1], labels, counts)
            mags.append(_top_third(np.hypot(u, v)))
        curve[i] = float(np.mean(mags))
    return curve


def _robust(x: np.ndarray) -> tuple[float, float]:
    """Median and robust standard deviation (1.4826 MAD; the plain one where MAD is 0)."""
    centre = float(np.median(x))
    noise = 1.4826 * float(np.median(np.abs(x - centre)))
    return centre, noise if noise > 0 else float(np.std(x))


def _peaks(curve: np.ndarray, k: int, z: float) -> list[tuple[int, float]]:
    """Peaks (frame, score in noise units) of the contrast ``C_t = F_t - (F_{t-k} + F_{t+k}) / 2``."""
    t = len(curve)
    idx = np.arange(t)
    contrast = curve - 0.5 * (curve[np.clip(idx - k, 0, t - 1)] + curve[np.clip(idx + k, 0, t - 1)])
    centre, noise = _robust(contrast)
    if noise <= 0:  # a constant sequence: nothing moves
        return []
    peaks, _ = find_peaks(contrast, height=centre + z * noise, distance=max(k, 1))
    return [(int(p), float((contrast[p] - centre) / noise)) for p in peaks]


def _interval(distance: np.ndarray, peak: int, k: int, frac: float, centre: float) -> tuple[int, int, int]:
    """Onset, apex, offset around a detected peak: the apex is the frame farthest from neutral within
    ``k`` of the peak, the edges where that distance falls below ``frac`` of its height."""
    t = len(distance)
    lo, hi = max(peak - k, 0), min(peak + k, t - 1)
    apex = lo + int(np.argmax(distance[lo: hi + 1]))
    level = centre + frac * (distance[apex] - centre)
    a = apex
    while a > 0 and distance[a - 1] >= level:
        a -= 1
    b = apex
    while b < t - 1 and distance[b + 1] >= level:
        b += 1
    return a, apex, b


def spot_events(frames: np.ndarray, *, fps: float, landmarks: np.ndarray | None = None, method: str = "feature",
                max_micro_s: float = 0.5, min_s: float = MIN_EVENT_S, **params: Any) -> list[SpottedEvent]:
    """Spot facial movements in a cropped face sequence; returns events in time order.

    Args:
        frames: ``T x H x W`` grey (uint8, or float on a 0..1 or 0..255 scale) or ``T x H x W x 3``
            uint8 RGB, the face cropped by the caller with a fixed or tracked box.
        fps: frame rate; window lengths are set in seconds and converted with it.
        landmarks: ``(68, 2)`` iBUG landmarks in crop coordinates (e.g. of the first frame): only the
            face hull without the eyes is scored, which suppresses blinks. Optional.
        method: ``"flow"`` (DIS flow magnitude) or ``"feature"`` (block-mean feature difference).
        max_micro_s: events lasting at most this many seconds are ``micro``, longer ones ``macro``.
        min_s: events shorter than this are dropped (a one-frame "event" is a step, e.g. the end of a
            blink, not a facial movement); default :data:`MIN_EVENT_S`.
        **params: override :data:`DEFAULTS` for the method: ``scale`` (downscale factor),
            ``k_s`` (half-window lengths in seconds, one per scale), ``z`` (threshold in robust noise
            units), ``frac`` (interval edge as a share of the peak), ``block`` (block size in px
            after downscaling), ``eye_dilate`` (px), ``baseline_s`` (half-length of the running
            median giving the neutral face, seconds).

    Raises:
        SpottingError: bad frames, landmarks, method or parameters, or a sequence shorter than one
            window (``2 k + 1`` frames at the shorter scale).
    """
    if method not in METHODS:
        raise SpottingError(f"spotting: unknown method {method!r}; choose from: {', '.join(METHODS)}")
    unknown = set(params) - set(DEFAULTS[method])
    if unknown:
        raise SpottingError(f"spotting: unknown parameter(s) {', '.join(sorted(unknown))} for method {method!r}; "
                            f"known: {', '.join(DEFAULTS[method])}")
    p = {**DEFAULTS[method], **params}
    if not fps > 0:
        raise SpottingError(f"spotting: fps must be positive, got {fps}")
    if not 0 < p["scale"] <= 1 or p["z"] <= 0 or not 0 < p["frac"] < 1 or int(p["block"]) < 1:
        raise SpottingError(f"spotting: parameters out of range: scale in (0, 1], z > 0, frac in (0, 1), "
                            f"block >= 1 (got {p})")
    ks = sorted({max(1, int(round(s * fps))) for s in p["k_s"]})
    grey = _grey_frames(frames)
    if len(grey) < 2 * ks[0] + 1:
        raise SpottingError(f"spotting: {len(grey)} frames is fewer than one window of {2 * ks[0] + 1} frames "
                            f"(2 x {p['k_s'][0]} s at {fps} fps, plus one)")
    h, w = grey.shape[1:]
    size = (max(int(round(w * p["scale"])), 8), max(int(round(h * p["scale"])), 8))
    if p["scale"] < 1:
        grey = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in grey])
    region = _region(grey.shape[1:], landmarks, p["scale"], int(p["eye_dilate"]))
    labels, counts = _blocks(region, int(p["block"]))
    flow = None
    if method == "flow":
        from ..preprocess.flow import get_flow_method

        flow = get_flow_method("dis", preset="ultrafast")
    feats = _block_features(grey, labels, counts)
    distance = _baseline_curve(feats, max(1, int(round(p["baseline_s"] * fps))))
    centre = float(np.median(distance))
    found: list[list[float]] = []  # [onset, apex, offset, score]
    for k in ks:
        if len(grey) < 2 * k + 1:
            continue
        curve = (_flow_curve(grey, region, labels, counts, k, flow) if method == "flow" else _feature_curve(feats, k))
        for peak, score in _peaks(curve, k, float(p["z"])):
            a, apex, b = _interval(distance, peak, k, float(p["frac"]), centre)
            found.append([a, apex, b, score])
    # peaks of one movement (a macro-expression fires at each phase) share one interval: merge
    merged: list[list[float]] = []
    for cand in sorted(found):
        if merged and cand[0] <= merged[-1][2] + 1:
            last = merged[-1]
            if distance[int(cand[1])] > distance[int(last[1])]:
                last[1] = cand[1]
            last[2], last[3] = max(last[2], cand[2]), max(last[3], cand[3])
        else:
            merged.append(list(cand))
    return [SpottedEvent(int(a), int(apex), int(b), float(score),
                         "micro" if (b - a + 1) / fps <= max_micro_s else "macro") for a, apex, b, score in merged
            if (b - a + 1) / fps >= min_s]


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of two inclusive frame intervals ``(onset, offset)``."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


def spotting_metrics(predicted: Sequence[tuple[int, int]], truth: Sequence[tuple[int, int]], *,
                     iou: float = 0.5) -> dict[str, float]:
    """MEGC spotting counts: a predicted interval is a true positive when its IoU with a not yet
    matched true interval is at least ``iou`` (inclusive frame intervals; each prediction, in the
    order given, takes the unmatched true interval it overlaps most).

    Returns ``{"tp", "fp", "fn", "precision", "recall", "f1"}`` (ratios are 0 where undefined).
    """
    for name, items in (("predicted", predicted), ("truth", truth)):
        for item in items:
            if len(item) != 2 or item[0] > item[1]:
                raise SpottingError(f"spotting_metrics: {name} interval {item!r} is not (onset, offset) with onset <= offset")
    matched: set[int] = set()
    tp = 0
    for pred in predicted:
        best, best_iou = -1, 0.0
        for j, true in enumerate(truth):
            if j in matched:
                continue
            v = interval_iou(tuple(pred), tuple(true))
            if v > best_iou:
                best, best_iou = j, v
        if best >= 0 and best_iou >= iou:
            matched.add(best)
            tp += 1
    fp, fn = len(predicted) - tp, len(truth) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}
