"""``mertk sweep``: every combination of a grid of recipe values, over seeds, as ordinary runs.

Each combination and seed is one :func:`~mertk.engine.run.run_recipe` call with the grid's values and
``seed=S`` as ``--set`` overrides, so it is an ordinary resumable run directory (a killed sweep started
again skips the finished runs' folds). With ``workers > 1`` or a Ray address every run's folds go
through the same Ray pool, started once for the whole sweep. The sweep ends with the ``mertk compare``
figures of every run and, per combination, their mean ± standard deviation over the seeds, per dataset.
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import MertkError
from ..engine.grid import combinations, parse_grid


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` as ``[0, 1, 2]``."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise MertkError(f"--seeds {text!r}: expected comma-separated integers (e.g. 0,1,2)") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise MertkError(f"--seeds {text!r}: give distinct integers")
    return seeds


def run_sweep(recipe: str, grid: Sequence[str], seeds: Sequence[int], *, overrides: Sequence[str] = (),
              train_workers: int = 1, ray_address: str | None = None, log: Callable[[str], None] | None = None,
              **run_kwargs: Any) -> dict[str, Any]:
    """Run every grid combination for every seed; returns ``{"runs": [{"sets", "seed", "run_dir"}],
    "compare": compare(...), "summary": seed_summary(...)}``. ``run_kwargs`` go to ``run_recipe``."""
    from ..report.compare import compare, seed_summary
    from ..engine import parallel
    from ..engine.run import run_recipe

    say = log or (lambda _line: None)
    combos = combinations(parse_grid(grid)) if grid else [[]]
    pool = parallel.wanted(train_workers, ray_address, say)
    runs = []
    with parallel.ray_session(train_workers, ray_address) if pool else nullcontext():
        for i, combo in enumerate(combos):
            for seed in seeds:
                say(f"sweep {len(runs) + 1}/{len(combos) * len(seeds)}: {' '.join(combo) or recipe} seed={seed}")
                run_dir = run_recipe(recipe, overrides=[*overrides, *combo, f"seed={seed}"], log=log,
                                     train_workers=train_workers if pool else 1, ray_address=ray_address,
                                     **run_kwargs)
                runs.append({"sets": combo, "seed": seed, "group": i, "run_dir": str(run_dir)})
    result = compare([r["run_dir"] for r in runs])
    groups = [[r["run_dir"] for r in runs if r["group"] == i] for i in range(len(combos))]
    labels = [f"{recipe}" + (" " + " ".join(c) if c else "") for c in combos]
    return {"runs": runs, "compare": result, "summary": seed_summary(result, groups, labels)}


HELP = "run every combination of a grid of recipe values over seeds (mean ± std over seeds per dataset)"


def add_sweep_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``mertk sweep`` to an argparse sub-parsers object."""
    from ..engine.parallel import add_ray_arguments

    p = sub.add_parser("sweep", help=HELP, description=HELP + ". Every run is an ordinary resumable run directory.")
    p.add_argument("recipe", help="a shipped recipe name or a recipe YAML file")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="values of one recipe key (repeatable), e.g. --grid train.lr=1e-3,5e-5")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override shared by every run")
    p.add_argument("--data", type=Path, default=None, help="folder holding the datasets (default $MERTK_DATA or .)")
    p.add_argument("--out", type=Path, default=None, help="folder for run directories (default runs)")
    p.add_argument("--cache", type=Path, default=None, help="feature cache")
    add_ray_arguments(p)
    p.add_argument("--markdown", type=Path, default=None, metavar="OUT.md", help="also write the tables as Markdown")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run :func:`run_sweep` for parsed arguments and print the tables."""
    from ..report.compare import format_compare, format_seed_summary

    result = run_sweep(args.recipe, args.grid, parse_seeds(args.seeds), overrides=args.set, data=args.data,
                       out=args.out, cache_dir=args.cache, progress=not (args.quiet or args.json),
                       train_workers=args.workers, ray_address=args.ray_address,
                       log=None if (args.quiet or args.json) else print)
    text = format_seed_summary(result["summary"], markdown=False) + "\n" + format_compare(result["compare"], markdown=False)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(format_seed_summary(result["summary"]) + "\n" + format_compare(result["compare"]))
    print(json.dumps(result, indent=2, default=str) if args.json else text)
    return 0
