"""Opt-in CPU platform for verl 0.9.1 (``VERL_PLATFORM=cpu``): a smoke test of a whole GRPO step on a
machine with no GPU (``make e2e``, ``rlpt doctor RECIPE --smoke``). Nothing here runs on a GPU machine
unless that variable is set: :mod:`rlpt_verl.plugin` calls :func:`enable` only then.
"""

from __future__ import annotations

import os

from .patches import APPLIED  # noqa: F401

# vLLM-CPU settings the rollout needs on a small machine (1 GB KV cache, no core pinning); a value already
# in the environment wins. Used by the platform for the rollout processes and by the smoke command line.
VLLM_CPU_DEFAULTS: dict[str, str] = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}


def requested() -> bool:
    """True when this process asked for the CPU platform (``VERL_PLATFORM=cpu``)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


def enable() -> None:
    """Register the ``cpu`` platform and apply the verl/torch patches (idempotent). verl's engine
    registry has FSDP for ``cuda``/``npu`` only; ``VERL_ENGINE_DEVICE=cuda`` (verl's own switch, read in
    ``EngineRegistry.get_engine_cls``) selects that engine, which runs on CPU tensors unchanged."""
    from . import platform  # noqa: F401  (registers "cpu")
    from .patches import apply_verl_patches

    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    apply_verl_patches()


def vllm_plugin() -> None:
    """``vllm.general_plugins`` entry point: runs in every vLLM process (engine core, workers)."""
    if requested():
        from .patches import vllm_cpu_linear_reloadable

        vllm_cpu_linear_reloadable()
