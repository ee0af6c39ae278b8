"""Resident identity numbers (GB 11643-1999): normalisation, check digit, 15→18 upgrade, masking.

The same logic exists as DuckDB macros in ``sql/id_macros.sql`` so that whole tables are normalised
inside the warehouse; this module is the reference the tests hold the macros to.
"""
from __future__ import annotations

import re
import unicodedata

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_STRIP = re.compile(r"[\s\u3000\u00a0\u200b\ufeff'\"‘’“”`]")


def check_digit(first17: str) -> str:
    """The 18th character for the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS))
    return CHECK_CHARS[total % 11]


def clean(raw: str | None) -> str:
    """Remove what keyboards and spreadsheets add: width, spaces of every kind, quotes, case."""
    if raw is None:
        return ""
    text = unicodedata.normalize("NFKC", str(raw))
    return _STRIP.sub("", text).upper()


def upgrade15(id15: str) -> str:
    """A 15-digit legacy ID (born 19yy) as its 18-digit form."""
    body = id15[:6] + "19" + id15[6:15]
    return body + check_digit(body)


def normalize(raw: str | None) -> tuple[str | None, str]:
    """(18-character ID or None, status) where status is valid, bad_check, malformed or empty."""
    text = clean(raw)
    if not text:
        return None, "empty"
    if re.fullmatch(r"\d{15}", text):
        return upgrade15(text), "upgraded15"
    if not re.fullmatch(r"\d{17}[\dX]", text):
        return None, "malformed"
    if check_digit(text[:17]) != text[17]:
        return None, "bad_check"
    return text, "valid"


def mask(id_number: str | None) -> str:
    """Digits 7–14 (the birth date) masked, as CONTRACT.md §5 asks: 420802********1234."""
    if not id_number:
        return ""
    text = str(id_number)
    if len(text) < 14:
        return "*" * len(text)
    return text[:6] + "*" * 8 + text[14:]
