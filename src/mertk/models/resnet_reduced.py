"""ResNet18 reduced in depth (Belaiche et al. 2020, cost-effective-cnn-belaiche-2020).

ResNet18 has 17 successive convolutional layers (CL): the 7x7 stem and eight basic blocks of two 3x3
convolutions. The paper removes the last residual block step by step (17, 15, ..., 3 CL) and connects
what is left to the fully connected layer; 1 CL keeps only the stem (without its max pool).

The paper's Table 1 counts (10,670,932 ... 91,525 for 5 classes) are reproduced exactly by the MATLAB
``resnet18`` it used: 224x224x3 input, convolutions with bias, and the final ``pool5`` kept as a fixed
7x7 stride-7 average pooling (not a global one), whose flattened output feeds the FC layer (e.g. 1 CL:
112x112x64 -> 16x16x64 = 16,384 features). ``conv_bias=False`` gives the torchvision flavour.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import InputSpec, MerModel, ModelError, conv_out
from ._registry import register_model

#: (filters, stride) of the eight basic blocks of ResNet18, in order.
_BLOCKS = ((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1))
DEPTHS = tuple(range(17, 0, -2))
_FEATURE_BY_CHANNELS = {1: "flow_vy", 2: "flow_vxvy", 3: "flow_vxvym"}


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN) shortcut, ReLU after the sum."""

    def __init__(self, cin: int, cout: int, stride: int, bias: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=bias), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetReduced(MerModel):
    """ResNet18 with ``depth`` successive convolutional layers (17, 15, ..., 1).

    Args:
        depth: number of successive convolutional layers, odd, 1..17.
        num_classes: output classes (5 objective classes in the paper).
        in_channels: any channel count (3 = Vx, Vy, M as in the paper; 2 = Vx-Vy; 1 = one field).
        input_size: square input side (224 in the paper).
        head_pool: the fixed average-pool window and stride before the FC layer (7, MATLAB's pool5).
        conv_bias: convolutions with bias (MATLAB, the paper's counts) or without (torchvision).
        feature: input feature family; by default from the channel count (flow_vy, flow_vxvy, flow_vxvym).
    """

    def __init__(
        self,
        depth: int = 17,
        num_classes: int = 5,
        in_channels: int = 3,
        *,
        input_size: int = 224,
        head_pool: int = 7,
        conv_bias: bool = True,
        feature: str | None = None,
    ):
        super().__init__()
        if depth not in DEPTHS:
            raise ModelError(f"ResNetReduced depth must be one of {DEPTHS}, got {depth}")
        if feature is None:
            if in_channels not in _FEATURE_BY_CHANNELS:
                raise ModelError(f"ResNetReduced: pass feature= for an input of {in_channels} channels")
            feature = _FEATURE_BY_CHANNELS[in_channels]
        self.depth = depth
        self.input_spec = InputSpec(
            feature, (in_channels, input_size, input_size), f"{input_size}x{input_size} {feature} onset->apex"
        )
        size = conv_out(input_size, 7, 2, 3)
        stem: list[nn.Module] = [nn.Conv2d(in_channels, 64, 7, 2, 3, bias=conv_bias), nn.BatchNorm2d(64), nn.ReLU()]
        blocks: list[nn.Module] = []
        cin = 64
        if depth > 1:
            stem.append(nn.MaxPool2d(3, 2, 1))
            size = conv_out(size, 3, 2, 1)
            for cout, stride in _BLOCKS[: (depth - 1) // 2]:
                blocks.append(BasicBlock(cin, cout, stride, conv_bias))
                cin, size = cout, conv_out(size, 3, stride, 1)
        size //= head_pool
        if size < 1:
            raise ModelError(f"ResNetReduced input_size {input_size} is too small for depth {depth}")
        self.stem = nn.Sequential(*stem)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AvgPool2d(head_pool, head_pool)
        self.classifier = nn.Linear(cin * size * size, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(features).flatten(1))


def _register(depth: int) -> None:
    def factory(**kw) -> ResNetReduced:
        return ResNetReduced(**{"depth": depth, **kw})

    factory.__name__ = f"resnet18_reduced_{depth}"
    register_model(
        factory.__name__,
        paper="cost-effective-cnn-belaiche-2020",
        description=f"ResNet18 reduced to {depth} conv layer{'s' if depth > 1 else ''}, 224x224x3 flow, 5 classes",
        input_spec=InputSpec("flow_vxvym", (3, 224, 224), "224x224 flow_vxvym onset->apex"),
    )(factory)


for _depth in DEPTHS:
    _register(_depth)
