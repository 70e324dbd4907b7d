"""The shallow 1-4 conv-layer nets of Belaiche et al. 2020 (cost-effective-cnn-belaiche-2020).

Input: one Horn-Schunck flow field (Vx, Vy or M; 1 channel) or the pair Vx-Vy (2 channels). Each conv
layer is followed by BN and ReLU; then one max pooling and the FC layer. The first conv has 5x5
kernels and 16 filters per input channel; each further conv is 3x3 and doubles the filters (Table 9's
filter totals 16/48/112/240 single, 32/96/224/480 double).

Input size and pooling are not printed; we take the 224x224 input of the paper's ResNet (whose counts
we reproduce exactly, see resnet_reduced.py) and the same 7x7 stride-7 pool, giving the 32x32 maps
that Table 2's 1- and 2-layer counts imply: 82,373 / 168,997 (single) and 165,541 / 348,005 (double),
reproduced exactly. Three of the four 3- and 4-layer counts (709,477 double-3, 712,933 single-4,
1,620,197 double-4) are reproduced exactly only if the FC sees 31x31 maps; the registered 3- and
4-layer nets therefore pool with an 8x8 window at stride 7 (224 -> 31), an inference from the counts.
Single-3 then has 331,301 parameters against the printed 333,121, which no square map can give
(333,121 - 23,776 conv/BN - 5 bias = 309,340 weights = 5 x 61,868, not 64 x s^2): we read it as a typo.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import InputSpec, MerModel, ModelError, conv_out
from ._registry import register_model

_INPUTS = {"single": ("flow_vy", 1), "double": ("flow_vxvy", 2)}
_FEATURES_BY_CHANNELS = {1: "flow_vy", 2: "flow_vxvy"}


class ShallowNet(MerModel):
    """``num_conv`` conv-BN-ReLU layers, one max pooling, one FC layer.

    Args:
        num_conv: number of conv layers (1-4 in the paper).
        num_classes: output classes (5 objective classes).
        in_channels: 1 (Vx, Vy or M) or 2 (Vx-Vy); any count works.
        input_size: square input side.
        base_filters: filters of the first conv per input channel (16).
        pool_kernel, pool_stride: the max pooling before the FC layer.
        feature: input feature family; by default flow_vy (1 channel) or flow_vxvy (2 channels).
    """

    def __init__(
        self,
        num_conv: int = 1,
        num_classes: int = 5,
        in_channels: int = 1,
        *,
        input_size: int = 224,
        base_filters: int = 16,
        pool_kernel: int = 7,
        pool_stride: int = 7,
        feature: str | None = None,
    ):
        super().__init__()
        if num_conv < 1:
            raise ModelError(f"ShallowNet needs at least one conv layer, got num_conv={num_conv}")
        if feature is None:
            if in_channels not in _FEATURES_BY_CHANNELS:
                raise ModelError(f"ShallowNet: pass feature= for an input of {in_channels} channels")
            feature = _FEATURES_BY_CHANNELS[in_channels]
        size = conv_out(input_size, pool_kernel, pool_stride)
        if size < 1:
            raise ModelError(f"ShallowNet input_size {input_size} is smaller than the pool window {pool_kernel}")
        self.input_spec = InputSpec(
            feature, (in_channels, input_size, input_size), f"{input_size}x{input_size} {feature} onset->apex"
        )
        layers: list[nn.Module] = []
        cin, cout = in_channels, base_filters * in_channels
        for i in range(num_conv):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU()]
            cin, cout = cout, cout * 2
        self.features = nn.Sequential(*layers)
        self.pool = nn.MaxPool2d(pool_kernel, pool_stride)
        self.classifier = nn.Linear(cin * size * size, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(features).flatten(1))


def _register(num_conv: int, kind: str) -> None:
    feature, channels = _INPUTS[kind]
    pool_kernel = 7 if num_conv <= 2 else 8

    def factory(**kw) -> ShallowNet:
        return ShallowNet(**{"num_conv": num_conv, "in_channels": channels, "pool_kernel": pool_kernel, **kw})

    factory.__name__ = f"shallow_{num_conv}conv_{kind}"
    what = "Vx, Vy or M" if kind == "single" else "Vx-Vy"
    register_model(
        factory.__name__,
        paper="cost-effective-cnn-belaiche-2020",
        description=f"shallow net, {num_conv} conv layer{'s' if num_conv > 1 else ''}, {channels}-channel flow ({what}), 5 classes",
        input_spec=InputSpec(feature, (channels, 224, 224), f"224x224 {feature} onset->apex"),
    )(factory)


for _n in range(1, 5):
    for _kind in _INPUTS:
        _register(_n, _kind)
