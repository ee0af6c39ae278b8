"""The synthetic landing zone follows CONTRACT.md §2: folders, file formats, encodings, headers, codes."""
from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import pytest
import yaml

from synthetic.common import PROJECT, SOURCES
from synthetic.generate import generate
from synthetic.ids import is_valid_id
from synthetic.inspect import (current_date, deliveries, detect_encoding, files_of, load_links, read_delivery,
                               read_file)

AS_OF = dt.date(2024, 6, 15)

HEADERS = {
    "roster/roster": ["家庭编号", "救助类别", "分类管理", "成员姓名", "身份证号", "与户主关系", "家庭人口数", "月保障金额",
                      "区县", "乡镇街道", "村社区", "家庭住址", "救助开始日期", "残疾类别等级", "重病"],
    "hukou/hukou": ["公民身份号码", "姓名", "性别", "民族", "出生日期", "户号", "与户主关系", "住址", "人员状态", "注销日期"],
    "cremation/cremation": ["逝者姓名", "身份证号", "死亡日期", "火化日期", "殡仪馆"],
    "vehicle/vehicle": ["HPHM", "HPZL", "CLLX", "SYR", "SFZMMC", "SFZMHM", "CCDJRQ", "ZT", "SYXZ", "CLPP"],
    "property/property": ["不动产单元号", "不动产权证号", "权利人", "证件种类", "证件号码", "共有情况", "坐落", "规划用途",
                          "建筑面积", "登记时间", "权属状态"],
    "business/entities": ["统一社会信用代码", "企业名称", "市场主体类型", "注册资本", "成立日期", "登记状态", "注吊销日期"],
    "business/persons": ["统一社会信用代码", "姓名", "证件号码", "角色", "认缴出资额"],
    "tax/part": ["证件号码", "纳税人姓名", "所得项目", "所属期起", "所属期止", "收入额", "应纳税额", "扣缴义务人"],
    "social_insurance/contributions": ["AAC002", "AAC003", "AAE140", "AAE002", "AAE180", "AAB004", "AAB019", "AAC031"],
    "social_insurance/benefits": ["AAC002", "AAC003", "AAE140", "待遇类型", "AAE002", "发放金额"],
    "housing_fund/housing_fund": ["证件号码", "姓名", "单位名称", "缴存基数", "个人月缴存额", "单位月缴存额", "账户状态",
                                  "最近缴存年月", "账户余额"],
    "bank/bank": ["zjhm", "xm", "jgmc", "zhlx", "ye", "cxrq"],
    "payroll/payroll": ["身份证号码", "姓名", "单位名称", "单位性质", "人员状态", "月应发工资"],
}
ID_COLUMN = {"roster": "身份证号", "hukou": "公民身份号码", "cremation": "身份证号", "vehicle": "SFZMHM",
             "property": "证件号码", "business": "证件号码", "tax": "证件号码", "social_insurance": "AAC002",
             "housing_fund": "证件号码", "bank": "zjhm", "payroll": "身份证号码"}


def header_key(source: str, fname: str) -> str:
    stem = fname.split(".")[0]
    stem = re.sub(r"_?part\d+$", "", stem) or "part"
    if source == "tax":
        stem = "part"
    if source == "bank":
        stem = "bank"
    if source == "property":
        stem = "property"
    return f"{source}/{stem}"


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    out = tmp_path_factory.mktemp("contract") / "landing"
    summary = generate(out, AS_OF, 0.01, 11)
    return out, out.parent / "landing.truth", summary


def test_every_source_has_a_fresh_delivery(zone):
    out, _, _ = zone
    cfg = yaml.safe_load((PROJECT / "config" / "sources.yaml").read_text(encoding="utf-8"))["sources"]
    for s in SOURCES:
        d = current_date(out, s, AS_OF)
        assert d is not None, s
        assert (AS_OF - d).days <= cfg[s]["max_age_days"], (s, d)


def test_headers_follow_contract_and_loader_config(zone):
    out, _, _ = zone
    cfg = yaml.safe_load((PROJECT / "config" / "sources.yaml").read_text(encoding="utf-8"))["sources"]
    seen = set()
    for s in SOURCES:
        for d in deliveries(out, s):
            for f in files_of(out, s, d):
                key = header_key(s, f)
                df = read_file(out / s / d.isoformat() / f)
                assert list(df.columns) == HEADERS[key], (s, d, f)
                seen.add(key)
                tables = cfg[s]["tables"]
                declared = [list(t["columns"]) for t in tables.values()]
                assert list(df.columns) in declared, (s, f)
    assert seen == set(HEADERS)


def test_encodings(zone):
    out, _, _ = zone
    enc = {}
    for s in SOURCES:
        for d in deliveries(out, s):
            for f in files_of(out, s, d):
                if f.endswith(".xlsx"):
                    continue
                enc[(s, d, f)] = detect_encoding((out / s / d.isoformat() / f).read_bytes())
    for (s, d, f), e in enc.items():
        if s == "roster":
            assert e == "utf-8-sig"
        elif s in ("hukou", "social_insurance"):
            assert e == "gbk", (s, f)
        elif s == "vehicle":
            # the current delivery came as UTF-8 with BOM instead of GBK; the older one is GBK
            assert e == ("utf-8-sig" if d == current_date(out, s, AS_OF) else "gbk"), (d, e)
        else:
            assert e == "utf-8", (s, f, e)


def test_property_is_one_sheet_xlsx_and_bank_is_jsonl(zone):
    out, _, _ = zone
    from python_calamine import CalamineWorkbook
    d = current_date(out, "property", AS_OF)
    for f in files_of(out, "property", d):
        assert f.endswith(".xlsx")
        wb = CalamineWorkbook.from_path(str(out / "property" / d.isoformat() / f))
        assert len(wb.sheet_names) == 1
    d = current_date(out, "bank", AS_OF)
    for line in (out / "bank" / d.isoformat() / "bank_reply.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        assert list(obj) == HEADERS["bank/bank"]
        assert isinstance(obj["ye"], str) and re.fullmatch(r"\d+\.\d\d", obj["ye"])


def test_clean_rows_carry_valid_true_ids(zone):
    """Every row without an ID defect shows the true 18-digit ID, with a correct check digit."""
    out, truth, _ = zone
    links = load_links(truth)
    for s in SOURCES:
        d = current_date(out, s, AS_OF)
        for f in files_of(out, s, d):
            if s == "business" and f.startswith("entities"):
                continue
            df = read_delivery(out, links, s, d, f)
            person = df["_true_id"].notna() & (df["_true_id"] != "")
            clean = person & df["_defect"].isin(["", "duplicate_row"]) | \
                (person & df["_defect"].str.startswith("name_"))
            col = ID_COLUMN[s]
            if s == "property":
                shown = df[col].str.split("、")
                df = df.assign(_shown=[x[int(k) - 1] if isinstance(x, list) and len(x) >= k else None
                                       for x, k in zip(shown, df["_owner_seq"].fillna(1).astype(int))])
                col = "_shown"
            sub = df[clean]
            assert len(sub) > 0, (s, f)
            assert (sub[col] == sub["_true_id"]).all(), (s, f, sub[sub[col] != sub["_true_id"]].head())
            assert all(is_valid_id(x) for x in sub["_true_id"]), (s, f)


def test_hukou_ids_unique_and_consistent_with_birth_and_sex(zone):
    out, _, _ = zone
    d = current_date(out, "hukou", AS_OF)
    h = read_file(out / "hukou" / d.isoformat() / "hukou.csv")
    assert h["公民身份号码"].is_unique
    ok = h["公民身份号码"].map(is_valid_id)
    assert ok.mean() > 0.999
    h = h[ok]
    birth = h["出生日期"].str.replace("-", "")
    assert (h["公民身份号码"].str[6:14] == birth).all()
    male = h["公民身份号码"].str[16].astype(int) % 2 == 1
    assert ((h["性别"] == "1") == male).all()
    assert set(h["人员状态"]) <= {"0", "1", "2", "3", "4"}


def test_codes_and_formats(zone):
    out, _, _ = zone
    cfg = yaml.safe_load((PROJECT / "config" / "sources.yaml").read_text(encoding="utf-8"))
    date_formats = cfg["defaults"]["date_formats"]

    def parses(v: str) -> bool:
        for fmt in date_formats:
            try:
                dt.datetime.strptime(v, fmt)
                return True
            except ValueError:
                pass
        return False
    r = read_file(out / "roster" / current_date(out, "roster", AS_OF).isoformat() / "roster.csv")
    assert set(r["救助类别"]) == {"城市低保", "农村低保", "特困供养"}
    assert set(r["分类管理"]) <= {"A", "B"}
    assert set(r["重病"]) <= {"是", "否"}
    assert set(r["区县"]) <= {"东宝区", "掇刀区", "京山市", "沙洋县", "钟祥市", "屈家岭管理区", "漳河新区"}
    assert r["救助开始日期"].map(parses).all()
    assert (r.groupby("家庭编号").size() == r.groupby("家庭编号")["家庭人口数"].first().astype(int)).all()
    v = read_file(out / "vehicle" / current_date(out, "vehicle", AS_OF).isoformat() / "vehicle.csv")
    assert v["CCDJRQ"].map(parses).all()
    assert set(v["SFZMMC"]) <= {"A", "B", "M"}
    assert v["HPZL"].isin(["2"]).any() and v["HPZL"].isin(["02"]).any()     # two formats of one code
    assert v["ZT"].str.fullmatch(r"[A-Q]+").all()
    p = read_file(out / "property" / current_date(out, "property", AS_OF).isoformat() / "property.xlsx")
    assert (p["不动产单元号"].str.len() == 28).all()
    assert set(p["权属状态"]) <= {"现势", "历史", "注销"}
    assert set(p["规划用途"]) <= {"住宅", "商业", "办公", "工业", "车位", "其他"}
    assert p["登记时间"].map(parses).all()
    e = read_file(out / "business" / current_date(out, "business", AS_OF).isoformat() / "entities.csv")
    assert set(e["市场主体类型"]) <= {"有限责任公司", "股份有限公司", "个人独资企业", "合伙企业", "个体工商户", "农民专业合作社"}
    assert e["统一社会信用代码"].str.len().eq(18).all()


def test_names_realistic(zone):
    out, _, _ = zone
    h = read_file(out / "hukou" / current_date(out, "hukou", AS_OF).isoformat() / "hukou.csv")
    names = h["姓名"]
    top = names.str[0].value_counts()
    assert set(top.index[:5]) & {"王", "李", "张", "刘", "陈"}
    assert names.duplicated().any()                         # namesakes exist
    assert (h["民族"].isin(["03", "3"])).any()                # 回族
    r = read_file(out / "roster" / current_date(out, "roster", AS_OF).isoformat() / "roster.csv")
    assert r["乡镇街道"].isin(["九里回族乡"]).any() or (h["住址"].str.contains("九里回族乡")).any()


def test_summary_reports_rows_and_cases(zone):
    _, truth, summary = zone
    assert summary["rows"] and all(v > 0 for v in summary["rows"].values())
    assert set(summary["cases"]) == {f"R0{i}" for i in range(1, 10)}
    assert summary["seconds"] > 0
    manifest = json.loads((truth / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["as_of"] == AS_OF.isoformat() and manifest["seed"] == 11
    assert pd.Series(manifest["counts"]["cases"]).min() > 0
