"""Ground truth: an independent implementation of POLICY.md over the clean world.

Works on the clean source tables (true person of every record, clean codes and dates), restricted to
what the deliveries a run as of the as-of date would use contain. Every figure comes from
config/policy.yaml through ``Policy``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .common import Ctx, month_index
from .economy import ITEMS


def _std_table(ctx: Ctx, rh: pd.DataFrame, district_names: list[str]) -> np.ndarray:
    cats = rh["category"].to_numpy()
    dist = rh["dist"].to_numpy()
    cache = {}
    out = np.empty(len(rh))
    for i, (c, d) in enumerate(zip(cats, dist)):
        key = (c, d)
        if key not in cache:
            cache[key] = ctx.policy.standard(c, district_names[d])
        out[i] = cache[key]
    return out


def compute_truth(ctx: Ctx, people, rh: pd.DataFrame, rows: pd.DataFrame, t: dict, dates: dict,
                  district_names: list[str]) -> pd.DataFrame:
    pol = ctx.policy
    D = ctx.D
    ids = people.id
    out = []

    def emit(df: pd.DataFrame, rule: str) -> None:
        if len(df):
            out.append(pd.DataFrame({"hh": df["hh"].to_numpy(), "rule": rule, "pid": df["pid"].to_numpy(),
                                     "detail": df["detail"].to_numpy()}))

    mem = rows[["hh", "pid"]].drop_duplicates()
    is_member = np.zeros(people.n, dtype=bool)
    is_member[mem["pid"].to_numpy()] = True

    def members_only(df: pd.DataFrame, col: str = "pid") -> pd.DataFrame:
        """Rows of people on the roster (relatives and everyone else cannot raise R02–R07 by
        themselves; R05's relatives are handled separately)."""
        q = df[col].to_numpy()
        return df[(q >= 0) & is_member[np.maximum(q, 0)]]
    size = rows.groupby("hh").size()                       # 家庭人口数 = listed rows
    std = pd.Series(_std_table(ctx, rh, district_names))

    # ---- R01 deceased
    grace = int(pol.get("deceased_grace_days"))
    cr = t["cremation"]
    cr = cr[cr["recorded"] <= np.datetime64(dates["cremation"])]
    ev = cr.groupby("pid")["death"].min().rename("cr")
    dead_codes = [int(x) for x in pol.get("deceased_status")]
    hk = pd.Series(np.where(np.isin(people.status, dead_codes), people.dereg, np.datetime64("NaT")))
    hk = hk[hk.notna()].rename("hk")
    evd = pd.concat([ev, hk], axis=1)
    evd["when"] = evd.min(axis=1)
    evd = evd[(D - evd["when"].to_numpy().astype("datetime64[D]")).astype(int) >= grace]
    r = mem.merge(evd, left_on="pid", right_index=True)
    r["detail"] = np.where(r["cr"].notna() & (r["cr"] == r["when"]), "cremation: died ", "hukou: 死亡注销 ") + \
        r["when"].dt.strftime("%Y-%m-%d")
    emit(r.sort_values(["hh", "when"]).drop_duplicates("hh"), "R01")

    # ---- R09 left the jurisdiction
    left = [int(x) for x in pol.get("left_jurisdiction_status")]
    g9 = int(pol.get("left_jurisdiction_grace_days"))
    st = people.status[mem["pid"].to_numpy()]
    dd = people.dereg[mem["pid"].to_numpy()]
    ok = np.isin(st, left) & ~np.isnat(dd)
    ok[ok] = (D - dd[ok]).astype(int) >= g9
    r = mem[ok].copy()
    r["detail"] = "hukou: 人员状态 " + pd.Series(st[ok]).astype(str).to_numpy() + " 注销 " + \
        pd.Series(dd[ok]).dt.strftime("%Y-%m-%d").to_numpy()
    emit(r.drop_duplicates("hh"), "R09")

    # ---- R02 vehicle
    v = members_only(t["vehicle"])
    notheld = set(pol.get("vehicle_not_held_status"))
    exempt = set(pol.get("vehicle_exempt_plate_types"))
    person_docs = set(pol.get("vehicle_person_doc_types"))
    zt_ok = ~v["zt"].map(lambda z: any(ch in notheld for ch in z)).to_numpy()
    vv = v[(v["pid"] >= 0).to_numpy() & v["doc"].isin(person_docs).to_numpy() & ~v["hpzl"].isin(exempt).to_numpy()
           & zt_ok & (v["reg"].to_numpy().astype("datetime64[D]") <= D)]
    r = mem.merge(vv[["pid", "plate", "hpzl", "zt"]], on="pid")
    r["detail"] = "vehicle " + r["plate"] + " HPZL " + r["hpzl"] + " ZT " + r["zt"]
    emit(r.drop_duplicates("hh"), "R02")

    # ---- R03 property
    pr = t["property"]
    o = np.stack([pr[c].to_numpy() for c in ("o1", "o2", "o3")], axis=1)
    pr = pr[(is_member[np.maximum(o, 0)] & (o >= 0)).any(axis=1)]
    cur = set(pol.get("property_current_status"))
    comm_uses = set(pol.get("property_commercial_uses"))
    res_use = pol.get("property_residential_use")
    maxres = int(pol.get("property_max_residential_units"))
    pr = pr[pr["status"].isin(cur).to_numpy() & (pr["reg"].to_numpy().astype("datetime64[D]") <= D)]
    own = pd.concat([pr[["unit", "use", c]].rename(columns={c: "pid"}) for c in ("o1", "o2", "o3")])
    own = own[own["pid"] >= 0]
    r = mem.merge(own, on="pid")
    com = r[r["use"].isin(comm_uses)].drop_duplicates("hh").copy()
    com["detail"] = "property " + com["use"] + " unit " + com["unit"]
    res = r[r["use"] == res_use]
    nres = res.groupby("hh")["unit"].nunique()
    multi = nres[nres > maxres].index
    best = res[res["hh"].isin(multi)].groupby(["hh", "pid"])["unit"].nunique().reset_index()
    best = best.sort_values(["hh", "unit", "pid"], ascending=[True, False, True]).drop_duplicates("hh")
    best["detail"] = best["hh"].map(nres).astype(str).radd("property ").add(" 住宅 units (现势)")
    emit(pd.concat([com[["hh", "pid", "detail"]], best[~best["hh"].isin(com["hh"])][["hh", "pid", "detail"]]]), "R03")

    # ---- R04 business
    ent = t["entities"]
    bp = members_only(t["bpersons"])
    active = set(pol.get("business_active_status"))
    roles = set(pol.get("business_counting_roles"))
    small = set(pol.get("business_small_exempt_types"))
    cap_lim = float(pol.get("business_small_capital_wan"))
    e = ent[ent["status"].isin(active).to_numpy() & (ent["est"].to_numpy().astype("datetime64[D]") <= D)]
    ex = e["etype"].isin(small) & (e["capital"].isna() | (e["capital"] <= cap_lim))
    e = e[~ex.to_numpy()]
    b = bp[bp["role"].isin(roles).to_numpy() & (bp["pid"] >= 0).to_numpy()].merge(
        e[["etype", "name"]], left_on="ent", right_index=True)
    r = mem.merge(b, on="pid")
    r["detail"] = "business " + r["role"] + " of " + r["name"] + " (" + r["etype"] + ")"
    emit(r.drop_duplicates("hh"), "R04")

    # ---- R05 payroll member or relative
    pay = t["payroll"]
    on_pay = set(pay.loc[pay["status"].isin(set(pol.get("payroll_counting_status"))), "pid"].tolist())
    mm = mem.copy()
    mm["hukou_no"] = people.hukou_no[mm["pid"].to_numpy()]
    direct = mm[mm["pid"].isin(on_pay)].copy()
    direct["detail"] = "payroll: member on 财政供养 payroll"
    inh = np.flatnonzero(people.in_hukou)
    hk_all = pd.DataFrame({"hukou_no": people.hukou_no[inh], "rel": inh})
    rel = mm[mm["hukou_no"] >= 0].merge(hk_all, on="hukou_no")
    rel = rel[(rel["rel"] != rel["pid"]) & rel["rel"].isin(on_pay)]
    # a relative must not be a member of the same household
    memset = set(zip(mem["hh"], mem["pid"]))
    rel = rel[[(h, q) not in memset for h, q in zip(rel["hh"], rel["rel"])]].copy()
    rel["detail"] = "payroll: relative " + pd.Series(ids[rel["rel"].to_numpy()], dtype=object).to_numpy() + \
        " in 户号 " + rel["hukou_no"].astype(str)
    emit(pd.concat([direct[["hh", "pid", "detail"]],
                    rel[~rel["hh"].isin(direct["hh"])][["hh", "pid", "detail"]]]).drop_duplicates("hh"), "R05")

    # ---- R06 income
    window = ctx.window
    w0, w1 = int(window[0]), int(window[-1])
    nm = len(window)
    tax = members_only(t["tax"])
    tax = tax[(tax["m0"] >= w0) & (tax["m1"] <= w1)]
    earn_items = {ITEMS.index(x) for x in pol.get("income_earning_tax_items")}
    is_earn = tax["item"].isin(earn_items)
    a = tax[is_earn].groupby("pid")["amount"].sum() / nm
    other = tax[~is_earn].groupby("pid")["amount"].sum() / nm
    si = members_only(t["si_c"])
    si = si[si["scheme"].isin({int(x) for x in pol.get("income_employee_schemes")}).to_numpy()
            & ~si["payer"].isin({int(x) for x in pol.get("income_non_earning_payer_types")}).to_numpy()
            & (si["month"] >= w0).to_numpy() & (si["month"] <= w1).to_numpy()]
    b_ = si.groupby(["pid", "month"])["base"].max().groupby("pid").sum() / nm
    hf = members_only(t["hf"])
    cur_m = month_index(ctx.as_of)
    recent = int(pol.get("income_housing_fund_recent_months"))
    hf = hf[hf["status"].isin(set(pol.get("income_housing_fund_active_status"))).to_numpy()
            & (hf["last"] >= cur_m - recent).to_numpy()]
    c_ = hf.groupby("pid")["base"].max()
    ben = members_only(t["si_b"])
    ben = ben[(ben["month"] >= w0) & (ben["month"] <= w1)].groupby("pid")["amount"].sum() / nm
    ded = float(pol.get("income_employment_cost_deduction"))
    inc = pd.concat([a.rename("a"), b_.rename("b"), c_.rename("c"), ben.rename("ben"), other.rename("oth")], axis=1)
    inc = inc.fillna(0.0)
    inc["earn"] = inc[["a", "b", "c"]].max(axis=1)
    inc["total"] = inc["earn"] * (1 - ded) + inc["ben"] + inc["oth"]
    r = mem.merge(inc[["total"]], left_on="pid", right_index=True)
    hsum = r.groupby("hh")["total"].sum() / 100.0                      # yuan per month
    per = hsum / size.reindex(hsum.index)
    over = per[per > std.reindex(per.index)]
    top = r[r["hh"].isin(over.index)].sort_values(["hh", "total", "pid"], ascending=[True, False, True]).drop_duplicates("hh")
    top["detail"] = top["hh"].map(lambda h: f"income {per[h]:.2f}/person/month > standard {std[h]:.0f}")
    emit(top, "R06")

    # ---- R07 financial assets
    bank = members_only(t["bank"])
    bank = bank[bank["delivery"] == "current"]
    months7 = float(pol.get("financial_asset_months"))
    r = mem.merge(bank.groupby("pid")["balance"].sum().rename("bal"), left_on="pid", right_index=True)
    tot = r.groupby("hh")["bal"].sum() / 100.0
    lim = months7 * std.reindex(tot.index) * size.reindex(tot.index)
    over = tot[tot > lim]
    top = r[r["hh"].isin(over.index)].sort_values(["hh", "bal", "pid"], ascending=[True, False, True]).drop_duplicates("hh")
    top["detail"] = top["hh"].map(lambda h: f"balances {tot[h]:.2f} > {lim[h]:.2f}")
    emit(top, "R07")

    # ---- R08 duplicates
    cnt = rows.groupby("pid").size()
    dup = cnt[cnt > 1].index
    r = rows[rows["pid"].isin(dup)][["hh", "pid"]].drop_duplicates()
    cats = rh["category"].to_numpy()
    r["detail"] = r["pid"].map(lambda q: "listed " + str(cnt[q]) + " times")
    r["detail"] = r["detail"] + " (" + pd.Series(cats[r["hh"].to_numpy()], index=r.index) + ")"
    emit(r.drop_duplicates("hh"), "R08")

    cases = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["hh", "rule", "pid", "detail"])
    cases = cases.sort_values(["rule", "hh"]).reset_index(drop=True)
    return cases
