"""Math-Verify in worker processes, each item under a deadline.

Math-Verify (PyPI ``math-verify``, what the RLPT paper uses) times its parsing with ``signal.alarm``, so
it fails off the main thread, and a pathological expression can hang sympy far past that alarm. Each
worker is a process whose main thread runs Math-Verify; an item that outlives ``timeout_s`` has its
worker killed and replaced and is recorded as ``timeout`` — a hung verification never holds a worker.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from collections.abc import Iterable, Iterator
from multiprocessing.connection import wait

from rlpt_verl.boxes import FINAL_BOX_RULE, boxes, final_boxed

__all__ = ["check_math", "MathVerdict", "verify_one", "answer_text", "after_reasoning", "MATH_VERIFY_SETTINGS"]

MathVerdict = str  # "correct" | "wrong" | "no_answer" | "error" | "timeout"


MATH_VERIFY_SETTINGS = {
    "parse": "math_verify.parse defaults (LaTeX and plain-expression extraction)",
    "verify": "math_verify.verify defaults (float_rounding=6, numeric_precision=15, strict=True)",
    "final_answer": "reasoning before </think> dropped; "
    + FINAL_BOX_RULE
    + "; a 'final answer is X' statement after the last box wins; a percent sign ending a boxed number is dropped",
    "gold": "read as $...$, else as plain text; several answers together (OlympiadBench is_multiple_answer)",
}
_THINK = re.compile(r"^.*</think>", re.S | re.I)


def after_reasoning(text: str) -> str:
    """``text`` after its last ``</think>`` (all of it when there is none): drafts in the reasoning never count.

    >>> after_reasoning("<think>a</think> b </think> c"), after_reasoning("no tags")
    (' c', 'no tags')
    """
    return _THINK.sub("", text)


def answer_text(response: str, unit: str | None = None) -> str | None:
    r"""What Math-Verify is given for ``response``: the text after the reasoning, reduced to its final boxes
    when it has any (``FINAL_BOX_RULE``), the item's unit removed; None when nothing follows ``</think>``.

    >>> answer_text(r"<think>\boxed{1}</think> First \boxed{4}, final answer \boxed{3}.")
    '$\\boxed{3}$'
    >>> answer_text(r"so \boxed{5 \text{ cm}}", unit="cm"), answer_text("<think>long</think> ") is None
    ('$\\boxed{5}$', True)
    >>> answer_text(r"gain \boxed{255}; in all 10,455. The final answer is $10,455$."), answer_text(r"\boxed{20 \%}")
    ('$10,455$.', '$\\boxed{20}$')
    """
    text = after_reasoning(response)
    if not text.strip():
        return None
    found = boxes(text)
    stated = _FINAL_STATEMENT.search(text, found[-1][1]) if found else None
    if stated:  # "... \boxed{255} ... The final answer is $10,455$": the answer stated last counts
        text = text[stated.end() :]
    boxed = None if stated else final_boxed(text)
    if boxed is None:
        return _strip_unit(text, unit) if unit else text
    boxed = _PERCENT.sub(r"\1", boxed)  # Math-Verify reads no number in \boxed{20\%}: the number is the answer
    return "$\\boxed{" + (_strip_unit(boxed, unit) if unit else boxed) + "}$"


# "The final answer is X" after the last box (the Minerva/lighteval answer format) states the answer last.
_FINAL_STATEMENT = re.compile(r"\bfinal answer is\b[:\s]*", re.I)
# a percent sign (or the word) after the number ending a boxed answer
_PERCENT = re.compile(r"^(.*\d)\s*(?:\\!\s*)?(?:\\%|%|\\text\{\s*\\?%\s*\}|\\text\{\s*percent\s*\}|\s+percent)\s*$")


def _strip_unit(text: str, unit: str) -> str:
    unit = re.sub(r"\\(?:text|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", unit).strip()
    for form in (
        rf"\\(?:text|mathrm|mbox)\s*\{{\s*{re.escape(unit)}\s*\}}",
        rf"(?<![A-Za-z]){re.escape(unit)}(?![A-Za-z])",
    ):
        text = re.sub(form, " ", text)
    return re.sub(r"\s*\\,\s*$|\s+$", "", text)


def _close(a, b, tolerance: float) -> bool:
    try:
        x, y = complex(a), complex(b)
    except (TypeError, ValueError):
        return False
    return abs(x - y) <= tolerance * max(1.0, abs(y))


def verify_one(response: str, gold: str, grading: dict | None = None) -> MathVerdict:
    """Math-Verify's verdict on ``response`` against the reference answer ``gold`` (main thread only).

    The gold answer is read as LaTeX (``$...$``) and, failing that, as plain text; a response with no
    extractable answer is ``no_answer`` (it scores 0 and is counted apart from wrong answers). ``grading``
    (OlympiadBench) may give a ``unit`` to strip from the reply and a relative numeric ``tolerance``.
    """
    from math_verify import parse, verify

    grading = grading or {}
    gold_parsed = parse(f"${gold}$") or parse(gold)
    if not gold_parsed:
        return "error"
    text = answer_text(response, grading.get("unit"))
    if text is None:
        return "no_answer"
    answer = parse(text)
    if not answer:
        return "no_answer"
    if verify(gold_parsed, answer):
        return "correct"
    tolerance = grading.get("tolerance")
    if tolerance and _close(gold_parsed[0], answer[0], float(tolerance)):
        return "correct"
    return "wrong"


def _worker(conn) -> None:
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        key, response, gold, *grading = job
        try:
            verdict = verify_one(response, gold, *grading)
        except Exception:  # noqa: BLE001 - any failure of the checker is this item's "error", not the run's
            verdict = "error"
        conn.send((key, verdict))


class _Slot:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.job = None
        self.deadline = 0.0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()


def check_math(
    items: Iterable[tuple[object, str, str]], workers: int = 2, timeout_s: float = 30.0
) -> Iterator[tuple[object, MathVerdict]]:
    """Yield (key, verdict) for each (key, response, gold[, grading]), in completion order.

    ``workers`` processes (forked once, reused); an item running longer than ``timeout_s`` yields
    ``timeout`` and its worker is replaced.
    """
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pending = iter(items)
    slots = [_Slot(ctx) for _ in range(max(1, workers))]
    busy = 0
    try:
        while True:
            for slot in slots:
                if slot.job is None:
                    job = next(pending, None)
                    if job is not None:
                        slot.job, slot.deadline = job, time.monotonic() + timeout_s
                        slot.conn.send(job)
                        busy += 1
            if not busy:
                return
            now = time.monotonic()
            wait_s = max(0.0, min(s.deadline for s in slots if s.job is not None) - now)
            ready = wait([s.conn for s in slots if s.job is not None], timeout=min(wait_s, 1.0))
            for i, slot in enumerate(slots):
                if slot.job is None:
                    continue
                if slot.conn in ready:
                    try:
                        key, verdict = slot.conn.recv()
                    except EOFError:  # the worker died (e.g. out of memory): this item errs, a new worker starts
                        key, verdict = slot.job[0], "error"
                        slot.kill()
                        slots[i] = slot = _Slot(ctx)
                    slot.job = None
                    busy -= 1
                    yield key, verdict
                elif time.monotonic() > slot.deadline:
                    key = slot.job[0]
                    slot.kill()
                    slots[i] = _Slot(ctx)
                    busy -= 1
                    yield key, "timeout"
    finally:
        for slot in slots:
            slot.kill()
