"""Writes the landing zone: every source's deliveries in its contract format, with defects, and the
row-level links (which true person each delivered row belongs to)."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xlsxwriter

from .common import Ctx
from .defects import DUP, Defector, gbk_encodable, label_text, labels

XLSX_MAX_ROWS = 1_048_575       # data rows per sheet (one header row)
BOM = "\ufeff".encode("utf-8")


def _gbk_safe(s: str) -> str:
    try:
        s.encode("gbk")
        return s
    except UnicodeEncodeError:
        return "".join(c if gbk_encodable(c) else "?" for c in s)


def money(col: str) -> str:
    """Cents (BIGINT) as a decimal string with two places; NULL stays NULL."""
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE printf('%d.%02d', {col} // 100, {col} % 100) END"


def datefmt(col: str, fmt: str, alt_col: str | None = None, alt_fmt: str | None = None) -> str:
    if alt_col is None:
        return f"strftime({col}, '{fmt}')"
    return f"CASE WHEN {alt_col} THEN strftime({col}, '{alt_fmt}') ELSE strftime({col}, '{fmt}') END"


def _defect_array(codes) -> pa.Array:
    codes = np.asarray(codes)
    if codes.dtype == object:      # already text (organisation rows)
        return pa.array(codes, pa.string())
    inv, uniq = pd.factorize(codes.astype(np.int64))
    return pa.DictionaryArray.from_arrays(pa.array(inv.astype(np.int32)),
                                          pa.array([label_text(int(c)) for c in uniq], pa.string()))


class Deliverer:
    def __init__(self, out: Path, ctx: Ctx, people, names_cfg: dict):
        self.out = Path(out)
        self.ctx = ctx
        self.p = people
        self.defector = Defector(people, names_cfg)
        self.con = duckdb.connect()
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute("SET enable_progress_bar = false")
        self.tmp = self.out / (".tmp" if ctx.shards == 1 else f".tmp-{ctx.shard}")
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.links: list[pa.Table] = []
        self.procs: list[tuple[subprocess.Popen, Path, Path]] = []
        self.files: dict[str, int] = {}
        self.id_arr = pa.array(people.id.astype(object), pa.string())
        self.name_arr = pa.array(people.name.astype(object), pa.string())
        self.seq = 0
        self.manifests: list[tuple[str, str, list[str]]] = []   # a shard's, written once all shards are done

    def file_name(self, fname: str) -> str:
        """A shard of a city writes its own part of every delivery: ``hukou.csv`` becomes
        ``hukou-03of10.csv`` (CONTRACT.md §1: a delivery may be split over several files)."""
        if self.ctx.shards == 1:
            return fname
        stem, dot, ext = fname.rpartition(".")
        return f"{stem}-{self.ctx.shard + 1:02d}of{self.ctx.shards:02d}{dot}{ext}"

    # ------------------------------------------------------------------ person columns
    def person_cols(self, source: str, pid, disp=None, forced=None, gbk=False, org_code=None, org_name=None,
                    row_kinds=None, rng=None):
        """Delivered ID and name columns (arrow strings, NULL for empty) and per-row defect labels."""
        n = len(pid)
        pid = np.asarray(pid, dtype=np.int64)
        disp = np.full(n, -1, dtype=np.int64) if disp is None else np.asarray(disp, dtype=np.int64)
        forced = np.full(n, "", dtype=object) if forced is None else np.asarray(forced, dtype=object)
        rng = rng or self.ctx.sub("defects:" + source)
        id_idx, id_x, nm_idx, nm_x, id_lab, nm_lab = self.defector.apply(source, pid, disp, forced, gbk, rng,
                                                                         row_kinds)
        base = self.p.n
        org = pid < 0
        if org.any():
            k = int(org.sum())
            id_idx[org] = base + len(id_x) + np.arange(k)
            nm_idx[org] = base + len(nm_x) + np.arange(k)
            id_x = id_x + list(np.asarray(org_code, dtype=object)[org])
            onames = list(np.asarray(org_name, dtype=object)[org])
            if gbk:   # a GBK extract cannot hold every character of a name kept in UTF-8 elsewhere
                onames = [_gbk_safe(x) for x in onames]
            nm_x = nm_x + onames
            id_lab[org] = 0
            nm_lab[org] = 0
        ids = pc.take(pa.concat_arrays([self.id_arr, pa.array(id_x, pa.string())]), pa.array(id_idx))
        nms = pc.take(pa.concat_arrays([self.name_arr, pa.array(nm_x, pa.string())]), pa.array(nm_idx))
        ids = pc.if_else(pc.equal(ids, ""), pa.scalar(None, pa.string()), ids)
        return ids, nms, labels(id_lab, nm_lab)

    # ------------------------------------------------------------------ writing
    def path(self, source: str, date: dt.date, fname: str) -> Path:
        d = self.out / source / date.isoformat()
        d.mkdir(parents=True, exist_ok=True)
        return d / self.file_name(fname)

    def write_csv(self, source: str, date: dt.date, fname: str, tbl: pa.Table, select: str,
                  encoding: str = "utf-8") -> Path:
        dest = self.path(source, date, fname)
        self.seq += 1
        tmp = self.tmp / f"{self.seq}.csv"
        self.con.register("t", tbl)
        self.con.execute(f"COPY (SELECT {select} FROM t) TO '{tmp}' (HEADER, DELIMITER ',')")
        self.con.unregister("t")
        if encoding == "utf-8":
            os.replace(tmp, dest)
        elif encoding == "utf-8-sig":
            with open(dest, "wb") as f, open(tmp, "rb") as src:
                f.write(BOM)
                shutil.copyfileobj(src, f, 1 << 22)
            tmp.unlink()
        elif encoding == "gbk" and shutil.which("iconv") is None:     # slower, same bytes
            with open(tmp, encoding="utf-8", newline="") as src, open(dest, "w", encoding="gbk", newline="") as f:
                shutil.copyfileobj(src, f, 1 << 22)
            tmp.unlink()
        elif encoding == "gbk":
            fh = open(dest, "wb")
            proc = subprocess.Popen(["iconv", "-f", "UTF-8", "-t", "GBK", str(tmp)], stdout=fh,
                                    stderr=subprocess.PIPE)
            fh.close()
            self.procs.append((proc, tmp, dest))
        else:
            raise ValueError(encoding)
        self.files[str(dest.relative_to(self.out))] = tbl.num_rows
        return dest

    def write_jsonl(self, source: str, date: dt.date, fname: str, tbl: pa.Table, select: str) -> Path:
        dest = self.path(source, date, fname)
        self.con.register("t", tbl)
        self.con.execute(f"COPY (SELECT {select} FROM t) TO '{dest}' (FORMAT json)")
        self.con.unregister("t")
        self.files[str(dest.relative_to(self.out))] = tbl.num_rows
        return dest

    LINK_SCHEMA = pa.schema([("source", pa.dictionary(pa.int32(), pa.string())),
                             ("table", pa.dictionary(pa.int32(), pa.string())),
                             ("delivery_date", pa.dictionary(pa.int32(), pa.string())),
                             ("file", pa.dictionary(pa.int32(), pa.string())),
                             ("row", pa.int32()), ("owner_seq", pa.int8()), ("true_id", pa.string()),
                             ("defect", pa.dictionary(pa.int32(), pa.string()))])

    def start_links(self, path: Path) -> None:
        """links.parquet is written piece by piece by a thread while the deliveries are rendered."""
        self.link_rows = 0
        self.link_queue: queue.Queue = queue.Queue(maxsize=4)
        self.link_error: list = []

        def work():
            try:
                with pq.ParquetWriter(str(path), self.LINK_SCHEMA, compression="zstd") as w:
                    while True:
                        t = self.link_queue.get()
                        if t is None:
                            break
                        w.write_table(t, row_group_size=1_000_000)
            except Exception as e:     # reported by close_links
                self.link_error.append(e)
                while self.link_queue.get() is not None:
                    pass
        self.link_thread = threading.Thread(target=work, name="links-writer", daemon=True)
        self.link_thread.start()

    def close_links(self) -> int:
        self.link_queue.put(None)
        self.link_thread.join()
        if self.link_error:
            raise self.link_error[0]
        return self.link_rows

    def link(self, source: str, table: str, date: dt.date, fname: str, pid: np.ndarray, defect: np.ndarray,
             owner_seq: np.ndarray | None = None, row: np.ndarray | None = None) -> None:
        n = len(pid)
        pid = np.asarray(pid, dtype=np.int64)
        person = pid >= 0
        true_id = pc.take(self.id_arr, pa.array(np.where(person, pid, 0)))
        true_id = pc.if_else(pa.array(person), true_id, pa.scalar("", pa.string()))

        def const(v):
            return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([v]))
        t = pa.table({
            "source": const(source), "table": const(table), "delivery_date": const(date.isoformat()),
            "file": const(self.file_name(fname)),
            "row": pa.array(np.arange(1, n + 1, dtype=np.int32) if row is None else np.asarray(row, np.int32)),
            "owner_seq": pa.array(np.ones(n, np.int8) if owner_seq is None else np.asarray(owner_seq, np.int8)),
            "true_id": true_id,
            "defect": _defect_array(defect),
        }, schema=self.LINK_SCHEMA)
        self.link_rows += n
        self.link_queue.put(t)

    def finish(self) -> None:
        for proc, tmp, dest in self.procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"iconv failed for {dest}: {err.decode(errors='replace')}")
            tmp.unlink()
        self.procs = []
        self.con.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def manifest(self, source: str, date: dt.date, files: list[str]) -> None:
        files = [self.file_name(f) for f in files]
        if self.ctx.shards > 1:     # the whole delivery's manifest is written when every shard has written
            self.manifests.append((source, date.isoformat(), files))
            return
        write_manifest(self.out / source / date.isoformat(), files)


def write_manifest(folder: Path, files: list[str]) -> None:
    """MANIFEST.csv (file, rows, sha256) of the given files of a delivery folder."""
    lines = ["file,rows,sha256"]
    for f in files:
        data = (folder / f).read_bytes()
        rows = data.count(b"\n") - 1
        lines.append(f"{f},{rows},{hashlib.sha256(data).hexdigest()}")
    (folder / "MANIFEST.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

# ----------------------------------------------------------------------------------------------
# helpers shared by the source writers

class Col(np.ndarray):
    """A numpy column that also answers .to_numpy(), so render code reads frames and column sets alike."""

    def to_numpy(self):
        return np.asarray(self)


class Cols:
    """Rows of a table as plain numpy columns (cheap to reorder, unlike pandas string columns)."""

    def __init__(self, d: dict):
        self.d = d

    def __getitem__(self, k):
        return self.d[k].view(Col)

    def __len__(self):
        return len(next(iter(self.d.values()))) if self.d else 0

    @property
    def columns(self):
        return list(self.d)


def take_rows(df, idx: np.ndarray) -> Cols:
    return Cols({c: np.asarray(df[c].to_numpy())[idx] for c in df.columns})


def permute(df, rng) -> Cols:
    return take_rows(df, rng.permutation(len(df)))


def dup_order(n: int, rate: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Row order with a few exact copies inserted right after their originals; and the copy flags."""
    k = int(rng.binomial(n, rate)) if n else 0
    if k == 0:
        return np.arange(n), np.zeros(n, dtype=bool)
    src = np.sort(rng.choice(n, k, replace=False))
    order = np.concatenate([np.arange(n), src])
    key = np.concatenate([np.arange(n) * 2, src * 2 + 1])
    o = np.argsort(key, kind="stable")
    return order[o], np.concatenate([np.zeros(n, bool), np.ones(k, bool)])[o]


def add_duplicates(df, rate: float, rng, shuffle: bool = False) -> tuple[Cols, np.ndarray]:
    """Optionally shuffled rows with a few exact copies (one reordering of the columns, not two)."""
    idx, dup = dup_order(len(df), rate, rng)
    if shuffle:
        idx = rng.permutation(len(df))[idx]
    return take_rows(df, idx), dup


def dup_labels(lab: np.ndarray, dup: np.ndarray) -> np.ndarray:
    return np.where(dup, lab + DUP, lab)


def arr_date(x) -> pa.Array:
    return pa.array(np.asarray(x).astype("datetime64[D]"), pa.date32(), from_pandas=True)


def arr_str(x) -> pa.Array:
    """Strings as a dictionary array (fast for the many repeated values of a delivery); None is NULL."""
    codes, uniq = pd.factorize(np.asarray(x, dtype=object), use_na_sentinel=True)
    idx = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(np.asarray(uniq, dtype=object), pa.string()))


def arr_indexed(idx: np.ndarray, values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """values[idx] as a dictionary array without materialising the strings."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(idx, dtype=np.int32), mask=null),
                                          pa.array(np.asarray(values, dtype=object), pa.string()))


# ----------------------------------------------------------------------------------------------
# xlsx with xlsxwriter (rows rendered in bulk into its constant-memory row stream)

def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _col_letter(i: int) -> str:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]


def write_xlsx(path: Path, header: list[str], tbl: pa.Table, kinds: list[str], created: dt.datetime,
               con: duckdb.DuckDBPyConnection, tmp: Path) -> None:
    """One-sheet workbook written with xlsxwriter. tbl holds one column per header (strings or NULL);
    kinds: 's' text cell, 'n' number cell, 'sn' a text column whose twin column '<name>__num' holds the
    values to write as numbers instead (IDs stored as numbers).

    xlsxwriter writes the workbook (styles, shared parts, zip); the sheet rows between the header and
    the last row are rendered by DuckDB as inline-string XML and streamed into xlsxwriter's
    constant-memory row file, which is what xlsxwriter itself does row by row, only faster."""
    n = tbl.num_rows
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False,
                                         "tmpdir": str(tmp)})
    wb.set_properties({"created": created, "author": "不动产登记中心"})
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, header)
    if n == 0:
        wb.close()
        return
    ws._write_single_row(n)                                    # noqa: SLF001 (flushes the header row)
    names = [c for c in tbl.column_names if not c.endswith("__num")]
    cells = []
    for j, (c, kind) in enumerate(zip(names, kinds)):
        L = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[j]
        esc = f"replace(replace(replace({c}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"
        text = (f"'<c r=\"{L}' || r || '\" t=\"inlineStr\"><is><t' || "
                f"CASE WHEN regexp_matches({c}, '^\\s|\\s$') THEN ' xml:space=\"preserve\"' ELSE '' END || '>' || "
                f"{esc} || '</t></is></c>'")
        num = f"'<c r=\"{L}' || r || '\"><v>' || {{v}} || '</v></c>'"
        if kind == "n":
            cells.append(f"CASE WHEN {c} IS NULL OR {c} = '' THEN '' ELSE {num.format(v=c)} END")
        elif kind == "sn":
            cells.append(f"CASE WHEN {c}__num IS NOT NULL THEN {num.format(v=c + '__num')} "
                         f"WHEN {c} IS NULL OR {c} = '' THEN '' ELSE {text} END")
        else:
            cells.append(f"CASE WHEN {c} IS NULL OR {c} = '' THEN '' ELSE {text} END")
    body = tbl.slice(0, n - 1).append_column("r", pa.array(np.arange(2, n + 1, dtype=np.int64)))
    xml = "'<row r=\"' || r || '\">' || " + " || ".join(cells) + " || '</row>'"
    rows_file = tmp / (path.name + ".rows")
    con.register("x", body)
    con.execute(f"COPY (SELECT {xml} AS x FROM x) TO '{rows_file}' "
                "(FORMAT csv, HEADER false, DELIMITER '\x01', QUOTE '\x02', ESCAPE '\x02', NEW_LINE '\n')")
    con.unregister("x")
    fh = ws.row_data_fh
    fh.flush()
    with open(rows_file, "rb") as f:          # newlines between <row> elements are plain XML whitespace
        shutil.copyfileobj(f, fh.buffer, 1 << 22)
    fh.buffer.flush()
    rows_file.unlink()
    last = tbl.slice(n - 1, 1).to_pylist()[0]
    for j, (c, kind) in enumerate(zip(names, kinds)):
        x = last[c]
        if kind == "sn" and last.get(c + "__num") is not None:
            ws.write_number(n, j, float(last[c + "__num"]))
        elif x is None or x == "":
            continue
        elif kind == "n":
            ws.write_number(n, j, float(x))
        else:
            ws.write_string(n, j, x)
    wb.close()
