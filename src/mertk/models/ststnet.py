"""STSTNet (Liong et al. 2019) and LAENet (Lien et al. 2020, laenet-lien-2020): multi-stream shallow nets.

Both take the 28x28 [u, v, strain] image of the onset->apex flow. Each stream is a 3x3 convolution,
ReLU, batch normalisation, 3x3/3 max pooling and dropout 0.5; the streams are concatenated (10x10),
average-pooled 2x2 (5x5) and classified by one fully connected layer.

- STSTNet: three streams of 3, 5 and 8 filters, convolution padding 2 (30x30 maps) and pooling padding
  1, as in the authors' code: 1,683 learnable parameters for 3 classes (the LAENet paper quotes
  "1670" / 0.00167 M; BN scale/shift included we count 1,683, without them 1,651).
- LAENet: two streams of 3 and 5 filters, 'same' padding (Table 2: 28x28 maps, pooled to 10x10):
  exactly the paper's 843 learnable parameters for 3 classes.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import InputSpec, MerModel, ModelError, conv_out
from ._registry import register_model


class StreamNet(MerModel):
    """Parallel 3x3 conv streams -> concat -> 2x2 average pool -> FC.

    Args:
        num_classes: output classes (3 for the MEGC 2019 composite).
        in_channels: input channels (3 for [u, v, strain]).
        streams: filters per stream.
        conv_padding: padding of every stream's 3x3 convolution.
        input_size: square input side.
        dropout: dropout after each stream's pooling.
    """

    def __init__(
        self,
        num_classes: int = 3,
        in_channels: int = 3,
        *,
        streams: tuple[int, ...] = (3, 5, 8),
        conv_padding: int = 2,
        input_size: int = 28,
        dropout: float = 0.5,
    ):
        super().__init__()
        size = conv_out(conv_out(input_size, 3, 1, conv_padding), 3, 3, 1) // 2
        if size < 1:
            raise ModelError(f"{type(self).__name__} input_size {input_size} is too small")
        self.input_spec = InputSpec(
            "uvs", (in_channels, input_size, input_size), f"{input_size}x{input_size} [u, v, strain] onset->apex"
        )
        self.streams = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels, f, 3, padding=conv_padding),
                nn.ReLU(),
                nn.BatchNorm2d(f),
                nn.MaxPool2d(3, 3, padding=1),
                nn.Dropout(dropout),
            )
            for f in streams
        )
        self.pool = nn.AvgPool2d(2, 2)
        self.classifier = nn.Linear(sum(streams) * size * size, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.cat([s(x) for s in self.streams], dim=1))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features.flatten(1))


class STSTNet(StreamNet):
    """Shallow Triple Stream Three-dimensional CNN: streams of 3, 5 and 8 filters, padding 2."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3, **kw):
        super().__init__(num_classes, in_channels, **{"streams": (3, 5, 8), "conv_padding": 2, **kw})


class LAENet(StreamNet):
    """Lightweight Apex-based Enhanced Network: STSTNet without the 8-filter stream, 'same' padding."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3, **kw):
        super().__init__(num_classes, in_channels, **{"streams": (3, 5), "conv_padding": 1, **kw})


_SPEC = InputSpec("uvs", (3, 28, 28), "28x28 [u, v, strain] onset->apex")


@register_model(
    "ststnet",
    paper="laenet-lien-2020 (baseline: Liong et al. 2019)",
    description="STSTNet: 3 conv streams (3, 5, 8 filters) on [u, v, strain], 3 classes",
    input_spec=_SPEC,
)
def ststnet(**kw) -> STSTNet:
    return STSTNet(**kw)


@register_model(
    "laenet",
    paper="laenet-lien-2020",
    description="LAENet: 2 conv streams (3, 5 filters) on [u, v, strain], 843 parameters, 3 classes",
    input_spec=_SPEC,
    default_cfg={"eye_mask": True},
)
def laenet(**kw) -> LAENet:
    return LAENet(**kw)
