"""Multiple-choice answer extraction (MMLU, MMLU-Pro, GPQA, SuperGPQA). Pure logic.

Common extractors take the first capital letter, so "A is wrong, so the answer is D" scores A and a lone
article scores A. Rule set ``MC_RULES`` (named with its version in ``eval_report.json``):

1. The reasoning is stripped (``<think>…</think>``, or all before an unclosed ``</think>``); the text is
   NFKC-normalised (full-width ``Ｂ``/``（``/``：``), LaTeX ``\\text{}``/``\\textbf{}`` and markdown bold are
   unwrapped, quotes around a letter are ignored.
2. *Commitments* are read, in three tiers, strongest first:
   - explicit: ``\\boxed{X}`` (also ``\\boxed{\\text{(B) 25\\%}}``), an answer anchor ("the answer is",
     "Answer:", "the correct option is", "X is the correct answer", and ``答案是``, ``故选``, "la réponse est",
     "die Antwort ist", "la respuesta es", "a resposta é", ``Ответ:``, ``答えは``, ``정답은``) followed by the
     first letter in the rest of its line that the reply does not rule out (so words may come between:
     "the answer is for sure D");
   - conclusions: "therefore/thus/hence/so X", "I think it's X", "I'd go with X", a letter closing the
     reply with ``。``;
   - position: a reply that starts with the letter ("D. it can't be A or B") or is only the letter, or a
     last line "(X) …".
   A letter the reply rules out ("not A", "can't be A or B", "A is wrong", "rule out A") is never a
   commitment; "I"/"A" followed by a lowercase word are the pronoun/article ("I think", "A number").
   "Option C is wrong" after the answer is a mention, not a commitment: "option"/"choice" alone are no anchor.
3. The strongest tier that has a commitment decides, and within it the *last* commitment wins (a later
   statement corrects an earlier one, as with several ``\\boxed{}`` in maths). When that tier holds two
   different letters (``Answer: B`` … ``\\boxed{D}``), the reply is graded by that last one and counted as
   ``ambiguous`` in the report.
4. A letter outside the item's options, or no commitment at all, is None (``unparsed``), never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["extract_choice", "read_choice", "Choice", "letters", "MC_RULES"]

MC_RULES = "rlpt-mc-2"

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_UNCLOSED_THINK = re.compile(r"^.*</think>", re.S | re.I)
_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
_BOLD = re.compile(r"\*\*|__")
_QUOTED = re.compile(r"[\"'“”‘’«»「」`]([A-Z])[\"'“”‘’«»「」`]")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_OPEN_DECOR = "([{*"
# a letter token: standalone, optionally in () [] {} **; "I'm", "A-level", "A1" are not letters
_LETTER = re.compile(r"(?<![A-Za-z0-9_\\])[(\[{]?([A-Z])[)\]}]?(?![A-Za-z0-9_]|['’][a-z]|-[A-Za-z])")
_WORD_AFTER = re.compile(r"\s+([a-z]+)")
_LETTER_VERBS = {
    "is", "was", "would", "should", "seems", "appears", "because", "since", "as", "fits", "matches", "best",
    "correct", "and", "or", "must", "will", "remains", "holds", "gives", "states", "describes", "option",
}  # fmt: skip
_NEG_BEFORE = re.compile(
    r"(?:\bnot|n['’]t(?:\s+be)?|\bnever|\bno\b|\brule[sd]?\s+out|\bruling\s+out|\beliminat\w*|\bexcept|\brather\s+than"
    r"|\binstead\s+of|\bunlike|\bwithout|\bexclude\w*|\bagainst)\W*(?:(?:be|options?|choices?|either|both|answers?"
    r"|that|it|is|the)\W+)*$",
    re.I,
)
_NEG_AFTER = re.compile(
    r"^[)\]}.]?\s*(?:(?:is|are|was|seems|looks|would\s+be)\s+)?(?:also\s+)?(?:not\b|n['’]t|wrong|incorrect|false"
    r"|invalid|eliminated|ruled\s+out|out\b|excluded|unlikely|impossible|fails?\b|does\s+not|doesn['’]t|cannot|can['’]t)",
    re.I,
)
_ANCHORS = re.compile(
    r"(?:(?:final|correct|right|best)\s+)?(?:answer|option|choice|response)\s*(?:is|would\s+be|should\s+be|must\s+be"
    r"|will\s+be|:|=|-)\s*(?:therefore|then|thus|probably|likely|clearly)?\s*:?"
    r"|\banswer(?=\s+(?-i:\(?[A-Z]\)?)(?![A-Za-z0-9]))"
    r"|答案\s*(?:应该|应|就)?\s*(?:是|为|:|选)|正确答案\s*(?:是|为|:)?|(?:故|所以|因此|应|应该)?选(?:择)?(?:项)?\s*:?"
    r"|(?:la\s+)?(?:bonne\s+)?réponse\s*(?:correcte\s+)?(?:est|:)|(?:die\s+)?(?:richtige\s+)?antwort\s*(?:ist|lautet|:)"
    r"|(?:la\s+)?respuesta\s*(?:correcta\s+)?(?:es|:)|(?:a\s+)?resposta\s*(?:correta\s+)?(?:é|:)"
    r"|(?:правильный\s+)?ответ\s*(?::|—|-)?|答え\s*(?:は|:)|正解\s*(?:は|:)|정답\s*(?:은|:)",
    re.I,
)
# a letter that the sentence itself calls the answer: "B is the correct answer", "option B is correct"
_POSITIVE = re.compile(
    r"(?:(?:option|choice)\s+)?" + r"\(?([A-Z])\)?" + r"\s+(?:is|would\s+be)\s+(?:the\s+)?(?:correct|right|best|true)"
    r"(?:\s+(?:answer|option|choice|one))?\b(?!\s+(?:except|but))",
)
_CONCLUSIONS = re.compile(
    r"(?:\b(?:therefore|thus|hence|so|consequently|accordingly)\b[,:]?\s*(?:(?:I\s+think|I\s+believe|we\s+get"
    r"|we\s+choose|it\s+is|it['’]s|that|the\s+(?:correct\s+)?(?:answer|option|choice)\s+(?:is|must\s+be))\s*:?\s*)*"
    r"|\bI\s+(?:think|believe|guess|would\s+say|['’]d\s+say)\s+(?:that\s+)?(?:it['’]s|it\s+is|the\s+answer\s+is)?\s*"
    r"|\b(?:go(?:ing)?\s+with|choose|chose|pick|select|opt\s+for)\s+(?:option\s+|choice\s+)?"
    r"|\bmy\s+(?:final\s+)?(?:answer|choice|pick)\s+(?:is|would\s+be)\s*)",
    re.I,
)
_LIST = re.compile(r"\s*(?:,|and\b|or\b|&|/)\s*\(?[A-Z]\b")
_START = re.compile(r"^\W{0,3}?(?<![A-Za-z])([A-Z])(?:\s*[.):：]|\s*$)")
_ONLY = re.compile(r"^\W*([A-Z])\W*$")
_LAST_LINE = re.compile(r"^\s*\(?([A-Z])\)\s", re.M)
_CJK_END = re.compile(r"(?<![A-Za-z])([A-Z])\s*。\s*$")


@dataclass(frozen=True)
class Choice:
    letter: str | None
    ambiguous: bool = False  # the deciding tier held two different letters
    rule: str = "none"  # which tier decided: explicit, conclusion, position, none


def letters(n_choices: int) -> str:
    """The option letters of an item with ``n_choices`` options (MMLU 4, MMLU-Pro up to 10).

    >>> letters(4)
    'ABCD'
    """
    if not 1 <= n_choices <= 26:
        raise ValueError(f"an item needs 1..26 options, got {n_choices}")
    return "".join(chr(ord("A") + i) for i in range(n_choices))


def _clean(response: str) -> str:
    text = _THINK.sub(" ", response)
    if "</think>" in text.lower():
        text = _UNCLOSED_THINK.sub(" ", text)
    text = unicodedata.normalize("NFKC", text)
    for _ in range(3):
        text = _WRAP.sub(r" \1 ", text)
    return _QUOTED.sub(r" \1 ", _BOLD.sub("", text))


def _is_word(text: str, m: re.Match, at_anchor: bool) -> bool:
    """The pronoun "I" or the article "A" rather than an option letter."""
    letter = m.group(1)
    if letter not in "AI" or m.group(0) != letter or at_anchor and letter == "A":
        return False
    nxt = _WORD_AFTER.match(text, m.end())
    return nxt is not None and nxt.group(1) not in _LETTER_VERBS


def _ruled_out(text: str, m: re.Match) -> bool:
    before = text[max(0, m.start() - 40) : m.start()]
    clause = re.split(r"[.;!?\n]|,\s*(?:but|so|and\s+so)\b", before)[-1]
    if _NEG_BEFORE.search(clause) or re.search(r"(?:\bnot|n['’]t\s+be)\b[^.;!?\n]*\bor\W*$", clause, re.I):
        return True
    return bool(_NEG_AFTER.match(text[m.end() : m.end() + 40]))


def _first_letter(text: str, start: int, end: int) -> tuple[int, str] | None:
    """The first letter in text[start:end] the reply does not rule out (position, letter)."""
    for i, m in enumerate(_LETTER.finditer(text, start, end)):
        if _is_word(text, m, at_anchor=i == 0 and not text[start : m.start()].strip()):
            continue
        if _ruled_out(text, m):
            continue
        return m.start(), m.group(1)
    return None


def _box_letters(text: str) -> list[tuple[int, str]]:
    out = []
    for m in _BOX.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        inner = text[m.end() : i - 1] if not depth else text[m.end() :]
        got = re.match(r"^\W*?\(?([A-Z])\)?(?![A-Za-z0-9])", inner.strip())
        if got:
            out.append((m.start(), got.group(1)))
    return out


def _line_end(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return min(len(text), pos + 160) if nl < 0 else min(nl, pos + 160)


def read_choice(response: str, n_choices: int = 4) -> Choice:
    """The option ``response`` commits to under ``MC_RULES``, with the tier that decided and ambiguity.

    >>> read_choice("Answer: B\\nExplanation: Choice A is incorrect")
    Choice(letter='B', ambiguous=False, rule='explicit')
    >>> read_choice("Answer: B. On reflection \\\\boxed{D}")
    Choice(letter='D', ambiguous=True, rule='explicit')
    """
    valid = letters(n_choices)
    text = _clean(response)
    explicit = _box_letters(text)
    for m in _ANCHORS.finditer(text):
        got = _first_letter(text, m.end(), _line_end(text, m.end()))
        if got:
            explicit.append(got)
    explicit += [(m.start(), m.group(1)) for m in _POSITIVE.finditer(text) if not _ruled_out(text, m)]
    conclusions = []
    for m in _CONCLUSIONS.finditer(text):  # the letter right after the phrase, not a list ("A and B")
        got = _LETTER.match(text, m.end() + len(text[m.end() :]) - len(text[m.end() :].lstrip(" \t:,")))
        if got and not _LIST.match(text, got.end()) and not _is_word(text, got, False) and not _ruled_out(text, got):
            conclusions.append((got.start(), got.group(1)))
    conclusions += [(m.start(), m.group(1)) for m in _CJK_END.finditer(text)]
    position = []
    for pattern in (_ONLY, _START):
        m = pattern.match(text.strip())
        if m and not (m.group(1) == "I" and pattern is _START and not re.match(r"^\W*I\s*[.):]", text.strip())):
            position.append((0, m.group(1)))
            break
    if not position:
        position += [(m.start(), m.group(1)) for m in _LAST_LINE.finditer(text)][-1:]
    for rule, found in (("explicit", explicit), ("conclusion", conclusions), ("position", position)):
        if found:
            found.sort()
            letter = found[-1][1]
            ambiguous = len({x for _, x in found}) > 1
            return Choice(letter if letter in valid else None, ambiguous, rule)
    return Choice(None)


def extract_choice(response: str, n_choices: int = 4) -> str | None:
    """The option letter ``response`` commits to, or None (see :func:`read_choice`).

    >>> [extract_choice(r) for r in ("Answer: A", "the answer is (C)", "so \\\\boxed{B}", "A is wrong: answer D")]
    ['A', 'C', 'B', 'D']
    >>> extract_choice("The answer is a number."), extract_choice("The answer is E", 4), extract_choice("B")
    (None, None, 'B')
    """
    return read_choice(response, n_choices).letter
