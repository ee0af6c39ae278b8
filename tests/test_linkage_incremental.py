"""Incremental link (linkage/incremental.py): when only the roster changed, link_all relinks by delta, and
the result is exactly what a full link of the same night builds."""
from __future__ import annotations

from datetime import date

import pytest

from crosscheck.settings import load_sources
from crosscheck.warehouse import connect
from linkage.link import link_all
from tests.staging_builder import stage
from tests.test_linkage_repair import ALL_TABLES, A, B, C, D, HUKOU, ROSTER, S, member, pid, typo

NIGHT1, NIGHT2 = date(2026, 11, 19), date(2026, 11, 20)
T = pid("42080219700505005")          # nobody known on night 1; a member from night 2
S2 = pid("42080219720606006")         # S's relative (same 户号 HK9)

SOURCES = {
    "vehicle": [dict(plate_no="鄂H1", plate_type="02", owner_doc_type="A", name="李娜", id_number=B),
                dict(plate_no="鄂H2", plate_type="02", owner_doc_type="A", name="孙红", id_number=S),
                dict(plate_no="鄂H3", plate_type="02", owner_doc_type="A", name="王伟", id_number=typo(A, 9, "3")),
                # repaired to D, whose roster name changes: the repair stays, the linked person_name changes
                dict(plate_no="鄂H4", plate_type="02", owner_doc_type="A", name="张敏", id_number=typo(D, 9, "3"))],
    "payroll": [dict(name="孙明", id_number=S2, employer="X", monthly_salary=5000),
                dict(name="王建国", id_number=C, employer="Y", monthly_salary=4000)],
    "cremation": [dict(name="张敏", id_number=D, death_date=date(2026, 10, 1)),
                  dict(name="赵六", id_number=typo(T, 9, "3"), death_date=date(2026, 10, 1)),
                  dict(name="王伟", id_number="", death_date=date(2026, 10, 1))],
    "tax": [dict(name="赵六", id_number=T, income_item="工资薪金", income_amount=1000.0),
            dict(name="赵六", id_number=typo(T, 12, "0"), income_item="工资薪金", income_amount=1000.0),
            dict(name="李娜", id_number=B, income_item="工资薪金", income_amount=2000.0)],
}
HUKOU2 = HUKOU + [dict(id_number=S2, name="孙明", hukou_no="HK9", person_status="0")]


def roster_night2() -> list[dict]:
    rows = [r for r in ROSTER if r["id_number"] != B]                                  # B leaves the roster
    rows = [{**r, "name": "张明"} if r["id_number"] == D else r for r in rows]          # a name changes
    return rows + [member("H5", "孙红", S),          # joins, with a relative (S2) and records in sources
                   member("H6", "赵六", T)]          # joins: T's damaged IDs become repairable, its valid ID known


def stage_night(con, roster, hukou=HUKOU2, sources=SOURCES, night=NIGHT1, changed=()) -> None:
    """Stage every table as delivered on ``night``, the ``changed`` ones as delivered on night 2."""
    data = {"roster": roster, "hukou": hukou, **sources}
    for t in ALL_TABLES:
        stage(con, t, data.get(t, []), NIGHT2 if t in changed else night)


def linked_tables(con) -> dict[str, list]:
    """Every linked.* table as a sorted multiset of rows (the state table's timestamps left out)."""
    out = {}
    for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'linked' "
                            "AND table_name <> 'link_state' ORDER BY 1").fetchall():
        out[t] = sorted(con.execute(f"SELECT * FROM linked.{t}").fetchall(), key=repr)
    return out


def full_link_of(roster, hukou=HUKOU2, sources=SOURCES, changed=("roster",)) -> dict[str, list]:
    """A from-scratch link of night 2 (the ``changed`` tables delivered on night 2, the rest on night 1)."""
    con = connect(":memory:")
    stage_night(con, roster, hukou, sources, changed=changed)
    counts = link_all(con, load_sources())
    assert set(counts["mode"].values()) == {"full"}
    return linked_tables(con)


@pytest.fixture()
def night1():
    con = connect(":memory:")
    stage_night(con, ROSTER)
    counts = link_all(con, load_sources())
    assert set(counts["mode"].values()) == {"full"}                    # first night: full
    assert counts["mode_reason"]["vehicle"] == "no earlier link recorded"
    return con


def test_roster_change_is_linked_by_delta_and_equals_a_full_link(night1):
    # night 1 as the fixtures intend: B's car links, T's records do not
    assert night1.execute("SELECT count(*) FROM linked.vehicle WHERE person_id = ?", [B]).fetchone()[0] == 1
    assert night1.execute("SELECT count(*) FROM linked.tax WHERE person_id = ?", [T]).fetchone()[0] == 0
    stage(night1, "roster", roster_night2(), NIGHT2)
    counts = link_all(night1, load_sources())
    assert {t: counts["mode"][t] for t in ("vehicle", "payroll", "cremation", "tax", "hukou")} == dict.fromkeys(
        ("vehicle", "payroll", "cremation", "tax", "hukou"), "delta")
    assert counts["mode_reason"]["tax"] == "roster changed"
    got, want = linked_tables(night1), full_link_of(roster_night2())
    assert got.keys() == want.keys()
    for table in want:
        assert got[table] == want[table], table
    # and the changes really happened (the comparison is not between two empty tables)
    persons = lambda t: {r[0] for r in night1.execute(f"SELECT person_id FROM linked.{t}").fetchall()}  # noqa: E731
    assert S in persons("vehicle") and A in persons("vehicle")
    assert night1.execute("SELECT kin FROM linked.vehicle WHERE person_id = ?", [B]).fetchall() == [("relative",)]
    assert S2 in persons("payroll")
    assert T in persons("tax") and T in persons("cremation")
    assert night1.execute("SELECT count(*) FROM linked.tax WHERE person_id = ? AND link_method = 'id_repaired'",
                          [T]).fetchone()[0] == 1
    assert night1.execute("SELECT count(*) FROM linked.review WHERE person_id = ? AND record_table = 'cremation'",
                          [D]).fetchone()[0] == 1
    assert night1.execute("SELECT count(*) FROM linked.unlinked WHERE record_table = 'tax'").fetchone()[0] == 0
    assert night1.execute("SELECT person_name, link_method FROM linked.vehicle WHERE plate_no = '鄂H4'").fetchall() \
        == [("张明", "id_repaired")]


def test_the_reverse_change_by_delta_equals_a_full_link():
    """Night 1 is the changed roster, night 2 the original: members leave, repairs are lost, names revert."""
    con = connect(":memory:")
    stage_night(con, roster_night2())
    link_all(con, load_sources())
    stage(con, "roster", ROSTER, NIGHT2)
    counts = link_all(con, load_sources())
    assert counts["mode"]["tax"] == "delta"
    assert linked_tables(con) == full_link_of(ROSTER)


def test_nothing_changed_keeps_everything(night1):
    before = linked_tables(night1)
    counts = link_all(night1, load_sources())
    assert counts["mode_reason"]["tax"] == "nothing changed"
    assert linked_tables(night1) == before


def test_a_changed_table_is_linked_in_full_and_the_rest_by_delta(night1):
    sources = {**SOURCES, "vehicle": SOURCES["vehicle"][:2]}
    stage(night1, "roster", roster_night2(), NIGHT2)
    stage(night1, "vehicle", sources["vehicle"], NIGHT2)
    counts = link_all(night1, load_sources())
    assert counts["mode"]["vehicle"] == "full" and counts["mode_reason"]["vehicle"] == "staging changed"
    assert counts["mode"]["tax"] == "delta"
    assert linked_tables(night1) == full_link_of(roster_night2(), sources=sources, changed=("roster", "vehicle"))


def test_hukou_change_links_everything_in_full(night1):
    hukou = HUKOU2 + [dict(id_number=pid("42080219900101111"), name="王小伟", hukou_no="HK1", person_status="0")]
    stage(night1, "hukou", hukou, NIGHT2)
    counts = link_all(night1, load_sources())
    assert set(counts["mode"].values()) == {"full"} and counts["mode_reason"]["tax"] == "hukou changed"
    assert linked_tables(night1) == full_link_of(ROSTER, hukou=hukou, changed=("hukou",))


def test_a_night_that_stopped_half_way_gives_a_full_link(night1):
    night1.execute("DELETE FROM linked.link_state")            # what forget_state leaves if the link fails
    stage(night1, "roster", roster_night2(), NIGHT2)
    counts = link_all(night1, load_sources())
    assert set(counts["mode"].values()) == {"full"}


def test_fuzzy_links_follow_the_roster_by_delta():
    """The probabilistic fallback runs again on a delta night: a member who joins gets her id-less cremation
    record linked as fuzzy, and one who leaves loses it, exactly as in a full link."""
    from tests.test_linkage_fuzzy import DEATH, FILLER, _dead
    from crosscheck.idnum import check_digit

    def valid(body17: str) -> str:
        return body17 + check_digit(body17)

    rare, wang = valid("42088119450505001"), valid("42088119450505003")
    filler = [(valid(f"4208811950{k:07d}"), *rest) for k, (_, *rest) in enumerate(FILLER)]
    hukou = [dict(id_number=i, name=n, birth_date=b, hukou_no=h, address=a, person_status=s, deregistration_date=d)
             for i, n, b, h, a, s, d in filler + [_dead(rare, "冼瑾萱"), _dead(wang, "王伟")]]

    def roster(people):
        return [dict(household_id=f"H{k}", category="农村低保", management_class="A", name=n, id_number=i,
                     relation="户主", household_size=1, monthly_payment=375, district="钟祥市", township="郢中街道",
                     village="某村", start_date=date(2020, 1, 1)) for k, (n, i) in enumerate(people)]
    with_rare, without = roster([("王伟", wang), ("冼瑾萱", rare)]), roster([("王伟", wang)])
    cremation = [dict(name="冼瑾萱", id_number=None, death_date=DEATH, funeral_home="钟祥市殡仪馆")]

    def night(con, people, when):
        for table, rows in (("roster", people), ("hukou", hukou), ("cremation", cremation)):
            stage(con, table, rows, when)
        return link_all(con, load_sources())

    def roster_only(con, people):
        stage(con, "roster", people, NIGHT2)
        return link_all(con, load_sources())

    def full(people):
        con = connect(":memory:")
        for table, rows in (("hukou", hukou), ("cremation", cremation)):
            stage(con, table, rows, NIGHT1)    # as the delta night has them: delivered on night 1
        stage(con, "roster", people, NIGHT2)
        assert set(link_all(con, load_sources())["mode"].values()) == {"full"}
        return linked_tables(con)

    for first, second in ((without, with_rare), (with_rare, without)):
        con = connect(":memory:")
        night(con, first, NIGHT1)
        counts = roster_only(con, second)
        assert counts["mode"]["cremation"] == "delta"
        assert counts["cremation_fuzzy"] == (1 if second is with_rare else 0)
        assert linked_tables(con) == full(second)


def test_the_staging_fingerprint_is_kept_and_used_again_only_while_the_table_is_the_same(tmp_path):
    from linkage.incremental import staging_fingerprint

    con = connect(tmp_path / "w.duckdb")
    stage(con, "roster", ROSTER, NIGHT1)
    first = staging_fingerprint(con, "roster")
    comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'roster'").fetchone()[0]
    assert first in comment
    # what is kept is what is used: a forged comment with the same count and columns is believed
    con.execute("COMMENT ON TABLE staging.roster IS " + "'" + comment.replace(first, "kept-value") + "'")
    assert staging_fingerprint(con, "roster") == "kept-value"
    # the table replaced by the load (no comment), same rows: the same content fingerprint, computed again
    stage(con, "roster", ROSTER, NIGHT1)
    assert staging_fingerprint(con, "roster") == first
    # replaced with other rows of the same count: another fingerprint
    stage(con, "roster", [{**r, "name": r["name"] + "一"} for r in ROSTER], NIGHT1)
    changed = staging_fingerprint(con, "roster")
    assert changed != first
    # a row deleted in place (the count changes): computed again, not the kept one
    con.execute("DELETE FROM staging.roster WHERE rowid = (SELECT min(rowid) FROM staging.roster)")
    assert staging_fingerprint(con, "roster") not in (first, changed)
    con.close()


def test_nothing_updates_staging_rows_in_place():
    """The kept fingerprint above is believed while a table's row count and columns are unchanged, which
    holds because the pipeline replaces staging tables, deletes from them (checks/validate.py, which forgets
    the fingerprint) and never updates their rows."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"UPDATE\s+staging\.", re.IGNORECASE)
    offenders = [str(path.relative_to(root)) for folder in ("connectors", "checks", "linkage", "rules", "cases",
                                                            "reports", "crosscheck", "flows")
                 for path in (root / folder).rglob("*") if path.suffix in (".py", ".sql")
                 and pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
