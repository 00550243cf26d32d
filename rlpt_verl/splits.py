"""Deterministic held-out splits for streaming converters: membership from a seeded hash, no state."""

from __future__ import annotations

import hashlib


def held_out(seed: int, key: str, fraction: float) -> bool:
    """Whether ``key`` falls in the held-out ``fraction`` for ``seed`` (the same answer in every run).

    >>> held_out(0, "a", 0.0), held_out(0, "a", 0.999999)
    (False, True)
    """
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction
