"""Horn-Schunck optical flow (Horn and Schunck 1981), as used by Belaiche et al. (2020).

Written by hand because neither OpenCV 5 nor scikit-image ships Horn-Schunck. The iteration is the
classic one (Belaiche et al. eqs. 3-4)::

    u <- u_avg - Ix (Ix u_avg + Iy v_avg + It) / (alpha^2 + Ix^2 + Iy^2)

with Horn and Schunck's derivative estimates (first differences averaged over the 2x2x2 cube of the
two frames) and their weighted neighbourhood average (1/6 for edge neighbours, 1/12 for corners).
With ``n_scales > 1`` the same iteration runs coarse-to-fine, warping the second frame by the
current flow and linearising around it (``It`` becomes the residual of the warped frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from ...registry import FLOWS
from .base import FlowError, FlowMethod

_AVG = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]], dtype=np.float32) / 12.0
_DX = np.array([[-1, 1], [-1, 1]], dtype=np.float32) / 4.0
_DY = np.array([[-1, -1], [1, 1]], dtype=np.float32) / 4.0


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # anchor (0, 0) makes 2x2 kernels forward differences, as in Horn and Schunck's cube estimates
    anchor = (0, 0) if kernel.shape == (2, 2) else (-1, -1)
    return cv2.filter2D(image, cv2.CV_32F, kernel, anchor=anchor, borderType=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class HornSchunck(FlowMethod):
    """Classic Horn-Schunck flow, optionally coarse-to-fine with warping.

    Parameters:
        alpha: smoothness weight on 0..255 intensities (the energy weighs ``alpha^2``). Default 15.
        iterations: iterations per warp. Default 100.
        n_scales: pyramid levels; 1 is the classic single-scale method. Default 1.
        warps: warps per scale when ``n_scales > 1`` (ignored otherwise). Default 2.
        presmooth_sigma: Gaussian blur of both frames before differentiation, in pixels;
            0 is the classic method. Default 1.0.
    """

    name: ClassVar[str] = "horn_schunck"
    alpha: float = 15.0
    iterations: int = 100
    n_scales: int = 1
    warps: int = 2
    presmooth_sigma: float = 1.0

    def __post_init__(self) -> None:
        if self.alpha <= 0 or self.iterations < 1 or self.n_scales < 1 or self.warps < 1:
            raise FlowError(
                f"flow 'horn_schunck': bad parameters alpha={self.alpha}, iterations={self.iterations}, "
                f"n_scales={self.n_scales}, warps={self.warps} (need alpha > 0, the others >= 1)"
            )

    def _flow(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        if self.presmooth_sigma > 0:
            prev = cv2.GaussianBlur(prev, (0, 0), self.presmooth_sigma)
            next = cv2.GaussianBlur(next, (0, 0), self.presmooth_sigma)
        levels = [(prev, next)]
        for _ in range(1, self.n_scales):
            a, b = levels[-1]
            if min(a.shape) < 32:
                break
            levels.append((cv2.pyrDown(a), cv2.pyrDown(b)))
        h, w = levels[-1][0].shape
        flow = np.zeros((h, w, 2), np.float32)
        warps = self.warps if len(levels) > 1 else 1
        for a, b in reversed(levels):
            h, w = a.shape
            if flow.shape[:2] != (h, w):
                sx, sy = w / flow.shape[1], h / flow.shape[0]
                flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32([sx, sy])
            for _ in range(warps):
                flow = self._iterate(a, b, flow)
        return flow

    def _iterate(self, i0: np.ndarray, i1: np.ndarray, flow: np.ndarray) -> np.ndarray:
        h, w = i0.shape
        u0, v0 = flow[..., 0], flow[..., 1]
        if np.any(flow):
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            i1 = cv2.remap(i1, xs + u0, ys + v0, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        ix = _filter(i0, _DX) + _filter(i1, _DX)
        iy = _filter(i0, _DY) + _filter(i1, _DY)
        it = _filter(i1 - i0, np.full((2, 2), 0.25, np.float32)) - ix * u0 - iy * v0
        denom = self.alpha**2 + ix * ix + iy * iy
        u, v = u0.copy(), v0.copy()
        for _ in range(self.iterations):
            ua, va = _filter(u, _AVG), _filter(v, _AVG)
            r = (ix * ua + iy * va + it) / denom
            u = ua - ix * r
            v = va - iy * r
        return np.dstack((u, v))


FLOWS.add(
    "horn_schunck", HornSchunck,
    description="classic Horn-Schunck iterations (vectorised NumPy/OpenCV), optional coarse-to-fine",
    reference="Horn, Schunck 1981, Determining optical flow; used by Belaiche et al. 2020",
)
