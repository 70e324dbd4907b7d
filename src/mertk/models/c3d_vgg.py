"""3D-CNN with 3D-VGG blocks (Wu et al. 2022, 3dcnn-vgg-wu-2022).

Input: a 16-frame 128x128 RGB clip, tensor (3, 16, 128, 128). Four blocks of two 3x3x3 convolutions
(32, 64, 128, 128 filters; stride 1, padding 1), each followed by BN + ReLU; max pooling and dropout
0.25 after every block; flatten -> FC 1024 (ReLU, dropout 0.5) -> classes.

Pooling: the paper says the first pool is (1,2,2), the others (2,2,2), and that the last
convolutional stage outputs 1x4x4x128 = 2048 features. Time 16 -> 1 takes four (2,.,.) pools and
space 128 -> 4 takes five (.,2,2) pools, so there are five pools; Fig. 5 is missing, so we place one
after each of the four blocks ((1,2,2), (2,2,2), (2,2,2), (2,2,2): 16x64, 8x32, 4x16, 2x8) and a
fifth (2,2,2) after the fourth, giving 1x4x4.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import InputSpec, MerModel, ModelError
from ._registry import register_model

_POOLS = ((1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2))
_FINAL_POOL = (2, 2, 2)


class C3DVGG(MerModel):
    """3D-VGG blocks (conv-BN-ReLU x2, max pool, dropout) -> FC 1024 -> classes.

    Args:
        num_classes: output classes (CASME 4, CASME II 5).
        in_channels: 3 for RGB clips.
        input_size: (T, H, W) of the clip; (16, 128, 128) in the paper. Smaller clips whose sides
            survive the five poolings (T a multiple of 16, H and W multiples of 32) give the same
            network with a smaller first FC layer.
        filters: filters of the two convolutions of each block.
        hidden: hidden FC size.
        block_dropout, head_dropout: 0.25 after each block, 0.5 after the hidden FC layer.
    """

    channels_last = True

    def __init__(
        self,
        num_classes: int = 5,
        in_channels: int = 3,
        *,
        input_size: tuple[int, int, int] = (16, 128, 128),
        filters: tuple[int, ...] = (32, 64, 128, 128),
        hidden: int = 1024,
        block_dropout: float = 0.25,
        head_dropout: float = 0.5,
    ):
        super().__init__()
        if len(filters) != len(_POOLS):
            raise ModelError(f"C3DVGG has {len(_POOLS)} blocks, got {len(filters)} filter counts")
        out = list(input_size)
        for pool in (*_POOLS, _FINAL_POOL):
            out = [s // p for s, p in zip(out, pool)]
        if min(out) < 1:
            raise ModelError(f"C3DVGG input_size {tuple(input_size)} is too small for its five poolings")
        t, h, w = input_size
        self.input_spec = InputSpec("clip_rgb", (in_channels, t, h, w), f"{t} frames x {h}x{w} RGB clip")
        layers: list[nn.Module] = []
        cin = in_channels
        for f, pool in zip(filters, _POOLS):
            for _ in range(2):
                layers += [nn.Conv3d(cin, f, 3, padding=1), nn.BatchNorm3d(f), nn.ReLU()]
                cin = f
            layers += [nn.MaxPool3d(pool), nn.Dropout(block_dropout)]
        layers.append(nn.MaxPool3d(_FINAL_POOL))
        self.features = nn.Sequential(*layers)
        self.feature_shape = (cin, *out)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * out[0] * out[1] * out[2], hidden), nn.ReLU(), nn.Dropout(head_dropout)
        )
        self.classifier = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(features))


@register_model(
    "c3d_vgg",
    paper="3dcnn-vgg-wu-2022",
    description="3D-CNN with 3D-VGG blocks on 16x128x128 RGB clips, flatten 2048, 5 classes",
    input_spec=InputSpec("clip_rgb", (3, 16, 128, 128), "16 frames x 128x128 RGB clip"),
)
def c3d_vgg(**kw) -> C3DVGG:
    return C3DVGG(**kw)
