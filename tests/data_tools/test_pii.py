"""PII masking: every type with inline cases, look-alikes that must stay, and real Usenet posts."""

import re

import pytest

from rlpt_verl.data_tools.pii import iban_ok, luhn_ok, mask_pii
from rlpt_verl.tools import assets


@pytest.mark.parametrize(
    "text, masked, kind",
    [
        ("write to jane.doe+news@mail.example.co.uk today", "write to <EMAIL> today", "EMAIL"),
        ("call +1 415 555 0132 now", "call <PHONE> now", "PHONE"),
        ("call (415) 555-0132 now", "call <PHONE> now", "PHONE"),
        ("call 415.555.0132 now", "call <PHONE> now", "PHONE"),
        ("ring +44 20 7946 0958 or +49-30-1234567", "ring <PHONE> or <PHONE>", "PHONE"),
        ("host 192.168.10.254 is up", "host <IP> is up", "IP"),
        ("v6 2001:db8::8a2e:370:7334 and ::1", "v6 <IP> and <IP>", "IP"),
        ("card 4111 1111 1111 1111 expired", "card <CREDIT_CARD> expired", "CREDIT_CARD"),
        ("card 5500-0000-0000-0004 ok", "card <CREDIT_CARD> ok", "CREDIT_CARD"),
        ("pay to DE89 3704 0044 0532 0130 00 please", "pay to <IBAN> please", "IBAN"),
        ("pay to GB82WEST12345698765432.", "pay to <IBAN>.", "IBAN"),
        ("ssn 078-05-1120 on file", "ssn <SSN> on file", "SSN"),
        ("key AKIAIOSFODNN7EXAMPLE in config", "key <SECRET> in config", "SECRET"),
        ("token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "token <SECRET>", "SECRET"),
        ("slack xoxb-123456789012-abcdefghij", "slack <SECRET>", "SECRET"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = <SECRET>",
            "SECRET",
        ),
        ("db postgres://admin:hunter2@db.example.com/app", "db postgres://admin:<SECRET>@db.example.com/app", "SECRET"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "<SECRET>", "SECRET"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt <SECRET>",
            "SECRET",
        ),
    ],
)
def test_each_type_is_masked_with_its_placeholder(text, masked, kind):
    out, counts = mask_pii(text)
    assert out == masked
    assert set(counts) == {kind}


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.11.2 and numpy 1.26.4 were released",  # versions
        "on 2024-05-01 at 12:30:45 UTC",  # dates and times
        "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2",  # ISBNs
        "pi = 3.14159265358979323846 and e = 2.718281828459045",  # long decimals
        "the order number 4111111111111112 fails Luhn",  # card-like, invalid checksum
        "ids 1234567890123 and 20240101 and 1e10",  # plain numbers
        "GB82 WEST 1234 5698 7654 33 is not a valid IBAN",  # bad mod-97
        "SSN-like 000-12-3456 and 666-12-3456 and 123-00-4567 are invalid",  # SSA rules
        "x = 256.1.1.1 is no address, nor 1.2.3",
        "matrix 0.167290000000000000E+05 0.829159999999995925E+05",  # Fortran floats
        "5 + 3 = 8, 12 * 12 = 144, 555-1234 is too short",
        "'{:+010d}'.format(120) gives '+000000120'",  # zero-padded format example (Python's docs): no country code 0
    ],
)
def test_look_alikes_stay(text):
    assert mask_pii(text) == (text, {})


def test_checksums():
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert iban_ok("FR14 2004 1010 0505 0001 3M02 606") and not iban_ok("FR14 2004 1010 0505 0001 3M02 607")


def test_real_usenet_posts_lose_every_email_address():
    email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
    posts = assets.newsgroup_posts()
    before = sum(len(email.findall(p)) for p in posts)
    masked = [mask_pii(p) for p in posts]
    assert before > 1000
    assert sum(c["EMAIL"] for _, c in masked) == before
    assert not any(email.search(text) for text, _ in masked)
    assert all(text.count("<EMAIL>") == c["EMAIL"] for text, c in masked)
