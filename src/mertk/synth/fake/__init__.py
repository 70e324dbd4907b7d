"""Small fake dataset trees in the native layouts, for tests (torchvision's ``inject_fake_data`` idea).

Each writer registers itself in :data:`mertk.registry.FAKE_TREES` under the name of the dataset it
fakes; :func:`write_fake_tree` dispatches by that name. Each writer returns a dict of what it wrote
(rows, clips, skipped, expected_skips, labels, ...) so a test can compare a loader's result with the
writer's own accounting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...registry import FAKE_TREES
from . import composite, long, micro, newer, static  # noqa: F401  (registration)

__all__ = ["write_fake_tree", "fake_tree_names"]


def write_fake_tree(name: str, root: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Write a fake copy of dataset ``name`` under ``root``; returns the writer's accounting (an unknown
    name lists the datasets that have a writer)."""
    writer = FAKE_TREES.get(name)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return writer(root, **kwargs)


def fake_tree_names() -> list[str]:
    """Datasets that ship a fake-tree writer."""
    return FAKE_TREES.names()
