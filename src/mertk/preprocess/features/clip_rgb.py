"""``clip_rgb``: the cropped clip, T x H x W x 3 uint8 (3D-CNN, LBP-TOP); windows are drawn at training time.

The model takes it channels-first (3 x T x H x W floats on [0, 1]); flips and rotations apply to
every frame.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Sequence

import numpy as np

from .base import FrameSequenceFamily, as_float, register_family, rotate_hwc


class ClipRGB(FrameSequenceFamily):
    name = "clip_rgb"
    description = "the cropped clip, T x H x W x 3 uint8 (3D-CNN; windows are drawn at training time)"
    defaults = MappingProxyType({"crop": "square"})
    size = (128, 128)
    flip = rotate = True

    def spec_config(self, shape: Sequence[int]) -> dict[str, Any]:
        return {"size": self.input_size(shape), "frames": int(shape[1])}

    def model_view(self, x: np.ndarray) -> np.ndarray:
        return as_float(x).transpose(3, 0, 1, 2)

    def mirror(self, x: np.ndarray) -> np.ndarray:
        return x[..., ::-1, :]

    def rotated(self, x: np.ndarray, angle: float) -> np.ndarray:
        return np.stack([rotate_hwc(f, angle) for f in x])


register_family(ClipRGB())
