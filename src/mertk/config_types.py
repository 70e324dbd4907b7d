"""Check configuration values against their dataclass's type annotations (and optional ranges).

Every configuration dataclass (:class:`~mertk.preprocess.pipeline.PrepareConfig`,
:class:`~mertk.engine.trainconfig.TrainConfig`, the recipe sections) calls :func:`check_fields` in its
``__post_init__``, so a value from ``--set`` or from a YAML file that has the wrong type is refused
with a message naming the key, and a field added later is checked without more code::

    eye_mask must be true or false, got 'maybe'

A field may declare a range in its metadata: ``field(default=0, metadata={"range": (0, None)})``
(inclusive bounds, ``None`` for open). Values are normalised where that is lossless: a YAML list
becomes the declared tuple, an integer a float, a mapping the ``(name, value)`` pairs of a
``tuple[tuple[str, Any], ...]`` field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MertkError

_NO = object()


class _Mismatch(Exception):
    def __init__(self, expected: str):
        self.expected = expected


def _kind(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is Any:
        return "any value"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_kind(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(_kind(a) for a in args)})"
        return f"a list (each {_kind(args[0]) if args else 'any value'})"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


#: ``5e-5``: PyYAML follows YAML 1.1, whose floats need a dot, so it reads such a value (in a recipe file
#: or a ``--set``) as text; YAML 1.2 and Python read it as a number, and so does a float field here.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(tp: Any, value: Any) -> Any:
    """``value`` as type ``tp`` (losslessly normalised), or raise :class:`_Mismatch`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch(_kind(tp))
    if tp is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise _Mismatch(_kind(tp))
    if tp is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return value if type(value) is int else int(value)
        raise _Mismatch(_kind(tp))
    if tp is float:
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Mismatch("a finite number")
            return float(value)
        raise _Mismatch(_kind(tp))
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(_kind(tp))
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _Mismatch("a path")
    if origin in (typing.Union, types.UnionType):
        for arm in sorted(args, key=lambda a: a is not type(None) and a is not bool):  # exact arms first
            try:
                return _coerce(arm, value)
            except _Mismatch:
                continue
        raise _Mismatch(_kind(tp))
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch(_kind(tp))
    if origin in (tuple, list):
        variadic = origin is list or (len(args) == 2 and args[1] is Ellipsis)
        if variadic and value is None:
            value = []  # an empty YAML key
        if variadic and isinstance(value, Mapping) and args and typing.get_origin(args[0]) is tuple:
            value = list(value.items())  # a mapping given for (name, value) pairs
        if not isinstance(value, (list, tuple)):
            if variadic and origin is tuple and value is not None and not isinstance(value, Mapping):
                value = [value]  # one value where a list is allowed
            else:
                raise _Mismatch(_kind(tp))
        try:
            if variadic:
                element = args[0] if args else Any
                items = [_coerce(element, v) for v in value]
            else:
                if len(value) != len(args):
                    raise _Mismatch(_kind(tp))
                items = [_coerce(a, v) for a, v in zip(args, value)]
        except _Mismatch:
            raise _Mismatch(_kind(tp)) from None
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch(_kind(tp))
        key_tp, value_tp = args if len(args) == 2 else (Any, Any)
        return {_coerce(key_tp, k): _coerce(value_tp, v) for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch(_kind(tp))
    return value  # an annotation this module does not model is not checked


def _in_range(value: Any, bounds: tuple[Any, Any]) -> bool:
    lo, hi = bounds
    numbers = value if isinstance(value, tuple) else (value,)
    return all((lo is None or v >= lo) and (hi is None or v <= hi) for v in numbers)


def _range_text(bounds: tuple[Any, Any]) -> str:
    lo, hi = bounds
    if hi is None:
        return f">= {lo}"
    if lo is None:
        return f"<= {hi}"
    return f"between {lo} and {hi}"


def check_value(cls: type, name: str, value: Any, *, error: type[Exception] = MertkError, prefix: str = "") -> Any:
    """``value`` of field ``name`` of dataclass ``cls``, checked and normalised; else ``error`` naming
    ``prefix + name`` (e.g. ``eye_mask must be true or false, got 'maybe'``)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    try:
        out = _coerce(hints.get(name, Any), value)
    except _Mismatch as exc:
        raise error(f"{prefix}{name} must be {exc.expected}, got {value!r}") from None
    bounds = fields[name].metadata.get("range") if name in fields else None
    if bounds is not None and not _in_range(out, bounds):
        raise error(f"{prefix}{name} must be {_range_text(bounds)}, got {value!r}")
    return out


def check_fields(instance: Any, *, error: type[Exception] = MertkError, prefix: str = "") -> None:
    """Check (and normalise in place) every field of a frozen dataclass instance; call it first in
    ``__post_init__``."""
    cls = type(instance)
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        checked = check_value(cls, f.name, value, error=error, prefix=prefix)
        if checked is not value:
            object.__setattr__(instance, f.name, checked)
