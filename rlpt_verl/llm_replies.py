"""How a reply is asked for and read, per ``reply_mode`` (pure: request bodies in, reply values out).

- ``generate``: free text at the request's temperature; the caller parses it (and may ask once more).
- ``choice``: the server constrains the reply to one of a fixed set of strings (vLLM's structured outputs,
  ``structured_outputs: {choice: [...]}``): no parse failure, a fixed token count.
- ``logprob``: the assistant turn starts with a fixed prefix (``continue_final_message``), the server writes
  one token and returns its top log-probabilities: one forward pass and one token per verdict.

Only servers that implement these fields can do ``choice`` and ``logprob`` (vLLM does; ``transformers serve``
rejects ``logprobs``); the client's preflight (:meth:`LLMClient.check`) finds out before a long job.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["REPLY_MODES", "TOP_LOGPROBS", "shape_body", "read_reply", "digit_probability", "mode_fields"]

REPLY_MODES = ("generate", "choice", "logprob")
TOP_LOGPROBS = 20  # vLLM's default --max-logprobs; OpenAI allows up to 20
CHOICE_MIN_TOKENS = 16  # room for the longest choice: a cut-off choice would not be one


def mode_fields(mode: str, choices: tuple[str, ...] = (), prefix: str = "") -> dict[str, Any]:
    """The request fields ``mode`` adds to a chat completion (beside its messages).

    >>> mode_fields("generate")
    {}
    >>> mode_fields("choice", ("Score: 0", "Score: 1"))
    {'structured_outputs': {'choice': ['Score: 0', 'Score: 1']}}
    >>> sorted(mode_fields("logprob", prefix="Score: "))
    ['add_generation_prompt', 'continue_final_message', 'logprobs', 'top_logprobs']
    """
    if mode == "choice":
        return {"structured_outputs": {"choice": list(choices)}}
    if mode == "logprob":
        fields: dict[str, Any] = {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        if prefix:
            fields.update(continue_final_message=True, add_generation_prompt=False)
        return fields
    return {}


def shape_body(body: dict, mode: str, choices: tuple[str, ...] = (), prefix: str = "") -> dict:
    """``body`` (a chat completion request) as ``mode`` asks it; ``body`` itself is not changed.

    >>> b = {"messages": [{"role": "user", "content": "Q"}], "max_tokens": 8, "temperature": 0.0}
    >>> shape_body(b, "logprob", prefix="Score: ")["messages"][-1]
    {'role': 'assistant', 'content': 'Score: '}
    >>> shape_body(b, "choice", ("a", "b"))["max_tokens"], b["max_tokens"]
    (16, 8)
    """
    fields = mode_fields(mode, choices, prefix)
    if not fields:
        return body
    out = {**body, **fields}
    if mode == "choice":
        out["max_tokens"] = max(int(body.get("max_tokens") or 0), CHOICE_MIN_TOKENS)
    if mode == "logprob":
        out["temperature"], out["max_tokens"] = 0.0, 1  # one forward pass, one token
        if prefix:
            out["messages"] = [*body.get("messages", []), {"role": "assistant", "content": prefix}]
    return out


def read_reply(choice: dict, mode: str) -> str | dict[str, float]:
    """What a reply holds for ``mode``: its text, or (``logprob``) the first token's top log-probabilities as
    ``{token: logprob}`` (empty when the server sent none).

    >>> read_reply({"message": {"content": "Score: 1"}}, "choice")
    'Score: 1'
    >>> c = {"message": {"content": "1"}, "logprobs": {"content": [{"token": "1", "logprob": -0.1,
    ...      "top_logprobs": [{"token": "1", "logprob": -0.1}, {"token": "0", "logprob": -2.4}]}]}}
    >>> read_reply(c, "logprob")
    {'1': -0.1, '0': -2.4}
    """
    if mode != "logprob":
        return (choice.get("message") or {}).get("content") or ""
    content = ((choice.get("logprobs") or {}).get("content")) or []
    if not content or not isinstance(content[0], dict):
        return {}
    first = content[0]
    top = first.get("top_logprobs") or [{"token": first.get("token"), "logprob": first.get("logprob")}]
    out: dict[str, float] = {}
    for entry in top:
        token, logprob = entry.get("token"), entry.get("logprob")
        if isinstance(token, str) and isinstance(logprob, int | float) and token not in out:
            out[token] = float(logprob)
    return out


def digit_probability(top: dict[str, float], yes: str = "1", no: str = "0") -> float | None:
    """P(``yes``) / (P(``yes``) + P(``no``)) among the top tokens (a token counts by its stripped text, so
    ``" 1"`` is ``1``); None when neither is among them (the model meant something else).

    >>> round(digit_probability({"1": math.log(0.6), "0": math.log(0.2), "2": math.log(0.1)}), 3)
    0.75
    >>> digit_probability({"1": -0.01}), digit_probability({" 0": -0.01}), digit_probability({"The": -0.1})
    (1.0, 0.0, None)
    """
    p_yes = sum(math.exp(lp) for t, lp in top.items() if t.strip() == yes)
    p_no = sum(math.exp(lp) for t, lp in top.items() if t.strip() == no)
    if p_yes + p_no == 0:
        return None
    return p_yes / (p_yes + p_no)
