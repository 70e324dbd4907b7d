"""LOSO folds (and sweeps of runs) in parallel on Ray: a local instance mertk starts, or a cluster.

:func:`train_folds_ray` sends every fold still to do as one Ray task. A task trains its whole fold
with :func:`~mertk.engine.train.train_folds` (the per-fold trainer: the fold's initialisation,
shuffling and dropout derive from ``(seed, fold name)`` alone, so each fold's predictions equal the
serial per-fold run's), on its share of the CPU threads, and writes the fold file into the run
directory itself (:func:`~mertk.engine.rundir.save_fold`, atomic). A killed driver or a dead worker
therefore loses at most the folds in flight, which the next call (serial or parallel) trains again.
Ray retries a task whose worker died twice; a fold whose retries die too stops the run with one line
naming it (the folds still in flight are cancelled), and the same command then trains what is left. On a cluster (``address``) the run directory must lie on a
file system every node sees, and every node needs mertk and torch installed.

Ray is imported only here and only when asked for (``--workers N`` with N > 1, or ``--ray-address``):
without it the serial trainer runs as before.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import MertkError
from ..progress import ProgressBar


def ray_available() -> bool:
    """Whether Ray can be imported."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def wanted(workers: int, address: str | None, log: Callable[[str], None] = lambda _line: None) -> bool:
    """Whether folds go to Ray: more than one worker or a cluster address, and Ray importable."""
    if workers <= 1 and not address:
        return False
    if not ray_available():
        if address:
            raise MertkError(f"--ray-address {address}: Ray is not installed (pip install ray)")
        log(f"Ray is not installed: training the folds one after another instead of on {workers} workers")
        return False
    return True


def add_ray_arguments(p: Any) -> None:
    """``--workers N`` and ``--ray-address ADDR`` on an argparse parser (``mertk train``, ``mertk sweep``)."""
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="train folds in parallel on a local Ray instance of N workers (default 1: serially)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="train folds on an existing Ray cluster (e.g. auto or ray://head:10001)")


def threads_per_worker(workers: int, threads: int = 0) -> int:
    """Torch threads of one worker: ``threads`` when set, else this machine's cores shared out."""
    return threads or max(1, (os.cpu_count() or 1) // max(workers, 1))


@contextmanager
def ray_session(workers: int, address: str | None = None) -> Iterator[None]:
    """Connect to ``address``, or start a quiet local Ray instance of ``workers`` CPUs; an instance
    already running in this process is reused and left running."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def _fold_task(model_name: str, kwargs: dict, x: Any, y: Any, fold: Any, config: Any, init_state: dict | None,
               threads: int, folds_dir: str, selection: Any = None) -> tuple[str, float]:
    """One fold on a worker: train it with ``threads`` torch threads (after choosing its values, with a
    nested ``selection``) and save its fold file."""
    import dataclasses

    import torch

    from .rundir import save_fold
    from .select import select_and_train
    from .train import train_folds

    torch.set_num_threads(threads)
    config = dataclasses.replace(config, threads=threads)
    if selection is not None:
        _, result = select_and_train(model_name, kwargs, x, y, fold, config, selection, init_state)
        return result.fold, result.seconds
    (result,) = train_folds(model_name, kwargs, x, y, [fold], config, init_state=init_state, batched=False,
                            progress=False)
    save_fold(Path(folds_dir), result)
    return result.fold, result.seconds


@contextmanager
def _cancel_on_error(running: dict[Any, str]) -> Iterator[None]:
    """Stop the folds still in flight when the driver gives up, so that none writes after it returned."""
    import ray

    try:
        yield
    except BaseException:
        for ref in running:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or its worker is gone: nothing left to stop
                pass
        raise


def train_folds_ray(model_name: str, kwargs: dict, x: Any, y: Any, folds: Sequence[Any], config: Any,
                    folds_dir: Path, *, workers: int, address: str | None = None, init_state: dict | None = None,
                    progress: bool = True, selection: Any = None) -> dict[str, float]:
    """Train ``folds`` as Ray tasks, each writing ``folds_dir/<fold>.npz``; returns seconds per fold.

    Locally ``workers`` tasks run at once on :func:`threads_per_worker` threads each; on a cluster at
    most ``workers`` are in flight (1 thread each unless ``config.threads``). Progress counts folds
    finished across all workers. With a :class:`~mertk.engine.select.Selection`, every task first
    chooses its fold's values on the fold's inner validation subjects (nested selection).
    """
    import ray

    if not folds:
        return {}
    with ray_session(workers, address):
        threads = threads_per_worker(workers, config.threads) if not address else (config.threads or 1)
        task = ray.remote(num_cpus=1 if not address else threads, max_retries=2)(_fold_task)
        refs = [ray.put(v) for v in (x, y, init_state, selection)]
        pending = list(folds)
        running: dict[Any, str] = {}
        seconds: dict[str, float] = {}
        label = f"{model_name}: {len(folds)} folds on {workers} Ray worker{'s' if workers != 1 else ''}"
        with ProgressBar(progress, len(folds), label) as advance, _cancel_on_error(running):
            while pending or running:
                while pending and len(running) < max(workers, 1):
                    fold = pending.pop(0)
                    running[task.remote(model_name, kwargs, refs[0], refs[1], fold, config, refs[2], threads,
                                        str(folds_dir), refs[3])] = fold.name
                (ref,), _ = ray.wait(list(running), num_returns=1)
                fold_name = running.pop(ref)
                try:
                    name, secs = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    raise (cause if isinstance(cause, MertkError) else MertkError(f"a Ray fold task failed: {exc}")) from None
                except ray.exceptions.RayError as exc:  # the worker died (killed, out of memory) more often than retried
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise MertkError(f"{folds_dir}: the Ray worker training fold {fold_name} died "
                                     f"({type(exc).__name__}{': ' + first if first else ''}); {len(seconds)} of "
                                     f"{len(folds)} folds finished and are saved: run the same command again to "
                                     "train the rest") from None
                seconds[name] = secs
                advance(1)
    return seconds
