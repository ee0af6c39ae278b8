"""Table-driven rule tests: a few literal staging rows in, the expected flags out."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from crosscheck.idnum import check_digit
from crosscheck.settings import load_policy, load_sources
from crosscheck.warehouse import connect
from linkage.link import link_all
from rules.engine import evaluate_rules
from tests.staging_builder import stage

AS_OF = date(2026, 11, 20)


def pid(body17: str) -> str:
    return body17 + check_digit(body17)


A = pid("42080219800101001")   # member, household H1
B = pid("42080219820202002")   # member, household H1
C = pid("42080219500303003")   # relative of H1 (same 户号), not on the roster
D = pid("42088119700404004")   # member, household H2
X = pid("42080419900505005")   # stranger
NAMES = {A: "王伟", B: "李娜", C: "王建国", D: "张敏", X: "王伟"}

ROSTER = [
    dict(household_id="H1", category="城市低保", management_class="A", name="王伟", id_number=A, relation="户主",
         household_size=2, monthly_payment=800, district="东宝区", township="龙泉街道", village="象山社区",
         start_date=date(2020, 1, 1)),
    dict(household_id="H1", category="城市低保", management_class="A", name="李娜", id_number=B, relation="配偶",
         household_size=2, monthly_payment=800, district="东宝区", township="龙泉街道", village="象山社区",
         start_date=date(2020, 1, 1)),
    dict(household_id="H2", category="农村低保", management_class="B", name="张敏", id_number=D, relation="户主",
         household_size=1, monthly_payment=300, district="钟祥市", township="郢中街道", village="南湖社区",
         start_date=date(2021, 5, 1)),
]
HUKOU = [
    dict(id_number=A, name="王伟", sex="1", hukou_no="HK1", relation_code="02", person_status="0"),
    dict(id_number=B, name="李娜", sex="2", hukou_no="HK1", relation_code="10", person_status="0"),
    dict(id_number=C, name="王建国", sex="1", hukou_no="HK1", relation_code="51", person_status="0"),
    dict(id_number=D, name="张敏", sex="2", hukou_no="HK2", relation_code="02", person_status="0"),
    dict(id_number=X, name="王伟", sex="1", hukou_no="HK9", relation_code="02", person_status="0"),
]
ALL_TABLES = ["roster", "hukou", "cremation", "vehicle", "property_owner", "business_entity", "business_person",
              "tax", "si_contribution", "si_benefit", "housing_fund", "bank", "payroll"]


def flags(tables: dict[str, list[dict]]) -> set[tuple[str, str, str]]:
    """Stage the rows (roster and hukou above unless given), run linkage and every rule."""
    con = connect(":memory:")
    rows = {"roster": ROSTER, "hukou": HUKOU, **tables}
    for table in ALL_TABLES:
        stage(con, table, rows.get(table, []), AS_OF - timedelta(days=3))
    link_all(con, load_sources())
    ok = {s: {"status": "ok"} for s in load_sources().sources}
    evaluate_rules(con, load_policy(), AS_OF, ok)
    return set(con.execute("SELECT rule, household_id, member_id FROM flags.hits").fetchall())


def days_ago(n: int) -> date:
    return AS_OF - timedelta(days=n)


def hukou_with(person: str, **changes) -> list[dict]:
    return [dict(h, **changes) if h["id_number"] == person else h for h in HUKOU]


@pytest.mark.parametrize("tables, expected", [
    ({"hukou": hukou_with(A, person_status="1", deregistration_date=days_ago(60))}, {("R01", "H1", A)}),
    ({"hukou": hukou_with(A, person_status="1", deregistration_date=days_ago(10))}, set()),      # inside grace
    ({"cremation": [dict(name="王伟", id_number=A, death_date=days_ago(30))]}, {("R01", "H1", A)}),
    ({"cremation": [dict(name="王伟", id_number=X, death_date=days_ago(90))]}, set()),          # namesake
    ({"hukou": hukou_with(C, person_status="1", deregistration_date=days_ago(60))}, set()),      # a relative died
], ids=["hukou-death", "death-in-grace", "cremation", "namesake-cremated", "relative-died"])
def test_r01_deceased(tables, expected):
    assert {f for f in flags(tables) if f[0] == "R01"} == expected


def car(owner=A, **kw):
    row = dict(plate_no="鄂H12345", plate_type="02", name="王伟", owner_doc_type="A", id_number=owner,
               first_registration=date(2019, 3, 2), status="A")
    row.update(kw)
    return row


@pytest.mark.parametrize("vehicle, expected", [
    (car(), {("R02", "H1", A)}),
    (car(status="AG"), {("R02", "H1", A)}),                 # 违法未处理: still held
    (car(status="Q", plate_type="2"), {("R02", "H1", A)}),  # plate type written without its zero
    (car(status="E"), set()), (car(status="B"), set()), (car(status="P"), set()), (car(status="C"), set()),
    (car(status="M"), set()), (car(status="GE"), set()),
    (car(plate_type="07"), set()), (car(plate_type="08"), set()), (car(plate_type="13"), set()),
    (car(plate_type="14"), set()),
    (car(owner_doc_type="M", name="荆门某某物流有限公司", id_number="91420800MA4912345X"), set()),
    (car(first_registration=AS_OF + timedelta(days=1)), set()),
    (car(owner=C, name="王建国"), set()),                    # a relative's car is not R02
    (car(owner=X), set()),                                   # a namesake's car
    (car(id_number=A.lower().replace("x", "x")[:6] + " " + A[6:]), {("R02", "H1", A)}),  # stray space repaired
], ids=["held", "AG", "Q-plate-2", "E", "B", "P", "C", "M", "GE", "07", "08", "13", "14", "org", "after-as-of",
        "relative", "namesake", "space-in-id"])
def test_r02_vehicle(vehicle, expected):
    assert {f for f in flags({"vehicle": [vehicle]}) if f[0] == "R02"} == expected


def unit(unit_no, owner=A, use="住宅", status="现势", reg=date(2015, 1, 1)):
    return dict(unit_no=unit_no, certificate_no="鄂(2015)荆门市不动产权第000" + unit_no[-3:] + "号",
                name=NAMES[owner], id_number=owner, doc_type="身份证", planned_use=use, title_status=status,
                registration_date=reg, owner_seq=1)


@pytest.mark.parametrize("units, expected", [
    ([unit("U001")], set()),                                                   # a single home
    ([unit("U001"), unit("U002", owner=B)], {("R03", "H1", A), ("R03", "H1", B)}),
    ([unit("U001"), unit("U001", owner=B)], set()),                            # one unit, two co-owners
    ([unit("U001"), unit("U002", use="车位")], set()),
    ([unit("U001"), unit("U002", status="历史")], set()),
    ([unit("U001"), unit("U002", status="注销")], set()),
    ([unit("U003", use="商业")], {("R03", "H1", A)}),
    ([unit("U001"), unit("U002", reg=AS_OF + timedelta(days=5))], set()),
    ([unit("U001"), unit("U002", owner=C)], set()),                            # relative's home
    ([unit("U001"), unit("U002", owner=X), unit("U002", owner=B)], {("R03", "H1", A), ("R03", "H1", B)}),
], ids=["one-home", "two-homes", "co-owned", "parking", "superseded", "cancelled", "shop", "after-as-of",
        "relative", "share-in-co-owned-unit-counts"])
def test_r03_property(units, expected):
    assert {f for f in flags({"property_owner": units}) if f[0] == "R03"} == expected


def entity(uscc="91420800MA49ABCD1X", etype="有限责任公司", capital=50.0, status="存续（在营、开业、在册）"):
    return dict(uscc=uscc, entity_name="荆门某某商贸有限公司", entity_type=etype, registered_capital_wan=capital,
                established_date=date(2018, 6, 1), registration_status=status)


def person(role="法定代表人", owner=A, uscc="91420800MA49ABCD1X"):
    return dict(uscc=uscc, name="王伟", id_number=owner, role=role)


@pytest.mark.parametrize("entities, persons, expected", [
    ([entity()], [person()], {("R04", "H1", A)}),
    ([entity()], [person("股东")], {("R04", "H1", A)}),
    ([entity()], [person("监事")], set()),
    ([entity()], [person("董事")], set()),
    ([entity(status="吊销")], [person()], set()),
    ([entity(etype="个体工商户", capital=5.0)], [person("经营者")], set()),
    ([entity(etype="个体工商户", capital=None)], [person("经营者")], set()),
    ([entity(etype="个体工商户", capital=30.0)], [person("经营者")], {("R04", "H1", A)}),
    ([entity(etype="农民专业合作社", capital=10.0)], [person()], set()),
    ([entity()], [person(owner=X)], set()),
], ids=["legal-rep", "shareholder", "supervisor", "director", "revoked", "small-getihu", "getihu-no-capital",
        "large-getihu", "small-coop", "namesake"])
def test_r04_business(entities, persons, expected):
    got = flags({"business_entity": entities, "business_person": persons})
    assert {f for f in got if f[0] == "R04"} == expected


@pytest.mark.parametrize("payroll, expected", [
    ([dict(id_number=C, name="王建国", staff_status="在职", employer="荆门市某局")], {("R05", "H1", C)}),
    ([dict(id_number=A, name="王伟", staff_status="离退休")], {("R05", "H1", A)}),
    ([dict(id_number=X, name="王伟", staff_status="在职")], set()),   # same name and surname, other 户号
], ids=["relative", "member-retired", "namesake-other-hukou"])
def test_r05_payroll(payroll, expected):
    assert {f for f in flags({"payroll": payroll}) if f[0] == "R05"} == expected


def months_back(n: int) -> date:
    first = AS_OF.replace(day=1)
    y, m = divmod(first.year * 12 + first.month - 1 - n, 12)
    return date(y, m + 1, 1)


def contrib(base, scheme="110", payer="10", months=12, owner=D):
    return [dict(id_number=owner, name="张敏", scheme=scheme, month=months_back(i), contribution_base=base,
                 payer_type=payer, payment_status="1") for i in range(1, months + 1)]


@pytest.mark.parametrize("tables, expected", [
    # H2: one person, 钟祥 农村低保 standard 375. Base 500 × 0.8 = 400 > 375
    ({"si_contribution": contrib(500)}, {("R06", "H2", D)}),
    # 460 × 0.8 = 368 ≤ 375: just under
    ({"si_contribution": contrib(460)}, set()),
    # pension and medical rows in the same month count the base once
    ({"si_contribution": contrib(460) + contrib(460, scheme="310")}, set()),
    ({"si_contribution": contrib(3000, scheme="170", payer="70")}, set()),        # residents' scheme
    ({"si_contribution": contrib(3000, payer="60")}, set()),                     # 灵活就业
    ({"tax": [dict(id_number=D, name="张敏", income_item="工资薪金所得", period_start=months_back(i),
                   period_end=months_back(i), income_amount=500) for i in range(1, 13)]}, {("R06", "H2", D)}),
    ({"si_benefit": [dict(id_number=D, name="张敏", scheme="110", benefit_type="基本养老金", month=months_back(i),
                          amount=380) for i in range(1, 13)]}, {("R06", "H2", D)}),
    ({"housing_fund": [dict(id_number=D, name="张敏", contribution_base=2000, account_status="正常",
                            last_paid_month=months_back(1))]}, {("R06", "H2", D)}),
    ({"housing_fund": [dict(id_number=D, name="张敏", contribution_base=2000, account_status="封存",
                            last_paid_month=months_back(1))]}, set()),
    ({"housing_fund": [dict(id_number=D, name="张敏", contribution_base=2000, account_status="正常",
                            last_paid_month=months_back(6))]}, set()),
    # earnings are the largest of tax, contribution base and housing-fund base, not their sum:
    # max(300, 300) × 0.8 = 240 ≤ 375 (the sum would give 480)
    ({"si_contribution": contrib(300),
      "tax": [dict(id_number=D, name="张敏", income_item="工资薪金所得", period_start=months_back(i),
                   period_end=months_back(i), income_amount=300) for i in range(1, 13)]}, set()),
    # other tax items count in full, without the 20 % deduction: rent 400 a month > 375
    ({"tax": [dict(id_number=D, name="张敏", income_item="财产租赁所得", period_start=months_back(i),
                   period_end=months_back(i), income_amount=400) for i in range(1, 13)]}, {("R06", "H2", D)}),
    # the window is the 12 whole months before the as-of month: 12 months of wages 470 × 0.8 = 376 > 375;
    # the same wages in the as-of month and eleven before it, or 13 months back, miss one month: 344.67
    ({"tax": [dict(id_number=D, name="张敏", income_item="劳务报酬所得", period_start=months_back(i),
                   period_end=months_back(i), income_amount=470) for i in range(1, 13)]}, {("R06", "H2", D)}),
    ({"tax": [dict(id_number=D, name="张敏", income_item="劳务报酬所得", period_start=months_back(i),
                   period_end=months_back(i), income_amount=470) for i in range(0, 12)]}, set()),
    ({"tax": [dict(id_number=D, name="张敏", income_item="劳务报酬所得", period_start=months_back(i),
                   period_end=months_back(i), income_amount=470) for i in range(2, 14)]}, set()),
], ids=["base-above", "base-just-under", "base-once-per-month", "residents-scheme", "flexible", "tax-wages",
        "pension", "housing-fund", "hf-sealed", "hf-stale", "max-not-sum", "rent-no-deduction",
        "window-whole-months", "window-not-as-of-month", "window-not-13-months-back"])
def test_r06_income(tables, expected):
    assert {f for f in flags(tables) if f[0] == "R06"} == expected


@pytest.mark.parametrize("bank, expected", [
    # H1: 2 persons × 575 × 24 = 27,600
    ([dict(id_number=A, name="王伟", account_type="定期存款", balance=20000, query_date=days_ago(20)),
      dict(id_number=B, name="李娜", account_type="活期存款", balance=8000, query_date=days_ago(20))],
     {("R07", "H1", A), ("R07", "H1", B)}),
    ([dict(id_number=A, name="王伟", account_type="定期存款", balance=27600, query_date=days_ago(20))], set()),
    ([dict(id_number=C, name="王建国", account_type="定期存款", balance=90000, query_date=days_ago(20))], set()),
], ids=["above", "at-limit", "relative-account"])
def test_r07_financial_assets(bank, expected):
    assert {f for f in flags({"bank": bank}) if f[0] == "R07"} == expected


@pytest.mark.parametrize("extra, expected", [
    ([], set()),
    ([dict(ROSTER[2], household_id="H3", category="特困供养", household_size=1)],        # two households,
     {("R08", "H2", D), ("R08", "H3", D)}),                                               # dibao and tekun
    ([dict(ROSTER[2], household_id="H3")], {("R08", "H2", D), ("R08", "H3", D)}),        # two households
    ([dict(ROSTER[2])], {("R08", "H2", D)}),                                              # twice in one
], ids=["none", "dibao-and-tekun", "two-households", "twice-in-one-household"])
def test_r08_duplicate(extra, expected):
    assert {f for f in flags({"roster": ROSTER + extra}) if f[0] == "R08"} == expected


def test_every_hit_carries_its_evidence():
    """Source, the record's business key, the delivery's as-of date, the values that triggered it, the
    link method and score, and one readable line; R06 shows its arithmetic."""
    con = connect(":memory:")
    rows = {"roster": ROSTER, "hukou": HUKOU, "vehicle": [car()], "si_contribution": contrib(500)}
    for table in ALL_TABLES:
        stage(con, table, rows.get(table, []), AS_OF - timedelta(days=3))
    link_all(con, load_sources())
    evaluate_rules(con, load_policy(), AS_OF, {s: {"status": "ok"} for s in load_sources().sources})
    hits = {r[0]: r[1:] for r in con.execute(
        "SELECT rule, source, record_key, source_as_of, trigger, evidence, link_method, link_score "
        "FROM flags.hits").fetchall()}
    source, key, as_of, trigger, evidence, method, score = hits["R02"]
    assert (source, key, as_of, method, score) == ("vehicle", "02 鄂H12345", AS_OF - timedelta(days=3), "id_exact", 1.0)
    assert '"号牌种类":"02"' in trigger.replace(" ", "") and "鄂H12345" in evidence and "vehicle 截至" in evidence
    source, key, _, trigger, evidence, _, _ = hits["R06"]
    assert source == "income" and key == "收入来源 社保缴费"
    assert "= max(个税 0" in evidence and "社保基数 500" in evidence and "× (1−0.2)" in evidence
    assert "÷ 1 人 = 400" in evidence and "高于标准 375" in evidence


@pytest.mark.parametrize("status, days, expected", [
    ("2", 120, {("R09", "H2", D)}), ("4", 90, {("R09", "H2", D)}), ("2", 30, set()), ("3", 400, set()),
], ids=["moved", "abroad", "inside-grace", "military"])
def test_r09_left(status, days, expected):
    got = flags({"hukou": hukou_with(D, person_status=status, deregistration_date=days_ago(days))})
    assert {f for f in got if f[0] == "R09"} == expected


def test_id_keyed_onto_wrong_person_goes_to_review():
    """A roster member's ID on a car whose owner name clearly differs is not linked (and not R02)."""
    con = connect(":memory:")
    rows = {"roster": ROSTER, "hukou": HUKOU, "vehicle": [car(name="赵国庆"), car(plate_no="鄂H00001", name="王 偉")]}
    for table in ALL_TABLES:
        stage(con, table, rows.get(table, []), AS_OF)
    link_all(con, load_sources())
    review = con.execute("SELECT record_table, source_name, roster_name, reason FROM linked.review").fetchall()
    assert review == [("vehicle", "赵国庆", "王伟", "ID matches but the name disagrees")]
    kept = con.execute("SELECT plate_no, link_score, link_agreed FROM linked.vehicle").fetchall()
    assert kept == [("鄂H00001", 1.0, "id, name exact 1.0")]


def test_skipped_rule_raises_nothing():
    con = connect(":memory:")
    for table in ALL_TABLES:
        stage(con, table, {"roster": ROSTER, "hukou": HUKOU, "vehicle": [car()]}.get(table, []), AS_OF)
    link_all(con, load_sources())
    status = {s: {"status": "ok"} for s in load_sources().sources}
    status["vehicle"] = {"status": "stale", "reason": "delivery 50 days old, maximum 35"}
    results = {r["rule"]: r for r in evaluate_rules(con, load_policy(), AS_OF, status)}
    assert results["R02"]["status"] == "skipped" and "stale" in results["R02"]["reason"]
    assert con.execute("SELECT count(*) FROM flags.hits WHERE rule = 'R02'").fetchone()[0] == 0
