"""The clean world: geography, people with their true IDs, hukou households, the assistance roster.

Everything is vectorised over people and households; nothing here loops per person.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .common import Ctx, cat_index
from .ids import id_strings, make_bodies

# GB/T 4761-2008 relation codes -> roster wording (relation to the household head)
REL_TO_ROSTER = {"02": "户主", "10": "配偶", "20": "子", "30": "女", "28": "女婿", "38": "儿媳",
                 "41": "孙子女", "42": "孙子女", "51": "父", "52": "母", "71": "兄弟姐妹", "73": "兄弟姐妹",
                 "75": "兄弟姐妹", "77": "兄弟姐妹", "97": "其他", "99": "其他"}

OTHER_AREAS = ["420106", "420111", "420102", "421002", "421003", "421023", "421087", "420602", "420606",
               "420902", "420984", "429004", "429005", "429006", "421123", "421302", "422801", "420502",
               "411302", "411303", "430602", "430621", "510105", "500101", "362202", "340104", "320106",
               "440304", "370102", "610113"]


class Geo:
    """Flattened geography: districts, townships, locations (communities and villages)."""

    def __init__(self, geo: dict):
        self.city = geo["city"]
        self.province = geo["province"]
        self.districts = [d["name"] for d in geo["districts"]]
        self.d_weight = np.array([d["weight"] for d in geo["districts"]])
        self.d_admin = [d["admin_code"] for d in geo["districts"]]
        self.d_streets = [d["streets"] for d in geo["districts"]]
        self.d_codes = [d["id_area_codes"] for d in geo["districts"]]
        t_name, t_dist, t_type, t_w = [], [], [], []
        l_name, l_town, l_comm = [], [], []
        for di, d in enumerate(geo["districts"]):
            for t in d["townships"]:
                ti = len(t_name)
                t_name.append(t["name"]); t_dist.append(di); t_type.append(t["type"]); t_w.append(t["weight"])
                for c in t["communities"]:
                    l_name.append(c); l_town.append(ti); l_comm.append(True)
                for v in t["villages"]:
                    l_name.append(v); l_town.append(ti); l_comm.append(False)
        self.t_name = np.array(t_name, dtype=object)
        self.t_dist = np.array(t_dist)
        self.t_type = np.array(t_type, dtype=object)
        self.t_weight = np.array(t_w, dtype=float)
        self.l_name = np.array(l_name, dtype=object)
        self.l_town = np.array(l_town)
        self.l_comm = np.array(l_comm)
        self.l_dist = self.t_dist[self.l_town]
        self.d_name = np.array(self.districts, dtype=object)
        self.hui_town = int(np.flatnonzero(self.t_name == "九里回族乡")[0]) if "九里回族乡" in t_name else -1


class People:
    """Column store of every person of the world (hukou population first, then outsiders)."""

    def __init__(self, n: int):
        self.n = n


def _pick_locations(ctx: Ctx, geo: Geo, n: int) -> np.ndarray:
    rng = ctx.sub("locations")
    dist = cat_index(rng, geo.d_weight, n)
    loc = np.empty(n, dtype=np.int64)
    for di in range(len(geo.districts)):
        sel = np.flatnonzero(dist == di)
        towns = np.flatnonzero(geo.t_dist == di)
        town = towns[cat_index(rng, geo.t_weight[towns], len(sel))]
        # community or village
        p_comm = np.select([geo.t_type[town] == "街道", geo.t_type[town] == "镇"], [0.9, 0.25], 0.1)
        want_comm = rng.random(len(sel)) < p_comm
        out = np.empty(len(sel), dtype=np.int64)
        for ti in np.unique(town):
            m = town == ti
            comms = np.flatnonzero((geo.l_town == ti) & geo.l_comm)
            vills = np.flatnonzero((geo.l_town == ti) & ~geo.l_comm)
            if len(vills) == 0:
                vills = comms
            if len(comms) == 0:
                comms = vills
            wc = want_comm[m]
            pick = np.where(wc, comms[rng.integers(0, len(comms), m.sum())],
                            vills[rng.integers(0, len(vills), m.sum())])
            out[m] = pick
        loc[sel] = out
    return loc


def build_people(ctx: Ctx, geo: Geo) -> tuple[People, pd.DataFrame]:
    """Hukou households and their people, plus outsiders (in employment sources, not in hukou)."""
    rng = ctx.sub("people")
    names = ctx.names
    target = max(2000, int(round(2_900_000 * ctx.scale)))
    size_p = np.array([0.19, 0.26, 0.24, 0.17, 0.09, 0.05])
    H = int(round(target / float((np.arange(1, 7) * size_p).sum())))
    size = rng.choice(np.arange(1, 7), size=H, p=size_p)
    loc = _pick_locations(ctx, geo, H)
    town = geo.l_town[loc]
    dist = geo.l_dist[loc]

    # household head age and sex
    head_age = np.clip(rng.normal(52, 14, H), 20, 95).astype(np.int64)
    head_age = np.where(size == 1, np.clip(rng.normal(60, 17, H), 18, 98), head_age).astype(np.int64)
    head_age = np.where(size >= 3, np.maximum(head_age, 27), head_age)
    head_male = rng.random(H) < 0.72

    P = int(size.sum())
    hh = np.repeat(np.arange(H), size)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    pos = np.arange(P) - np.repeat(starts, size)
    A = head_age[hh]
    hm = head_male[hh]
    r = rng.random(P)
    r2 = rng.random(P)
    male_r = rng.random(P) < 0.5
    # relation code and age by position
    old = A >= 58
    young = A < 45
    rel = np.full(P, "20", dtype=object)
    age = np.zeros(P, dtype=np.int64)
    sex_male = male_r.copy()
    is_head = pos == 0
    is_sp = pos == 1
    rel[is_head] = "02"; age[is_head] = A[is_head]; sex_male[is_head] = hm[is_head]
    # position 1: spouse mostly, else a child
    sp = is_sp & (r < 0.88)
    rel[sp] = "10"; age[sp] = np.clip(A[sp] + np.round(rng.normal(-2, 3, sp.sum())), 18, 100)
    sex_male[sp] = ~hm[sp]
    # others: child, in-law, grandchild, parent, sibling, other
    rest = ~is_head & ~sp
    kid_age = A - rng.integers(22, 37, P)
    is_child = rest.copy()
    inlaw = rest & old & (pos == 3) & (r < 0.6)
    grand = rest & old & (pos >= 4) | (rest & old & (pos == 2) & (r < 0.15))
    parent = rest & young & (pos >= 4) & (r < 0.8)
    sib = rest & ~old & ~young & (r > 0.95)
    other = rest & (r2 < 0.015)
    is_child &= ~(inlaw | grand | parent | sib | other)
    rel[is_child] = np.where(male_r[is_child], "20", "30")
    age[is_child] = np.maximum(kid_age[is_child], rng.integers(0, 3, is_child.sum()))
    # in-law: spouse of the child at position 2 -> opposite sex of a random child
    rel[inlaw] = np.where(male_r[inlaw], "28", "38")
    age[inlaw] = np.maximum(kid_age[inlaw] + rng.integers(-3, 4, inlaw.sum()), 18)
    rel[grand] = np.where(male_r[grand], "41", "42")
    age[grand] = np.clip(A[grand] - rng.integers(45, 66, grand.sum()), 0, 40)
    rel[parent] = np.where(pos[parent] % 2 == 0, "51", "52")
    sex_male[parent] = pos[parent] % 2 == 0
    age[parent] = np.clip(A[parent] + rng.integers(22, 33, parent.sum()), 40, 100)
    rel[sib] = np.where(male_r[sib], "73", "77")
    age[sib] = np.clip(A[sib] + rng.integers(-8, 9, sib.sum()), 16, 100)
    rel[other] = np.where(r[other] < 0.7, "97", "99")
    age[other] = rng.integers(5, 80, other.sum())
    age = np.clip(age, 0, 100)

    # outsiders: adults working in Jingmen with hukou elsewhere
    O = int(round(P * 0.03))
    N = P + O
    o_age = rng.integers(20, 58, O)
    o_male = rng.random(O) < 0.6
    age_all = np.concatenate([age, o_age])
    male_all = np.concatenate([sex_male, o_male])
    birth_off = rng.integers(0, 365, N)
    birth = ctx.D - (age_all * 365.2425).astype("timedelta64[D]") - birth_off.astype("timedelta64[D]")
    birth = birth.astype("datetime64[D]")
    by = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    bmd = pd.DatetimeIndex(birth)
    yyyymmdd = (bmd.year * 10000 + bmd.month * 100 + bmd.day).to_numpy().astype(np.int64)

    # area code from district of birth and birth year (most born where they live)
    dist_p = np.concatenate([dist[hh], np.full(O, -1)])
    area = np.zeros(N, dtype=np.int64)
    ra = rng.random(N)
    migrant = (ra < 0.07) & (age_all >= 16)
    migrant[P:] = True
    for di in range(len(geo.districts)):
        m = (dist_p == di) & ~migrant
        codes = geo.d_codes[di]
        assigned = np.zeros(N, dtype=bool)
        share_r = rng.random(N)
        for rule in codes:
            cond = m & ~assigned
            if "born_before" in rule:
                cond &= by < int(rule["born_before"])
            if "share" in rule:
                cond &= share_r < float(rule["share"])
            area[cond] = int(rule["code"])
            assigned |= cond
        # 漳河新区: half its people were born in 东宝 (420802 throughout)
        if geo.districts[di] == "漳河新区":
            half = m & (rng.random(N) < 0.5)
            area[half] = 420802
    other_codes = np.array([int(c) for c in OTHER_AREAS])
    area[migrant] = other_codes[rng.integers(0, len(other_codes), migrant.sum())]
    bodies = make_bodies(area, yyyymmdd, male_all, rng, seq_range=ctx.shard_range(500))
    ids = id_strings(bodies)

    # ethnicity per household
    eth_h = np.full(H, "01", dtype=object)
    rh = rng.random(H)
    hui = (town == geo.hui_town) & (rh < 0.45)
    eth_h[hui] = "03"
    minority = [("03", 0.003), ("15", 0.004), ("06", 0.0006), ("11", 0.001), ("02", 0.0003),
                ("08", 0.0005), ("05", 0.00012), ("10", 0.00006)]
    lo = 0.0
    r3 = rng.random(H)
    for code, p in minority:
        m = (r3 >= lo) & (r3 < lo + p) & (eth_h == "01")
        eth_h[m] = code
        lo += p
    eth = np.concatenate([eth_h[hh], np.full(O, "01", dtype=object)])

    name, name_rare = make_names(rng, names, hh, rel, sex_male[:P], eth[:P], H, head_male)
    o_name, o_rare = make_names(rng, names, np.arange(O), np.full(O, "02", dtype=object), o_male,
                                np.full(O, "01", dtype=object), O, o_male)

    people = People(N)
    people.P = P
    people.id = ids
    people.body = bodies
    people.name = np.concatenate([name, o_name]).astype(object)
    people.male = male_all
    people.birth = birth
    people.birth_year = by
    people.age = age_all
    people.eth = eth
    people.hh = np.concatenate([hh, np.full(O, -1)])
    people.rel = np.concatenate([rel, np.full(O, "", dtype=object)])
    people.in_hukou = np.arange(N) < P
    people.dist = np.concatenate([dist[hh], rng.choice(len(geo.districts), O, p=geo.d_weight / geo.d_weight.sum())])
    people.loc = np.concatenate([loc[hh], np.full(O, -1)])
    people.urban = np.concatenate([geo.l_comm[loc][hh], np.ones(O, dtype=bool)])
    people.area = area
    # statuses (filled later)
    people.status = np.zeros(N, dtype=np.int8)
    people.dereg = np.full(N, np.datetime64("NaT"), dtype="datetime64[D]")
    people.death = np.full(N, np.datetime64("NaT"), dtype="datetime64[D]")
    people.roster = np.zeros(N, dtype=bool)     # on the roster
    people.reserved = np.zeros(N, dtype=bool)   # used by a planted case: no background assets
    # only the rare characters of names.yaml fall outside GBK
    people.name_nongbk = np.concatenate([name_rare, o_rare])

    # households table
    # 户号: district digit, township (2 digits), a sequence within the township (6 digits)
    t_local = town - np.array([np.flatnonzero(geo.t_dist == d)[0] for d in range(len(geo.districts))])[dist]
    seq = np.zeros(H, dtype=np.int64)
    order = np.lexsort((rng.random(H), town))
    st = town[order]
    first = np.r_[0, np.flatnonzero(st[1:] != st[:-1]) + 1]
    run = np.arange(H) - np.repeat(first, np.diff(np.r_[first, H]))
    if ctx.shards == 1:
        seq[order] = run * 3 + rng.integers(1, 4, H)
    else:   # shards interleave: shard k's households take 2 (run * shards + k) + 1 or + 2
        seq[order] = (run * ctx.shards + ctx.shard) * 2 + rng.integers(1, 3, H)
    if H and seq.max() >= 1_000_000:
        raise ValueError(f"户号 sequence {seq.max()} does not fit six digits: too many households per township")
    hno = (dist + 1) * 100_000_000 + (t_local + 1) * 1_000_000 + seq
    households = pd.DataFrame({
        "loc": loc, "town": town, "dist": dist, "size": size, "start": starts,
        "hukou_no": hno.astype(np.int64), "eth": eth_h,
    })
    households["address"] = make_addresses(ctx.sub("addresses"), geo, loc, dist, town)
    people.hukou_no = np.concatenate([households["hukou_no"].to_numpy()[hh], np.full(O, -1)])
    return people, households


def nongbk_mask(arr: np.ndarray) -> np.ndarray:
    """True where a string cannot be written in GBK."""
    inv, u = pd.factorize(np.asarray(arr, dtype=object))
    bad = np.zeros(len(u), dtype=bool)
    for i, s in enumerate(u):
        try:
            s.encode("gbk")
        except UnicodeEncodeError:
            bad[i] = True
    return bad[inv]


def _draw(rng, table: dict, n: int) -> np.ndarray:
    keys = list(table.keys())
    w = np.array([float(table[k]) for k in keys])
    return np.asarray(keys, dtype=object)[rng.choice(len(keys), size=n, p=w / w.sum())]


def make_names(rng, names: dict, hh, rel, male, eth, H, head_male) -> np.ndarray:
    n = len(rel)
    sur_rand = _draw(rng, names["surnames"], n)
    hui_rand = _draw(rng, names["hui_surnames"], n)
    sur_rand = np.where(eth == "03", np.where(rng.random(n) < 0.7, hui_rand, sur_rand), sur_rand)
    korean = eth == "10"
    sur_rand[korean] = np.array(["朴", "金", "李", "崔"], dtype=object)[rng.integers(0, 4, korean.sum())]
    # head surname per household, spouse surname; children take the father's
    head_pos = np.zeros(H, dtype=np.int64) - 1
    hp = np.flatnonzero(rel == "02")
    head_pos[hh[hp]] = hp
    head_sur = sur_rand[head_pos[hh]] if (head_pos >= 0).all() else sur_rand
    sp_sur = np.full(H, None, dtype=object)
    spi = np.flatnonzero(rel == "10")
    sp_sur[hh[spi]] = sur_rand[spi]
    hh_sp = sp_sur[hh]
    fam_sur = np.where(head_male[hh] | (hh_sp == None), head_sur, hh_sp)  # noqa: E711
    sur = sur_rand.copy()
    blood = np.isin(rel, ["20", "30", "41", "42"])
    sur[blood] = fam_sur[blood]
    same_as_head = np.isin(rel, ["51", "71", "73", "75", "77"])
    sur[same_as_head] = head_sur[same_as_head]
    own = blood & (rng.random(n) < 0.06)
    sur[own] = sur_rand[own]

    gm = _draw(rng, names["given_male"], n)
    gm2 = _draw(rng, names["given_male"], n)
    gf = _draw(rng, names["given_female"], n)
    gf2 = _draw(rng, names["given_female"], n)
    single = rng.random(n) < 0.32
    given = np.where(male, np.where(single, gm, gm + gm2), np.where(single, gf, gf + gf2))
    # rare characters outside GBK for a few people
    rare = list(names["rare_chars"].keys())
    rr = rng.random(n) < 0.0012
    given[rr] = given[rr].astype(object) + np.asarray(rare, dtype=object)[rng.integers(0, len(rare), rr.sum())]
    given[rr] = np.array([g[-2:] if len(g) > 2 else g for g in given[rr]], dtype=object)
    full = sur.astype(object) + given.astype(object)
    # very common full names
    cm = rng.random(n) < 0.012
    cmale = np.asarray(names["common_male"], dtype=object)
    cfem = np.asarray(names["common_female"], dtype=object)
    full[cm] = np.where(male[cm], cmale[rng.integers(0, len(cmale), cm.sum())],
                        cfem[rng.integers(0, len(cfem), cm.sum())])
    # names written with a middle dot (维吾尔族)
    dot = eth == "05"
    if dot.any():
        fm = np.asarray(names["dot_first_male"], dtype=object)
        ff = np.asarray(names["dot_first_female"], dtype=object)
        fa = np.asarray(names["dot_father"], dtype=object)
        k = dot.sum()
        first = np.where(male[dot], fm[rng.integers(0, len(fm), k)], ff[rng.integers(0, len(ff), k)])
        full[dot] = first + "·" + fa[rng.integers(0, len(fa), k)]
    return full.astype(object), rr & ~cm & ~dot


def make_addresses(rng, geo: Geo, loc, dist, town) -> np.ndarray:
    H = len(loc)
    comm = geo.l_comm[loc]
    base = geo.d_name[dist] + geo.t_name[town] + geo.l_name[loc]
    street = np.empty(H, dtype=object)
    for di in range(len(geo.districts)):
        m = dist == di
        st = np.asarray(geo.d_streets[di], dtype=object)
        street[m] = st[rng.integers(0, len(st), m.sum())]
    num = rng.integers(1, 400, H).tolist()
    bld = rng.integers(1, 30, H).tolist()
    unit = rng.integers(1, 6, H).tolist()
    room = (rng.integers(1, 19, H) * 100 + rng.integers(1, 5, H)).tolist()
    grp = rng.integers(1, 13, H).tolist()
    out = [f"{b}{s}{n}号{bl}栋{u}单元{r}室" if c else f"{b}{g}组{n}号"
           for b, s, n, bl, u, r, g, c in zip(base.tolist(), street.tolist(), num, bld, unit, room, grp, comm.tolist())]
    return np.array(out, dtype=object)


# --------------------------------------------------------------------------------------------
# The roster

ROSTER_TARGETS = {"城市低保": 183_028, "农村低保": 218_580, "特困供养": 43_038}
DISABILITY = ["肢体", "智力", "视力", "听力", "言语", "精神", "多重"]
LEVEL = ["一级", "二级", "三级", "四级"]


def build_roster(ctx: Ctx, geo: Geo, people: People, households: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Roster households (one row per household) and roster rows (one per member)."""
    rng = ctx.sub("roster")
    H = len(households)
    comm = geo.l_comm[households["loc"].to_numpy()]
    size = households["size"].to_numpy()
    start = households["start"].to_numpy()
    head = start  # first person of each household is the head
    head_age = people.age[head]
    used = np.zeros(H, dtype=bool)
    hh_rows = []

    def take(cands, target, kdist):
        cands = cands[~used[cands]]
        cands = rng.permutation(cands)
        k = rng.choice(np.arange(1, len(kdist) + 1), size=len(cands), p=np.asarray(kdist) / np.sum(kdist))
        k = np.minimum(k, size[cands])
        cs = np.cumsum(k)
        n = int(np.searchsorted(cs, target)) + 1
        if n > len(cands):
            raise RuntimeError("not enough households for the roster")
        sel = cands[:n]
        kk = k[:n].copy()
        kk[-1] -= cs[n - 1] - target
        keep = kk > 0
        used[sel] = True
        return sel[keep], kk[keep]

    targets = {c: int(round(v * ctx.scale)) for c, v in ROSTER_TARGETS.items()}
    # 特困供养: people living alone, mostly old and rural
    tk_c = np.flatnonzero((size == 1) & ((head_age >= 60) | (rng.random(H) < 0.15)))
    tk_c = np.concatenate([tk_c[~comm[tk_c]], tk_c[comm[tk_c]][: max(1, len(tk_c) // 6)]])
    sel_t, k_t = take(tk_c, targets["特困供养"], [1.0])
    sel_u, k_u = take(np.flatnonzero(comm), targets["城市低保"], [0.40, 0.30, 0.20, 0.08, 0.02])
    sel_r, k_r = take(np.flatnonzero(~comm), targets["农村低保"], [0.35, 0.30, 0.22, 0.10, 0.03])
    for cat, sel, k in (("城市低保", sel_u, k_u), ("农村低保", sel_r, k_r), ("特困供养", sel_t, k_t)):
        hh_rows.append(pd.DataFrame({"hukou_hh": sel, "category": cat, "k": k}))
    rh = pd.concat(hh_rows, ignore_index=True)
    rh = rh.iloc[rng.permutation(len(rh))].reset_index(drop=True)
    n_hh = len(rh)
    hk = rh["hukou_hh"].to_numpy()
    k = rh["k"].to_numpy()
    rh["dist"] = households["dist"].to_numpy()[hk]
    rh["town"] = households["town"].to_numpy()[hk]
    rh["loc"] = households["loc"].to_numpy()[hk]
    rh["address"] = households["address"].to_numpy()[hk]
    admin = np.asarray(geo.d_admin, dtype=object)[rh["dist"].to_numpy()]
    lo, hi = ctx.shard_range(10**9)
    if n_hh >= hi - lo:
        raise ValueError(f"{n_hh} roster households do not fit this shard's household codes")
    seq = lo + rng.permutation(n_hh) + 1
    rh["code"] = admin + np.char.zfill(seq.astype(str), 9).astype(object)
    rh["mclass"] = np.where(rh["category"] == "特困供养", "A", np.where(rng.random(n_hh) < 0.55, "A", "B"))
    days = (ctx.D - np.datetime64("2012-01-01")).astype(int) - 10
    rh["start_date"] = np.datetime64("2012-01-01") + rng.integers(0, days, n_hh).astype("timedelta64[D]")
    # member rows: first k people of the hukou household
    hidx = np.repeat(np.arange(n_hh), k)
    off = np.arange(k.sum()) - np.repeat(np.concatenate([[0], np.cumsum(k)[:-1]]), k)
    pid = start[hk][hidx] + off
    rows = pd.DataFrame({"hh": hidx, "pid": pid})
    rows["rel"] = pd.Series(people.rel[pid]).map(REL_TO_ROSTER).fillna("其他").to_numpy()
    # a few members whose hukou is elsewhere (an old parent registered in another household)
    cross = np.flatnonzero((k[hidx] >= 2) & (off == k[hidx] - 1) & (rng.random(len(rows)) < 0.03))
    if len(cross):
        free_heads = start[~used & (head_age >= 62)]
        free_dist = households["dist"].to_numpy()[~used & (head_age >= 62)]
        rd = rh["dist"].to_numpy()[hidx[cross]]
        repl = np.full(len(cross), -1)
        for di in np.unique(rd):
            pool = free_heads[free_dist == di]
            m = rd == di
            if len(pool) >= m.sum():
                repl[m] = rng.choice(pool, m.sum(), replace=False)
        ok = repl >= 0
        cross, repl = cross[ok], repl[ok]
        rows.loc[cross, "pid"] = repl
        rows.loc[cross, "rel"] = np.where(people.male[repl], "父", "母")
        used[people.hh[repl]] = True
    n = len(rows)
    dis = rng.random(n) < 0.16
    rows["disability"] = np.where(dis, np.asarray(DISABILITY, dtype=object)[rng.integers(0, 7, n)]
                                  + np.asarray(LEVEL, dtype=object)[rng.integers(0, 4, n)], None)
    rows["illness"] = np.where(rng.random(n) < 0.08, "是", "否")
    people.roster[rows["pid"].to_numpy()] = True
    # households touched by the roster (any member's 户号)
    touched = np.zeros(len(households), dtype=bool)
    touched[people.hh[rows["pid"].to_numpy()]] = True
    households["roster_touched"] = touched
    rh["n_members"] = rows.groupby("hh").size().to_numpy()
    return rh.drop(columns=["k"]), rows
