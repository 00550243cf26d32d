"""Run a command and measure it: wall time and the peak RSS of its whole process tree (shared by benchmarks)."""

from __future__ import annotations

import subprocess
import tempfile
import time

import psutil


def run_measured(cmd: list[str], poll_s: float = 0.05) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes of the process and its children); exits with the command's stderr if it fails.

    stdout is discarded and stderr goes to a temporary file, so a chatty command cannot fill a pipe and stall.
    """
    with tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.perf_counter()
        proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        peak = 0
        while proc.poll() is None:
            try:
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(poll_s)
        seconds = time.perf_counter() - t0
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd[:4])} ... failed: {err.read()[-2000:]}")
    return seconds, peak
