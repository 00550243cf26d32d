"""A small HTTP proxy in front of a real judge on 127.0.0.1, for tests and e2e: it can require an API key and
fail a chosen share of requests, the two things a real `transformers serve` cannot be made to do.

Failures are decided by the prompt text, not by chance: every retry of an unlucky request fails again, so a
sample really ends without a verdict (what a judge failing 10-40 % of its calls does to some samples), and
the same prompts fail in every run. Only verdict requests (prompts with the judge prompt's ``Predicted:``
label) can fail, so the trainer's preflight sees a judge that is up. Each request is logged (authorised or
not, passed on or failed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time

from rlpt_verl.tools.local_judge import free_port


def fails(prompt: str, share: float) -> bool:
    """Whether a request with this prompt is one the proxy fails (a fixed ``share`` of all prompts).

    >>> fails("any prompt", 0.0), fails("any prompt", 1.0)
    (False, True)
    >>> sum(fails(f"prompt {i}", 0.3) for i in range(1000)) in range(250, 350)
    True
    """
    digest = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)
    return digest < share * 0x100000000


class JudgeProxy:
    """``http://127.0.0.1:<port>/v1`` forwarding chat completions to ``upstream`` (a ``.../v1`` URL)."""

    def __init__(
        self,
        upstream: str,
        api_key: str | None = None,
        fail_share: float = 0.0,
        fail_status: int = 503,
        fail_marker: str = "Predicted: ",
    ):
        self.upstream = upstream.rstrip("/")
        self.api_key, self.fail_share, self.fail_status = api_key, fail_share, fail_status
        self.fail_marker = fail_marker  # only prompts with it can fail: verdict requests, not the preflight
        self.port = free_port()
        self.log: list[dict] = []  # one entry per request: authorised, failed, prompt digest, time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def counts(self) -> dict[str, int]:
        """Requests seen: ``unauthorised``, ``failed`` (on purpose), ``passed`` (answered by the upstream)."""
        out = {"unauthorised": 0, "failed": 0, "passed": 0}
        for entry in list(self.log):
            out[entry["outcome"]] += 1
        return out

    def failed_prompts(self) -> int:
        """Distinct prompts failed on purpose: each is one sample's judge request (and all its retries)."""
        return len({e.get("prompt_sha") for e in list(self.log) if e["outcome"] == "failed"})

    async def _handle(self, request):
        import aiohttp
        from aiohttp import web

        body = await request.read()
        entry = {"time": time.time(), "outcome": "passed"}
        self.log.append(entry)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            entry["outcome"] = "unauthorised"
            return web.json_response({"error": "missing or wrong API key"}, status=401)
        try:
            messages = json.loads(body).get("messages") or []
            prompt = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        except (ValueError, AttributeError):
            prompt = ""
        entry["prompt_sha"] = hashlib.sha256(prompt.encode()).hexdigest()[:12]
        if self.fail_marker in prompt and fails(prompt, self.fail_share):
            entry["outcome"] = "failed"
            return web.json_response({"error": "injected failure (JudgeProxy)"}, status=self.fail_status)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.upstream}/chat/completions",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=600),
            ) as resp:
                text = await resp.text()
                return web.Response(status=resp.status, text=text, content_type="application/json")

    def _serve(self) -> None:
        from aiohttp import web

        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

    def start(self) -> JudgeProxy:
        self._thread = threading.Thread(target=self._serve, name="judge-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("judge proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    def __enter__(self) -> JudgeProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
