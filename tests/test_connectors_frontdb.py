"""A source read from the front database (前置库), against the real PostgreSQL and MariaDB on this machine."""
from __future__ import annotations

import uuid
from datetime import date

import pytest

from connectors.load import load_source
from crosscheck.idnum import check_digit
from crosscheck.settings import FrontDbSpec, SourcesConfig, load_sources
from crosscheck.warehouse import connect

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MY_URL = "mysql://root@127.0.0.1:3306/test"
AS_OF = date(2026, 11, 20)
COLUMNS = ["身份证号码", "姓名", "单位名称", "单位性质", "人员状态", "月应发工资", "snapshot"]


def pid(n: int) -> str:
    body = f"42080219800101{n:03d}"
    return body + check_digit(body)


ROWS = [  # two snapshots: the night must read the newest on or before its date
    (pid(1), "王伟", "荆门市某局", "行政机关", "在职", "6500.00", date(2026, 10, 31)),
    (pid(1), "王伟", "荆门市某局", "行政机关", "在职", "6600.00", date(2026, 11, 15)),
    (pid(2) .lower(), "李娜", "荆门市某中学", "全额拨款事业单位", "离退休", "4200.50", date(2026, 11, 15)),
    ("", "张敏", "荆门市某所", "差额拨款事业单位", "在职", "3900", date(2026, 11, 15)),  # empty ID: quarantined
    (pid(3), "赵强", "荆门市某局", "行政机关", "在职", "7000", date(2026, 11, 25)),   # after the night
]


def _config(url: str, table: str) -> SourcesConfig:
    base = load_sources()
    payroll = base.sources["payroll"]
    tspec = payroll.tables["payroll"].model_copy(update={"front_db": FrontDbSpec(
        url=url, table=table, delivery_date_column="snapshot", order_by=["身份证号码", "snapshot"])})
    source = payroll.model_copy(update={"tables": {"payroll": tspec}})
    return base.model_copy(update={"sources": {**base.sources, "payroll": source}})


def _fill_postgres(table: str):
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as c:
        c.execute(f'CREATE TABLE {table} ("身份证号码" text, "姓名" text, "单位名称" text, "单位性质" text,'
                  f' "人员状态" text, "月应发工资" numeric(12,2), snapshot date)')
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            [(r[0] or None, *r[1:5], r[5], r[6]) for r in ROWS])
    return lambda: psycopg.connect(PG_URL, autocommit=True).execute(f"DROP TABLE {table}")


def _fill_mariadb(table: str):
    import pymysql

    c = pymysql.connect(host="127.0.0.1", user="root", password="", database="test", charset="utf8mb4",
                        autocommit=True)
    with c.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (`身份证号码` varchar(20), `姓名` varchar(40), `单位名称` varchar(80),"
                    f" `单位性质` varchar(40), `人员状态` varchar(10), `月应发工资` decimal(12,2), snapshot date)"
                    f" CHARACTER SET utf8mb4")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        [(r[0] or None, *r[1:5], r[5], r[6]) for r in ROWS])

    def drop():
        with c.cursor() as cur:
            cur.execute(f"DROP TABLE {table}")
        c.close()
    return drop


@pytest.mark.parametrize("url, fill", [(PG_URL, _fill_postgres), (MY_URL, _fill_mariadb)], ids=["postgresql", "mariadb"])
def test_payroll_from_front_database(tmp_path, url, fill):
    table = f"payroll_{uuid.uuid4().hex[:8]}"
    drop = fill(table)
    try:
        con = connect(":memory:")
        out = load_source(con, tmp_path, "payroll", AS_OF, AS_OF, sources=_config(url, table))
        assert out["status"] == "loaded" and out["delivery_date"] == date(2026, 11, 15)
        assert (out["rows_read"], out["rows_staged"], out["rows_quarantined"]) == (3, 2, 1)
        got = con.execute("SELECT id_norm, id_status, name, staff_status, monthly_salary::DOUBLE"
                          " FROM staging.payroll ORDER BY id_norm").fetchall()
        assert got == [(pid(1), "valid", "王伟", "在职", 6600.0), (pid(2), "valid", "李娜", "离退休", 4200.5)]
        files = con.execute("SELECT file_name, rows_read, rows_staged, rows_quarantined FROM audit.load_files").fetchall()
        assert files == [(f"{table}@2026-11-15", 3, 2, 1)]
        assert not any(pid(1) in m or pid(2) in m for m in out["messages"])
    finally:
        drop()


def test_unreachable_front_database_is_a_missing_source_not_a_crash(tmp_path):
    con = connect(":memory:")
    cfg = _config("postgresql://postgres@127.0.0.1:1/test", "nowhere")
    out = load_source(con, tmp_path, "payroll", AS_OF, AS_OF, sources=cfg)
    assert out["status"] == "missing" and "front database could not be read" in out["messages"][0]
    assert con.execute("SELECT count(*) FROM staging.payroll").fetchone()[0] == 0
