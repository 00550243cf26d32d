"""Contamination removal: long word n-gram overlap with evaluation sets (the GPT-3 13-gram method).

Normalisation (both sides): Unicode NFKC, lower case, every run of non-alphanumeric characters is a word
break; a document is contaminated if any of its word n-grams (n = 13) occurs in an evaluation item.
Items shorter than n words are matched whole (their full word sequence as one shorter n-gram), so a
short benchmark question still counts. The matched n-gram and its benchmark are recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from rlpt_verl.nested import strings_in
from rlpt_verl.options import opt

from ..errors import UserError

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class DecontamConfig:
    eval_sets: tuple = opt(
        (), "evaluation set files (.jsonl/.json/.parquet/.txt; any string fields are used)", flag="--decontaminate"
    )
    ngram: int = opt(13, "word n-gram length of a contamination match", flag="--decontam-ngram", low=1)
    min_item_words: int = 8  # shorter items are ignored (too generic to mean contamination)


def words(text: str) -> list[str]:
    """The documented normalisation.

    >>> words("What's 2+2? Café—NOW!")
    ['what', 's', '2', '2', 'café', 'now']
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def _key(tokens) -> bytes:
    return hashlib.blake2b(" ".join(tokens).encode(), digest_size=12).digest()


def _items(path: str) -> Iterator[str]:
    """Every string field of every record (the whole file for .txt)."""
    if path.endswith(".txt"):
        with open(path, encoding="utf-8", errors="replace") as f:
            yield f.read()
    elif path.endswith((".jsonl", ".json")):
        with open(path, encoding="utf-8", errors="replace") as f:
            if path.endswith(".json"):
                data = json.load(f)
                for rec in data if isinstance(data, list) else [data]:
                    yield from strings_in(rec)
                return
            for line in f:
                line = line.strip()
                if line:
                    try:
                        yield from strings_in(json.loads(line))
                    except json.JSONDecodeError:
                        continue
    elif path.endswith(".parquet"):
        import pyarrow.parquet as pq

        for rec in pq.read_table(path).to_pylist():
            yield from strings_in(rec)
    else:
        raise UserError(f"evaluation set {path}: unknown format (use .jsonl, .json, .parquet or .txt)")


class EvalIndex:
    """Hashed word n-grams of every evaluation set, with where each came from."""

    def __init__(self, cfg: DecontamConfig):
        self.cfg = cfg
        self.grams: dict[bytes, str] = {}  # n-gram hash -> benchmark name
        self.lengths: set[int] = set()
        self.items: dict[str, int] = {}
        for path in cfg.eval_sets:
            if not os.path.isfile(path):
                raise UserError(f"evaluation set not found: {path} (pass files with --decontaminate)")
            name = os.path.splitext(os.path.basename(path))[0]
            count = 0
            for text in _items(path):
                toks = words(text)
                if len(toks) < cfg.min_item_words:
                    continue
                count += 1
                n = min(cfg.ngram, len(toks))
                self.lengths.add(n)
                for i in range(len(toks) - n + 1):
                    self.grams.setdefault(_key(toks[i : i + n]), name)
            self.items[name] = count

    def match(self, text: str) -> tuple[str, str] | None:
        """(benchmark, matched n-gram) for the first contaminated n-gram of ``text``, or None."""
        if not self.grams:
            return None
        toks = words(text)
        for n in sorted(self.lengths, reverse=True):
            for i in range(len(toks) - n + 1):
                name = self.grams.get(_key(toks[i : i + n]))
                if name is not None:
                    return name, " ".join(toks[i : i + n])
        return None
