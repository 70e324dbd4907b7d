"""Grids of recipe values (``--grid`` for ``mertk sweep``, ``--select-grid`` and a recipe's
``select_grid`` for nested selection): parsing ``KEY=V1,V2``, expanding every combination as ``--set``
strings, and the trainer settings a selection grid may choose. Shared by the sweep, the recipe's
validation and the selection, so it imports nothing of the run engine but the trainer's configuration."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Sequence

import yaml

from ..errors import MertkError
from .trainconfig import TrainConfig


def split_values(text: str) -> list[str]:
    """``v1,v2`` split at the commas outside brackets (``[5,-5],[]`` gives two values)."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[{(" and 1 or 0
        depth -= ch in "]})" and 1 or 0
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return [v.strip() for v in out]


def yaml_value(text: str) -> str:
    """``text`` as a value YAML reads as meant: YAML 1.1 reads ``1e-3`` (no dot) as a string, so such a
    number is rewritten with a dot (``1.0e-3``); anything else is kept."""
    mantissa, e, exponent = text.strip().lower().partition("e")
    if isinstance(yaml.safe_load(text), str) and e and "." not in mantissa:
        try:
            float(text)
        except ValueError:
            return text
        return f"{mantissa}.0e{exponent}"
    return text


def parse_grid(grid: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["train.lr=1e-3,5e-5", ...]`` as ``[("train.lr", ["1e-3", "5e-5"]), ...]``."""
    out: list[tuple[str, list[str]]] = []
    for item in grid:
        key, sep, values = item.partition("=")
        key = key.strip()
        vals = [yaml_value(v) for v in split_values(values)] if sep else []
        if not key or not vals or any(not v for v in vals):
            raise MertkError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. train.lr=1e-3,5e-5)")
        if key in (k for k, _ in out):
            raise MertkError(f"--grid {item!r}: key {key} is given twice")
        out.append((key, vals))
    return out


def combinations(grid: Sequence[tuple[str, list[str]]]) -> list[list[str]]:
    """Every combination of the grid as ``--set`` strings, the first key varying slowest."""
    keys = [k for k, _ in grid]
    return [[f"{k}={v}" for k, v in zip(keys, values)] for values in itertools.product(*(v for _, v in grid))]


def parse_select_grid(grid: Sequence[str]) -> list[dict[str, Any]]:
    """The combinations of a ``train.*`` grid as TrainConfig field values (YAML-parsed)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    parsed = parse_grid(grid)
    for key, _ in parsed:
        name = key.removeprefix("train.")
        if not key.startswith("train.") or name not in fields or name in ("seed", "select", "val_fraction"):
            raise MertkError(f"--select-grid {key}: only trainer keys can be selected inside a fold "
                             f"(train.lr, train.epochs, ...)")
    return [{s.partition("=")[0].removeprefix("train."): yaml.safe_load(s.partition("=")[2]) for s in combo}
            for combo in combinations(parsed)]


def with_select_grid(recipe: Any, grid: Sequence[str]) -> Any:
    """``recipe`` with ``grid`` merged into its ``select_grid`` (a key in ``grid`` replaces the recipe's
    entry for that key; the order is the recipe's, then the new keys)."""
    if not grid:
        return recipe
    given = dict(parse_grid(grid))
    kept = [item for item, (key, _) in zip(recipe.select_grid, parse_grid(recipe.select_grid)) if key not in given]
    return dataclasses.replace(recipe, select_grid=(*kept, *grid))
