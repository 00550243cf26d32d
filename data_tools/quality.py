"""Model-based quality rating through any OpenAI-compatible endpoint, with a persistent cache.

The rater sees :data:`QUALITY_PROMPT` with the document's first ``max_chars`` characters and answers
with one integer from 0 to 5; documents scored below ``threshold`` are dropped. Requests go through the
shared OpenAI-compatible client (retries with backoff, adaptive concurrency, clear 4xx errors, down
detection); a rater that fails or stops answering parsably ends the run with an error naming its URL.
Scores are cached under ``cache_dir`` (JSON Lines keyed by model, prompt version and text hash, one file
per shard), so a rerun, or a resumed run, does not pay for documents already rated.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from dataclasses import dataclass

from rlpt_verl.options import opt

PROMPT_VERSION = "q1"
QUALITY_PROMPT = (
    "Rate the following text as training data for a language model, from 0 to 5:\n"
    "5 = well-written, informative prose, code or mathematics a textbook could contain;\n"
    "3 = understandable and mostly coherent, some noise;\n"
    "1 = fragments, spam, boilerplate, lists of links or keywords;\n"
    "0 = unreadable or empty.\n"
    "Answer with the number only.\n\n"
    "Text:\n{text}"
)
_SCORE = re.compile(r"\b([0-5])\b")


@dataclass(frozen=True)
class QualityConfig:
    base_url: str = opt(
        "", "OpenAI-compatible base URL of the quality rater (the stage is off without it)", flag="--quality-url"
    )
    model: str = opt("", "the rater's served model name", flag="--quality-model")
    threshold: int = opt(3, "documents rated below this (0-5) are dropped", flag="--quality-threshold")
    max_chars: int = 4000
    concurrency: int = opt(16, "rater requests in flight at most", flag="--quality-concurrency", low=1)
    api_key_env: str | None = opt(
        None, "environment variable holding the rater's API key", flag="--quality-api-key-env"
    )
    timeout_s: float = 120.0


def parse_score(reply: str | None) -> int | None:
    """The first standalone digit 0-5 in the reply.

    >>> parse_score("Score: 4"), parse_score("I'd say 3/5."), parse_score("ten"), parse_score(None)
    (4, 3, None, None)
    """
    if not reply:
        return None
    m = _SCORE.search(reply)
    return int(m.group(1)) if m else None


def rater_settings(cfg: QualityConfig):
    """The transport settings of the rater (the shared OpenAI-compatible client, named as the rater)."""
    from rlpt_verl.llm_client import LLMSettings

    return LLMSettings(
        base_url=cfg.base_url,
        model=cfg.model,
        api_key_env=cfg.api_key_env,
        concurrency=cfg.concurrency,
        timeout_s=cfg.timeout_s,
        max_tokens=8,
        role="quality rater",
        setting_prefix="--quality-",
    )


def check_rater(cfg: QualityConfig) -> None:
    """Fail before any work when the rater does not answer (raises JobError/UserError with the URL)."""
    from rlpt_verl.errors import JobError, UserError
    from rlpt_verl.llm_client import LLMClient, LLMConfigError, LLMUnreachableError

    try:
        client = LLMClient(rater_settings(cfg))
    except LLMConfigError as e:
        raise UserError(str(e)) from None

    async def probe():
        try:
            await client.check()
        finally:
            await client.aclose()

    try:
        asyncio.run(probe())
    except LLMUnreachableError as e:
        raise JobError(str(e)) from None
    except LLMConfigError as e:
        raise UserError(str(e)) from None


class QualityRater:
    """Rates documents (async, bounded concurrency) and remembers every score it got.

    A rater that fails (after retries) or stops answering parsably is an error that ends the run: a
    document is never kept on the strength of a non-answer, and non-answers are never cached.
    """

    def __init__(self, cfg: QualityConfig, cache_dir: str, name: str):
        from rlpt_verl.llm_client import LLMClient

        self.cfg = cfg
        self.client = LLMClient(rater_settings(cfg))
        os.makedirs(cache_dir, exist_ok=True)
        self.cache_path = os.path.join(cache_dir, f"{name}.jsonl")  # one file per shard: no interleaving
        self.cache: dict[str, int] = {}
        self.requests = 0
        if os.path.exists(self.cache_path):  # this shard's own scores from an earlier, interrupted run
            with open(self.cache_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by an interrupted run
                    if isinstance(rec.get("score"), int):
                        self.cache[rec["key"]] = rec["score"]

    def key(self, text: str) -> str:
        h = hashlib.blake2b(text[: self.cfg.max_chars].encode(), digest_size=16).hexdigest()
        return f"{self.cfg.model}|{PROMPT_VERSION}|{h}"

    async def _rate(self, text: str) -> int | None:
        from rlpt_verl.errors import JobError

        prompt = QUALITY_PROMPT.replace("{text}", text[: self.cfg.max_chars])
        score, sent, kind = await self.client.ask(prompt, parse_score)
        self.requests += sent
        if kind not in (None, "unparsable"):
            raise JobError(
                f"quality rater at {self.client.settings.endpoint} failed after retries ({kind}: "
                f"{self.client._last_error}); rerun the same command once it answers (finished shards are kept)"
            )
        return score

    def rate(self, texts: list[str]) -> list[int | None]:
        """Scores for ``texts`` (None: the rater's replies had no score); new scores are appended to the cache."""
        from rlpt_verl.errors import JobError
        from rlpt_verl.llm_client import LLMDownError

        keys = [self.key(t) for t in texts]  # each text hashed once
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self.cache}.items())
        fresh: dict[str, int | None] = {}

        async def run():
            try:
                return await asyncio.gather(*(self._rate(t) for _, t in todo))
            finally:
                await self.client.aclose()

        if todo:
            try:
                scores = asyncio.run(run())
            except LLMDownError as e:
                raise JobError(str(e)) from None
            with open(self.cache_path, "a", encoding="utf-8") as f:
                for (k, _), score in zip(todo, scores, strict=True):
                    fresh[k] = score
                    if score is not None:  # a non-answer is asked again next time
                        self.cache[k] = score
                        f.write(json.dumps({"key": k, "score": score}) + "\n")
        return [self.cache.get(k, fresh.get(k)) for k in keys]
