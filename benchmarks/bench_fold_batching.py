"""Fold batching against a plain per-fold loop, in the same run: the STSTNet recipe over LOSO folds.

The published STSTNet recipe (Adam 5e-5, batch 256, 800 epochs, predict with the last epoch) is run
over every leave-one-subject-out fold of the MEGC 2019 composite twice: once with the folds stacked
(``train_folds(..., batched=True)``) and once as a plain loop, one fold after another
(``batched=False``). The script prints the wall time of each, the speed-up, and accuracy / UF1 / UAR
of both (MEGC: pooled over folds).

Features: ``--root DIR`` runs the synthetic benchmark (written there by ``mertk synth`` first when
``DIR`` does not exist) through ``prepare(open_dataset("megc2019", DIR), config_for_model(MODEL))``;
``--random`` instead draws random 3x28x28 features for 68 subjects / 442 clips, the real composite's
size (class counts 250 negative / 109 positive / 83 surprise), with a weak class signal.

The loop over all folds at 800 epochs takes hours on a small CPU: ``--loop-folds K`` runs the loop
on the first K folds only and extrapolates its time to all folds; the output labels that figure as
extrapolated, and the loop's metrics then cover those K folds (printed beside the stacked trainer's
metrics on the same K folds).

Usage: ``python benchmarks/bench_fold_batching.py (--root DIR | --random) [--model ststnet]
[--epochs 800] [--loop-folds K] [--threads T] [--device cpu|cuda] [--seed S] [--json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mertk.engine.metrics import megc_metrics
from mertk.engine.protocols import loso
from mertk.engine.train import FoldResult, train_folds
from mertk.engine.trainconfig import TrainConfig

MEGC_CLASSES = ("negative", "positive", "surprise")
MEGC_COUNTS = (250, 109, 83)
MEGC_SUBJECTS = 68


def random_features(seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str], tuple[str, ...]]:
    """442 random 3x28x28 samples over 68 subjects; the class shifts channel 0 a little."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), MEGC_COUNTS)
    rng.shuffle(y)
    subjects = [f"s{int(s):02d}" for s in np.sort(rng.integers(0, MEGC_SUBJECTS, len(y)))]
    subjects[:MEGC_SUBJECTS] = [f"s{s:02d}" for s in range(MEGC_SUBJECTS)]  # every subject has a clip
    x = rng.normal(size=(len(y), 3, 28, 28)).astype(np.float32)
    x[:, 0] += 0.15 * (y[:, None, None] - 1)
    return torch.from_numpy(x), torch.from_numpy(y), subjects, MEGC_CLASSES


def synthetic_features(root: Path, model: str) -> tuple[torch.Tensor, torch.Tensor, list[str], tuple[str, ...]]:
    from mertk.data import open_dataset
    from mertk.preprocess.pipeline import config_for_model, prepare

    if not root.exists():
        from mertk.synth import synthesize

        synthesize(root, progress=False)
    dataset = open_dataset("megc2019", root)
    result = prepare(dataset, config_for_model(model), progress=False)
    classes = tuple(dataset.classes)
    x = np.stack([np.asarray(f.arrays["x"], dtype=np.float32) for f in result.features])
    y = np.array([classes.index(f.record.label) for f in result.features])
    return torch.from_numpy(x), torch.from_numpy(y), [f.record.subject for f in result.features], classes


def metrics(results: list[FoldResult], y: torch.Tensor, classes: tuple[str, ...]) -> dict[str, float]:
    true = np.concatenate([y.numpy()[r.test_index] for r in results])
    pred = np.concatenate([r.probs.argmax(1) for r in results])
    m = megc_metrics([classes[i] for i in true], [classes[i] for i in pred], classes)
    return {k: m[k] for k in ("accuracy", "uf1", "uar", "n")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--root", type=Path, help="synthetic benchmark folder (written first if missing)")
    src.add_argument("--random", action="store_true", help="random features of the real composite's size")
    p.add_argument("--model", default="ststnet")
    p.add_argument("--epochs", type=int, default=800)
    p.add_argument("--loop-folds", type=int, default=0, help="run the loop on the first K folds only (0: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    x, y, subjects, classes = random_features(args.seed) if args.random else synthetic_features(args.root, args.model)
    x = x.to(args.device)
    folds = loso(subjects)
    config = TrainConfig(epochs=args.epochs, batch_size=256, optimizer="adam", lr=5e-5, seed=args.seed,
                         threads=args.threads)
    kwargs = {"num_classes": len(classes)}
    k = args.loop_folds or len(folds)

    t0 = time.perf_counter()
    stacked = train_folds(args.model, kwargs, x, y, folds, config, batched=True, progress=False)
    stacked_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = train_folds(args.model, kwargs, x, y, folds[:k], config, batched=False, progress=False)
    loop_s = time.perf_counter() - t0
    loop_all_s = loop_s * len(folds) / k

    out = {
        "model": args.model,
        "features": "random 3x28x28" if args.random else f"synthetic megc2019 at {args.root}",
        "samples": len(x),
        "folds": len(folds),
        "epochs": args.epochs,
        "device": str(x.device),
        "threads": torch.get_num_threads() if not args.threads else args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "stacked_s": round(stacked_s, 2),
        "loop_folds": k,
        "loop_s": round(loop_s, 2),
        "loop_all_folds_s": round(loop_all_s, 2),
        "loop_extrapolated": k < len(folds),
        "speedup": round(loop_all_s / stacked_s, 2),
        "stacked_metrics": metrics(stacked, y, classes),
        "stacked_metrics_on_loop_folds": metrics(stacked[:k], y, classes),
        "loop_metrics": metrics(loop, y, classes),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    ex = f" (extrapolated from {k} of {len(folds)} folds: {loop_s:.1f} s measured)" if k < len(folds) else ""
    print(f"{args.model}, {out['features']}: {len(x)} samples, {len(folds)} LOSO folds, {args.epochs} epochs, "
          f"Adam 5e-5, batch 256, {out['device']}, {out['threads']} threads, torch {torch.__version__}")
    print(f"  fold-batched (all folds):   {stacked_s:9.1f} s")
    print(f"  per-fold loop (all folds):  {loop_all_s:9.1f} s{ex}")
    print(f"  speed-up:                   {out['speedup']:9.2f} x")
    rows = [("fold-batched, all folds", out["stacked_metrics"]),
            (f"fold-batched, first {k} folds", out["stacked_metrics_on_loop_folds"]),
            (f"per-fold loop, first {k} folds", out["loop_metrics"])]
    print(f"  {'':32s} {'accuracy':>9s} {'UF1':>7s} {'UAR':>7s} {'n':>5s}")
    for name, m in rows:
        print(f"  {name:32s} {m['accuracy']:9.4f} {m['uf1']:7.4f} {m['uar']:7.4f} {m['n']:5d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
