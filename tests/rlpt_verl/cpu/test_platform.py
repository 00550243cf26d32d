"""The opt-in CPU platform: chosen only by VERL_PLATFORM=cpu, and each patch does what it says (and is
needed: the unpatched call fails the way the e2e step failed)."""

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import json, verl\n"
    "from verl.plugin.platform import PlatformRegistry\n"
    "from verl.plugin.platform.platform_manager import _detect_platform_name\n"
    "from rlpt_verl.cpu import APPLIED\n"
    "print(json.dumps({'registered': PlatformRegistry.get('cpu') is not None,\n"
    "  'detected': _detect_platform_name(), 'applied': APPLIED}))\n"
)


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    p = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env={**clean, **env}, cwd="/", timeout=300
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_cpu_platform_is_opt_in():
    off = probe()
    assert not off["registered"] and off["applied"] == [] and off["detected"] != "cpu"
    on = probe(VERL_PLATFORM="cpu")
    assert on["registered"] and on["detected"] == "cpu"
    assert on["applied"] == ["gloo_backend_string", "fsdp_cpu_module_states"] or "shm_weight_receiver" in on["applied"]


def test_platform_answers_like_a_cpu():
    from verl.plugin.platform import PlatformRegistry

    from rlpt_verl.cpu.platform import CPUDeviceId, PlatformCPU

    assert PlatformRegistry.get("cpu") is PlatformCPU  # registered on import of the module
    p = PlatformCPU()
    dev = p.current_device()
    assert dev == "cpu" and f"{p.device_name}:{dev}" == "cpu:0" and isinstance(dev, CPUDeviceId)
    import torch

    assert torch.zeros(1).to(dev).device.type == "cpu"
    assert p.communication_backend_name() == "gloo" and p.ray_resource_options(1) == {"num_gpus": 1}
    m = p.device_module
    m.empty_cache()
    assert m.memory_allocated() == 0 and m.device_count() == 1
    free, total = m.mem_get_info()
    assert 0 < free <= total
    state = m.get_rng_state()
    a = torch.rand(3)
    m.set_rng_state(state)
    assert torch.equal(a, torch.rand(3))  # the CPU generator is the one saved and restored
    os.environ.pop("VERL_PLATFORM", None)
    assert p.is_platform_available(use_smi_check=True) is False  # auto-detection never picks it


def _one_rank_group(tmp_path):
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    return dist, f"file://{tmp_path}/store"


def test_gloo_backend_string_patch(tmp_path):
    """verl builds 'cpu:gloo,cpu:gloo' on this platform; torch rejects it, the patch folds it."""
    from rlpt_verl.cpu import patches

    dist, init = _one_rank_group(tmp_path)
    if "gloo_backend_string" not in patches.APPLIED:
        with pytest.raises(Exception, match="[Dd]uplicate"):
            dist.init_process_group(backend="cpu:gloo,cpu:gloo", init_method=init + "0", rank=0, world_size=1)
    patches.gloo_backend_string()
    dist.init_process_group(backend="cpu:gloo,cpu:gloo", init_method=init + "1", rank=0, world_size=1)
    try:
        import torch

        t = torch.ones(2)
        dist.all_reduce(t)
        assert t.tolist() == [1.0, 1.0]
    finally:
        dist.destroy_process_group()


def test_fsdp_cpu_module_states_patch(tmp_path):
    """FSDP1 with sync_module_states=True (what verl passes) on CPU tensors over gloo."""
    import torch
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    from rlpt_verl.cpu import patches

    patches.gloo_backend_string()
    dist, init = _one_rank_group(tmp_path)
    dist.init_process_group(backend="cpu:gloo", init_method=init + "2", rank=0, world_size=1)
    try:
        if "fsdp_cpu_module_states" not in patches.APPLIED:
            with pytest.raises(ValueError, match="CPU parameters"):
                FSDP(torch.nn.Linear(4, 2), device_id="cpu", sync_module_states=True)
        patches.fsdp_cpu_module_states()
        model = FSDP(torch.nn.Linear(4, 2), device_id="cpu", sync_module_states=True)
        loss = model(torch.ones(3, 4)).sum()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
    finally:
        dist.destroy_process_group()
