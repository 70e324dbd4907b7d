"""Temporal normalisation: resample a clip to ``n`` frames by TIM or by linear interpolation.

TIM (Zhou, Zhao & Pietikainen 2011) treats the ``T`` frames as the nodes of a path graph. The
eigenvectors of the path graph's Laplacian (all but the constant one) have the closed form
``y_k(i) = cos(pi k (i - 1/2) / T)``, ``k = 1 .. T-1``, ``i = 1 .. T`` (the paper's
``sin(pi k t + pi (T - k) / (2T))`` with ``t = i / T``), and read as functions of a continuous ``i``
they trace a curve through the embedded frames. The mean-free frames are mapped linearly onto this
embedding (exactly, since ``T`` mean-free frames span at most ``T - 1`` dimensions) and new frames
are read off the curve at ``n`` evenly spaced positions from ``i = 1`` to ``i = T``, so the first and
last frames are kept and ``n = T`` reproduces the clip. The reference MATLAB code first projects the
frames on their ``T - 1`` principal components; keeping all of them, as it does, gives exactly the
same frames, so the projection is skipped (see docs/preprocessing.md).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .crop import PreprocessError, as_clip

__all__ = ["TemporalError", "interpolate_linear", "tim", "TEMPORAL"]


class TemporalError(PreprocessError):
    """A clip or target length that temporal normalisation cannot use."""


def _prepare(frames: Sequence[np.ndarray] | np.ndarray, n: int, name: str) -> np.ndarray:
    clip = as_clip(frames, min_frames=2, what=f"{name} clip")
    if int(n) != n or n < 1:
        raise TemporalError(f"{name}: target length must be a positive integer, got {n!r}")
    return clip


def _cast(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    if np.issubdtype(like.dtype, np.integer):
        info = np.iinfo(like.dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(like.dtype)
    return values.astype(like.dtype)


def interpolate_linear(frames: Sequence[np.ndarray] | np.ndarray, n: int) -> np.ndarray:
    """Resample to ``n`` frames by linear interpolation at ``n`` even positions over ``[0, T-1]``."""
    clip = _prepare(frames, n, "linear interpolation")
    pos = np.linspace(0.0, len(clip) - 1, int(n))
    lo = np.minimum(np.floor(pos).astype(int), len(clip) - 2)
    frac = (pos - lo).reshape((-1,) + (1,) * (clip.ndim - 1))
    x = clip.astype(np.float64)
    return _cast((1 - frac) * x[lo] + frac * x[lo + 1], clip)


def _tim_basis(positions: np.ndarray, t: int) -> np.ndarray:
    k = np.arange(1, t)
    return np.cos(np.pi * np.outer(positions - 0.5, k) / t)  # (len(positions), T-1)


def tim(frames: Sequence[np.ndarray] | np.ndarray, n: int) -> np.ndarray:
    """Temporal interpolation model: resample a clip of ``T >= 2`` frames to ``n`` frames."""
    clip = _prepare(frames, n, "TIM")
    t = len(clip)
    x = clip.reshape(t, -1).astype(np.float64)
    mean = x.mean(axis=0)
    basis = _tim_basis(np.arange(1, t + 1, dtype=np.float64), t)  # orthogonal columns, each orthogonal to 1
    weights = (basis.T @ (x - mean)) / (basis**2).sum(axis=0)[:, None]
    new = _tim_basis(np.linspace(1.0, t, int(n)), t) @ weights + mean
    return _cast(new.reshape((int(n),) + clip.shape[1:]), clip)


TEMPORAL = {"tim": tim, "linear": interpolate_linear}
