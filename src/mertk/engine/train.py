"""Training: optimisers, one epoch, evaluation, and training one model per fold.

The loss, sampling and mixing pieces of a step are in :mod:`mertk.engine.losses` (an epoch's
batches: :func:`~mertk.engine.losses.epoch_indices`), the settings in
:class:`~mertk.engine.trainconfig.TrainConfig`.

:func:`train_folds` trains one model per fold for ``epochs`` epochs and predicts the fold's test
samples with the weights that ``select`` names: the last epoch's (``last``), or those of the epoch of
lowest loss on the fold's inner validation set ``val`` (``val_loss``, which needs a ``val`` set in every
fold). A fold's ``val`` set also adds a validation curve (``val_loss``, ``val_acc``) to the history.
Nothing measured on a test fold selects anything.

**Fold batching.** Small models of a LOSO run can be trained together: the F fold-models are
stacked (:func:`torch.func.stack_module_state`) and run with :func:`torch.func.vmap` over
:func:`torch.func.functional_call`, each fold drawing its own shuffled batches from its own training
set with its own generator; one optimizer step updates all stacked parameters. Adam, SGD (with
momentum and weight decay) and RMSprop are elementwise, so a step on the stack equals F separate
steps, and the summed loss gives each fold exactly its own gradient. BatchNorm running statistics
are stacked buffers updated in place inside vmap (a batched buffer may take a batched in-place
update), so each fold keeps its own statistics exactly as in the per-fold loop; evaluation runs the
stack in eval mode. Dropout uses ``randomness="different"`` (independent masks per fold). Folds are
grouped by their step shape (steps per epoch, batch size) and stacked in chunks that fit memory.
Without dropout the two trainers give the same weights up to float rounding (tested).

On a CPU these small networks are memory-bandwidth bound at the recipes' batch sizes, and vmap's
grouped kernels were measured slower per fold-step than the plain loop (STSTNet, batch 256, torch
2.13, one thread: 147 ms per fold-step stacked 4 at a time against 117 ms alone; about 3x slower
over all 68 MEGC 2019 folds in ``benchmarks/bench_fold_batching.py``), so ``batched=None`` stacks
small models always on an accelerator, where the per-fold loop is bound by kernel-launch overhead,
but on a CPU only when a fold-step is small enough for per-step overhead to dominate
(:data:`CPU_STACK_STEP_BYTES`).
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..models import count_params, create_model
from ..progress import ProgressBar
from .losses import (
    balanced_epoch_indices,
    class_balanced_weights,
    compute_loss,
    epoch_indices,
    jitter_factors,
    l2_penalty,
    mix_batch,
    mixed_loss,
)
from .protocols import Fold
from .trainconfig import TrainConfig, TrainError

#: Models with fewer learnable parameters than this are fold-batched automatically (on accelerators).
BATCH_PARAM_LIMIT = 100_000
#: On a CPU, folds are stacked automatically only while one fold-step's activations stay under this
#: size: above it the step is bandwidth bound and stacking measured slower (module docstring); below
#: it the per-step overhead dominates (LAENet on 12x12 inputs, batch 16: 4x faster stacked).
CPU_STACK_STEP_BYTES = 2**20
#: Fold states are returned only while all of them together stay under this many bytes.
_KEEP_STATE_BYTES = 512 * 2**20
#: Cap on the memory one stacked chunk of folds may use on a CPU.
_CPU_STACK_BYTES = 2 * 2**30

#: ``augment(batch, generator) -> batch``: a training-batch transform drawing from the fold's generator.
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class FoldResult:
    """One trained fold: test-sample probabilities from the last epoch, and the training history.

    Attributes:
        fold: the fold's name.
        test_index: positions of the test samples (into ``x``), in the fold's order.
        probs: ``(len(test_index), num_classes)`` softmax probabilities.
        history: one dict per epoch: ``loss`` (mean training objective, L2 penalty included),
            ``train_acc`` (accuracy on that epoch's training batches, train mode), ``lr``, and
            ``val_loss``/``val_acc`` when the fold has a validation set.
        seconds: training and prediction wall time (a stacked chunk's time shared equally by its folds).
        state_dict: the final weights on the CPU, or ``None`` when all folds' states together would
            exceed 512 MiB.
        selected_epoch: the 1-based epoch whose weights gave ``probs``.
        test_curve: ``(epochs, len(test_index), num_classes)`` float16 test probabilities of every
            epoch when ``config.test_curve`` (for the labelled inflated figure only), else ``None``.
    """

    fold: str
    test_index: np.ndarray
    probs: np.ndarray
    history: list[dict]
    seconds: float
    state_dict: dict | None
    selected_epoch: int = 0
    test_curve: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# optimizer, schedule, the config's loss
# ---------------------------------------------------------------------------------------------


def lr_at(config: TrainConfig, epoch: int, steps: int = 0) -> float:
    """Learning rate in 0-based ``epoch`` after ``steps`` optimizer steps in all:
    ``lr * lr_decay ** epoch * lr_step_factor ** (steps // lr_step_iters)``."""
    stepped = steps // config.lr_step_iters if config.lr_step_iters else 0
    return config.lr * config.lr_decay**epoch * config.lr_step_factor**stepped


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.StepLR | None:
    """The config's step schedule (stepped after every optimizer step), or ``None`` when it is off.

    torch's :class:`~torch.optim.lr_scheduler.StepLR` multiplies the current rate, so it composes
    with the per-epoch ``lr_decay`` applied in place by the epoch loops.
    """
    if not config.lr_step_iters:
        return None
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_iters, gamma=config.lr_step_factor)


def make_optimizer(model: nn.Module | Iterable[torch.Tensor], config: TrainConfig) -> torch.optim.Optimizer:
    """The config's optimizer over a model's parameters (or an iterable of tensors) at ``config.lr``."""
    params = list(model.parameters() if isinstance(model, nn.Module) else model)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)



def _draw_epoch(y_train: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """One epoch's positions into a fold's training samples, whose labels or targets are ``y_train``."""
    if config.sampler == "balanced":
        return balanced_epoch_indices(_targets(y_train), config.batch_size, generator)
    return epoch_indices(len(y_train), config.batch_size, generator)


def _fold_weights(y_train: torch.Tensor, config: TrainConfig, model: nn.Module) -> torch.Tensor | None:
    if config.class_weights == "none":
        return None
    return class_balanced_weights(y_train, model.num_classes).to(y_train.device)


def _objective(logits: torch.Tensor, yb: torch.Tensor, config: TrainConfig, weights: torch.Tensor | None,
               mix: tuple[Any, torch.Tensor] | None) -> torch.Tensor:
    """The batch loss of the config (mixed targets when the batch was mixed), without the L2 term."""
    kwargs = {"weights": weights, "gamma": config.focal_gamma}
    if mix is None:
        return compute_loss(logits, yb, config.loss, **kwargs)
    return mixed_loss(logits, yb, config.loss, mix[0], mix[1].to(yb.device), **kwargs)


def _targets(y: torch.Tensor) -> torch.Tensor:
    return y.argmax(-1) if y.is_floating_point() else y


# ---------------------------------------------------------------------------------------------
# one model
# ---------------------------------------------------------------------------------------------


def _batch(x: torch.Tensor, idx: torch.Tensor, augment: Augment | None, generator: torch.Generator) -> torch.Tensor:
    xb = x[idx.to(x.device)]
    if augment is not None:
        xb = augment(xb, generator)
    return xb if xb.is_floating_point() else xb.float()


def _draws_per_batch(config: TrainConfig) -> bool:
    return bool(config.jitter or config.mixup or config.cutmix)


def _train_batch(x: torch.Tensor, idx: torch.Tensor, augment: Augment | None, generator: torch.Generator,
                 config: TrainConfig) -> tuple[torch.Tensor, tuple[float, torch.Tensor] | None]:
    """A training batch: gathered, augmented, jittered, then mixed; returns it and (lam, perm) or None."""
    xb = _batch(x, idx, augment, generator)
    if config.jitter:
        factors = jitter_factors(len(xb), config.jitter, generator).to(xb.device, xb.dtype)
        xb = xb * factors.view(-1, *[1] * (xb.dim() - 1))
    if not (config.mixup or config.cutmix):
        return xb, None
    xb, lam, perm = mix_batch(xb, generator, mixup=config.mixup, cutmix=config.cutmix)
    return xb, (lam, perm)


def _epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None,
           optimizer: torch.optim.Optimizer, config: TrainConfig, generator: torch.Generator,
           augment: Augment | None, scheduler: Any = None) -> tuple[float, float]:
    """One epoch over ``x[index]`` (all of ``x`` when ``index`` is None); returns (mean loss, accuracy)."""
    model.train()
    y_train = y if index is None else y[index.to(y.device)]
    batches = _draw_epoch(y_train, config, generator)
    weights = _fold_weights(y_train, config, model)
    if index is not None:
        batches = index[batches]
    total = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    for idx in batches:
        xb, mix = _train_batch(x, idx, augment, generator, config)
        yb = y[idx.to(y.device)]
        logits = model(xb)
        loss = _objective(logits, yb, config, weights, mix)
        if config.l2:
            loss = loss + config.l2 * l2_penalty(model.parameters())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.detach()
        correct += (logits.detach().argmax(-1) == _targets(yb)).sum()
    for group in optimizer.param_groups:
        group["lr"] *= config.lr_decay
    return float(total) / len(batches), float(correct) / batches.numel()


def train_one_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
                    config: TrainConfig, generator: torch.Generator, *, augment: Augment | None = None,
                    scheduler: Any = None) -> float:
    """Train ``model`` for one epoch on all of ``(x, y)``; returns the mean training objective.

    ``y`` is ``(N,)`` class indices, or ``(N, C)`` target distributions for ``loss="soft"``. Batches are
    drawn with ``generator`` (see :func:`epoch_indices`), passed through ``augment`` and cast to float.
    Afterwards every parameter group's learning rate is multiplied by ``config.lr_decay``;
    ``scheduler`` (:func:`make_scheduler`, kept by the caller across epochs) steps after every batch.
    """
    return _epoch(model, x, y, None, optimizer, config, generator, augment, scheduler)[0]


def evaluate(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities ``(N, C)`` of ``model`` on ``x`` in eval mode, batched, without gradients."""
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            out.append(F.softmax(model(xb if xb.is_floating_point() else xb.float()), -1).cpu())
    model.train(was_training)
    if not out:
        return np.zeros((0, model.num_classes), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32)


# ---------------------------------------------------------------------------------------------
# stacked folds
# ---------------------------------------------------------------------------------------------


class _Stack:
    """F models of one architecture as stacked parameters and buffers, run with vmap."""

    def __init__(self, models: Sequence[nn.Module]):
        self.params, self.buffers = stack_module_state(list(models))
        self.base = copy.deepcopy(models[0]).to("meta")

        def call(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (params, buffers), (x,))

        self._call = vmap(call, randomness="different")

    def __call__(self, x: torch.Tensor, *, train: bool) -> torch.Tensor:
        self.base.train(train)
        return self._call(self.params, self.buffers, x)

    def predict(self, x: torch.Tensor, index: Sequence[torch.Tensor], batch_size: int) -> list[np.ndarray]:
        """Eval-mode probabilities of fold ``f`` on ``x[index[f]]`` (index lists padded to one length)."""
        longest = max(len(i) for i in index)
        padded = torch.zeros(len(index), longest, dtype=torch.long)
        for f, i in enumerate(index):
            padded[f, : len(i)] = i
        out = []
        with torch.no_grad():
            for start in range(0, longest, batch_size):
                xb = x[padded[:, start : start + batch_size].to(x.device)]
                out.append(F.softmax(self(xb if xb.is_floating_point() else xb.float(), train=False), -1).cpu())
        probs = torch.cat(out, 1).numpy().astype(np.float32)
        return [probs[f, : len(i)] for f, i in enumerate(index)]

    def state_dict(self, f: int) -> dict[str, torch.Tensor]:
        return {k: v[f].detach().cpu().clone() for k, v in {**self.params, **self.buffers}.items()}


# ---------------------------------------------------------------------------------------------
# folds
# ---------------------------------------------------------------------------------------------


def _seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (``train.threads``; 0 leaves torch's setting alone)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_select(config: TrainConfig, folds: Sequence[Fold]) -> None:
    if config.select == "val_loss":
        lacking = [f.name for f in folds if not f.val]
        if lacking:
            raise TrainError(f"train.select=val_loss needs an inner validation set, and fold {lacking[0]!r} has none")


def _init_model(model_name: str, model_kwargs: dict, init_state: dict | None, seed: int, device: torch.device) -> nn.Module:
    """Build the fold's model from ``seed`` and load ``init_state`` (a classifier of another shape stays fresh)."""
    torch.manual_seed(seed)
    model = create_model(model_name, **model_kwargs)
    if init_state is not None:
        own = model.state_dict()
        unexpected = sorted(set(init_state) - set(own))
        missing = sorted(k for k in set(own) - set(init_state) if not k.startswith("classifier."))
        if unexpected or missing:
            what = f"unexpected key {unexpected[0]!r}" if unexpected else f"missing key {missing[0]!r}"
            raise TrainError(f"init_state does not fit model {model_name}: {what}")
        keep = {}
        fresh_classifier = any(
            own[k].shape != v.shape for k, v in init_state.items() if k.startswith("classifier.")
        )
        for k, v in init_state.items():
            if k.startswith("classifier."):
                if not fresh_classifier:
                    keep[k] = v
            elif own[k].shape != v.shape:
                raise TrainError(f"init_state does not fit model {model_name}: {k!r} has shape "
                                 f"{tuple(v.shape)}, the model {tuple(own[k].shape)}")
            else:
                keep[k] = v
        model.load_state_dict(keep, strict=False)
    return model.to(device)


def _val_metrics(probs: np.ndarray, y: torch.Tensor, kind: str) -> dict[str, float]:
    p = torch.from_numpy(probs).clamp_min(1e-12)
    yv = y.cpu()
    if yv.is_floating_point():
        loss = -(yv * p.log()).sum(-1).mean()
    else:
        loss = -p.log().gather(-1, yv.unsqueeze(-1)).mean()
    acc = (p.argmax(-1) == _targets(yv)).float().mean()
    return {"val_loss": float(loss), "val_acc": float(acc)}


def _check_inputs(x: torch.Tensor, y: torch.Tensor, folds: Sequence[Fold], config: TrainConfig,
                  num_classes: int) -> torch.Tensor:
    """Validate and return ``y`` in the form the loss takes."""
    if len(x) != len(y):
        raise TrainError(f"x has {len(x)} samples but y has {len(y)}")
    if (config.mixup or config.cutmix) and x.dim() != 4:
        raise TrainError(f"train.{'mixup' if config.mixup else 'cutmix'} needs 2-D inputs (N, C, H, W), "
                         f"got inputs of shape {tuple(x.shape)}")
    names = [f.name for f in folds]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TrainError(f"fold name {dup[0]!r} appears more than once")
    for f in folds:
        top = max((*f.train, *f.test, *f.val), default=-1)
        if top >= len(x):
            raise TrainError(f"fold {f.name!r}: sample index {top} is out of range for {len(x)} samples")
    if config.loss == "soft":
        if not y.is_floating_point():
            y = F.one_hot(y.long(), num_classes)
        y = y.to(torch.float32)
        if y.dim() != 2 or y.shape[1] != num_classes:
            raise TrainError(f"loss=soft needs targets of shape (N, {num_classes}), got {tuple(y.shape)}")
        return y
    if y.is_floating_point() or y.dim() != 1:
        raise TrainError(f"loss={config.loss} needs 1-D integer class labels, got {y.dtype} of shape {tuple(y.shape)}")
    y = y.long()
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise TrainError(f"class labels must lie in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}")
    return y


def training_layout(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` copied once (if needed) into the dense memory layout ``model`` trains fastest in.

    Features reach the trainer as stacks of channels-last arrays seen channels-first, and every
    batch gathered from them keeps those strides: for the small 2-D networks the BatchNorm and
    dropout kernels on such batches were measured several times slower than on contiguous ones
    (``benchmarks/bench_train.py``), while STRCN and the 3D-CNN train faster channels-last
    (:attr:`mertk.models.MerModel.channels_last`).
    """
    if x.dim() not in (4, 5):
        return x.contiguous()
    if getattr(model, "channels_last", False):
        return x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    return x.contiguous()


def _activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of all leaf-module outputs per sample in a train-mode forward pass of two samples."""
    sizes = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel() * output.element_size())

    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    sample = x[:2] if x[:2].is_floating_point() else x[:2].float()
    with torch.no_grad():
        model.train()(sample)
    for h in hooks:
        h.remove()
    return max(sum(sizes) // len(sample), 1)


def _chunk_size(activation_bytes: int, device: torch.device, batch: int) -> int:
    """How many folds one stack may hold: three times the activations of a batch per fold must fit."""
    if device.type == "cuda":
        budget = torch.cuda.mem_get_info(device)[0] // 2
    else:
        budget = min(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4, _CPU_STACK_BYTES)
    return max(1, budget // (3 * activation_bytes * batch))


def train_folds(
    model_name: str,
    model_kwargs: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    folds: Sequence[Fold],
    config: TrainConfig,
    *,
    init_state: dict | None = None,
    batched: bool | None = None,
    augment: Augment | None = None,
    progress: bool = True,
    on_fold_done: Callable[[FoldResult], None] | None = None,
    skip_folds: set[str] | frozenset[str] = frozenset(),
) -> list[FoldResult]:
    """Train one fresh model per fold for ``config.epochs`` epochs and predict its test samples.

    Args:
        model_name, model_kwargs: a registered model (:func:`mertk.models.create_model`).
        x: ``(N, ...)`` inputs on the device to train on; non-float batches are cast to float32.
        y: ``(N,)`` class indices, or ``(N, C)`` target distributions for ``loss="soft"``.
        folds: sample positions into ``x`` per fold; ``val`` (optional) adds a validation curve and,
            with ``config.select="val_loss"``, chooses the epoch whose weights predict the test samples.
        config: the training recipe.
        init_state: a state dict to start every fold from (e.g. CK+-pretrained weights). Every
            non-classifier tensor must fit; a classifier of another shape is left freshly initialised
            (to reset a same-shaped one, drop its ``classifier.*`` keys).
        batched: stack the folds (see the module docstring); ``None`` stacks models under
            :data:`BATCH_PARAM_LIMIT` parameters on an accelerator, and on a CPU when one fold-step's
            activations stay under :data:`CPU_STACK_STEP_BYTES`.
        augment: ``augment(batch, generator)`` applied to every training batch.
        progress: show a progress bar over fold-epochs.
        on_fold_done: called with each :class:`FoldResult` as soon as its fold is finished.
        skip_folds: names of folds already done (a resumed run); they are neither trained nor returned.

    Returns:
        The results of the trained folds, in ``folds`` order. Each fold's initialisation, shuffling
        and dropout derive from ``(config.seed, fold name)`` (stacked: from the chunk's fold names),
        so the same call gives the same probabilities, also when resumed with ``skip_folds``.
    """
    probe = create_model(model_name, **model_kwargs)
    num_classes = probe.num_classes
    y = _check_inputs(x, y, folds, config, num_classes).to(x.device)
    x = training_layout(probe, x)
    todo = [f for f in folds if f.name not in skip_folds]
    if not todo:
        return []
    params = count_params(probe)
    if batched is None:
        batched = params < BATCH_PARAM_LIMIT
        if batched and x.device.type == "cpu":
            step = min(config.batch_size, min(len(f.train) for f in todo))
            batched = _activation_bytes(probe, x) * step <= CPU_STACK_STEP_BYTES
    keep_state = params * 4 * len(todo) <= _KEEP_STATE_BYTES
    results: dict[str, FoldResult] = {}

    def done(result: FoldResult) -> None:
        results[result.fold] = result
        if on_fold_done is not None:
            on_fold_done(result)

    label = f"{model_name}: {len(todo)} fold{'s' if len(todo) != 1 else ''}{' (stacked)' if batched else ''}"
    with torch_threads(config.threads), ProgressBar(progress, len(todo) * config.epochs, label) as advance:
        if batched:
            _train_stacked(model_name, model_kwargs, x, y, folds, set(skip_folds), config, init_state, augment,
                           keep_state, probe.to(x.device), advance, done)
        else:
            for fold in todo:
                done(_train_single(model_name, model_kwargs, x, y, fold, config, init_state, augment,
                                   keep_state, advance))
    return [results[f.name] for f in todo]


def _train_single(model_name: str, model_kwargs: dict, x: torch.Tensor, y: torch.Tensor, fold: Fold,
                  config: TrainConfig, init_state: dict | None, augment: Augment | None, keep_state: bool,
                  advance: Callable[[int], None]) -> FoldResult:
    start = time.perf_counter()
    model = _init_model(model_name, model_kwargs, init_state, _seed(config.seed, fold.name, "init"), x.device)
    generator = torch.Generator().manual_seed(_seed(config.seed, fold.name, "data"))
    torch.manual_seed(_seed(config.seed, fold.name, "dropout"))
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    train = torch.tensor(fold.train)
    val = torch.tensor(fold.val)
    test = torch.tensor(fold.test)
    _check_select(config, [fold])
    history = []
    curve = []
    best_loss, best_epoch, best_state = math.inf, config.epochs, None
    for epoch in range(config.epochs):
        lr = optimizer.param_groups[0]["lr"]
        loss, acc = _epoch(model, x, y, train, optimizer, config, generator, augment, scheduler)
        row = {"epoch": epoch + 1, "loss": loss, "train_acc": acc, "lr": lr}
        if fold.val:
            row.update(_val_metrics(evaluate(model, x[val.to(x.device)], config.batch_size), y[val.to(y.device)],
                                    config.loss))
            if config.select == "val_loss" and row["val_loss"] < best_loss:
                best_loss, best_epoch = row["val_loss"], epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if config.test_curve:
            curve.append(evaluate(model, x[test.to(x.device)], config.batch_size).astype(np.float16))
        history.append(row)
        advance(1)
    if best_state is not None:
        model.load_state_dict(best_state)
    probs = evaluate(model, x[test.to(x.device)], config.batch_size)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()} if keep_state else None
    return FoldResult(fold.name, np.asarray(fold.test, dtype=np.int64), probs, history,
                      time.perf_counter() - start, state, best_epoch, np.stack(curve) if curve else None)


def train_final(model_name: str, model_kwargs: dict, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, *,
                init_state: dict | None = None, augment: Augment | None = None,
                progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """Train one model on all of ``(x, y)`` with the folds' recipe (the deployable model of a run).

    Initialisation and shuffling derive from ``(config.seed, "final")``, so the same call gives the
    same weights. Returns the model (eval mode, on the CPU) and its history.
    """
    probe = create_model(model_name, **model_kwargs)
    y = _check_inputs(x, y, [], config, probe.num_classes).to(x.device)
    x = training_layout(probe, x)
    model = _init_model(model_name, model_kwargs, init_state, _seed(config.seed, "final", "init"), x.device)
    generator = torch.Generator().manual_seed(_seed(config.seed, "final", "data"))
    torch.manual_seed(_seed(config.seed, "final", "dropout"))
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    history = []
    with torch_threads(config.threads), ProgressBar(progress, config.epochs, f"{model_name}: final model on all clips") as advance:
        for epoch in range(config.epochs):
            lr = optimizer.param_groups[0]["lr"]
            loss, acc = _epoch(model, x, y, None, optimizer, config, generator, augment, scheduler)
            history.append({"epoch": epoch + 1, "loss": loss, "train_acc": acc, "lr": lr})
            advance(1)
    return model.cpu().eval(), history


def _train_stacked(model_name: str, model_kwargs: dict, x: torch.Tensor, y: torch.Tensor, folds: Sequence[Fold],
                   skip: set[str], config: TrainConfig, init_state: dict | None, augment: Augment | None,
                   keep_state: bool, probe: nn.Module, advance: Callable[[int], None],
                   done: Callable[[FoldResult], None]) -> None:
    """Train ``folds`` in stacked chunks; chunks are formed from all folds so a resume re-forms them."""
    groups: dict[tuple[int, int], list[Fold]] = {}
    for fold in folds:
        b = min(config.batch_size, len(fold.train))
        groups.setdefault((math.ceil(len(fold.train) / b), b), []).append(fold)
    for (_steps, b), members in groups.items():
        size = _chunk_size(_activation_bytes(probe, x), x.device, b)
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            if all(f.name in skip for f in chunk):
                continue
            for result in _train_chunk(model_name, model_kwargs, x, y, chunk, config, init_state, augment,
                                       keep_state, advance):
                if result.fold not in skip:
                    done(result)


def _train_chunk(model_name: str, model_kwargs: dict, x: torch.Tensor, y: torch.Tensor, chunk: Sequence[Fold],
                 config: TrainConfig, init_state: dict | None, augment: Augment | None, keep_state: bool,
                 advance: Callable[[int], None]) -> list[FoldResult]:
    start = time.perf_counter()
    models = [_init_model(model_name, model_kwargs, init_state, _seed(config.seed, f.name, "init"), x.device)
              for f in chunk]
    stack = _Stack(models)
    del models
    generators = [torch.Generator().manual_seed(_seed(config.seed, f.name, "data")) for f in chunk]
    torch.manual_seed(_seed(config.seed, "stack", *(f.name for f in chunk)))
    optimizer = make_optimizer(stack.params.values(), config)
    scheduler = make_scheduler(optimizer, config)
    trains = [torch.tensor(f.train) for f in chunk]
    vals = [torch.tensor(f.val) for f in chunk]
    tests = [torch.tensor(f.test) for f in chunk]
    _check_select(config, chunk)
    histories: list[list[dict]] = [[] for _ in chunk]
    curves: list[list[np.ndarray]] = [[] for _ in chunk]
    best_loss = [math.inf] * len(chunk)
    best_epoch = [config.epochs] * len(chunk)
    best_state: dict[str, torch.Tensor] | None = None
    weights = None
    if config.class_weights != "none":
        weights = torch.stack([_fold_weights(y[t.to(y.device)], config, stack.base) for t in trains])
    for epoch in range(config.epochs):
        lr = optimizer.param_groups[0]["lr"]
        batches = torch.stack([t[_draw_epoch(y[t.to(y.device)], config, g)] for t, g in zip(trains, generators)])
        total = torch.zeros(len(chunk), device=x.device)
        correct = torch.zeros(len(chunk), device=x.device)
        for step in range(batches.shape[1]):
            idx = batches[:, step]
            mix = None
            if augment is None and not _draws_per_batch(config):
                xb = _batch(x, idx, None, generators[0])
            else:
                parts = [_train_batch(x, i, augment, g, config) for i, g in zip(idx, generators)]
                xb = torch.stack([p[0] for p in parts])
                if parts[0][1] is not None:
                    mix = (torch.tensor([p[1][0] for p in parts], device=x.device),
                           torch.stack([p[1][1] for p in parts]))
            yb = y[idx.to(y.device)]
            logits = stack(xb, train=True)
            loss = _objective(logits, yb, config, weights, mix)
            if config.l2:
                loss = loss + config.l2 * l2_penalty(stack.params.values(), stacked=True)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.detach()
            correct += (logits.detach().argmax(-1) == _targets(yb)).sum(-1)
        for group in optimizer.param_groups:
            group["lr"] *= config.lr_decay
        losses = (total / batches.shape[1]).tolist()
        accs = (correct / batches[0].numel()).tolist()
        val_probs = stack.predict(x, vals, config.batch_size) if any(len(v) for v in vals) else None
        improved = []
        for f, fold in enumerate(chunk):
            row = {"epoch": epoch + 1, "loss": losses[f], "train_acc": accs[f], "lr": lr}
            if val_probs is not None and fold.val:
                row.update(_val_metrics(val_probs[f], y[vals[f].to(y.device)], config.loss))
                if config.select == "val_loss" and row["val_loss"] < best_loss[f]:
                    best_loss[f], best_epoch[f] = row["val_loss"], epoch + 1
                    improved.append(f)
            histories[f].append(row)
        if improved:
            state = {**stack.params, **stack.buffers}
            if best_state is None:
                best_state = {k: v.detach().clone() for k, v in state.items()}
            else:
                for k, v in state.items():
                    best_state[k][improved] = v.detach()[improved]
        if config.test_curve:
            for f, p in enumerate(stack.predict(x, tests, config.batch_size)):
                curves[f].append(p.astype(np.float16))
        advance(len(chunk))
    if best_state is not None:
        with torch.no_grad():
            for k, v in {**stack.params, **stack.buffers}.items():
                v.copy_(best_state[k])
    probs = stack.predict(x, tests, config.batch_size)
    seconds = (time.perf_counter() - start) / len(chunk)
    return [FoldResult(f.name, np.asarray(f.test, dtype=np.int64), probs[i], histories[i], seconds,
                       stack.state_dict(i) if keep_state else None, best_epoch[i],
                       np.stack(curves[i]) if curves[i] else None) for i, f in enumerate(chunk)]
