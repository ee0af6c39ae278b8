"""linkage/quality.py on literal tiny tables: every count below is worked out by hand from the rows."""
from __future__ import annotations

import json
import stat
from datetime import date

import duckdb
import pytest

from crosscheck.settings import SourcesConfig, load_sources
from linkage.quality import (_resolve_truth_table, _table_map, format_link_quality, link_quality, reason_label,
                             write_link_quality)

RUN = date(2026, 11, 20)
ROSTER_D, CREM_D, PROP_D, BIZ_D = date(2026, 11, 19), date(2026, 11, 18), date(2026, 11, 8), date(2026, 11, 6)

# Eighteen-character IDs, so that the "no ID in the output" check means something.
P1, P2, P3, P4, P5, P6, P8, P9 = (f"42080219900101{n:03d}{n % 10}" for n in (1, 2, 3, 4, 5, 6, 8, 9))
P5_TYPO = P5[:-2] + "77"
NAMES = ["张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十"]


def _config() -> SourcesConfig:
    def col(name, role=None, required=True):
        return {"name": name, "type": "text", **({"role": role} if role else {}), "required": required}

    return SourcesConfig.model_validate({
        "defaults": {"date_formats": ["%Y-%m-%d"], "month_formats": ["%Y%m"]},
        "sources": {
            "roster": {"title": "名册", "department": "民政局", "max_age_days": 7, "tables": {"roster": {
                "format": "csv", "files": "*.csv", "columns": {
                    "家庭编号": col("household_id"), "成员姓名": col("name", "person_name"),
                    "身份证号": col("id_number", "id_number")}}}},
            "cremation": {"title": "火化", "department": "殡葬", "max_age_days": 35, "tables": {"cremation": {
                "format": "csv", "files": "*.csv", "columns": {
                    "逝者姓名": col("name", "person_name"), "身份证号": col("id_number", "id_number", False),
                    "死亡日期": {"name": "death_date", "type": "date"}}}}},
            "property": {"title": "不动产", "department": "自然资源", "max_age_days": 35, "tables": {"property": {
                "format": "xlsx", "files": "*.xlsx", "columns": {
                    "权利人": col("owner_names"), "证件号码": col("owner_ids"),
                    "登记时间": {"name": "registration_date", "type": "date"}},
                "explode": {"table": "property_owner", "separator": "、",
                            "columns": {"owner_names": "name", "owner_ids": "id_number"},
                            "roles": {"name": "person_name", "id_number": "id_number"}}}}},
            "business": {"title": "市场主体", "department": "市场监管", "max_age_days": 35, "tables": {
                "business_entity": {"format": "csv", "files": "entities*.csv", "columns": {
                    "统一社会信用代码": col("uscc"), "企业名称": col("entity_name")}},
                "business_person": {"format": "csv", "files": "persons*.csv", "columns": {
                    "统一社会信用代码": col("uscc"), "姓名": col("name", "person_name"),
                    "证件号码": col("id_number", "id_number")}}}},
        },
    })


def _insert(con, table: str, cols: str, rows: list[tuple]) -> None:
    con.execute(f"CREATE TABLE {table} ({cols})")
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


STAGED = ("name VARCHAR, id_norm VARCHAR, id_status VARCHAR, _file VARCHAR, _row BIGINT, _delivery_date DATE")
LINKED = STAGED + (", household_id VARCHAR, person_id VARCHAR, person_name VARCHAR, kin VARCHAR,"
                   " link_method VARCHAR, link_score DOUBLE, link_agreed VARCHAR")


@pytest.fixture()
def night(tmp_path):
    con = duckdb.connect()
    for schema in ("staging", "linked", "audit"):
        con.execute(f"CREATE SCHEMA {schema}")
    n = dict(zip([P1, P2, P3, P4, P5, P6, P8, P9], NAMES))

    # Households: H1 = P1, P2 (members) + P3 (relative); H2 = P4. P5 is a member whose roster ID has a typo.
    _insert(con, "staging.roster", "household_id VARCHAR, " + STAGED, [
        ("H1", n[P1], P1, "valid", "roster.csv", 1, ROSTER_D), ("H1", n[P2], P2, "valid", "roster.csv", 2, ROSTER_D),
        ("H2", n[P4], P4, "valid", "roster.csv", 3, ROSTER_D), ("H2", n[P5], None, "bad_check", "roster.csv", 4, ROSTER_D)])
    _insert(con, "linked.household_person", "household_id VARCHAR, person_id VARCHAR, person_name VARCHAR,"
            " kin VARCHAR, hukou_no VARCHAR", [
                ("H1", P1, n[P1], "member", None), ("H1", P2, n[P2], "member", None),
                ("H1", P3, n[P3], "relative", "HK1"), ("H2", P4, n[P4], "member", None)])

    def crem(row, id_norm, status, name="某人"):
        return (name, id_norm, status, "cremation.csv", row, CREM_D)
    staged_crem = [crem(1, P1, "valid"), crem(2, P9, "valid"), crem(3, None, "bad_check"), crem(4, P4, "valid"),
                   crem(5, P2, "valid"), crem(6, P3, "valid"), crem(7, P1, "valid"), crem(8, P5_TYPO, "valid"),
                   crem(11, None, "empty"), crem(12, P9, "valid")]
    _insert(con, "staging.cremation", STAGED, staged_crem)

    def link(staged, person, method="id_exact", household="H1"):
        return staged + (household, person, n[person], "member", method, 1.0, "id")
    _insert(con, "linked.cremation", LINKED, [
        link(staged_crem[0], P1), link(staged_crem[5], P3), link(staged_crem[6], P1),
        link(staged_crem[8], P3, "fuzzy")])

    _insert(con, "staging.property_owner", STAGED + ", owner_seq BIGINT", [
        ("甲", P1, "valid", "property.xlsx", 1, PROP_D, 1), ("乙", None, "excel_damaged", "property.xlsx", 1, PROP_D, 2),
        ("某公司", None, "malformed", "property.xlsx", 3, PROP_D, 1)])
    _insert(con, "linked.property_owner", LINKED + ", owner_seq BIGINT", [
        ("甲", P1, "valid", "property.xlsx", 1, PROP_D, "H1", P1, n[P1], "member", "id_exact", 1.0, "id", 1)])

    _insert(con, "staging.business_person", STAGED, [(n[P2], P2, "valid", "persons.csv", 1, BIZ_D)])
    _insert(con, "linked.business_person", LINKED, [
        (n[P2], P2, "valid", "persons.csv", 1, BIZ_D, "H1", P2, n[P2], "member", "id_exact", 1.0, "id")])

    _insert(con, "linked.review", "record_table VARCHAR, _file VARCHAR, _row BIGINT, household_id VARCHAR,"
            " person_id VARCHAR, source_name VARCHAR, roster_name VARCHAR, score DOUBLE, reason VARCHAR", [
                ("cremation", "cremation.csv", 4, "H2", P4, n[P6], n[P4], 0.0, "ID matches but the name disagrees"),
                ("cremation", "cremation.csv", 5, "H1", P2, "李肆", n[P2], 0.2, "ID matches but the name disagrees")])
    _insert(con, "audit.quarantine", "run_date DATE, source VARCHAR, table_name VARCHAR, file_name VARCHAR,"
            " delivery_date DATE, row_no BIGINT, reason VARCHAR, raw_record VARCHAR", [
                (RUN, "cremation", "cremation", "cremation.csv", CREM_D, 9,
                 "与cremation.csv 第 1 行完全重复 (exact duplicate row)", json.dumps({"身份证号": P1})),
                (RUN, "cremation", "cremation", "cremation.csv", CREM_D, 10,
                 f"「死亡日期」日期「2026-12-01」超出合理范围 1950-01-01～2026-11-18 (死亡日期 2026-12-01 outside "
                 f"1950-01-01..2026-11-18, {n[P2]} {P2})", "{}"),
                (RUN, "property", "property", "property.xlsx", PROP_D, 2,
                 "「登记时间」日期「2026-12-01」超出合理范围 (登记时间 2026-12-01 outside 1950-01-01..2026-11-08)", "{}"),
                # another night's quarantine: not this run
                (date(2026, 11, 19), "cremation", "cremation", "cremation.csv", CREM_D, 3, "whatever", "{}")])
    _insert(con, "audit.load_files", "run_date DATE, source VARCHAR, table_name VARCHAR, file_name VARCHAR,"
            " delivery_date DATE, status VARCHAR", [
                (RUN, "business", "business_person", "persons.csv", BIZ_D, "loaded"),
                (RUN, "business", "business_person", "persons_part2.csv", BIZ_D, "rejected")])

    truth = [
        # roster (its truth table is the roster itself)
        ("roster", "roster", ROSTER_D, "roster.csv", 1, 1, P1, ""), ("roster", "roster", ROSTER_D, "roster.csv", 2, 1, P2, ""),
        ("roster", "roster", ROSTER_D, "roster.csv", 3, 1, P4, ""), ("roster", "roster", ROSTER_D, "roster.csv", 4, 1, P5, "typo"),
        # cremation, tonight's delivery
        ("cremation", "cremation", CREM_D, "cremation.csv", 1, 1, P1, ""),
        ("cremation", "cremation", CREM_D, "cremation.csv", 2, 1, P9, ""),
        ("cremation", "cremation", CREM_D, "cremation.csv", 3, 1, P2, "typo"),
        ("cremation", "cremation", CREM_D, "cremation.csv", 4, 1, P6, "wrong_person_id"),
        ("cremation", "cremation", CREM_D, "cremation.csv", 5, 1, P2, "name_homophone"),
        ("cremation", "cremation", CREM_D, "cremation.csv", 6, 1, P8, "wrong_person_id"),
        ("cremation", "cremation", CREM_D, "cremation.csv", 7, 1, P4, "wrong_person_id"),
        ("cremation", "cremation", CREM_D, "cremation.csv", 8, 1, P5, ""),
        ("cremation", "cremation", CREM_D, "cremation.csv", 9, 1, P1, "duplicate_row"),
        ("cremation", "cremation", CREM_D, "cremation.csv", 10, 1, P2, ""),
        ("cremation", "cremation", CREM_D, "cremation.csv", 11, 1, P3, "id_missing"),
        # cremation, an older delivery that was not loaded tonight
        ("cremation", "cremation", date(2026, 10, 19), "cremation.csv", 1, 1, P1, "typo"),
        # property: the truth names the delivered table, staging the exploded one
        ("property", "property", PROP_D, "property.xlsx", 1, 1, P1, ""),
        ("property", "property", PROP_D, "property.xlsx", 1, 2, P2, "excel_number"),
        ("property", "property", PROP_D, "property.xlsx", 2, 1, P4, ""),
        ("property", "property", PROP_D, "property.xlsx", 2, 2, P9, ""),
        ("property", "property", PROP_D, "property.xlsx", 3, 1, "", ""),
        # business persons under yet another name; the second file was rejected
        ("business", "persons", BIZ_D, "persons.csv", 1, 1, P2, ""),
        ("business", "persons", BIZ_D, "persons_part2.csv", 1, 1, P1, "lower_x"),
    ]
    truth_dir = tmp_path / "landing.truth"
    truth_dir.mkdir()
    tcon = duckdb.connect()
    tcon.execute("CREATE TABLE t (source VARCHAR, \"table\" VARCHAR, delivery_date VARCHAR, file VARCHAR, \"row\" INTEGER,"
                 " owner_seq TINYINT, true_id VARCHAR, defect VARCHAR)")
    tcon.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     [(s, t, d.isoformat(), f, r, o, i, x) for s, t, d, f, r, o, i, x in truth])
    tcon.execute(f"COPY t TO '{truth_dir / 'links.parquet'}' (FORMAT parquet)")
    tcon.close()
    yield con, truth_dir
    con.close()


def _by(rows, **keys):
    return [r for r in rows if all(r[k] == v for k, v in keys.items())]


def test_per_table_precision_and_recall(night):
    con, truth_dir = night
    r = link_quality(con, truth_dir, RUN, _config())
    assert r["unmapped_truth_tables"] == []
    tables = {t["table"]: t for t in r["tables"]}
    assert set(tables) == {"cremation", "property_owner", "business_person"}

    c = tables["cremation"]
    assert (c["source"], c["records"], c["person_records"]) == ("cremation", 11, 11)
    assert c["should_link"] == 7            # rows 1, 3, 5, 7, 8, 10, 11 (9 is a dropped duplicate)
    assert c["dropped_duplicates"] == 1
    assert (c["links"], c["correct_links"], c["false_links"]) == (4, 2, 2)
    assert c["precision"] == 0.5
    assert (c["found"], c["missed"], c["lost_before_linking"], c["missed_in_linking"]) == (2, 5, 1, 4)
    assert c["recall"] == round(2 / 7, 6) and c["recall_staged"] == round(2 / 6, 6)
    assert c["review_records"] == 2

    p = tables["property_owner"]
    assert (p["source"], p["records"], p["should_link"], p["links"], p["correct_links"]) == ("property", 5, 3, 1, 1)
    assert (p["found"], p["lost_before_linking"], p["precision"], p["recall"]) == (1, 1, 1.0, round(1 / 3, 6))

    b = tables["business_person"]
    assert (b["source"], b["records"], b["should_link"], b["found"], b["lost_before_linking"]) == ("business", 2, 2, 1, 1)

    t = r["totals"]
    assert (t["records"], t["should_link"], t["links"], t["correct_links"], t["found"]) == (18, 12, 6, 4, 4)
    assert r["household_persons"] == 4 and r["true_members_missing_from_household_person"] == 1
    assert r["staged_without_truth"] == [{"table": "cremation", "records": 1}]
    assert r["links_without_truth"] == []


def test_per_method(night):
    con, truth_dir = night
    r = link_quality(con, truth_dir, RUN, _config())
    m = {(x["table"], x["method"]): x for x in r["methods"]}
    assert (m["cremation", "id_exact"]["links"], m["cremation", "id_exact"]["correct"]) == (3, 1)
    assert m["cremation", "id_exact"]["found"] == 1 and m["cremation", "id_exact"]["precision"] == round(1 / 3, 6)
    assert (m["cremation", "fuzzy"]["links"], m["cremation", "fuzzy"]["correct"], m["cremation", "fuzzy"]["found"]) \
        == (1, 1, 1)
    assert m["cremation", "fuzzy"]["recall_share"] == round(1 / 7, 6)


def test_review_band(night):
    con, truth_dir = night
    r = link_quality(con, truth_dir, RUN, _config())
    assert sorted((v["table"], v["defect"], v["truly_person"], v["someone_else"]) for v in r["review"]) == [
        ("cremation", "name_homophone", 1, 0), ("cremation", "wrong_person_id", 0, 1)]
    assert r["review_rows_without_staged_record"] == 0


def test_unlinked_by_reason(night):
    con, truth_dir = night
    r = link_quality(con, truth_dir, RUN, _config())
    got = sorted((u["table"], u["pipeline_view"], u["defect"], u["records"]) for u in r["unlinked"])
    assert got == sorted([
        ("cremation", "id_status bad_check", "typo", 1),
        ("cremation", "review: ID right, name disagrees", "name_homophone", 1),
        ("cremation", "linked to another person only", "wrong_person_id", 1),
        ("cremation", "person not in household_person (roster ID damaged)", "none", 1),
        ("cremation", "quarantined: 死亡日期 # outside #, … #", "none", 1),
        ("property_owner", "id_status excel_damaged", "excel_number", 1),
        ("property_owner", "quarantined: 登记时间 # outside #", "none", 1),
        ("business_person", "not staged (file rejected)", "lower_x", 1),
    ])
    elsewhere = {(u["table"], u["pipeline_view"]): u["person_linked_elsewhere"] for u in r["unlinked"]}
    assert elsewhere["cremation", "id_status bad_check"] == 0
    assert elsewhere["cremation", "review: ID right, name disagrees"] == 0
    assert elsewhere["property_owner", "quarantined: 登记时间 # outside #"] == 0


def test_false_links_by_defect(night):
    con, truth_dir = night
    r = link_quality(con, truth_dir, RUN, _config())
    got = sorted((f["table"], f["method"], f["defect"], f["truly"], f["links"]) for f in r["false_links"])
    assert got == [("cremation", "id_exact", "wrong_person_id", "another household person", 1),
                   ("cremation", "id_exact", "wrong_person_id", "not a household person", 1)]


def test_roster_section(night):
    con, truth_dir = night
    r = link_quality(con, truth_dir, RUN, _config())
    got = sorted((x["pipeline_view"], x["staged_id"], x["defect"], x["rows"]) for x in r["roster"])
    assert got == [("id_status bad_check", "none", "typo", 1), ("id_status valid", "right", "none", 3)]


def test_outputs_hold_no_ids_or_names(night, tmp_path):
    con, truth_dir = night
    md = write_link_quality(con, truth_dir, RUN, tmp_path / "out", _config())
    js = md.with_name("link_quality.json")
    for path in (md, js):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text(encoding="utf-8")
        for secret in [P1, P2, P3, P4, P5, P6, P8, P9, P5_TYPO, *NAMES, "李肆"]:
            assert secret not in text, (path.name, secret)
    text = md.read_text(encoding="utf-8")
    assert "## Per source and table" in text and "## Per link method" in text
    assert "## Should have been linked, but were not" in text and "## False links" in text
    assert "| cremation | cremation | 11 | 7 | 4 | 2 | 0.5000 |" in text
    assert json.loads(js.read_text(encoding="utf-8"))["totals"]["found"] == 4
    # temp tables are cleaned up, and the connection still works
    assert not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'lq_%'").fetchone()[0]
    assert format_link_quality(link_quality(con, truth_dir, RUN, _config())) == text


def test_reason_label_removes_values():
    label = reason_label(f"「身份证号」值「{P1}」校验位错误 (bad check digit in {P1} for 张三)", {"身份证号"})
    assert label == "bad check digit in # for …"
    assert reason_label("与part2.csv 第 63 行完全重复 (exact duplicate row)") == "exact duplicate row"
    assert reason_label("必填列「姓名」为空") == "…「…」…"
    assert reason_label(None) == "(no reason)"


def test_truth_tables_map_through_the_real_config():
    tmap = _table_map(load_sources())
    assert _resolve_truth_table(tmap, "property", "property", "property.xlsx") == "property_owner"
    assert _resolve_truth_table(tmap, "property", "property_owner", "property.xlsx") == "property_owner"
    assert _resolve_truth_table(tmap, "business", "persons", "persons.csv") == "business_person"
    assert _resolve_truth_table(tmap, "social_insurance", "social_insurance", "contributions_part2.csv") \
        == "si_contribution"
    assert _resolve_truth_table(tmap, "social_insurance", "si_benefit", "benefits.csv") == "si_benefit"
    assert _resolve_truth_table(tmap, "cremation", "cremation", "cremation.csv") == "cremation"
