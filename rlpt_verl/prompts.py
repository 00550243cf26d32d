"""The papers' prompt templates, verbatim (arXiv 2509.19249, 2506.08007). Pure strings: no I/O, no verl.

>>> asr_prompt("The sky was dark.").endswith("### Context\\n\\nThe sky was dark.")
True
"""

from __future__ import annotations

__all__ = [
    "ASR_TEMPLATE",
    "MSR_TEMPLATE",
    "SPAN_TEMPLATE",
    "span_prompt",
    "JUDGE_TEMPLATE",
    "JUDGE_LAYOUTS",
    "RPT_TEMPLATES",
    "PRED_OPEN",
    "PRED_CLOSE",
    "asr_prompt",
    "msr_prompt",
    "rpt_prompt",
]

PRED_OPEN = "<|startofprediction|>"
PRED_CLOSE = "<|endofprediction|>"

ASR_TEMPLATE = (
    "Complete the text provided under ### Context by predicting the next most probable sentence.\n"
    "\n"
    "Please reason step by step to determine the best possible continuation, and then enclose your final "
    "answer within <|startofprediction|> and <|endofprediction|> tags.\n"
    "\n"
    "### Context\n"
    "\n"
    "{context}"
)

MSR_TEMPLATE = (
    "## Text Material ##: {prompt}\n"
    "\n"
    "<MASK>\n"
    "\n"
    "{next_step}\n"
    "\n"
    "## Task ##: Fill in the <MASK> section of the material with appropriate sentences or a solution step.\n"
    "\n"
    "Carefully reason step by step to determine the most suitable completion. Finally, provide your best "
    "prediction for the <MASK> section. Enclose your final answer for the <MASK> part within "
    "<|startofprediction|> and <|endofprediction|>."
)

# Masked-span control (a judge-free baseline; PretrainZero, arXiv 2512.03442): the MSR template's wording, with
# the mask inside the material and the answer the missing words.
SPAN_TEMPLATE = (
    "## Text Material ##: {material}\n"
    "\n"
    "## Task ##: Fill in the <MASK> section of the material with the missing words.\n"
    "\n"
    "Carefully reason step by step to determine the most suitable completion. Finally, provide your best "
    "prediction for the <MASK> section. Enclose your final answer for the <MASK> part within "
    "<|startofprediction|> and <|endofprediction|>."
)

JUDGE_TEMPLATE = (
    "## Task\n"
    "Given a Predicted sentence and a Reference paragraph, determine whether the Predicted text is a prefix "
    "(initial segment) of the Reference paragraph, and whether it expresses exactly the same semantic content "
    "as the corresponding prefix of the Reference. The Predicted text does not need to match the prefix of the "
    "Reference word-for-word, but it must convey the same meaning.\n"
    "\n"
    "Reference: {reference}\n"
    "\n"
    "Predicted: {predicted}\n"
    "\n"
    "## Scoring Rules\n"
    "\n"
    "If the Predicted text semantically matches the prefix of the Reference, assign a score of 1.\n"
    "\n"
    "If the Predicted text does not semantically match the prefix of the Reference, assign a score of 0. "
    "When making your judgment, focus primarily on semantic equivalence, not on exact wording.\n"
    "\n"
    "Only output the score on a single line; do not provide any explanatory text or additional content. "
    "Output format (choose one):\n"
    "\n"
    "- Score: 0 or\n"
    "- Score: 1"
)


def _cache_friendly(template: str) -> str:
    """The same instructions with everything fixed first, then the reference, the prediction last: the n samples
    of a group share the whole prompt up to their prediction, which a server's prefix cache then reuses (in the
    paper's layout the scoring rules follow the prediction and are new prefill for every call)."""
    task, rest = template.split("Reference: {reference}\n\nPredicted: {predicted}\n\n")
    return f"{task}{rest}\n\nReference: {{reference}}\n\nPredicted: {{predicted}}"


JUDGE_LAYOUTS = {"paper": JUDGE_TEMPLATE, "cache_friendly": _cache_friendly(JUDGE_TEMPLATE)}


def asr_prompt(context: str) -> str:
    """ASR user message: predict the sentence that follows ``context``."""
    return ASR_TEMPLATE.replace("{context}", context)


def msr_prompt(context: str, next_segment: str) -> str:
    """MSR user message: fill the <MASK> between ``context`` and ``next_segment``.

    Substitution is positional (not ``str.format`` on user text), so braces or a literal
    "{next_step}" inside the corpus cannot change the template.
    """
    head, tail = MSR_TEMPLATE.split("{next_step}")
    return head.replace("{prompt}", context) + next_segment + tail


def span_prompt(material: str) -> str:
    """Span-task user message: ``material`` holds one ``<MASK>`` where the missing words were.

    >>> span_prompt("The cat <MASK> the mat.").splitlines()[0]
    '## Text Material ##: The cat <MASK> the mat.'
    """
    head, tail = SPAN_TEMPLATE.split("{material}")
    return head + material + tail


# RPT (arXiv 2506.08007): v0 is the paper's training template; v6 had the best initial accuracy.
RPT_TEMPLATES = {
    "v0": (
        "Complete the given text under '### Context' by predicting the next token, and wrap it in '\\boxed{}'. "
        "Please reason step by step to find the most probable next token as the final answer, and enclose it in "
        "\\boxed{} (note: the token may begin with a space, e.g., \\boxed{ para} or \\boxed{ =}; do not use "
        "\\text{}).\n"
        "\n"
        "### Context\n"
        "{prompt_content}"
    ),
    "v6": (
        "Complete the given text wrapped in ``` and ``` by predicting the next token, list multiple potential "
        "tokens and select the most probable one as the final prediction. Wrap your final prediction in \\boxed{} "
        "(note: the token may begin with a space, e.g., \\boxed{ para} or \\boxed{ =}; do not use \\text{}).\n"
        "\n"
        "The context is: ```{prompt_content}```, now please predict the next token."
    ),
}


def rpt_prompt(context: str, version: str = "v0") -> str:
    """RPT user message for the text before the predicted position.

    >>> rpt_prompt("1 + 1 =").endswith("### Context\\n1 + 1 =")
    True
    """
    try:
        head, tail = RPT_TEMPLATES[version].split("{prompt_content}")
    except KeyError:
        raise ValueError(f"unknown RPT template {version!r}; choose one of {sorted(RPT_TEMPLATES)}") from None
    return head + context + tail
