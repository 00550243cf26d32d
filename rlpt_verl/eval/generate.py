"""Samples from an OpenAI-compatible server (vLLM's ``serve`` on GPUs; ``transformers serve`` in tests), resumable.

Every finished sample is appended to ``samples.jsonl`` (one JSON line, flushed) as soon as it arrives,
so an interrupted run — Ctrl-C, SIGKILL, a lost node — continues where it stopped and never asks for a
finished sample again: on start the file is read back (a torn last line is ignored and rewritten)
and only the missing (benchmark, item, sample) triples are requested. A sample the server failed
after retries is not written; it is counted, and the next run asks for it again.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable

from rlpt_verl.errors import JobError, UserError
from rlpt_verl.llm_client import LLMClient, LLMConfigError, LLMDownError, LLMSettings, LLMUnreachableError

__all__ = ["read_samples", "generate", "server_info", "SAMPLES"]

SAMPLES = "samples.jsonl"


def read_samples(path: str) -> dict[tuple[str, str, int], tuple[str, str | None]]:
    """(bench, item, index) -> (text, fingerprint of what was asked) from ``samples.jsonl``; a later line for
    the same sample replaces an earlier one (a re-asked item). A torn last line (killed mid-write) is dropped
    and cut from the file, so the next append starts on a clean line."""
    done: dict[tuple[str, str, int], tuple[str, str | None]] = {}
    if not os.path.exists(path):
        return done
    good_bytes = 0
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
                done[(rec["bench"], rec["item"], int(rec["i"]))] = (rec["text"], rec.get("ask"))
            except (ValueError, KeyError, TypeError):
                break  # only the last line can be torn: everything before it was flushed whole
            good_bytes += len(raw)
    if good_bytes < os.path.getsize(path):
        with open(path, "r+b") as fh:
            fh.truncate(good_bytes)
    return done


def _get_json(url: str, timeout: float) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except ValueError:
        return 200, None


def server_info(settings: LLMSettings, timeout: float = 10.0) -> dict:
    """Check the server before any work: reachable, and serving ``--model`` (from ``GET /v1/models``).

    Returns what the server says about itself (models, and ``version`` where it has a ``/version``
    endpoint, as vLLM does). Raises :class:`UserError` with one line naming the URL and the fix.
    """
    base = settings.endpoint[: -len("/chat/completions")]
    try:
        status, body = _get_json(base + "/models", timeout)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(
            f"no model server answers at {base} ({reason}): start one (e.g. `vllm serve MODEL`) or fix --model-url"
        ) from None
    info: dict = {"url": base}
    if status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
        served = [m.get("id") for m in body["data"] if isinstance(m, dict)]
        info["models"] = served
        if served and settings.model not in served:
            raise UserError(
                f"the server at {base} does not serve --model {settings.model!r}; it serves: {', '.join(served)}"
            )
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    try:
        status, body = _get_json(root + "/version", timeout)
        if status == 200 and isinstance(body, dict) and body.get("version"):
            info["version"] = str(body["version"])
    except (urllib.error.URLError, OSError):
        pass
    return info


async def _generate(
    client: LLMClient,
    jobs: list[tuple[str, str, int, list[dict], dict]],
    out_path: str,
    concurrency: int,
    on_done: Callable[[bool], None],
) -> dict:
    counts = {"written": 0, "failed": 0, "requests": 0}
    try:
        await client.check(attempts=2, timeout_s=min(client.settings.timeout_s, 300.0))  # one request, no fan-out
    except BaseException:
        await client.aclose()
        raise
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    with open(out_path, "a", encoding="utf-8") as fh:

        async def worker() -> None:
            while True:
                try:
                    bench, item, i, messages, sampling, *extra = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                text, sent, kind = await client.chat(messages, **sampling)
                counts["requests"] += sent
                if kind is None and text is not None:
                    record = {"bench": bench, "item": item, "i": i, "text": text, "prompt": messages}
                    fh.write(json.dumps({**record, **(extra[0] if extra else {})}) + "\n")
                    fh.flush()
                    counts["written"] += 1
                else:
                    counts["failed"] += 1
                on_done(kind is None)

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(jobs))))))
        finally:
            await client.aclose()
    return counts


def generate(
    settings: LLMSettings,
    jobs: list[tuple[str, str, int, list[dict], dict]],
    out_path: str,
    concurrency: int,
    on_done: Callable[[bool], None] = lambda ok: None,
) -> dict:
    """Ask for each (bench, item, index, messages, sampling[, extra]) job; append finished samples to ``out_path``
    with the prompt sent and ``extra`` (a GPQA item's ``option_order``).

    Returns counts (written, failed, requests). A server that rejects the request (wrong model, bad
    settings) or looks down raises :class:`UserError`/:class:`JobError` with its URL; samples
    already written stay for the next run.
    """
    client = LLMClient(settings)
    try:
        return asyncio.run(_generate(client, jobs, out_path, concurrency, on_done))
    except (LLMConfigError, LLMUnreachableError) as e:
        raise UserError(str(e)) from None
    except LLMDownError as e:
        raise JobError(f"{e}; samples written so far are kept in {out_path}: re-run to continue") from None
