"""The flow-method interface, input conversion and validation, and the ``compute_flow`` entry points.

Convention (the same as OpenCV's ``calcOpticalFlowFarneback`` / ``DualTVL1``): a flow is a float32
``H x W x 2`` array ``(u, v)`` of x and y displacements in pixels such that
``next(x + u, y + v) ≈ prev(x, y)``.

Frames may be ``uint8`` (0..255) or floating point (0..1, OpenCV's convention for float frames), grey
``H x W`` / ``H x W x 1`` or RGB ``H x W x 3``. Every method sees the same grey float32 image on a
0..255 scale (RGB is converted with ITU-R BT.601 weights by ``cv2.cvtColor``), so parameters such as
the TV-L1 ``lambda_`` mean the same thing whatever the input type.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import cv2
import numpy as np

from ...errors import PreprocessError, frame_size
from ...registry import FLOWS


class FlowError(PreprocessError):
    """Bad frames given to a flow method, unknown parameters, or a non-finite flow result."""


def to_grey(image: np.ndarray, *, what: str = "frame") -> np.ndarray:
    """Convert a frame to a grey float32 ``H x W`` image on a 0..255 scale.

    Args:
        image: ``uint8`` (0..255) or float (0..1) array, ``H x W``, ``H x W x 1`` or RGB ``H x W x 3``.
        what: name of the frame used in error messages.

    Raises:
        FlowError: unsupported shape or dtype, or non-finite values in a float frame.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise FlowError(f"{what}: expected a grey HxW or RGB HxWx3 image, got shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise FlowError(f"{what}: image of shape {a.shape} is too small for optical flow")
    if a.dtype == np.uint8:
        g = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise FlowError(f"{what}: image contains NaN or inf values")
        g = a.astype(np.float32) * 255.0
    else:
        raise FlowError(f"{what}: unsupported dtype {a.dtype}; use uint8 (0..255) or float (0..1)")
    if g.ndim == 3:
        g = cv2.cvtColor(g, cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(g)


def grey_pair(prev: np.ndarray, next: np.ndarray, *, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert both frames with :func:`to_grey` and check that their sizes match."""
    g0 = to_grey(prev, what=f"flow {method!r}: prev frame")
    g1 = to_grey(next, what=f"flow {method!r}: next frame")
    if g0.shape != g1.shape:
        raise FlowError(
            f"flow {method!r}: frame sizes differ: prev is {frame_size(*g0.shape[:2])}, "
            f"next is {frame_size(*g1.shape[:2])}"
        )
    return g0, g1


def check_flow(flow: np.ndarray, shape: tuple[int, int], *, method: str) -> np.ndarray:
    """Return ``flow`` as contiguous float32 ``H x W x 2``; raise if its shape is wrong or it is not finite."""
    f = np.ascontiguousarray(flow, dtype=np.float32)
    if f.shape != (*shape, 2):
        raise FlowError(f"flow {method!r}: result has shape {f.shape}, expected {(*shape, 2)}")
    bad = int(np.count_nonzero(~np.isfinite(f)))
    if bad:
        raise FlowError(
            f"flow {method!r}: result has {bad} NaN/inf values for a {frame_size(*shape[:2])} pair"
        )
    return f


class FlowMethod(ABC):
    """A dense optical-flow method; subclasses are frozen dataclasses whose fields are its parameters.

    Call an instance on two frames to get their flow; :meth:`batch` computes many same-size pairs,
    and methods that vectorise over pairs (our ``tvl1``) override :meth:`_flow_batch`.
    """

    name: ClassVar[str]

    def __call__(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        """Flow from ``prev`` to ``next`` as float32 ``H x W x 2`` (see the module docstring)."""
        g0, g1 = grey_pair(prev, next, method=self.name)
        return check_flow(self._flow(g0, g1), g0.shape, method=self.name)

    def batch(self, prevs: Sequence[np.ndarray], nexts: Sequence[np.ndarray]) -> np.ndarray:
        """Flows of the pairs ``(prevs[i], nexts[i])`` as float32 ``N x H x W x 2``; all pairs share one size."""
        if len(prevs) != len(nexts):
            raise FlowError(
                f"flow {self.name!r}: {len(prevs)} prev frames but {len(nexts)} next frames"
            )
        if len(prevs) == 0:
            raise FlowError(f"flow {self.name!r}: empty batch")
        pairs = [grey_pair(p, n, method=self.name) for p, n in zip(prevs, nexts)]
        shape = pairs[0][0].shape
        for i, (g0, _) in enumerate(pairs):
            if g0.shape != shape:
                raise FlowError(
                    f"flow {self.name!r}: pair {i} is {frame_size(*g0.shape[:2])} but pair 0 is "
                    f"{frame_size(*shape[:2])}; a batch needs one frame size"
                )
        g0s = np.stack([p[0] for p in pairs])
        g1s = np.stack([p[1] for p in pairs])
        flows = self._flow_batch(g0s, g1s)
        return np.stack([check_flow(f, shape, method=self.name) for f in flows])

    @abstractmethod
    def _flow(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        """Flow between two grey float32 0..255 images of equal size."""

    def _flow_batch(self, prevs: np.ndarray, nexts: np.ndarray) -> np.ndarray:
        """Flows for ``N x H x W`` grey stacks; the default loops over pairs."""
        return np.stack([self._flow(a, b) for a, b in zip(prevs, nexts)])


def get_flow_method(method: str, **params: Any) -> FlowMethod:
    """Instantiate the registered flow method ``method`` with keyword parameters ``params``.

    Raises:
        UnknownNameError: ``method`` is not registered (the message lists the registered names).
        FlowError: a parameter name is not one the method takes.
    """
    cls = FLOWS.get(method)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise FlowError(
            f"flow {method!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(fields)) or 'none'}"
        )
    return cls(**params)


def compute_flow(prev: np.ndarray, next: np.ndarray, method: str = "tvl1", **params: Any) -> np.ndarray:
    """Optical flow from ``prev`` to ``next`` with a registered method, as float32 ``H x W x 2``."""
    return get_flow_method(method, **params)(prev, next)


def compute_flow_batch(
    prevs: Sequence[np.ndarray], nexts: Sequence[np.ndarray], method: str = "tvl1", **params: Any
) -> np.ndarray:
    """Flows of the same-size pairs ``(prevs[i], nexts[i])`` as float32 ``N x H x W x 2``.

    Equal to calling :func:`compute_flow` per pair; methods that vectorise over pairs run faster.
    """
    return get_flow_method(method, **params).batch(prevs, nexts)
