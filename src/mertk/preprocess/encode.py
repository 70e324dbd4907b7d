"""Flow encodings used by the papers' models, and resizing a flow to a model's input size.

- :func:`hsi_image`: SHCNN (Miao et al. 2019): hue = flow angle, saturation = full, intensity =
  magnitude, converted to RGB with the HSI sector formulas (Gonzalez & Woods), not HSV.
- :func:`uvs_image`: STSTNet / LAENet (Lien 2020): the channels ``[u, v, optical strain]``.
- :func:`hsi_clip`: SHCNN's HSI images of every flow of a clip, normalised by the clip's peak
  magnitude (or each by its own).
- :func:`shallow_channels`: Belaiche et al. 2020: ``Vx``, ``Vy``, magnitude ``M``, or the pair ``Vx-Vy``.

Sizes are ``(height, width)``. Downscaling uses ``cv2.INTER_AREA`` (an average over each output
cell, which keeps small motions from aliasing away), upscaling ``cv2.INTER_LINEAR``. Every resize
of a flow goes through :func:`resize_flow`, which scales ``u`` by the width ratio and ``v`` by the
height ratio, so vectors are in output pixels whatever the source resolution (a SAMM and a CASME II
flow of the same facial motion get the same magnitudes). Magnitudes are computed after resizing,
from the rescaled flow; optical strain is a ratio of displacements to distances and is computed at
the flow's own resolution.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from ..errors import PreprocessError
from .strain import optical_strain

ShallowKind = Literal["vx", "vy", "mag", "vxvy"]


class EncodeError(PreprocessError):
    """A flow or image given to an encoder has the wrong shape or values, or an option is unknown."""


def _check_flow(flow: np.ndarray, what: str) -> np.ndarray:
    f = np.asarray(flow)
    if f.ndim != 3 or f.shape[2] != 2:
        raise EncodeError(f"{what}: expected an HxWx2 flow, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise EncodeError(f"{what}: flow contains NaN or inf values")
    return f.astype(np.float32, copy=False)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if h < 1 or w < 1:
        raise EncodeError(f"resize: bad target size {size} (height, width)")
    if image.shape[:2] == (h, w):
        return image
    shrink = h <= image.shape[0] and w <= image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``H x W x 2`` flow to ``size = (height, width)`` (INTER_AREA down, INTER_LINEAR up).

    ``u`` is multiplied by the width ratio and ``v`` by the height ratio, so the vectors are in
    output pixels: a constant (2, 1) flow at 80x100 becomes (1, 0.5) at 40x50.
    """
    f = _check_flow(flow, "resize_flow")
    out = _resize(f, size)
    if out.shape[:2] != f.shape[:2]:
        out = out * np.float32([size[1] / f.shape[1], size[0] / f.shape[0]])
    return np.ascontiguousarray(out, dtype=np.float32)


def hsi_to_rgb(hue: np.ndarray, saturation: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """HSI to RGB with the sector formulas (Gonzalez & Woods, Digital Image Processing, 6.2.3).

    ``hue`` in degrees (any real, taken mod 360), ``saturation`` and ``intensity`` in 0..1.
    Returns float32 ``... x 3`` RGB clipped to 0..1 (fully saturated colours leave the RGB cube when
    ``intensity > 1/3``: the dominant channel is up to ``3 * intensity``).
    """
    h = np.mod(np.asarray(hue, dtype=np.float64), 360.0)
    s = np.broadcast_to(np.asarray(saturation, dtype=np.float64), h.shape)
    i = np.broadcast_to(np.asarray(intensity, dtype=np.float64), h.shape)
    sector = np.minimum((h // 120).astype(np.int64), 2)
    hh = np.deg2rad(h - 120.0 * sector)
    low = i * (1.0 - s)  # the channel that is weakest in this sector
    high = i * (1.0 + s * np.cos(hh) / np.cos(np.deg2rad(60.0) - hh))
    mid = 3.0 * i - (low + high)
    # sector 0 (R-G): (R, G, B) = (high, mid, low); sector 1 (G-B): (low, high, mid); sector 2 (B-R): (mid, low, high)
    r = np.choose(sector, [high, low, mid])
    g = np.choose(sector, [mid, high, low])
    b = np.choose(sector, [low, mid, high])
    return np.clip(np.stack((r, g, b), axis=-1), 0.0, 1.0).astype(np.float32)


def rgb_to_hsi(rgb: np.ndarray) -> np.ndarray:
    """RGB (``uint8`` 0..255 or float 0..1, ``... x 3``) to HSI as float32 ``... x 3``.

    Hue in degrees in [0, 360) (0 for greys), saturation and intensity in 0..1 (Gonzalez & Woods).
    """
    a = np.asarray(rgb)
    if a.shape[-1] != 3:
        raise EncodeError(f"rgb_to_hsi: expected ... x 3 RGB, got shape {a.shape}")
    x = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    total = r + g + b
    intensity = total / 3.0
    with np.errstate(invalid="ignore", divide="ignore"):
        saturation = np.where(total > 0, 1.0 - 3.0 * np.minimum(np.minimum(r, g), b) / total, 0.0)
        num = 0.5 * ((r - g) + (r - b))
        den = np.sqrt((r - g) ** 2 + (r - b) * (g - b))
        theta = np.degrees(np.arccos(np.clip(np.where(den > 0, num / den, 1.0), -1.0, 1.0)))
    hue = np.where(b <= g, theta, 360.0 - theta) % 360.0
    return np.stack((hue, saturation, intensity), axis=-1).astype(np.float32)


def hsi_image(
    flow: np.ndarray,
    *,
    max_magnitude: float | None = None,
    gamut: Literal["fit", "clip"] = "fit",
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """SHCNN's HSI encoding of a flow as a ``uint8 H x W x 3`` RGB image.

    Hue is the flow angle ``atan2(v, u)`` in image coordinates (x right, y down): rightward motion is
    hue 0 (red), downward 90, leftward 180 (cyan), upward 270. Saturation is 1 (the paper's 255).
    Intensity is the magnitude normalised by ``max_magnitude`` (default: this flow's largest
    magnitude, so each image uses the full range; a zero flow gives a black image) and clipped at 1:

    - ``gamut="fit"`` (default): intensity = normalised magnitude / 3, the largest intensity at
      which every fully saturated hue stays inside the RGB cube, so nothing is clipped and
      :func:`rgb_to_hsi` recovers angle and magnitude.
    - ``gamut="clip"``: intensity = normalised magnitude, RGB clipped to the cube (brighter images;
      hue and intensity are distorted where channels clip).

    ``size`` (height, width) resizes the flow first, as SHCNN does (112x112), with :func:`resize_flow`.
    """
    f = _check_flow(flow, "hsi_image")
    if size is not None:
        f = resize_flow(f, size)
    if gamut not in ("fit", "clip"):
        raise EncodeError(f"hsi_image: unknown gamut {gamut!r}; choose from: fit, clip")
    mag = np.hypot(f[..., 0], f[..., 1]).astype(np.float64)
    peak = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    if not np.isfinite(peak) or peak < 0:
        raise EncodeError(f"hsi_image: max_magnitude must be finite and >= 0, got {max_magnitude}")
    norm = np.clip(mag / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(mag)
    intensity = norm / 3.0 if gamut == "fit" else norm
    hue = np.degrees(np.arctan2(f[..., 1], f[..., 0]))
    rgb = hsi_to_rgb(hue, 1.0, intensity)
    return np.rint(rgb * 255.0).astype(np.uint8)


HSI_NORMALISATIONS = ("clip", "frame")


def hsi_clip(
    flows: np.ndarray,
    size: tuple[int, int] | None = None,
    *,
    normalise: Literal["clip", "frame"] = "clip",
) -> np.ndarray:
    """SHCNN's HSI images of a clip's flows (first frame -> every later frame), ``uint8 T x 3 x H x W``.

    Each flow is resized to ``size`` (:func:`resize_flow`) and encoded by :func:`hsi_image`. The
    intensity is the magnitude divided by the largest magnitude of

    - ``"clip"`` (default): all the clip's flows, so a near-onset frame that holds only noise stays
      dim beside the apex frame (relative magnitudes within the clip are kept; the scale uses no
      other clip, so nothing leaks across folds);
    - ``"frame"``: that flow alone, so every image uses the full range (earlier mertk behaviour).

    The paper (section III-C) says intensity represents the magnitude, and does not say how it is scaled.
    """
    if normalise not in HSI_NORMALISATIONS:
        raise EncodeError(f"hsi_clip: unknown normalise {normalise!r}; choose from: {', '.join(HSI_NORMALISATIONS)}")
    small = [resize_flow(f, size) if size is not None else _check_flow(f, "hsi_clip") for f in flows]
    if not small:
        raise EncodeError("hsi_clip: no flows given")
    peak = max(float(np.hypot(f[..., 0], f[..., 1]).max()) for f in small) if normalise == "clip" else None
    return np.stack([hsi_image(f, max_magnitude=peak).transpose(2, 0, 1) for f in small])


def uvs_image(
    flow: np.ndarray,
    strain: np.ndarray | None = None,
    *,
    normalise: Literal["minmax", "fixed", "none"] = "minmax",
    scale: float = 1.0,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The ``[u, v, optical strain]`` map of STSTNet / LAENet as float32 ``H x W x 3``.

    ``strain`` defaults to :func:`mertk.preprocess.strain.optical_strain` of ``flow``, computed at the
    flow's own resolution. Flow and strain are then resized to ``size`` (LAENet: 28x28; the flow with
    :func:`resize_flow`, the dimensionless strain as an image) and normalised per channel:

    - ``"minmax"`` (default): each channel mapped to 0..1 by its own min and max (a constant
      channel becomes 0). The LAENet paper does not state a normalisation (its Figure 5 shows the
      three channels as a colour image); the STSTNet paper is not among our references, so this
      choice is ours, made because it puts every clip's map on the same 0..1 range.
    - ``"fixed"``: every channel divided by ``scale`` (same scale for all clips, signs kept), so
      magnitudes stay comparable across clips.
    - ``"none"``: raw values (pixels, and dimensionless strain).
    """
    f = _check_flow(flow, "uvs_image")
    s = optical_strain(f) if strain is None else np.asarray(strain, dtype=np.float32)
    if s.shape != f.shape[:2]:
        raise EncodeError(f"uvs_image: strain has shape {s.shape} but the flow is {f.shape[:2]}")
    if not np.isfinite(s).all():
        raise EncodeError("uvs_image: strain contains NaN or inf values")
    if size is not None:
        f, s = resize_flow(f, size), _resize(s, size)
    out = np.dstack((f, s)).astype(np.float32)
    if normalise == "minmax":
        lo = out.min(axis=(0, 1))
        span = out.max(axis=(0, 1)) - lo
        out = np.where(span > 0, (out - lo) / np.where(span > 0, span, 1.0), 0.0)
    elif normalise == "fixed":
        if not scale > 0:
            raise EncodeError(f"uvs_image: scale must be > 0, got {scale}")
        out = out / scale
    elif normalise != "none":
        raise EncodeError(f"uvs_image: unknown normalise {normalise!r}; choose from: minmax, fixed, none")
    return np.ascontiguousarray(out, dtype=np.float32)


def shallow_channels(
    flow: np.ndarray,
    kind: ShallowKind,
    *,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Belaiche et al.'s flow inputs as float32 ``C x H x W``: ``vx``, ``vy``, ``mag`` (C = 1) or ``vxvy`` (C = 2).

    Values are displacements in pixels (magnitude ``sqrt(u^2 + v^2)``); ``size`` resizes the flow
    first with :func:`resize_flow`, so they are in output pixels.
    """
    f = _check_flow(flow, "shallow_channels")
    if size is not None:
        f = resize_flow(f, size)
    u, v = f[..., 0], f[..., 1]
    if kind == "vx":
        chans = [u]
    elif kind == "vy":
        chans = [v]
    elif kind == "mag":
        chans = [np.hypot(u, v)]
    elif kind == "vxvy":
        chans = [u, v]
    else:
        raise EncodeError(f"shallow_channels: unknown kind {kind!r}; choose from: vx, vy, mag, vxvy")
    return np.ascontiguousarray(np.stack(chans), dtype=np.float32)
