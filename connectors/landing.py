"""The landing zone: ``<landing>/<source>/<YYYY-MM-DD>/<files>`` (CONTRACT.md §1).

A night as of date D reads, per source, the newest delivery folder dated on or before D; later folders and
folders whose name is not a date are ignored. Each configured table takes the files that match its glob
(several matches = a split delivery, read in natural name order: part2 before part10). ``MANIFEST.csv``
(``file,rows,sha256``), when present, is checked after reading.
"""
from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from crosscheck.settings import SourceSpec

MANIFEST = "MANIFEST.csv"
_DATE_DIR = re.compile(r"\d{4}-\d{2}-\d{2}")


def natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def delivery_dates(landing: Path, source: str) -> list[date]:
    """Every delivery date of a source, oldest first (non-date folders and files ignored)."""
    folder = Path(landing) / source
    if not folder.is_dir():
        return []
    dates = []
    for child in folder.iterdir():
        if child.is_dir() and _DATE_DIR.fullmatch(child.name):
            try:
                dates.append(date.fromisoformat(child.name))
            except ValueError:
                continue  # 2024-13-45: not a date
    return sorted(dates)


@dataclass
class ManifestEntry:
    file: str
    rows: int | None
    sha256: str | None


@dataclass
class Delivery:
    source: str
    delivery_date: date
    folder: Path
    files: dict[str, list[Path]]                 # table → matched files, natural name order
    manifest: dict[str, ManifestEntry] | None    # file name → entry; None when there is no MANIFEST.csv
    notes: list[str] = field(default_factory=list)


def find_delivery(landing: Path, source: str, as_of: date, spec: SourceSpec) -> Delivery | None:
    """The newest delivery of ``source`` dated on or before ``as_of``, or None when there is none."""
    candidates = [d for d in delivery_dates(landing, source) if d <= as_of]
    if not candidates:
        return None
    chosen = candidates[-1]
    folder = Path(landing) / source / chosen.isoformat()
    names = sorted((p.name for p in folder.iterdir() if p.is_file()), key=natural_key)
    data_names = [n for n in names if n.upper() != MANIFEST.upper() and not n.startswith(".")]
    notes: list[str] = []
    files: dict[str, list[Path]] = {}
    claimed: set[str] = set()
    for table, tspec in spec.tables.items():
        matched = [n for n in data_names if fnmatch.fnmatchcase(n.lower(), tspec.files.lower())]
        files[table] = [folder / n for n in matched]
        claimed.update(matched)
    for name in data_names:
        if name not in claimed:
            notes.append(f"{source} {chosen}：文件 {name} 不属于任何约定的表，已忽略 "
                         f"(file {name} matches no configured table and was ignored)")
    manifest = None
    manifest_path = next((folder / n for n in names if n.upper() == MANIFEST.upper()), None)
    if manifest_path is not None:
        manifest, problems = read_manifest(manifest_path)
        notes.extend(f"{source} {chosen}: {p}" for p in problems)
    return Delivery(source, chosen, folder, files, manifest, notes)


def previous_delivery(landing: Path, source: str, before: date) -> tuple[date, list[Path]] | None:
    """The delivery folder just before ``before`` and its files (to recognise a repeated delivery)."""
    earlier = [d for d in delivery_dates(landing, source) if d < before]
    if not earlier:
        return None
    folder = Path(landing) / source / earlier[-1].isoformat()
    return earlier[-1], [p for p in folder.iterdir() if p.is_file() and p.name.upper() != MANIFEST.upper()]


def read_manifest(path: Path) -> tuple[dict[str, ManifestEntry], list[str]]:
    """Entries by file name, and problems found in the manifest itself."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")
    try:
        return _manifest_entries(path.name, text)
    except csv.Error as exc:   # a field over the csv module's limit, a stray CR: the manifest is not usable
        return {}, [f"{path.name} 无法解析，未使用 ({path.name} could not be parsed and was not used: {exc})"]


def _manifest_entries(name: str, text: str) -> tuple[dict[str, ManifestEntry], list[str]]:
    problems: list[str] = []
    entries: dict[str, ManifestEntry] = {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {(f or "").strip().lower(): f for f in (reader.fieldnames or [])}
    if "file" not in fields:
        return {}, [f"{name} 没有 file 列，未使用 ({name} has no 'file' column and was not used)"]
    for line_no, rec in enumerate(reader, start=2):
        file = (rec.get(fields["file"]) or "").strip()
        if not file:
            continue
        rows_text = (rec.get(fields.get("rows", ""), "") or "").strip() if "rows" in fields else ""
        sha = (rec.get(fields.get("sha256", ""), "") or "").strip().lower() if "sha256" in fields else ""
        rows = None
        if rows_text:
            try:
                rows = int(rows_text)
            except ValueError:
                problems.append(f"{name} 第 {line_no} 行的行数不是数字 (line {line_no}: row count is not a number)")
        entries[file] = ManifestEntry(file, rows, sha or None)
    return entries, problems


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


# SHA-256 of the files hashed during the night under way, by (path, device, inode, size, mtime, ctime): the
# night fingerprints every delivery file before it starts (crosscheck/workspace.py) and the load stage needs
# the same digests (reuse check, audit.load_files). flows/nightly.py clears it when a night starts.
_SEEN: dict[tuple, str] = {}


def stat_key(path: Path, st: os.stat_result) -> tuple:
    """What makes a file the same file tonight: a file replaced, rewritten or touched has another key."""
    return (str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_file(path: Path, chunk: int = 1 << 24) -> str:
    """The file's SHA-256, remembered for the rest of the night unless the file changed while it was read."""
    path = Path(path).resolve()
    with open(path, "rb") as fh:
        key = stat_key(path, os.fstat(fh.fileno()))
        if (known := _SEEN.get(key)) is not None:
            return known
        h = hashlib.sha256()
        while block := fh.read(chunk):
            h.update(block)
    if stat_key(path, os.stat(path)) == key:
        _SEEN[key] = h.hexdigest()
    return h.hexdigest()


def known_sha256(path: Path, st: os.stat_result) -> str | None:
    """The digest ``sha256_file`` computed tonight for exactly this file (same stat), or None."""
    return _SEEN.get(stat_key(path, st))


def forget_file_hashes() -> None:
    _SEEN.clear()
