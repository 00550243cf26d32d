"""An optional reasoning-length budget for the `rpt`, `span` and `rlpt` rewards. Pure: no I/O, no verl.

The control a reviewer asks for beside RPT (Reinforcement Mid-Training, arXiv 2509.24375, reaches better
next-token accuracy with a fraction of the reasoning by budgeting it): a token budget B on the reasoning
before the final answer, decaying over training, and a reward reduced for reasoning past it. Off by
default; on with three ``reward.reward_kwargs`` (all or none):

- ``length_budget_start`` (tokens at step 0), ``length_budget_end`` (tokens from ``decay_steps`` on),
  ``length_budget_decay_steps``: B(step) = end + (start - end) * max(0, 1 - step / decay_steps) (linear).
- reward' = reward * factor, factor = 1 when the reasoning has at most B tokens, else
  max(0, 1 - (L - B) / B): linear down to 0 at 2B. ``acc`` stays the unshaped 0/1 outcome.

The reasoning is the response before its final answer (the last prediction tag for `rlpt`/`span`, the last
``\\boxed{`` for `rpt`), counted in the policy's tokens; a response without an answer is all reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LENGTH_KWARGS", "LengthBudget", "length_budget", "budget_factor", "reasoning_prefix"]

LENGTH_KWARGS = ("length_budget_start", "length_budget_end", "length_budget_decay_steps")


@dataclass(frozen=True)
class LengthBudget:
    start: int
    end: int
    decay_steps: int

    def at(self, step: int) -> float:
        """B at a training step.

        >>> b = LengthBudget(4000, 1000, 100)
        >>> b.at(0), b.at(50), b.at(100), b.at(900)
        (4000.0, 2500.0, 1000.0, 1000.0)
        """
        left = max(0.0, 1.0 - max(0, step) / self.decay_steps)
        return float(self.end + (self.start - self.end) * left)


def length_budget(kwargs: dict) -> LengthBudget | None:
    """The budget set in ``reward.reward_kwargs``, checked; None when it is off. Raises ValueError naming the
    setting.

    >>> length_budget({}) is None, length_budget({"length_budget_start": 10, "length_budget_end": 5,
    ...     "length_budget_decay_steps": 2})
    (True, LengthBudget(start=10, end=5, decay_steps=2))
    """
    given = [k for k in LENGTH_KWARGS if k in kwargs]
    if not given:
        return None
    if len(given) != len(LENGTH_KWARGS):
        missing = [k for k in LENGTH_KWARGS if k not in kwargs]
        raise ValueError(f"the length budget needs all of {list(LENGTH_KWARGS)}; missing {missing}")
    values = {k: kwargs[k] for k in LENGTH_KWARGS}
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"reward.reward_kwargs.{k} must be a whole number >= 1, got {v!r}")
    if values["length_budget_end"] > values["length_budget_start"]:
        raise ValueError("length_budget_end must be <= length_budget_start (the budget decays over training)")
    return LengthBudget(values["length_budget_start"], values["length_budget_end"], values["length_budget_decay_steps"])


def budget_factor(reasoning_tokens: int, budget: float) -> float:
    """The share of the reward kept for ``reasoning_tokens`` under ``budget``.

    >>> budget_factor(800, 1000), budget_factor(1500, 1000), budget_factor(2000, 1000), budget_factor(5000, 1000)
    (1.0, 0.5, 0.0, 0.0)
    """
    if reasoning_tokens <= budget:
        return 1.0
    return max(0.0, 1.0 - (reasoning_tokens - budget) / budget)


def reasoning_prefix(response: str, answer_marker: str) -> str:
    """The response before its final answer (the last ``answer_marker``); all of it when there is none.

    >>> reasoning_prefix("think think <|startofprediction|>A<|endofprediction|>", "<|startofprediction|>")
    'think think '
    >>> reasoning_prefix("no answer", "<|startofprediction|>")
    'no answer'
    """
    cut = response.rfind(answer_marker)
    return response if cut < 0 else response[:cut]


def step_of(value: Any) -> int:
    """The training step verl passes with each sample (``global_steps``; 0 when absent, as outside training).

    >>> import numpy as np
    >>> step_of(np.array(7)), step_of(None), step_of("x")
    (7, 0, 0)
    """
    try:
        return int(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return 0


BUDGET_KEYS = ("reasoning_tokens", "length_budget", "length_factor")  # extra info a budgeted manager adds


def shape(score: float, reasoning_tokens: int, budget: LengthBudget, step: int) -> tuple[float, dict]:
    """(shaped reward, the budget's extra info) for one response whose reasoning has ``reasoning_tokens``.

    >>> shape(1.0, 6, LengthBudget(4, 4, 1), 0)
    (0.5, {'reasoning_tokens': 6.0, 'length_budget': 4.0, 'length_factor': 0.5})
    """
    b = budget.at(step)
    factor = budget_factor(reasoning_tokens, b)
    return score * factor, {"reasoning_tokens": float(reasoning_tokens), "length_budget": b, "length_factor": factor}
