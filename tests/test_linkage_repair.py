"""ID repair in linkage (linkage/repair.py): literal staging rows in, the link (or the reason there is none) out."""
from __future__ import annotations

from datetime import date

import pytest

from crosscheck.idnum import check_digit
from crosscheck.settings import load_sources
from crosscheck.warehouse import connect
from linkage.link import link_all
from tests.staging_builder import stage

AS_OF = date(2026, 11, 20)
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def pid(body17: str) -> str:
    return body17 + check_digit(body17)


def valid(s: str) -> bool:
    return len(s) == 18 and s[:17].isdigit() and check_digit(s[:17]) == s[17]


def typo(s: str, pos: int, digit: str) -> str:
    """Replace the digit at 1-based position pos."""
    out = s[:pos - 1] + digit + s[pos:]
    assert not valid(out)
    return out


def swap(s: str, pos: int) -> str:
    """Transpose the characters at 1-based positions pos, pos+1."""
    out = s[:pos - 1] + s[pos] + s[pos - 1] + s[pos + 1:]
    assert not valid(out)
    return out


def neighbours(bad: str) -> list[str]:
    """Every valid ID one digit away from bad (brute force, to build the ambiguous case)."""
    return [c for p in range(17) for v in "0123456789"
            if v != bad[p] and valid(c := bad[:p] + v + bad[p + 1:])]


A = pid("42080219800101001")   # member of H1 (东宝区)
B = pid("42080219820202002")   # member of H1
C = pid("42080219500303003")   # relative of H1 (same 户号)
D = pid("42088119700404004")   # member of H2
E = pid("42082119600606006")   # relative of H2, ID under 京山县's old code 420821
F = pid("42088219900707007")   # relative of H2, ID under 京山市's new code 420882
G = pid("42080419750808008")   # member of H3, delivered on the roster with a typo
R = pid("42080419480909009")   # relative of H3 (same 户号 as G in hukou)
S = pid("42080219651010010")   # stranger: not in any household

AMBIGUOUS_BAD = typo(pid("42080419881111011"), 12, "5")
TWIN = pid("42080419881111011")
OTHER = [c for c in neighbours(AMBIGUOUS_BAD) if c != TWIN][0]   # a second known person one typo away


def member(household, name, id_number):
    return dict(household_id=household, category="城市低保", management_class="A", name=name, id_number=id_number,
                relation="户主", household_size=1, monthly_payment=500, district="东宝区", township="龙泉街道",
                village="象山社区", start_date=date(2020, 1, 1))


ROSTER = [member("H1", "王伟", A), member("H1", "李娜", B), member("H2", "张敏", D),
          member("H3", "刘洋", typo(G, 10, "9")),
          member("H4", "陈静", typo(pid("42080219990101099"), 8, "7"))]   # nobody known: stays as delivered
HUKOU = [dict(id_number=i, name=n, hukou_no=h, person_status="0") for i, n, h in [
    (A, "王伟", "HK1"), (B, "李娜", "HK1"), (C, "王建国", "HK1"), (D, "张敏", "HK2"), (E, "张强", "HK2"),
    (F, "张丽", "HK2"), (G, "刘洋", "HK3"), (R, "刘德明", "HK3"), (S, "孙红", "HK9"),
    (TWIN, "周杰", "HK1"), (OTHER, "周杰", "HK1")]]
ALL_TABLES = ["roster", "hukou", "cremation", "property_owner", "vehicle", "business_person", "tax",
              "si_contribution", "si_benefit", "housing_fund", "bank", "payroll", "business_entity"]


def linked(table: str, rows: list[dict], excel: bool = False):
    con = connect(":memory:")
    data = {"roster": ROSTER, "hukou": HUKOU, table: rows}
    for t in ALL_TABLES:
        stage(con, t, data.get(t, []), AS_OF)
    if excel:   # the loader marks an ID cell Excel held as a number; the fixture builder cannot know
        con.execute("UPDATE staging.property_owner SET id_status = 'excel_damaged', id_norm = NULL")
    link_all(con, load_sources())
    return con


def cremation(name: str, id_number: str) -> list[dict]:
    return [dict(name=name, id_number=id_number, death_date=date(2026, 10, 1))]


def owner(name: str, id_number: str) -> list[dict]:
    return [dict(unit_no="U1", certificate_no="C1", name=name, id_number=id_number, owner_seq=1,
                 registration_date=date(2020, 1, 1))]


def link_of(con, table: str):
    return con.execute(f"SELECT person_id, household_id, kin, link_method, link_score, link_agreed"
                       f" FROM linked.{table}").fetchall()


def unlinked_reasons(con, table: str) -> list[str]:
    return [r for (r,) in con.execute("SELECT reason FROM linked.unlinked WHERE record_table = ?",
                                      [table]).fetchall()]


@pytest.mark.parametrize("name, id_number, person, household, kin, agreed", [
    ("王伟", typo(A, 9, "3"), A, "H1", "member", "id repaired: typo at 9; name agrees (exact)"),
    ("王建国", typo(C, 16, "7"), C, "H1", "relative", "id repaired: typo at 16; name agrees (exact)"),
    ("王伟", typo(A, 3, "5"), A, "H1", "member", "id repaired: typo at 3; name agrees (exact)"),
    ("李娜", swap(B, 9), B, "H1", "member", "id repaired: transposition at 9–10; name agrees (exact)"),
    ("李娜", swap(B, 16), B, "H1", "member", "id repaired: transposition at 16–17; name agrees (exact)"),
    ("张敏", D[:17] + ("0" if D[17] != "0" else "1"), D, "H2", "member",
     "id repaired: typo in the check digit; name agrees (exact)"),
    ("张强", pid("420882" + E[6:17]), E, "H2", "relative",
     "id repaired: new area code of the division; name agrees (exact)"),
    ("张丽", pid("420821" + F[6:17]), F, "H2", "relative",
     "id repaired: old area code of the division; name agrees (exact)"),
])
def test_repaired(name, id_number, person, household, kin, agreed):
    con = linked("cremation", cremation(name, id_number))
    assert link_of(con, "cremation") == [(person, household, kin, "id_repaired", 0.95, agreed)]
    assert unlinked_reasons(con, "cremation") == []
    assert person not in agreed and name not in agreed


@pytest.mark.parametrize("name, id_number, reason", [
    ("周杰", AMBIGUOUS_BAD, "ID repair ambiguous: 2 known persons fit with an agreeing name"),
    ("赵国庆", typo(A, 9, "3"), "ID repair candidate is a known person but the name disagrees"),
    (None, typo(A, 9, "3"), "ID repair needs a name, none delivered"),
    ("王伟", typo(pid("42080219990909099"), 5, "1"),
     "check digit fails; no single typo or adjacent transposition gives a known person"),
    ("王伟", pid("420821" + pid("42088219990909099")[6:17]),
     "ID belongs to nobody known, nor do its old/new area code variants"),
    ("王伟", pid("44030419990909099"), "ID belongs to nobody known (hukou or roster)"),
    ("王伟", "", "no ID delivered"),
])
def test_not_repaired(name, id_number, reason):
    con = linked("cremation", cremation(name, id_number))
    assert link_of(con, "cremation") == []
    assert unlinked_reasons(con, "cremation") == [reason]


def test_ambiguous_case_is_really_two_known_persons():
    assert TWIN in neighbours(AMBIGUOUS_BAD) and OTHER in neighbours(AMBIGUOUS_BAD) and TWIN != OTHER


def test_repaired_with_a_name_that_agrees_but_differs():
    """A homophone typo agrees; the score is 0.95 × the name score, the text says how it agreed."""
    ((person, household, kin, method, score, agreed),) = link_of(linked("cremation", cremation("王玮", typo(A, 3, "5"))),
                                                                 "cremation")
    assert (person, household, kin, method) == (A, "H1", "member", "id_repaired")
    assert 0.5 < score < 0.95 and agreed.startswith("id repaired: typo at 3; name agrees (")


def test_legacy_15_digit_links_exactly():
    con = linked("cremation", cremation("王伟", A[:6] + A[8:17]))
    assert link_of(con, "cremation") == [(A, "H1", "member", "id_exact", 1.0, "id (15→18 upgraded), name")]


def test_normalised_id_links_exactly():
    raw = "'" + A[:6] + "\u3000" + A[6:].translate(str.maketrans("0123456789", "０１２３４５６７８９")) + " "
    con = linked("cremation", cremation("王伟", raw))
    assert [r[:4] for r in link_of(con, "cremation")] == [(A, "H1", "member", "id_exact")]


@pytest.mark.parametrize("name, id_number, expected, reason", [
    ("王伟", A[:15] + "000", [(A, "H1", "member", "id_repaired", 0.9,
                               "id repaired: Excel number, last 3 digits lost; name agrees (exact); birth date agrees")],
     []),
    ("赵国庆", A[:15] + "000", [], ["ID repair candidate is a known person but the name disagrees"]),
    ("王伟", f"{float(A):.5E}", [], ["Excel scientific notation: only the area code survives, cannot link on ID"]),
])
def test_excel_damaged(name, id_number, expected, reason):
    con = linked("property_owner", owner(name, id_number), excel=True)
    assert link_of(con, "property_owner") == expected
    assert unlinked_reasons(con, "property_owner") == reason


def test_roster_typo_repaired_against_hukou_so_relatives_are_found():
    con = linked("payroll", [dict(name="刘德明", id_number=R, employer="X", monthly_salary=5000)])
    hp = set(con.execute("SELECT household_id, person_id, kin FROM linked.household_person"
                         " WHERE household_id = 'H3'").fetchall())
    assert hp == {("H3", G, "member"), ("H3", R, "relative")}
    assert [r[:4] for r in link_of(con, "payroll")] == [(R, "H3", "relative", "id_exact")]
    # The member whose roster ID no known person fits keeps it as delivered and is listed with the reason.
    assert con.execute("SELECT count(*) FROM linked.household_person WHERE household_id = 'H4'").fetchone()[0] == 1
    assert unlinked_reasons(con, "roster") == [
        "check digit fails; no single typo or adjacent transposition gives a known person"]


def test_wrong_person_exact_id_goes_to_review():
    con = linked("cremation", cremation("赵国庆", A))
    assert link_of(con, "cremation") == []
    assert con.execute("SELECT record_table, source_name, roster_name, reason FROM linked.review").fetchall() == [
        ("cremation", "赵国庆", "王伟", "ID matches but the name disagrees")]


def test_known_person_outside_households_is_neither_linked_nor_unlinked():
    con = linked("cremation", cremation("孙红", typo(S, 11, "4")))
    assert link_of(con, "cremation") == [] and unlinked_reasons(con, "cremation") == []
    assert con.execute("SELECT repaired_id FROM linked.id_repair WHERE name = '孙红'").fetchall() == [(S,)]


def test_repair_requests_leave_out_valid_ids_found_in_hukou():
    """linked.link_request keeps a valid ID under an area code with a history only when hukou does not hold
    it (nearly every ID of the city is under such a code): hukou's own IDs and a record's ID that hukou
    holds never become requests, and the repair of one it does not hold still happens."""
    moved = pid("420882" + E[6:17])                 # E under 京山's new code: valid, nobody in hukou
    con = linked("cremation", cremation("张强", moved) + cremation("张丽", F))
    rows = con.execute("SELECT record_table, id_key, id_status FROM linked.link_request").fetchall()
    keys = {(t, k) for t, k, _ in rows}
    assert ("cremation", moved) in keys
    assert ("cremation", F) not in keys and ("roster", D) not in keys
    assert not [r for r in rows if r[0] == "hukou" and r[2] in ("valid", "upgraded15")]
    assert sorted(p for p, *_ in link_of(con, "cremation")) == sorted([E, F])
