"""Small fake dataset trees in the native layouts, for tests (torchvision's ``inject_fake_data`` idea).

Each loader registers its writer as ``fake=`` metadata in ``DATASETS``; :func:`write_fake_tree`
dispatches by dataset name. Each writer returns a dict of what it wrote (rows, clips, skipped,
labels, ...) so a test can compare a loader's result with the writer's own accounting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_fake_tree(name: str, root: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Write a fake copy of dataset ``name`` under ``root``; returns the writer's accounting."""
    from .. import open_dataset  # noqa: F401  (imports every loader, which registers the writers)
    from ...registry import DATASETS

    entry = DATASETS.entry(name)
    writer = entry.meta.get("fake")
    if writer is None:
        raise KeyError(f"dataset {name!r} has no fake-tree writer")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return writer(root, **kwargs)


def fake_tree_names() -> list[str]:
    """Datasets that ship a fake-tree writer."""
    from .. import open_dataset  # noqa: F401
    from ...registry import DATASETS

    return [e.name for e in DATASETS if e.meta.get("fake") is not None]
