"""``flow_uv``: the onset->apex flow u, v, 2 x H x W float (OFF-ApexNet, STRCN-G)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

from ..encode import shallow_channels
from ..eyemask import apply_eye_mask
from .base import ApexFlowFamily, Timer, no_timer, register_family


class FlowUV(ApexFlowFamily):
    name = "flow_uv"
    description = "onset->apex flow u, v, 2 x H x W float (OFF-ApexNet, STRCN-G)"
    defaults = MappingProxyType({"crop": "laenet", "flow": "tvl1"})
    size = (28, 28)
    panels = ("u", "v")

    def channels(self, flow: np.ndarray, mask: np.ndarray | None, config: Any, timer: Timer = no_timer) -> np.ndarray:
        with timer("encode"):
            if mask is not None:
                flow = apply_eye_mask(flow, mask)
            return shallow_channels(flow, "vxvy", size=config.size)


register_family(FlowUV())
