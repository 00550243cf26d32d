"""A real OpenAI-compatible judge server on this machine: ``transformers serve`` on 127.0.0.1 (offline).

Used by the quickstart, the tests and the benchmarks; it is a process we own, so faults are real ones:
:meth:`pause` (SIGSTOP: requests time out), :meth:`resume`, :meth:`stop` and :meth:`start` again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from rlpt_verl.tools.assets import cache_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def verdict_logit_bias(tokenizer_dir: str, bias: float = 100.0) -> dict[str, float]:
    """OpenAI ``logit_bias`` (token id -> bias) that leaves a judge only the digits ``0``, ``1`` and its end
    token: a constrained verdict for servers without structured outputs (transformers serve, OpenAI). With
    ``max_tokens`` 1 the reply is exactly "0" or "1", which ``parse_verdict`` reads as the verdict."""
    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    ids = []
    for digit in ("0", "1"):
        pieces = tok(digit, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise ValueError(f"{tokenizer_dir}: {digit!r} is not one token; a logit_bias verdict needs it to be")
        ids += pieces
    if tok.eos_token_id is not None:
        ids.append(int(tok.eos_token_id))
    return {str(i): float(bias) for i in ids}


class LocalJudgeServer:
    def __init__(self, model_dir: str, port: int | None = None, log_path: str | None = None):
        self.model_dir = model_dir
        self.port = port or free_port()
        self.log_path = log_path or os.path.join(cache_dir(), f"judge-{self.port}.log")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return self.model_dir  # transformers serve expects the served folder path as the model name

    @property
    def verdict_settings(self) -> dict:
        """`rlpt` reward settings that constrain this judge's reply to one token, ``0`` or ``1``: SmolLM2-135M
        does not follow the paper's "Score: 0/1" format on its own (it writes prose, which is no verdict).
        See :func:`verdict_logit_bias`."""
        return {"judge_extra_body": {"logit_bias": verdict_logit_bias(self.model_dir)}, "judge_max_tokens": 1}

    def _command(self) -> list[str]:
        exe = os.path.join(os.path.dirname(sys.executable), "transformers")
        exe = exe if os.path.exists(exe) else (shutil.which("transformers") or "transformers")
        return [
            exe,
            "serve",
            self.model_dir,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--device",
            "cpu",
            "--dtype",
            "float32",
        ]

    name = "judge server"  # how start-up errors name it
    poll_s = 0.5  # between readiness probes

    def _env(self) -> dict:
        hub = os.path.join(cache_dir(), "hf-hub")
        os.makedirs(hub, exist_ok=True)
        return {**os.environ, "HF_HUB_CACHE": hub, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}

    def _popen_kwargs(self) -> dict:
        return {}

    def start(self, timeout_s: float = 180.0) -> LocalJudgeServer:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, env=self._env(), **self._popen_kwargs()
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                self.chat("Reply with: Score: 1", max_tokens=2, timeout=30)  # loads the model, too
                return self
            except (urllib.error.URLError, ConnectionError, OSError, TimeoutError):
                time.sleep(self.poll_s)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout_s:.0f}s; see {self.log_path}")

    def chat(self, content: str, max_tokens: int = 8, timeout: float = 60) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        req = urllib.request.Request(
            self.url + "/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())["choices"][0]["message"]["content"]

    def request_count(self) -> int:
        """Chat completions the server has answered or started (from its access log)."""
        with open(self.log_path, errors="replace") as f:
            return sum("POST /v1/chat/completions" in line for line in f)

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> LocalJudgeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def e2e_vllm() -> str | None:
    """The ``vllm`` of the CPU venv ``make e2e-venv`` builds (``RLPT_E2E_VENV`` or the cache's), if it is there."""
    venv = os.environ.get("RLPT_E2E_VENV", os.path.join(cache_dir(), "e2e-venv"))
    exe = os.path.join(venv, "bin", "vllm")
    return exe if os.path.exists(exe) else None


class LocalVLLMJudge(LocalJudgeServer):
    """``vllm serve`` (vLLM's CPU build) with SmolLM2 on 127.0.0.1: structured outputs (the ``choice`` reply
    mode), log-probabilities (``logprob``), automatic prefix caching and its ``/metrics``; started with
    ``VLLM_SERVER_DEV_MODE=1`` so ``/reset_prefix_cache`` works between measurements. Its engine runs in child
    processes: the server gets a session of its own and is stopped by that process group's id."""

    def __init__(self, model_dir: str, vllm: str, port: int | None = None, max_model_len: int = 2048):
        super().__init__(model_dir, port)
        self.vllm, self.max_model_len = vllm, max_model_len
        self.log_path = os.path.join(cache_dir(), f"vllm-judge-{self.port}.log")

    @property
    def model(self) -> str:
        return "judge"

    def _command(self) -> list[str]:
        return [
            self.vllm,
            "serve",
            self.model_dir,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--served-model-name",
            self.model,
            "--max-model-len",
            str(self.max_model_len),
            "--enable-prefix-caching",
        ]

    name = "vLLM judge"
    poll_s = 2.0

    def _env(self) -> dict:
        return {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "VLLM_SERVER_DEV_MODE": "1",
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
            "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "nobind"),
        }

    def _popen_kwargs(self) -> dict:
        return {"start_new_session": True}  # its own process group: stop() ends the engine processes too

    def start(self, timeout_s: float = 600.0) -> LocalVLLMJudge:
        return super().start(timeout_s)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        group = os.getpgid(self.proc.pid)  # its own session: the server and its engine processes, nothing else
        os.killpg(group, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.proc.wait()
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(2)  # engine processes still ending after the server
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
