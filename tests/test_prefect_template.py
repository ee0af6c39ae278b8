"""A new state folder starts Prefect's temporary server from a cached, freshly migrated empty database
(crosscheck/runtime.py) instead of running Prefect's migrations again; a damaged cache is never used."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from crosscheck import runtime

REPO = Path(__file__).resolve().parents[1]
START = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
         "from crosscheck.runtime import configure_prefect, start_temporary_server;"
         "configure_prefect(Path(sys.argv[2])); start_temporary_server()()")


def _package() -> Path:
    import importlib.util

    return Path(importlib.util.find_spec("prefect").submodule_search_locations[0])


def _start_server(state: Path, cache: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(XDG_CACHE_HOME=str(cache), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    subprocess.run([sys.executable, "-c", START, str(REPO), str(state)], env=env, check=True, timeout=300,
                   capture_output=True)


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_template_is_keyed_by_prefect_version_and_migrations(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", raising=False)
    database, template = runtime._database_and_template(_package())
    assert database == tmp_path / "home" / "prefect.db"
    assert template.parent == tmp_path / "cache" / "crosscheck"
    import importlib.metadata
    assert template.name.startswith(f"prefect-{importlib.metadata.version('prefect')}-")
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://127.0.0.1/test")
    assert runtime._database_and_template(_package()) == (None, None), "another database: no template"


def test_a_damaged_template_is_not_used(tmp_path):
    template, database = tmp_path / "template.db", tmp_path / "prefect.db"
    template.write_bytes(b"not a database" * 100)
    runtime._copy_template(template, database)
    assert not database.exists()
    with closing(sqlite3.connect(template.with_name("empty.db"))) as con:
        con.execute("CREATE TABLE other (x)")
        con.commit()
    runtime._copy_template(template.with_name("empty.db"), database)
    assert not database.exists(), "a database without Prefect's migrations is not a template"


def test_a_new_state_folder_starts_from_the_template(tmp_path):
    cache = tmp_path / "cache"
    _start_server(tmp_path / "first", cache)
    [template] = (cache / "crosscheck").glob("prefect-*.db")
    assert template.stat().st_mode & 0o777 == 0o600 and (cache / "crosscheck").stat().st_mode & 0o777 == 0o700
    tables = _tables(template)
    assert {"alembic_version", "flow_run"} <= tables
    with closing(sqlite3.connect(template)) as con:
        assert con.execute("SELECT count(*) FROM flow_run").fetchone()[0] == 0, "no run is kept in the template"
        con.execute("CREATE TABLE crosscheck_marker (x)")    # to recognise a copy
        con.commit()
    _start_server(tmp_path / "second", cache)
    copied = tmp_path / "second" / "prefect" / "prefect.db"
    assert "crosscheck_marker" in _tables(copied), "the second state folder's database is the template's copy"
    assert copied.stat().st_mode & 0o777 == 0o600
