"""The ID macros in the warehouse agree with the Python reference, defect by defect."""
from __future__ import annotations

import random

import pytest

from crosscheck import idnum
from crosscheck.warehouse import connect

VALID = "11010519491231002X"
CASES = [
    (VALID, VALID, "valid"),
    ("11010519491231002x", VALID, "valid"),                       # lowercase x
    ("１１０１０５１９４９１２３１００２Ｘ", VALID, "valid"),          # full-width
    (" 1101 0519\u300049123\u00a01002X ", VALID, "valid"),         # ASCII, ideographic and no-break spaces
    ("'11010519491231002X", VALID, "valid"),                      # leading apostrophe from Excel
    ("110105491231002", VALID, "upgraded15"),                     # 15-digit legacy ID
    ("11010519491231003X", None, "bad_check"),                    # single-digit typo
    ("11010519491213002X", None, "bad_check"),                    # adjacent transposition
    ("4.20802E+17", None, "malformed"),
    ("", None, "empty"),
    (None, None, "empty"),
]


@pytest.mark.parametrize("raw, norm, status", CASES)
def test_python_reference(raw, norm, status):
    assert idnum.normalize(raw) == (norm, status)


def test_macros_match_python_reference():
    rng = random.Random(7)
    samples = [raw for raw, _, _ in CASES]
    for _ in range(2000):
        body = f"{rng.randint(110000, 659999)}{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}" \
               f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
        full = body + idnum.check_digit(body)
        mutation = rng.choice(["none", "typo", "swap", "lower", "space", "fifteen"])
        if mutation == "typo":
            i = rng.randrange(17)
            full = full[:i] + str((int(full[i]) + 1) % 10) + full[i + 1:]
        elif mutation == "swap":
            i = rng.randrange(16)
            full = full[:i] + full[i + 1] + full[i] + full[i + 2:]
        elif mutation == "lower":
            full = full.lower()
        elif mutation == "space":
            full = full[:6] + " " + full[6:]
        elif mutation == "fifteen":
            full = full[:6] + full[8:17]
        samples.append(full)
    con = connect(":memory:")
    got = con.execute("SELECT id_norm(x), id_status(x) FROM unnest(?::VARCHAR[]) t(x)", [samples]).fetchall()
    assert got == [idnum.normalize(s) for s in samples]


def test_mask_hides_birth_date():
    assert idnum.mask(VALID) == "110105********002X"
    assert connect(":memory:").execute("SELECT id_mask(?)", [VALID]).fetchone()[0] == "110105********002X"
