"""Grids of recipe values (``--grid`` for ``mertk sweep``, ``--select-grid`` for nested selection):
parsing ``KEY=V1,V2`` and expanding every combination as ``--set`` strings. Shared by both, so it
imports nothing of the run engine."""

from __future__ import annotations

import itertools
from typing import Sequence

from ..errors import MertkError


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
    import yaml

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
