"""The Belaiche et al. flow channels of the onset->apex flow, C x H x W float: ``flow_vx``, ``flow_vy``,
``flow_mag``, ``flow_vxvy`` and ``flow_vxvym`` (Vx, Vy, magnitude M), one family, five registered names.

The papers' Horn-Schunck flow is the default, and ``apex_plus_one`` adds the onset->apex+1 flow as
``x_aug`` (a training copy).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

from ..encode import shallow_channels
from ..eyemask import apply_eye_mask
from .base import ApexFlowFamily, Timer, no_timer, register_family


class ShallowFlow(ApexFlowFamily):
    """One Belaiche et al. variant: the ``shallow_channels`` of ``kind``, with the magnitude of the
    resized (Vx, Vy) appended when ``with_magnitude``; ``panels`` names the channels."""

    defaults = MappingProxyType({"crop": "laenet", "flow": "horn_schunck", "apex_plus_one": True})
    size = (224, 224)

    def __init__(self, name: str, kind: str, channels: tuple[str, ...], description: str,
                 with_magnitude: bool = False) -> None:
        self.name, self.kind, self.panels, self.description = name, kind, channels, description
        self.with_magnitude = with_magnitude

    def channels(self, flow: np.ndarray, mask: np.ndarray | None, config: Any, timer: Timer = no_timer) -> np.ndarray:
        with timer("encode"):
            if mask is not None:
                flow = apply_eye_mask(flow, mask)
            out = shallow_channels(flow, self.kind, size=config.size)
            if self.with_magnitude:
                out = np.concatenate([out, np.hypot(out[0], out[1])[None]], axis=0)
            return out


register_family(ShallowFlow("flow_vx", "vx", ("Vx",), "1-channel horizontal flow Vx of onset->apex (Belaiche et al.)"))
register_family(ShallowFlow("flow_vy", "vy", ("Vy",), "1-channel vertical flow Vy of onset->apex (Belaiche et al.)"))
register_family(ShallowFlow("flow_mag", "mag", ("M",), "1-channel flow magnitude M of onset->apex (Belaiche et al.)"))
register_family(ShallowFlow("flow_vxvy", "vxvy", ("Vx", "Vy"), "2-channel flow (Vx, Vy) of onset->apex (Belaiche et al.)"))
register_family(ShallowFlow("flow_vxvym", "vxvy", ("Vx", "Vy", "M"),
                            "3-channel flow (Vx, Vy, M) of onset->apex, the ResNet input of Belaiche et al.",
                            with_magnitude=True))
