"""Agreement of `rlpt eval`'s graders with known verdicts: maths and multiple-choice gold/response pairs.

The cases are written here (no benchmark data): each gold answer is crossed with reply styles seen in real
model outputs (reasoning traces with ``</think>``, self-corrections, several boxes, LaTeX variants, units,
equivalent forms, quoted or boxed letters, anchors in other languages, text after the answer that mentions
other options), each with the verdict a careful reader gives. It prints the agreement of our graders and of
a baseline run in the same process (maths: Math-Verify's defaults on the whole reply; multiple choice: the
"answer is X"-then-first-capital rule common harnesses use) and lists every case where ours disagrees.

    python benchmarks/bench_grader_agreement.py
"""

from __future__ import annotations

import re
import sys

from rlpt_verl.boxes import final_boxed
from rlpt_verl.eval.choices import read_choice
from rlpt_verl.eval.math_check import verify_one

# (gold as a benchmark stores it, equivalent forms a reply may use, wrong answers a reply may give)
MATH_GOLDS = [
    ("3", ["3.0", "\\frac{6}{2}"], ["4", "-3"]),
    ("\\frac{1}{2}", ["0.5", "\\dfrac{1}{2}", "1/2"], ["2", "\\frac{1}{3}"]),
    ("2\\sqrt{3}", ["\\sqrt{12}", "2 \\sqrt 3"], ["3\\sqrt{2}", "\\sqrt{6}"]),
    ("-5", ["-5.0", "-\\frac{10}{2}"], ["5", "-4"]),
    ("204", ["204.0", "204"], ["240", "2040"]),
    ("\\pi", ["\\pi", "1\\pi"], ["2\\pi", "\\frac{\\pi}{2}"]),
    ("x^2+1", ["1+x^2", "x^{2}+1"], ["x^2-1", "x^2"]),
    ("\\frac{3}{4}", ["0.75", "\\tfrac34"], ["\\frac{4}{3}", "0.7"]),
    ("12", ["12", "12.00"], ["11", "13"]),
    ("(1, 2)", ["(1,2)", "\\left(1, 2\\right)"], ["(2, 1)", "(1, 3)"]),
    ("[1, 2)", ["[1,2)"], ["(1, 2)", "[1, 2]"]),
    ("\\frac{\\sqrt{2}}{2}", ["\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt2}{2}"], ["\\sqrt{2}", "\\frac{1}{2}"]),
    ("0", ["0.0", "-0"], ["1", "0.1"]),
    ("e^2", ["e^{2}", "\\exp(2)"], ["e", "2e"]),
    ("\\frac{7}{3}", ["\\frac{14}{6}", "2\\frac{1}{3}"], ["\\frac{3}{7}", "2.3"]),
    ("1000", ["1000", "10^3"], ["100", "999"]),
    ("2^{10}", ["1024", "2^10"], ["1023", "2^{11}"]),
    ("\\infty", ["\\infty", "+\\infty"], ["-\\infty", "0"]),
    ("5", ["5", "\\frac{25}{5}"], ["6", "25"]),
    ("\\frac{1}{6}", ["\\frac{2}{12}", "1/6"], ["\\frac{1}{5}", "6"]),
    ("-\\frac{1}{2}", ["-0.5", "\\frac{-1}{2}"], ["\\frac{1}{2}", "-2"]),
    ("3\\sqrt{5}", ["\\sqrt{45}", "3 \\sqrt{5}"], ["5\\sqrt{3}", "\\sqrt{15}"]),
    ("8", ["8.0", "2^3"], ["9", "16"]),
    ("\\frac{5}{8}", ["0.625", "\\frac{10}{16}"], ["\\frac{8}{5}", "0.6"]),
    ("a+b", ["b+a", "(a+b)"], ["a-b", "ab"]),
]
# several answers together: (gold as a solution writes it, equivalent replies, wrong replies)
MULTI_GOLDS = [
    (
        "\\boxed{1}\\boxed{2}",
        ["\\boxed{1,2}", "\\boxed{2, 1}", "\\boxed{1} and \\boxed{2}"],
        ["\\boxed{2}", "\\boxed{1,3}"],
    ),
    (
        "\\(\\boxed{1}\\) and \\(\\boxed{-2}\\)",
        ["\\boxed{-2,1}", "\\boxed{1, -2}", "$x=\\boxed{1}$ or $x=\\boxed{-2}$"],
        ["\\boxed{1}", "\\boxed{-1, 2}"],
    ),  # fmt: skip
    ("\\boxed{3}, \\boxed{5}", ["\\boxed{3, 5}", "\\boxed{5,3}"], ["\\boxed{3}", "\\boxed{35}"]),
    ("\\boxed{0} or \\boxed{4}", ["\\boxed{0, 4}", "\\boxed{4} or \\boxed{0}"], ["\\boxed{4}", "\\boxed{0, 2}"]),
]
UNIT_GOLDS = [("10", "cm", ["10 \\text{ cm}", "10\\,\\mathrm{cm}"], ["12 \\text{ cm}"]),
              ("2.5", "m/s", ["2.5 \\text{ m/s}", "2.50 \\mathrm{m/s}"], ["25 \\text{ m/s}"])]  # fmt: skip


def math_styles(answer: str, wrong: str) -> tuple[list[str], list[str]]:
    """Reply styles that should be graded correct (saying ``answer``) and wrong (ending on ``wrong``)."""
    right = [
        f"The final answer is $\\boxed{{{answer}}}$.",
        f"So we get \\[\\boxed{{{answer}}}\\]",
        f"<think>Let me try: maybe \\boxed{{{wrong}}}. No, recheck.</think>\nThe answer is $\\boxed{{{answer}}}$.",
        f"First guess \\boxed{{{wrong}}}, but correcting the sign error, the final answer is \\boxed{{{answer}}}.",
        f"**Final Answer**\n\\boxed{{{answer}}}\nI hope it is correct.",
    ]
    wrong_ = [
        f"The final answer is $\\boxed{{{wrong}}}$.",
        f"I first got \\boxed{{{answer}}}, but that was a mistake; the final answer is \\boxed{{{wrong}}}.",
        f"<think>\\boxed{{{answer}}} looks right.</think>\nOn reflection the answer is $\\boxed{{{wrong}}}$.",
    ]
    return right, wrong_


def math_cases() -> list[tuple[str, str, dict, bool]]:
    cases = []
    for gold, equivalents, wrongs in MATH_GOLDS:
        for eq in [gold, *equivalents]:
            right, wrong = math_styles(eq, wrongs[0])
            cases += [(r, gold, {}, True) for r in right]
        cases += [(w, gold, {}, False) for w in math_styles(gold, wrongs[1])[1]]
        cases += [(f"The answer is \\boxed{{{w}}}." , gold, {}, False) for w in wrongs]  # fmt: skip
        cases.append(("I could not finish the computation.", gold, {}, False))
        cases.append(("<think>long reasoning that never ends", gold, {}, False))
    for solution, right, wrong in MULTI_GOLDS:
        gold = final_boxed(solution)  # what `rlpt eval` and `rlpt math-data` store for such a solution
        cases += [(f"Therefore {r}.", gold, {}, True) for r in right]
        cases += [(f"Therefore {w}.", gold, {}, False) for w in wrong]
    for gold, unit, right, wrong in UNIT_GOLDS:
        cases += [(f"The length is \\boxed{{{r}}}.", gold, {"unit": unit}, True) for r in right]
        cases += [(f"The length is \\boxed{{{w}}}.", gold, {"unit": unit}, False) for w in wrong]
    return cases


OPTIONS = {"A": "12", "B": "25\\%", "C": "600 nm", "D": "none of these"}


def mc_styles(x: str, y: str, z: str) -> tuple[list[str], list[str]]:
    """(replies that commit to x, replies that do not): y and z are other options."""
    right = [
        f"The answer is {x}.", f"Answer: {x}", f"\\boxed{{{x}}}", f"\\boxed{{\\text{{({x}) {OPTIONS[x]}}}}}",
        f'Answer: "{x}"', f"The answer is for sure {x}, it can't be {y} or {z}", f"{x}. it can't be {y} or {z}",
        f"Looking at each option carefully... therefore I think it's {x}",
        f"Answer: Let's think step by step. {y} fails the units check. Therefore, {x}.", f"答案是 {x}",
        f"la réponse est {x}", f"Answer: {x}\nExplanation: Choice {y} is incorrect because of the sign.",
        f"The answer is {x}. Option {y} is wrong.", f"<think>Maybe {y}? No.</think>The answer is ({x})",
        f"{y} is wrong, so the answer is {x}", f"**Answer: ({x})**", f"({x})", f"经过分析，{x}。",
        f"We can eliminate {y} and {z}. The correct option is {x}.", f"Die Antwort ist {x}.",
        f"Option {x} is the correct answer.", f"I'd go with {x}.",
    ]  # fmt: skip
    wrong = [
        f"The answer is {y}.", f"Answer: {x}\nWait, I misread the question. The answer is {y}.",
        f"I can't decide between {x} and {y}.", "The answer is a number I cannot compute.",
        f"<think>The answer is {x}</think>", f"It is not {x}. The answer is {y}.",
    ]  # fmt: skip
    return right, wrong


def mc_cases() -> list[tuple[str, str, bool]]:
    cases = []
    letters = "ABCD"
    for i, x in enumerate(letters):
        for j in range(1, 4):
            y, z = letters[(i + j) % 4], letters[(i + j + 1) % 4]
            right, wrong = mc_styles(x, y, z)
            cases += [(r, x, True) for r in right[j - 1 :: 3]] if j > 1 else [(r, x, True) for r in right]
            cases += [(w, x, False) for w in wrong]
    return cases


def baseline_mc(response: str) -> str | None:
    """What common harnesses do: "answer is (X)" if present, else the first capital A-D standing alone."""
    m = re.search(r"answer is \(?([A-D])\)?", response)
    if m:
        return m.group(1)
    m = re.search(r"\b([A-D])\b", response)
    return m.group(1) if m else None


def baseline_math(response: str, gold: str) -> bool:
    from math_verify import parse, verify

    return bool(verify(parse(f"${gold}$") or parse(gold), parse(response)))


def main() -> int:
    maths = math_cases()
    mc = mc_cases()
    ours_m = [(verify_one(r, g, grading) == "correct") == want for r, g, grading, want in maths]
    base_m = [baseline_math(r, g) == want for r, g, _, want in maths]
    ours_c = [(read_choice(r, 4).letter == x) == want for r, x, want in mc]
    base_c = [(baseline_mc(r) == x) == want for r, x, want in mc]

    def pct(xs):
        return 100 * sum(xs) / len(xs)

    print(f"maths: {len(maths)} cases; ours {pct(ours_m):.1f}% agree, Math-Verify defaults alone {pct(base_m):.1f}%")
    print(f"multiple choice: {len(mc)} cases; ours {pct(ours_c):.1f}% agree, common-harness rule {pct(base_c):.1f}%")
    print(
        f"ratio (ours / baseline): maths {pct(ours_m) / pct(base_m):.3f}, "
        f"multiple choice {pct(ours_c) / pct(base_c):.3f}"
    )
    for (r, g, _, want), ok in zip(maths, ours_m, strict=True):
        if not ok:
            print(f"  maths disagreement: gold {g!r}, expected {'correct' if want else 'not correct'}: {r!r}")
    for (r, x, want), ok in zip(mc, ours_c, strict=True):
        if not ok:
            print(f"  mc disagreement: gold {x}, expected {'correct' if want else 'not correct'}: {r!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
