"""Unicode and whitespace normalisation. Pure: ``normalize_text`` is what the step applies to each document."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rlpt_verl.options import opt

# C0/C1 control characters except tab and newline (carriage returns become newlines first).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")


@dataclass(frozen=True)
class NormalizeConfig:
    # NFC keeps compatibility characters (ligatures, full-width); NFKC folds them
    form: str = opt("NFC", "Unicode normal form", flag="--unicode-form", choices=("NFC", "NFKC"))
    collapse_spaces: bool = True  # runs of spaces/tabs -> one space; trailing spaces dropped
    max_blank_lines: int = 1  # at most this many empty lines in a row (paragraph breaks stay)


def normalize_text(text: str, cfg: NormalizeConfig = NormalizeConfig()) -> str:
    """Normalised text: Unicode form, no control characters, tidy whitespace.

    >>> normalize_text("Cafe\\u0301\\r\\nA\\x00 \\t b  \\n\\n\\n\\nEnd ")
    'Café\\nA b\\n\\nEnd'
    """
    text = unicodedata.normalize(cfg.form, text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    if cfg.collapse_spaces:
        text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    if cfg.max_blank_lines >= 0:
        k = cfg.max_blank_lines
        text = re.sub("\n{" + str(k + 2) + ",}", "\n" * (k + 1), text)
    return text.strip()
