"""Chinese person names compared character by character (never with DuckDB's similarity functions,
which count UTF-8 bytes: a Han character is three bytes, so one wrong character looks like three).

Public API
----------
``canonical(name) -> str``
    NFKC (full width, compatibility ideographs), lower case, no spaces of any kind, the separators of
    minority names removed (· • . ． ・ ‧ ∙ ⋅ ● and a space), tone marks stripped from Latin letters (ü → v),
    and each Han character folded to its simplified standard form: OpenCC t2s per character, then the
    variant (异体字) table of ``name_chars.yaml``. Characters that are standard simplified characters of
    their own are never rewritten, although OpenCC t2s changes them: 於 (a surname, not 于), 乾 (qian,
    not 干), 徵, 後, 夥, 麽 … (``KEEP``: every GB2312 character OpenCC t2s alters). Two deliveries of the
    same name written with different separators, spaces, width or script have the same canonical form.
``agreement(a, b) -> (score, what)``
    ``score`` in 0–1; ``what`` is ``missing`` (a side is empty or has no legible character), ``none``
    (the names clearly disagree), ``exact`` (the same name: equal canonical forms, or differing only by
    traditional/variant characters, spaces, separators, width or case; score 1.0) or the ``+``-joined
    kinds of typo that explain the difference, in this order: ``rare`` (``?``/``？``/``�``/``□``/``〓``/``*`` for a character the sender's
    system could not store), ``pinyin`` (a character written as its pinyin, ``王yan`` / ``王 Yan`` for
    王琰), ``homophone`` (same toneless pinyin), ``lookalike`` (形近字 of ``name_chars.yaml``).
    For two legible names, ``what == 'none'`` exactly when ``score < AGREE_AT``.
``AGREE_AT``
    score from which names agree (every agreeing pair scores >= 0.8; every ``none`` at most 0.7).
``name_keys(name) -> NameKeys(canonical, pinyin, initials)``
    blocking keys for fuzzy linkage: the canonical form, its toneless pinyin without spaces (surnames
    read as surnames: 单 shan, 曾 zeng, 解 xie, 仇 qiu, 区 ou, 朴 piao …; other characters in their most
    common reading; Latin kept, wildcards as ``?``) and the pinyin initials (``zw`` for 张伟). A homophone
    typo keeps the pinyin key; a traditional, variant or separator defect keeps all three.
``explain(a, b) -> (score, what, detail)``
    ``detail`` is ``what`` with the writing differences told apart: ``format`` (spaces, separators,
    width, case only) and ``variant`` (traditional or variant characters, ``+``-joined before the others).
``names_agree(a, b) -> bool``

Rules of ``agreement``
----------------------
Names are split into positions: one per Han character or wildcard, one per Latin run (which may stand
for one or more Han characters on the other side: ``王yanjie`` ~ 王䶮㛃). Each position is

=========  ======  =====================================================================
exact      1.0     same character as written
variant    1.0     same after folding (traditional / variant)
pinyin     0.85    Latin run = the characters' pinyin (same readings as for homophones)
rare       0.8     a wildcard on either side (or pinyin for a character pypinyin cannot read)
homophone  0.7     the toneless readings intersect (a character's most common reading, or
                   the name readings of ``POLYPHONES``; at the first position a surname
                   of ``SURNAME_READINGS`` only in its surname reading: 单 is shan, not dan)
lookalike  0.6     look-alike pair of the table (after folding)
(none)     0       anything else
=========  ======  =====================================================================

The names agree when every position is explained, at least one position is a real character that is
the same (exact or variant) — unless one side is entirely pinyin — and at most one position (two for
names of four or more positions) is a homophone or look-alike. Names of different length (a missing or
extra character, 张伟 / 张伟伟) and reordered names (张伟 / 伟张, 买买提·艾力 / 艾力·买买提) disagree.
The score is the mean position weight; for ``none`` it is capped at 0.7.

Speed: everything per name (folding, splitting) and per character (readings) is cached; pypinyin is
called once per distinct character, OpenCC once per distinct character.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import yaml
from opencc import OpenCC
from pypinyin import Style, lazy_pinyin
from rapidfuzz.distance import Levenshtein

if TYPE_CHECKING:
    import pandas as pd

AGREE_AT = 0.75
_NONE_CAP = 0.7

# Surname readings (position 0 only). pypinyin reads these wrongly as the first character of a name.
SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    "单": ("shan",), "曾": ("zeng",), "解": ("xie",), "仇": ("qiu",), "区": ("ou",), "朴": ("piao",),
    "盖": ("ge", "gai"), "查": ("zha",), "尉": ("wei", "yu"), "乐": ("yue", "le"), "覃": ("qin", "tan"),
    "缪": ("miao",), "秘": ("bi",), "晟": ("cheng",), "种": ("chong",), "员": ("yun",), "句": ("gou",),
    "召": ("shao",), "折": ("she",), "繁": ("po",), "能": ("nai",), "万": ("wan", "mo"), "长": ("chang", "zhang"),
    "重": ("chong",), "黑": ("he",), "费": ("fei", "bi"), "翟": ("zhai",), "薄": ("bo",), "沈": ("shen",),
    "於": ("yu",), "乾": ("qian",), "阚": ("kan",), "莘": ("shen",), "眭": ("sui",), "隗": ("wei",),
    "逄": ("pang",), "柏": ("bai",), "都": ("du",), "宿": ("su",), "相": ("xiang",), "炅": ("gui",),
}
# Polyphonic characters common in names, with the readings they have in names. Every other character
# is compared in its most common reading only: pypinyin's full heteronym lists hold archaic readings
# (王 yu, 明 meng, 红 gong, 重 tong) that would make unrelated characters homophones.
POLYPHONES: dict[str, tuple[str, ...]] = {
    "长": ("chang", "zhang"), "乐": ("le", "yue"), "行": ("xing", "hang"), "重": ("zhong", "chong"),
    "朝": ("chao", "zhao"), "单": ("dan", "shan", "chan"), "曾": ("ceng", "zeng"), "解": ("jie", "xie"),
    "仇": ("chou", "qiu"), "区": ("qu", "ou"), "朴": ("pu", "piao"), "查": ("cha", "zha"), "盖": ("gai", "ge"),
    "覃": ("tan", "qin"), "缪": ("miu", "miao"), "秘": ("mi", "bi"), "尉": ("wei", "yu"), "会": ("hui", "kuai"),
    "大": ("da", "dai"), "传": ("chuan", "zhuan"), "柏": ("bai", "bo"), "都": ("du", "dou"), "藏": ("cang", "zang"),
    "参": ("can", "shen"), "种": ("zhong", "chong"), "翟": ("di", "zhai"), "晟": ("sheng", "cheng"),
    "茜": ("qian", "xi"), "莎": ("sha", "suo"), "薄": ("bo", "bao"), "蔚": ("wei", "yu"), "阿": ("a", "e"),
    "万": ("wan", "mo"), "沈": ("shen",), "於": ("yu", "wu"), "乾": ("qian", "gan"), "徵": ("zheng", "zhi"),
    "员": ("yuan", "yun"), "句": ("ju", "gou"), "召": ("zhao", "shao"), "能": ("neng", "nai"),
    "繁": ("fan", "po"), "费": ("fei", "bi"), "宿": ("su", "xiu"), "相": ("xiang",), "炅": ("jiong", "gui"),
    "奇": ("qi", "ji"), "系": ("xi", "ji"), "省": ("sheng", "xing"), "弹": ("dan", "tan"), "差": ("cha", "chai"),
    "校": ("xiao", "jiao"), "莘": ("shen", "xin"), "隗": ("wei", "kui"), "折": ("zhe", "she"),
    "黑": ("hei", "he"), "着": ("zhe", "zhuo"), "卜": ("bu",), "叶": ("ye",), "华": ("hua",), "任": ("ren",),
}
# Compound surnames whose reading differs from the characters' usual ones.
COMPOUND_READINGS = {"尉迟": ("yu", "chi"), "万俟": ("mo", "qi"), "单于": ("chan", "yu"),
                     "长孙": ("zhang", "sun"), "澹台": ("tan", "tai"), "乐正": ("yue", "zheng")}
# Standard simplified characters OpenCC t2s rewrites (every such GB2312 character): never fold them.
KEEP = frozenset("乾菸薹拚捱摺吒後徵夥榘於袷麴醣麽")
PROTECTED_SURNAMES = frozenset("於乾徵")          # kept for callers of the old API; subset of KEEP
WILDCARDS = frozenset("?*\ufffd□■〓")

_TABLES = yaml.safe_load(Path(__file__).with_name("name_chars.yaml").read_text(encoding="utf-8"))
VARIANTS: dict[str, str] = dict(_TABLES["variants"])
LOOKALIKES: dict[str, frozenset[str]] = {}
for _group in _TABLES["lookalikes"]:
    for _x, _y in combinations(_group, 2):
        LOOKALIKES[_x] = LOOKALIKES.get(_x, frozenset()) | {_y}
        LOOKALIKES[_y] = LOOKALIKES.get(_y, frozenset()) | {_x}

WEIGHT = {"exact": 1.0, "variant": 1.0, "pinyin": 0.85, "rare": 0.8, "homophone": 0.7, "lookalike": 0.6,
          None: 0.0}
_KIND_ORDER = ("variant", "rare", "pinyin", "homophone", "lookalike")
_SEPARATORS = re.compile(r"[\s\u3000\u00a0\u200b\u200c\u200d\u2060\ufeff·•.．・‧∙⋅●_\-'’]")
_UNITS = re.compile(r"[a-z]+|.")
_PLAIN_HAN = re.compile(r"[\u4e00-\u9fff]+")
_t2s = OpenCC("t2s")


def _is_han(c: str) -> bool:
    o = ord(c)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x3FFFF
            or 0xF900 <= o <= 0xFAFF or c == "〇")


@lru_cache(maxsize=100_000)
def _fold(c: str) -> str:
    """One character in its simplified standard form."""
    if c in VARIANTS:
        return VARIANTS[c]
    if c in KEEP or not _is_han(c):
        return c
    s = _t2s.convert(c)
    s = VARIANTS.get(s, s)
    return s if len(s) == 1 else c


def _latin(text: str) -> str:
    text = text.replace("ü", "v").replace("Ü", "v")
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


@lru_cache(maxsize=500_000)
def _units(name: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(units as written, units folded): Han characters, wildcards and Latin runs, separators removed."""
    if not name:
        return (), ()
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", str(name)))
    if _PLAIN_HAN.fullmatch(text):      # most names: nothing to strip or lower, one unit per character
        raw = tuple(text)
        return raw, tuple(_fold(u) for u in raw)
    if not text.isascii():
        text = _latin(text)
    text = text.lower()
    raw = tuple(_UNITS.findall(text))
    return raw, tuple(_fold(u) if len(u) == 1 else u for u in raw)


@lru_cache(maxsize=500_000)
def canonical(name: str | None) -> str:
    return "".join(_units(name)[1])


def canonical_many(names) -> list[str]:
    """canonical() of many names without filling the per-name caches: converting a whole hukou (a million
    distinct names at scale 1) through the caches would keep several hundred MB alive for the night."""
    units = _units.__wrapped__
    return ["".join(units(n)[1]) for n in names]


@lru_cache(maxsize=200_000)
def _readings(c: str, first: bool) -> frozenset[str]:
    """Toneless pinyin readings of one character (ü as v); a surname only in its surname reading."""
    if first and c in SURNAME_READINGS:
        return frozenset(SURNAME_READINGS[c])
    if not _is_han(c):
        return frozenset()
    if c in POLYPHONES:
        return frozenset(POLYPHONES[c])
    got = lazy_pinyin(c, style=Style.NORMAL, errors=lambda x: [""])
    return frozenset(r for r in got[:1] if r and r.isascii() and r.isalpha())


def _readings_at(units: tuple[str, ...], i: int) -> frozenset[str]:
    if i < 2 and len(units) >= 2 and units[0] + units[1] in COMPOUND_READINGS:
        return frozenset({COMPOUND_READINGS[units[0] + units[1]][i]})
    return _readings(units[i], i == 0)


def _u(s: str) -> str:
    return s.replace("v", "u")


def _char_verdict(ra: str, fa: str, rb: str, fb: str, rda: frozenset, rdb: frozenset) -> str | None:
    if ra == rb:
        return "rare" if ra in WILDCARDS else "exact"
    if ra in WILDCARDS or rb in WILDCARDS:
        return "rare"
    if fa == fb:
        return "variant"
    if rda & rdb:
        return "homophone"
    if fb in LOOKALIKES.get(fa, ()) or rb in LOOKALIKES.get(ra, ()):
        return "lookalike"
    return None


def _pinyin_cover(latin: str, units: tuple[str, ...], j: int) -> list[tuple[int, str]]:
    """Ways the Latin run can stand for units[j:j+k]: [(k, kind)]."""
    latin = _u(latin)
    out = []

    def walk(pos: int, k: int, unknown: bool) -> None:
        if pos == len(latin) and k:
            out.append((k, "rare" if unknown else "pinyin"))
            return
        if j + k >= len(units) or k >= 6:
            return
        c = units[j + k]
        if c in WILDCARDS or len(c) != 1 or not _is_han(c):
            return
        reads = _readings_at(units, j + k)
        if not reads and k == 0 and len(latin) <= 6:      # a character pypinyin cannot read: trust it
            out.append((1, "rare"))
            return
        for r in reads:
            r = _u(r)
            if latin.startswith(r, pos):
                walk(pos + len(r), k + 1, unknown)

    walk(0, 0, False)
    return out


def _align(ra: tuple, fa: tuple, rb: tuple, fb: tuple) -> list[str | None] | None:
    """Best per-position verdicts aligning a with b (Latin runs may cover several characters)."""
    memo: dict[tuple[int, int], tuple[float, list] | None] = {}

    def best(i: int, j: int) -> tuple[float, list] | None:
        if (i, j) in memo:
            return memo[i, j]
        if i == len(ra) and j == len(rb):
            return 0.0, []
        if i == len(ra) or j == len(rb):
            memo[i, j] = None
            return None
        options: list[tuple[float, list]] = []
        a_lat, b_lat = len(ra[i]) > 1 or ra[i].isascii() and ra[i].isalpha(), \
            len(rb[j]) > 1 or rb[j].isascii() and rb[j].isalpha()
        if a_lat and not b_lat:
            covers = [(k, kind) for k, kind in _pinyin_cover(ra[i], rb, j)] if rb[j] not in WILDCARDS \
                else [(1, "rare")]
            for k, kind in covers:
                rest = best(i + 1, j + k)
                if rest is not None:
                    options.append((rest[0] + WEIGHT[kind] * k, [kind] * k + rest[1]))
        elif b_lat and not a_lat:
            covers = [(k, kind) for k, kind in _pinyin_cover(rb[j], ra, i)] if ra[i] not in WILDCARDS \
                else [(1, "rare")]
            for k, kind in covers:
                rest = best(i + k, j + 1)
                if rest is not None:
                    options.append((rest[0] + WEIGHT[kind] * k, [kind] * k + rest[1]))
        else:
            if a_lat and b_lat:
                verdict = "exact" if _u(ra[i]) == _u(rb[j]) else None
            else:
                verdict = _char_verdict(ra[i], fa[i], rb[j], fb[j], _readings_at(fa, i) | _readings_at(ra, i),
                                        _readings_at(fb, j) | _readings_at(rb, j))
            rest = best(i + 1, j + 1)
            if rest is not None:
                options.append((rest[0] + WEIGHT[verdict], [verdict] + rest[1]))
        memo[i, j] = max(options, key=lambda o: o[0]) if options else None
        return memo[i, j]

    got = best(0, 0)
    return None if got is None else got[1]


def _is_latin_only(units: tuple[str, ...]) -> bool:
    return all(u.isascii() and u.isalpha() for u in units)


@lru_cache(maxsize=500_000)
def _parsed(name: str) -> tuple[tuple, tuple, tuple, bool, bool, bool]:
    """(units as written, folded, readings per position, only single characters/wildcards, legible,
    only Latin) — everything agreement needs about one name, computed once per distinct name."""
    raw, folded = _units(name)
    reads = tuple(_readings_at(folded, i) | _readings_at(raw, i) if len(raw[i]) == 1 else frozenset()
                  for i in range(len(raw)))
    simple = all(len(u) == 1 and (not u.isascii() or u in WILDCARDS) for u in raw)
    legible = any(u not in WILDCARDS for u in raw)
    return raw, folded, reads, simple, legible, _is_latin_only(raw)


@lru_cache(maxsize=200_000)
def _agreement(a: str, b: str) -> tuple[float, str, str]:
    ra, fa, pa, simple_a, legible_a, latin_a = _parsed(a)
    rb, fb, pb, simple_b, legible_b, latin_b = _parsed(b)
    if not legible_a or not legible_b:
        return 0.0, "missing", "missing"
    if ra == rb:
        return 1.0, "exact", ("exact" if unicodedata.normalize("NFKC", a) == unicodedata.normalize("NFKC", b)
                              else "format")
    if simple_a and simple_b and len(ra) == len(rb):
        verdicts = [_char_verdict(x, fx, y, fy, px, py) for x, fx, px, y, fy, py in zip(ra, fa, pa, rb, fb, pb)]
    else:
        verdicts = _align(ra, fa, rb, fb)
    if verdicts is None:                                    # different lengths: never a typo we accept
        sim = Levenshtein.normalized_similarity("".join(fa), "".join(fb))
        return round(min(sim, _NONE_CAP), 3), "none", "none"
    score = sum(WEIGHT[v] for v in verdicts) / len(verdicts)
    weak = sum(v in ("homophone", "lookalike") for v in verdicts)
    anchors = sum(v in ("exact", "variant") for v in verdicts)
    agrees = (None not in verdicts
              and weak <= (1 if len(verdicts) <= 3 else 2)
              and (anchors >= 1 or ((latin_a or latin_b) and weak == 0)))
    if not agrees:
        return round(min(score, _NONE_CAP), 3), "none", "none"
    kinds = [k for k in _KIND_ORDER if k in verdicts]
    detail = "+".join(kinds) if kinds else "format"
    return round(score, 3), "+".join(k for k in kinds if k != "variant") or "exact", detail


def agreement(a: str | None, b: str | None) -> tuple[float, str]:
    """(score 0–1, what agreed: exact | rare/pinyin/homophone/lookalike joined by + | none | missing).
    See the module docstring for the rules."""
    if not a or not b:
        return 0.0, "missing"
    return _agreement(str(a), str(b))[:2]


def agreement_frame(pairs, other: str) -> pd.DataFrame:
    """``agreement`` for each distinct (source name, ``other`` name) pair, as the frame the SQL joins on:
    columns source_name, <other>, score, what; typed (VARCHAR, DOUBLE) even when there is no pair."""
    import pandas as pd

    rows = [(a, b, *agreement(a, b)) for a, b in pairs]
    return pd.DataFrame({"source_name": pd.Series([r[0] for r in rows], dtype=str),
                         other: pd.Series([r[1] for r in rows], dtype=str),
                         "score": pd.Series([r[2] for r in rows], dtype=float),
                         "what": pd.Series([r[3] for r in rows], dtype=str)})


def explain(a: str | None, b: str | None) -> tuple[float, str, str]:
    """agreement plus the detail: ``what`` with ``format`` and ``variant`` told apart from ``exact``."""
    if not a or not b:
        return 0.0, "missing", "missing"
    return _agreement(str(a), str(b))


def names_agree(a: str | None, b: str | None) -> bool:
    return agreement(a, b)[1] not in ("none", "missing")


class NameKeys(NamedTuple):
    canonical: str
    pinyin: str
    initials: str


@lru_cache(maxsize=500_000)
def _default_reading(c: str, first: bool) -> str:
    if first and c in SURNAME_READINGS:
        return SURNAME_READINGS[c][0]
    if c in WILDCARDS:
        return "?"
    if not _is_han(c):
        return c
    got = lazy_pinyin(c, style=Style.NORMAL, errors=lambda x: ["?"])
    return got[0] if got else "?"


@lru_cache(maxsize=500_000)
def name_keys(name: str | None) -> NameKeys:
    """Blocking keys (canonical, toneless pinyin, initials); empty strings for an empty name."""
    _, folded = _units(name)
    if not folded:
        return NameKeys("", "", "")
    if len(folded) >= 2 and folded[0] + folded[1] in COMPOUND_READINGS:
        syllables = list(COMPOUND_READINGS[folded[0] + folded[1]]) + \
            [_default_reading(c, False) for c in folded[2:]]
    else:
        syllables = [_default_reading(c, i == 0) if len(c) == 1 else c for i, c in enumerate(folded)]
    return NameKeys("".join(folded), "".join(syllables), "".join(s[0] for s in syllables))
