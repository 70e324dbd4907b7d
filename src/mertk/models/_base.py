"""What every mertk model shares: the declared input spec, the feature/head split, input checks.

A model is an :class:`MerModel`: ``forward(x) = forward_head(forward_features(x))`` returning logits
(softmax belongs to the loss or to inference), with the final linear layer in ``self.classifier`` so
that :meth:`MerModel.reset_classifier` can swap it for pretrain -> fine-tune. ``input_spec`` tells
the preprocessing pipeline which feature family to build and at what shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ModelError

@dataclass(frozen=True)
class InputSpec:
    """The input a model takes, without the batch dimension.

    Attributes:
        feature: the feature family the preprocessing must build (a name registered in
            :data:`mertk.registry.FEATURES` by :mod:`mertk.preprocess.features`; the pipeline checks it
            when it resolves the model, as models sit below preprocessing).
        shape: ``(C, H, W)`` for images, ``(C, T, H, W)`` for clips.
        description: one line for humans (``"28x28 [u, v, strain] of onset->apex"``).
    """

    feature: str
    shape: tuple[int, ...]
    description: str

    def __post_init__(self) -> None:
        if not self.feature or not isinstance(self.feature, str):
            raise ModelError(f"input feature must be a feature family name, got {self.feature!r}")
        if len(self.shape) not in (3, 4) or any(int(s) < 1 for s in self.shape):
            raise ModelError(f"input shape must be (C, H, W) or (C, T, H, W) of positive sizes, got {self.shape}")


def count_params(model: nn.Module) -> int:
    """Number of learnable parameters (BatchNorm scale and shift count; running statistics do not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class MerModel(nn.Module):
    """Base class: subclasses set ``input_spec``, ``classifier`` and implement the two halves.

    ``strict_size`` says whether the spatial (and temporal) size must equal ``input_spec.shape``
    (true where a fully connected layer is sized from it); models ending in global pooling accept
    other sizes and only check channels and rank. ``channels_last`` says whether the model trains
    faster on channels-last inputs on a CPU (measured per family by ``benchmarks/bench_train.py``);
    the trainer lays its inputs out once accordingly.
    """

    input_spec: InputSpec
    classifier: nn.Linear
    strict_size: bool = True
    channels_last: bool = False

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional trunk: input batch -> feature maps before flatten/pooling."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward_features")

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Feature maps -> logits (pooling/flatten, hidden layers, then ``self.classifier``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward_head")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final linear layer by a freshly initialised one with ``num_classes`` outputs."""
        if num_classes < 1:
            raise ModelError(f"num_classes must be >= 1, got {num_classes}")
        old = self.classifier
        self.classifier = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`ModelError` naming the model, the expected and the given shape on a mismatch."""
        want = self.input_spec.shape
        got = tuple(x.shape[1:])
        ok = x.dim() == len(want) + 1 and got[0] == want[0]
        if ok and self.strict_size:
            ok = got == want
        if not ok:
            size = "" if self.strict_size else " (any spatial size the pooling allows)"
            raise ModelError(
                f"{type(self).__name__} expects input (N, {', '.join(map(str, want))}){size} "
                f"[{self.input_spec.feature}], got {tuple(x.shape)}"
            )


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling along one axis (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1
