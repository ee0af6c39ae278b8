"""The night, top to bottom: load → validate → link → flag → ledger → report.

The flow only wires stages together; each stage's logic lives in its own package. Tasks return small
summaries (counts, statuses, never personal data); the data itself stays in the DuckDB warehouse.
Retries with backoff wrap only the I/O of reading deliveries and auditors' workbooks.

The night works aside (crosscheck/workspace.py): on a copy of the warehouse and in a partial output folder,
published together at the end, so a killed night leaves the last complete one in place and running it again
completes it exactly; a night already complete with the same inputs is not run again. A failure names its
stage and a reason with no personal data in it (the full traceback, IDs masked, goes to an owner-only file
in ``<state>/audit/tracebacks``); runs, imports of auditors' conclusions and report bundles are recorded in
the append-only audit log (crosscheck/auditlog.py).
"""
from __future__ import annotations

import functools
import threading
import traceback
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.tasks import exponential_backoff

from cases.export import open_cases, write_cases
from cases.feedback import import_feedback
from cases.ledger import update_ledger
from cases.reviews import review_night
from checks.datadocs import build_data_docs
from checks.gx_engine import gx_module
from checks.validate import engine_for, validate_source
from connectors.base import scrub_exception
from connectors.landing import find_delivery, forget_file_hashes
from connectors.load import load_source, plan_reads
from connectors.readahead import start_read_ahead, stop_read_ahead
from crosscheck import auditlog
from crosscheck.metrics import measured
from crosscheck.runtime import NightAlreadyRunning, exclusive_night
from crosscheck.safety import make_private_dir, mask_ids, private_umask, write_private_text
from crosscheck.settings import config_dir, load_policy, load_sources, load_thresholds
from crosscheck.warehouse import connect, table_exists
from crosscheck.workspace import (completed_night, discard_precopy, inputs_sha, open_workspace, record_night,
                                  warehouse_path)
from linkage.link import link_all
from reports.night import source_rows, write_night_report, write_summary
from reports.stewards import delivery_problems, problem_line, write_dashboard
from reports.bundles import start_bundles
from reports.site import Site
from reports.workbook import start_district_workbooks
from rules.engine import evaluate_rules

REPO = Path(__file__).resolve().parents[1]
CODE_DIRS = ("crosscheck", "flows", "connectors", "checks", "linkage", "rules", "cases", "reports")

__all__ = ["night", "warehouse_path", "NightFailed"]


class StageError(RuntimeError):
    """A task's failure as Prefect records it: the exception's type and text with IDs masked and Chinese
    text (possibly a name) removed; the traceback stays in the owner-only file named in the message."""


class NightFailed(RuntimeError):
    """The night stopped: ``stage`` and a reason without personal data. Nothing was published."""

    def __init__(self, run_date: str, stage: str, reason: str):
        super().__init__(f"night {run_date} failed at stage {stage}: {reason}")
        self.stage, self.reason = stage, reason


def _keep_traceback(exc: BaseException) -> Path | None:
    """The whole traceback, IDs masked, in an owner-only file beside the warehouse; its path or None."""
    state = _CURRENT.get("state")
    if not state:
        return None
    folder = make_private_dir(Path(state) / "audit" / "tracebacks")
    path = folder / f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S.%fZ')}.txt"
    write_private_text(path, mask_ids("".join(traceback.format_exception(exc))))
    return path


def scrubbed(fn):
    """Tasks raise StageError: Prefect logs and stores a failed task's exception text and traceback, and a
    database error can quote a cell (a name, an ID)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (StageError, NightAlreadyRunning):
            raise
        except Exception as exc:  # noqa: BLE001 — re-raised, scrubbed
            kept = _keep_traceback(exc)
            where = f" (traceback: {kept})" if kept else ""
            raise StageError(scrub_exception(exc) + where) from None
    return wrapper


_CURRENT: dict[str, str] = {}      # the state folder of the night under way, for _keep_traceback


@task(name="load", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=5),
      persist_result=False, task_run_name="load-{source}")
@scrubbed
def load_task(landing: str, as_of: date, warehouse: str, source: str, full: bool = False) -> dict:
    with connect(Path(warehouse)) as con:
        result = load_source(con, Path(landing), source, as_of, as_of, reuse=not full)
    return {k: v for k, v in result.items() if k in ("status", "delivery_date", "rows_read", "rows_staged",
                                                       "rows_quarantined", "messages", "reused_from")}


@task(name="read-ahead", persist_result=False)
@scrubbed
def read_ahead_task(landing: str, as_of: date, warehouse: str, full: bool = False) -> int:
    """Start reading tonight's delivered files on a background thread, one ahead of the loader
    (connectors/readahead.py); returns how many files it will offer."""
    max_bytes = load_thresholds().read_ahead_max_mib << 20
    if max_bytes <= 0:
        return 0
    with connect(Path(warehouse)) as con:
        plan = plan_reads(con, Path(landing), as_of, as_of, reuse=not full)
    start_read_ahead(plan, max_bytes)
    return len(plan)


@task(name="validate", persist_result=False, task_run_name="validate-{source}")
@scrubbed
def validate_task(as_of: date, state: str, warehouse: str, source: str) -> dict:
    engine = engine_for(load_thresholds(), Path(state))
    with connect(Path(warehouse)) as con:
        result = validate_source(con, source, as_of, as_of, engine=engine)
    return {k: v for k, v in result.items() if k in ("status", "reason", "delivery_date", "age_days")}


@task(name="data-docs", persist_result=False)
@scrubbed
def data_docs_task(state: str, out: str) -> dict:
    """Great Expectations' Data Docs for the stewards, styled offline. A failure here is reported, and
    the night goes on: the dashboard and the audit tables hold the same results."""
    if load_thresholds().check_engine != "great_expectations":
        return {"data_docs": None, "data_docs_error": None}
    try:
        make_private_dir(Path(out))
        index = build_data_docs(Path(state) / "gx", Path(out))
    except Exception as exc:  # noqa: BLE001 — reported in the summary, never fatal to the night
        get_run_logger().warning("Data Docs not built: %s", scrub_exception(exc))
        return {"data_docs": None, "data_docs_error": scrub_exception(exc)}
    return {"data_docs": str(index), "data_docs_error": None}


@task(name="link", persist_result=False)
@scrubbed
def link_task(warehouse: str, full: bool = False) -> dict:
    with connect(Path(warehouse)) as con:
        return link_all(con, load_sources(), full=full)


@task(name="flag", persist_result=False)
@scrubbed
def flag_task(as_of: date, warehouse: str, source_status: dict) -> list[dict]:
    with connect(Path(warehouse)) as con:
        return evaluate_rules(con, load_policy(), as_of, source_status)


@task(name="ledger", persist_result=False)
@scrubbed
def ledger_task(as_of: date, warehouse: str, rule_results: list[dict]) -> dict:
    with connect(Path(warehouse)) as con:
        return update_ledger(con, load_policy(), as_of, rule_results)


@task(name="reviews", persist_result=False)
@scrubbed
def reviews_task(as_of: date, warehouse: str, out: str, roster_status: dict) -> dict:
    """Households due for their periodic review (POLICY.md), listed in <out>/reviews_due.csv."""
    with connect(Path(warehouse)) as con:
        return review_night(con, load_policy(), as_of, Path(out), roster_status)


@task(name="feedback", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=5), persist_result=False)
@scrubbed
def feedback_task(landing: str, as_of: date, warehouse: str) -> dict:
    """Auditors' returned workbooks, imported before tonight's flags are applied to the ledger."""
    with connect(Path(warehouse)) as con:
        result = import_feedback(con, Path(landing), as_of)
    return result.__dict__


@task(name="report", persist_result=False)
@scrubbed
def report_task(as_of: date, warehouse: str, out: str, summary: dict) -> dict:
    """Write the case export, the workbooks, the HTML report and the per-district bundles (report, workbook,
    PDF); return what the summary adds."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    report_problems: list[str] = []
    with connect(Path(warehouse)) as con:
        rule_names = {code: spec.name for code, spec in load_policy().rules.items()}
        cases = open_cases(con, as_of, rule_names)
        reviews = (con.execute("SELECT * FROM ledger.reviews_due WHERE run_date = ?", [as_of]).df()
                   if table_exists(con, "ledger", "reviews_due") else None)
        # The workbooks (a helper process, niced: crosscheck/runtime.py background_helper) start first and the
        # PDFs (Chromium, niced) after the report's data is read, with the fairness figures, the stage's one
        # heavy query (2 s at scale 1 alone, 7 s beside Chromium); all of it is written while the rest is.
        workbook_job = start_district_workbooks(cases, out_dir, as_of.isoformat(), reviews)
        site = Site(con, as_of)              # read once, for the centre's report and every district's
        site.fairness_rows(None)
        bundles = start_bundles(con, as_of, out_dir, cases, reviews, report_problems)
        try:
            paths = write_cases(cases, out_dir)
            added = {"sources": source_rows(con, as_of, summary["sources"]), "cases_exported": len(cases),
                     "problems": [{**p, "line": problem_line(p)} for p in delivery_problems(con, as_of)]}
            paths.update(write_night_report(con, as_of, out_dir, {**summary, **added}, cases, site=site))
            paths["dashboard"] = write_dashboard(con, as_of, out_dir,
                                                 data_docs="data_docs/index.html" if summary.get("data_docs") else None)
            if summary.get("data_docs"):
                paths["data_docs"] = Path(summary["data_docs"])
            workbooks = workbook_job.result()
            added["workbooks"] = len(workbooks)
            paths["workbooks"] = out_dir / "workbooks"
            added["report_problems"] = report_problems
            added["bundles"] = len(bundles.finish(site=site, workbooks=workbooks))
            paths["districts"] = out_dir / "districts"
        finally:
            bundles.close()
    for problem in added["report_problems"]:
        get_run_logger().warning("report: %s", problem)
    added["outputs"] = {k: str(v) for k, v in paths.items()}
    return added


@task(name="summary", persist_result=False)
@scrubbed
def summary_task(out: str, summary: dict) -> dict:
    return {k: str(v) for k, v in write_summary(Path(out), summary).items()}


def _today_in_shanghai() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


@flow(name="crosscheck-night", persist_result=False, log_prints=False)
def night(landing: str, out: str, state: str, as_of: str | None = None, full: bool = False) -> dict:
    """Run one night as of `as_of` (YYYY-MM-DD; today in Asia/Shanghai when omitted, as for the
    scheduled deployment) on the deliveries in `landing`. Unchanged deliveries are reused (not read,
    validated or linked again) unless `full`. Two nights on one state folder at once are refused, never
    interleaved; a night already complete with the same inputs is not run again (unless `full`)."""
    as_of = as_of or _today_in_shanghai()
    out = out.replace("{as_of}", as_of)       # one folder per night for a deployment: OUT=/srv/out/{as_of}
    private_umask()          # run by a Prefect worker too: whatever the night writes is owner-only
    try:
        lock = exclusive_night(Path(state))
        with _stage("lock", as_of, {}, {}):
            lock.__enter__()
    except NightAlreadyRunning as exc:
        auditlog.append(Path(state), "night_refused", run_date=as_of, reason=str(exc))
        get_run_logger().error("%s", exc)
        raise
    try:
        _CURRENT["state"] = state
        return _night_once(landing, as_of, out, state, full)
    finally:
        _CURRENT.pop("state", None)
        discard_precopy(Path(state))      # a copy made ahead that no workspace took, removed under the lock
        lock.__exit__(None, None, None)


def night_inputs_sha(landing: Path, run_date: date) -> str | None:
    """crosscheck/workspace.py inputs_sha over tonight's deliveries and feedback workbooks; None when a
    source is read from a front database (its content has no file to fingerprint: the night always runs)."""
    cfg = load_sources()
    files: list[Path] = []
    for name, spec in cfg.sources.items():
        if getattr(spec, "front_db", None) is not None:
            return None
        delivery = find_delivery(landing, name, run_date, spec)
        if delivery is not None:          # every file of the delivery folder, MANIFEST.csv included
            files += [p for p in delivery.folder.rglob("*") if p.is_file()]
    feedback = landing / "feedback"
    if feedback.is_dir():
        for folder in feedback.iterdir():
            try:
                if date.fromisoformat(folder.name) <= run_date:
                    files += [p for p in folder.rglob("*") if p.is_file()]
            except ValueError:
                continue
    return inputs_sha(landing, run_date, files, config_dir(), [REPO / d for d in CODE_DIRS])


@contextmanager
def _stage(name: str, run_date: str, timings: dict, peaks: dict, cpu: dict | None = None):
    """Time the stage (wall, peak memory and, with ``cpu``, CPU seconds) and turn any failure into NightFailed
    naming it."""
    try:
        with measured(timings, peaks, name, cpu):
            yield
    except (NightFailed, NightAlreadyRunning):
        raise
    except Exception as exc:  # noqa: BLE001 — re-raised as NightFailed, scrubbed
        reason = str(exc) if isinstance(exc, StageError) else scrub_exception(exc)
        if not isinstance(exc, StageError) and (kept := _keep_traceback(exc)):
            reason += f" (traceback: {kept})"
        raise NightFailed(run_date, name, reason) from None


def _night_once(landing: str, as_of: str, out: str, state: str, full: bool) -> dict:
    try:
        return _night_recorded(landing, as_of, out, state, full)
    except NightFailed as exc:
        auditlog.append(Path(state), "night_failed", run_date=as_of, stage=exc.stage, reason=exc.reason)
        get_run_logger().error("%s", exc)
        raise


def _night_recorded(landing: str, as_of: str, out: str, state: str, full: bool) -> dict:
    """The night unless already complete: inputs fingerprinted, worked aside, published, audit-logged."""
    logger = get_run_logger()
    run_date = date.fromisoformat(as_of)
    timings: dict[str, float] = {}
    peaks: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with _stage("load", as_of, timings, peaks):
        if not Path(landing).is_dir():
            raise StageError(f"the landing zone {landing} does not exist or is not a folder")
    with _stage("prepare", as_of, timings, peaks, cpu):
        forget_file_hashes()          # a digest is reused only within the night that computed it
        sha = night_inputs_sha(Path(landing), run_date)
        done = None if full or sha is None else completed_night(Path(state), Path(out), run_date, sha)
    if done is not None:
        logger.info("night %s is already complete with the same deliveries, feedback, configuration and code: "
                    "nothing to do (crosscheck run --full runs it again)", as_of)
        auditlog.append(Path(state), "night_already_complete", run_date=as_of, inputs_sha=sha)
        return {**done, "already_complete": True}
    auditlog.append(Path(state), "night_started", run_date=as_of, landing=landing, out=out, full=full,
                    inputs_sha=sha)
    with _stage("workspace", as_of, timings, peaks, cpu):
        ws = open_workspace(Path(state), Path(out))
    try:
        summary = _night(landing, run_date, str(ws.warehouse), str(ws.out), state, full, timings, peaks, cpu)
        with _stage("publish", as_of, timings, peaks, cpu):
            with connect(ws.warehouse) as con:
                record_night(con, run_date, sha)
            summary = _published(summary, ws.out, Path(out))
            summary["inputs_sha"] = sha
            # the summary names itself, so that a rerun finding the night complete can print it whole
            summary["outputs"].update(summary_json=str(Path(out) / "run_summary.json"),
                                      summary_md=str(Path(out) / "run_summary.md"))
            summary_task(str(ws.out), summary)
            ws.commit()
    except BaseException:
        ws.discard()
        raise
    _audit_night(Path(state), summary)
    logger.info("night %s finished: %s", as_of, {r["rule"]: r["households"] for r in summary["rules"]})
    return summary


def _final_paths(value, partial: Path, out: Path):
    """The summary as it will read once published: paths under the partial folder become paths in out."""
    if isinstance(value, dict):
        return {k: _final_paths(v, partial, out) for k, v in value.items()}
    if isinstance(value, list):
        return [_final_paths(v, partial, out) for v in value]
    if isinstance(value, (str, Path)) and str(value).startswith(str(partial)):
        return str(out / Path(value).relative_to(partial))
    return value


def _published(summary: dict, partial: Path, out: Path) -> dict:
    return {**_final_paths(summary, partial, out), "out": str(out)}


def _audit_night(state: Path, summary: dict) -> None:
    """The night's entries in the audit log, once its results are published: each auditors' workbook
    imported tonight (from the committed ledger), each district bundle's files with their SHA-256, and the
    night itself."""
    from connectors.landing import sha256_file

    run_date = summary["run_date"]
    with connect(warehouse_path(state), read_only=True) as con:
        imported = (con.execute("SELECT file, sha256, feedback_date, rows_read, rows_accepted, rows_rejected "
                                "FROM ledger.feedback_files WHERE imported_on = ? ORDER BY feedback_date, file",
                                [date.fromisoformat(run_date)]).fetchall()
                    if table_exists(con, "ledger", "feedback_files") else [])
    for file, sha, feedback_date, read, accepted, rejected in imported:
        auditlog.append(state, "feedback_imported", run_date=run_date, file=file, sha256=sha,
                        feedback_date=str(feedback_date), rows_read=read, rows_accepted=accepted,
                        rows_rejected=rejected)
    districts = Path(summary.get("outputs", {}).get("districts") or "")
    if districts.name and districts.is_dir():
        for folder in sorted(p for p in districts.iterdir() if p.is_dir()):
            files = {f.name: sha256_file(f) for f in sorted(folder.iterdir()) if f.is_file()}
            auditlog.append(state, "bundle_written", run_date=run_date, district=folder.name, files=files)
    auditlog.append(state, "night_finished", run_date=run_date, inputs_sha=summary.get("inputs_sha"),
                    cases_exported=summary.get("cases_exported"),
                    outputs=sorted(Path(p).name for p in summary.get("outputs", {}).values()))


_WARMING: list[threading.Thread] = []
_WARMING_LOCK = threading.Lock()


def warm_check_engine() -> threading.Thread | None:
    """Import Great Expectations (about 3 s) on a background thread, once per process. ``crosscheck run``
    starts it while it waits for Prefect's temporary server to answer (about 2.3 s with nothing else to
    do); a night started otherwise (a deployment's worker) starts it when the night begins, and the load
    stage overlaps it. Returns the thread, or None when the check engine is not Great Expectations."""
    if load_thresholds().check_engine != "great_expectations":
        return None
    with _WARMING_LOCK:
        if not _WARMING:
            def warm() -> None:
                try:
                    gx_module()
                except Exception:  # noqa: BLE001 — validate imports it again and reports a failure properly
                    pass

            thread = threading.Thread(target=warm, name="gx-import", daemon=True)
            thread.start()
            _WARMING.append(thread)
        return _WARMING[0]


def _night(landing: str, run_date: date, warehouse: str, out: str, state: str, full: bool,
           timings: dict, peaks: dict, cpu: dict) -> dict:
    logger = get_run_logger()
    as_of = run_date.isoformat()
    sources = list(load_sources().sources)

    warm_check_engine()
    with _stage("load", as_of, timings, peaks, cpu):
        read_ahead = {"planned": read_ahead_task(landing, run_date, warehouse, full)}
        try:
            loads = {s: load_task(landing, run_date, warehouse, s, full) for s in sources}
        finally:
            read_ahead["served"] = stop_read_ahead()
    with _stage("validate", as_of, timings, peaks, cpu):
        status = {s: validate_task(run_date, state, warehouse, s) for s in sources}
        docs = data_docs_task(state, out)
    for source, state_ in status.items():
        if state_["status"] != "ok":
            logger.warning("source %s not usable tonight: %s (%s)", source, state_["status"], state_.get("reason"))
    with _stage("link", as_of, timings, peaks, cpu):
        links = link_task(warehouse, full)
    link_seconds = links.pop("seconds", {})
    with _stage("flag", as_of, timings, peaks, cpu):
        rules = flag_task(run_date, warehouse, status)
    with _stage("ledger", as_of, timings, peaks, cpu):
        feedback = feedback_task(landing, run_date, warehouse)
        ledger = ledger_task(run_date, warehouse, rules)
        reviews = reviews_task(run_date, warehouse, out, status.get("roster"))
    for message in feedback["messages"]:
        logger.warning("feedback: %s", message)
    summary = {
        "run_date": as_of, "landing": landing, "out": out, "state": state,
        "sources": {s: {**loads[s], **status[s]} for s in sources},
        "links": links, "rules": rules, "ledger": ledger, "feedback": feedback, "stages": timings, "stage_peak_mib": peaks,
        "stage_cpu_s": cpu,
        "link_seconds": link_seconds, "read_ahead": read_ahead, **docs,
        "reviews": {k: v for k, v in reviews.items() if k != "outputs"},
    }
    with _stage("report", as_of, timings, peaks, cpu):
        summary.update(report_task(run_date, warehouse, out, summary))
    summary["stages"], summary["stage_peak_mib"], summary["stage_cpu_s"] = timings, peaks, cpu
    summary["outputs"].update(reviews["outputs"])
    return summary
