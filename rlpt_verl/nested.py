"""Walking nested JSON-like values (dicts, lists, tuples): shared by the decontamination reader and the
config scan that finds which environment variables a recipe reads. Pure logic."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside ``value``, depth first, in order.

    >>> list(strings_in({"a": "x", "b": [1, "y", {"c": ("z",)}]}))
    ['x', 'y', 'z']
    """
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings_in(v)
