"""``train_folds`` against a bare PyTorch loop on the same data and batches, per model family.

For every family (STSTNet, LAENet, the shallow and reduced-ResNet CNNs of Belaiche et al., STRCN-G,
the 3D-CNN, at small sizes so a run stays short) the script builds random inputs laid out exactly as
``mertk.engine.run.build_samples`` hands them to the trainer (a stack of channels-last feature
arrays seen through a channels-first transpose, i.e. a non-contiguous tensor), and times, in the
same process and on the same folds:

- ``train_folds(..., batched=False)``: the per-fold trainer of ``mertk train``;
- a bare loop: per fold the same seeded model, the same batches (:func:`epoch_indices` with the
  fold's generator), forward, loss, backward and optimizer step on a contiguous copy of the inputs,
  then one prediction of the test samples; once on a contiguous (channels-first) copy of the
  inputs and once on the pipeline's layout as given (channels-last strides).

Each is timed ``--repeats`` times, alternating, and the best time is kept; the ratio of
``train_folds`` to the faster of the two bare loops is printed per family (target: at most 1.15). Both give the same predictions
(checked: the largest absolute probability difference is printed).

``--settings eager,compile,mkldnn_off,...`` times instead the bare loop (contiguous inputs) under
each CPU setting of :data:`SETTINGS`, alternating within every repeat: the steady per-epoch time
(the fastest epoch after the first, best of the folds and repeats) and its ratio to the first setting
listed (the reference), and apart from it the fixed cost per fold (the fold's time less its epochs
at the steady rate: model construction, the prediction and, for ``compile``, the compilation of
the training and the eval graphs), with the epoch count per fold from which a setting's first fold
costs less than the reference's (:func:`break_even_epochs`). One untimed eager fold warms the
process up first. The first fold of the first repeat is what a fresh ``mertk train`` process pays:
``compile`` resets dynamo before every repeat, but later repeats hit inductor's caches, so the
first repeat's figure is the one kept (it still profits from inductor's on-disk cache if the same
model was compiled on this machine before); the later folds of a run reuse the compiled code.

Usage: ``python benchmarks/bench_train.py [--families ststnet,laenet,...] [--epochs E] [--folds F]
[--repeats R] [--threads T] [--settings S1,S2,...] [--json]``; ``--profile FAMILY`` prints the
cProfile of one ``train_folds`` call instead.
"""

from __future__ import annotations

import argparse
import cProfile
import contextlib
import json
import math
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from mertk.engine.protocols import Fold
from mertk.engine.losses import compute_loss, epoch_indices
from mertk.engine.train import _seed, make_optimizer, train_folds
from mertk.engine.trainconfig import TrainConfig
from mertk.models import create_model


@dataclass(frozen=True)
class Family:
    """One benchmarked model: registry name and kwargs, samples, and its recipe's trainer."""

    model: str
    kwargs: dict = field(default_factory=dict)
    samples: int = 442
    batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 5e-5


FAMILIES = {
    "ststnet": Family("ststnet"),
    "laenet": Family("laenet"),
    "shallow": Family("shallow_1conv_single", {"input_size": 64}, 200, 64, "rmsprop", 1e-3),
    "resnet_reduced": Family("resnet18_reduced_1", {"input_size": 64}, 200, 64, "rmsprop", 1e-3),
    "strcn": Family("strcn_g", {"input_size": (64, 48), "num_rcl": 2, "num_maps": 8, "steps": 1}, 160, 20, "sgd", 1e-3),
    "c3d": Family("c3d_vgg", {"input_size": (16, 32, 32), "filters": (4, 4, 8, 8), "hidden": 16}, 96, 16, "sgd", 1e-4),
}


def pipeline_inputs(shape: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    """``(n, *shape)`` random floats in the trainer's real layout: channels-last arrays, channels-first view."""
    rng = np.random.default_rng(seed)
    last = rng.random((n, *shape[1:], shape[0]), dtype=np.float32)
    return torch.from_numpy(np.stack([np.moveaxis(a, -1, 0) for a in last]))


def make_folds(n: int, k: int) -> list[Fold]:
    """``k`` folds, each testing a contiguous tenth of the samples and training on the rest."""
    size = max(1, n // 10)
    return [Fold(f"f{i}", tuple(j for j in range(n) if not i * size <= j < (i + 1) * size),
                 tuple(range(i * size, (i + 1) * size))) for i in range(k)]


def bare_loop(model_name: str, kwargs: dict, x: torch.Tensor, y: torch.Tensor, folds: list[Fold],
              config: TrainConfig, *, layout: str = "contiguous", compiled: bool = False,
              timings: list[dict] | None = None) -> list[np.ndarray]:
    """The reference: plain PyTorch with the trainer's seeds and batches, nothing else; ``layout``
    ``contiguous`` copies the inputs to channels-first memory once, ``given`` keeps the pipeline's layout.
    ``compiled`` runs every fold's model through ``torch.compile``; ``timings`` receives per fold
    ``{"epochs": [seconds per epoch], "total": seconds}`` (the total includes construction and prediction)."""
    x = x.contiguous() if layout == "contiguous" else x
    out = []
    for fold in folds:
        start = time.perf_counter()
        torch.manual_seed(_seed(config.seed, fold.name, "init"))
        model = create_model(model_name, **kwargs)
        generator = torch.Generator().manual_seed(_seed(config.seed, fold.name, "data"))
        torch.manual_seed(_seed(config.seed, fold.name, "dropout"))
        optimizer = make_optimizer(model, config)
        forward = torch.compile(model) if compiled else model
        train = torch.tensor(fold.train)
        model.train()
        epochs = []
        for _ in range(config.epochs):
            t0 = time.perf_counter()
            for idx in train[epoch_indices(len(train), config.batch_size, generator)]:
                loss = compute_loss(forward(x[idx]), y[idx], config.loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            epochs.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            out.append(torch.softmax(forward(x[torch.tensor(fold.test)]), -1).numpy())
        if timings is not None:
            timings.append({"epochs": epochs, "total": time.perf_counter() - start})
    return out


@contextlib.contextmanager
def _attributes(obj: object, **values: object) -> Iterator[None]:
    old = {k: getattr(obj, k) for k in values}
    try:
        for k, v in values.items():
            setattr(obj, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(obj, k, v)


@contextlib.contextmanager
def _flush_denormal() -> Iterator[None]:
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


SETTINGS: dict[str, tuple[bool, Callable[[], contextlib.AbstractContextManager]]] = {
    "eager": (False, contextlib.nullcontext),
    "compile": (True, contextlib.nullcontext),
    "mkldnn_off": (False, lambda: _attributes(torch.backends.mkldnn, enabled=False)),
    "mkldnn_bf16": (False, lambda: _attributes(torch.backends.mkldnn, fp32_precision="bf16")),
    "flush_denormal": (False, _flush_denormal),
}
"""CPU settings ``--settings`` compares: name -> (``torch.compile`` the model, context the loop runs in).
``mkldnn_off`` disables oneDNN (``torch.backends.mkldnn.enabled``), ``mkldnn_bf16`` lets oneDNN compute
fp32 convolutions and matmuls in bfloat16 (``torch.backends.mkldnn.fp32_precision``), ``flush_denormal``
flushes denormal floats to zero (``torch.set_flush_denormal``)."""


def break_even_epochs(ref_fixed: float, ref_epoch: float, fixed: float, epoch: float) -> float:
    """Epochs per fold from which ``fixed + E * epoch`` is below ``ref_fixed + E * ref_epoch``: 0 when
    the setting is no dearer in either part, ``inf`` when its epochs are no faster than the reference's."""
    if epoch >= ref_epoch:
        return 0.0 if fixed < ref_fixed and epoch == ref_epoch else math.inf
    return max(0.0, (fixed - ref_fixed) / (ref_epoch - epoch))


def steady_epoch(epochs: list[float]) -> float:
    """The steady per-epoch time of one fold: the fastest of its epochs after the first (the only one if one);
    the fastest, since load from other jobs only ever adds time."""
    return min(epochs[1:] or epochs)


def setup(name: str, epochs: int, n_folds: int, seed: int):
    fam = FAMILIES[name]
    kwargs = {"num_classes": 3, **fam.kwargs}
    shape = tuple(create_model(fam.model, **kwargs).input_spec.shape)
    x = pipeline_inputs(shape, fam.samples, seed)
    y = torch.from_numpy(np.random.default_rng(seed + 1).integers(0, 3, fam.samples))
    config = TrainConfig(epochs=epochs, batch_size=fam.batch_size, optimizer=fam.optimizer, lr=fam.lr, seed=seed)
    return fam, kwargs, shape, x, y, make_folds(fam.samples, n_folds), config


def bench(name: str, epochs: int, n_folds: int, repeats: int, seed: int) -> dict:
    fam, kwargs, shape, x, y, folds, config = setup(name, epochs, n_folds, seed)
    times = {"train_folds": [], "bare": [], "bare_given": []}
    probs = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = train_folds(fam.model, kwargs, x, y, folds, config, batched=False, progress=False)
        times["train_folds"].append(time.perf_counter() - t0)
        probs["train_folds"] = [r.probs for r in res]
        t0 = time.perf_counter()
        probs["bare"] = bare_loop(fam.model, kwargs, x, y, folds, config)
        times["bare"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare_loop(fam.model, kwargs, x, y, folds, config, layout="given")
        times["bare_given"].append(time.perf_counter() - t0)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(probs["train_folds"], probs["bare"]))
    best = {k: min(v) for k, v in times.items()}
    return {"family": name, "model": fam.model, "input": list(shape), "samples": fam.samples, "batch": fam.batch_size,
            "folds": n_folds, "epochs": epochs, "train_folds_s": round(best["train_folds"], 3),
            "bare_s": round(best["bare"], 3), "bare_given_layout_s": round(best["bare_given"], 3),
            "ratio": round(best["train_folds"] / min(best["bare"], best["bare_given"]), 3),
            "max_prob_diff": diff}


def bench_settings(name: str, settings: list[str], epochs: int, n_folds: int, repeats: int, seed: int) -> dict:
    """The bare loop of family ``name`` under each of ``settings`` (the first the reference), see the module docstring."""
    fam, kwargs, shape, x, y, folds, config = setup(name, epochs, n_folds, seed)
    runs: dict[str, list[list[dict]]] = {s: [] for s in settings}
    probs = {}
    bare_loop(fam.model, kwargs, x, y, folds[:1], replace(config, epochs=1))
    for _ in range(repeats):
        for s in settings:
            compiled, context = SETTINGS[s]
            if compiled:
                torch._dynamo.reset()
            timings: list[dict] = []
            with context():
                probs[s] = bare_loop(fam.model, kwargs, x, y, folds, config, compiled=compiled, timings=timings)
            runs[s].append(timings)
    rows = {}
    for s, reps in runs.items():
        epoch = min(steady_epoch(f["epochs"]) for rep in reps for f in rep)
        fixed = [[f["total"] - epochs * epoch for f in rep] for rep in reps]
        rows[s] = {"epoch_s": round(epoch, 4), "fixed_first_fold_s": round(fixed[0][0], 3),
                   "fixed_first_fold_warm_s": round(min(r[0] for r in fixed), 3),
                   "fixed_later_folds_s": round(min(statistics.mean(r[1:]) for r in fixed), 3) if n_folds > 1 else None,
                   "max_prob_diff": max(float(np.abs(a - b).max()) for a, b in zip(probs[s], probs[settings[0]]))}
    ref = rows[settings[0]]
    for r in rows.values():
        r["epoch_ratio"] = round(r["epoch_s"] / ref["epoch_s"], 3)
        b = break_even_epochs(ref["fixed_first_fold_s"], ref["epoch_s"], r["fixed_first_fold_s"], r["epoch_s"])
        r["break_even_epochs"] = None if math.isinf(b) else round(b, 1)
    return {"family": name, "model": fam.model, "input": list(shape), "batch": fam.batch_size, "folds": n_folds,
            "epochs": epochs, "settings": rows}


def print_settings(rows: list[dict], settings: list[str], args: argparse.Namespace) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bare loop, {args.epochs} epochs x "
          f"{args.folds} folds, best of {args.repeats}; ratio: steady epoch against {settings[0]}")
    print(f"{'family':15s} {'setting':15s} {'epoch s':>8s} {'ratio':>6s} {'fixed fold 1 s':>14s} {'(warm)':>8s} "
          f"{'fixed later s':>13s} {'break-even ep':>13s} {'max|dp|':>8s}")
    for row in rows:
        for s, r in row["settings"].items():
            later = "-" if r["fixed_later_folds_s"] is None else f"{r['fixed_later_folds_s']:.3f}"
            even = "never" if r["break_even_epochs"] is None else f"{r['break_even_epochs']:.1f}"
            print(f"{row['family']:15s} {s:15s} {r['epoch_s']:8.4f} {r['epoch_ratio']:6.2f} {r['fixed_first_fold_s']:14.3f} "
                  f"{r['fixed_first_fold_warm_s']:8.3f} {later:>13s} {even:>13s} "
                  f"{r['max_prob_diff']:8.1e}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default=None, metavar="FAMILY")
    p.add_argument("--settings", default=None, metavar="S1,S2,...",
                   help=f"time the bare loop under these CPU settings instead, the first the reference ({', '.join(SETTINGS)})")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.families.split(",") if n.strip()]
    unknown = [n for n in names + ([args.profile] if args.profile else []) if n not in FAMILIES]
    if unknown:
        print(f"error: unknown family {unknown[0]!r}; choose from: {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    settings = [s.strip() for s in args.settings.split(",") if s.strip()] if args.settings is not None else []
    bad = [s for s in settings if s not in SETTINGS]
    if bad or (args.settings is not None and not settings):
        print(f"error: --settings: unknown setting {(bad[0] if bad else args.settings)!r}; choose from: {', '.join(SETTINGS)}",
              file=sys.stderr)
        return 2
    if settings:
        rows = [bench_settings(n, settings, args.epochs, args.folds, args.repeats, args.seed) for n in names]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print_settings(rows, settings, args)
        return 0
    if args.profile:
        fam, kwargs, _shape, x, y, folds, config = setup(args.profile, args.epochs, args.folds, args.seed)
        prof = cProfile.Profile()
        prof.runcall(train_folds, fam.model, kwargs, x, y, folds, config, batched=False, progress=False)
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return 0
    rows = [bench(n, args.epochs, args.folds, args.repeats, args.seed) for n in names]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs x {args.folds} folds, "
          f"best of {args.repeats}")
    print(f"{'family':15s} {'model':22s} {'input':18s} {'batch':>5s} {'train_folds s':>13s} {'bare s':>8s} "
          f"{'ratio':>6s} {'bare, pipeline layout s':>23s} {'max|dp|':>8s}")
    for r in rows:
        print(f"{r['family']:15s} {r['model']:22s} {str(tuple(r['input'])):18s} {r['batch']:5d} "
              f"{r['train_folds_s']:13.3f} {r['bare_s']:8.3f} {r['ratio']:6.2f} {r['bare_given_layout_s']:23.3f} "
              f"{r['max_prob_diff']:8.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
