"""Independent spot checks: a truth case really holds in the written files, a look-alike really does not.

The files are read back as delivered; links.parquet only says which true person each row belongs to.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from synthetic.common import Policy, policy_config
from synthetic.generate import generate
from synthetic.inspect import current_date, files_of, load_links, read_delivery

AS_OF = dt.date(2024, 11, 20)


@pytest.fixture(scope="module")
def z(tmp_path_factory):
    out = tmp_path_factory.mktemp("spot") / "lz"
    generate(out, AS_OF, 0.01, 3)
    truth = out.parent / "lz.truth"
    links = load_links(truth)

    def cur(source, prefix=""):
        d = current_date(out, source, AS_OF)
        parts = [read_delivery(out, links, source, d, f) for f in files_of(out, source, d) if f.startswith(prefix)]
        return pd.concat(parts, ignore_index=True)
    cases = pd.read_csv(truth / "cases.csv", dtype=str)
    look = pd.read_csv(truth / "lookalikes.csv", dtype=str)
    roster = cur("roster")
    return {"out": out, "links": links, "cur": cur, "cases": cases, "look": look, "roster": roster,
            "policy": Policy(policy_config())}


def _date(s: str) -> dt.date:
    s = s.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            pass
    raise ValueError(s)


def _members(z, hh: str) -> set[str]:
    r = z["roster"]
    return set(r.loc[r["家庭编号"] == hh, "_true_id"])


def _sample(df: pd.DataFrame, rule: str, n: int = 8) -> pd.DataFrame:
    return df[df["rule"] == rule].head(n)


def test_r02_case_vehicle_is_held_and_counts(z):
    v = z["cur"]("vehicle")
    pol = z["policy"]
    exempt = set(pol.get("vehicle_exempt_plate_types"))
    gone = set(pol.get("vehicle_not_held_status"))
    for _, c in _sample(z["cases"], "R02").iterrows():
        rows = v[v["_true_id"] == c["member_id"]]
        ok = rows[~rows["HPZL"].str.zfill(2).isin(exempt) & rows["SFZMMC"].eq("A")
                  & ~rows["ZT"].map(lambda s: bool(set(s) & gone))
                  & (rows["CCDJRQ"].map(_date) <= AS_OF)]
        assert len(ok), c.to_dict()
    # look-alikes: exempt plates, vehicles no longer held
    for kind, check in (("exempt_plate", lambda r: r["HPZL"].str.zfill(2).isin(exempt).all()),
                        ("scrapped", lambda r: r["ZT"].str.contains("P").all()),
                        ("registered_after_as_of", lambda r: (r["CCDJRQ"].map(_date) > AS_OF).any())):
        lk = z["look"][(z["look"]["rule"] == "R02") & (z["look"]["kind"] == kind)].head(5)
        assert len(lk), kind
        for _, c in lk.iterrows():
            rows = v[v["_true_id"] == c["member_id"]]
            assert len(rows) and check(rows), (kind, c.to_dict())


def test_r01_case_death_is_old_enough(z):
    cr = z["cur"]("cremation")
    hk = z["cur"]("hukou")
    limit = AS_OF - dt.timedelta(days=int(z["policy"].get("deceased_grace_days")))
    for _, c in _sample(z["cases"], "R01").iterrows():
        deaths = [_date(x) for x in cr.loc[cr["_true_id"] == c["member_id"], "死亡日期"]]
        h = hk[(hk["_true_id"] == c["member_id"]) & (hk["人员状态"] == "1")]
        deaths += [_date(x) for x in h["注销日期"]]
        assert deaths and min(deaths) <= limit, c.to_dict()
    # a death recorded only in the delivery after the as-of date
    fut = z["look"][(z["look"]["rule"] == "R01") & (z["look"]["kind"] == "future_delivery")]
    assert len(fut)
    ln = z["links"]
    for _, c in fut.head(5).iterrows():
        dates = set(ln.loc[(ln["table"] == "cremation") & (ln["true_id"] == c["member_id"]), "delivery_date"])
        assert dates and all(dt.date.fromisoformat(d) > AS_OF for d in dates), dates


def test_r09_case_moved_out_long_enough(z):
    hk = z["cur"]("hukou")
    limit = AS_OF - dt.timedelta(days=int(z["policy"].get("left_jurisdiction_grace_days")))
    for _, c in _sample(z["cases"], "R09").iterrows():
        h = hk[hk["_true_id"] == c["member_id"]]
        assert h["人员状态"].isin(["2", "4"]).all() and (h["注销日期"].map(_date) <= limit).all(), c.to_dict()
    mil = z["look"][(z["look"]["rule"] == "R09") & (z["look"]["kind"] == "military")]
    for _, c in mil.head(5).iterrows():
        assert (hk.loc[hk["_true_id"] == c["member_id"], "人员状态"] == "3").all()


def test_r03_case_property(z):
    p = z["cur"]("property")
    p = p[p["权属状态"] == "现势"]
    for _, c in _sample(z["cases"], "R03").iterrows():
        mine = p[p["_true_id"].isin(_members(z, c["household_id"]))]
        commercial = mine["规划用途"].isin(["商业", "办公", "工业"]).any()
        homes = mine.loc[mine["规划用途"] == "住宅", "不动产单元号"].nunique()
        assert commercial or homes >= 2, c.to_dict()
    one = z["look"][(z["look"]["rule"] == "R03") & (z["look"]["kind"] == "co_owned_one_unit")]
    for _, c in one.head(5).iterrows():
        mine = p[p["_true_id"].isin(_members(z, c["household_id"]))]
        assert mine["不动产单元号"].nunique() == 1 and len(mine) == 2


def test_r04_case_business_role(z):
    e = z["cur"]("business", "entities")
    b = z["cur"]("business", "persons").merge(e, on="统一社会信用代码", suffixes=("", "_e"))
    pol = z["policy"]
    active = set(pol.get("business_active_status"))
    roles = set(pol.get("business_counting_roles"))
    for _, c in _sample(z["cases"], "R04").iterrows():
        rows = b[(b["_true_id"] == c["member_id"]) & b["角色"].isin(roles) & b["登记状态"].isin(active)]
        cap = pd.to_numeric(rows["注册资本"], errors="coerce")
        small = rows["市场主体类型"].isin(["个体工商户", "农民专业合作社"]) & (cap.isna() | (cap <= 10))
        assert (~small).any(), c.to_dict()
    sup = z["look"][(z["look"]["rule"] == "R04") & (z["look"]["kind"] == "supervisor_only")]
    for _, c in sup.head(5).iterrows():
        assert set(b.loc[b["_true_id"] == c["member_id"], "角色"]) <= {"监事", "董事", "经理"}


def test_r05_case_payroll_member_or_same_hukou(z):
    pay = z["cur"]("payroll")
    hk = z["cur"]("hukou")
    for _, c in _sample(z["cases"], "R05").iterrows():
        members = _members(z, c["household_id"])
        hno = set(hk.loc[hk["_true_id"].isin(members), "户号"])
        kin = set(hk.loc[hk["户号"].isin(hno), "_true_id"]) | members
        assert pay["_true_id"].isin(kin).any(), c.to_dict()
    sv = z["look"][(z["look"]["rule"] == "R05") & (z["look"]["kind"] == "surname_village_payroll")]
    for _, c in sv.head(5).iterrows():
        members = _members(z, c["household_id"])
        hno = set(hk.loc[hk["_true_id"].isin(members), "户号"])
        kin = set(hk.loc[hk["户号"].isin(hno), "_true_id"]) | members
        assert not pay["_true_id"].isin(kin).any()


def test_r07_case_balances_over_limit(z):
    bank = z["cur"]("bank")
    r = z["roster"]
    pol = z["policy"]
    for _, c in _sample(z["cases"], "R07").iterrows():
        hh = r[r["家庭编号"] == c["household_id"]]
        std = pol.standard(hh["救助类别"].iloc[0], hh["区县"].iloc[0])
        limit = 24 * std * int(hh["家庭人口数"].iloc[0])
        b = bank[bank["_true_id"].isin(set(hh["_true_id"]))].drop_duplicates(["zjhm", "jgmc", "zhlx", "ye"])
        assert b["ye"].astype(float).sum() > limit, c.to_dict()


def test_r08_case_duplicate_listing(z):
    r = z["roster"]
    for _, c in _sample(z["cases"], "R08").iterrows():
        assert (r["_true_id"] == c["member_id"]).sum() >= 2, c.to_dict()
    ns = z["look"][(z["look"]["rule"] == "R08") & (z["look"]["kind"] == "namesake")]
    for _, c in ns.head(6).iterrows():
        name = r.loc[r["_true_id"] == c["member_id"], "成员姓名"].iloc[0]
        same = r[r["成员姓名"].str.replace(" ", "") == name.replace(" ", "")]
        assert same["_true_id"].nunique() >= 2


def test_r06_case_has_income_rows(z):
    tax = z["cur"]("tax")
    si = z["cur"]("social_insurance", "contributions")
    ben = z["cur"]("social_insurance", "benefits")
    hf = z["cur"]("housing_fund")
    for _, c in _sample(z["cases"], "R06").iterrows():
        members = _members(z, c["household_id"])
        found = (tax["_true_id"].isin(members).any() or si["_true_id"].isin(members).any()
                 or ben["_true_id"].isin(members).any() or hf["_true_id"].isin(members).any())
        assert found, c.to_dict()
    res = z["look"][(z["look"]["rule"] == "R06") & (z["look"]["kind"] == "residents_scheme")]
    for _, c in res.head(5).iterrows():
        rows = si[si["_true_id"] == c["member_id"]]
        assert len(rows) and rows["AAE140"].isin(["170", "390"]).all()


def test_wrong_person_id_rows_show_the_member_id_but_belong_to_someone_else(z):
    for rule, source, col in (("R02", "vehicle", "SFZMHM"), ("R05", "payroll", "身份证号码"),
                              ("R06", "tax", "证件号码")):
        df = z["cur"](source)
        wp = z["look"][(z["look"]["rule"] == rule) & (z["look"]["kind"] == "wrong_person_id")]
        assert len(wp), rule
        for _, c in wp.head(5).iterrows():
            rows = df[df[col] == c["member_id"]]
            assert len(rows), (rule, c.to_dict())
            assert (rows["_true_id"] != c["member_id"]).all()
            assert rows["_defect"].str.contains("wrong_person_id").all()
