"""Count chat-templated prompt tokens exactly as verl does, but fast.

verl measures a prompt as ``len(apply_chat_template(messages, add_generation_prompt=True, tokenize=True))``
(RLHFDataset's overlong filter and the agent loop). Rendering Jinja per prompt is slow, so the template
is rendered once around a sentinel and each prompt is tokenized as ``prefix + content + suffix``; a
self-check at start-up falls back to the exact slow path for templates where that is not equivalent.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from rlpt_verl.errors import UserError

_SENTINEL = "\ue000RLPT-CONTENT\ue001"
_PROBES = (
    "Complete the text.\n\n### Context\n\nDr. Smith went home. He was tired.",
    "## Text Material ##: x = 1\n\n<MASK>\n\n  trailing spaces and {braces}  ",
)


def load_tokenizer(name_or_path: str):
    """A local folder or a name already in the HF cache; never downloads (clear error instead)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    except Exception as e:
        raise UserError(
            f"cannot load tokenizer {name_or_path!r}: pass --tokenizer a local folder with tokenizer files or "
            f"a model name already in the Hugging Face cache ({type(e).__name__})"
        ) from None


class PromptMeter:
    """Token counts for single-user-message chat prompts, identical to verl's."""

    def __init__(self, tokenizer: Any, chat_template_kwargs: dict | None = None):
        self.tokenizer = tokenizer
        self.kwargs = dict(chat_template_kwargs or {})
        if getattr(tokenizer, "chat_template", None) is None:
            raise UserError("the tokenizer has no chat template; verl's RLHFDataset needs one (pass an instruct model)")
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": _SENTINEL}], add_generation_prompt=True, tokenize=False, **self.kwargs
        )
        self.fast = rendered.count(_SENTINEL) == 1
        if self.fast:
            self.prefix, self.suffix = rendered.split(_SENTINEL)
            self.fast = all(self._fast([p])[0] == self._exact(p) for p in _PROBES)

    def _exact(self, content: str) -> int:
        out = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True, **self.kwargs
        )
        if hasattr(out, "keys") and "input_ids" in out:
            out = out["input_ids"]
        if out and isinstance(out[0], list):
            out = out[0]
        return len(out)

    def _lengths(self, texts: list[str]) -> list[int]:
        """Token counts of plain texts; straight from the Rust tokenizer when there is one."""
        backend = getattr(self.tokenizer, "_tokenizer", None)
        if backend is not None and hasattr(backend, "encode_batch"):
            return [len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def _fast(self, contents: list[str]) -> list[int]:
        return self._lengths([self.prefix + c + self.suffix for c in contents])

    def count_prompts(self, contents: list[str]) -> list[int]:
        """Exact chat-templated lengths of user messages (checked against verl's measure at start-up)."""
        if not contents:
            return []
        return self._fast(contents) if self.fast else [self._exact(c) for c in contents]

    def segment_token_prefix(self, segments) -> list[int]:
        """``prefix[k]`` = estimated tokens of segments[0:k], each tokenized with its separator.

        One batched call per document, linear in its length (re-tokenising a growing context for every
        target would be quadratic). The sum over a range misses the exact count of that text by a
        few tokens at most (BPE merges at the two ends), which the exact check then settles.
        """
        counts = self._lengths([(seg.sep if i else "") + seg.text for i, seg in enumerate(segments)])
        return [0, *accumulate(counts)]
