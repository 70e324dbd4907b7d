"""How to train: :class:`TrainConfig` and :class:`TrainError`, free of torch.

The recipe loader (:mod:`mertk.engine.recipe`) and the run configuration build and check a
:class:`TrainConfig` without importing the trainer (:mod:`mertk.engine.train`), so a recipe is
validated, and a run directory's ``config.yaml`` read, without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config_types import check_fields
from ..errors import MertkError

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOSSES = ("ce", "soft", "balanced", "focal")
SELECT = ("last", "val_loss")
CLASS_WEIGHTS = ("none", "balanced")
SAMPLERS = ("uniform", "balanced")


class TrainError(MertkError, ValueError):
    """Training cannot start from its input (a bad config value, labels or folds that do not fit)."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the defaults are the STSTNet/LAENet recipe (Adam 5e-5, batch 256, 800 epochs).

    Attributes:
        epochs: fixed number of epochs; predictions use the last epoch's weights.
        batch_size: samples per gradient step (and per evaluation chunk).
        optimizer: ``adam``, ``sgd`` or ``rmsprop`` (torch defaults for betas, alpha and eps).
        lr: initial learning rate.
        momentum: SGD momentum (STRCN and the 3D-CNN use 0.9); ignored by Adam and RMSprop.
        weight_decay: the optimizer's decoupled-from-loss L2 term on the gradient (STRCN 5e-4).
        l2: explicit penalty ``l2 * sum ||w||^2`` over conv and linear weights added to the loss (SHCNN 3e-4).
        lr_decay: multiplicative learning-rate factor applied after every epoch (STRCN 0.8; 1 = constant).
        lr_step_iters: step schedule: every this many optimizer steps (iterations, counted over the
            whole training) the learning rate is multiplied by ``lr_step_factor`` (the 3D-CNN halves
            it every 20,000 iterations); 0 = off. It combines with ``lr_decay``.
        lr_step_factor: the step schedule's factor.
        loss: ``ce`` (cross-entropy), ``soft`` (cross-entropy against target distributions, FERPlus),
            ``balanced`` (STRCN eq. 9-10, see :func:`~mertk.engine.losses.balanced_loss`) or ``focal``
            (Lin et al. 2017, ``-(1 - p_y)^focal_gamma log p_y``).
        focal_gamma: the focal loss's exponent (0 gives cross-entropy).
        class_weights: ``none``, or ``balanced``: each sample's loss is weighted by ``n / (K n_c)`` of
            its class in the fold's training set (:func:`~mertk.engine.losses.class_balanced_weights`);
            ``ce`` and ``focal``.
        sampler: ``uniform`` (every training sample once per epoch,
            :func:`~mertk.engine.losses.epoch_indices`) or ``balanced`` (samples drawn with
            replacement, with probability inversely proportional to their class's count in the fold's
            training set: :func:`~mertk.engine.losses.balanced_epoch_indices`).
        mixup: Beta(alpha, alpha) parameter of mixup on 2-D inputs ``(N, C, H, W)``; 0 = off.
        cutmix: Beta(alpha, alpha) parameter of CutMix on 2-D inputs; 0 = off (not with ``mixup``).
        jitter: magnitude jitter: every training sample is multiplied by a factor from
            ``U(1 - jitter, 1 + jitter)`` (for optical-flow features); 0 = off.
        seed: seeds every fold's initialisation, shuffling and dropout (derived per fold name).
        threads: torch CPU threads while training (0 leaves torch's setting alone).
        select: which epoch's weights predict the test fold: ``last`` (fixed epochs), or ``val_loss``
            (the epoch of lowest loss on the fold's inner validation subjects; needs folds with
            ``val``, which :func:`mertk.engine.run.run_recipe` makes with ``val_fraction``).
        val_fraction: share of a fold's training subjects held out for ``select: val_loss``.
        test_curve: also record every epoch's test probabilities, only to report the separately
            labelled, inflated "best test epoch" figure that papers print; it never selects anything.
    """

    epochs: int = 800
    batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 5e-5
    momentum: float = 0.9
    weight_decay: float = 0.0
    l2: float = 0.0
    lr_decay: float = 1.0
    lr_step_iters: int = 0
    lr_step_factor: float = 0.5
    loss: str = "ce"
    seed: int = 0
    threads: int = 0
    select: str = "last"
    val_fraction: float = 0.1
    test_curve: bool = False
    focal_gamma: float = 2.0
    class_weights: str = "none"
    sampler: str = "uniform"
    mixup: float = 0.0
    cutmix: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, error=TrainError, prefix="train.")
        if self.optimizer not in OPTIMIZERS:
            raise TrainError(f"train.optimizer {self.optimizer!r} is unknown; choose from: {', '.join(OPTIMIZERS)}")
        if self.select not in SELECT:
            raise TrainError(f"train.select {self.select!r} is unknown; choose from: {', '.join(SELECT)}")
        if not 0 < self.val_fraction < 1:
            raise TrainError(f"train.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.loss not in LOSSES:
            raise TrainError(f"train.loss {self.loss!r} is unknown; choose from: {', '.join(LOSSES)}")
        for name in ("epochs", "threads", "momentum", "weight_decay", "l2", "lr_step_iters"):
            if getattr(self, name) < 0:
                raise TrainError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.batch_size < 1:
            raise TrainError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0 or not 0 < self.lr_decay <= 1:
            raise TrainError(f"train.lr must be > 0 and train.lr_decay in (0, 1], got {self.lr}, {self.lr_decay}")
        if not 0 < self.lr_step_factor <= 1:
            raise TrainError(f"train.lr_step_factor must be in (0, 1], got {self.lr_step_factor}")
        for name, valid in (("class_weights", CLASS_WEIGHTS), ("sampler", SAMPLERS)):
            if getattr(self, name) not in valid:
                raise TrainError(f"train.{name} {getattr(self, name)!r} is unknown; choose from: {', '.join(valid)}")
        if self.class_weights != "none" and self.loss not in ("ce", "focal"):
            raise TrainError(f"train.class_weights={self.class_weights} applies to loss ce or focal, not {self.loss}")
        for name in ("focal_gamma", "mixup", "cutmix"):
            if getattr(self, name) < 0:
                raise TrainError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.mixup and self.cutmix:
            raise TrainError("train.mixup and train.cutmix are exclusive: set one of them to 0")
        if (self.mixup or self.cutmix) and self.loss == "balanced":
            raise TrainError(f"train.{'mixup' if self.mixup else 'cutmix'} needs a loss of labels or targets "
                             "(ce, focal, soft), not balanced (its weights depend on each batch's labels)")
        if not 0 <= self.jitter < 1:
            raise TrainError(f"train.jitter must be in [0, 1), got {self.jitter}")

