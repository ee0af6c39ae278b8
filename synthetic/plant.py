"""Planted true cases and look-alikes for R01–R09.

Every planted record is a fact of the world, added to the clean source tables; the truth is computed
afterwards from the tables alone (truth.py), so a planted case that does not hold would simply not
appear there (tests check that every planted case does).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .common import Ctx, d64
from .economy import BANKS, C, PENSION, RENT, WAGE, present
from .world import Geo, People

RULES = ["R01", "R02", "R03", "R04", "R05", "R06", "R07", "R08", "R09"]
TD = np.timedelta64


def days(n) -> np.timedelta64:
    return np.timedelta64(int(n), "D")


class Planter:
    def __init__(self, ctx: Ctx, geo: Geo, people: People, households: pd.DataFrame, rh: pd.DataFrame,
                 rows: pd.DataFrame, dates: dict):
        self.ctx = ctx
        self.geo = geo
        self.p = people
        self.households = households
        self.rh = rh
        self.rows = rows
        self.dates = {k: d64(v) for k, v in dates.items()}
        self.rng = ctx.sub("plant")
        self.K = max(15, int(round(250 * ctx.scale)))
        self.L = 10 * self.K
        self.used = np.zeros(len(rh), dtype=bool)
        self.planted: list[dict] = []     # true cases as planted (for checks)
        self.lookalikes: list[dict] = []
        self.tables: dict[str, list] = {}
        self.names_by_surname = None

    # ---------------------------------------------------------------- helpers
    def add(self, table: str, **row) -> None:
        self.tables.setdefault(table, []).append(row)

    def case(self, hh: int, rule: str, pid: int, how: str) -> None:
        self.planted.append({"hh": hh, "rule": rule, "pid": pid, "how": how})

    def look(self, hh: int, rule: str, pid: int, kind: str) -> None:
        self.lookalikes.append({"hh": hh, "rule": rule, "pid": pid, "kind": kind})

    def prepare(self) -> None:
        """Index members, relatives and the pools of free people (after the R08 changes)."""
        p = self.p
        p.roster[:] = False
        p.roster[self.rows["pid"].to_numpy()] = True
        self.members = group_lists(self.rows["hh"].to_numpy(), self.rows["pid"].to_numpy())
        touched = np.zeros(len(self.households), dtype=bool)
        touched[p.hh[self.rows["pid"].to_numpy()]] = True
        self.households["roster_touched"] = touched
        self.relatives = relatives_of(p, self.rows)
        ok_rel = present(p, self.ctx)[self.relatives["pid"].to_numpy()] & \
            (p.age[self.relatives["pid"].to_numpy()] >= 20) & ~p.roster[self.relatives["pid"].to_numpy()]
        rel = self.relatives[ok_rel]
        self.rel_of = group_lists(rel["hh"].to_numpy(), rel["pid"].to_numpy())
        pres = present(p, self.ctx)
        hh_touched = np.where(p.hh >= 0, touched[np.maximum(p.hh, 0)], False)
        free = np.flatnonzero(pres & p.in_hukou & ~p.roster & ~hh_touched & (p.age >= 22) & (p.age <= 68))
        self.free = list(self.rng.permutation(free))
        self.free_set_pos = 0

    def free_person(self, male: bool | None = None, loc: int | None = None) -> int:
        p = self.p
        for _ in range(200000):
            if self.free_set_pos >= len(self.free):
                raise RuntimeError("ran out of free people")
            c = int(self.free[self.free_set_pos])
            self.free_set_pos += 1
            if p.reserved[c]:
                continue
            if male is not None and bool(p.male[c]) != male:
                self.free.append(c)
                continue
            p.reserved[c] = True
            return c
        raise RuntimeError("no free person")

    def namesake(self, m: int) -> int:
        """A different person (not a member, not a relative) who gets member m's name."""
        q = self.free_person(male=bool(self.p.male[m]))
        self.p.name[q] = self.p.name[m]
        self.p.name_nongbk[q] = self.p.name_nongbk[m]
        return q

    def take(self, n: int, pred=None, min_members: int = 1, need_rel: bool = False, need_adult: bool = True,
             category: str | None = None) -> list[int]:
        out = []
        order = self.order
        for h in order:
            if len(out) >= n:
                break
            h = int(h)
            if self.used[h]:
                continue
            mem = self.members.get(h, [])
            if len(set(mem)) < min_members:
                continue
            if need_adult and not self.adults(h):
                continue
            if need_rel and not self.rel_of.get(h):
                continue
            if category and self.rh["category"].iat[h] != category:
                continue
            if pred is not None and not pred(h):
                continue
            self.used[h] = True
            for q in mem:
                self.p.reserved[q] = True
            out.append(h)
        return out

    def adults(self, h: int) -> list[int]:
        p = self.p
        return [q for q in dict.fromkeys(self.members.get(h, [])) if p.age[q] >= 18 and p.status[q] == 0
                and np.isnat(p.death[q])]

    def adult(self, h: int) -> int:
        a = self.adults(h)
        return int(a[self.rng.integers(0, len(a))])

    def pick(self, seq):
        return seq[int(self.rng.integers(0, len(seq)))]

    def split_kinds(self, n: int, kinds: list[str]) -> list[str]:
        return [kinds[i % len(kinds)] for i in range(n)]

    def standard(self, h: int) -> float:
        return self.ctx.policy.standard(self.rh["category"].iat[h], self.geo.districts[self.rh["dist"].iat[h]])

    def size(self, h: int) -> int:
        return len(self.members[h]) if h in self.members else 0

    def rand_date(self, lo: int, hi: int) -> np.datetime64:
        """A day between D-lo and D-hi (lo > hi)."""
        return self.ctx.D - days(self.rng.integers(hi, lo + 1))

    # ---------------------------------------------------------------- R08 first (changes the roster)
    def plant_r08(self) -> None:
        self.rng = self.ctx.sub("plant:R08")
        rng = self.rng
        K, L = self.K, self.L
        rows = self.rows
        rh = self.rh
        n_hh = len(rh)
        self.order = rng.permutation(n_hh)
        mem = group_lists(rows["hh"].to_numpy(), rows["pid"].to_numpy())
        self.members = mem
        cats = rh["category"].to_numpy()
        dist = rh["dist"].to_numpy()
        pool = [int(h) for h in self.order]
        by_cat = {c: [h for h in pool if cats[h] == c] for c in ("城市低保", "农村低保", "特困供养")}
        multi = [h for h in pool if len(mem[h]) >= 2]
        idx = {"multi": 0, "tk": 0, "any": 0}

        def nxt(lst, key, cond=lambda h: True):
            while idx[key] < len(lst):
                h = lst[idx[key]]
                idx[key] += 1
                if not self.used[h] and cond(h):
                    self.used[h] = True
                    return h
            return None

        n_cases = 0
        variant = 0
        where = {}
        for i, (hh_, q) in enumerate(zip(rows["hh"].to_numpy(), rows["pid"].to_numpy())):
            where.setdefault((int(hh_), int(q)), i)
        rel_col = rows.columns.get_loc("rel")
        pid_col = rows.columns.get_loc("pid")
        while n_cases < K:
            v = variant % 3
            variant += 1
            if v == 0:      # same person in two households
                a = nxt(multi, "multi")
                b = nxt(multi, "multi", lambda h: dist[h] == dist[a] if a is not None else True)
                if a is None or b is None:
                    break
                x = mem[a][-1]
                y = mem[b][-1]
                ri = where[(b, y)]
                rows.iat[ri, pid_col] = x
                rows.iat[ri, rel_col] = "其他"
                self.case(a, "R08", x, "two_households")
                self.case(b, "R08", x, "two_households")
                n_cases += 2
            elif v == 1:    # twice in one household
                a = nxt(multi, "multi")
                if a is None:
                    break
                x = mem[a][0]
                y = mem[a][-1]
                ri = where[(a, y)]
                rows.iat[ri, pid_col] = x
                rows.iat[ri, rel_col] = rows.iat[where[(a, x)], rel_col] if rng.random() < 0.25 else "其他"
                self.case(a, "R08", x, "twice_in_household")
                n_cases += 1
            else:           # dibao and tekun
                a = nxt(multi, "multi", lambda h: cats[h] != "特困供养")
                b = nxt(by_cat["特困供养"], "tk", lambda h: dist[h] == dist[a] if a is not None else True)
                if a is None or b is None:
                    break
                x = mem[a][-1]
                y = mem[b][0]
                ri = where[(b, y)]
                rows.iat[ri, pid_col] = x
                rows.iat[ri, rel_col] = "户主"
                self.case(a, "R08", x, "dibao_and_tekun")
                self.case(b, "R08", x, "dibao_and_tekun")
                n_cases += 2
        # namesakes in two households (different people, same name)
        n_look = 0
        while n_look < L:
            a = nxt(pool, "any")
            if a is None:
                break
            b = nxt(pool, "any")
            if b is None:
                break
            x = mem[a][0]
            cand = [q for q in mem[b] if self.p.male[q] == self.p.male[x]]
            if not cand:
                self.used[b] = False
                continue
            y = cand[0]
            self.p.name[y] = self.p.name[x]
            self.p.name_nongbk[y] = self.p.name_nongbk[x]
            self.look(a, "R08", x, "namesake")
            self.look(b, "R08", y, "namesake")
            n_look += 2
        # all members of R08 households are reserved (no background assets)
        for h in np.flatnonzero(self.used):
            for q in mem[h]:
                self.p.reserved[q] = True
        self.p.reserved[rows["pid"].to_numpy()[self.used[rows["hh"].to_numpy()]]] = True
        self.rows = rows

    # ---------------------------------------------------------------- R01 deceased, R09 moved
    def plant_r01(self) -> None:
        self.rng = self.ctx.sub("plant:R01")
        p = self.p
        hk = self.dates["hukou"]
        for i, h in enumerate(self.take(self.K, need_adult=False)):
            m = int(self.pick(self.members[h]))
            v = i % 4
            if v in (0, 1):      # cremation record and hukou deregistered
                death = self.rand_date(400, 30)
                self.cremate(m, death)
                dereg = death + days(self.rng.integers(5, 40))
                if dereg <= hk:
                    p.status[m], p.dereg[m] = 1, dereg
                how = "cremation+hukou"
            elif v == 2:         # cremation only, hukou not yet deregistered
                death = self.rand_date(150, 30)
                self.cremate(m, death)
                how = "cremation"
            else:                # hukou only
                dereg = self.rand_date(400, 30)
                death = dereg - days(self.rng.integers(3, 20))
                p.status[m], p.dereg[m] = 1, dereg
                how = "hukou"
            p.death[m] = death
            self.case(h, "R01", m, how)
        kinds = self.split_kinds(self.L, ["death_in_grace", "death_in_grace", "namesake", "wrong_person_id",
                                          "future_delivery", "relative_died", "hukou_grace"])
        hs = self.take(self.L, need_adult=False)
        for h, kind in zip(hs, kinds):
            m = int(self.pick(self.members[h]))
            if kind == "relative_died" and not self.rel_of.get(h):
                kind = "death_in_grace"
            if kind == "death_in_grace":
                death = self.rand_date(29, 8)
                p.death[m] = death
                self.cremate(m, death)
            elif kind == "hukou_grace":
                dereg = self.rand_date(29, 4)
                p.death[m] = dereg - days(2)
                p.status[m], p.dereg[m] = 1, dereg
                kind = "death_in_grace"
            elif kind == "namesake":
                q = self.namesake(m)
                death = self.rand_date(400, 31)
                self.kill(q, death)
            elif kind == "wrong_person_id":
                q = self.free_person()
                death = self.rand_date(400, 31)
                self.kill(q, death, disp=m)
            elif kind == "future_delivery":
                death = self.rand_date(200, 40)
                p.death[m] = death
                self.cremate(m, death, recorded=self.ctx.D + days(self.rng.integers(1, 5)))
            elif kind == "relative_died":
                r = int(self.pick(self.rel_of[h]))
                p.reserved[r] = True
                self.kill(r, self.rand_date(400, 31))
            self.look(h, "R01", m, kind)

    def cremate(self, pid: int, death, recorded=None, disp: int = -1) -> None:
        crem = death + days(self.rng.integers(1, 5))
        home = {"东宝区": "荆门市殡仪馆", "京山市": "京山市殡仪馆", "沙洋县": "沙洋县殡仪馆", "钟祥市": "钟祥市殡仪馆"}.get(
            self.geo.districts[self.p.dist[pid]], "荆门市殡仪馆")
        rec = recorded if recorded is not None else crem
        self.add("cremation", pid=pid, death=death, cremated=crem, home=home, recorded=rec, disp=disp,
                 forced="wrong_person_id" if disp >= 0 else "")

    def kill(self, pid: int, death, disp: int = -1) -> None:
        p = self.p
        p.death[pid] = death
        self.cremate(pid, death, disp=disp)
        dereg = death + days(self.rng.integers(5, 40))
        if dereg <= self.dates["hukou"]:
            p.status[pid], p.dereg[pid] = 1, dereg

    def plant_r09(self) -> None:
        self.rng = self.ctx.sub("plant:R09")
        p = self.p
        for i, h in enumerate(self.take(self.K)):
            m = self.adult(h)
            p.status[m] = 2 if i % 6 else 4
            p.dereg[m] = self.rand_date(700, 90)
            self.case(h, "R09", m, "moved" if p.status[m] == 2 else "emigrated")
        kinds = self.split_kinds(self.L, ["move_in_grace", "move_in_grace", "military", "relative_moved", "namesake"])
        for h, kind in zip(self.take(self.L), kinds):
            m = self.adult(h)
            if kind == "relative_moved" and not self.rel_of.get(h):
                kind = "move_in_grace"
            if kind == "move_in_grace":
                p.status[m] = 2 if self.rng.random() < 0.85 else 4
                p.dereg[m] = self.rand_date(89, 4)
            elif kind == "military":
                p.status[m] = 3
                p.dereg[m] = self.rand_date(700, 4)
            elif kind == "relative_moved":
                r = int(self.pick(self.rel_of[h]))
                p.reserved[r] = True
                p.status[r] = 2
                p.dereg[r] = self.rand_date(700, 90)
            elif kind == "namesake":
                q = self.namesake(m)
                p.status[q] = 2
                p.dereg[q] = self.rand_date(700, 90)
            self.look(h, "R09", m, kind)

    # ---------------------------------------------------------------- R02 vehicles
    def vehicle(self, pid: int, kind: str = "car", zt: str | None = None, reg=None, org: int = -1,
                disp: int = -1, held: bool = True) -> None:
        """Recorded as parameters; economy.vehicle_rows renders all planted vehicles at once."""
        if reg is not None:
            reg = np.datetime64(reg, "s") + np.timedelta64(int(self.rng.integers(8 * 3600, 17 * 3600)), "s")
        self.add("vehicle", pid=pid, kind=kind, held=held, zt=zt, reg=reg, org=org, disp=disp,
                 forced="wrong_person_id" if disp >= 0 else "")

    def plant_r02(self, n_orgs: int) -> None:
        self.rng = self.ctx.sub("plant:R02")
        held_zt = ["A"] * 8 + ["G", "Q", "AG", "GQ", "D", "K"]
        for i, h in enumerate(self.take(self.K)):
            m = self.adult(h)
            kind = ["car", "car", "car", "nev", "truck"][i % 5]
            reg = None
            if i % 6 == 0 and self.p.birth_year[m] <= 1976:
                reg = np.datetime64("1996-03-01") + days(self.rng.integers(0, 1400))
            self.vehicle(m, kind, zt=self.pick(held_zt), reg=reg)
            self.case(h, "R02", m, f"{kind}")
        kinds = self.split_kinds(self.L, ["namesake", "deregistered", "transferred", "scrapped", "stolen",
                                          "forced_cancel", "exempt_plate", "exempt_plate", "org_owned",
                                          "registered_after_as_of", "relative", "wrong_person_id"])
        for h, kind in zip(self.take(self.L), kinds):
            m = self.adult(h)
            if kind == "relative" and not self.rel_of.get(h):
                kind = "exempt_plate"
            if kind == "namesake":
                self.vehicle(self.namesake(m), "car", zt="A")
            elif kind in ("deregistered", "transferred", "scrapped", "stolen", "forced_cancel"):
                zt = {"deregistered": "E", "transferred": "B", "scrapped": "P", "stolen": "C",
                      "forced_cancel": "M"}[kind]
                if self.rng.random() < 0.2:
                    zt = zt + "G"
                self.vehicle(m, "car", zt=zt, held=False)
            elif kind == "exempt_plate":
                self.vehicle(m, self.pick(["moto", "light", "low", "tractor"]), zt=self.pick(["A", "A", "G", "Q"]))
            elif kind == "org_owned":
                self.vehicle(-1, "car", zt="A", org=int(self.rng.integers(0, n_orgs)))
                self.add_entity(m, "个体工商户", "经营者", capital=self.pick([np.nan, 3.0, 5.0, 10.0]))
                self.tables["vehicle"][-1]["org"] = ("planted", len(self.tables["entities"]) - 1)
                self.tables["vehicle"][-1]["pid"] = -1
            elif kind == "registered_after_as_of":
                self.vehicle(m, "car", zt="A", reg=self.ctx.D + days(self.rng.integers(1, 20)))
            elif kind == "relative":
                r = int(self.pick(self.rel_of[h]))
                self.p.reserved[r] = True
                self.vehicle(r, "car", zt="A")
            elif kind == "wrong_person_id":
                self.vehicle(self.free_person(), "car", zt="A", disp=m)
            self.look(h, "R02", m, kind)

    # ---------------------------------------------------------------- R03 property
    def unit(self, owners: list[int], use: str, status: str = "现势", co: str | None = None, reg=None,
             unit: int | None = None, disp: int = -1) -> int:
        """A property record; units are keys here and get their 28-character numbers when assembled."""
        hh = int(self.p.hh[owners[0]])
        dist = int(self.p.dist[owners[0]])
        town = int(self.geo.l_town[self.p.loc[owners[0]]]) if self.p.loc[owners[0]] >= 0 else 0
        if unit is None:
            self.unit_seq += 1
            unit = self.unit_seq
        if reg is None:
            reg = self.dates["property"] - days(self.rng.integers(30, 2500))
        o = list(owners) + [-1, -1, -1]
        if co is None:
            co = "单独所有" if len(owners) == 1 else "共同共有"
        self.add("property", o1=o[0], o2=o[1], o3=o[2], org=-1, use=use, co=co, hh=hh, dist=dist, town=town,
                 status=status, unit_key=unit, reg=np.datetime64(reg, "D"), disp=disp,
                 forced="wrong_person_id" if disp >= 0 else "")
        return unit

    def plant_r03(self) -> None:
        self.rng = self.ctx.sub("plant:R03")
        self.unit_seq = 0
        for i, h in enumerate(self.take(self.K)):
            a = self.adults(h)
            m = self.adult(h)
            v = i % 4
            if v == 1 and len(a) < 2:
                v = 0
            if v == 0:
                self.unit([m], "住宅"); self.unit([m], "住宅"); how = "two_homes"
            elif v == 1:
                m2 = [q for q in a if q != m][0]
                self.unit([m], "住宅"); self.unit([m2], "住宅"); how = "two_members_two_homes"
            elif v == 2:
                self.unit([m], self.pick(["商业", "商业", "办公", "工业"])); how = "commercial"
            else:
                q = self.free_person()
                self.unit([m, q], "住宅", co="按份共有"); self.unit([m], "住宅"); how = "share_and_home"
            self.case(h, "R03", m, how)
        kinds = self.split_kinds(self.L, ["single_home", "co_owned_one_unit", "parking_space", "other_use",
                                          "superseded", "cancelled", "registered_after_as_of", "relative",
                                          "namesake", "wrong_person_id"])
        for h, kind in zip(self.take(self.L), kinds):
            a = self.adults(h)
            m = self.adult(h)
            if kind == "co_owned_one_unit" and len(a) < 2:
                kind = "single_home"
            if kind == "relative" and not self.rel_of.get(h):
                kind = "parking_space"
            if kind == "single_home":
                self.unit([m], "住宅")
            elif kind == "co_owned_one_unit":
                m2 = [q for q in a if q != m][0]
                self.unit([m, m2], "住宅", co="共同共有")
            elif kind == "parking_space":
                self.unit([m], "住宅"); self.unit([m], "车位")
            elif kind == "other_use":
                self.unit([m], "住宅"); self.unit([m], "其他")
            elif kind == "superseded":
                self.unit([m], "住宅")
                u = self.unit([m], "住宅", status="历史", reg=self.dates["property"] - days(self.rng.integers(900, 3000)))
                self.unit([self.free_person()], "住宅", unit=u)
            elif kind == "cancelled":
                self.unit([m], "住宅"); self.unit([m], self.pick(["商业", "住宅"]), status="注销")
            elif kind == "registered_after_as_of":
                self.unit([m], "住宅"); self.unit([m], "住宅", reg=self.ctx.D + days(self.rng.integers(1, 30)))
            elif kind == "relative":
                r = int(self.pick(self.rel_of[h]))
                self.p.reserved[r] = True
                self.unit([r], "商业"); self.unit([r], "住宅"); self.unit([m], "住宅")
            elif kind == "namesake":
                q = self.namesake(m)
                self.unit([q], "住宅"); self.unit([q], "住宅")
            elif kind == "wrong_person_id":
                self.unit([m], "住宅")
                self.unit([self.free_person()], "住宅", disp=m)
            self.look(h, "R03", m, kind)

    # ---------------------------------------------------------------- R04 business
    def add_entity(self, pid: int, etype: str, role: str, capital=np.nan, status: str = "存续",
                   others: list[tuple[int, str]] = (), disp: int = -1) -> None:
        rng = self.rng
        est = self.dates["business"] - days(rng.integers(60, 4000))
        closed = np.datetime64("NaT")
        if status != "存续":
            closed = est + days(rng.integers(30, max(31, int((self.dates["business"] - est).astype(int)) - 5)))
        dist = int(self.p.dist[pid]) if pid >= 0 else 0
        self.add("entities", etype=etype, capital=capital, est=est, status=status, closed=closed, dist=dist,
                 owner=pid, owner_name=self.p.name[pid] if pid >= 0 else "")
        e = len(self.tables["entities"]) - 1
        sub = capital if role in ("股东", "投资人") else np.nan
        self.add("bpersons", ent=("planted", e), pid=pid if disp < 0 else pid, role=role, sub=sub, org=-1,
                 disp=disp, forced="wrong_person_id" if disp >= 0 else "")
        for q, r in others:
            self.add("bpersons", ent=("planted", e), pid=q, role=r, sub=np.nan, org=-1, disp=-1, forced="")

    def plant_r04(self) -> None:
        self.rng = self.ctx.sub("plant:R04")
        variants = [("有限责任公司", "法定代表人", lambda: float(self.rng.integers(30, 1000))),
                    ("有限责任公司", "股东", lambda: float(self.rng.integers(30, 1000))),
                    ("个体工商户", "经营者", lambda: float(self.rng.integers(11, 80))),
                    ("个人独资企业", "投资人", lambda: float(self.rng.integers(5, 200))),
                    ("合伙企业", "执行事务合伙人", lambda: float(self.rng.integers(50, 800))),
                    ("农民专业合作社", "法定代表人", lambda: float(self.rng.integers(20, 300)))]
        for i, h in enumerate(self.take(self.K)):
            m = self.adult(h)
            et, role, cap = variants[i % len(variants)]
            others = []
            if role == "股东":
                others = [(self.free_person(), "法定代表人"), (self.free_person(), "监事")]
            self.add_entity(m, et, role, capital=cap(), others=others)
            self.case(h, "R04", m, f"{et}/{role}")
        kinds = self.split_kinds(self.L, ["small_getihu", "small_getihu", "small_coop", "supervisor_only",
                                          "supervisor_only", "revoked", "cancelled", "namesake", "relative",
                                          "wrong_person_id"])
        for h, kind in zip(self.take(self.L), kinds):
            m = self.adult(h)
            if kind == "relative" and not self.rel_of.get(h):
                kind = "small_getihu"
            if kind == "small_getihu":
                self.add_entity(m, "个体工商户", "经营者", capital=self.pick([np.nan, np.nan, 1.0, 2.0, 5.0, 10.0]))
            elif kind == "small_coop":
                self.add_entity(m, "农民专业合作社", "法定代表人", capital=self.pick([np.nan, 3.0, 10.0]))
            elif kind == "supervisor_only":
                role = self.pick(["监事", "监事", "董事", "经理"])
                boss = self.free_person()
                self.add_entity(boss, "有限责任公司", "法定代表人", capital=float(self.rng.integers(50, 500)),
                                others=[(m, role), (boss, "股东")])
                kind = "supervisor_only"
            elif kind in ("revoked", "cancelled"):
                self.add_entity(m, "有限责任公司", "法定代表人", capital=float(self.rng.integers(10, 300)),
                                status="吊销" if kind == "revoked" else "注销")
            elif kind == "namesake":
                self.add_entity(self.namesake(m), "有限责任公司", "法定代表人", capital=float(self.rng.integers(10, 300)))
            elif kind == "relative":
                r = int(self.pick(self.rel_of[h]))
                self.p.reserved[r] = True
                self.add_entity(r, "有限责任公司", "法定代表人", capital=float(self.rng.integers(10, 300)))
            elif kind == "wrong_person_id":
                self.add_entity(self.free_person(), "有限责任公司", "法定代表人",
                                capital=float(self.rng.integers(10, 300)), disp=m)
            self.look(h, "R04", m, kind)

    # ---------------------------------------------------------------- R05 payroll
    def payroll(self, pid: int, status: str | None = None, disp: int = -1) -> None:
        status = status or ("在职" if self.p.age[pid] < 60 else "离退休")
        self.add("payroll", pid=pid, employer=int(self.rng.integers(0, self.n_pub)), status=status,
                 salary=int(self.rng.integers(3500, 11000)) * C, disp=disp,
                 forced="wrong_person_id" if disp >= 0 else "")

    def plant_r05(self, n_pub: int) -> None:
        self.rng = self.ctx.sub("plant:R05")
        self.n_pub = n_pub
        p = self.p
        hs_rel = self.take(int(self.K * 0.65), need_rel=True)
        for h in hs_rel:
            r = int(self.pick(self.rel_of[h]))
            p.reserved[r] = True
            self.payroll(r)
            self.case(h, "R05", int(self.members[h][0]), "relative")
        for h in self.take(self.K - len(hs_rel)):
            m = self.adult(h)
            self.payroll(m)
            self.case(h, "R05", m, "member")
        # look-alikes
        loc_free = {}
        pres = present(p, self.ctx)
        touched = self.households["roster_touched"].to_numpy()
        cand = np.flatnonzero(pres & p.in_hukou & ~p.roster & (p.age >= 22) & (p.age <= 70) & ~p.reserved
                              & ~touched[np.maximum(p.hh, 0)])
        cand = cand[self.rng.permutation(len(cand))]
        loc_free = group_lists(p.loc[cand], cand)
        loc_pos = {}
        kinds = self.split_kinds(self.L, ["surname_village_payroll", "surname_village_payroll", "namesake",
                                          "wrong_person_id"])
        sur = sorted(self.ctx.names["surnames"].keys(), key=len, reverse=True)
        for h, kind in zip(self.take(self.L), kinds):
            m = self.adult(h)
            head = int(self.members[h][0])
            if kind == "surname_village_payroll":
                lst = loc_free.get(int(p.loc[head]), [])
                i = loc_pos.get(int(p.loc[head]), 0)
                while i < len(lst) and p.reserved[lst[i]]:
                    i += 1
                loc_pos[int(p.loc[head])] = i + 1
                if i >= len(lst):
                    kind = "namesake"
                else:
                    q = int(lst[i])
                    p.reserved[q] = True
                    s_head = surname_of(p.name[head], sur)
                    s_q = surname_of(p.name[q], sur)
                    if "·" not in p.name[head] and "·" not in p.name[q]:
                        p.name[q] = s_head + p.name[q][len(s_q):]
                        p.name_nongbk[q] = p.name_nongbk[q] or p.name_nongbk[head]
                    self.payroll(q)
                    self.look(h, "R05", head, kind)
                    continue
            if kind == "namesake":
                self.payroll(self.namesake(m))
            elif kind == "wrong_person_id":
                self.payroll(self.free_person(), disp=m)
            self.look(h, "R05", m, kind)

    # ---------------------------------------------------------------- R06 income
    def income(self, pid: int, channel: str, monthly_cents: int, disp: int = -1, payer: int = 10,
               last_offset: int = 1, hf_status: str = "正常") -> None:
        months = self.ctx.window
        forced = "wrong_person_id" if disp >= 0 else ""
        emp = self.employer()
        if channel == "tax_wage":
            for mi in months:
                self.add("tax", pid=pid, item=WAGE, m0=mi, m1=mi, amount=monthly_cents, agent=emp,
                         disp=disp, forced=forced)
        elif channel == "rent":
            for mi in months:
                self.add("tax", pid=pid, item=RENT, m0=mi, m1=mi, amount=monthly_cents, agent=-1,
                         disp=disp, forced=forced)
        elif channel in ("si_base", "si_flex", "si_residents"):
            schemes = {"si_base": (110, 310), "si_flex": (110, 310), "si_residents": (170, 390)}[channel]
            for mi in months:
                for sc in schemes:
                    self.add("si_c", pid=pid, scheme=sc, month=mi, base=monthly_cents,
                             employer=emp if payer in (10, 20, 30) else -1, payer=payer, status=1,
                             disp=disp, forced=forced)
        elif channel == "hf":
            cur = months[-1] + 1
            self.add("hf", pid=pid, employer=emp, base=monthly_cents, personal=monthly_cents // 10 // C * C,
                     unit=monthly_cents // 10 // C * C, status=hf_status, last=cur - last_offset,
                     balance=int(self.rng.integers(5000, 90000)) * C, disp=disp, forced=forced)
        elif channel == "pension":
            for mi in months:
                self.add("si_b", pid=pid, scheme=110, btype=PENSION, month=mi, amount=monthly_cents,
                         disp=disp, forced=forced)

    def employer(self) -> int:
        return int(self.employers[int(self.rng.integers(0, len(self.employers)))])

    def plant_r06(self, employers) -> None:
        """employers: indexes into the employer names."""
        self.rng = self.ctx.sub("plant:R06")
        self.employers = employers
        rng = self.rng
        chans = ["tax_wage", "si_base", "hf", "pension", "rent", "tax_wage+si_base"]
        for i, h in enumerate(self.take(self.K)):
            m = self.adult(h)
            std = self.standard(h)
            n = self.size(h)
            total = rng.uniform(1.15, 1.8) * std * n          # household monthly income
            ch = chans[i % len(chans)]
            if ch in ("pension", "rent"):
                amount = int(round(total)) * C
                self.income(m, ch, amount)
            else:
                gross = int(np.ceil(total / 0.8)) * C
                for c in ch.split("+"):
                    self.income(m, c, gross)
            self.case(h, "R06", m, ch)
        kinds = self.split_kinds(self.L, ["just_under_limit", "just_under_limit", "residents_scheme",
                                          "flexible_employment", "hf_sealed", "hf_stale", "deduction_20pct",
                                          "scheme_once_per_month", "max_not_sum", "relative_income", "namesake",
                                          "wrong_person_id"])
        for h, kind in zip(self.take(self.L), kinds):
            m = self.adult(h)
            std = self.standard(h)
            n = self.size(h)
            high = int(np.ceil(rng.uniform(1.6, 3.0) * std * n / 0.8)) * C   # would flag if it counted
            if kind == "relative_income" and not self.rel_of.get(h):
                kind = "just_under_limit"
            if kind == "just_under_limit":
                self.income(m, "tax_wage", int(rng.uniform(0.80, 0.95) * std * n / 0.8) * C)
            elif kind == "residents_scheme":
                self.income(m, "si_residents", high, payer=70)
            elif kind == "flexible_employment":
                self.income(m, "si_flex", high, payer=60)
            elif kind == "hf_sealed":
                self.income(m, "hf", high, hf_status="封存", last_offset=int(rng.integers(6, 30)))
            elif kind == "hf_stale":
                self.income(m, "hf", high, last_offset=int(rng.integers(6, 14)))
            elif kind == "deduction_20pct":
                self.income(m, "tax_wage", int(rng.uniform(1.03, 1.18) * std * n) * C)
            elif kind == "scheme_once_per_month":
                self.income(m, "si_base", int(rng.uniform(0.6, 0.9) * std * n / 0.8) * C)
            elif kind == "max_not_sum":
                g = int(rng.uniform(0.6, 0.9) * std * n / 0.8) * C
                self.income(m, "tax_wage", g)
                self.income(m, "si_base", g)
            elif kind == "relative_income":
                r = int(self.pick(self.rel_of[h]))
                self.p.reserved[r] = True
                self.income(r, "tax_wage", high)
                self.income(r, "si_base", high)
            elif kind == "namesake":
                self.income(self.namesake(m), "tax_wage", high)
            elif kind == "wrong_person_id":
                self.income(self.free_person(), "tax_wage", high, disp=m)
            self.look(h, "R06", m, kind)

    # ---------------------------------------------------------------- R07 bank
    def accounts(self, pids: list[int], total_cents: int) -> None:
        rng = self.rng
        n = max(1, len(pids))
        k = int(rng.integers(n, n + 3))
        w = rng.random(k) + 0.1
        amounts = np.floor(total_cents * w / w.sum()).astype(np.int64)
        amounts[0] += total_cents - amounts.sum()
        types = list(BANKS.keys())
        at = rng.choice(len(types), k, p=[0.45, 0.3, 0.12, 0.05, 0.03, 0.05])
        for i in range(k):
            t = types[at[i]]
            inst = BANKS[t][int(rng.integers(0, len(BANKS[t])))]
            self.add("bank", pid=int(pids[i % n]), inst=inst, atype=t, balance=int(amounts[i]), disp=-1, forced="")

    def plant_r07(self) -> None:
        self.rng = self.ctx.sub("plant:R07")
        rng = self.rng
        for h in self.take(self.K):
            a = self.adults(h)
            lim = 24 * self.standard(h) * self.size(h)
            total = int(round(lim * rng.uniform(1.06, 2.5) * C))
            owners = a[: int(rng.integers(1, len(a) + 1))]
            self.accounts(owners, total)
            self.case(h, "R07", int(owners[0]), "balances")
        kinds = self.split_kinds(self.L, ["just_under_limit", "just_under_limit", "relative_accounts",
                                          "older_delivery"])
        self.older_bank = []
        for h, kind in zip(self.take(self.L), kinds):
            a = self.adults(h)
            m = int(a[0])
            lim = 24 * self.standard(h) * self.size(h)
            if kind == "relative_accounts" and not self.rel_of.get(h):
                kind = "just_under_limit"
            if kind == "just_under_limit":
                self.accounts(a, int(round(lim * rng.uniform(0.85, 0.97) * C)))
            elif kind == "relative_accounts":
                r = int(self.pick(self.rel_of[h]))
                self.p.reserved[r] = True
                self.accounts([r], int(round(lim * rng.uniform(2, 5) * C)))
                self.accounts([m], int(round(lim * rng.uniform(0.05, 0.3) * C)))
            elif kind == "older_delivery":
                self.accounts([m], int(round(lim * rng.uniform(0.1, 0.4) * C)))
                self.older_bank.append((m, int(round(lim * rng.uniform(1.5, 3) * C))))
            self.look(h, "R07", m, kind)

    # ---------------------------------------------------------------- all
    def frames(self) -> dict[str, pd.DataFrame]:
        return {k: pd.DataFrame(v) for k, v in self.tables.items()}


def group_lists(keys: np.ndarray, vals: np.ndarray) -> dict:
    """{key: [values in original order]} without a per-group pandas apply."""
    keys = np.asarray(keys)
    vals = np.asarray(vals)
    if not len(keys):
        return {}
    o = np.argsort(keys, kind="stable")
    k = keys[o]
    v = vals[o]
    cut = np.flatnonzero(k[1:] != k[:-1]) + 1
    starts = np.r_[0, cut]
    ends = np.r_[cut, len(k)]
    vl = v.tolist()
    return {int(k[a]): vl[a:b] for a, b in zip(starts, ends)}


def surname_of(name: str, surnames_long_first: list[str]) -> str:
    for s in surnames_long_first:
        if name.startswith(s):
            return s
    return name[:1]


def relatives_of(people: People, rows: pd.DataFrame) -> pd.DataFrame:
    """(hh, pid): people in the same 户号 as any member of roster household hh, members excluded."""
    mem = pd.DataFrame({"hh": rows["hh"].to_numpy(), "hukou_no": people.hukou_no[rows["pid"].to_numpy()]})
    mem = mem[mem["hukou_no"] >= 0].drop_duplicates()
    inh = np.flatnonzero(people.in_hukou)
    allp = pd.DataFrame({"hukou_no": people.hukou_no[inh], "pid": inh})
    rel = mem.merge(allp, on="hukou_no")[["hh", "pid"]]
    own = rows[["hh", "pid"]].drop_duplicates()
    rel = rel.merge(own, on=["hh", "pid"], how="left", indicator=True)
    return rel[rel["_merge"] == "left_only"][["hh", "pid"]].drop_duplicates().reset_index(drop=True)
