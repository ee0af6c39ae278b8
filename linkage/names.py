"""Chinese name comparison by characters (never DuckDB's byte-based similarity functions).

Canonical form: NFKC, no spaces of any kind, minority-name separators (· • . ・) removed, traditional →
simplified with OpenCC except for surnames OpenCC would rewrite wrongly (於 is a surname of its own, not
于). Positions then agree when the characters are equal, when one side is `?` (a rare character the
sender's system could not store), when one side is that character's pinyin, or when both read the same
(a homophone typo). Pinyin uses the correct surname readings, which pypinyin gets wrong for the first
character (单 shan, 曾 zeng, 解 xie, 仇 qiu, 区 ou, 朴 piao).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin
from rapidfuzz.distance import Levenshtein

SURNAME_READINGS = {"单": "shan", "曾": "zeng", "解": "xie", "仇": "qiu", "区": "ou", "朴": "piao", "盖": "ge",
                    "查": "zha", "尉": "yu", "乐": "yue", "覃": "qin", "缪": "miao", "秘": "bi", "晟": "cheng"}
PROTECTED_SURNAMES = {"於"}            # OpenCC t2s turns 於 into 于; as a surname it is its own
_SEPARATORS = re.compile(r"[\s\u3000\u00a0·•.．・‧∙]")
_UNITS = re.compile(r"[a-z]+|.")
_t2s = OpenCC("t2s")
AGREE_AT = 0.6                          # share of agreeing positions from which names agree


@lru_cache(maxsize=500_000)
def canonical(name: str | None) -> str:
    if not name:
        return ""
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", name)).lower()
    if not text:
        return ""
    simplified = _t2s.convert(text)
    if text[0] in PROTECTED_SURNAMES:
        simplified = text[0] + simplified[1:]
    return simplified


@lru_cache(maxsize=500_000)
def _reading(char: str, first: bool) -> str:
    if first and char in SURNAME_READINGS:
        return SURNAME_READINGS[char]
    return lazy_pinyin(char, style=Style.NORMAL, errors="ignore")[0] if "\u4e00" <= char <= "\u9fff" else char


def _unit_agrees(a: str, b: str, first: bool) -> bool:
    if a == b or a == "?" or b == "?":
        return True
    a_latin, b_latin = a.isascii() and a.isalpha(), b.isascii() and b.isalpha()
    if a_latin or b_latin:
        return (a if a_latin else _reading(a, first)) == (b if b_latin else _reading(b, first))
    return _reading(a, first) == _reading(b, first)


def agreement(a: str | None, b: str | None) -> tuple[float, str]:
    """(score 0–1, what agreed: exact | fuzzy | none | missing)."""
    ca, cb = canonical(a), canonical(b)
    if not ca or not cb:
        return 0.0, "missing"
    if ca == cb:
        return 1.0, "exact"
    ua, ub = _UNITS.findall(ca), _UNITS.findall(cb)
    if len(ua) == len(ub):
        score = sum(_unit_agrees(x, y, i == 0) for i, (x, y) in enumerate(zip(ua, ub))) / len(ua)
    else:
        score = Levenshtein.normalized_similarity(ca, cb)
    return round(score, 3), ("fuzzy" if score >= AGREE_AT else "none")


def names_agree(a: str | None, b: str | None) -> bool:
    score, what = agreement(a, b)
    return what in ("exact", "fuzzy")
