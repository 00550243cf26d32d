"""The unit that flows through every step, and the per-step accounting."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Document:
    text: str
    id: str
    source: str  # the file (or dataset folder) it came from
    meta: dict = field(default_factory=dict)  # what steps learned: cluster, PII counts, quality score


@dataclass
class StepStats:
    """What a step forwarded and what it dropped, by reason: nothing is lost silently."""

    name: str
    forwarded: int = 0
    dropped: Counter = field(default_factory=Counter)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict:
        return {"forwarded": self.forwarded, "dropped": dict(sorted(self.dropped.items()))}
