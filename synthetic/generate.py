"""Synthetic landing zone with planted ground truth: ``generate(out, as_of, scale, seed)``.

Builds a clean world (people, hukou, roster, assets, incomes, deaths), plants true cases and look-alikes
for every rule, computes the truth from the clean world with an independent implementation of
POLICY.md, then writes every source's deliveries with realistic defects (CONTRACT.md) and the truth
files beside them.

A world is held in memory while it is built (about 5 GiB at scale 1). A city above scale 1 is therefore
generated in shards of at most scale 1, each in its own process: every shard is a part of the same city
with its own people, households and roster, numbered from its own part of every identifier space (ID
sequence numbers, 户号, household codes, credit codes, unit numbers, plates), and writes its own part of
every delivery (``hukou-03of10.csv``). Manifests and truth files are merged at the end.
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from . import economy as eco
from .common import HERE, MAX_SHARDS, SOURCES, Ctx, Policy, d64, delivery_dates, load_yaml, policy_config
from .deliver import Deliverer, write_manifest
from .ids import make_usccs
from .plant import RULES, Planter
from .render import (render_bank, render_business, render_cremation, render_hf, render_hukou, render_payroll,
                     render_property, render_roster, render_si, render_tax, render_vehicle)
from .truth import compute_truth
from .world import Geo, build_people, build_roster

C = eco.C


def _tick(label: str, t0: list) -> None:
    """Phase timing on stderr when SYNTH_TIMING is set."""
    if os.environ.get("SYNTH_TIMING"):
        now = time.time()
        print(f"[synthetic] {label:<28} {now - t0[0]:7.2f}s", file=sys.stderr, flush=True)
        t0[0] = now


def _standards(ctx: Ctx, geo: Geo, rh: pd.DataFrame) -> np.ndarray:
    cache = {}
    out = np.empty(len(rh))
    for i, (c, d) in enumerate(zip(rh["category"].to_numpy(), rh["dist"].to_numpy())):
        if (c, d) not in cache:
            cache[(c, d)] = ctx.policy.standard(c, geo.districts[d])
        out[i] = cache[(c, d)]
    return out


def _roster_incomes(ctx: Ctx, people, rh: pd.DataFrame, rows: pd.DataFrame, std: np.ndarray,
                    reserved_hh: np.ndarray, employers: np.ndarray) -> dict:
    """Background incomes of roster households: mostly none or small, nearly always under the standard."""
    rng = ctx.sub("roster_income")
    months = ctx.window
    K = len(months)
    nh = len(rh)
    size = rows.groupby("hh").size().reindex(range(nh)).fillna(0).to_numpy()
    has = (rng.random(nh) < 0.35) & ~reserved_hh
    budget = rng.uniform(0.1, 0.72, nh) * std * size
    over = (rng.random(nh) < 0.0004) & ~reserved_hh
    budget[over] = rng.uniform(1.25, 2.0, over.sum()) * std[over] * size[over]
    has |= over
    r = rows.drop_duplicates("pid")
    r = r[has[r["hh"].to_numpy()]]
    age = people.age[r["pid"].to_numpy()]
    out = {"tax": [], "si_b": [], "si_c": []}
    # residents' pension for some elderly members
    old = r[(age >= 60) & (rng.random(len(r)) < 0.35)]
    amt = rng.integers(150, 261, len(old))
    old_hh = old["hh"].to_numpy()
    spent = pd.Series(amt, index=old_hh).groupby(level=0).sum()
    okp = spent.reindex(old_hh).to_numpy() <= budget[old_hh]
    old, amt = old[okp], amt[okp]
    out["si_b"].append(eco._monthly(old["pid"].to_numpy(), amt, 170, eco.PENSION, months))
    left = budget.copy()
    np.subtract.at(left, old["hh"].to_numpy(), amt)
    # one working member earns the rest
    work = r[(age >= 18) & (age <= 59)].drop_duplicates("hh")
    wh = work["hh"].to_numpy()
    net = left[wh]
    gross = net / 0.8
    wage = work[gross >= 1200]
    g = (gross[gross >= 1200] // 10 * 10).astype(np.int64)
    pi = np.repeat(np.arange(len(wage)), K)
    emp = employers[rng.integers(0, len(employers), len(wage))]
    out["tax"].append(pd.DataFrame({"pid": wage["pid"].to_numpy()[pi], "item": eco.WAGE,
                                    "m0": np.tile(months, len(wage)), "m1": np.tile(months, len(wage)),
                                    "amount": g[pi] * C, "agent": emp[pi]}))
    odd = work[(gross < 1200) & (gross >= 100)]
    og = gross[(gross < 1200) & (gross >= 100)]
    cnt = rng.integers(2, 5, len(odd))
    per = (og * K / cnt // 10 * 10).astype(np.int64)
    oi = np.repeat(np.arange(len(odd)), cnt)
    mm = months[rng.integers(0, K, len(oi))]
    out["tax"].append(pd.DataFrame({"pid": odd["pid"].to_numpy()[oi], "item": eco.LABOUR, "m0": mm, "m1": mm,
                                    "amount": per[oi] * C, "agent": -1}))
    # non-earning contributions: residents' schemes, some flexible employment
    rr = rows.drop_duplicates("pid")
    rr = rr[~reserved_hh[rr["hh"].to_numpy()]]
    a2 = people.age[rr["pid"].to_numpy()]
    res = rr[(a2 >= 16) & (a2 <= 59) & (rng.random(len(rr)) < 0.4)]
    out["si_c"].append(pd.DataFrame({"pid": res["pid"].to_numpy(), "scheme": 170,
                                     "month": months[rng.integers(0, K, len(res))], "base": 200 * C,
                                     "employer": -1, "payer": 70}))
    out["si_c"].append(pd.DataFrame({"pid": res["pid"].to_numpy(), "scheme": 390,
                                     "month": months[rng.integers(0, min(3, K), len(res))], "base": 380 * C,
                                     "employer": -1, "payer": 70}))
    fx = rr[(a2 >= 25) & (a2 <= 55) & (rng.random(len(rr)) < 0.01)]
    fi = np.repeat(np.arange(len(fx)), K)
    for sc in (110, 310):
        out["si_c"].append(pd.DataFrame({"pid": fx["pid"].to_numpy()[fi], "scheme": sc,
                                         "month": np.tile(months, len(fx)), "base": 3900 * C,
                                         "employer": -1, "payer": 60}))
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def _with_defaults(df: pd.DataFrame) -> pd.DataFrame:
    if "disp" not in df:
        df["disp"] = -1
    if "forced" not in df:
        df["forced"] = ""
    df["disp"] = df["disp"].fillna(-1).astype(np.int64)
    df["forced"] = df["forced"].fillna("").astype(object)
    return df


def _cat(*frames: pd.DataFrame) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    return _with_defaults(pd.concat(frames, ignore_index=True))


def shards_for(scale: float) -> int:
    """Shards of at most scale 1: one up to scale 1, ten at scale 10."""
    return max(1, math.ceil(round(float(scale), 6)))


def generate(out: Path, as_of: dt.date, scale: float, seed: int, truth_dir: Path | None = None,
             shards: int | None = None, jobs: int | None = None) -> dict:
    """Write a synthetic landing zone under ``out`` and its ground truth under ``truth_dir``
    (default: the sibling folder ``<out>.truth``). Returns a summary.

    ``shards`` (default: ``shards_for(scale)``) splits the city; ``jobs`` shards are generated at once
    (default: as many as the cores and the available memory allow).
    The same seed, scale, shards and as-of date give byte-identical files."""
    out = Path(out)
    truth_dir = Path(truth_dir) if truth_dir is not None else Path(str(out) + ".truth")
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of)
    shards = int(shards or shards_for(scale))
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be between 1 and {MAX_SHARDS}, not {shards}")
    _clean(out)
    if shards == 1:
        return _generate_world(out, as_of, float(scale), int(seed), truth_dir)
    return _generate_sharded(out, as_of, float(scale), int(seed), truth_dir, shards, jobs)


def _clean(out: Path) -> None:
    for s in SOURCES:
        shutil.rmtree(out / s, ignore_errors=True)
    for tmp in out.glob(".tmp*") if out.is_dir() else []:
        shutil.rmtree(tmp, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def _generate_world(out: Path, as_of: dt.date, scale: float, seed: int, truth_dir: Path,
                    shard: int = 0, shards: int = 1) -> dict:
    # plain Python string storage: this code moves millions of strings between numpy and pandas
    with pd.option_context("mode.string_storage", "python"):
        return _generate(out, as_of, scale, seed, truth_dir, shard, shards)


def _generate(out: Path, as_of: dt.date, scale: float, seed: int, truth_dir: Path, shard: int,
              shards: int) -> dict:
    t0 = time.time()
    clock = [t0]
    truth_dir.mkdir(parents=True, exist_ok=True)

    ctx = Ctx(as_of=as_of, scale=float(scale), seed=int(seed),
              rng=np.random.default_rng([seed, shard] if shard else seed),
              policy=Policy(policy_config()), geo=load_yaml(HERE / "geography.yaml"),
              names=load_yaml(HERE / "names.yaml"), shard=shard, shards=shards)
    cur, extra = delivery_dates(as_of)
    ctx.dates, ctx.extra_dates = cur, extra
    dd = {k: d64(v) for k, v in cur.items()}
    geo = Geo(ctx.geo)

    # ---- the world
    people, households = build_people(ctx, geo)
    rh, rows = build_roster(ctx, geo, people, households)
    _tick("world", clock)
    eco.assign_statuses(ctx, people, dd["hukou"])
    cremation_bg = eco.build_cremation(ctx, geo, people)
    ok_owner = eco.present(people, ctx) & ~people.roster
    ent_bg, bp_bg = eco.build_business(ctx, geo, people, ok_owner, dd["business"])
    n_ent_bg = len(ent_bg)
    pub = eco.build_public_units(ctx, geo)
    emp_vocab = np.concatenate([ent_bg["name"].to_numpy().astype(object), pub["name"].to_numpy().astype(object)])
    employers = np.flatnonzero(((ent_bg["status"] == "存续") & (ent_bg["etype"] != "个体工商户")).to_numpy())

    # ---- planted cases and look-alikes (they reserve their people first)
    pl = Planter(ctx, geo, people, households, rh, rows, cur)
    pl.plant_r08()
    rows = pl.rows
    pl.prepare()
    pl.plant_r01()
    pl.plant_r09()
    pl.plant_r02(n_ent_bg)
    pl.plant_r03()
    pl.plant_r04()
    pl.plant_r05(len(pub))
    pl.plant_r06(employers[:5000])
    pl.plant_r07()
    _tick("planting", clock)
    reserved_hh = pl.used.copy()
    r07_hh = np.zeros(len(rh), dtype=bool)
    r07_hh[[x["hh"] for x in pl.planted if x["rule"] == "R07"] +
           [x["hh"] for x in pl.lookalikes if x["rule"] == "R07"]] = True

    # ---- background economy
    present = eco.present(people, ctx)
    touched = households["roster_touched"].to_numpy()
    hh_touched = np.where(people.hh >= 0, touched[np.maximum(people.hh, 0)], False)
    rng_bg = ctx.sub("background")
    ok = present & ~people.roster
    roster_ok = present & people.roster & ~people.reserved
    ok_payroll = ok & (~hh_touched | (rng_bg.random(people.n) < 0.0008)) & ~people.reserved
    ok_payroll |= roster_ok & (rng_bg.random(people.n) < 0.00008)
    jobs = eco.build_jobs(ctx, geo, people, households, ent_bg, pub, ok, ok_payroll)
    orgs = pd.concat([ent_bg[["uscc", "name", "dist"]].rename(columns={"uscc": "code"}),
                      pub[["code", "name", "dist"]]], ignore_index=True)
    veh = eco.build_vehicles(ctx, people, ok, roster_ok, n_ent_bg, dd["vehicle"])
    prop = eco.build_property(ctx, geo, people, households, ok, roster_ok, orgs.iloc[:n_ent_bg], dd["property"])
    std = _standards(ctx, geo, rh)
    size = rows.groupby("hh").size().reindex(range(len(rh))).fillna(0).to_numpy()
    relatives = pl.relatives
    bank_bg = eco.build_bank(ctx, people, rh, rows[~r07_hh[rows["hh"].to_numpy()]], relatives,
                             24 * std * size, reserved_hh)
    rinc = _roster_incomes(ctx, people, rh, rows, std, reserved_hh, employers)
    _tick("background", clock)
    # roster members' own small businesses (mostly exempt), a very few that count
    rng_rb = ctx.sub("roster_business")
    for q in np.flatnonzero(roster_ok & (people.age >= 20) & (people.age <= 65) & (rng_rb.random(people.n) < 0.02)):
        pl.add_entity(int(q), "个体工商户", "经营者", capital=[np.nan, 2.0, 5.0, 10.0][int(rng_rb.integers(0, 4))])
    for q in np.flatnonzero(roster_ok & (people.age >= 20) & (people.age <= 65) & (rng_rb.random(people.n) < 0.00012)):
        pl.add_entity(int(q), "有限责任公司", "法定代表人", capital=float(rng_rb.integers(10, 200)))
    # a few deaths and moves of members that nobody has acted on yet (background R01 and R09)
    rng_ev = ctx.sub("roster_events")
    ev = roster_ok & (rng_ev.random(people.n) < 0.00012)
    for q in np.flatnonzero(ev):
        pl.kill(int(q), ctx.D - np.timedelta64(int(rng_ev.integers(31, 400)), "D"))
    mv = roster_ok & ~ev & (people.age >= 18) & (rng_ev.random(people.n) < 0.0001)
    people.status[mv] = 2
    people.dereg[mv] = dd["hukou"] - rng_ev.integers(0, 700, mv.sum()).astype("timedelta64[D]")
    rh["payment"] = np.where(rh["category"] == "特困供养", std * size,
                             np.round(std * size * rng_bg.uniform(0.35, 1.0, len(rh)))).astype(np.int64)

    # ---- assemble the clean tables
    P = pl.frames()
    t = {}
    t["cremation"] = _cat(cremation_bg, P.get("cremation"))
    pe = P.get("entities", pd.DataFrame(columns=["etype", "capital", "est", "status", "closed", "dist", "owner",
                                                 "owner_name"]))
    if len(pe):
        kind = np.select([pe["etype"] == "个体工商户", pe["etype"] == "农民专业合作社"], ["2", "3"], "1")
        areas = np.asarray(geo.d_admin, dtype=object)[pe["dist"].to_numpy().astype(int)]
        shard = (ctx.shard, ctx.shards)
        codes = make_usccs(np.full(len(pe), "9"), kind, areas, ctx.sub("planted_uscc"), shard)
        known = set(ent_bg["uscc"].tolist())
        clash = np.array([c in known for c in codes]) | pd.Series(codes).duplicated().to_numpy()
        tries = 0
        while clash.any():
            tries += 1
            codes[clash] = make_usccs(np.full(clash.sum(), "9"), kind[clash], areas[clash], ctx.sub(f"uscc{tries}"),
                                      shard)
            clash = np.array([c in known for c in codes]) | pd.Series(codes).duplicated().to_numpy()
        pe["uscc"] = codes
        own = pe["owner"].to_numpy().astype(int)
        town = np.where(people.loc[own] >= 0, geo.l_town[np.maximum(people.loc[own], 0)], 0)
        pe["name"] = eco._ent_names(ctx.sub("planted_names"), geo, pe["etype"].to_numpy().astype(object),
                                    pe["dist"].to_numpy().astype(int), town, people.name[own])
        known_names = set(ent_bg["name"].tolist())
        pe["name"] = [x + "（二）" if x in known_names else x for x in pe["name"]]
    ent = pd.concat([ent_bg, pe], ignore_index=True)
    ent["capital"] = ent["capital"].astype(float)
    ent["est"] = ent["est"].to_numpy().astype("datetime64[D]")
    ent["closed"] = pd.to_datetime(ent["closed"]).to_numpy().astype("datetime64[D]")
    t["entities"] = ent
    bpp = P.get("bpersons")
    if bpp is not None and len(bpp):
        bpp["ent"] = [n_ent_bg + e[1] for e in bpp["ent"]]
    t["bpersons"] = _cat(bp_bg, bpp)
    t["bpersons"]["sub"] = t["bpersons"]["sub"].astype(float)
    orgs_all = pd.concat([ent[["uscc", "name", "dist"]].rename(columns={"uscc": "code"}),
                          pub[["code", "name", "dist"]]], ignore_index=True)
    pv = P.get("vehicle")
    if pv is not None and len(pv):
        org = np.array([n_ent_bg + o[1] if isinstance(o, tuple) else o for o in pv["org"]], dtype=np.int64)
        vp = eco.vehicle_rows(ctx.sub("planted_vehicles"), pv["pid"].to_numpy().astype(np.int64),
                              pv["kind"].to_numpy().astype(object), pv["held"].to_numpy().astype(bool),
                              dd["vehicle"], people, ctx.plate_prefix)
        zt = pv["zt"].to_numpy()
        has_zt = pd.notna(zt)
        vp.loc[has_zt, "zt"] = zt[has_zt]
        reg = pv["reg"].to_numpy()
        has_reg = pd.notna(reg)
        vp.loc[has_reg, "reg"] = pd.to_datetime(reg[has_reg]).to_numpy().astype("datetime64[s]")
        vp["org"] = org
        vp.loc[org >= 0, "doc"] = "M"
        vp["disp"] = pv["disp"].to_numpy()
        vp["forced"] = pv["forced"].to_numpy()
        pv = vp
    t["vehicle"] = _cat(veh, pv)
    t["vehicle"]["pid"] = t["vehicle"]["pid"].astype(np.int64)
    t["vehicle"]["org"] = t["vehicle"]["org"].astype(np.int64)
    pp = P.get("property")
    if pp is not None and len(pp):
        keys, first = np.unique(pp["unit_key"].to_numpy(), return_index=True)
        lo, hi = ctx.shard_range(eco.UNIT_SPACE)
        nums = eco.unit_numbers(ctx.sub("planted_units"),
                                np.asarray(geo.d_admin, dtype=object)[pp["dist"].to_numpy()[first].astype(int)],
                                pp["town"].to_numpy()[first].astype(int), eco.UNIT_SPACE + lo, eco.UNIT_SPACE + hi)
        pp["unit"] = pd.Series(nums, index=keys).reindex(pp["unit_key"].to_numpy()).to_numpy()
        pp = pp.drop(columns=["unit_key"])
        pp = eco.finish_property(ctx, ctx.sub("planted_property"), geo, households, pp, dd["property"],
                                 n0=len(prop) + 10, history=False)
    t["property"] = _cat(prop, pp)
    for c in ("o1", "o2", "o3", "org", "hh"):
        t["property"][c] = t["property"][c].astype(np.int64)
    pay = _cat(jobs["payroll"], P.get("payroll"))
    pay["etype"] = pub["ptype"].to_numpy()[pay["employer"].to_numpy().astype(int)]
    t["payroll"] = pay
    t["tax"] = eco.finish_tax(_cat(jobs["tax"], rinc["tax"], P.get("tax")))
    t["si_c"] = _cat(jobs["si_c"], rinc["si_c"], P.get("si_c"))
    t["si_b"] = _cat(jobs["si_b"], rinc["si_b"], P.get("si_b"))
    t["hf"] = _cat(jobs["hf"], P.get("hf"))
    for k, cols in (("tax", ["item", "agent", "m0", "m1"]), ("si_c", ["scheme", "payer", "status", "employer", "month"]),
                    ("si_b", ["scheme", "btype", "month"])):
        for c in cols:
            t[k][c] = t[k][c].fillna({"status": 1}.get(c, -1)).astype(np.int64)
    t["hf"]["employer"] = t["hf"]["employer"].astype(np.int64)
    bank = _cat(bank_bg, P.get("bank"))
    bank["delivery"] = "current"
    rng_old = ctx.sub("bank_older")
    older = bank.copy()
    older["delivery"] = "older"
    older["balance"] = (older["balance"] * rng_old.uniform(0.8, 1.2, len(older))).astype(np.int64)
    extra_old = [eco.bank_rows(rng_old, np.array([m]), np.array([b], dtype=np.int64),
                               np.array(["定期存款"], dtype=object)) for m, b in getattr(pl, "older_bank", [])]
    older = _cat(older, *[e.assign(delivery="older") for e in extra_old])
    t["bank"] = pd.concat([bank, older], ignore_index=True)
    for k in ("tax", "si_c", "si_b", "hf", "bank", "payroll", "cremation"):
        t[k]["pid"] = t[k]["pid"].astype(np.int64)

    # ---- truth
    _tick("assemble", clock)
    cases = compute_truth(ctx, people, rh, rows, t, cur, geo.districts)
    look = pd.DataFrame(pl.lookalikes)
    look = look.drop_duplicates(["hh", "rule"])
    key_cases = set(zip(cases["hh"], cases["rule"]))
    look_in_truth = [(h, r) in key_cases for h, r in zip(look["hh"], look["rule"])]
    look = look[~np.array(look_in_truth, dtype=bool)]
    planted = pd.DataFrame(pl.planted)
    missed = planted[[(h, r) not in key_cases for h, r in zip(planted["hh"], planted["rule"])]]

    # ---- deliveries
    _tick("truth", clock)
    dv = Deliverer(out, ctx, people, ctx.names)
    dv.households_address = households["address"].to_numpy()
    dv.emp_vocab = emp_vocab
    dv.start_links(truth_dir / "links.parquet")
    render_roster(dv, geo, rh, rows, cur, extra)
    _tick("roster", clock)
    render_hukou(dv, cur)
    _tick("hukou", clock)
    render_cremation(dv, t["cremation"], cur, extra)
    render_vehicle(dv, t["vehicle"], orgs_all, cur, extra)
    _tick("cremation+vehicle", clock)
    render_business(dv, t["entities"], t["bpersons"], orgs_all, cur)
    _tick("business", clock)
    render_tax(dv, t["tax"], cur)
    _tick("tax", clock)
    render_si(dv, t["si_c"], t["si_b"], cur)
    _tick("social_insurance", clock)
    render_hf(dv, t["hf"], cur)
    render_bank(dv, t["bank"], cur, extra)
    render_payroll(dv, t["payroll"], pub, cur, extra)
    _tick("hf+bank+payroll", clock)
    render_property(dv, t["property"], orgs_all, cur)
    _tick("property", clock)
    dv.finish()
    _tick("finish (iconv)", clock)

    # ---- truth files
    code = rh["code"].to_numpy()
    ids = people.id
    cases_out = pd.DataFrame({"household_id": code[cases["hh"].to_numpy()], "rule": cases["rule"].to_numpy(),
                              "member_id": ids[cases["pid"].to_numpy()], "detail": cases["detail"].to_numpy()})
    cases_out.to_csv(truth_dir / "cases.csv", index=False, encoding="utf-8")
    look_out = pd.DataFrame({"household_id": code[look["hh"].to_numpy()], "rule": look["rule"].to_numpy(),
                             "member_id": ids[look["pid"].to_numpy()], "kind": look["kind"].to_numpy()})
    look_out = look_out.sort_values(["rule", "household_id"], kind="stable")
    look_out.to_csv(truth_dir / "lookalikes.csv", index=False, encoding="utf-8")
    n_links = dv.close_links()
    _tick("truth files", clock)

    counts_cases = {r: int((cases_out["rule"] == r).sum()) for r in RULES}
    counts_look = {r: int((look_out["rule"] == r).sum()) for r in RULES}
    counts_planted = {r: int((planted["rule"] == r).sum()) for r in RULES}
    manifest = {
        "as_of": as_of.isoformat(), "scale": float(scale), "seed": int(seed),
        "deliveries": {s: cur[s].isoformat() for s in SOURCES},
        "other_deliveries": {s: {k: v.isoformat() for k, v in e.items()} for s, e in extra.items()},
        "counts": {"rows": dict(sorted(dv.files.items())), "cases": counts_cases, "lookalikes": counts_look,
                   "planted_cases": counts_planted, "planted_missing_from_truth": int(len(missed)),
                   "people": int(people.n), "hukou": int(people.P), "roster_rows": int(len(rows)),
                   "roster_households": int(len(rh)), "links": int(n_links)},
    }
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                             encoding="utf-8")
    return {"rows": dict(sorted(dv.files.items())), "cases": counts_cases, "lookalikes": counts_look,
            "planted_missing_from_truth": int(len(missed)), "truth_dir": str(truth_dir),
            "seconds": round(time.time() - t0, 2), "manifests": dv.manifests}


# ---------------------------------------------------------------------------------------------- shards

def shard_peak_mib(scale: float) -> float:
    """The generator's peak resident memory for one world, measured by bench/night.py (908 MiB at
    scale 0.1, 5,247 MiB at scale 1)."""
    return 430 + 4820 * scale


def available_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def shard_jobs(shard_scale: float) -> int:
    """How many shards to generate at once: one per core, as far as the available memory allows."""
    avail = available_mib()
    by_memory = int(0.85 * avail // shard_peak_mib(shard_scale)) if avail else 1
    return max(1, min(os.cpu_count() or 1, by_memory))


def _shard_worker(out: str, as_of: str, scale: float, seed: int, truth_dir: str, shard: int, shards: int) -> dict:
    return _generate_world(Path(out), dt.date.fromisoformat(as_of), scale, seed, Path(truth_dir), shard, shards)


def _generate_sharded(out: Path, as_of: dt.date, scale: float, seed: int, truth_dir: Path, shards: int,
                      jobs: int | None) -> dict:
    """Each shard in a process of its own (its memory is returned when it ends), then one manifest per
    delivery and one set of truth files for the whole city."""
    t0 = time.time()
    parts = truth_dir / "shards"
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    jobs = max(1, min(int(jobs or shard_jobs(scale / shards)), shards))
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_shard_worker, str(out), as_of.isoformat(), scale / shards, seed,
                               str(parts / f"{k + 1:02d}"), k, shards) for k in range(shards)]
        try:
            results = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    _merge_manifests(out, [m for r in results for m in r["manifests"]])
    summary = _merge_truth(truth_dir, [parts / f"{k + 1:02d}" for k in range(shards)], scale, shards)
    shutil.rmtree(parts)
    summary["seconds"] = round(time.time() - t0, 2)
    return summary


def _merge_manifests(out: Path, manifests: list[tuple[str, str, list[str]]]) -> None:
    """One MANIFEST.csv per delivery folder, listing every shard's files in shard order."""
    folders: dict[tuple[str, str], list[str]] = {}
    for source, date, files in manifests:
        folders.setdefault((source, date), []).extend(files)
    for (source, date), files in folders.items():
        write_manifest(out / source / date, files)


def _merge_truth(truth_dir: Path, parts: list[Path], scale: float, shards: int) -> dict:
    """cases.csv, lookalikes.csv, links.parquet and manifest.json of the whole city from its shards'."""
    cases = pd.concat([pd.read_csv(p / "cases.csv", dtype=str, keep_default_na=False) for p in parts],
                      ignore_index=True)
    cases.to_csv(truth_dir / "cases.csv", index=False, encoding="utf-8")
    look = pd.concat([pd.read_csv(p / "lookalikes.csv", dtype=str, keep_default_na=False) for p in parts],
                     ignore_index=True).sort_values(["rule", "household_id"], kind="stable")
    look.to_csv(truth_dir / "lookalikes.csv", index=False, encoding="utf-8")
    with pq.ParquetWriter(str(truth_dir / "links.parquet"), Deliverer.LINK_SCHEMA, compression="zstd") as w:
        for p in parts:
            f = pq.ParquetFile(str(p / "links.parquet"))
            for i in range(f.num_row_groups):
                w.write_table(f.read_row_group(i).cast(Deliverer.LINK_SCHEMA), row_group_size=1_000_000)
    shard_manifests = [json.loads((p / "manifest.json").read_text(encoding="utf-8")) for p in parts]
    manifest = dict(shard_manifests[0])
    manifest["scale"] = float(scale)
    manifest["shards"] = shards
    counts: dict = {}
    for m in shard_manifests:
        for key, value in m["counts"].items():
            if isinstance(value, dict):
                merged = counts.setdefault(key, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v
            else:
                counts[key] = counts.get(key, 0) + value
    counts["rows"] = dict(sorted(counts["rows"].items()))
    manifest["counts"] = counts
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                             encoding="utf-8")
    return {"rows": counts["rows"], "cases": counts["cases"], "lookalikes": counts["lookalikes"],
            "planted_missing_from_truth": counts["planted_missing_from_truth"], "truth_dir": str(truth_dir),
            "shards": shards}
