"""verl's shared-memory weight transfer (the path taken where CUDA IPC is not) on the CPU platform: with the
patch the rollout receives copies that stay correct after the sender refills the bucket; without it the
receiver hands out views of the shared segment (then overwritten), cannot close it, and the sender waits
forever for its acknowledgement."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import asyncio, importlib.util, json, os, sys, threading, uuid
import verl, torch
from rlpt_verl.cpu import platform  # noqa: F401  (registers "cpu"; VERL_PLATFORM=cpu selects it)
from rlpt_verl.cpu.patches import patch_weight_receiver
# the module itself, without its package (whose __init__ needs vLLM, absent from this venv)
spec = importlib.util.spec_from_file_location(
    "bwt", os.path.join(os.path.dirname(verl.__file__), "workers/rollout/vllm_rollout/bucketed_weight_transfer.py"))
bwt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bwt)
BucketedWeightReceiver, BucketedWeightSender = bwt.BucketedWeightReceiver, bwt.BucketedWeightSender
if not os.environ.get("UNPATCHED"):
    patch_weight_receiver(BucketedWeightReceiver)

handle = f"ipc:///tmp/rlpt-test-{uuid.uuid4().hex}.sock"
sent = {f"w{i}": torch.full((100_000,), float(i + 1)) for i in range(5)}  # 400 kB each, 1 MB buckets
kept, error = {}, []

def loader(weights, is_last):  # a loader that keeps what it is given, as a model's parameters would
    for name, t in weights:
        kept[name] = t

def receive():
    try:
        BucketedWeightReceiver(handle, torch.device("cpu"), use_shm=True).receive_weights(loader)
    except BaseException as e:
        error.append(f"{type(e).__name__}: {e}")

t = threading.Thread(target=receive)
t.start()
asyncio.run(BucketedWeightSender(handle, bucket_size_mb=1, use_shm=True).async_send_weights(iter(sent.items())))
t.join(60)
correct = sorted(n for n in sent if n in kept and torch.equal(kept[n], sent[n]))
print(json.dumps({"error": error, "correct": correct, "received": sorted(kept)}))
"""


def transfer(timeout: float = 300, **env):
    clean = {k: v for k, v in os.environ.items() if k != "UNPATCHED"}
    try:
        p = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env={**clean, "VERL_PLATFORM": "cpu", **env},
        )
    except subprocess.TimeoutExpired:
        return {"hung": True}
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_patched_receiver_gets_lasting_copies():
    r = transfer()
    assert r["error"] == [] and r["correct"] == [f"w{i}" for i in range(5)]


def test_unpatched_receiver_fails_or_corrupts():
    r = transfer(timeout=90, UNPATCHED="1")  # the sender waits for an ack that never comes: it hangs
    assert r.get("hung") or r["error"] or len(r["correct"]) < 5, r
