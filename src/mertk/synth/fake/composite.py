"""Fake trees of the composites: each component's fake tree in its usual folder under one root."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from ...data.composite import COMPOSITES
from ...registry import DATASETS, FAKE_TREES


def write_fake_composite(name: str, root: Path, *, seed: int = 0, awkward: bool = False) -> dict[str, Any]:
    """Write the fake tree of every component of composite ``name`` under ``root/<its first usual
    folder>`` (``CASME2/``, ``SAMM/``, ...), component ``i`` with seed ``seed + i``.

    Returns ``components`` (component -> its writer's accounting), ``skipped`` (their total) and
    ``expected_skips`` (every component's, by record key).
    """
    components: dict[str, dict[str, Any]] = {}
    for i, component in enumerate(COMPOSITES.get(name).components):
        folder = Path(root) / DATASETS.entry(component).meta["folders"][0]
        folder.mkdir(parents=True, exist_ok=True)
        components[component] = FAKE_TREES.get(component)(folder, seed=seed + i, awkward=awkward)
    return {"root": str(root), "components": components,
            "skipped": sum(acc["skipped"] for acc in components.values()),
            "expected_skips": {k: v for acc in components.values() for k, v in acc["expected_skips"].items()}}


for _entry in COMPOSITES:
    FAKE_TREES.add(_entry.name, partial(write_fake_composite, _entry.name))
