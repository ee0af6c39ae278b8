"""Vectorised identity numbers: GB 11643-1999 resident IDs and GB 32100-2015 credit codes.

Independent of ``crosscheck.idnum`` on purpose: the generator is the ground truth the pipeline is
tested against, so it does not share code with it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK = np.array(list("10X98765432"))
_POW10 = 10 ** np.arange(16, -1, -1, dtype=np.int64)


def id_digits(body17: np.ndarray) -> np.ndarray:
    """(n, 17) digit matrix of 17-digit integer bodies."""
    return (body17[:, None] // _POW10[None, :]) % 10


def id_check_chars(body17: np.ndarray) -> np.ndarray:
    """Check characters of 17-digit bodies. The weighted digit sum splits into area, birth date and
    sequence parts, each computed once per distinct value."""
    body17 = np.asarray(body17, dtype=np.int64)
    total = np.zeros(len(body17), dtype=np.int64)
    for lo, hi, div in ((0, 6, 10**11), (6, 14, 10**3), (14, 17, 1)):
        part = (body17 // div) % (10 ** (hi - lo))
        codes, uniq = pd.factorize(part)
        pw = 10 ** np.arange(hi - lo - 1, -1, -1, dtype=np.int64)
        dig = (np.asarray(uniq, dtype=np.int64)[:, None] // pw[None, :]) % 10
        total += (dig @ ID_WEIGHTS[lo:hi])[codes]
    return ID_CHECK[total % 11]


def id_strings(body17: np.ndarray) -> np.ndarray:
    """18-character IDs (object array of str) from 17-digit integer bodies."""
    body17 = np.asarray(body17, dtype=np.int64)
    chk = id_check_chars(body17).tolist()
    return np.array([f"{b}{c}" for b, c in zip(body17.tolist(), chk)], dtype=object)


def check_char(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS.tolist())) % 11]


def is_valid_id(s: str) -> bool:
    return (len(s) == 18 and s[:17].isdigit() and s[:17].isascii()
            and check_char(s[:17]) == s[17])


def legacy15(id18: str) -> str:
    """The 15-digit form (born 19yy): area, yymmdd, sequence; no check digit."""
    return id18[:6] + id18[8:17]


def with_area(id18: str, area: str) -> str:
    body = area + id18[6:17]
    return body + check_char(body)


def make_bodies(area: np.ndarray, birth_yyyymmdd: np.ndarray, male: np.ndarray,
                rng: np.random.Generator, taken: set[int] | None = None,
                seq_range: tuple[int, int] = (0, 500)) -> np.ndarray:
    """Unique 17-digit bodies: area(6) + birth date(8) + sequence(3) whose last digit is odd for men.
    ``seq_range`` limits the sequence to (2 * lo .. 2 * hi - 1): a shard of a city draws only from its
    own part, so two shards never make the same number."""
    area = np.asarray(area, dtype=np.int64)
    birth = np.asarray(birth_yyyymmdd, dtype=np.int64)
    male = np.asarray(male, dtype=bool)
    prefix = area * 10**11 + birth * 1000
    n = len(prefix)
    lo, hi = seq_range
    if (lo, hi) != (0, 500):
        if taken:
            raise ValueError("taken IDs are not supported with a sequence range")
        return _bodies_in_range(prefix, male, rng, lo, hi)
    seq = rng.integers(lo, hi, n) * 2 + male.astype(np.int64)
    body = prefix + seq
    for _ in range(60):
        dup = pd.Series(body).duplicated(keep="first").to_numpy()
        if taken:
            dup |= np.isin(body, np.fromiter(taken, dtype=np.int64))
        k = int(dup.sum())
        if not k:
            return body
        body[dup] = prefix[dup] + rng.integers(lo, hi, k) * 2 + male[dup].astype(np.int64)
    raise RuntimeError("could not make unique IDs")


def _bodies_in_range(prefix: np.ndarray, male: np.ndarray, rng: np.random.Generator, lo: int, hi: int,
                     spill_areas: tuple[int, ...] = (421002, 420602, 420902, 421302, 422801, 420502)) -> np.ndarray:
    """A shard's bodies: within each (area, birth date, sex) the people take distinct sequence numbers of
    the shard's part [lo, hi), from a random starting point. A shard holds a tenth of the numbers at scale 10
    while up to about 46 men of one county are born on one day of a scale-1 world; anyone beyond the part's
    size is recorded as born in another prefecture of the province (荆州, 襄阳, 孝感, 随州, 恩施, 宜昌)."""
    width = hi - lo
    prefix = prefix.copy()
    male = male.astype(np.int64)
    tiebreak = rng.random(len(prefix))
    for _ in range(50):
        key = prefix * 2 + male
        order = np.lexsort((tiebreak, key))
        ks = key[order]
        first = np.r_[0, np.flatnonzero(ks[1:] != ks[:-1]) + 1] if len(ks) else np.zeros(0, np.int64)
        sizes = np.diff(np.r_[first, len(ks)])
        rank = np.empty(len(ks), np.int64)
        rank[order] = np.arange(len(ks)) - np.repeat(first, sizes)
        over = rank >= width
        if not over.any():
            start = np.empty(len(ks), np.int64)
            start[order] = np.repeat(rng.integers(0, width, len(first)), sizes)
            return prefix + (lo + (rank + start) % width) * 2 + male
        moved = rng.choice(np.asarray(spill_areas, dtype=np.int64), int(over.sum()))
        prefix[over] = moved * 10**11 + prefix[over] % 10**11
    raise RuntimeError(f"could not make unique IDs in the sequence numbers {lo}..{hi - 1}: too many people "
                       "born on one day in one place for this shard")


# --- unified social credit codes (GB 32100-2015) ------------------------------------------------
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]


def org_code_check(code8: str) -> str:
    """GB 11714 check character of an 8-character organisation code."""
    c = 11 - sum(ORG_CHARS.index(ch) * w for ch, w in zip(code8, ORG_WEIGHTS)) % 11
    return "X" if c == 10 else ("0" if c == 11 else str(c))


def uscc(authority: str, kind: str, area: str, code8: str) -> str:
    body = authority + kind + area + code8 + org_code_check(code8)
    s = sum(USCC_CHARS.index(ch) * w for ch, w in zip(body, USCC_WEIGHTS))
    return body + USCC_CHARS[(31 - s % 31) % 31]


def uscc_valid(code: str) -> bool:
    if len(code) != 18 or any(ch not in USCC_CHARS for ch in code):
        return False
    s = sum(USCC_CHARS.index(ch) * w for ch, w in zip(code[:17], USCC_WEIGHTS))
    return USCC_CHARS[(31 - s % 31) % 31] == code[17]


def make_usccs(authority: np.ndarray, kind: np.ndarray, area: np.ndarray,
               rng: np.random.Generator, shard: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Distinct credit codes, vectorised. authority/kind are single characters ('9','1' company,
    '9','2' 个体工商户, '9','3' 合作社); area a 6-digit string per code. ``shard`` (k, n): the third
    character of the organisation code is one of shard k's own characters, so that codes drawn in
    different shards of a city never coincide."""
    n = len(area)
    k, shards = shard
    own = np.array([i for i in range(len(USCC_CHARS)) if i % shards == k])

    def third(body, rows):
        if shards > 1:
            body[rows, 2] = own[body[rows, 2] % len(own)]
        return body
    alpha = np.array(list(USCC_CHARS))
    org_index = np.array([ORG_CHARS.index(c) for c in USCC_CHARS])
    body = rng.integers(0, len(USCC_CHARS), size=(n, 8))
    body[:, 0] = USCC_CHARS.index("M") * (kind != "2") + body[:, 0] * (kind == "2")
    body[:, 1] = USCC_CHARS.index("A") * (kind != "2") + body[:, 1] * (kind == "2")
    body = third(body, slice(None))
    # make the 8-character part unique
    key = (body * (31 ** np.arange(7, -1, -1))).sum(axis=1)
    while True:
        _, first = np.unique(key, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        body[dup, 2:] = rng.integers(0, len(USCC_CHARS), size=(int(dup.sum()), 6))
        body = third(body, dup)
        key = (body * (31 ** np.arange(7, -1, -1))).sum(axis=1)
    c = 11 - (org_index[body] * np.array(ORG_WEIGHTS)).sum(axis=1) % 11
    org_chk = np.where(c == 10, ORG_CHARS.index("X"), np.where(c == 11, 0, c))  # ORG index == value
    org_chk_idx = np.where(org_chk == ORG_CHARS.index("X"), USCC_CHARS.index("X"), org_chk)
    area_digits = np.array([list(a) for a in area], dtype=np.int64)
    first = np.stack([np.array([USCC_CHARS.index(a) for a in authority]),
                      np.array([USCC_CHARS.index(k) for k in kind])], axis=1)
    full = np.concatenate([first, area_digits, body, org_chk_idx[:, None]], axis=1)
    s = (full * np.array(USCC_WEIGHTS)).sum(axis=1)
    chk = (31 - s % 31) % 31
    full = np.concatenate([full, chk[:, None]], axis=1)
    chars = alpha[full]
    return np.array(["".join(r) for r in chars], dtype=object)
