"""Eulerian video magnification (Wu et al. 2012) as STRCN uses it.

Follows ``amplify_spatial_lpyr_temporal_iir`` of the EVM code release, which STRCN's settings come
from (``r1 = 0.4``, ``r2 = 0.05``, ``lambda_c = 16``; the EVM "baby" example): every frame is split
into a Laplacian pyramid; each level is band-passed in time by the difference of two first-order IIR
low-passes, ``lp_r <- (1 - r) lp_r + r x`` (``r1`` the higher cut, ``r2`` the lower; both start at
the first frame, so frame 0 is returned unchanged); level ``l`` is amplified by
``alpha_l = min(alpha, lambda_l / (8 delta) - 1)`` with ``delta = lambda_c / (8 (1 + alpha))`` and
``lambda_l`` the level's representative wavelength (``sqrt(H^2 + W^2) / 3`` for the coarsest level,
halved at each finer level); the coarsest (low-pass residual) and finest levels are not amplified.
Colour frames are amplified in YIQ with the chroma channels' amplification scaled by
``chroma_attenuation``. EVM's extra "exaggeration factor" of 2 (for display) is not applied.
See docs/preprocessing.md for how this reads STRCN's formula.

Pyramids use OpenCV's 5-tap ``pyrDown``/``pyrUp``; the filter and the per-level gains are the
EVM method itself, which no maintained library provides.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .crop import PreprocessError, as_clip

__all__ = ["MagnifyError", "auto_levels", "iir_bandpass", "level_alphas", "magnify_clip"]

_RGB2YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


class MagnifyError(PreprocessError):
    """Parameters or frames that magnification cannot use."""


def auto_levels(height: int, width: int, filter_size: int = 5) -> int:
    """Pyramid height of matlabPyrTools' ``buildLpyr(..., 'auto')``: halve while both sides >= 5."""
    levels, h, w = 1, height, width
    while h >= filter_size and w >= filter_size:
        levels, h, w = levels + 1, h // 2, w // 2
    return levels


def level_alphas(shape: Sequence[int], n_levels: int, *, alpha: float, lambda_c: float) -> list[float]:
    """Amplification of each pyramid level, finest first (the last entry is the low-pass residual)."""
    delta = lambda_c / 8.0 / (1.0 + alpha)
    lam = math.hypot(shape[0], shape[1]) / 3.0
    out = [0.0] * n_levels
    for level in range(n_levels - 1, -1, -1):  # coarsest to finest
        if 0 < level < n_levels - 1:
            out[level] = float(np.clip(lam / delta / 8.0 - 1.0, 0.0, alpha))
        lam /= 2.0
    return out


def iir_bandpass(signal: np.ndarray, r1: float = 0.4, r2: float = 0.05) -> np.ndarray:
    """The temporal band-pass of :func:`magnify_clip` applied along axis 0 of ``signal``."""
    x = np.asarray(signal, dtype=np.float64)
    lp1, lp2 = x[0].copy(), x[0].copy()
    out = np.zeros_like(x)
    for t in range(1, len(x)):
        lp1 = (1 - r1) * lp1 + r1 * x[t]
        lp2 = (1 - r2) * lp2 + r2 * x[t]
        out[t] = lp1 - lp2
    return out


def _lpyr(image: np.ndarray, n_levels: int) -> list[np.ndarray]:
    gauss = [image]
    for _ in range(n_levels - 1):
        gauss.append(cv2.pyrDown(gauss[-1]))
    bands = [g - cv2.pyrUp(gn, dstsize=(g.shape[1], g.shape[0])) for g, gn in zip(gauss[:-1], gauss[1:])]
    return bands + [gauss[-1]]


def _collapse(pyr: list[np.ndarray]) -> np.ndarray:
    out = pyr[-1]
    for band in reversed(pyr[:-1]):
        out = band + cv2.pyrUp(out, dstsize=(band.shape[1], band.shape[0]))
    return out


def magnify_clip(
    frames: Sequence[np.ndarray] | np.ndarray,
    alpha: float = 8.0,
    r1: float = 0.4,
    r2: float = 0.05,
    lambda_c: float = 16.0,
    levels: int | None = None,
    chroma_attenuation: float = 0.1,
) -> np.ndarray:
    """Motion-magnify a clip; returns an array of the clip's shape and dtype.

    Args:
        frames: ``(T, H, W)`` grey or ``(T, H, W, 3)`` RGB frames, uint8 or float in ``[0, 1]``.
        alpha: amplification bound (STRCN: 8 at test time, 5..14 for augmentation).
        r1, r2: IIR low-pass coefficients per frame (``0 < r2 < r1 <= 1``).
        lambda_c: cut-off spatial wavelength in pixels.
        levels: pyramid levels including the residual; ``None`` = as many as fit (:func:`auto_levels`).
        chroma_attenuation: scale of the amplification of the I and Q channels (colour only).

    The result is clipped to the input's range (``[0, 255]`` or ``[0, 1]``).
    """
    clip = as_clip(frames)
    if not (alpha >= 0 and lambda_c > 0 and 0 < r2 < r1 <= 1):
        raise MagnifyError(f"magnify: need alpha >= 0, lambda_c > 0 and 0 < r2 < r1 <= 1, got alpha={alpha}, lambda_c={lambda_c}, r1={r1}, r2={r2}")
    colour = clip.ndim == 4
    if colour and clip.shape[-1] != 3:
        raise MagnifyError(f"magnify: expected grey or 3-channel RGB frames, got {clip.shape[-1]} channels")
    if clip.dtype == np.uint8:
        x = clip.astype(np.float32) / 255.0
    elif np.issubdtype(clip.dtype, np.floating):
        lo, hi = float(clip.min()), float(clip.max())
        if lo < 0.0 or hi > 1.0:
            raise MagnifyError(f"magnify: float frames must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
        x = clip.astype(np.float32)
    else:
        raise MagnifyError(f"magnify: frames must be uint8 or float, got {clip.dtype}")
    h, w = clip.shape[1:3]
    most = auto_levels(h, w)
    if most < 2:
        raise MagnifyError(f"magnify: {h}x{w} frames are too small for a pyramid (need at least 5x5)")
    n_levels = most if levels is None else int(levels)
    if not 2 <= n_levels <= most:
        raise MagnifyError(f"magnify: levels must be between 2 and {most} for {h}x{w} frames, got {levels}")
    gains = level_alphas((h, w), n_levels, alpha=alpha, lambda_c=lambda_c)
    if colour:
        x = x @ _RGB2YIQ.T.astype(np.float32)
        chroma = np.array([1.0, chroma_attenuation, chroma_attenuation], dtype=np.float32)

    out = np.empty_like(x)
    out[0] = x[0]
    lp1 = _lpyr(x[0], n_levels)
    lp2 = [band.copy() for band in lp1]
    for t in range(1, len(x)):
        pyr = _lpyr(x[t], n_levels)
        amplified = []
        for k, band in enumerate(pyr):
            lp1[k] = (1 - r1) * lp1[k] + r1 * band
            lp2[k] = (1 - r2) * lp2[k] + r2 * band
            amplified.append(gains[k] * (lp1[k] - lp2[k]))
        detail = _collapse(amplified)
        out[t] = x[t] + (detail * chroma if colour else detail)
    if colour:
        out = out @ _YIQ2RGB.T.astype(np.float32)
    out = np.clip(out, 0.0, 1.0)
    if clip.dtype == np.uint8:
        return np.rint(out * 255.0).astype(np.uint8)
    return out.astype(clip.dtype)
