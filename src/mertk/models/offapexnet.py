"""OFF-ApexNet (Gan et al. 2019), the two-stream baseline of the LAENet paper.

The u and v flow components (onset->apex) go through separate streams: conv 6@5x5, 2x2 max pool,
conv 16@5x5, 2x2 max pool ('same' padding, ReLU, as in the authors' tflearn code); the streams are
concatenated and classified by FC 1024 -> FC 1024 -> classes, with ReLU and dropout 0.5 after each
hidden FC layer. At 28x28x2 and 3 classes: 2,664,475 parameters (the LAENet paper's Table 1 quotes
2.77 M without giving the layer sizes).
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import InputSpec, MerModel, ModelError
from ._registry import register_model


class OffApexNet(MerModel):
    """One LeNet-like stream per input channel, concatenated, then two hidden FC layers.

    Args:
        num_classes: output classes (3 for the MEGC 2019 composite).
        in_channels: number of streams (2: u and v).
        input_size: square input side.
        filters: per conv layer of each stream.
        hidden: hidden fully connected layer sizes.
        dropout: dropout after each hidden FC layer.
    """

    def __init__(
        self,
        num_classes: int = 3,
        in_channels: int = 2,
        *,
        input_size: int = 28,
        filters: tuple[int, ...] = (6, 16),
        hidden: tuple[int, ...] = (1024, 1024),
        dropout: float = 0.5,
    ):
        super().__init__()
        size = input_size >> len(filters)
        if size < 1:
            raise ModelError(f"OffApexNet input_size {input_size} is too small for {len(filters)} poolings")
        self.input_spec = InputSpec(
            "flow_uv", (in_channels, input_size, input_size), f"{input_size}x{input_size} flow (u, v) onset->apex"
        )

        def stream() -> nn.Sequential:
            layers: list[nn.Module] = []
            cin = 1
            for f in filters:
                layers += [nn.Conv2d(cin, f, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
                cin = f
            return nn.Sequential(*layers)

        self.streams = nn.ModuleList(stream() for _ in range(in_channels))
        head: list[nn.Module] = [nn.Flatten()]
        width = in_channels * filters[-1] * size * size
        for h in hidden:
            head += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.head = nn.Sequential(*head)
        self.classifier = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([s(x[:, i : i + 1]) for i, s in enumerate(self.streams)], dim=1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(features))


@register_model(
    "off_apexnet",
    paper="laenet-lien-2020 (baseline: Gan et al. 2019)",
    description="OFF-ApexNet: u and v streams (conv 6, conv 16), FC 1024 x2, 3 classes",
    input_spec=InputSpec("flow_uv", (2, 28, 28), "28x28 flow (u, v) onset->apex"),
)
def off_apexnet(**kw) -> OffApexNet:
    return OffApexNet(**kw)
