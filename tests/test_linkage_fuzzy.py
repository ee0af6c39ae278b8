"""Fuzzy (Fellegi–Sunter) fallback for records without a usable ID, on literal tiny tables."""
from __future__ import annotations

import re
from datetime import date, timedelta

import duckdb
import pytest

from linkage import fuzzy


def _warehouse(hukou, cremation):
    con = duckdb.connect()
    for s in ("staging", "linked"):
        con.execute(f"CREATE SCHEMA {s}")
    con.execute("CREATE TABLE staging.hukou (id_norm VARCHAR, name VARCHAR, birth_date DATE, hukou_no VARCHAR, "
                "address VARCHAR, person_status VARCHAR, deregistration_date DATE)")
    con.executemany("INSERT INTO staging.hukou VALUES (?, ?, ?, ?, ?, ?, ?)", hukou)
    con.execute("CREATE TABLE staging.roster AS SELECT 'H' || id_norm AS household_id, id_norm, name, "
                "substr(address, 1, 3) AS district FROM staging.hukou")
    con.execute("CREATE TABLE linked.household_person AS SELECT household_id, id_norm AS person_id, "
                "name AS person_name, 'member' AS kin, NULL AS hukou_no FROM staging.roster")
    con.execute("CREATE TABLE staging.cremation (name VARCHAR, id_number VARCHAR, id_norm VARCHAR, "
                "id_status VARCHAR, death_date DATE, funeral_home VARCHAR, _file VARCHAR, _row BIGINT)")
    con.executemany("INSERT INTO staging.cremation VALUES (?, NULL, NULL, 'empty', ?, ?, 'c.csv', ?)", cremation)
    return con


DEATH = date(2026, 9, 1)
FILLER = [(f"4208811950010{i:05d}", n, date(1950, 1, 1), f"F{i}", "钟祥市郢中街道", "0", None)
          for i, n in enumerate(["张三丰", "李四海", "赵五岳", "钱六顺", "孙七巧", "周八方", "吴九州", "郑十全"] * 5)]


def _dead(pid, name, district="钟祥市", dereg_days=3, born=1945):
    return (pid, name, date(born, 5, 5), "X" + pid, district + "某镇某村", "1", DEATH + timedelta(days=dereg_days))


@pytest.fixture(scope="module")
def model():
    return fuzzy.load_model()


def test_model_file_loads_and_nothing_is_trained_at_run_time(model, monkeypatch):
    assert fuzzy.MODEL_PATH.exists()
    assert model["format"].startswith("crosscheck-fuzzy-fs")
    for comp in ("name", "district", "death", "age"):
        assert set(model["comparisons"][comp]) == {"m", "u"}
    monkeypatch.setattr(fuzzy, "train_fuzzy_model", lambda *a, **k: pytest.fail("trained at run time"))
    con = _warehouse(FILLER + [_dead("420881194505050011", "冼瑾萱")],
                     [("冼瑾萱", DEATH, "钟祥市殡仪馆", 1)])
    counts = fuzzy.fuzzy_link(con, "cremation")       # model=None: loads the saved file
    assert counts["linked"] == 1


def test_rare_exact_name_in_right_district_links(model):
    con = _warehouse(FILLER + [_dead("420881194505050011", "冼瑾萱"), _dead("420803194505050022", "冼瑾萱",
                                                                         "沙洋县", dereg_days=900)],
                     [("冼瑾萱", DEATH, "钟祥市殡仪馆", 1)])
    rows = fuzzy.fuzzy_link(con, "cremation", model)
    linked = con.execute("SELECT _row, person_id, link_method, match_probability, link_agreed "
                         "FROM linked.fuzzy_cremation").fetchall()
    assert rows["linked"] == 1
    assert linked[0][1] == "420881194505050011" and linked[0][2] == "fuzzy" and linked[0][3] >= 0.999
    assert "district" in linked[0][4] and "name exact" in linked[0][4]


def test_common_name_with_several_candidates_is_never_linked(model):
    wangs = [_dead(f"42088119450505{i:04d}", "王伟") for i in range(5)]
    con = _warehouse(FILLER + wangs, [("王伟", DEATH, "钟祥市殡仪馆", 1)])
    fuzzy.fuzzy_link(con, "cremation", model)
    assert con.execute("SELECT count(*) FROM linked.fuzzy_cremation").fetchone()[0] == 0
    review = con.execute("SELECT max(match_probability) FROM linked.fuzzy_review").fetchone()[0]
    assert review is None or review < model["settings"]["accept"]


def test_traditional_spelling_of_rare_name_links(model):
    con = _warehouse(FILLER + [_dead("420881194505050011", "冯瑾萱")], [("馮瑾萱", DEATH, "钟祥市殡仪馆", 1)])
    fuzzy.fuzzy_link(con, "cremation", model)
    assert con.execute("SELECT person_id FROM linked.fuzzy_cremation").fetchall() == [("420881194505050011",)]


def test_link_agreed_holds_no_name_or_id(model):
    con = _warehouse(FILLER + [_dead("420881194505050011", "冼瑾萱"),
                               _dead("420881194505050033", "王伟"), _dead("420881194505050044", "王伟")],
                     [("冼瑾萱", DEATH, "钟祥市殡仪馆", 1), ("王伟", DEATH, "钟祥市殡仪馆", 2)])
    fuzzy.fuzzy_link(con, "cremation", model)
    texts = [r[0] for r in con.execute("SELECT link_agreed FROM linked.fuzzy_cremation UNION ALL "
                                       "SELECT link_agreed FROM linked.fuzzy_review").fetchall()]
    assert texts
    for text in texts:
        assert not re.search(r"\d{6,}", text)
        assert not any(n in text for n in ("冼", "瑾", "萱", "王伟"))


@pytest.mark.parametrize("canon", ["张伟", "欧阳娜娜", "买买提艾力", "王yan", "a", "李?", "阿依古丽tursun", "冼瑾萱"])
def test_name_keys_built_in_sql_equal_the_python_reference(canon):
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE names AS SELECT ? AS canon", [canon])
    fuzzy.build_name_keys(con, "names", "keys")
    assert sorted(con.execute("SELECT kind, key FROM keys").fetchall()) == sorted(fuzzy.name_keys(canon))


def test_night_links_an_id_less_cremation_record_as_fuzzy_and_explains_it():
    """link_all, end to end on staged rows: the record without an ID of a roster member with a rare name
    joins linked.cremation as ``fuzzy`` with its probability; a 王伟 without an ID stays unlinked with its
    reason; an exact-ID record is untouched."""
    from crosscheck.settings import load_sources
    from crosscheck.warehouse import connect
    from linkage.link import link_all
    from tests.staging_builder import stage

    from crosscheck.idnum import check_digit

    def valid(body17: str) -> str:
        return body17 + check_digit(body17)

    rare, wang, exact = valid("42088119450505001"), valid("42088119450505003"), valid("42088119500101001")
    filler = [(valid(f"4208811950{k:07d}"), *rest) for k, (_, *rest) in enumerate(FILLER)]
    hukou = [dict(id_number=i, name=n, birth_date=b, hukou_no=h, address=a, person_status=s, deregistration_date=d)
             for i, n, b, h, a, s, d in filler + [_dead(rare, "冼瑾萱"), _dead(wang, "王伟"),
                                                  _dead(valid("42088119450505004"), "王伟")]]
    hukou.append(dict(id_number=exact, name="郑十全", birth_date=date(1950, 1, 1), hukou_no="X9",
                      address="钟祥市郢中街道", person_status="0", deregistration_date=None))
    roster = [dict(household_id=f"H{k}", category="农村低保", management_class="A", name=n, id_number=i,
                   relation="户主", household_size=1, monthly_payment=375, district="钟祥市", township="郢中街道",
                   village="某村", start_date=date(2020, 1, 1))
              for k, (n, i) in enumerate([("冼瑾萱", rare), ("王伟", wang), ("郑十全", exact)])]
    cremation = [dict(name="冼瑾萱", id_number=None, death_date=DEATH, funeral_home="钟祥市殡仪馆"),
                 dict(name="王伟", id_number=None, death_date=DEATH, funeral_home="钟祥市殡仪馆"),
                 dict(name="郑十全", id_number=exact, death_date=DEATH, funeral_home="钟祥市殡仪馆")]
    con = connect(":memory:")
    for table, rows in (("roster", roster), ("hukou", hukou), ("cremation", cremation)):
        stage(con, table, rows, date(2026, 11, 20))
    counts = link_all(con, load_sources())
    assert counts["cremation_fuzzy"] == 1 and counts["cremation"] == 2
    got = con.execute("SELECT _row, person_id, household_id, link_method, link_score, link_agreed "
                      "FROM linked.cremation ORDER BY _row").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in got] == [(1, rare, "H0", "fuzzy"), (3, exact, "H2", "id_exact")]
    assert 0.999 <= got[0][4] < 1.0 and "name exact" in got[0][5] and "district" in got[0][5]
    assert con.execute("SELECT _row, reason FROM linked.unlinked WHERE record_table = 'cremation'").fetchall() \
        == [(2, "no ID delivered")]


def test_canonical_names_in_sql_equal_linkage_names():
    """The fuzzy linker canonicalises plain Han names in DuckDB; every other name through linkage.names."""
    from linkage.names import canonical

    names = ["張偉", "王伟", "於小明", "乾隆", "买买提·艾力", "张 三", "王?", "李Yan", "𠀀明", "欧阳娜娜", "", None]
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE src AS SELECT unnest(?::VARCHAR[]) AS cand_name", [names])
    fuzzy._with_canonical_names(con, "src", "cand_name", "out")
    got = dict(con.execute("SELECT cand_name, canon FROM out").fetchall())
    assert got == {n: canonical(n) for n in names if n and canonical(n)}
    assert got["張偉"] == "张伟" and got["於小明"] == "於小明"


# ---------------------------------------------------------------- the hukou candidates kept between nights
def _fuzzy_outputs(con) -> tuple:
    return (sorted(con.execute("SELECT * FROM linked.fuzzy_cremation").fetchall(), key=repr),
            sorted(con.execute("SELECT * FROM linked.fuzzy_review").fetchall(), key=repr),
            sorted(con.execute("SELECT * FROM fz_cand2").fetchall(), key=repr),
            sorted(con.execute("SELECT * FROM fz_keys").fetchall()),
            sorted(con.execute("SELECT kind, key, n FROM fz_tf").fetchall()))


def _counting_builds(monkeypatch) -> list:
    builds = []
    real = fuzzy._build_hukou_candidates
    monkeypatch.setattr(fuzzy, "_build_hukou_candidates", lambda *a: builds.append(a[2]) or real(*a))
    return builds


def _cache_night(hukou, cremation, roster_only=()):
    """_warehouse plus roster members without a hukou row (name, ID, district)."""
    con = _warehouse(hukou, cremation)
    for i, (name, pid, district) in enumerate(roster_only):
        con.execute("INSERT INTO staging.roster VALUES (?, ?, ?, ?)", [f"R{i}", pid, name, district])
        con.execute("INSERT INTO linked.household_person VALUES (?, ?, ?, 'member', NULL)", [f"R{i}", pid, name])
    return con


def test_kept_candidates_give_what_a_fresh_build_gives_and_are_built_once(model, monkeypatch):
    """The second night with the same key reads the hukou candidates from the warehouse instead of building
    them, and every output (links, review band, candidates, keys, term frequencies) equals a build without
    the cache. A roster member without a hukou row is a candidate on both nights: 冼瑾萱 only on the roster,
    twice in hukou elsewhere; the roster-only 冯瑾萱 shares her reading and mask keys but not her name."""
    hukou = FILLER + [_dead("420881194505050011", "冼瑾萱", "沙洋县", dereg_days=900),
                      _dead("420881194505050022", "冼瑾萱", "东宝区", dereg_days=900)]
    roster_only = [("冼瑾萱", "420881194505050033", "钟祥市"), ("冯瑾萱", "420881194505050044", "钟祥市"),
                   ("张三丰", "420881194505050055", "钟祥市")]
    cremation = [("冼瑾萱", DEATH, "钟祥市殡仪馆", 1), ("冯谨萱", DEATH, "钟祥市殡仪馆", 2)]
    builds = _counting_builds(monkeypatch)
    fresh = _cache_night(hukou, cremation, roster_only)
    fuzzy.fuzzy_link(fresh, "cremation", model)
    want = _fuzzy_outputs(fresh)
    assert builds == ["fz_hcand"]
    assert ("exact", "冼瑾萱", 3) in want[4] and ("exact", "张三丰", 6) in want[4]   # hukou + roster counted

    con = _cache_night(hukou, cremation, roster_only)
    fuzzy.create_fuzzy_review(con)
    for night in range(3):
        con.execute("DELETE FROM linked.fuzzy_review")
        counts = fuzzy.fuzzy_link(con, "cremation", model, candidate_key="v1:hukou-a")
        assert _fuzzy_outputs(con) == want, night
    assert builds == ["fz_hcand", "linked.fuzzy_candidates"]            # built once, then read
    assert counts["pairs"] > 0 and (want[0] or want[1])                 # the comparison is not of empty tables
    roster_ids = {r[0] for r in con.execute("SELECT person_id FROM fz_cand2").fetchall()}
    assert {"420881194505050033", "420881194505050044"} <= roster_ids
    assert con.execute("SELECT count(*) FROM linked.fuzzy_candidates WHERE person_id LIKE '4208811945050500_3'"
                       ).fetchone()[0] == 0                              # roster-only members are never kept


def test_kept_candidates_are_rebuilt_when_their_key_or_the_districts_change(model, monkeypatch):
    hukou = FILLER + [_dead("420881194505050011", "冼瑾萱")]
    cremation = [("冼瑾萱", DEATH, "钟祥市殡仪馆", 1)]
    builds = _counting_builds(monkeypatch)
    con = _cache_night(hukou, cremation)
    fuzzy.fuzzy_link(con, "cremation", model, candidate_key="v1:hukou-a")
    fuzzy.fuzzy_link(con, "cremation", model, candidate_key="v1:hukou-a")
    assert len(builds) == 1
    fuzzy.fuzzy_link(con, "cremation", model, candidate_key="v1:hukou-b")          # hukou changed
    assert len(builds) == 2
    # a new district on the roster changes which district every hukou address falls in
    con.execute("INSERT INTO staging.roster VALUES ('R9', '420881194505059999', '某人', '掇刀区')")
    fuzzy.fuzzy_link(con, "cremation", model, candidate_key="v1:hukou-b")
    assert len(builds) == 3
    # a kept table that went missing is never trusted
    con.execute("DROP TABLE linked.fuzzy_candidate_tf")
    fuzzy.fuzzy_link(con, "cremation", model, candidate_key="v1:hukou-b")
    assert len(builds) == 4
    assert con.execute("SELECT person_id FROM linked.fuzzy_cremation").fetchall() == [("420881194505050011",)]


def test_the_night_keeps_the_candidates_for_the_next_one(monkeypatch):
    """link_all keys the kept candidates by the linkage version and staging.hukou's fingerprint: a second
    link of the same warehouse reads them, a full link (``--full``) or a changed hukou rebuilds them."""
    from crosscheck.settings import load_sources
    from crosscheck.warehouse import connect
    from linkage.link import link_all
    from tests.staging_builder import stage

    from crosscheck.idnum import check_digit

    con = connect(":memory:")
    hukou = [dict(id_number=f"4208811950{k:07d}" + check_digit(f"4208811950{k:07d}"), name=n, birth_date=b,
                  hukou_no=h, address=a, person_status=s, deregistration_date=d)
             for k, (_, n, b, h, a, s, d) in enumerate(FILLER[:8])]
    stage(con, "hukou", hukou, date(2026, 11, 20))
    stage(con, "roster", [dict(household_id="H1", category="农村低保", management_class="A", name="张三丰",
                               id_number=hukou[0]["id_number"], relation="户主", household_size=1, monthly_payment=375,
                               district="钟祥市", township="郢中街道", village="某村", start_date=date(2020, 1, 1))],
          date(2026, 11, 20))
    stage(con, "cremation", [dict(name="李四海", id_number=None, death_date=DEATH, funeral_home="钟祥市殡仪馆")],
          date(2026, 11, 20))
    link_all(con, load_sources())
    key = con.execute("SELECT cache_key FROM linked.fuzzy_candidate_state").fetchall()
    assert len(key) == 1 and con.execute("SELECT count(*) FROM linked.fuzzy_candidates").fetchone()[0] == 8
    builds = []
    real = fuzzy._build_hukou_candidates
    monkeypatch.setattr(fuzzy, "_build_hukou_candidates", lambda *a: builds.append(a[2]) or real(*a))
    link_all(con, load_sources())
    assert con.execute("SELECT cache_key FROM linked.fuzzy_candidate_state").fetchall() == key
    assert builds == []                                         # read, not built
    link_all(con, load_sources(), full=True)                    # crosscheck run --full: built anew
    assert builds == ["linked.fuzzy_candidates"]
    assert con.execute("SELECT cache_key FROM linked.fuzzy_candidate_state").fetchall() == key
    stage(con, "hukou", hukou[:7], date(2026, 11, 21))
    link_all(con, load_sources())
    assert con.execute("SELECT cache_key FROM linked.fuzzy_candidate_state").fetchall() != key
    assert con.execute("SELECT count(*) FROM linked.fuzzy_candidates").fetchone()[0] == 7


def test_district_order_and_so_the_cache_key_are_the_same_in_every_process():
    """The districts decide the CASE that gives each hukou address its district and are part of the kept
    candidates' key: their order must not follow a set's, which changes with each process's hash seed
    (nights are separate processes: the cache was never hit)."""
    import os
    import subprocess
    import sys

    districts = ['屈家岭管理区', '漳河新区', '东宝区', '京山市', '掇刀区', '沙洋县', '钟祥市']
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.roster AS SELECT unnest(?::VARCHAR[]) AS district", [districts[::-1]])
    assert fuzzy._districts(con) == districts           # longest first, then by name
    code = ("import duckdb; from linkage import fuzzy; con = duckdb.connect(); con.execute('CREATE SCHEMA staging');"
            f'con.execute("CREATE TABLE staging.roster AS SELECT unnest({districts}) AS district");'
            "print(fuzzy._districts(con))")
    for seed in (1, 2):
        assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip() == str(districts)
