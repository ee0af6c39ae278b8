"""Per-source rendering of the clean tables into delivered files (CONTRACT.md §2)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from .deliver import (XLSX_MAX_ROWS, Deliverer, add_duplicates, arr_date, arr_indexed, arr_str, datefmt, dup_labels,
                      money, permute, write_xlsx)
from .common import yyyymm
from .defects import ID_CODE, id_kind
from .economy import BTYPES, ITEMS


def emp_col(dv, idx: np.ndarray) -> pa.Array:
    """Employer names from indexes (-1: none)."""
    idx = np.asarray(idx, dtype=np.int64)
    return arr_indexed(np.maximum(idx, 0), dv.emp_vocab, null=idx < 0)

ACTIVE_DISPLAY = ["存续（在营、开业、在册）", "存续", "在营", "开业", "在册"]


def _d(x: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(np.datetime64(x, "D")))


# ------------------------------------------------------------------------------------------ roster
def render_roster(dv: Deliverer, geo, rh: pd.DataFrame, rows: pd.DataFrame, dates: dict, extra: dict) -> None:
    rng = dv.ctx.sub("render:roster")
    r = rows.copy()
    r["order"] = np.arange(len(r))
    r = r.sort_values(["hh", "order"], kind="stable").reset_index(drop=True)
    hh = r["hh"].to_numpy()
    size = r.groupby("hh")["pid"].transform("size").to_numpy()
    ids, nms, lab = dv.person_cols("roster", r["pid"].to_numpy())
    n = len(r)
    tbl = pa.table({
        "code": arr_str(rh["code"].to_numpy()[hh]), "cat": arr_str(rh["category"].to_numpy()[hh]),
        "cls": arr_str(rh["mclass"].to_numpy()[hh]), "name": nms, "id": ids, "rel": arr_str(r["rel"].to_numpy()),
        "size": pa.array(size), "pay": pa.array(rh["payment"].to_numpy()[hh] * 100),
        "dist": arr_str(geo.d_name[rh["dist"].to_numpy()[hh]]), "town": arr_str(geo.t_name[rh["town"].to_numpy()[hh]]),
        "vil": arr_str(geo.l_name[rh["loc"].to_numpy()[hh]]), "addr": arr_str(rh["address"].to_numpy()[hh]),
        "start": arr_date(rh["start_date"].to_numpy()[hh]), "alt": pa.array(rng.random(n) < 0.01),
        "dis": arr_str(r["disability"].to_numpy()), "ill": arr_str(r["illness"].to_numpy()),
    })
    sel = ("code AS 家庭编号, cat AS 救助类别, cls AS 分类管理, name AS 成员姓名, id AS 身份证号, rel AS 与户主关系, "
           f"size AS 家庭人口数, {money('pay')} AS 月保障金额, dist AS 区县, town AS 乡镇街道, vil AS 村社区, "
           f"addr AS 家庭住址, {datefmt('start', '%Y-%m-%d', 'alt', '%Y/%m/%d')} AS 救助开始日期, "
           "dis AS 残疾类别等级, ill AS 重病")
    for date, mask in ((dates["roster"], np.ones(n, bool)),
                       (extra["roster"]["older"], rh["start_date"].to_numpy()[hh] <= np.datetime64(extra["roster"]["older"]))):
        t = tbl.filter(pa.array(mask))
        dv.write_csv("roster", date, "roster.csv", t, sel, "utf-8-sig")
        dv.link("roster", "roster", date, "roster.csv", r["pid"].to_numpy()[mask], lab[mask])


# ------------------------------------------------------------------------------------------ hukou
def render_hukou(dv: Deliverer, dates: dict) -> None:
    rng = dv.ctx.sub("render:hukou")
    p = dv.p
    pid = np.flatnonzero(p.in_hukou)
    pid = pid[np.argsort(p.hukou_no[pid], kind="stable")]
    n = len(pid)
    ids, nms, lab = dv.person_cols("hukou", pid, gbk=True)
    eth = p.eth[pid].astype(object)
    eth = _strip_some(eth, rng.random(n) < 0.01)
    tbl = pa.table({
        "id": ids, "name": nms, "sex": arr_indexed(np.where(p.male[pid], 0, 1), np.array(["1", "2"], dtype=object)),
        "eth": arr_str(eth),
        "birth": arr_date(p.birth[pid]), "alt": pa.array(rng.random(n) < 0.02),
        "hno": pa.array(p.hukou_no[pid]), "rel": arr_str(p.rel[pid]),
        "addr": arr_indexed(p.hh[pid], dv.households_address, null=rng.random(n) < 0.004),
        "st": arr_indexed(p.status[pid], np.array(["0", "1", "2", "3", "4"], dtype=object)),
        "dereg": arr_date(p.dereg[pid]),
    })
    sel = (f"id AS 公民身份号码, name AS 姓名, sex AS 性别, eth AS 民族, "
           f"{datefmt('birth', '%Y%m%d', 'alt', '%Y-%m-%d')} AS 出生日期, hno::VARCHAR AS 户号, rel AS 与户主关系, "
           f"addr AS 住址, st AS 人员状态, {datefmt('dereg', '%Y%m%d', 'alt', '%Y-%m-%d')} AS 注销日期")
    dv.write_csv("hukou", dates["hukou"], "hukou.csv", tbl, sel, "gbk")
    dv.link("hukou", "hukou", dates["hukou"], "hukou.csv", pid, lab)


def _strip_some(eth, mask):
    out = eth.copy()
    out[mask] = np.array([e.lstrip("0") or "0" for e in eth[mask]], dtype=object)
    return out


# ------------------------------------------------------------------------------------------ cremation
def render_cremation(dv: Deliverer, cr: pd.DataFrame, dates: dict, extra: dict) -> None:
    rng = dv.ctx.sub("render:cremation")
    cr = cr.sort_values(["recorded", "death"], kind="stable").reset_index(drop=True)
    cr, dup = add_duplicates(cr, 0.003, rng)
    n = len(cr)
    row_kinds = {"legacy15": (dv.p.birth_year[cr["pid"].to_numpy()] < 1950) & (rng.random(n) < 0.02)}
    ids, nms, lab = dv.person_cols("cremation", cr["pid"].to_numpy(), cr["disp"].to_numpy(),
                                   cr["forced"].to_numpy(), row_kinds=row_kinds)
    lab = dup_labels(lab, dup)
    tbl = pa.table({"name": nms, "id": ids, "death": arr_date(cr["death"]), "crem": arr_date(cr["cremated"]),
                    "alt": pa.array(rng.random(n) < 0.03), "home": arr_str(cr["home"].to_numpy())})
    sel = (f"name AS 逝者姓名, id AS 身份证号, {datefmt('death', '%Y-%m-%d', 'alt', '%Y/%m/%d')} AS 死亡日期, "
           f"{datefmt('crem', '%Y-%m-%d')} AS 火化日期, home AS 殡仪馆")
    rec = cr["recorded"].to_numpy()
    for date in (extra["cremation"]["older"], dates["cremation"], extra["cremation"]["future"]):
        mask = rec <= np.datetime64(date)
        dv.write_csv("cremation", date, "cremation.csv", tbl.filter(pa.array(mask)), sel, "utf-8")
        dv.link("cremation", "cremation", date, "cremation.csv", cr["pid"].to_numpy()[mask], lab[mask])


# ------------------------------------------------------------------------------------------ vehicle
def render_vehicle(dv: Deliverer, v: pd.DataFrame, orgs: pd.DataFrame, dates: dict, extra: dict) -> None:
    rng = dv.ctx.sub("render:vehicle")
    v, dup = add_duplicates(v, 0.0005, rng, shuffle=True)
    n = len(v)
    pid = v["pid"].to_numpy()
    org = v["org"].to_numpy()
    oc = np.full(n, None, dtype=object)
    on = np.full(n, None, dtype=object)
    isorg = pid < 0
    oc[isorg] = np.where(v["doc"].to_numpy()[isorg] == "B",
                         np.array([c[8:16] + "-" + c[16] for c in orgs["code"].to_numpy()[org[isorg]]], dtype=object),
                         orgs["code"].to_numpy()[org[isorg]])
    on[isorg] = orgs["name"].to_numpy()[org[isorg]]
    reg = v["reg"].to_numpy()
    old = reg < np.datetime64("2000-01-01T00:00:00")
    row_kinds = {"legacy15": old & (rng.random(n) < 0.7)}
    ids, nms, lab = dv.person_cols("vehicle", pid, v["disp"].to_numpy(), v["forced"].to_numpy(), gbk=True,
                                   org_code=oc, org_name=on, row_kinds=row_kinds)
    lab = dup_labels(lab, dup)
    hpzl = v["hpzl"].to_numpy().astype(object)
    short = rng.random(n) < 0.03
    hpzl = np.where(short, np.array([h.lstrip("0") for h in hpzl], dtype=object), hpzl)
    brand = np.where(rng.random(n) < 0.02, None, v["brand"].to_numpy())
    tbl = pa.table({
        "plate": arr_str(v["plate"]), "hpzl": arr_str(hpzl), "cllx": arr_str(v["cllx"]), "syr": nms,
        "doc": arr_str(v["doc"]), "id": ids, "reg": pa.array(reg.astype("datetime64[s]")),
        "alt": pa.array(rng.random(n) < 0.05), "zt": arr_str(v["zt"]), "syxz": arr_str(v["syxz"]),
        "brand": arr_str(brand),
    })
    sel = ("plate AS HPHM, hpzl AS HPZL, cllx AS CLLX, syr AS SYR, doc AS SFZMMC, id AS SFZMHM, "
           f"{datefmt('reg', '%Y-%m-%d %H:%M:%S', 'alt', '%Y-%m-%d')} AS CCDJRQ, zt AS ZT, syxz AS SYXZ, "
           "brand AS CLPP")
    # current delivery: the traffic police exported it as UTF-8 with BOM instead of GBK (a defect)
    dv.write_csv("vehicle", dates["vehicle"], "vehicle.csv", tbl, sel, "utf-8-sig")
    dv.link("vehicle", "vehicle", dates["vehicle"], "vehicle.csv", pid, lab)
    older = extra["vehicle"]["older"]
    mask = reg <= np.datetime64(older)
    dv.write_csv("vehicle", older, "vehicle.csv", tbl.filter(pa.array(mask)), sel, "gbk")
    dv.link("vehicle", "vehicle", older, "vehicle.csv", pid[mask], lab[mask])


# ------------------------------------------------------------------------------------------ property
def render_property(dv: Deliverer, pr: pd.DataFrame, orgs: pd.DataFrame, dates: dict) -> None:
    rng = dv.ctx.sub("render:property")
    pr = permute(pr, rng)
    n = len(pr)
    own = np.stack([pr["o1"].to_numpy(), pr["o2"].to_numpy(), pr["o3"].to_numpy()], axis=1)
    nown = (own >= 0).sum(axis=1)
    single = nown == 1
    # owner-level defects
    ri, si = np.nonzero(own >= 0)
    opid = own[ri, si]
    disp = np.where(si == 0, pr["disp"].to_numpy()[ri], -1)
    forced = np.where(si == 0, pr["forced"].to_numpy()[ri], "").astype(object)
    r = rng.random(len(ri))
    row_kinds = {"excel_number": single[ri] & (r < 0.012), "excel_sci": single[ri] & (r >= 0.012) & (r < 0.016)}
    ids, nms, lab = dv.person_cols("property", opid, disp, forced, row_kinds=row_kinds)
    ids = np.array(ids.to_pylist(), dtype=object)
    nms = np.array(nms.to_pylist(), dtype=object)
    cell_id = np.full(n, "", dtype=object)
    cell_nm = np.full(n, "", dtype=object)
    numeric = np.zeros(n, dtype=bool)
    for s in range(3):
        m = si == s
        rows_s = ri[m]
        sep = "" if s == 0 else "、"
        cell_id[rows_s] = cell_id[rows_s] + sep + np.where(ids[m] == None, "", ids[m])  # noqa: E711
        cell_nm[rows_s] = cell_nm[rows_s] + sep + nms[m]
    numeric[ri[(si == 0) & (id_kind(lab) == ID_CODE["excel_number"])]] = True
    orgrow = pr["org"].to_numpy() >= 0
    org = pr["org"].to_numpy()
    cell_id[orgrow] = orgs["code"].to_numpy()[org[orgrow]]
    cell_nm[orgrow] = orgs["name"].to_numpy()[org[orgrow]]
    idnum = np.where(numeric, cell_id, None).astype(object)
    idtxt = np.where(numeric | (cell_id == ""), None, cell_id).astype(object)
    reg = pd.DatetimeIndex(pr["reg"].to_numpy())
    alt = rng.random(n) < 0.05
    regs = np.where(alt, reg.strftime("%Y/%m/%d"), reg.strftime("%Y-%m-%d")).astype(object)
    header = ["不动产单元号", "不动产权证号", "权利人", "证件种类", "证件号码", "共有情况", "坐落", "规划用途",
              "建筑面积", "登记时间", "权属状态"]
    tbl = pa.table({
        "c0": arr_str(pr["unit"].to_numpy()), "c1": arr_str(pr["cert"].to_numpy()), "c2": arr_str(cell_nm),
        "c3": arr_str(np.where(orgrow, "统一社会信用代码", "身份证").astype(object)), "c4": arr_str(idtxt),
        "c4__num": arr_str(idnum), "c5": arr_str(pr["co"].to_numpy()), "c6": arr_str(pr["location"].to_numpy()),
        "c7": arr_str(pr["use"].to_numpy()),
        "c8": pa.array(np.round(pr["area"].to_numpy().astype(float), 2)).cast(pa.string()),
        "c9": arr_str(regs), "c10": arr_str(pr["status"].to_numpy())})
    kinds = ["s", "s", "s", "s", "sn", "s", "s", "s", "n", "s", "s"]
    date = dates["property"]
    created = dt.datetime.combine(date, dt.time(2, 0, 0))
    parts = max(1, -(-n // XLSX_MAX_ROWS))
    for k in range(parts):
        lo, hi = k * XLSX_MAX_ROWS, min(n, (k + 1) * XLSX_MAX_ROWS)
        fname = "property.xlsx" if parts == 1 else f"property_part{k + 1}.xlsx"
        path = dv.path("property", date, fname)
        write_xlsx(path, header, tbl.slice(lo, hi - lo), kinds, created, dv.con, dv.tmp)
        dv.files[str(path.relative_to(dv.out))] = hi - lo
        m = (ri >= lo) & (ri < hi)
        dv.link("property", "property_owner", date, fname, opid[m], lab[m], owner_seq=si[m] + 1,
                row=ri[m] - lo + 1)
        om = orgrow[lo:hi]
        rows_o = np.flatnonzero(om) + 1
        if len(rows_o):
            dv.link("property", "property_owner", date, fname, np.full(len(rows_o), -1), np.zeros(len(rows_o), np.int32),
                    row=rows_o)


# ------------------------------------------------------------------------------------------ business
def render_business(dv: Deliverer, ent: pd.DataFrame, bp: pd.DataFrame, orgs: pd.DataFrame, dates: dict) -> None:
    rng = dv.ctx.sub("render:business")
    date = dates["business"]
    ne = len(ent)
    order = rng.permutation(ne)
    e = ent.iloc[order].reset_index(drop=True)
    st = e["status"].to_numpy().astype(object)
    act = st == "存续"
    disp = np.asarray(ACTIVE_DISPLAY, dtype=object)[rng.choice(5, ne, p=[0.75, 0.1, 0.08, 0.04, 0.03])]
    st = np.where(act, disp, st)
    t = pa.table({"uscc": arr_str(e["uscc"]), "name": arr_str(e["name"]), "etype": arr_str(e["etype"]),
                  "cap": arr_str(np.array([None if np.isnan(x) else (f"{x:.0f}" if x == int(x) else f"{x:.2f}")
                                           for x in e["capital"].to_numpy()], dtype=object)),
                  "est": arr_date(e["est"]), "alt": pa.array(rng.random(ne) < 0.02), "st": arr_str(st),
                  "closed": arr_date(e["closed"])})
    sel = ("uscc AS 统一社会信用代码, name AS 企业名称, etype AS 市场主体类型, cap AS 注册资本, "
           f"{datefmt('est', '%Y-%m-%d', 'alt', '%Y/%m/%d')} AS 成立日期, st AS 登记状态, "
           f"{datefmt('closed', '%Y-%m-%d')} AS 注吊销日期")
    dv.write_csv("business", date, "entities.csv", t, sel, "utf-8")
    b = bp.copy()
    b["k"] = np.argsort(order)[b["ent"].to_numpy()]
    b = b.sort_values(["k"], kind="stable").reset_index(drop=True)
    b, dup = add_duplicates(b, 0.001, rng)
    nb = len(b)
    pid = b["pid"].to_numpy()
    org = b["org"].to_numpy()
    oc = np.full(nb, None, dtype=object)
    on = np.full(nb, None, dtype=object)
    isorg = pid < 0
    oc[isorg] = ent["uscc"].to_numpy()[org[isorg]]
    on[isorg] = ent["name"].to_numpy()[org[isorg]]
    ids, nms, lab = dv.person_cols("business", pid, b["disp"].to_numpy(), b["forced"].to_numpy(),
                                   org_code=oc, org_name=on)
    lab = dup_labels(lab, dup)
    sub = b["sub"].to_numpy()
    t2 = pa.table({"uscc": arr_str(ent["uscc"].to_numpy()[b["ent"].to_numpy()]), "name": nms, "id": ids,
                   "role": arr_str(b["role"]),
                   "sub": arr_str(np.array([None if np.isnan(x) else f"{x:.2f}".rstrip("0").rstrip(".")
                                            for x in sub], dtype=object))})
    sel2 = "uscc AS 统一社会信用代码, name AS 姓名, id AS 证件号码, role AS 角色, sub AS 认缴出资额"
    dv.write_csv("business", date, "persons.csv", t2, sel2, "utf-8")
    dv.link("business", "business_person", date, "persons.csv", pid, lab)
    dv.manifest("business", date, ["entities.csv", "persons.csv"])


# ------------------------------------------------------------------------------------------ tax
def render_tax(dv: Deliverer, tax: pd.DataFrame, dates: dict) -> None:
    rng = dv.ctx.sub("render:tax")
    tax, dup = add_duplicates(tax, 0.0002, rng, shuffle=True)
    n = len(tax)
    ids, nms, lab = dv.person_cols("tax", tax["pid"].to_numpy(), tax["disp"].to_numpy(), tax["forced"].to_numpy())
    lab = dup_labels(lab, dup)
    taxd = tax["tax"].to_numpy().astype(float)
    taxd[rng.random(n) < 0.01] = np.nan
    t = pa.table({"id": ids, "name": nms, "item": arr_indexed(tax["item"].to_numpy(), ITEMS), "pstart": arr_date(tax["start"]),
                  "pend": arr_date(tax["end"]), "alt": pa.array(rng.random(n) < 0.02),
                  "amt": pa.array(tax["amount"].to_numpy()), "tax": pa.array(taxd, from_pandas=True).cast(pa.int64()),
                  "agent": emp_col(dv, tax["agent"].to_numpy())})
    sel = ("id AS 证件号码, name AS 纳税人姓名, item AS 所得项目, "
           f"{datefmt('pstart', '%Y-%m-%d', 'alt', '%Y%m%d')} AS 所属期起, "
           f"{datefmt('pend', '%Y-%m-%d', 'alt', '%Y%m%d')} AS 所属期止, {money('amt')} AS 收入额, "
           f"{money('tax')} AS 应纳税额, agent AS 扣缴义务人")
    date = dates["tax"]
    half = n // 2
    pid = tax["pid"].to_numpy()
    for fname, lo, hi in (("part1.csv", 0, half), ("part2.csv", half, n)):
        if hi <= lo:
            continue
        dv.write_csv("tax", date, fname, t.slice(lo, hi - lo), sel, "utf-8")
        dv.link("tax", "tax", date, fname, pid[lo:hi], lab[lo:hi])


# ------------------------------------------------------------------------------------------ social insurance
def render_si(dv: Deliverer, si: pd.DataFrame, sb: pd.DataFrame, dates: dict) -> None:
    rng = dv.ctx.sub("render:si")
    date = dates["social_insurance"]
    si, dup = add_duplicates(si, 0.0001, rng, shuffle=True)
    n = len(si)
    ids, nms, lab = dv.person_cols("social_insurance", si["pid"].to_numpy(), si["disp"].to_numpy(),
                                   si["forced"].to_numpy(), gbk=True)
    lab = dup_labels(lab, dup)
    t = pa.table({"id": ids, "name": nms, "scheme": pa.array(si["scheme"].to_numpy().astype(np.int16)),
                  "month": pa.array(yyyymm(si["month"].to_numpy())),
                  "alt": pa.array(rng.random(n) < 0.01), "base": pa.array(si["base"].to_numpy()),
                  "emp": emp_col(dv, si["employer"].to_numpy()), "payer": pa.array(si["payer"].to_numpy().astype(np.int8)),
                  "st": pa.array(si["status"].to_numpy().astype(np.int8))})
    sel = ("id AS AAC002, name AS AAC003, scheme::VARCHAR AS AAE140, "
           "CASE WHEN alt THEN printf('%d-%02d', month // 100, month % 100) ELSE month::VARCHAR END AS AAE002, "
           f"{money('base')} AS AAE180, emp AS AAB004, payer::VARCHAR AS AAB019, st::VARCHAR AS AAC031")
    pid = si["pid"].to_numpy()
    half = n // 2
    for fname, lo, hi in (("contributions_part1.csv", 0, half), ("contributions_part2.csv", half, n)):
        dv.write_csv("social_insurance", date, fname, t.slice(lo, hi - lo), sel, "gbk")
        dv.link("social_insurance", "si_contribution", date, fname, pid[lo:hi], lab[lo:hi])
    sb = permute(sb, rng)
    ids, nms, lab = dv.person_cols("social_insurance", sb["pid"].to_numpy(), sb["disp"].to_numpy(),
                                   sb["forced"].to_numpy(), gbk=True, rng=dv.ctx.sub("defects:si_b"))
    t = pa.table({"id": ids, "name": nms, "scheme": pa.array(sb["scheme"].to_numpy().astype(np.int16)),
                  "bt": arr_indexed(sb["btype"].to_numpy(), BTYPES),
                  "month": pa.array(yyyymm(sb["month"].to_numpy())), "amt": pa.array(sb["amount"].to_numpy())})
    sel = ("id AS AAC002, name AS AAC003, scheme::VARCHAR AS AAE140, bt AS 待遇类型, month::VARCHAR AS AAE002, "
           f"{money('amt')} AS 发放金额")
    dv.write_csv("social_insurance", date, "benefits.csv", t, sel, "gbk")
    dv.link("social_insurance", "si_benefit", date, "benefits.csv", sb["pid"].to_numpy(), lab)


# ------------------------------------------------------------------------------------------ housing fund
def render_hf(dv: Deliverer, hf: pd.DataFrame, dates: dict) -> None:
    rng = dv.ctx.sub("render:hf")
    hf, dup = add_duplicates(hf, 0.0005, rng, shuffle=True)
    n = len(hf)
    ids, nms, lab = dv.person_cols("housing_fund", hf["pid"].to_numpy(), hf["disp"].to_numpy(),
                                   hf["forced"].to_numpy())
    lab = dup_labels(lab, dup)
    last = hf["last"].to_numpy()
    ym = (last // 12) * 100 + last % 12 + 1
    t = pa.table({"id": ids, "name": nms, "emp": emp_col(dv, hf["employer"].to_numpy()),
                  "base": pa.array(hf["base"].to_numpy()), "pers": pa.array(hf["personal"].to_numpy()),
                  "unit": pa.array(hf["unit"].to_numpy()), "st": arr_str(hf["status"]), "ym": pa.array(ym),
                  "alt": pa.array(rng.random(n) < 0.03), "bal": pa.array(hf["balance"].to_numpy())})
    sel = (f"id AS 证件号码, name AS 姓名, emp AS 单位名称, {money('base')} AS 缴存基数, {money('pers')} AS 个人月缴存额, "
           f"{money('unit')} AS 单位月缴存额, st AS 账户状态, "
           "CASE WHEN alt THEN printf('%d-%02d', ym // 100, ym % 100) ELSE ym::VARCHAR END AS 最近缴存年月, "
           f"{money('bal')} AS 账户余额")
    date = dates["housing_fund"]
    dv.write_csv("housing_fund", date, "housing_fund.csv", t, sel, "utf-8")
    dv.link("housing_fund", "housing_fund", date, "housing_fund.csv", hf["pid"].to_numpy(), lab)


# ------------------------------------------------------------------------------------------ bank
def render_bank(dv: Deliverer, bank: pd.DataFrame, dates: dict, extra: dict) -> None:
    rng = dv.ctx.sub("render:bank")
    bank = bank.copy()
    bank["r"] = rng.random(len(bank))
    bank = bank.sort_values(["pid", "r"], kind="stable").reset_index(drop=True)
    ids, nms, lab = dv.person_cols("bank", bank["pid"].to_numpy(), bank["disp"].to_numpy(),
                                   bank["forced"].to_numpy())
    for which, date, qoff in (("current", dates["bank"], 2), ("older", extra["bank"]["older"], 2)):
        m = (bank["delivery"] == which).to_numpy()
        sub = bank[m].reset_index(drop=True)
        sub_ids, sub_nms, sub_lab = ids.filter(pa.array(m)), nms.filter(pa.array(m)), lab[m]
        tt = pa.table({"id": sub_ids, "name": sub_nms, "inst": arr_str(sub["inst"]), "acct": arr_str(sub["atype"]),
                       "bal": pa.array(sub["balance"].to_numpy())})
        tt, dup = _dup_table(tt, 0.001, rng)
        sub_lab = dup_labels(_dup_arr(sub_lab, dup), dup["flag"])
        pid = _dup_arr(sub["pid"].to_numpy(), dup)
        q = (date - dt.timedelta(days=qoff)).isoformat()
        sel = f"id AS zjhm, name AS xm, inst AS jgmc, acct AS zhlx, {money('bal')} AS ye, '{q}' AS cxrq"
        dv.write_jsonl("bank", date, "bank_reply.jsonl", tt, sel)
        dv.link("bank", "bank", date, "bank_reply.jsonl", pid, sub_lab)


def _dup_table(t: pa.Table, rate: float, rng):
    n = t.num_rows
    k = int(rng.binomial(n, rate)) if n else 0
    src = np.sort(rng.choice(n, k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    order = np.concatenate([np.arange(n), src])
    key = np.concatenate([np.arange(n) * 2, src * 2 + 1])
    o = np.argsort(key, kind="stable")
    idx = order[o]
    flag = np.concatenate([np.zeros(n, bool), np.ones(k, bool)])[o]
    return t.take(pa.array(idx)), {"idx": idx, "flag": flag}


def _dup_arr(a, dup):
    return np.asarray(a)[dup["idx"]]


# ------------------------------------------------------------------------------------------ payroll
def render_payroll(dv: Deliverer, pay: pd.DataFrame, pub: pd.DataFrame, dates: dict, extra: dict) -> None:
    rng = dv.ctx.sub("render:payroll")
    pay = permute(pay, rng)
    ids, nms, lab = dv.person_cols("payroll", pay["pid"].to_numpy(), pay["disp"].to_numpy(),
                                   pay["forced"].to_numpy())
    emp = pay["employer"].to_numpy()
    t = pa.table({"id": ids, "name": nms, "unit": arr_str(pub["name"].to_numpy()[emp]),
                  "ut": arr_str(pub["ptype"].to_numpy()[emp]), "st": arr_str(pay["status"]),
                  "sal": pa.array(pay["salary"].to_numpy())})
    sel = (f"id AS 身份证号码, name AS 姓名, unit AS 单位名称, ut AS 单位性质, st AS 人员状态, "
           f"{money('sal')} AS 月应发工资")
    first = dv.write_csv("payroll", dates["payroll"], "payroll.csv", t, sel, "utf-8")
    dv.link("payroll", "payroll", dates["payroll"], "payroll.csv", pay["pid"].to_numpy(), lab)
    dv.manifest("payroll", dates["payroll"], ["payroll.csv"])
    same = extra["payroll"]["same"]
    dest = dv.path("payroll", same, "payroll.csv")
    dest.write_bytes(first.read_bytes())
    dv.files[str(dest.relative_to(dv.out))] = t.num_rows
    dv.link("payroll", "payroll", same, "payroll.csv", pay["pid"].to_numpy(), lab)
    dv.manifest("payroll", same, ["payroll.csv"])
