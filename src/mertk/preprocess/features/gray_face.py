"""``gray_face``: a grey face, 1 x H x W uint8, from a still image (static expression datasets, SHCNN)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import cv2
import numpy as np

from ..crop import resize
from .base import FeatureFamily, register_family, rotate_hwc


class GrayFace(FeatureFamily):
    name = "gray_face"
    description = "a grey face, 1 x H x W uint8 (static datasets)"
    clips = False
    images = True
    defaults = MappingProxyType({"crop": "none"})
    size = (48, 48)
    dtype = np.uint8
    uses_flow = False
    flip = rotate = True
    ten_crop = True
    magnify = False
    panels = ("mean face",)

    def shape(self, config: Any, n_frames: int) -> tuple[int, ...]:
        return (1, *config.size)

    def encode_image(self, image: np.ndarray, config: Any, source: Any) -> dict[str, np.ndarray]:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return {"x": resize(grey, config.size)[None].astype(np.uint8)}

    def mirror(self, x: np.ndarray) -> np.ndarray:
        return x[..., ::-1]

    def rotated(self, x: np.ndarray, angle: float) -> np.ndarray:
        return rotate_hwc(x[0], angle)[None]

    def panel_stack(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(arrays["x"], dtype=np.float32) / 255.0

    def panels_note(self) -> str:
        return "gray_face inputs are still faces, not flow maps: each class's mean face"


register_family(GrayFace())
