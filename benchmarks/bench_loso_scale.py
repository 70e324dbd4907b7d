"""Wall time of the 68-fold MEGC 2019 LOSO of ``ststnet-megc2019`` (800 epochs), serial and on Ray.

The inputs are a random stand-in of the real composite's shapes (``bench_fold_batching.random_features``:
442 samples, 68 subjects, 3x28x28), laid out as the pipeline hands them to the trainer (channels-last
arrays seen channels-first). The recipe's trainer is used (Adam 5e-5, batch 256). ``--folds K`` folds
are trained for ``--epochs E`` epochs and the wall time is extrapolated to 68 folds x 800 epochs
(``measured * 68 / K * 800 / E``); the output says so. ``--workers 1`` trains serially in this process
on ``--threads`` threads; ``--workers N > 1`` trains the folds as Ray tasks on a local instance of N
CPUs (:func:`mertk.engine.parallel.train_folds_ray`, ``--threads`` per worker). Start-up is not
counted: a one-epoch warm-up (one fold per worker) first pays torch's lazy imports and Ray's worker
start, which a real 800-epoch run pays once per process.

Usage: ``python benchmarks/bench_loso_scale.py [--workers N] [--threads T] [--folds K] [--epochs E] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fold_batching import random_features  # noqa: E402

from mertk.engine.protocols import loso  # noqa: E402
from mertk.engine.train import train_folds  # noqa: E402
from mertk.engine.trainconfig import TrainConfig  # noqa: E402

FULL_FOLDS, FULL_EPOCHS = 68, 800


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads per process (0: cores / workers)")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    x, y, subjects, _ = random_features(0)
    x = torch.from_numpy(np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1))).permute(0, 3, 1, 2)
    folds = loso(subjects)[: args.folds]
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    config = TrainConfig(epochs=args.epochs, batch_size=256, lr=5e-5, threads=threads)
    warm = TrainConfig(epochs=1, batch_size=256, lr=5e-5, threads=threads)
    if args.workers == 1:
        train_folds("ststnet", {"num_classes": 3}, x, y, folds[:1], warm, batched=False, progress=False)
        t0 = time.perf_counter()
        train_folds("ststnet", {"num_classes": 3}, x, y, folds, config, batched=False, progress=False)
        wall = time.perf_counter() - t0
    else:
        from mertk.engine.parallel import ray_session, train_folds_ray

        with ray_session(args.workers), tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as w:
            train_folds_ray("ststnet", {"num_classes": 3}, x, y, folds[: args.workers], warm, Path(w),
                            workers=args.workers, progress=False)
            t0 = time.perf_counter()
            train_folds_ray("ststnet", {"num_classes": 3}, x, y, folds, config, Path(tmp), workers=args.workers,
                            progress=False)
            wall = time.perf_counter() - t0
    full = wall * FULL_FOLDS / len(folds) * FULL_EPOCHS / args.epochs
    out = {"workers": args.workers, "threads_per_worker": threads, "folds_measured": len(folds),
           "epochs_measured": args.epochs, "measured_s": round(wall, 2),
           "per_fold_800_epochs_s": round(wall * args.workers / len(folds) * FULL_EPOCHS / args.epochs, 1),
           "extrapolated_68_folds_800_epochs_h": round(full / 3600, 3), "load_average": os.getloadavg()[0]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.workers} worker(s) x {threads} thread(s): {len(folds)} folds x {args.epochs} epochs in {wall:.1f} s;"
              f" extrapolated to {FULL_FOLDS} folds x {FULL_EPOCHS} epochs: {full / 3600:.2f} h "
              f"(load average {out['load_average']:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
