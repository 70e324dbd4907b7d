"""One registry pattern for every pluggable thing: datasets, models, feature families, flow methods, spotters,
recipes, and the fake-tree writers that the dataset tests use (``FAKE_TREES``, keyed by dataset name).

A ``Registry`` maps a name to an object (a class or a factory) plus free-form metadata. Unknown names
raise :class:`~mertk.errors.UnknownNameError` listing the valid names; registering a name twice raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A named collection of objects of one kind (``kind`` is used in error messages)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str | None = None, **meta: Any) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name", paper="...")``; the name defaults to ``obj.__name__``."""

        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__")
            self.add(key, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T, **meta: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, obj, dict(meta))

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; choose from: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)


DATASETS: Registry[Any] = Registry("dataset")
MODELS: Registry[Any] = Registry("model")
FEATURES: Registry[Any] = Registry("feature")
FLOWS: Registry[Any] = Registry("flow method")
SPOTTERS: Registry[Any] = Registry("apex spotter")
RECIPES: Registry[Any] = Registry("recipe")
FAKE_TREES: Registry[Any] = Registry("fake-tree writer")
