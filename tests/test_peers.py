"""bench/peers_analyst.py (the analyst's pandas + rapidfuzz version of link + flag) against our rules.

Fast: one tiny staging warehouse (tests/staging_builder.py) with a household per finding and look-alikes
beside them; the analyst must flag exactly the households our SQL rules flag, rule by rule.
Slow (``-m slow``): a generated scale-0.01 night; the same households per rule, apart from those resting on a
link only ours makes (an ID repaired by linkage/repair.py, a fuzzy link) or an ID match our name guard refused.
"""
from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crosscheck.settings import load_policy, load_sources
from crosscheck.warehouse import connect
from linkage.link import link_all
from rules.engine import evaluate_rules
from tests.staging_builder import stage
from tests.test_rules import (ALL_TABLES, HUKOU, ROSTER, A, B, C, D, X, car, contrib, days_ago, entity,
                              months_back, person, pid, unit)

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
import peers_analyst  # noqa: E402

AS_OF = date(2026, 11, 20)
ALL_OK = {s: {"status": "ok"} for s in load_sources().sources}

E, F, G = pid("42080419600606006"), pid("42088219750707007"), pid("42088219770808008")
K, M, N = pid("42082219650909009"), pid("42080219881010010"), pid("42080219901111011")
MORE = {E: ("H3", "掇刀区", "特困供养", "刘洋", 1), F: ("H4", "京山市", "城市低保", "陈静", 2),
        G: ("H4", "京山市", "城市低保", "杨磊", 2), K: ("H5", "沙洋县", "农村低保", "赵军", 1),
        M: ("H6", "东宝区", "城市低保", "周杰", 1), N: ("H7", "东宝区", "农村低保", "吴昊", 1)}
NAME = {A: "王伟", B: "李娜", C: "王建国", D: "张敏", X: "王伟", **{p: v[3] for p, v in MORE.items()}}


def roster() -> list[dict]:
    rows = [dict(ROSTER[0], id_number=p, household_id=h, district=d, category=c, name=n, household_size=size,
                 relation="户主") for p, (h, d, c, n, size) in MORE.items()]
    # R08: D listed in a second household (H8) under tekun; D's car then counts for H8 as well
    return ROSTER + rows + [dict(ROSTER[2], household_id="H8", category="特困供养", household_size=1)]


def hukou() -> list[dict]:
    rows = [dict(HUKOU[0], id_number=p, name=v[3], hukou_no="HK" + p[-3:]) for p, v in MORE.items()]
    changed = {A: dict(person_status="1", deregistration_date=days_ago(60)),         # R01
               B: dict(person_status="2", deregistration_date=days_ago(200))}        # R09
    rows[[r["id_number"] for r in rows].index(G)].update(person_status="4", deregistration_date=days_ago(30))
    return [dict(h, **changed.get(h["id_number"], {})) for h in HUKOU] + rows


def mine(row: dict, owner: str) -> dict:
    return dict(row, id_number=owner, name=NAME[owner])


def tables() -> dict[str, list[dict]]:
    """A finding per rule, with look-alikes beside it (the comment says which is which)."""
    return {
        "roster": roster(), "hukou": hukou(),
        "cremation": [dict(name=NAME[E], id_number=E, death_date=days_ago(10)),       # inside the grace
                      dict(name=NAME[M], id_number=M, death_date=days_ago(40))],      # R01 H6
        "vehicle": [car(owner=D, name=NAME[D]),                                       # R02 H2
                    car(owner=F, name=NAME[F], plate_type="07", plate_no="鄂H1"),      # motorcycle
                    car(owner=G, name=NAME[G], status="E", plate_no="鄂H2"),           # deregistered
                    car(owner=K, name=NAME[K], first_registration=AS_OF + timedelta(days=3), plate_no="鄂H3"),
                    car(owner=N, name="钱多多", plate_no="鄂H4")],                       # ID keyed onto N
        "property_owner": [mine(unit("U001"), F), mine(unit("U002"), G),              # R03 H4: two homes
                           mine(unit("U003"), D), mine(unit("U004", use="车位"), D),     # home + parking
                           mine(unit("U005", use="商业"), E),                            # R03 H3: a shop
                           mine(unit("U006"), N), mine(unit("U007", status="历史"), N)],
        "business_entity": [entity(), entity(uscc="S1", etype="个体工商户", capital=5.0),
                            entity(uscc="S2", status="吊销")],
        "business_person": [mine(person(), K),                                         # R04 H5
                            mine(person("经营者", uscc="S1"), M), mine(person("监事"), D),
                            mine(person("股东", uscc="S2"), N)],
        "payroll": [dict(id_number=C, name=NAME[C], staff_status="在职"),              # R05 H1 (relative)
                    dict(id_number=X, name=NAME[X], staff_status="在职")],             # a namesake stranger
        "si_contribution": contrib(500) + [dict(r, id_number=M, name=NAME[M]) for r in
                                           contrib(3000, scheme="170", payer="70")],   # R06 H2; residents'
        "tax": [dict(id_number=N, name=NAME[N], income_item="工资薪金所得", period_start=months_back(i),
                     period_end=months_back(i), income_amount=300) for i in range(12)],   # 240 < 375
        "housing_fund": [dict(id_number=K, name=NAME[K], contribution_base=2000, account_status="正常",
                              last_paid_month=months_back(1)),                         # R06 H5
                         dict(id_number=E, name=NAME[E], contribution_base=2000, account_status="封存",
                              last_paid_month=months_back(1))],
        "bank": [dict(id_number=A, name=NAME[A], account_type="定期存款", balance=20000, query_date=days_ago(20)),
                 dict(id_number=B, name=NAME[B], account_type="活期存款", balance=8000, query_date=days_ago(20)),
                 dict(id_number=C, name=NAME[C], account_type="定期存款", balance=900000, query_date=days_ago(20)),
                 dict(id_number=D, name=NAME[D], account_type="活期存款", balance=1000, query_date=days_ago(20))],
    }


EXPECTED = {"R01": {"H1", "H6"}, "R02": {"H2", "H8"}, "R03": {"H3", "H4"}, "R04": {"H5"}, "R05": {"H1"},
            "R06": {"H2", "H5"}, "R07": {"H1"}, "R08": {"H2", "H8"}, "R09": {"H1"}}


def ours_per_rule(con) -> dict[str, set[str]]:
    rows = con.execute("SELECT rule, household_id FROM flags.hits WHERE run_date = ?", [AS_OF]).fetchall()
    out: dict[str, set[str]] = {}
    for rule, household in rows:
        out.setdefault(rule, set()).add(household)
    return out


def test_analyst_flags_exactly_the_households_our_rules_flag():
    con = connect(":memory:")
    rows = tables()
    for table in ALL_TABLES:
        stage(con, table, rows.get(table, []), AS_OF - timedelta(days=3))
    link_all(con, load_sources())
    evaluate_rules(con, load_policy(), AS_OF, ALL_OK)
    ours = ours_per_rule(con)
    assert ours == EXPECTED          # the scenario is what it says (our rules are tested in test_rules.py)
    analyst = peers_analyst.run_analyst(con, load_policy(), AS_OF, set(ALL_OK))["flagged"]
    assert {rule: set(h) for rule, h in analyst.items()} == ours


def test_analyst_skips_a_rule_whose_source_is_not_usable():
    con = connect(":memory:")
    for table in ALL_TABLES:
        stage(con, table, tables().get(table, []), AS_OF - timedelta(days=3))
    analyst = peers_analyst.run_analyst(con, load_policy(), AS_OF, set(ALL_OK) - {"vehicle"})["flagged"]
    assert analyst["R02"] is None and analyst["R01"] == ["H1", "H6"]


def test_analyst_name_check_drops_a_wrong_person():
    """An ID keyed onto someone else (no character in common) is not linked; a one-character typo in a
    three-character name is."""
    linked = pd.DataFrame({"id_norm": ["1", "2"], "name": ["李娜", "王建华"], "person_name": ["王伟", "王建国"]})
    assert list(peers_analyst.name_guard(linked)["id_norm"]) == ["2"]


# ---------------------------------------------------------------- slow: a generated night
@pytest.fixture(scope="module")
def generated_night(tmp_path_factory):
    """A scale-0.01 night loaded, validated (SQL engine), linked and flagged without Prefect."""
    from checks.suite import SqlCheckEngine
    from checks.validate import validate_source
    from connectors.load import load_source
    from synthetic.generate import generate

    base = tmp_path_factory.mktemp("peers")
    generate(base / "landing", AS_OF, 0.01, 7, None)
    con = connect(base / "warehouse.duckdb")
    for source in load_sources().sources:
        load_source(con, base / "landing", source, AS_OF, AS_OF)
        validate_source(con, source, AS_OF, AS_OF, engine=SqlCheckEngine())
    link_all(con, load_sources())
    status = {s: {"status": st, "reason": r} for s, st, r in con.execute(
        "SELECT source, status, reason FROM audit.source_status WHERE run_date = ?", [AS_OF]).fetchall()}
    evaluate_rules(con, load_policy(), AS_OF, status)
    yield con, status
    con.close()


def households_beyond_exact_ids(con) -> set[str]:
    """Households with a record linked other than by exact ID, or an ID match our name guard refused."""
    tables_ = [t for (t,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'linked' AND table_name IN "
        "(SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging')").fetchall()]
    found = set()
    for table in tables_:
        found |= {h for (h,) in con.execute(
            f"SELECT DISTINCT household_id FROM linked.{table} WHERE link_method <> 'id_exact'").fetchall()}
    return found | {h for (h,) in con.execute("SELECT DISTINCT household_id FROM linked.review").fetchall()}


@pytest.mark.slow
def test_analyst_agrees_with_our_rules_on_a_generated_night(generated_night):
    con, status = generated_night
    usable = {s for s, v in status.items() if v["status"] == "ok"}
    flagged = peers_analyst.run_analyst(con, load_policy(), AS_OF, usable)["flagged"]
    ours = ours_per_rule(con)
    apart = households_beyond_exact_ids(con)
    for rule, analyst in flagged.items():
        assert analyst is not None, f"{rule} skipped although every source is usable"
        mine, theirs = ours.get(rule, set()) - apart, set(analyst) - apart
        assert theirs == mine, (rule, sorted(mine - theirs), sorted(theirs - mine))
    for rule in ("R01", "R02", "R05", "R08", "R09"):      # the comparison compared something
        assert ours.get(rule, set()) - apart, rule


def test_peer_households_are_held_against_the_ground_truth(tmp_path):
    """bench/peers.py --truth: of the households each side flags, how many are true cases, and which look-alikes
    the peer's false ones fell for; precision and recall per side from the totals."""
    import peers

    (tmp_path / "cases.csv").write_text("household_id,rule,member_id,detail\nH1,R01,a,x\nH2,R01,b,x\nH3,R02,c,x\n",
                                        encoding="utf-8")
    (tmp_path / "lookalikes.csv").write_text("household_id,rule,member_id,kind\nH9,R01,d,wrong_person_id\n",
                                             encoding="utf-8")
    rows = peers.rule_agreement({"R01": ["H1", "H2"], "R02": [], "R03": None},
                                {"R01": ["H1", "H8", "H9"], "R02": ["H3"], "R03": ["H5"]},
                                peers.read_truth(tmp_path))
    r01, r02, r03 = rows
    assert r01 == {"rule": "R01", "skipped": False, "ours": 2, "peer": 3, "both": 1, "only_ours": 1, "only_peer": 2,
                   "truth": 2, "ours_true": 2, "peer_true": 1, "only_ours_true": 1, "only_peer_true": 0,
                   "peer_false_kinds": ["no look-alike", "wrong_person_id"]}
    assert (r02["only_peer"], r02["only_peer_true"], r02["peer_false_kinds"]) == (1, 1, [])
    assert r03["skipped"]
    total = peers.totals(rows)
    assert (total["truth"], total["ours_true"], total["peer_true"]) == (3, 2, 2)
    assert peers.precision_recall(total, "ours") == (1.0, 2 / 3)
    assert peers.precision_recall(total, "peer") == (0.5, 2 / 3)
    assert "wrong_person_id 1" in peers.rules_table(rows)
    # without the truth, the comparison is what it was
    assert "truth" not in peers.totals(peers.rule_agreement({"R01": ["H1"]}, {"R01": ["H1"]}))
