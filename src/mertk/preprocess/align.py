"""Face alignment to a reference shape: local weighted mean (LWM) and similarity transforms.

LWM (Goshtasby 1988; the ``lwm`` of MATLAB's ``cp2tform`` that Pfister et al. and STRCN use): for
every control point a second-degree polynomial is fitted by least squares to the point and its
``n - 1`` nearest neighbours; the mapping at ``p`` is the mean of these polynomials weighted by
``W(|p - p_i| / R_i)``, ``W(r) = 1 - 3r^2 + 2r^3`` on ``[0, 1]`` and 0 beyond, with ``R_i`` the
distance from ``p_i`` to its ``(n - 1)``-th nearest control point. Written here because no
maintained Python library implements it. Far from every control point no polynomial has weight;
there the mapping falls back smoothly on the least-squares similarity of all points (it carries a
small constant weight, see docs/preprocessing.md), so a warped face has no holes.

Warps resample by backward mapping with ``cv2.remap`` (bilinear, border replicated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import cv2
import numpy as np
from scipy.spatial import cKDTree
from skimage.transform import SimilarityTransform

from .crop import PreprocessError, as_clip

__all__ = [
    "AlignError",
    "LWMTransform",
    "align_clip",
    "lwm_transform",
    "similarity_transform",
    "warp_lwm",
    "warp_similarity",
]

FALLBACK_WEIGHT = 1e-3  # weight of the global similarity inside the LWM mean


class AlignError(PreprocessError):
    """Landmarks that cannot define an alignment (wrong shape, too few, coincident points)."""


def _points(pts: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(pts, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise AlignError(f"{what}: expected an (N, 2) array of (x, y) points, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise AlignError(f"{what}: contain NaN or infinite coordinates")
    return arr


def _pair(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, d = _points(src, "source landmarks"), _points(dst, "destination landmarks")
    if s.shape != d.shape:
        raise AlignError(f"source and destination landmarks differ in shape: {s.shape} vs {d.shape}")
    return s, d


def _quad(xy: np.ndarray) -> np.ndarray:
    x, y = xy[..., 0], xy[..., 1]
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping ``src`` points onto ``dst``: a 2x3 matrix."""
    s, d = _pair(src, dst)
    if len(s) < 2:
        raise AlignError(f"a similarity transform needs at least 2 point pairs, got {len(s)}")
    tf = SimilarityTransform.from_estimate(s, d)
    if not tf:
        raise AlignError("similarity transform could not be estimated (coincident landmarks?)")
    return np.asarray(tf.params[:2], dtype=np.float64)


@dataclass(frozen=True)
class LWMTransform:
    """A fitted local-weighted-mean mapping from the ``src`` plane to the ``dst`` plane.

    Call it on ``(N, 2)`` points; :meth:`dense` gives ``cv2.remap`` maps over an image grid.
    """

    centres: np.ndarray  # (K, 2) control points in the src plane
    radii: np.ndarray  # (K,) support radius R_i of each local polynomial
    coeffs: np.ndarray  # (K, 6, 2) quadratic coefficients in coordinates relative to each centre
    fallback: np.ndarray  # (2, 3) global similarity src -> dst

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = _points(points, "points")
        out = np.empty_like(p)
        for start in range(0, len(p), 16384):  # bounded memory for dense grids
            out[start : start + 16384] = self._map(p[start : start + 16384])
        return out

    def _map(self, p: np.ndarray) -> np.ndarray:
        rel = p[:, None, :] - self.centres[None, :, :]  # (N, K, 2)
        r = np.sqrt((rel**2).sum(-1)) / self.radii  # (N, K)
        w = np.where(r < 1.0, 1.0 - 3.0 * r**2 + 2.0 * r**3, 0.0)
        local = np.einsum("nkc,kcd->nkd", _quad(rel), self.coeffs)  # (N, K, 2)
        glob = p @ self.fallback[:, :2].T + self.fallback[:, 2]
        num = (w[..., None] * local).sum(1) + FALLBACK_WEIGHT * glob
        return num / (w.sum(1) + FALLBACK_WEIGHT)[:, None]

    def dense(self, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(map_x, map_y)`` float32 ``(H, W)`` arrays: the image of every pixel centre of a grid.

        Same values as calling the transform on every pixel, computed one support disc at a time.
        """
        h, w = int(shape[0]), int(shape[1])
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        num = FALLBACK_WEIGHT * (np.stack([xs, ys], -1) @ self.fallback[:, :2].T + self.fallback[:, 2])
        den = np.full((h, w), FALLBACK_WEIGHT)
        for (cx, cy), radius, coeff in zip(self.centres, self.radii, self.coeffs):
            y0, y1 = max(int(np.ceil(cy - radius)), 0), min(int(np.floor(cy + radius)) + 1, h)
            x0, x1 = max(int(np.ceil(cx - radius)), 0), min(int(np.floor(cx + radius)) + 1, w)
            if y0 >= y1 or x0 >= x1:
                continue
            rel = np.stack([xs[y0:y1, x0:x1] - cx, ys[y0:y1, x0:x1] - cy], -1)
            r = np.sqrt((rel**2).sum(-1)) / radius
            wgt = np.where(r < 1.0, 1.0 - 3.0 * r**2 + 2.0 * r**3, 0.0)
            num[y0:y1, x0:x1] += wgt[..., None] * (_quad(rel) @ coeff)
            den[y0:y1, x0:x1] += wgt
        mapped = num / den[..., None]
        return mapped[..., 0].astype(np.float32), mapped[..., 1].astype(np.float32)


def lwm_transform(src_landmarks: np.ndarray, dst_landmarks: np.ndarray, *, n_neighbours: int = 12) -> LWMTransform:
    """Fit the LWM mapping that sends each ``src_landmarks[i]`` to (about) ``dst_landmarks[i]``.

    ``n_neighbours`` is Goshtasby's ``n`` (each local quadratic uses the point and its ``n - 1``
    nearest neighbours; 12 is MATLAB's default). At least 6 points are needed for a quadratic.
    """
    s, d = _pair(src_landmarks, dst_landmarks)
    n = int(n_neighbours)
    if n < 6 or n > len(s):
        raise AlignError(f"LWM: n_neighbours must be between 6 and the number of landmarks ({len(s)}), got {n}")
    dist, idx = cKDTree(s).query(s, k=n)
    radii = dist[:, -1]
    if (radii <= 0).any():
        raise AlignError(f"LWM: landmark {int(np.argmin(radii))} and its neighbours coincide; cannot fit local polynomials")
    coeffs = np.empty((len(s), 6, 2))
    for i, nb in enumerate(idx):
        design = _quad(s[nb] - s[i])
        coeffs[i] = np.linalg.lstsq(design, d[nb], rcond=None)[0]
    return LWMTransform(s, radii, coeffs, similarity_transform(s, d))


def _remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_lwm(image: np.ndarray, src: np.ndarray, dst: np.ndarray, *, n_neighbours: int = 12) -> np.ndarray:
    """Warp ``image`` (whose landmarks are ``src``) so that its landmarks land on ``dst``; same shape."""
    backward = lwm_transform(dst, src, n_neighbours=n_neighbours)
    return _remap(image, *backward.dense(image.shape[:2]))


def warp_similarity(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Warp ``image`` by the similarity that best maps ``src`` landmarks onto ``dst``; same shape."""
    m = similarity_transform(src, dst)
    h, w = image.shape[:2]
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_clip(
    frames: Sequence[np.ndarray] | np.ndarray,
    landmarks: np.ndarray,
    *,
    method: Literal["lwm", "similarity"] = "lwm",
    reference: np.ndarray | None = None,
    n_neighbours: int = 12,
) -> np.ndarray:
    """Align every frame of a clip; returns an array of the clip's shape and dtype.

    ``landmarks`` is either ``(T, N, 2)`` (one set per frame: frame ``t`` is warped so its landmarks
    land on ``reference``, by default the first frame's, so frame 0 is unchanged) or ``(N, 2)``
    (the first frame's only: the single transform taking them onto ``reference`` is applied to every
    frame, as Pfister et al. do; ``reference``, e.g. a model face, is then required).
    """
    clip = as_clip(frames)
    pts = np.asarray(landmarks, dtype=np.float64)
    if method not in ("lwm", "similarity"):
        raise AlignError(f"unknown alignment {method!r}; choose from: lwm, similarity")
    if pts.ndim == 2:
        if reference is None:
            raise AlignError("align_clip: first-frame landmarks alone need a reference shape to align to")
        if method == "lwm":
            maps = lwm_transform(reference, pts, n_neighbours=n_neighbours).dense(clip.shape[1:3])
            return np.stack([_remap(f, *maps) for f in clip])
        return np.stack([warp_similarity(f, pts, reference) for f in clip])
    if pts.ndim != 3 or len(pts) != len(clip):
        raise AlignError(
            f"align_clip: expected ({len(clip)}, N, 2) per-frame landmarks or (N, 2) first-frame landmarks, got shape {pts.shape}"
        )
    ref = pts[0] if reference is None else reference
    warp = warp_similarity if method == "similarity" else (lambda f, s, d: warp_lwm(f, s, d, n_neighbours=n_neighbours))
    return np.stack([warp(f, p, ref) for f, p in zip(clip, pts)])
