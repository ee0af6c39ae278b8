"""The truth, re-derived from the written files alone (links only say whose row it is), agrees exactly
with cases.csv for every rule: rendering neither loses nor invents facts."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from synthetic.common import Policy, policy_config
from synthetic.generate import generate
from synthetic.inspect import current_date, files_of, load_links, read_delivery

AS_OF = dt.date(2024, 8, 1)


def _d(x):
    x = str(x).strip()
    for f in ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(x, f).date()
        except ValueError:
            pass
    return None


def _m(x) -> int:
    x = str(x).replace("-", "").replace("/", "")[:6]
    return int(x[:4]) * 12 + int(x[4:6]) - 1


@pytest.fixture(scope="module")
def z(tmp_path_factory):
    out = tmp_path_factory.mktemp("recheck") / "lz"
    generate(out, AS_OF, 0.02, 8)
    links = load_links(out.parent / "lz.truth")

    def cur(source, prefix=""):
        d = current_date(out, source, AS_OF)
        parts = [read_delivery(out, links, source, d, f) for f in files_of(out, source, d) if f.startswith(prefix)]
        df = pd.concat(parts, ignore_index=True)
        # the truth is about facts: another person's row and exact copies do not count
        return df[~df["_defect"].fillna("").str.contains("wrong_person_id|duplicate_row")]
    cases = pd.read_csv(out.parent / "lz.truth" / "cases.csv", dtype=str)
    r = cur("roster")
    return {"cur": cur, "cases": cases, "roster": r, "mem": r[["家庭编号", "_true_id"]].drop_duplicates(),
            "info": r.drop_duplicates("家庭编号").set_index("家庭编号"), "pol": Policy(policy_config())}


def _truth(z, rule) -> set:
    c = z["cases"]
    return set(c.loc[c["rule"] == rule, "household_id"])


def _households(z, ids) -> set:
    m = z["mem"]
    return set(m.loc[m["_true_id"].isin(set(ids)), "家庭编号"])


def _limit(z, hh, months=1):
    info = z["info"]
    return pd.Series({k: months * z["pol"].standard(info.at[k, "救助类别"], info.at[k, "区县"])
                      for k in hh}), pd.Series({k: int(info.at[k, "家庭人口数"]) for k in hh})


def test_r01_r09_r08(z):
    h = z["cur"]("hukou")
    c = z["cur"]("cremation")
    deaths = pd.concat([c[["_true_id"]].assign(d=c["死亡日期"].map(_d)),
                        h.loc[h["人员状态"] == "1", ["_true_id"]].assign(d=h.loc[h["人员状态"] == "1", "注销日期"].map(_d))])
    first = deaths.groupby("_true_id")["d"].min()
    assert _households(z, first[first.map(lambda x: (AS_OF - x).days >= 30)].index) == _truth(z, "R01")
    dereg = h["注销日期"].map(_d)
    left = h[h["人员状态"].isin(["2", "4"]) & dereg.map(lambda x: x is not None and (AS_OF - x).days >= 90)]
    assert _households(z, left["_true_id"]) == _truth(z, "R09")
    r = z["roster"]
    n = r.groupby("_true_id").size()
    assert set(r.loc[r["_true_id"].isin(n[n > 1].index), "家庭编号"]) == _truth(z, "R08")


def test_r02_r03_r04(z):
    pol = z["pol"]
    v = z["cur"]("vehicle")
    gone = set(pol.get("vehicle_not_held_status"))
    held = v[v["SFZMMC"].eq("A") & ~v["HPZL"].str.zfill(2).isin(pol.get("vehicle_exempt_plate_types"))
             & ~v["ZT"].map(lambda s: bool(set(s) & gone)) & (v["CCDJRQ"].map(_d) <= AS_OF)]
    assert _households(z, held["_true_id"]) == _truth(z, "R02")
    p = z["cur"]("property")
    p = p[(p["权属状态"] == "现势") & (p["登记时间"].map(_d) <= AS_OF) & p["_true_id"].ne("")]
    pm = z["mem"].merge(p[["_true_id", "不动产单元号", "规划用途"]], on="_true_id")
    homes = pm[pm["规划用途"] == "住宅"].groupby("家庭编号")["不动产单元号"].nunique()
    got = set(pm.loc[pm["规划用途"].isin(["商业", "办公", "工业"]), "家庭编号"]) | set(homes[homes >= 2].index)
    assert got == _truth(z, "R03")
    e = z["cur"]("business", "entities")
    e = e[e["登记状态"].isin(pol.get("business_active_status")) & (e["成立日期"].map(_d) <= AS_OF)]
    cap = pd.to_numeric(e["注册资本"], errors="coerce")
    e = e[~(e["市场主体类型"].isin(pol.get("business_small_exempt_types")) & (cap.isna() | (cap <= 10)))]
    b = z["cur"]("business", "persons")
    b = b[b["角色"].isin(pol.get("business_counting_roles")) & b["统一社会信用代码"].isin(set(e["统一社会信用代码"]))]
    assert _households(z, b["_true_id"]) == _truth(z, "R04")


def test_r05_r07(z):
    h = z["cur"]("hukou")
    pay = z["cur"]("payroll")
    on = set(pay.loc[pay["人员状态"].isin(["在职", "离退休"]), "_true_id"])
    kin = z["mem"].merge(h[["_true_id", "户号"]], on="_true_id")[["家庭编号", "户号"]].merge(
        h[["_true_id", "户号"]], on="户号")
    assert set(kin.loc[kin["_true_id"].isin(on), "家庭编号"]) | _households(z, on) == _truth(z, "R05")
    b = z["cur"]("bank")
    bal = b.assign(ye=b["ye"].astype(float)).groupby("_true_id")["ye"].sum()
    tot = z["mem"].merge(bal.rename("bal"), left_on="_true_id", right_index=True).groupby("家庭编号")["bal"].sum()
    std, size = _limit(z, tot.index)
    assert set(tot[tot > 24 * std * size + 1e-6].index) == _truth(z, "R07")


def test_r06(z):
    pol = z["pol"]
    M = AS_OF.year * 12 + AS_OF.month - 1
    w0, w1 = M - 12, M - 1
    tax = z["cur"]("tax")
    tax = tax.assign(m0=tax["所属期起"].map(lambda x: _m(_d(x).strftime("%Y%m"))),
                     m1=tax["所属期止"].map(lambda x: _m(_d(x).strftime("%Y%m"))), amt=tax["收入额"].astype(float))
    tax = tax[(tax["m0"] >= w0) & (tax["m1"] <= w1)]
    earn = tax["所得项目"].isin(pol.get("income_earning_tax_items"))
    si = z["cur"]("social_insurance", "contributions")
    si = si.assign(m=si["AAE002"].map(_m), base=si["AAE180"].astype(float))
    si = si[si["AAE140"].isin(pol.get("income_employee_schemes")) & ~si["AAB019"].isin(
        pol.get("income_non_earning_payer_types")) & (si["m"] >= w0) & (si["m"] <= w1)]
    hf = z["cur"]("housing_fund")
    hf = hf[(hf["账户状态"] == "正常") & (hf["最近缴存年月"].map(_m) >= M - 3)]
    ben = z["cur"]("social_insurance", "benefits")
    ben = ben.assign(m=ben["AAE002"].map(_m), amt=ben["发放金额"].astype(float))
    ben = ben[(ben["m"] >= w0) & (ben["m"] <= w1)]
    inc = pd.concat([tax[earn].groupby("_true_id")["amt"].sum().rename("a") / 12,
                     si.groupby(["_true_id", "m"])["base"].max().groupby(level=0).sum().rename("b") / 12,
                     hf.groupby("_true_id")["缴存基数"].apply(lambda s: s.astype(float).max()).rename("c"),
                     ben.groupby("_true_id")["amt"].sum().rename("ben") / 12,
                     tax[~earn].groupby("_true_id")["amt"].sum().rename("oth") / 12], axis=1).fillna(0)
    inc["tot"] = inc[["a", "b", "c"]].max(axis=1) * 0.8 + inc["ben"] + inc["oth"]
    x = z["mem"].merge(inc[["tot"]], left_on="_true_id", right_index=True).groupby("家庭编号")["tot"].sum()
    std, size = _limit(z, x.index)
    assert set(x[x / size > std + 1e-9].index) == _truth(z, "R06")
