"""Rule-based quality filters (Gopher-style) and optional language identification. Pure checks.

Defaults are the Gopher paper's (Rae et al. 2021), the same as datatrove's ``GopherQualityFilter`` and
``GopherRepetitionFilter``, so results compare. :func:`filter_reason` returns the first rule a document
breaks (the reason it is dropped for) or None.

Gopher's rules assume English. Where they cannot hold they are adapted, not applied blindly: in text
written mostly in Chinese or Japanese characters (no spaces between words) every such character counts as
a word and the mean-word-length rule is skipped; the English stop-word rule applies only to text mostly
in Latin script, and not at all when ``languages`` is set without ``en``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from rlpt_verl.options import comma_list, opt

STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])
_WORD = re.compile(r"\S+")
_BOILERPLATE = re.compile(
    r"(?i)\b(?:cookies?|javascript|terms of (?:use|service)|privacy policy|all rights reserved|"
    r"click here|sign (?:in|up)|log ?in|subscribe|lorem ipsum)\b"
)


@dataclass(frozen=True)
class FilterConfig:
    min_words: int = opt(50, "filter: documents with fewer words are dropped", low=0)
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1  # "#" and "..." per word
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8  # words with at least one letter
    min_stop_words: int = opt(2, "filter: English stop words a document needs (Gopher rule; 0 = off)")
    max_duplicate_lines: float = 0.3  # share of lines that repeat an earlier line
    max_duplicate_line_chars: float = 0.2
    max_duplicate_paragraphs: float = 0.3
    max_duplicate_paragraph_chars: float = 0.2
    top_ngram_max: tuple = ((2, 0.2), (3, 0.18), (4, 0.16))  # chars of the most frequent n-gram
    duplicate_ngram_max: tuple = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    max_boilerplate_lines: float = 0.5  # lines with cookie/login/legal boilerplate
    languages: tuple = opt((), "keep only these languages, e.g. `en,de` (needs py3langid)", parse=comma_list)
    min_language_score: float = opt(0.65, "language identification confidence a kept document needs")


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(items repeating an earlier one, their characters)."""
    seen, n, chars = set(), 0, 0
    for x in items:
        if x in seen:
            n += 1
            chars += len(x)
        else:
            seen.add(x)
    return n, chars


def _top_ngram_share(words: list[str], n: int, total_chars: int) -> float:
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0.0
    gram, count = grams.most_common(1)[0]
    return count * sum(map(len, gram)) / total_chars if count > 1 else 0.0


def _duplicate_ngram_share(words: list[str], n: int, total_chars: int) -> float:
    """Characters of words covered by an n-gram that occurs more than once, over all word characters."""
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if grams[tuple(words[i : i + n])] > 1:
            for j in range(i, i + n):
                covered[j] = True
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c) / total_chars


_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")  # kana and CJK ideographs
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def words_of(text: str) -> tuple[list[str], bool]:
    """(words, unspaced): whitespace-separated words, or, for text mostly in Chinese/Japanese characters,
    each such character as a word plus the spaced words between them.

    >>> words_of("Ein kurzer Satz.")
    (['Ein', 'kurzer', 'Satz.'], False)
    >>> words_of("今天下雨 OK")
    (['今', '天', '下', '雨', 'OK'], True)
    """
    letters = sum(not c.isspace() for c in text) or 1
    if len(_UNSPACED.findall(text)) < 0.3 * letters:
        return _WORD.findall(text), False
    out = []
    for run in _WORD.findall(text):
        out.extend(
            m
            for m in re.findall(
                r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+",
                run,
            )
        )
    return out, True


def _english_rules_apply(text: str, cfg: FilterConfig) -> bool:
    if cfg.languages and "en" not in cfg.languages:
        return False
    letters = sum(c.isalpha() for c in text) or 1
    return len(_LATIN.findall(text)) >= 0.5 * letters


def filter_reason(text: str, cfg: FilterConfig = FilterConfig()) -> str | None:
    """The first rule ``text`` breaks, or None if it passes.

    >>> filter_reason("too short")
    'too_few_words'
    >>> filter_reason("buy now and save with the deal " * 20)
    'top_2gram'
    """
    words, unspaced = words_of(text)
    n = len(words)
    if n < cfg.min_words:
        return "too_few_words"
    if n > cfg.max_words:
        return "too_many_words"
    mean_len = sum(map(len, words)) / n
    if not unspaced and not cfg.min_mean_word_length <= mean_len <= cfg.max_mean_word_length:
        return "mean_word_length"
    if (text.count("#") + text.count("...") + text.count("…")) / n > cfg.max_symbol_word_ratio:
        return "symbol_ratio"
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if lines:
        if sum(ln.lstrip().startswith(("•", "-", "*", "·")) for ln in lines) / len(lines) > cfg.max_bullet_lines_ratio:
            return "bullet_lines"
        if sum(ln.rstrip().endswith(("...", "…")) for ln in lines) / len(lines) > cfg.max_ellipsis_lines_ratio:
            return "ellipsis_lines"
    if sum(any(c.isalpha() for c in w) for w in words) / n < cfg.min_alpha_words_ratio:
        return "alpha_words_ratio"
    english = cfg.min_stop_words and _english_rules_apply(text, cfg)
    if english and len(STOP_WORDS.intersection(w.lower() for w in words)) < cfg.min_stop_words:
        return "stop_words"
    total_chars = len(text)
    dup, dup_chars = _duplicates(lines)
    if lines and dup / len(lines) > cfg.max_duplicate_lines:
        return "duplicate_lines"
    if total_chars and dup_chars / total_chars > cfg.max_duplicate_line_chars:
        return "duplicate_line_chars"
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    dup, dup_chars = _duplicates(paragraphs)
    if paragraphs and dup / len(paragraphs) > cfg.max_duplicate_paragraphs:
        return "duplicate_paragraphs"
    if total_chars and dup_chars / total_chars > cfg.max_duplicate_paragraph_chars:
        return "duplicate_paragraph_chars"
    lowered = [w.lower() for w in words]
    word_chars = sum(map(len, lowered)) or 1
    for k, limit in cfg.top_ngram_max:
        if _top_ngram_share(lowered, k, word_chars) > limit:
            return f"top_{k}gram"
    for k, limit in cfg.duplicate_ngram_max:
        if _duplicate_ngram_share(lowered, k, word_chars) > limit:
            return f"duplicate_{k}grams"
    if lines and sum(bool(_BOILERPLATE.search(ln)) for ln in lines) / len(lines) > cfg.max_boilerplate_lines:
        return "boilerplate"
    return None


class LanguageID:
    """py3langid (its model ships in the wheel) with normalised probabilities; loaded once per process."""

    _identifier = None

    def __init__(self, languages: tuple, min_score: float):
        self.languages, self.min_score = set(languages), min_score
        if LanguageID._identifier is None:
            try:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier
            except ImportError:
                from ..errors import UserError

                raise UserError("--languages needs py3langid: pip install py3langid") from None
            LanguageID._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def reason(self, text: str) -> tuple[str | None, str, float]:
        lang, score = LanguageID._identifier.classify(text[:20_000])
        if lang not in self.languages:
            return "language", lang, float(score)
        if score < self.min_score:
            return "language_score", lang, float(score)
        return None, lang, float(score)
