"""SHCNN: the shallow 3-conv-layer CNN of Miao et al. 2019 (shcnn-miao-2019).

The paper's Fig. 4 (the architecture) is not in the text, which fixes only "three layers",
LeakyReLU(0.02), dropout (rate not stated) and the n-class softmax (docs/models.md). The rest is our
reading: conv 44@5x5, 44@3x3, 88@5x5 ('same' padding), each followed by LeakyReLU(0.02) and 2x2 max
pooling; then FC 2048 and FC 1024, each with LeakyReLU(0.02) and dropout 0.4; then the n-class
classifier. At a 48x48x1 input this is 8,710,963 parameters for n = 7.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import InputSpec, MerModel, ModelError
from ._registry import register_model

_PAPER = "shcnn-miao-2019"


class SHCNN(MerModel):
    """Three conv layers with 2x2 max pooling, two hidden FC layers, LeakyReLU everywhere.

    Args:
        num_classes: output classes (FER2013 7, FERPlus 8, CASME/CASME II 5, SAMM 3).
        in_channels: 1 for grey faces, 3 for HSI-coded flow images.
        input_size: square input side (48 static faces, 42 ten-crop patches, 112 flow images).
        filters, kernels: per conv layer.
        hidden: sizes of the hidden fully connected layers.
        dropout: dropout after each hidden FC layer.
        negative_slope: LeakyReLU slope (0.02 in the paper).
        feature: the input feature family (``gray_face`` or ``hsi_flow``).
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 1,
        *,
        input_size: int = 48,
        filters: tuple[int, ...] = (44, 44, 88),
        kernels: tuple[int, ...] = (5, 3, 5),
        hidden: tuple[int, ...] = (2048, 1024),
        dropout: float = 0.4,
        negative_slope: float = 0.02,
        feature: str = "gray_face",
    ):
        super().__init__()
        if len(filters) != len(kernels):
            raise ModelError(f"SHCNN needs one kernel size per conv layer, got filters={filters} kernels={kernels}")
        if input_size >> len(filters) < 1:
            raise ModelError(f"SHCNN input_size {input_size} is too small for {len(filters)} 2x2 poolings")
        self.input_spec = InputSpec(
            feature, (in_channels, input_size, input_size), f"{input_size}x{input_size}x{in_channels} {feature}"
        )
        layers: list[nn.Module] = []
        cin, size = in_channels, input_size
        for f, k in zip(filters, kernels):
            layers += [nn.Conv2d(cin, f, k, padding=k // 2), nn.LeakyReLU(negative_slope), nn.MaxPool2d(2)]
            cin, size = f, size // 2
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        width = cin * size * size
        for h in hidden:
            head += [nn.Linear(width, h), nn.LeakyReLU(negative_slope), nn.Dropout(dropout)]
            width = h
        self.head = nn.Sequential(*head)
        self.classifier = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(features))


@register_model(
    "shcnn",
    paper=_PAPER,
    description="SHCNN on 48x48 grey static faces (FER2013, 7 classes)",
    input_spec=InputSpec("gray_face", (1, 48, 48), "48x48x1 gray_face"),
)
def shcnn(**kw) -> SHCNN:
    return SHCNN(**{"num_classes": 7, "in_channels": 1, "input_size": 48, **kw})


@register_model(
    "shcnn_42",
    paper=_PAPER,
    description="SHCNN on the 42x42 ten-crop patches of 48x48 static faces (FER2013, 7 classes)",
    input_spec=InputSpec("gray_face", (1, 42, 42), "42x42x1 gray_face"),
)
def shcnn_42(**kw) -> SHCNN:
    return SHCNN(**{"num_classes": 7, "in_channels": 1, "input_size": 42, **kw})


@register_model(
    "shcnn_hsi",
    paper=_PAPER,
    description="SHCNN on 112x112 HSI-coded TV-L1 flow per frame (CASME/CASME II, 5 classes)",
    input_spec=InputSpec("hsi_flow", (3, 112, 112), "112x112x3 hsi_flow"),
)
def shcnn_hsi(**kw) -> SHCNN:
    return SHCNN(**{"num_classes": 5, "in_channels": 3, "input_size": 112, "feature": "hsi_flow", **kw})
