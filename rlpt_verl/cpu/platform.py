"""A ``cpu`` platform for verl 0.9.1's platform registry: one tiny GRPO step on a machine with no GPU.

Opt-in only: :func:`rlpt_verl.cpu.enable` registers it when ``VERL_PLATFORM=cpu`` is set, and
:meth:`PlatformCPU.is_platform_available` answers ``False`` otherwise, so verl's auto-detection never
picks it on a GPU machine. It exists for smoke tests (``make e2e``), not for training speed.
"""

from __future__ import annotations

import os
import types
from contextlib import contextmanager
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry


class CPUDeviceId(str):
    """What ``current_device()`` returns: equal to ``"cpu"`` but formatted as ``"0"``.

    verl uses the device id three ways: ``FSDP(device_id=...)`` and ``tensor.to(device_id)`` (an int 0
    would mean ``cuda:0`` to torch; ``"cpu"`` is right), and ``f"{device_name}:{device_id}"`` (``"cpu:0"``
    is right, ``"cpu:cpu"`` is not). A ``str`` equal to ``"cpu"`` whose ``format`` gives ``"0"`` serves both.
    """

    def __new__(cls) -> CPUDeviceId:
        return super().__new__(cls, "cpu")

    def __format__(self, spec: str) -> str:
        return format(0, spec) if spec else "0"

    def __int__(self) -> int:
        return 0

    def __index__(self) -> int:
        return 0


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _device_module() -> types.ModuleType:
    """``torch.cpu`` plus the ``torch.cuda`` calls verl makes on ``get_torch_device()`` (memory stats,
    cache, RNG state), answered as a CPU would: nothing to free, no device memory, the CPU RNG."""
    m = types.ModuleType("rlpt_verl_cpu_device")
    for name in dir(torch.cpu):
        if not name.startswith("_"):
            setattr(m, name, getattr(torch.cpu, name))
    m.current_device = lambda: CPUDeviceId()
    m.device_count = lambda: 1
    m.set_device = _noop
    m.is_available = lambda: True
    m.empty_cache = _noop
    m.ipc_collect = _noop
    m.set_per_process_memory_fraction = _noop
    m.memory_allocated = _zero
    m.memory_reserved = _zero
    m.max_memory_allocated = _zero
    m.max_memory_reserved = _zero
    m.reset_peak_memory_stats = _noop
    m.get_device_name = lambda *a: "cpu"
    m.get_rng_state = lambda *a: torch.get_rng_state()
    m.set_rng_state = lambda state, *a: torch.set_rng_state(state)
    m.manual_seed = torch.manual_seed
    m.manual_seed_all = torch.manual_seed

    def mem_get_info(*args: Any) -> tuple[int, int]:
        import psutil

        vm = psutil.virtual_memory()
        return vm.available, vm.total

    m.mem_get_info = mem_get_info
    return m


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """Device ``cpu``, collectives on ``gloo``; Ray schedules workers on logical GPUs (``ray_init.num_gpus``)
    so verl's resource pools need no change."""

    _module: types.ModuleType | None = None

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        if PlatformCPU._module is None:
            PlatformCPU._module = _device_module()
        return PlatformCPU._module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        from . import requested

        return requested()

    def current_device(self) -> CPUDeviceId:  # type: ignore[override]
        return CPUDeviceId()

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def rollout_env_vars(self) -> dict[str, str]:
        from . import VLLM_CPU_DEFAULTS

        return {k: os.environ.get(k, v) for k, v in VLLM_CPU_DEFAULTS.items()}

    def cudart(self) -> Any:
        return None
