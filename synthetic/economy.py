"""Background facts of the world: deaths and moves, organisations, jobs and incomes, vehicles,
property, businesses, bank accounts. Vectorised; planted cases are added later by plant.py."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .common import Ctx, cat_index, month_end, month_start, yyyymm
from .ids import make_usccs
from .world import Geo, People

NAT = np.datetime64("NaT")
C = 100  # cents per yuan
# coded columns of the big tables are kept as integers (schemes, payer types) or as indexes into these
ITEMS = ["工资薪金所得", "劳务报酬所得", "经营所得", "财产租赁所得", "稿酬所得", "利息股息红利所得"]
BTYPES = ["基本养老金", "失业保险金"]
WAGE, LABOUR, BUSINESS, RENT, ROYALTY, INTEREST = range(6)
PENSION, UNEMPLOYMENT = range(2)


def empty_frame(columns: dict) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in columns.items()})


# --------------------------------------------------------------------------------------------
# Hukou events


def assign_statuses(ctx: Ctx, people: People, hukou_date: np.datetime64) -> None:
    """Background deaths (last two years), moves, emigration, military service for people who are
    not on the roster. A death is deregistered some weeks later; the extract holds what had
    happened by its delivery date."""
    rng = ctx.sub("statuses")
    D = ctx.D
    N = people.n
    cand = people.in_hukou & ~people.roster
    age = people.age
    p_death = np.select([age < 50, age < 70, age < 80], [0.003, 0.012, 0.06], 0.18)
    dead = cand & (rng.random(N) < p_death)
    ddays = rng.integers(-730, 6, N)
    people.death[dead] = D + ddays[dead].astype("timedelta64[D]")
    delay = np.clip(rng.gamma(2.0, 20.0, N), 3, 300).astype(np.int64)
    dereg = people.death + delay.astype("timedelta64[D]")
    registered = dead & (dereg <= hukou_date)
    people.status[registered] = 1
    people.dereg[registered] = dereg[registered]
    # moves out (2), emigration (4), military service (3)
    alive = cand & ~dead
    mv = alive & (age >= 16) & (age <= 50) & (rng.random(N) < 0.02)
    em = alive & ~mv & (age >= 18) & (rng.random(N) < 0.0006)
    mil = alive & ~mv & ~em & people.male & (age >= 18) & (age <= 22) & (rng.random(N) < 0.015)
    for mask, code, lo in ((mv, 2, 1095), (em, 4, 1095), (mil, 3, 730)):
        days = rng.integers(3, lo, N)
        date = hukou_date - days.astype("timedelta64[D]")
        people.status[mask] = code
        people.dereg[mask] = date[mask]


def present(people: People, ctx: Ctx) -> np.ndarray:
    """Alive and registered (or an outsider) on the as-of date."""
    alive = np.isnat(people.death) | (people.death > ctx.D + np.timedelta64(40, "D"))
    return alive & (people.status == 0)


# --------------------------------------------------------------------------------------------
# Organisations: market entities (business source) and public units (payroll)

ENT_TYPES = ["个体工商户", "有限责任公司", "个人独资企业", "合伙企业", "股份有限公司", "农民专业合作社"]
ENT_P = [0.66, 0.22, 0.03, 0.01, 0.003, 0.077]
STEMS = ("鑫源 恒信 宏达 金地 华泰 东方 长江 汉江 楚天 凤凰 象山 龙泉 莫愁 荆楚 盛世 天成 永安 瑞丰 佳禾 绿源 中和 "
         "嘉诚 广源 博远 信达 新星 兴旺 福瑞 明珠 金穗 丰收 国润 天和 鼎盛 恒通 四方 远航 金桥 百川 众鑫 华兴 "
         "宏图 聚力 荆龙 漳河 屈岭 石牌 郢都 京源 惠亭 大洪山 温泉 汇丰 万达 新世纪 光大 安达 祥和 吉祥").split()
# brand names of two characters, as most small companies have
BRAND_CHARS = "鑫源恒信宏达金华泰盛天成永安瑞丰佳禾绿中嘉诚广博远兴旺福明润和鼎通航桥川众聚龙祥吉利隆昌顺发德茂荣辉宇晟"
INDUSTRY = ("商贸 建筑工程 农业科技 物流 机械制造 食品 化工 建材 电子科技 汽车销售服务 房地产开发 餐饮管理 "
            "纺织 磷化工 生物科技 环保科技 装饰工程 劳务 运输 医药 酒业 米业 油脂 畜牧 水产 旅游开发 "
            "物业管理 信息技术 新能源 包装").split()
SHOPS = ("便利店 副食店 餐馆 理发店 五金店 农资店 服装店 手机店 水果店 早餐店 烟酒店 汽车修理店 养殖场 "
         "建材经营部 小吃店 家电维修部 粮油店 药店 麻将馆 废品回收站 面馆 裁缝店").split()
COOP = "种植 养殖 农机 水产 果蔬 茶叶 中药材 稻虾".split()
CITY_OF_DIST = {"东宝区": "荆门市", "掇刀区": "荆门市", "漳河新区": "荆门市", "京山市": "京山市",
                "沙洋县": "沙洋县", "钟祥市": "钟祥市", "屈家岭管理区": "荆门市屈家岭"}

PUBLIC_UNITS = [
    # name pattern, type, relative staff weight
    ("人民政府办公室", "行政机关", 3), ("财政局", "行政机关", 2), ("教育局", "行政机关", 2), ("公安局", "行政机关", 8),
    ("民政局", "行政机关", 1), ("人力资源和社会保障局", "行政机关", 1.5), ("自然资源和规划局", "行政机关", 2),
    ("住房和城乡建设局", "行政机关", 1.5), ("交通运输局", "行政机关", 1.5), ("农业农村局", "行政机关", 2),
    ("水利和湖泊局", "行政机关", 1.5), ("卫生健康委员会", "行政机关", 1), ("市场监督管理局", "行政机关", 2),
    ("司法局", "行政机关", 1), ("审计局", "行政机关", 0.6), ("统计局", "行政机关", 0.5), ("应急管理局", "行政机关", 0.8),
    ("退役军人事务局", "行政机关", 0.5), ("城市管理执法局", "参公事业单位", 2), ("社会保险局", "参公事业单位", 1),
    ("医疗保障服务中心", "参公事业单位", 0.6), ("档案馆", "参公事业单位", 0.3), ("第一中学", "全额拨款事业单位", 4),
    ("第二中学", "全额拨款事业单位", 3), ("实验小学", "全额拨款事业单位", 3), ("职业技术学校", "全额拨款事业单位", 2),
    ("疾病预防控制中心", "全额拨款事业单位", 1), ("人民医院", "差额拨款事业单位", 8), ("中医医院", "差额拨款事业单位", 4),
    ("妇幼保健院", "差额拨款事业单位", 2), ("广播电视台", "差额拨款事业单位", 1),
    ("城市建设投资服务中心", "自收自支事业单位", 0.8), ("水利工程管理处", "自收自支事业单位", 0.8),
]
TOWN_UNITS = [("人民政府", "行政机关", 3), ("中心小学", "全额拨款事业单位", 3), ("初级中学", "全额拨款事业单位", 2),
              ("卫生院", "差额拨款事业单位", 2), ("农业服务中心", "全额拨款事业单位", 1)]


def build_public_units(ctx: Ctx, geo: Geo) -> pd.DataFrame:
    rows = []
    for di, d in enumerate(geo.districts):
        prefix = "荆门市" if d in ("东宝区", "掇刀区", "漳河新区") else ""
        for name, typ, w in PUBLIC_UNITS:
            nm = (prefix + d + name) if d not in ("京山市", "钟祥市") else d + name
            if d == "漳河新区":
                nm = "荆门市漳河新区" + name
            rows.append((nm, typ, w, di))
        for ti in np.flatnonzero(geo.t_dist == di):
            t = geo.t_name[ti]
            for name, typ, w in TOWN_UNITS:
                if t.endswith("街道") and name in ("人民政府", "卫生院"):
                    name = "办事处" if name == "人民政府" else "社区卫生服务中心"
                rows.append((d + t + name, typ, w, di))
    for name, typ, w in PUBLIC_UNITS:
        rows.append(("荆门市" + name, typ, w * 2, 0))
    pu = pd.DataFrame(rows, columns=["name", "ptype", "weight", "dist"]).drop_duplicates("name")
    pu = pu.reset_index(drop=True)
    rng = ctx.shared("public_units")    # one set of public bodies, whatever the shard
    n = len(pu)
    kind = np.where(pu["ptype"].isin(["行政机关"]), "1", "2")
    areas = np.asarray(geo.d_admin, dtype=object)[pu["dist"].to_numpy()]
    pu["code"] = make_usccs(np.full(n, "1"), kind, areas, rng)
    pu["kind"] = "public"
    return pu


def _ent_names(rng, geo: Geo, etype, dist, town, owner_names) -> np.ndarray:
    n = len(etype)
    city = np.array([CITY_OF_DIST[d] for d in geo.districts], dtype=object)[dist]
    bc = np.asarray(list(BRAND_CHARS), dtype=object)
    two = bc[rng.integers(0, len(bc), n)] + bc[rng.integers(0, len(bc), n)]
    stem = np.where(rng.random(n) < 0.3, np.asarray(STEMS, dtype=object)[rng.integers(0, len(STEMS), n)], two)
    ind = np.asarray(INDUSTRY, dtype=object)[rng.integers(0, len(INDUSTRY), n)]
    shop = np.asarray(SHOPS, dtype=object)[rng.integers(0, len(SHOPS), n)]
    coop = np.asarray(COOP, dtype=object)[rng.integers(0, len(COOP), n)]
    dname = geo.d_name[dist]
    tname = geo.t_name[town]
    serial = np.char.zfill(rng.integers(1, 999, n).astype(str), 1).astype(object)
    out = np.empty(n, dtype=object)
    out[:] = city + stem + ind + "有限公司"
    m = etype == "股份有限公司"
    out[m] = (city + stem + ind + "股份有限公司")[m]
    m = etype == "个体工商户"
    out[m] = (dname + tname + owner_names + shop)[m]
    m = etype == "个人独资企业"
    out[m] = (city + stem + ind + "经营部")[m]
    m = etype == "合伙企业"
    out[m] = (city + stem + ind + "合伙企业（有限合伙）")[m]
    m = etype == "农民专业合作社"
    out[m] = (dname + tname + stem + coop + "专业合作社")[m]
    # make names unique: a second company of the same name is registered in the district, then numbered
    s = pd.Series(out)
    dup = s.duplicated(keep="first").to_numpy()
    out[dup] = np.array([o.replace(c, c + d, 1) if not o.startswith(d) else o + "（" + x + "）"
                         for o, c, d, x in zip(out[dup], city[dup], dname[dup], serial[dup])], dtype=object)
    s = pd.Series(out)
    dup = s.duplicated(keep="first").to_numpy()
    out[dup] = out[dup] + "（" + serial[dup] + "）"
    s = pd.Series(out)
    dup = s.duplicated(keep="first").to_numpy()
    out[dup] = out[dup] + np.arange(dup.sum()).astype(str).astype(object)
    return out


def build_business(ctx: Ctx, geo: Geo, people: People, ok_owner: np.ndarray,
                   business_date: np.datetime64) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Market entities and their people (background)."""
    rng = ctx.sub("business")
    n = max(200, int(round(180_000 * ctx.scale)))
    et = np.asarray(ENT_TYPES, dtype=object)[cat_index(rng, ENT_P, n)]
    pool = np.flatnonzero(ok_owner & (people.age >= 22) & (people.age <= 72))
    owner = pool[rng.integers(0, len(pool), n)]
    dist = people.dist[owner]
    loc = people.loc[owner]
    town = np.where(loc >= 0, geo.l_town[np.maximum(loc, 0)], 0)
    town = np.where(loc >= 0, town, np.array([np.flatnonzero(geo.t_dist == d)[0] for d in range(len(geo.districts))])[dist])
    cap = np.round(np.exp(rng.normal(np.log(100), 1.3, n)), 0)
    cap = np.where(et == "个体工商户", np.where(rng.random(n) < 0.45, np.nan,
                                            rng.choice([1, 2, 3, 5, 5, 8, 10, 10, 20, 30, 50], n)), cap)
    cap = np.where(et == "农民专业合作社", np.where(rng.random(n) < 0.3, rng.choice([2, 5, 10], n),
                                             np.round(rng.uniform(20, 500, n))), cap)
    cap = np.where(et == "个人独资企业", np.round(rng.uniform(1, 100, n)), cap)
    cap = np.where(et == "股份有限公司", np.round(rng.uniform(500, 20000, n)), cap)
    span = int((business_date - np.datetime64("2000-01-01")).astype(int)) - 30
    est = np.datetime64("2000-01-01") + (span * rng.random(n) ** 0.6).astype("timedelta64[D]")
    r = rng.random(n)
    status = np.select([r < 0.80, r < 0.86, r < 0.98, r < 0.99, r < 0.995], ["存续", "吊销", "注销", "迁出", "撤销"],
                       "歇业").astype(object)
    closed = np.full(n, NAT, dtype="datetime64[D]")
    nonact = status != "存续"
    gap = (business_date - est).astype(int)
    closed[nonact] = est[nonact] + (gap[nonact] * rng.random(nonact.sum())).astype("timedelta64[D]")
    kind = np.select([et == "个体工商户", et == "农民专业合作社"], ["2", "3"], "1")
    areas = np.asarray(geo.d_admin, dtype=object)[dist]
    uscc = make_usccs(np.full(n, "9"), kind, areas, rng, shard=(ctx.shard, ctx.shards))
    names = _ent_names(rng, geo, et, dist, town, people.name[owner])
    ent = pd.DataFrame({"uscc": uscc, "name": names, "etype": et, "capital": cap, "est": est,
                        "status": status, "closed": closed, "dist": dist, "owner": owner})
    ent["kind"] = "enterprise"

    # persons
    parts = []
    def add(idx, pid, role, sub=np.nan, org=None):
        parts.append(pd.DataFrame({"ent": idx, "pid": pid, "role": role,
                                   "sub": sub if np.ndim(sub) else np.full(len(idx), sub),
                                   "org": org if org is not None else np.full(len(idx), -1)}))
    i = np.arange(n)
    gt = et == "个体工商户"
    add(i[gt], owner[gt], "经营者")
    co = et == "农民专业合作社"
    add(i[co], owner[co], "法定代表人")
    sole = et == "个人独资企业"
    add(i[sole], owner[sole], "投资人", cap[sole])
    pa_ = et == "合伙企业"
    add(i[pa_], owner[pa_], "执行事务合伙人", np.round(cap[pa_] * 0.5))
    other = pool[rng.integers(0, len(pool), n)]
    add(i[pa_], other[pa_], "投资人", np.round(cap[pa_] * 0.5))
    comp = (et == "有限责任公司") | (et == "股份有限公司")
    add(i[comp], owner[comp], "法定代表人")
    share = rng.uniform(0.3, 1.0, n)
    holds = comp & (rng.random(n) < 0.8)
    add(i[holds], owner[holds], "股东", np.round(cap[holds] * share[holds], 2))
    o2 = pool[rng.integers(0, len(pool), n)]
    two = comp & (rng.random(n) < 0.45)
    add(i[two], o2[two], "股东", np.round(cap[two] * (1 - share[two]), 2))
    sup = pool[rng.integers(0, len(pool), n)]
    add(i[comp], sup[comp], "监事")
    mg = np.where(rng.random(n) < 0.6, owner, pool[rng.integers(0, len(pool), n)])
    add(i[comp], mg[comp], "经理")
    bd = comp & ((et == "股份有限公司") | (rng.random(n) < 0.1))
    for _ in range(3):
        dpid = pool[rng.integers(0, len(pool), n)]
        add(i[bd], dpid[bd], "董事")
    # organisations holding shares
    orgsh = comp & (rng.random(n) < 0.08)
    holder = rng.integers(0, n, n)
    add(i[orgsh], np.full(orgsh.sum(), -1), "股东", np.round(cap[orgsh] * 0.2, 2), holder[orgsh])
    persons = pd.concat(parts, ignore_index=True)
    persons["disp"] = -1
    persons["forced"] = ""
    return ent, persons


# --------------------------------------------------------------------------------------------
# Jobs and incomes


def wages(rng, n, median, sigma, lo, hi):
    return (np.clip(np.exp(rng.normal(np.log(median), sigma, n)), lo, hi) // 10 * 10).astype(np.int64)


def tax_due(amount_cents: np.ndarray) -> np.ndarray:
    t = np.maximum(0, amount_cents / C - 6500)
    due = np.where(t <= 3000, 0.03 * t, np.where(t <= 12000, 0.1 * t - 210, 0.2 * t - 1410))
    return np.round(np.maximum(due, 0) * C).astype(np.int64)


def month_rows(active: np.ndarray, months: np.ndarray):
    """(row person index, month index) for a boolean (persons x months) matrix."""
    pi, mj = np.nonzero(active)
    return pi, months[mj]


def active_months(rng, n: int, k: int) -> np.ndarray:
    act = np.ones((n, k), dtype=bool)
    r = rng.random(n)
    start = rng.integers(1, k, n)
    end = rng.integers(1, k, n)
    joined = r < 0.08
    left = (r >= 0.08) & (r < 0.15)
    cols = np.arange(k)[None, :]
    act[joined] = cols >= start[joined, None]
    act[left] = cols < end[left, None]
    return act


def build_jobs(ctx: Ctx, geo: Geo, people: People, households: pd.DataFrame, ent: pd.DataFrame,
               pub: pd.DataFrame, ok: np.ndarray, ok_payroll: np.ndarray) -> dict:
    """Employees of enterprises and public units, retirees, the self-employed: tax rows, social
    insurance, housing fund and the fiscal payroll."""
    rng = ctx.sub("jobs")
    months = ctx.window
    K = len(months)
    N = people.n
    age = people.age
    outsider = ~people.in_hukou

    # public staff and retirees (fiscal payroll)
    r = rng.random(N)
    pub_staff = ok_payroll & (age >= 22) & (age <= 59) & (r < np.where(people.urban, 0.045, 0.015))
    pub_ret = ok_payroll & (age >= 60) & (age <= 90) & (r < np.where(people.urban, 0.05, 0.012))
    # enterprise employees
    ent_emp = ok & ~pub_staff & (age >= 18) & (age <= 60) & (r > 0.9) & (rng.random(N) < 0.62)
    ent_emp |= ok & outsider & ~pub_staff & (rng.random(N) < 0.5)
    flex = ok & ~pub_staff & ~ent_emp & (age >= 25) & (age <= 59) & (rng.random(N) < 0.012)
    ent_ret = ok & ~pub_ret & (age >= 60) & people.urban & (rng.random(N) < 0.12)

    pu_w = pub["weight"].to_numpy()
    active_ent = np.flatnonzero((ent["status"] == "存续").to_numpy() & (ent["etype"] != "个体工商户").to_numpy())
    ent_size = rng.pareto(1.2, len(active_ent)) + 1

    out = {}
    # ---- payroll
    ps = np.flatnonzero(pub_staff)
    pr = np.flatnonzero(pub_ret)
    ps_unit = cat_index(rng, pu_w, len(ps))
    pr_unit = cat_index(rng, pu_w, len(pr))
    ps_w = wages(rng, len(ps), 6500, 0.28, 3500, 16000)
    pr_w = wages(rng, len(pr), 4800, 0.25, 3000, 12000)
    payroll = pd.DataFrame({
        "pid": np.concatenate([ps, pr]),
        "employer": np.concatenate([ps_unit, pr_unit]),
        "status": np.concatenate([np.full(len(ps), "在职", dtype=object), np.full(len(pr), "离退休", dtype=object)]),
        "salary": np.concatenate([ps_w, pr_w]) * C,
    })
    payroll["etype"] = pub["ptype"].to_numpy()[payroll["employer"].to_numpy()]
    out["payroll"] = payroll

    # ---- employees: employer is an enterprise (index into ent) or a public unit
    ee = np.flatnonzero(ent_emp)
    ee_ent = active_ent[cat_index(rng, ent_size, len(ee))]
    ee_w = wages(rng, len(ee), 4200, 0.45, 2000, 40000)
    emp = pd.DataFrame({
        "pid": np.concatenate([ee, ps]),
        "wage": np.concatenate([ee_w, ps_w]),
        "emp": np.concatenate([ee_ent, len(ent) + ps_unit]),   # index into employer names (ent, then pub)
        "public": np.concatenate([np.zeros(len(ee), bool), np.ones(len(ps), bool)]),
        "ptype": np.concatenate([np.full(len(ee), "", dtype=object), pub["ptype"].to_numpy()[ps_unit]]),
    })
    E = len(emp)
    act = active_months(rng, E, K)
    pi, mi = month_rows(act, months)
    wage_m = emp["wage"].to_numpy()[pi] * C
    bonus = (rng.random(E) < 0.25)[pi] & (mi == months[min(K - 1, (13 - months[0] % 12) % 12)])
    amount = wage_m + np.where(bonus, (wage_m * rng.uniform(0.5, 2.0, len(pi))).astype(np.int64) // 100 * 100, 0)
    tax_parts = [pd.DataFrame({"pid": emp["pid"].to_numpy()[pi], "item": WAGE, "m0": mi, "m1": mi,
                               "amount": amount, "agent": emp["emp"].to_numpy()[pi]})]

    # ---- social insurance contributions of employees
    base = (np.clip(emp["wage"].to_numpy(), 3900, 19500)) * C
    pub_e = emp["public"].to_numpy()
    payer = np.where(pub_e, np.where(emp["ptype"].to_numpy() == "行政机关", 20, 30), 10)
    pension = np.where(pub_e, 120, 110)
    has210 = rng.random(E) < 0.25
    has410 = (rng.random(E) < 0.1) & ~pub_e
    si_parts = []
    for scheme, mask in ((0, np.ones(E, bool)), (310, np.ones(E, bool)), (210, has210), (410, has410)):
        sel = mask[pi]
        p_i = pi[sel]
        sch = pension[p_i] if scheme == 0 else np.full(len(p_i), scheme)
        si_parts.append(pd.DataFrame({"pid": emp["pid"].to_numpy()[p_i], "scheme": sch, "month": mi[sel],
                                      "base": base[p_i], "employer": emp["emp"].to_numpy()[p_i],
                                      "payer": payer[p_i]}))
    # flexible employment: pension and medical at the lowest base, no employer
    fx = np.flatnonzero(flex)
    fx_act = active_months(rng, len(fx), K)
    fpi, fmi = month_rows(fx_act, months)
    fbase = (np.full(len(fx), 3900) + rng.integers(0, 3, len(fx)) * 300) * C
    for scheme in (110, 310):
        si_parts.append(pd.DataFrame({"pid": fx[fpi], "scheme": scheme, "month": fmi, "base": fbase[fpi],
                                      "employer": -1, "payer": 60}))
    # residents' schemes: one yearly row each, paid by 城乡居民
    res = ok & ~ent_emp & ~pub_staff & ~flex & (age >= 16) & (age <= 59) & (rng.random(N) < 0.10)
    rs = np.flatnonzero(res)
    grade = rng.choice([200, 300, 500, 1000, 2000, 3000, 5000], len(rs), p=[.4, .2, .15, .12, .07, .04, .02])
    si_parts.append(pd.DataFrame({"pid": rs, "scheme": 170, "month": months[rng.integers(0, K, len(rs))],
                                  "base": grade * C, "employer": -1, "payer": 70}))
    med = rs[rng.random(len(rs)) < 0.9]
    si_parts.append(pd.DataFrame({"pid": med, "scheme": 390, "month": months[rng.integers(0, min(3, K), len(med))],
                                  "base": 380 * C, "employer": -1, "payer": 70}))

    # ---- benefits: enterprise and public pensions, residents' pensions, unemployment
    b_parts = []
    er = np.flatnonzero(ent_ret)
    er_amt = wages(rng, len(er), 2800, 0.3, 1500, 9000)
    b_parts.append(_monthly(er, er_amt, 110, PENSION, months))
    pr_pension = pr[rng.random(len(pr)) < 0.5]
    b_parts.append(_monthly(pr_pension, wages(rng, len(pr_pension), 4500, 0.2, 3000, 10000), 120, PENSION, months))
    rp = np.flatnonzero(ok & ~ent_ret & ~pub_ret & (age >= 60) & ~people.urban & (rng.random(N) < 0.06))
    b_parts.append(_monthly(rp, rng.integers(150, 261, len(rp)), 170, PENSION, months))
    un = np.flatnonzero(ok & ~ent_emp & ~pub_staff & (age >= 25) & (age <= 55) & (rng.random(N) < 0.003))
    un_len = rng.integers(3, 13, len(un))
    un_act = np.arange(K)[None, :] >= (K - un_len)[:, None]
    upi, umi = month_rows(un_act, months)
    b_parts.append(pd.DataFrame({"pid": un[upi], "scheme": 210, "btype": UNEMPLOYMENT, "month": umi,
                                 "amount": rng.integers(1600, 1900, len(un))[upi] * C}))

    # ---- other tax items
    adults = np.flatnonzero(ok & (age >= 20) & (age <= 70))
    lw = adults[rng.random(len(adults)) < 0.02]
    cnt = rng.integers(1, 4, len(lw))
    lwp = np.repeat(lw, cnt)
    tax_parts.append(pd.DataFrame({"pid": lwp, "item": LABOUR, "m0": months[rng.integers(0, K, len(lwp))],
                                   "amount": rng.integers(800, 20000, len(lwp)) * C, "agent": -1}))
    tax_parts[-1]["m1"] = tax_parts[-1]["m0"]
    rent = adults[rng.random(len(adults)) < 0.006]
    rent_amt = rng.integers(600, 3500, len(rent))
    ra = np.ones((len(rent), K), bool)
    rpi, rmi = month_rows(ra, months)
    tax_parts.append(pd.DataFrame({"pid": rent[rpi], "item": RENT, "m0": rmi, "m1": rmi,
                                   "amount": rent_amt[rpi] * C, "agent": -1}))
    div = adults[rng.random(len(adults)) < 0.008]
    dm = months[rng.integers(0, K, len(div))]
    tax_parts.append(pd.DataFrame({"pid": div, "item": INTEREST, "m0": dm, "m1": dm,
                                   "amount": rng.integers(500, 60000, len(div)) * C, "agent": -1}))
    wr = adults[rng.random(len(adults)) < 0.0005]
    wm = months[rng.integers(0, K, len(wr))]
    tax_parts.append(pd.DataFrame({"pid": wr, "item": ROYALTY, "m0": wm, "m1": wm,
                                   "amount": rng.integers(500, 8000, len(wr)) * C, "agent": -1}))
    # business income of investors in sole proprietorships and partnerships (quarterly)
    inv = ent[(ent["status"] == "存续") & ent["etype"].isin(["个人独资企业", "合伙企业"])]
    inv_pid = inv["owner"].to_numpy()
    inv_pid = inv_pid[ok[inv_pid]]
    q_starts = months[(months % 3 == 0)]
    q_starts = q_starts[q_starts + 2 <= months[-1]]
    if len(inv_pid) and len(q_starts):
        qi = np.repeat(inv_pid, len(q_starts))
        qm = np.tile(q_starts, len(inv_pid))
        tax_parts.append(pd.DataFrame({"pid": qi, "item": BUSINESS, "m0": qm, "m1": qm + 2,
                                       "amount": np.repeat(rng.integers(3000, 90000, len(inv_pid)), len(q_starts)) * C,
                                       "agent": -1}))

    # ---- housing fund
    hf_public = ps
    hf_ent = ee[rng.random(len(ee)) < 0.35]
    wage_of = np.zeros(N, dtype=np.int64)
    wage_of[emp["pid"].to_numpy()] = emp["wage"].to_numpy()
    emp_of = np.full(N, -1, dtype=np.int64)
    emp_of[emp["pid"].to_numpy()] = emp["emp"].to_numpy()
    hp = np.concatenate([hf_public, hf_ent])
    cur = months[-1] + 1  # as-of month
    hbase = np.clip(wage_of[hp], 1900, 27000) * C
    rate = rng.choice([0.08, 0.10, 0.12], len(hp), p=[0.3, 0.3, 0.4])
    contrib = np.round(hbase * rate / C).astype(np.int64) * C
    last = cur - np.where(rng.random(len(hp)) < 0.9, 1, 2)
    hf = pd.DataFrame({"pid": hp, "employer": emp_of[hp], "base": hbase, "personal": contrib, "unit": contrib,
                       "status": "正常", "last": last, "balance": rng.integers(3000, 180000, len(hp)) * C})
    # sealed, closed and frozen accounts of people not currently paying
    idle = np.flatnonzero(ok & ~ent_emp & ~pub_staff & (age >= 25) & (age <= 62) & people.urban)
    sealed = idle[rng.random(len(idle)) < 0.06]
    old_emp = active_ent[rng.integers(0, len(active_ent), len(sealed))]
    st = np.select([rng.random(len(sealed)) < 0.85, rng.random(len(sealed)) < 0.95], ["封存", "销户"], "冻结")
    sb = rng.integers(1900, 9000, len(sealed)) * C
    hf2 = pd.DataFrame({"pid": sealed, "employer": np.where(rng.random(len(sealed)) < 0.93, old_emp, -1),
                        "base": sb, "personal": (sb * 0.1).astype(np.int64) // C * C,
                        "unit": (sb * 0.1).astype(np.int64) // C * C, "status": st,
                        "last": cur - rng.integers(4, 72, len(sealed)),
                        "balance": np.where(st == "销户", 0, rng.integers(0, 90000, len(sealed)) * C)})
    out["hf"] = pd.concat([hf, hf2], ignore_index=True)

    tax = pd.concat(tax_parts, ignore_index=True)
    out["tax"] = tax
    si = pd.concat(si_parts, ignore_index=True)
    si["status"] = 1
    out["si_c"] = si
    out["si_b"] = pd.concat(b_parts, ignore_index=True)
    return out


def _monthly(pids, amount_yuan, scheme, btype, months):
    K = len(months)
    pi = np.repeat(np.arange(len(pids)), K)
    return pd.DataFrame({"pid": np.asarray(pids)[pi], "scheme": scheme, "btype": btype,
                         "month": np.tile(months, len(pids)), "amount": np.asarray(amount_yuan)[pi] * C})


def finish_tax(tax: pd.DataFrame) -> pd.DataFrame:
    """One declaration per person, item, period and withholding agent, then dates and the tax due.

    A real 个人所得税明细 holds one row per declaration: two payments of the same item by the same payer
    in the same month are declared together. Without this merge two casual payments of equal size in one
    month would come out as identical rows, which no delivery can tell apart from a duplicated row."""
    keys = [c for c in tax.columns if c != "amount"]
    tax = tax.groupby(keys, as_index=False, sort=False, dropna=False)["amount"].sum()
    tax["start"] = month_start(tax["m0"].to_numpy())
    tax["end"] = month_end(tax["m1"].to_numpy())
    tax["tax"] = tax_due(tax["amount"].to_numpy() / np.maximum(1, tax["m1"].to_numpy() - tax["m0"].to_numpy() + 1))
    tax.loc[tax["item"] != WAGE, "tax"] = (tax["amount"] * 0.16).astype(np.int64) // C * C
    tax.loc[tax["item"] == INTEREST, "tax"] = (tax["amount"] * 0.2).astype(np.int64)
    tax["month"] = yyyymm(tax["m0"].to_numpy())
    return tax


# --------------------------------------------------------------------------------------------
# Vehicles

PLATE_CHARS = np.array(list("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"))
DIGITS = np.array(list("0123456789"))
BRANDS = {
    "car": ["大众", "丰田", "本田", "日产", "别克", "雪佛兰", "五菱", "长安", "吉利", "哈弗", "奇瑞", "宝骏", "福特", "现代",
            "起亚", "东风风神", "传祺", "荣威", "奥迪", "宝马", "奔驰", "马自达"],
    "nev": ["比亚迪", "五菱宏光MINIEV", "特斯拉", "埃安", "零跑", "理想", "问界", "小鹏", "蔚来", "长安深蓝"],
    "truck": ["解放", "东风", "福田", "江淮", "重汽", "陕汽", "江铃"],
    "moto": ["豪爵", "雅马哈", "新大洲本田", "宗申", "力帆", "嘉陵", "五羊本田", "钱江"],
    "light": ["雅迪", "爱玛", "台铃", "绿源"],
    "low": ["时风", "五征", "巨力"],
    "tractor": ["东方红", "雷沃", "常发"],
}
HELD_ZT = ["A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A", "A",
           "G", "Q", "AG", "GQ", "D", "K", "L", "O", "I", "H"]
GONE_ZT = ["E", "P", "B", "C", "M", "EG", "BG", "PQ"]


def plates(rng, n: int, nev: np.ndarray, prefix: str = "鄂H") -> np.ndarray:
    body = PLATE_CHARS[rng.integers(0, len(PLATE_CHARS), (n, 5))]
    body[:, 0] = np.where(rng.random(n) < 0.6, PLATE_CHARS[rng.integers(10, len(PLATE_CHARS), n)], body[:, 0])
    s = np.char.add(np.char.add(np.char.add(body[:, 0], body[:, 1]), np.char.add(body[:, 2], body[:, 3])), body[:, 4])
    nd = DIGITS[rng.integers(0, 10, (n, 5))]
    sn = np.char.add(np.char.add(np.char.add(nd[:, 0], nd[:, 1]), np.char.add(nd[:, 2], nd[:, 3])), nd[:, 4])
    sn = np.char.add(np.where(rng.random(n) < 0.85, "D", "F"), sn)
    return np.char.add(prefix, np.where(nev, sn, s)).astype(object)


def vehicle_rows(rng, owners: np.ndarray, kind: np.ndarray, held: np.ndarray, vehicle_date: np.datetime64,
                 people: People, plate_prefix: str = "鄂H") -> pd.DataFrame:
    """kind: car | nev | truck | moto | light | low | tractor. held: bool (status not in B,C,E,M,P)."""
    n = len(owners)
    hpzl = np.select([kind == "car", kind == "nev", kind == "truck", kind == "moto", kind == "light",
                      kind == "low", kind == "tractor"], ["02", "52", "01", "07", "08", "13", "14"], "02")
    cllx = np.select([hpzl == "02", hpzl == "52", hpzl == "01", hpzl == "07", hpzl == "08", hpzl == "13"],
                     [np.where(rng.random(n) < 0.65, "K33", np.where(rng.random(n) < 0.8, "K31", "H31")), "K33",
                      np.where(rng.random(n) < 0.7, "H11", "K11"), "M21", "M22", "N11"], "T21")
    brand = np.empty(n, dtype=object)
    for k, lst in BRANDS.items():
        m = kind == k
        brand[m] = np.asarray(lst, dtype=object)[rng.integers(0, len(lst), m.sum())]
    # registration time: mostly recent years, older ones more often deregistered
    span = int((vehicle_date - np.datetime64("1996-01-01")).astype(int)) - 1
    age_days = (span * rng.random(n) ** np.where(held, 1.6, 0.7)).astype(np.int64)
    reg = (vehicle_date - age_days.astype("timedelta64[D]")).astype("datetime64[s]")
    reg = reg + (rng.integers(8 * 3600, 17 * 3600, n)).astype("timedelta64[s]")
    # nobody registers a vehicle before turning 18
    if len(owners):
        person = np.asarray(owners) >= 0
        adult_at = np.where(person, people.birth[np.maximum(owners, 0)] + np.timedelta64(18 * 365 + 5, "D"),
                            np.datetime64("1990-01-01")).astype("datetime64[s]")
        late = reg < adult_at
        if late.any():
            room = np.maximum(1, (vehicle_date - adult_at[late].astype("datetime64[D]")).astype(np.int64))
            reg[late] = (adult_at[late] + (rng.random(late.sum()) * room).astype(np.int64).astype("timedelta64[D]")
                         + rng.integers(8 * 3600, 17 * 3600, late.sum()).astype("timedelta64[s]"))
    nev = kind == "nev"
    reg_nev_min = np.datetime64("2017-01-01T09:00:00")
    reg = np.where(nev & (reg < reg_nev_min), reg_nev_min + (age_days % 2000).astype("timedelta64[D]"), reg)
    zt = np.where(held, np.asarray(HELD_ZT, dtype=object)[rng.integers(0, len(HELD_ZT), n)],
                  np.asarray(GONE_ZT, dtype=object)[cat_index(rng, [40, 30, 12, 2, 5, 4, 4, 3], n)])
    syxz = np.where(kind == "truck", "F", np.where(rng.random(n) < 0.97, "A", np.where(rng.random(n) < 0.7, "D", "B")))
    return pd.DataFrame({"pid": owners, "org": -1, "plate": plates(rng, n, nev, plate_prefix), "hpzl": hpzl, "cllx": cllx,
                         "zt": zt, "syxz": syxz, "brand": brand, "reg": reg, "doc": "A", "disp": -1,
                         "forced": ""})


def build_vehicles(ctx: Ctx, people: People, ok: np.ndarray, roster_ok: np.ndarray, n_orgs: int,
                   vehicle_date: np.datetime64) -> pd.DataFrame:
    rng = ctx.sub("vehicles")
    N = people.n
    age = people.age
    adult = (age >= 20) & (age <= 80)
    r = rng.random(N)
    p_car = np.where(people.urban, 0.20, 0.12)
    car = ok & adult & (r < p_car)
    second = car & (rng.random(N) < 0.06)
    moto = ok & adult & (rng.random(N) < np.where(people.urban, 0.025, 0.08))
    low = ok & adult & ~people.urban & (rng.random(N) < 0.02)
    old_gone = ok & adult & (rng.random(N) < 0.05)
    parts = []
    def add(mask, kinds, p_kinds, p_held):
        own = np.flatnonzero(mask)
        k = np.asarray(kinds, dtype=object)[cat_index(rng, p_kinds, len(own))]
        held = rng.random(len(own)) < p_held
        parts.append(vehicle_rows(rng, own, k, held, vehicle_date, people, ctx.plate_prefix))
    add(car, ["car", "nev", "truck"], [0.88, 0.09, 0.03], 0.985)
    add(second, ["car", "nev", "truck"], [0.75, 0.15, 0.10], 0.97)
    add(moto, ["moto", "light"], [0.7, 0.3], 0.85)
    add(low, ["low", "tractor"], [0.6, 0.4], 0.9)
    add(old_gone, ["car", "truck", "moto"], [0.7, 0.1, 0.2], 0.0)
    # roster members: exempt vehicles and old deregistered ones are common, held cars rare
    add(roster_ok & adult & (rng.random(N) < 0.03), ["moto", "light", "low", "tractor"], [0.4, 0.3, 0.2, 0.1], 0.9)
    add(roster_ok & adult & (rng.random(N) < 0.004), ["car", "moto"], [0.6, 0.4], 0.0)
    add(roster_ok & adult & (rng.random(N) < 0.00012), ["car"], [1.0], 1.0)
    v = pd.concat(parts, ignore_index=True)
    # organisation-owned vehicles
    m = max(10, int(len(v) * 0.06))
    k = np.asarray(["car", "truck", "nev"], dtype=object)[cat_index(rng, [0.6, 0.3, 0.1], m)]
    ov = vehicle_rows(rng, np.full(m, -1), k, rng.random(m) < 0.9, vehicle_date, people, ctx.plate_prefix)
    ov["org"] = rng.integers(0, n_orgs, m)
    ov["doc"] = np.where(rng.random(m) < 0.8, "M", "B")
    ov["syxz"] = np.where(k == "truck", "F", "A")
    v = pd.concat([v, ov], ignore_index=True)
    return v


# --------------------------------------------------------------------------------------------
# Property

USES = ["住宅", "商业", "办公", "工业", "车位", "其他"]


UNIT_SPACE = 50_000_000     # unit sequence numbers of background units; planted ones follow it


def unit_numbers(rng, admin: np.ndarray, town: np.ndarray, n0: int, limit: int = 2 * UNIT_SPACE) -> np.ndarray:
    """不动产单元号 from the sequence numbers n0, n0 + 1, ...; ``limit`` is where the caller's part of the
    numbering ends (a shard's part, in a city generated in shards)."""
    n = len(admin)
    if n0 + n > limit:
        raise ValueError(f"unit numbers {n0}..{n0 + n} run past {limit}: too many units for one shard")
    seq = np.arange(n0, n0 + n)
    zd = (seq // 400) % 100000
    room = seq % 10000
    bld = (seq // 10000) % 10000
    block = 1 + (town % 999)
    kind = np.where(rng.random(n) < 0.85, "GB", "JC")
    return (admin.astype(object) + np.char.zfill(block.astype(str), 3).astype(object) + "001" + kind.astype(object)
            + np.char.zfill(zd.astype(str), 5).astype(object) + "F"
            + np.char.zfill(bld.astype(str), 4).astype(object) + np.char.zfill(room.astype(str), 4).astype(object))


def certificates(rng, geo: Geo, dist: np.ndarray, reg: np.ndarray) -> np.ndarray:
    n = len(dist)
    year = reg.astype("datetime64[Y]").astype(np.int64) + 1970
    city = np.array([CITY_OF_DIST[d].replace("荆门市屈家岭", "荆门市") for d in geo.districts], dtype=object)[dist]
    num = np.char.zfill(rng.integers(1, 9_999_999, n).astype(str), 7).astype(object)
    return "鄂(" + year.astype(str).astype(object) + ")" + city + "不动产权第" + num + "号"


def build_property(ctx: Ctx, geo: Geo, people: People, households: pd.DataFrame, ok: np.ndarray,
                   roster_ok: np.ndarray, orgs: pd.DataFrame, property_date: np.datetime64) -> pd.DataFrame:
    rng = ctx.sub("property")
    H = len(households)
    start = households["start"].to_numpy()
    size = households["size"].to_numpy()
    head = start
    comm = geo.l_comm[households["loc"].to_numpy()]
    hok = ok[head] | roster_ok[head]
    roster_h = roster_ok[head]
    p_own = np.where(comm, 0.40, 0.10)
    p_own = np.where(roster_h, 0.12, p_own)
    own = hok & (rng.random(H) < p_own)
    spouse = np.where((size >= 2) & (people.rel[np.minimum(head + 1, people.P - 1)] == "10"), head + 1, -1)
    rows = []
    def units(hs, use, joint_p):
        n = len(hs)
        joint = (spouse[hs] >= 0) & (rng.random(n) < joint_p)
        o1 = head[hs]
        o2 = np.where(joint, spouse[hs], -1)
        co = np.where(joint, np.where(rng.random(n) < 0.92, "共同共有", "按份共有"), "单独所有")
        rows.append(pd.DataFrame({"o1": o1, "o2": o2, "o3": -1, "org": -1, "use": use, "co": co,
                                  "hh": hs, "dist": households["dist"].to_numpy()[hs],
                                  "town": households["town"].to_numpy()[hs]}))
    oh = np.flatnonzero(own)
    units(oh, "住宅", 0.45)
    second = oh[(rng.random(len(oh)) < np.where(roster_h[oh], 0.0015, 0.08))]
    units(second, "住宅", 0.4)
    park = oh[comm[oh] & ~roster_h[oh] & (rng.random(len(oh)) < 0.12)]
    units(park, "车位", 0.3)
    shop = oh[~roster_h[oh] & (rng.random(len(oh)) < 0.03)]
    units(shop, "商业", 0.3)
    office = oh[~roster_h[oh] & (rng.random(len(oh)) < 0.004)]
    units(office, "办公", 0.2)
    ind = oh[~roster_h[oh] & (rng.random(len(oh)) < 0.002)]
    units(ind, "工业", 0.1)
    oth = oh[(rng.random(len(oh)) < 0.02)]
    units(oth, "其他", 0.2)
    p = pd.concat(rows, ignore_index=True)
    # organisation-owned units
    m = max(5, int(len(p) * 0.05))
    org = rng.integers(0, len(orgs), m)
    od = np.clip(orgs["dist"].to_numpy()[org], 0, len(geo.districts) - 1)
    otown = np.array([np.flatnonzero(geo.t_dist == d)[0] for d in range(len(geo.districts))])[od]
    p = pd.concat([p, pd.DataFrame({"o1": -1, "o2": -1, "o3": -1, "org": org,
                                    "use": np.asarray(["商业", "办公", "工业", "住宅"], dtype=object)[cat_index(rng, [5, 3, 2, 1], m)],
                                    "co": "单独所有", "hh": -1, "dist": od, "town": otown})], ignore_index=True)
    p["status"] = "现势"
    # superseded records: the previous owner of a home, same unit number
    return finish_property(ctx, rng, geo, households, p, property_date, n0=0, history=True, people=people, ok=ok)


def finish_property(ctx, rng, geo: Geo, households, p: pd.DataFrame, property_date, n0: int, history: bool,
                    people: People | None = None, ok: np.ndarray | None = None) -> pd.DataFrame:
    n = len(p)
    admin = np.asarray(geo.d_admin, dtype=object)[p["dist"].to_numpy()]
    lo, hi = ctx.shard_range(UNIT_SPACE)
    if "unit" not in p or p["unit"].isna().any():
        p["unit"] = unit_numbers(rng, admin, p["town"].to_numpy(), lo + n0, hi)
    span = int((property_date - np.datetime64("2016-01-01")).astype(int)) - 1
    if "reg" not in p:
        p["reg"] = np.datetime64("2016-01-01") + (span * rng.random(n) ** 0.8).astype(np.int64).astype("timedelta64[D]")
    use = p["use"].to_numpy()
    area = np.select([use == "住宅", use == "车位", use == "商业", use == "办公", use == "工业"],
                     [rng.uniform(55, 165, n), rng.uniform(12, 38, n), rng.uniform(18, 320, n),
                      rng.uniform(40, 600, n), rng.uniform(200, 6000, n)], rng.uniform(5, 60, n))
    p["area"] = np.round(area, 2)
    hh_addr = households["address"].to_numpy()
    hh = p["hh"].to_numpy()
    other_hh = rng.integers(0, len(households), n)
    base = np.where(hh >= 0, hh_addr[np.maximum(hh, 0)], hh_addr[other_hh])
    first_home = (use == "住宅") & ~pd.Series(hh).duplicated().to_numpy() & (hh >= 0)
    base = np.where(first_home, base, hh_addr[other_hh])
    suffix = np.select([use == "车位", use == "商业", use == "办公", use == "工业", use == "其他"],
                       ["地下车位" + rng.integers(1, 600, n).astype(str).astype(object),
                        "门面" + rng.integers(1, 40, n).astype(str).astype(object) + "号",
                        "办公楼" + rng.integers(1, 20, n).astype(str).astype(object) + "层",
                        "厂房", "附属用房"], "")
    p["location"] = "湖北省" + base + suffix
    p["cert"] = certificates(rng, geo, p["dist"].to_numpy(), p["reg"].to_numpy())
    p["disp"] = -1
    p["forced"] = ""
    if history:
        homes = np.flatnonzero((use == "住宅") & (p["o1"].to_numpy() >= 0))
        hs = homes[rng.random(len(homes)) < 0.10]
        prev = p.iloc[hs].copy()
        pool = np.flatnonzero(ok & (people.age >= 25))
        prev["o1"] = pool[rng.integers(0, len(pool), len(prev))]
        prev["o2"] = -1
        prev["co"] = "单独所有"
        prev["hh"] = -1
        prev["status"] = "历史"
        back = (rng.integers(200, 3000, len(prev))).astype("timedelta64[D]")
        prev["reg"] = np.maximum(prev["reg"].to_numpy() - back, np.datetime64("2012-06-01"))
        prev["cert"] = certificates(rng, geo, prev["dist"].to_numpy(), prev["reg"].to_numpy())
        canc = p.iloc[rng.integers(0, n, max(1, int(n * 0.02)))].copy()
        canc["unit"] = unit_numbers(rng, np.asarray(geo.d_admin, dtype=object)[canc["dist"].to_numpy()],
                                    canc["town"].to_numpy(), lo + n0 + n, hi)
        canc["o1"] = pool[rng.integers(0, len(pool), len(canc))]
        canc["o2"] = -1
        canc["co"] = "单独所有"
        canc["org"] = -1
        canc["hh"] = -1
        canc["status"] = "注销"
        p = pd.concat([p, prev, canc], ignore_index=True)
    return p


# --------------------------------------------------------------------------------------------
# Bank accounts (answer to the query for roster households: members and relatives)

BANKS = {
    "活期存款": ["中国工商银行荆门分行", "中国农业银行荆门分行", "中国银行荆门分行", "中国建设银行荆门分行",
             "中国邮政储蓄银行荆门市分行", "湖北银行荆门分行", "汉口银行荆门分行", "荆门农村商业银行",
             "湖北钟祥农村商业银行", "湖北京山农村商业银行", "湖北沙洋农村商业银行", "交通银行荆门分行"],
    "定期存款": ["中国农业银行荆门分行", "中国邮政储蓄银行荆门市分行", "荆门农村商业银行", "湖北钟祥农村商业银行",
             "中国建设银行荆门分行", "湖北银行荆门分行"],
    "理财产品": ["中国工商银行荆门分行", "招商银行荆门分行", "中国建设银行荆门分行", "兴业银行荆门分行"],
    "证券资产": ["长江证券荆门象山大道营业部", "国泰君安证券荆门营业部", "华泰证券荆门白云大道营业部"],
    "保险现金价值": ["中国人寿保险荆门分公司", "中国平安人寿荆门中心支公司", "太平洋人寿荆门中心支公司"],
    "互联网金融": ["支付宝（余额宝）", "微信支付（零钱通）", "京东金融"],
}
ATYPES = list(BANKS.keys())


def bank_rows(rng, pids: np.ndarray, balances_cents: np.ndarray, atype: np.ndarray) -> pd.DataFrame:
    n = len(pids)
    inst = np.empty(n, dtype=object)
    for t, lst in BANKS.items():
        m = atype == t
        inst[m] = np.asarray(lst, dtype=object)[rng.integers(0, len(lst), m.sum())]
    return pd.DataFrame({"pid": pids, "inst": inst, "atype": atype, "balance": balances_cents, "disp": -1,
                         "forced": ""})


def build_bank(ctx: Ctx, people: People, rh: pd.DataFrame, rows: pd.DataFrame, relatives: pd.DataFrame,
               limits: np.ndarray, reserved_hh: np.ndarray) -> pd.DataFrame:
    """Members hold small balances (well under the household's limit); relatives hold more."""
    rng = ctx.sub("bank")
    m = rows[people.age[rows["pid"].to_numpy()] >= 16]
    n_acc = rng.choice([1, 2, 3], len(m), p=[0.62, 0.3, 0.08])
    pid = np.repeat(m["pid"].to_numpy(), n_acc)
    hh = np.repeat(m["hh"].to_numpy(), n_acc)
    at = np.asarray(ATYPES, dtype=object)[cat_index(rng, [72, 14, 3, 1, 3, 7], len(pid))]
    # household total: a small share of the limit, split over the accounts
    frac = rng.random(len(rh)) ** 2.5 * 0.45
    over = (rng.random(len(rh)) < 0.0003) & ~reserved_hh
    frac[over] = rng.uniform(1.1, 2.5, over.sum())
    w = rng.random(len(pid)) + 0.05
    wsum = pd.Series(w).groupby(hh).transform("sum").to_numpy()
    bal = np.round(limits[hh] * frac[hh] * w / wsum * C).astype(np.int64)
    parts = [bank_rows(rng, pid, bal, at)]
    rel = relatives[(people.age[relatives["pid"].to_numpy()] >= 16)]
    rel = rel.drop_duplicates("pid")
    has = rng.random(len(rel)) < 0.55
    rp = rel["pid"].to_numpy()[has]
    nrel = rng.choice([1, 2], len(rp), p=[0.7, 0.3])
    rp = np.repeat(rp, nrel)
    rat = np.asarray(ATYPES, dtype=object)[cat_index(rng, [60, 20, 6, 3, 4, 7], len(rp))]
    rbal = np.round(np.exp(rng.normal(np.log(12000), 1.4, len(rp))) * C).astype(np.int64)
    parts.append(bank_rows(rng, rp, rbal, rat))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Cremation records

HOMES = {"东宝区": "荆门市殡仪馆", "掇刀区": "荆门市殡仪馆", "漳河新区": "荆门市殡仪馆", "京山市": "京山市殡仪馆",
         "沙洋县": "沙洋县殡仪馆", "钟祥市": "钟祥市殡仪馆", "屈家岭管理区": "荆门市殡仪馆"}


def build_cremation(ctx: Ctx, geo: Geo, people: People) -> pd.DataFrame:
    rng = ctx.sub("cremation")
    dead = np.flatnonzero(~np.isnat(people.death) & people.in_hukou)
    has = rng.random(len(dead)) < 0.86
    d = dead[has]
    death = people.death[d]
    crem = death + rng.integers(1, 6, len(d)).astype("timedelta64[D]")
    home = np.array([HOMES[x] for x in geo.districts], dtype=object)[people.dist[d]]
    home = np.where(rng.random(len(d)) < 0.01, None, home)
    return pd.DataFrame({"pid": d, "death": death, "cremated": crem, "home": home,
                         "recorded": crem, "disp": -1, "forced": ""})
