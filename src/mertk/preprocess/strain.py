"""Optical strain magnitude of a flow field, as in LAENet (Lien 2020, eqs. 4-6) and STSTNet.

The infinitesimal strain tensor of the displacement ``(u, v)`` is
``eps = 1/2 [grad(u, v) + grad(u, v)^T]`` with components

    eps_xx = du/dx,   eps_yy = dv/dy,   eps_xy = eps_yx = 1/2 (du/dy + dv/dx)

and LAENet's eq. 6 gives the magnitude per pixel as

    |eps| = sqrt( (du/dx)^2 + (dv/dy)^2 + 1/2 (du/dy + dv/dx)^2 )

which equals ``sqrt(eps_xx^2 + eps_yy^2 + eps_xy^2 + eps_yx^2)``, the Frobenius norm of the tensor.
(The printed eq. 6 writes ``du^2/dx``; the squared partial derivative is meant, as the preceding
sentence "square root of the sum of squares of the strain components" states.)
Derivatives are central differences (``np.gradient``; one-sided at the borders), in pixel units.
"""

from __future__ import annotations

import numpy as np

from .flow.base import FlowError


def _check_flow(flow: np.ndarray) -> np.ndarray:
    f = np.asarray(flow)
    if f.ndim != 3 or f.shape[2] != 2 or f.shape[0] < 2 or f.shape[1] < 2:
        raise FlowError(f"optical strain: expected an HxWx2 flow (H, W >= 2), got shape {f.shape}")
    if not np.isfinite(f).all():
        raise FlowError("optical strain: flow contains NaN or inf values")
    return f.astype(np.float64, copy=False)


def _components(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = _check_flow(flow)
    du_dy, du_dx = np.gradient(f[..., 0])
    dv_dy, dv_dx = np.gradient(f[..., 1])
    return du_dx, dv_dy, 0.5 * (du_dy + dv_dx)


def strain_components(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(eps_xx, eps_yy, eps_xy)`` of an ``H x W x 2`` flow, each float32 ``H x W`` (see module docstring)."""
    return tuple(c.astype(np.float32) for c in _components(flow))  # type: ignore[return-value]


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude (LAENet eq. 6) of an ``H x W x 2`` flow, float32 ``H x W``.

    ``sqrt((du/dx)^2 + (dv/dy)^2 + 1/2 (du/dy + dv/dx)^2)`` with central differences.

    Raises:
        FlowError: the flow is not ``H x W x 2`` or is not finite.
    """
    exx, eyy, exy = _components(flow)
    return np.sqrt(exx**2 + eyy**2 + 2.0 * exy**2).astype(np.float32)
