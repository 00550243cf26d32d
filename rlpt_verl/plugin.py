"""verl plugin entry point (group ``verl.plugins``): registers this package's components on ``import verl``.

Silent and idempotent: importing it twice (entry point plus a ``pkg://`` path) is a no-op the second
time, because registration happens in module bodies that Python runs once per process. It imports only
verl's reward-loop registry (which verl's trainer imports anyway) and our small reward modules.
"""

from __future__ import annotations

from . import cpu as _cpu

# Importing the modules runs their @register(...) decorators.
from .reward import rlpt_manager, rpt_manager, span_manager  # noqa: F401

if _cpu.requested():  # opt-in CPU platform for smoke tests; never on a GPU machine unless asked
    _cpu.enable()

REWARD_MANAGERS = ("rlpt", "rpt", "span")


def registered_reward_managers() -> list[str]:
    """Our reward manager names that verl's registry currently knows."""
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

    return [name for name in REWARD_MANAGERS if name in REWARD_MANAGER]
