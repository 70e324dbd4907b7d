"""STRCN-A and STRCN-G: spatiotemporal recurrent convolutional networks (Xia et al. 2019, strcn-xia-2019).

Table I: Conv1 (5x5, no padding) + Pool1, then recurrent convolutional layers RCL2..RCL5 with a max
pool between consecutive ones, global average pooling and the classifier. Every layer has M feature
maps and is followed by BN + ReLU. An RCL (Liang & Hu 2015) computes the feed-forward 1x1 response
``f = w_f * u`` once and unrolls the recurrent 3x3 convolution for ``steps`` steps:
``x(0) = ReLU(BN_0(f))``, ``x(n) = ReLU(BN_n(f + w_r * x(n-1)))``, with weights shared across steps and
one BN per step (its shift plays the role of the bias b_k of eq. 6).

Pooling (Table I): STRCN-A 4x1, 4x1, 4x4, 2x2 (the first two pool only the pixel axis of the
pixels x frames map); STRCN-G 4x4, 4x4, 4x4, 2x2. Fewer RCLs drop RCL5, RCL4, ... together with the
pool before each; ``steps=0`` turns every RCL into a plain 1x1 conv layer (the paper's "0 layers").
M is not given in the text (it is grid-searched, Fig. 5); the default is 64.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ._base import InputSpec, MerModel, ModelError, conv_out
from ._registry import register_model

_POOLS: dict[str, tuple[tuple[int, int], ...]] = {
    "a": ((4, 1), (4, 1), (4, 4), (2, 2)),
    "g": ((4, 4), (4, 4), (4, 4), (2, 2)),
}
#: STRCN-A default pixel count: the top 30% of a 64x48 face, round(0.3 * 3072).
STRCN_A_PIXELS = round(0.3 * 64 * 48)
STRCN_A_FRAMES = 30


class RCL(nn.Module):
    """Recurrent convolutional layer: 1x1 feed-forward, 3x3 recurrent unrolled ``steps`` times."""

    def __init__(self, channels: int, steps: int = 3):
        super().__init__()
        self.feedforward = nn.Conv2d(channels, channels, 1, bias=False)
        self.recurrent = nn.Conv2d(channels, channels, 3, padding=1, bias=False) if steps > 0 else None
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(steps + 1))
        self.relu = nn.ReLU()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        f = self.feedforward(u)
        x = self.relu(self.norms[0](f))
        for norm in self.norms[1:]:
            x = self.relu(norm(f + self.recurrent(x)))
        return x


class STRCN(MerModel):
    """Conv1 + pool, ``num_rcl`` RCLs with pools between them, global average pool, classifier.

    Args:
        num_classes: output classes (SMIC 3; CASME II, SAMM and their union 4).
        in_channels: 3 for STRCN-A (colour channels), 2 for STRCN-G (flow u, v).
        variant: ``"a"`` (appearance: pixels x frames map) or ``"g"`` (geometric: flow image).
        input_size: (H, W) of the input map: (pixels, frames) for STRCN-A, (300, 245) for STRCN-G.
        num_maps: M, feature maps of every layer.
        num_rcl: recurrent convolutional layers, 1..4 (RCL2..RCL5).
        steps: recurrent unrolling steps per RCL (3 in Table I).
    """

    channels_last = True

    strict_size = False

    def __init__(
        self,
        num_classes: int = 4,
        in_channels: int = 3,
        *,
        variant: Literal["a", "g"] = "a",
        input_size: tuple[int, int] = (STRCN_A_PIXELS, STRCN_A_FRAMES),
        num_maps: int = 64,
        num_rcl: int = 4,
        steps: int = 3,
    ):
        super().__init__()
        if variant not in _POOLS:
            raise ModelError(f"STRCN variant must be 'a' or 'g', got {variant!r}")
        pools = _POOLS[variant]
        if not 1 <= num_rcl <= len(pools):
            raise ModelError(f"STRCN num_rcl must be 1..{len(pools)}, got {num_rcl}")
        if steps < 0:
            raise ModelError(f"STRCN steps must be >= 0, got {steps}")
        h, w = (conv_out(s, 5) for s in input_size)
        for ph, pw in pools[:num_rcl]:
            h, w = h // ph, w // pw
        if min(h, w) < 1:
            raise ModelError(f"STRCN-{variant.upper()} input_size {tuple(input_size)} is too small for its poolings")
        self.variant = variant
        if variant == "a":
            feature, desc = "strcn_pixels", f"{input_size[0]} selected pixels x {input_size[1]} frames x 3"
        else:
            feature, desc = "flow_uv", f"{input_size[0]}x{input_size[1]} (H x W) flow (u, v) onset->apex, eye-box crop"
        self.input_spec = InputSpec(feature, (in_channels, *input_size), desc)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, num_maps, 5, bias=False),
            nn.BatchNorm2d(num_maps),
            nn.ReLU(),
            nn.MaxPool2d(pools[0]),
            RCL(num_maps, steps),
        ]
        for pool in pools[1:num_rcl]:
            layers += [nn.MaxPool2d(pool), RCL(num_maps, steps)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(num_maps, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(features).flatten(1))


@register_model(
    "strcn_a",
    paper="strcn-xia-2019",
    description="STRCN-A: RCNs on selected pixels x 30 frames x 3 (64x48 faces, top 30% pixels), 4 classes",
    input_spec=InputSpec(
        "strcn_pixels", (3, STRCN_A_PIXELS, STRCN_A_FRAMES), f"{STRCN_A_PIXELS} selected pixels x 30 frames x 3"
    ),
)
def strcn_a(**kw) -> STRCN:
    return STRCN(**{"variant": "a", "in_channels": 3, **kw})


@register_model(
    "strcn_g",
    paper="strcn-xia-2019",
    description="STRCN-G: RCNs on 300x245 (H x W) onset->apex flow, 4 classes",
    input_spec=InputSpec("flow_uv", (2, 300, 245), "300x245 (H x W) flow (u, v) onset->apex, eye-box crop"),
    default_cfg={"crop": "strcn", "apex": "std_diff"},
)
def strcn_g(**kw) -> STRCN:
    return STRCN(**{"variant": "g", "in_channels": 2, "input_size": (300, 245), **kw})
