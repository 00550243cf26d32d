"""A multi-node Ray cluster on this machine, as users start one (``ray start`` per node), for tests and e2e.

Every node binds 127.0.0.1 (``--node-ip-address``) and runs ``ray start --block`` in a process group of its
own under a temp folder of its own, from an environment given by the caller (a scrubbed one shows what a
cluster node does not inherit from the driver's shell). :meth:`LocalRayCluster.stop` ends only those process
groups and the processes that name its temp folder: never Ray's global stop command, which stops every Ray
on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from rlpt_verl.tools.local_judge import free_port

# what a node keeps of the caller's environment when it is scrubbed: enough to find Python and a home
BASE_ENV = ("PATH", "HOME", "LANG", "TMPDIR")


def scrubbed_env(keep: dict[str, str] | None = None) -> dict[str, str]:
    """The machine's basics (``BASE_ENV``) plus ``keep``: none of the driver's RLPT_* settings or keys."""
    return {**{k: os.environ[k] for k in BASE_ENV if k in os.environ}, **(keep or {})}


class LocalRayCluster:
    """``nodes`` Ray nodes on 127.0.0.1: a head and ``nodes - 1`` workers joined to it."""

    def __init__(
        self,
        nodes: int = 2,
        cpus_per_node: int = 8,
        gpus_on_head: int = 0,
        env: dict | None = None,
        keep_logs: bool = False,
        ray_exe: str | None = None,
    ):
        self.nodes, self.cpus, self.gpus, self.keep_logs = nodes, cpus_per_node, gpus_on_head, keep_logs
        self.ray_exe = ray_exe  # the `ray` of the Python the jobs run in: its workers use that interpreter
        # Ray 2.60 turns token authentication on for a `ray start --head` (and writes ~/.ray/auth_token); the
        # nodes here listen on 127.0.0.1 only, so it stays off, as for the local cluster of a plain ray.init()
        self.env = {**(scrubbed_env() if env is None else env), "RAY_AUTH_MODE": "disabled"}
        self.port = free_port()
        self.temp_dir = tempfile.mkdtemp(prefix="rlpt-ray-", dir="/tmp")  # short: Ray's socket paths are bounded
        self.procs: list[subprocess.Popen] = []
        self.logs: list[str] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _ray(self) -> str:
        if self.ray_exe:
            return self.ray_exe
        exe = os.path.join(os.path.dirname(sys.executable), "ray")
        return exe if os.path.exists(exe) else (shutil.which("ray") or "ray")

    def _start_node(self, head: bool) -> None:
        i = len(self.procs)
        cmd = [self._ray(), "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}"]
        if head:
            cmd += [
                "--head",
                f"--port={self.port}",
                f"--temp-dir={self.temp_dir}",
                "--include-dashboard=false",
                f"--num-gpus={self.gpus}",
                "--disable-usage-stats",
            ]
        else:
            cmd += [f"--address={self.address}", "--num-gpus=0"]
        log = os.path.join(self.temp_dir, f"node{i}.log")
        self.logs.append(log)
        with open(log, "w") as out:
            self.procs.append(
                subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
            )

    def _started(self, i: int) -> bool:
        with open(self.logs[i], errors="replace") as f:
            return "Ray runtime started" in f.read()

    def start(self, timeout_s: float = 180.0) -> LocalRayCluster:
        """Start the head, then the other nodes; returns once each says "Ray runtime started". A driver that
        joins should still wait for ``len(ray.nodes())`` (a node registers with the GCS right after)."""
        deadline = time.monotonic() + timeout_s
        for i in range(self.nodes):
            self._start_node(head=i == 0)
            while not self._started(i):
                self._check_running()
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"Ray node {i} did not start within {timeout_s:.0f}s; see {self.logs[i]}")
                time.sleep(0.5)
        return self

    def _check_running(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                with open(log, errors="replace") as f:
                    tail = f.read()[-1500:]
                self.stop()
                raise RuntimeError(f"a Ray node exited with {proc.returncode}; the end of its log:\n{tail}")

    def _own_pids(self) -> set[int]:
        """Processes whose command line names this cluster's temp folder (raylets, GCS, workers, agents)."""
        pids = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if self.temp_dir.encode() in f.read():
                        pids.add(int(entry))
            except OSError:
                continue
        pids.discard(os.getpid())
        return pids

    def stop(self) -> None:
        """End the workers' nodes first, then the head: ``ray start --block`` stops its own processes on
        SIGTERM; what is left of its process group or names the temp folder is then killed."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if proc.poll() is None:
                proc.wait(timeout=10)
        for pid in self._own_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.procs = []
        if not self.keep_logs:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
