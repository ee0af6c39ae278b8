"""Defects of real deliveries (CONTRACT.md §3) applied to IDs and names.

A defect never changes who a record belongs to: the clean world keeps the true person, and
links.parquet records the defect next to the true ID.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .ids import check_char, legacy15, with_area

FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
# old area code -> current one, for people born in a division that was later renamed or split
AREA_NEW = {"420821": "420882", "420803": "420822"}
AREA_OLD = {v: k for k, v in AREA_NEW.items()}

# ID defect kinds (order matters: the first that applies wins)
ID_KINDS = ["lower_x", "fullwidth", "space", "ideographic_space", "nbsp", "apostrophe", "legacy15", "typo",
            "transposition", "old_area_code", "new_area_code", "excel_number", "excel_sci", "id_missing",
            "wrong_person_id"]
NAME_KINDS = ["name_traditional", "name_homophone", "name_lookalike", "name_space", "name_sep_bullet",
              "name_sep_dot", "name_sep_space", "name_sep_none", "name_rare_qmark", "name_rare_pinyin"]
NOT_GBK = {"nbsp", "name_sep_bullet"}
ID_CODE = {k: i + 1 for i, k in enumerate(ID_KINDS)}
NAME_CODE = {k: i + 1 for i, k in enumerate(NAME_KINDS)}


def id_applicable(kind: str, ids: np.ndarray, birth_year: np.ndarray) -> np.ndarray:
    n = len(ids)
    if kind == "lower_x":
        return np.array([s.endswith("X") for s in ids], dtype=bool)
    if kind == "legacy15":
        return (birth_year >= 1900) & (birth_year <= 1999)
    if kind == "old_area_code":
        return np.array([s[:6] in AREA_OLD for s in ids], dtype=bool)
    if kind == "new_area_code":
        return np.array([s[:6] in AREA_NEW for s in ids], dtype=bool)
    if kind == "excel_number":
        return np.array([not s.endswith("X") for s in ids], dtype=bool)
    return np.ones(n, dtype=bool)


def id_defect(kind: str, s: str, rng: np.random.Generator) -> str:
    if kind == "lower_x":
        return s[:-1] + "x"
    if kind == "fullwidth":
        if rng.random() < 0.5:
            return s.translate(FULLWIDTH)
        k = int(rng.integers(1, 6))
        return s[:-k] + s[-k:].translate(FULLWIDTH)
    if kind == "space":
        v = int(rng.integers(0, 4))
        return [s + " ", " " + s, s[:6] + " " + s[6:14] + " " + s[14:], s[:9] + " " + s[9:]][v]
    if kind == "ideographic_space":
        return s + "\u3000" if rng.random() < 0.6 else "\u3000" + s
    if kind == "nbsp":
        return s + "\u00a0"
    if kind == "apostrophe":
        return "'" + s
    if kind == "legacy15":
        return legacy15(s)
    if kind == "typo":
        i = int(rng.integers(0, 17))
        d = (int(s[i]) + int(rng.integers(1, 10))) % 10
        return s[:i] + str(d) + s[i + 1:]
    if kind == "transposition":
        cand = [i for i in range(16) if s[i] != s[i + 1]]
        i = cand[int(rng.integers(0, len(cand)))]
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if kind == "old_area_code":
        return with_area(s, AREA_OLD[s[:6]])
    if kind == "new_area_code":
        return with_area(s, AREA_NEW[s[:6]])
    if kind == "excel_number":
        return f"{float(s):.14E}".replace("E+", "E+")   # rendered by the xlsx writer as a number
    if kind == "excel_sci":
        return f"{float(s[:17] + ('0' if s[17] == 'X' else s[17])):.5E}"
    if kind == "id_missing":
        return ""
    raise ValueError(kind)


class NameDefects:
    def __init__(self, names_cfg: dict):
        trad = {k: v for k, v in names_cfg["traditional"].items() if len(k) == 1 and k != v}
        self.trad = str.maketrans(trad)
        self.trad_keys = set(trad)
        self.homo = {k: v for k, v in names_cfg["homophones"].items()}
        self.look = dict(names_cfg["lookalikes"])
        self.rare = dict(names_cfg["rare_chars"])

    def applicable(self, kind: str, names: np.ndarray) -> np.ndarray:
        if kind == "name_traditional":
            return np.array([any(c in self.trad_keys for c in s) for s in names], dtype=bool)
        if kind == "name_homophone":
            return np.array([any(c in self.homo for c in s[1:]) and "·" not in s for s in names], dtype=bool)
        if kind == "name_lookalike":
            return np.array([any(c in self.look for c in s) for s in names], dtype=bool)
        if kind == "name_space":
            return np.array(["·" not in s and len(s) >= 2 for s in names], dtype=bool)
        if kind.startswith("name_sep"):
            return np.array(["·" in s for s in names], dtype=bool)
        if kind.startswith("name_rare"):
            return np.array([any(c in self.rare for c in s) for s in names], dtype=bool)
        return np.ones(len(names), dtype=bool)

    def apply(self, kind: str, s: str, rng: np.random.Generator) -> str:
        if kind == "name_traditional":
            return s.translate(self.trad)
        if kind == "name_homophone":
            pos = [i for i, c in enumerate(s) if i > 0 and c in self.homo]
            i = pos[int(rng.integers(0, len(pos)))]
            alts = self.homo[s[i]]
            return s[:i] + alts[int(rng.integers(0, len(alts)))] + s[i + 1:]
        if kind == "name_lookalike":
            pos = [i for i, c in enumerate(s) if c in self.look]
            i = pos[int(rng.integers(0, len(pos)))]
            return s[:i] + self.look[s[i]] + s[i + 1:]
        if kind == "name_space":
            v = int(rng.integers(0, 3))
            return [s[0] + " " + s[1:], s + " ", s[0] + "\u3000" + s[1:]][v]
        if kind == "name_sep_bullet":
            return s.replace("·", "•")
        if kind == "name_sep_dot":
            return s.replace("·", ".")
        if kind == "name_sep_space":
            return s.replace("·", " ")
        if kind == "name_sep_none":
            return s.replace("·", "")
        if kind == "name_rare_qmark":
            return "".join("?" if c in self.rare else c for c in s)
        if kind == "name_rare_pinyin":
            return "".join(self.rare.get(c, c) for c in s)
        raise ValueError(kind)


# Profiles: probability per person (or per row for row-level kinds) of each defect, by source.
BASE_ID = {"lower_x": 0.15, "fullwidth": 0.0015, "space": 0.004, "ideographic_space": 0.001, "nbsp": 0.0008,
           "apostrophe": 0.001, "typo": 0.0018, "transposition": 0.0012, "old_area_code": 0.01,
           "new_area_code": 0.004}
BASE_NAME = {"name_traditional": 0.002, "name_homophone": 0.002, "name_lookalike": 0.0008, "name_space": 0.002,
             "name_sep_bullet": 0.2, "name_sep_dot": 0.15, "name_sep_space": 0.15, "name_sep_none": 0.1,
             "name_rare_qmark": 0.15, "name_rare_pinyin": 0.1}


def profile(source: str) -> tuple[dict, dict]:
    idp = dict(BASE_ID)
    nmp = dict(BASE_NAME)
    if source == "roster":
        idp = {"lower_x": 0.05, "space": 0.001, "fullwidth": 0.0004, "ideographic_space": 0.0003,
               "typo": 0.0004, "transposition": 0.0002}
        nmp = {"name_space": 0.001, "name_homophone": 0.0005, "name_sep_dot": 0.1, "name_sep_none": 0.05}
    elif source == "hukou":
        idp = {"lower_x": 0.0}
        nmp = {}
    elif source == "cremation":
        idp.update({"typo": 0.008, "transposition": 0.004, "space": 0.01, "lower_x": 0.3, "id_missing": 0.004})
        nmp.update({"name_homophone": 0.01, "name_traditional": 0.01, "name_lookalike": 0.004})
    elif source == "vehicle":
        idp.update({"lower_x": 0.25, "typo": 0.003, "transposition": 0.002})
    elif source == "property":
        idp.update({"apostrophe": 0.01, "excel_number": 0.012, "excel_sci": 0.004, "fullwidth": 0.003})
        nmp.update({"name_traditional": 0.004})
    elif source == "business":
        idp.update({"lower_x": 0.1, "space": 0.006})
    elif source in ("tax", "social_insurance", "housing_fund", "payroll"):
        idp.update({"lower_x": 0.08 if source != "payroll" else 0.02})
    elif source == "bank":
        idp.update({"lower_x": 0.02, "typo": 0.001, "transposition": 0.0006})
    return idp, nmp


class Defector:
    """Chooses and renders defects for one delivered table, per person (a department's system keeps
    the same wrong spelling for all of a person's rows)."""

    def __init__(self, people, names_cfg: dict):
        self.p = people
        self.nd = NameDefects(names_cfg)

    def apply(self, source: str, pid: np.ndarray, disp: np.ndarray, forced: np.ndarray, gbk: bool,
              rng: np.random.Generator, row_kinds: dict | None = None):
        """Returns (id_idx, id_extra, name_idx, name_extra, id_label, name_label) where *_idx index into
        people.id/people.name for idx < n and into *_extra beyond; labels are per-row strings or ''."""
        p = self.p
        n_people = p.n
        n = len(pid)
        idp, nmp = profile(source)
        if gbk:
            idp = {k: v for k, v in idp.items() if k not in NOT_GBK}
            nmp = {k: v for k, v in nmp.items() if k not in NOT_GBK}
        id_idx = np.where(disp >= 0, disp, pid).astype(np.int64)
        name_idx = pid.astype(np.int64).copy()
        id_lab = np.zeros(n, dtype=np.int32)
        nm_lab = np.zeros(n, dtype=np.int32)
        fmask = forced != ""
        for kind in set(forced[fmask].tolist()):
            id_lab[fmask & (forced == kind)] = ID_CODE[kind]
        id_extra: list[str] = []
        nm_extra: list[str] = []
        person = (pid >= 0) & ~fmask
        upid = np.sort(pd.unique(pid[person]))
        # --- per-person ID defects
        ids_u = p.id[upid]
        taken = np.zeros(len(upid), dtype=bool)
        pid_map = np.full(len(upid), -1, dtype=np.int64)
        pid_lab = np.zeros(len(upid), dtype=np.int32)
        for kind, rate in idp.items():
            if kind in ("legacy15", "excel_number", "excel_sci") and row_kinds and kind in row_kinds:
                continue
            if rate <= 0:
                continue
            cand = ~taken & (rng.random(len(upid)) < rate)
            if not cand.any():
                continue
            cand[cand] = id_applicable(kind, ids_u[cand], p.birth_year[upid[cand]])
            for j in np.flatnonzero(cand):
                id_extra.append(id_defect(kind, ids_u[j], rng))
                pid_map[j] = n_people + len(id_extra) - 1
                pid_lab[j] = ID_CODE[kind]
            taken |= cand
        slot = np.full(n_people, 0, dtype=np.int64)
        slot[upid] = np.arange(len(upid))
        pos = slot[np.where(person, pid, 0)]
        if len(upid):
            has = person & (pid_map[pos] >= 0)
            id_idx[has] = pid_map[pos[has]]
            id_lab[has] = pid_lab[pos[has]]
        # --- row-level ID defects (e.g. 15-digit IDs of old vehicle registrations)
        if row_kinds:
            for kind, mask in row_kinds.items():
                sel = np.flatnonzero(mask & person & (id_lab == 0))
                if not len(sel):
                    continue
                ok = id_applicable(kind, p.id[pid[sel]], p.birth_year[pid[sel]])
                for r in sel[ok]:
                    id_extra.append(id_defect(kind, p.id[pid[r]], rng))
                    id_idx[r] = n_people + len(id_extra) - 1
                    id_lab[r] = ID_CODE[kind]
        # --- per-person name defects
        names_u = p.name[upid]
        ntaken = np.zeros(len(upid), dtype=bool)
        nmap = np.full(len(upid), -1, dtype=np.int64)
        nlab = np.zeros(len(upid), dtype=np.int32)
        if gbk:   # names that GBK cannot hold must be replaced
            bad = p.name_nongbk[upid]
            for j in np.flatnonzero(bad):
                s = names_u[j]
                kind = "name_rare_qmark" if rng.random() < 0.6 else "name_rare_pinyin"
                if not any(c in self.nd.rare for c in s):
                    kind = "name_sep_dot"
                    fixed = s.replace("•", "·")
                    fixed = "".join(c if gbk_encodable(c) else "?" for c in fixed)
                else:
                    fixed = self.nd.apply(kind, s, rng)
                    fixed = "".join(c if gbk_encodable(c) else "?" for c in fixed)
                nm_extra.append(fixed)
                nmap[j] = n_people + len(nm_extra) - 1
                nlab[j] = NAME_CODE[kind]
            ntaken |= bad
        for kind, rate in nmp.items():
            cand = ~ntaken & (rng.random(len(upid)) < rate)
            if not cand.any():
                continue
            cand[cand] = self.nd.applicable(kind, names_u[cand])
            for j in np.flatnonzero(cand):
                s = self.nd.apply(kind, names_u[j], rng)
                if gbk and not gbk_encodable(s):
                    continue
                nm_extra.append(s)
                nmap[j] = n_people + len(nm_extra) - 1
                nlab[j] = NAME_CODE[kind]
            ntaken |= cand
        if len(upid):
            hasn = person & (nmap[pos] >= 0)
            name_idx[hasn] = nmap[pos[hasn]]
            nm_lab[hasn] = nlab[pos[hasn]]
        # wrong-person rows keep the name of their true person; GBK must still hold it
        if gbk:
            fr = np.flatnonzero(fmask & (pid >= 0) & p.name_nongbk[np.maximum(pid, 0)])
            for r in fr:
                nm_extra.append(self.nd.apply("name_rare_qmark", p.name[pid[r]], rng))
                name_idx[r] = n_people + len(nm_extra) - 1
                nm_lab[r] = NAME_CODE["name_rare_qmark"]
        return id_idx, id_extra, name_idx, nm_extra, id_lab, nm_lab


def gbk_encodable(s: str) -> bool:
    """Whether a GBK file can hold this text (a character or a whole name)."""
    try:
        s.encode("gbk")
        return True
    except UnicodeEncodeError:
        return False


def labels(id_lab: np.ndarray, nm_lab: np.ndarray) -> np.ndarray:
    """Per-row defect code: id kind * 100 + name kind (+ DUP for an exact duplicate row)."""
    return id_lab.astype(np.int32) * 100 + nm_lab.astype(np.int32)


DUP = 10_000


def label_text(code: int) -> str:
    parts = []
    if code % DUP // 100:
        parts.append(ID_KINDS[code % DUP // 100 - 1])
    if code % 100:
        parts.append(NAME_KINDS[code % 100 - 1])
    if code >= DUP:
        parts.append("duplicate_row")
    return "+".join(parts)


def id_kind(codes: np.ndarray) -> np.ndarray:
    return (np.asarray(codes) % DUP) // 100


def check_ok(s: str) -> bool:
    return len(s) == 18 and s[:17].isdigit() and check_char(s[:17]) == s[17]
