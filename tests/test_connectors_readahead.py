"""The load stage's read-ahead (connectors/readahead.py): the loader gets exactly what it would have read
itself, never more than one file is read ahead, and a file changed or too large is left to the loader."""
from __future__ import annotations

import os
import threading
import time

import pytest

import connectors.files as files
from connectors.files import FileConnector, read_file
from connectors.readahead import PlannedRead, ReadAhead, start_read_ahead, stop_read_ahead
from crosscheck.settings import TableSpec

SPEC = TableSpec.model_validate({
    "format": "csv", "encoding": "gb18030", "files": "*.csv",
    "columns": {"证件号码": {"name": "id_number", "type": "text", "role": "id_number"},
                "姓名": {"name": "name", "type": "text", "role": "person_name"}}})


def _write(path, rows, encoding="gb18030"):
    path.write_bytes(("证件号码,姓名\n" + "".join(f"{i},{n}\n" for i, n in rows)).encode(encoding))
    return path


@pytest.fixture
def three_files(tmp_path):
    return [_write(tmp_path / "a.csv", [("420802198001010011", "王小明")]),
            _write(tmp_path / "b.csv", [("420802198001010022", "單依純"), ("420802198001010033", "李四")]),
            _write(tmp_path / "c.csv", [("420802198001010044", "张三")], encoding="utf-8")]


def _wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def _same(a, b):
    assert (a.name, a.sha256, a.size, a.encoding, a.rows_read, a.notes, a.error) == \
           (b.name, b.sha256, b.size, b.encoding, b.rows_read, b.notes, b.error)
    assert a.table.equals(b.table)


def test_the_loader_gets_what_it_would_have_read(three_files):
    expected = [read_file(p, SPEC) for p in three_files]
    start_read_ahead([PlannedRead(p, SPEC) for p in three_files], 1 << 20)
    try:
        got = list(FileConnector(SPEC, three_files).read())
    finally:
        served = stop_read_ahead()
    assert served == 3
    for a, b in zip(got, expected):
        _same(a, b)
    assert got[1].encoding == "gb18030" and got[1].table.column("姓名").to_pylist() == ["單依純", "李四"]


def test_never_more_than_one_file_ahead(three_files, monkeypatch):
    read: list[str] = []
    real = files.read_file

    def recording(path, spec):
        read.append(path.name)
        return real(path, spec)

    monkeypatch.setattr(files, "read_file", recording)
    ahead = ReadAhead([PlannedRead(p, SPEC) for p in three_files], 1 << 20).start()
    try:
        _wait_until(lambda: 0 in ahead._done)
        time.sleep(0.3)    # room for a wrong second read to happen
        assert read == ["a.csv"], "nothing is read beyond the next file before the loader takes one"
        assert ahead.take(three_files[0], SPEC) is not None
        _wait_until(lambda: 1 in ahead._done)
        time.sleep(0.3)
        assert read == ["a.csv", "b.csv"]
    finally:
        ahead.stop()


def test_a_file_changed_after_it_was_read_ahead_is_read_again(three_files):
    ahead = ReadAhead([PlannedRead(three_files[0], SPEC)], 1 << 20).start()
    try:
        _wait_until(lambda: 0 in ahead._done)
        _write(three_files[0], [("420802198001010011", "王小明"), ("420802198001010055", "赵六")])
        st = os.stat(three_files[0])
        os.utime(three_files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
        assert ahead.take(three_files[0], SPEC) is None
    finally:
        ahead.stop()
    assert next(FileConnector(SPEC, three_files[:1]).read()).rows_read == 2


def test_a_file_larger_than_the_limit_is_left_to_the_loader(three_files):
    ahead = ReadAhead([PlannedRead(p, SPEC) for p in three_files], max_bytes=10).start()
    try:
        assert all(ahead.take(p, SPEC) is None for p in three_files)
    finally:
        ahead.stop()
    assert ahead.served == 0


def test_another_spec_is_not_served(three_files):
    other = SPEC.model_copy(update={"encoding": "utf-8"})
    ahead = ReadAhead([PlannedRead(three_files[0], SPEC)], 1 << 20).start()
    try:
        _wait_until(lambda: 0 in ahead._done)
        assert ahead.take(three_files[0], other) is None
    finally:
        ahead.stop()


def test_files_the_loader_skips_do_not_hold_up_the_rest(three_files):
    ahead = ReadAhead([PlannedRead(p, SPEC) for p in three_files], 1 << 20).start()
    got = ahead.take(three_files[2], SPEC)     # the loader never asks for a.csv or b.csv
    assert got is None or got.rows_read == 1
    ahead._thread.join(timeout=10)
    assert not ahead._thread.is_alive()
    assert ahead.take(three_files[0], SPEC) is None, "a file behind the loader is not served"


def test_stop_ends_a_waiting_read_ahead(three_files):
    ahead = ReadAhead([PlannedRead(p, SPEC) for p in three_files], 1 << 20).start()
    _wait_until(lambda: 0 in ahead._done)
    ahead.stop()
    ahead._thread.join(timeout=10)
    assert not ahead._thread.is_alive() and ahead._done == {}


def test_a_failed_background_read_is_done_again_by_the_loader(three_files, monkeypatch):
    def failing(path, spec):
        if threading.current_thread().name == "read-ahead":
            raise MemoryError("simulated")
        return read_file(path, spec)

    monkeypatch.setattr(files, "read_file", failing)
    start_read_ahead([PlannedRead(three_files[0], SPEC)], 1 << 20)
    try:
        got = next(FileConnector(SPEC, three_files[:1]).read())
    finally:
        assert stop_read_ahead() == 0
    assert got.rows_read == 1 and got.error is None


def test_the_night_reads_every_file_ahead(small_night):
    _, _, summary = small_night
    ahead = summary["read_ahead"]
    assert ahead["planned"] > 10 and ahead["served"] == ahead["planned"]
