"""OpenCV optical-flow methods: Dual TV-L1 (the reference), Farneback and DIS."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import cv2
import numpy as np

from ...registry import FLOWS
from .base import FlowError, FlowMethod


def _uint8(grey: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class TVL1OpenCV(FlowMethod):
    """``cv2.optflow.DualTVL1OpticalFlow`` (Zach et al. 2007 / Wedel et al. 2009); defaults are OpenCV's.

    Frames are passed as float32 0..1, which OpenCV rescales to 0..255, so no precision is lost to
    rounding. Parameter names follow OpenCV (``lambda_`` because ``lambda`` is a Python keyword).
    """

    name: ClassVar[str] = "tvl1_opencv"
    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    n_scales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5

    def _flow(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(
            tau=self.tau,
            lambda_=self.lambda_,
            theta=self.theta,
            nscales=self.n_scales,
            warps=self.warps,
            epsilon=self.epsilon,
            innnerIterations=self.inner_iterations,
            outerIterations=self.outer_iterations,
            scaleStep=self.scale_step,
            gamma=self.gamma,
            medianFiltering=self.median_filtering,
        )
        return tvl1.calc(prev / 255.0, next / 255.0, None)


@dataclass(frozen=True)
class Farneback(FlowMethod):
    """``cv2.calcOpticalFlowFarneback`` (Farneback 2003) on 8-bit frames.

    OpenCV gives no defaults; these are the values of OpenCV's own optical-flow tutorial.
    """

    name: ClassVar[str] = "farneback"
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2

    def _flow(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(
            _uint8(prev), _uint8(next), None,
            self.pyr_scale, self.levels, self.winsize, self.iterations, self.poly_n, self.poly_sigma, 0,
        )


_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class DIS(FlowMethod):
    """``cv2.DISOpticalFlow`` (Kroeger et al. 2016, dense inverse search) on 8-bit frames."""

    name: ClassVar[str] = "dis"
    preset: Literal["ultrafast", "fast", "medium"] = "medium"

    def __post_init__(self) -> None:
        if self.preset not in _DIS_PRESETS:
            raise FlowError(f"flow 'dis': unknown preset {self.preset!r}; choose from: {', '.join(_DIS_PRESETS)}")

    @cached_property
    def _dis(self) -> Any:
        # built once per method object: creating a DIS object costs more than its flow on small faces
        return cv2.DISOpticalFlow_create(_DIS_PRESETS[self.preset])

    def _flow(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        return self._dis.calc(_uint8(prev), _uint8(next), None)


FLOWS.add(
    "tvl1_opencv", TVL1OpenCV,
    description="OpenCV Dual TV-L1 with OpenCV's defaults (reference implementation)",
    reference="Zach, Pock, Bischof 2007, A duality based approach for realtime TV-L1 optical flow; "
    "Wedel et al. 2009, An improved algorithm for TV-L1 optical flow",
)
FLOWS.add(
    "farneback", Farneback,
    description="OpenCV Farneback polynomial-expansion flow",
    reference="Farneback 2003, Two-frame motion estimation based on polynomial expansion",
)
FLOWS.add(
    "dis", DIS,
    description="OpenCV dense inverse search flow (preset medium/fast/ultrafast)",
    reference="Kroeger et al. 2016, Fast optical flow using dense inverse search",
)
