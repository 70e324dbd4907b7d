"""Our own TV-L1 optical flow in PyTorch, batched over pairs and tuned for facial micro-motion.

The algorithm is the dual TV-L1 scheme of Zach, Pock and Bischof (2007) as written out by Sánchez,
Meinhardt-Llopis and Facciolo ("TV-L1 Optical Flow Estimation", IPOL 2013): a coarse-to-fine
pyramid; at each scale a few warps of the second image (bicubic) around the current flow; at each
warp a fixed number of primal-dual iterations (pointwise thresholding of the linearised data term,
then a Chambolle projection step for the total-variation term); a median filter of the flow after
each warp as in Wedel et al. (2009) and OpenCV.

Why a hand-written solver: OpenCV's DualTVL1 runs one pair at a time with pyramid and iteration
defaults sized for large motions, which is wasteful for micro-expressions (sub-pixel to a few
pixels on 128x128..280x340 faces). Here every tensor holds a whole batch of same-size pairs, so one
operator call serves all pairs, and the defaults use few scales, warps and iterations. A fixed
iteration count (no data-dependent stopping) makes a batched result equal to the per-pair results.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...registry import FLOWS
from .base import FlowError, FlowMethod


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _centred_gradient(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences along x and y of ``N x C x H x W`` (one-sided half differences at borders)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    gy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    return gx, gy


def _median_filter(u: torch.Tensor, k: int) -> torch.Tensor:
    """``k x k`` (3 or 5) median filter of each ``H x W`` plane of ``N x C x H x W``, replicated borders.

    cv2.medianBlur is an order of magnitude faster than a torch unfold + median.
    """
    a = u.contiguous().numpy()
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        for c in range(a.shape[1]):
            out[i, c] = cv2.medianBlur(a[i, c], k)
    return torch.from_numpy(out)


def _pixel_grid(h: int, w: int) -> torch.Tensor:
    """``1 x H x W x 2`` grid of pixel coordinates ``(x, y)`` in grid_sample's normalised units."""
    ys = torch.linspace(-1.0, 1.0, h) if h > 1 else torch.zeros(1)
    xs = torch.linspace(-1.0, 1.0, w) if w > 1 else torch.zeros(1)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1).unsqueeze(0)


@dataclass(frozen=True)
class TVL1(FlowMethod):
    """Our batched PyTorch TV-L1 (Zach-Pock-Bischof dual scheme, IPOL 2013 formulation).

    Parameters (defaults tuned on micro-motion, sub-pixel to a few pixels: ``lambda_``,
    ``presmooth_sigma`` and ``iterations`` were chosen with ``benchmarks/bench_flow.py`` on synthetic
    benchmarks of seeds 0, 2 and 3 and checked on seed 4, which no choice looked at):
        tau: dual time step (stable for tau <= 0.25). Default 0.25.
        lambda_: data-term weight on 0..255 intensities, as in OpenCV. Default 0.08.
        theta: coupling between the primal variables. Default 0.3.
        n_scales: pyramid levels (fewer are used if the coarsest would fall below 16 px). Default 3.
        scale_step: downsampling factor between levels. Default 0.5.
        warps: warps of the second image per scale. Default 3.
        iterations: primal-dual iterations per warp. Default 15.
        median_filtering: window (3 or 5) of the median filter applied to the flow after each
            warp; 0 or 1 turns it off. Default 3.
        presmooth_sigma: Gaussian blur of both frames before the pyramid, in pixels (0: none). Default 0.
        threads: torch intra-op threads while computing (restored afterwards); None leaves
            torch's setting alone. Default 1: on face-sized images each operation is too small for
            threading to pay off, and on a shared CPU OpenMP barriers stall on descheduled threads
            (measured 20x slower with 2 threads on a loaded 2-core machine). Parallelise over
            batches or processes instead.
    """

    name: ClassVar[str] = "tvl1"
    tau: float = 0.25
    lambda_: float = 0.08
    theta: float = 0.3
    n_scales: int = 3
    scale_step: float = 0.5
    warps: int = 3
    iterations: int = 15
    median_filtering: int = 3
    presmooth_sigma: float = 0.0
    threads: int | None = 1

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.tau <= 0.25:
            problems.append(f"tau={self.tau} (need 0 < tau <= 0.25)")
        if self.lambda_ <= 0 or self.theta <= 0:
            problems.append(f"lambda_={self.lambda_}, theta={self.theta} (need > 0)")
        if self.n_scales < 1 or self.warps < 1 or self.iterations < 1:
            problems.append(
                f"n_scales={self.n_scales}, warps={self.warps}, iterations={self.iterations} (need >= 1)"
            )
        if not 0 < self.scale_step < 1:
            problems.append(f"scale_step={self.scale_step} (need 0 < scale_step < 1)")
        if self.median_filtering not in (0, 1, 3, 5):
            problems.append(f"median_filtering={self.median_filtering} (need 3 or 5, or 0/1 for off)")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads={self.threads} (need >= 1)")
        if problems:
            raise FlowError(f"flow 'tvl1': bad parameter(s): {'; '.join(problems)}")

    def _flow(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        return self._flow_batch(prev[None], next[None])[0]

    def _flow_batch(self, prevs: np.ndarray, nexts: np.ndarray) -> np.ndarray:
        with _torch_threads(self.threads), torch.inference_mode():
            u = self._solve(np.asarray(prevs, dtype=np.float32), np.asarray(nexts, dtype=np.float32))
            return u.permute(0, 2, 3, 1).contiguous().numpy()

    def _pyramid(self, images: np.ndarray) -> list[torch.Tensor]:
        """Fine-to-coarse pyramid of ``K x H x W`` images as ``K x 1 x h x w`` tensors.

        As in IPOL: Gaussian pre-smoothing, then per level a blur of sigma 0.6 sqrt(1/eta^2 - 1) and
        a resampling by eta (bilinear). Done per image with OpenCV, far faster than torch's
        depthwise convolutions on CPU.
        """
        sigma = 0.6 * math.sqrt(1.0 / self.scale_step**2 - 1.0)
        level = [self._blur(im, self.presmooth_sigma) for im in images]
        levels = [level]
        for _ in range(1, self.n_scales):
            h, w = level[0].shape
            nh, nw = round(h * self.scale_step), round(w * self.scale_step)
            if min(nh, nw) < 16:
                break
            level = [cv2.resize(self._blur(im, sigma), (nw, nh), interpolation=cv2.INTER_LINEAR) for im in level]
            levels.append(level)
        return [torch.from_numpy(np.stack(lv)).unsqueeze(1) for lv in levels]

    @staticmethod
    def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
        if sigma <= 0:
            return image
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)

    def _solve(self, i0: np.ndarray, i1: np.ndarray) -> torch.Tensor:
        n = i0.shape[0]
        pyramid = self._pyramid(np.concatenate((i0, i1)))
        u = torch.zeros(n, 2, *pyramid[-1].shape[-2:])
        for level in reversed(pyramid):
            h, w = level.shape[-2:]
            if u.shape[-2:] != (h, w):
                sy, sx = h / u.shape[-2], w / u.shape[-1]
                u = F.interpolate(u, size=(h, w), mode="bilinear", align_corners=False)
                u = u * torch.tensor([sx, sy]).view(1, 2, 1, 1)
            u = self._one_scale(level[:n], level[n:], u)
        return u

    def _one_scale(self, i0: torch.Tensor, i1: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        n, _, h, w = i0.shape
        lt = self.lambda_ * self.theta
        taut = self.tau / self.theta
        i1x, i1y = _centred_gradient(i1)
        stack = torch.cat((i1, i1x, i1y), dim=1)
        base = _pixel_grid(h, w)
        to_grid = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)])
        # dual variables with a zero first column (px) / first row (py), so that the backward-difference
        # divergence is a plain difference of two views
        px_pad = torch.zeros(n, 2, h, w + 1)
        py_pad = torch.zeros(n, 2, h + 1, w)
        px, py = px_pad[..., 1:], py_pad[..., 1:, :]
        gx = torch.zeros(n, 2, h, w)
        gy = torch.zeros(n, 2, h, w)
        u = u.clone()
        for _ in range(self.warps):
            grid = base + u.permute(0, 2, 3, 1) * to_grid
            warped = F.grid_sample(stack, grid, mode="bicubic", padding_mode="border", align_corners=True)
            i1w, ig = warped[:, :1], warped[:, 1:].contiguous()
            ix, iy = ig[:, :1], ig[:, 1:]
            neg_inv_grad = (ig * ig).sum(1, keepdim=True).clamp_min_(1e-12).reciprocal_().neg_()
            rho_c = i1w - (ig * u).sum(1, keepdim=True) - i0
            for _ in range(self.iterations):
                t = torch.addcmul(rho_c, ix, u[:, :1]).addcmul_(iy, u[:, 1:]).mul_(neg_inv_grad).clamp_(-lt, lt)
                div = torch.sub(px, px_pad[..., :-1]).add_(py).sub_(py_pad[..., :-1, :])
                u.addcmul_(t, ig).add_(div, alpha=self.theta)
                torch.sub(u[..., 1:], u[..., :-1], out=gx[..., :-1])
                torch.sub(u[..., 1:, :], u[..., :-1, :], out=gy[..., :-1, :])
                ng = torch.mul(gx, gx).addcmul_(gy, gy).sqrt_().mul_(taut).add_(1.0)
                px.add_(gx, alpha=taut).div_(ng)
                py.add_(gy, alpha=taut).div_(ng)
            if self.median_filtering > 1:
                u = _median_filter(u, self.median_filtering)
        return u


FLOWS.add(
    "tvl1", TVL1,
    description="our batched PyTorch TV-L1, tuned for micro-motion (few scales, warps and iterations)",
    reference="Zach, Pock, Bischof 2007; Sanchez, Meinhardt-Llopis, Facciolo 2013, TV-L1 Optical Flow "
    "Estimation, IPOL 3:137-150",
)
