"""PII detection and masking with typed placeholders. Pure: regexes plus checksums, no I/O.

Each candidate must pass a validator where one exists (Luhn for cards, mod-97 for IBANs, octet ranges
for IPv4, :mod:`ipaddress` for IPv6, SSA rules for SSNs), so numbers that only look similar — versions,
dates, ISBNs, arithmetic — stay. Secrets (cloud keys, tokens, private-key blocks, passwords in URLs)
are masked first, so their digits are not taken for phone or card numbers.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

PLACEHOLDERS = ("SECRET", "EMAIL", "IBAN", "CREDIT_CARD", "SSN", "PHONE", "IP")

_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.*?-----END (?:[A-Z]+ )*PRIVATE KEY-----", re.S),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"(?i)(?<=aws_secret_access_key)(\s*[=:]\s*)[A-Za-z0-9/+]{40}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),  # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),  # Slack
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API key
    re.compile(r"\b[sr]k_live_[0-9A-Za-z]{20,}\b"),  # Stripe
    re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}\b"),  # OpenAI-style
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"),  # JWT
]
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.I)
_EMAIL = re.compile(r"\b[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
# not inside a longer number, a decimal fraction or a float exponent
_CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d-]|[.,]\d|[eE][+-]?\d)")
_SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +CC ..., CC never 0
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}"  # (555) 123-4567
    r"|\d{3}([.-])\d{3}\1\d{4}"  # 555-123-4567, 555.123.4567
    r")(?![\w-])"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a card number.

    >>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """ISO 13616 mod-97 check.

    >>> iban_ok("GB82 WEST 1234 5698 7654 32"), iban_ok("GB82 WEST 1234 5698 7654 33")
    (True, False)
    """
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _card(m: re.Match) -> bool:
    digits = re.sub(r"\D", "", m.group(0))
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_ok(digits)


def _ssn(m: re.Match) -> bool:
    area, group, serial = m.group(1), m.group(2), m.group(3)
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _phone(m: re.Match) -> bool:
    return 8 <= len(re.sub(r"\D", "", m.group(0))) <= 15


def _ipv4(m: re.Match) -> bool:
    parts = m.group(0).split(".")
    return all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts)


def _ipv6(m: re.Match) -> bool:
    text = m.group(0)
    if text.count(":") < 2 or not re.search(r"[0-9A-Fa-f]", text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _sub(pattern: re.Pattern, label: str, text: str, counts: Counter, check=None) -> str:
    def repl(m: re.Match) -> str:
        if check is not None and not check(m):
            return m.group(0)
        counts[label] += 1
        return f"<{label}>"

    return pattern.sub(repl, text)


def mask_pii(text: str) -> tuple[str, Counter]:
    """(masked text, counts per placeholder type).

    >>> mask_pii("Mail jane.doe@example.org or call +1 415 555 0132, not version 3.11.2 on 2024-05-01.")
    ('Mail <EMAIL> or call <PHONE>, not version 3.11.2 on 2024-05-01.', Counter({'EMAIL': 1, 'PHONE': 1}))
    """
    counts: Counter = Counter()
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:  # keep the key name and separator, mask the value
            text, n = pattern.subn(lambda m: m.group(1) + "<SECRET>", text)
        else:
            text, n = pattern.subn("<SECRET>", text)
        counts["SECRET"] += n

    def url_password(m: re.Match) -> str:
        counts["SECRET"] += 1
        return m.group(1) + "<SECRET>" + m.group(3)

    text = _URL_PASSWORD.sub(url_password, text)
    text = _sub(_EMAIL, "EMAIL", text, counts)
    text = _sub(_IBAN, "IBAN", text, counts, lambda m: iban_ok(m.group(0)))
    text = _sub(_CARD, "CREDIT_CARD", text, counts, _card)
    text = _sub(_SSN, "SSN", text, counts, _ssn)
    text = _sub(_PHONE, "PHONE", text, counts, _phone)
    text = _sub(_IPV4, "IP", text, counts, _ipv4)
    text = _sub(_IPV6, "IP", text, counts, _ipv6)
    return text, +counts
