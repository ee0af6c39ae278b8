"""The night, top to bottom: load → validate → link → flag → ledger → report.

The flow only wires stages together; each stage's logic lives in its own package. Tasks return small
summaries (counts, statuses, never personal data); the data itself stays in the DuckDB warehouse.
Retries with backoff wrap only the I/O of reading deliveries.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.tasks import exponential_backoff

from cases.export import open_cases, write_cases
from cases.feedback import import_feedback
from cases.ledger import update_ledger
from cases.reviews import review_night
from checks.datadocs import build_data_docs
from checks.validate import engine_for, validate_source
from connectors.base import scrub_exception
from connectors.load import load_source
from crosscheck.metrics import measured
from crosscheck.runtime import exclusive_night
from crosscheck.safety import make_private_dir
from crosscheck.settings import load_policy, load_sources, load_thresholds
from crosscheck.warehouse import connect, table_exists
from linkage.link import link_all
from reports.night import source_rows, write_night_report, write_summary
from reports.stewards import delivery_problems, problem_line, write_dashboard
from reports.bundles import start_bundles
from reports.site import Site
from reports.workbook import start_district_workbooks
from rules.engine import evaluate_rules


def warehouse_path(state: Path) -> Path:
    return state / "warehouse.duckdb"


@task(name="load", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=5),
      persist_result=False, task_run_name="load-{source}")
def load_task(landing: str, as_of: date, state: str, source: str, full: bool = False) -> dict:
    with connect(warehouse_path(Path(state))) as con:
        result = load_source(con, Path(landing), source, as_of, as_of, reuse=not full)
    return {k: v for k, v in result.items() if k in ("status", "delivery_date", "rows_read", "rows_staged",
                                                       "rows_quarantined", "messages", "reused_from")}


@task(name="validate", persist_result=False, task_run_name="validate-{source}")
def validate_task(as_of: date, state: str, source: str) -> dict:
    engine = engine_for(load_thresholds(), Path(state))
    with connect(warehouse_path(Path(state))) as con:
        result = validate_source(con, source, as_of, as_of, engine=engine)
    return {k: v for k, v in result.items() if k in ("status", "reason", "delivery_date", "age_days")}


@task(name="data-docs", persist_result=False)
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
def link_task(state: str, full: bool = False) -> dict:
    with connect(warehouse_path(Path(state))) as con:
        return link_all(con, load_sources(), full=full)


@task(name="flag", persist_result=False)
def flag_task(as_of: date, state: str, source_status: dict) -> list[dict]:
    with connect(warehouse_path(Path(state))) as con:
        return evaluate_rules(con, load_policy(), as_of, source_status)


@task(name="ledger", persist_result=False)
def ledger_task(as_of: date, state: str, rule_results: list[dict]) -> dict:
    with connect(warehouse_path(Path(state))) as con:
        return update_ledger(con, load_policy(), as_of, rule_results)


@task(name="reviews", persist_result=False)
def reviews_task(as_of: date, state: str, out: str, roster_status: dict) -> dict:
    """Households due for their periodic review (POLICY.md), listed in <out>/reviews_due.csv."""
    with connect(warehouse_path(Path(state))) as con:
        return review_night(con, load_policy(), as_of, Path(out), roster_status)


@task(name="feedback", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=5), persist_result=False)
def feedback_task(landing: str, as_of: date, state: str) -> dict:
    """Auditors' returned workbooks, imported before tonight's flags are applied to the ledger."""
    with connect(warehouse_path(Path(state))) as con:
        result = import_feedback(con, Path(landing), as_of)
    return result.__dict__


@task(name="report", persist_result=False)
def report_task(as_of: date, state: str, out: str, summary: dict) -> dict:
    """Write the case export, the workbooks, the HTML report and the per-district bundles (report, workbook,
    PDF); return what the summary adds."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    report_problems: list[str] = []
    with connect(warehouse_path(Path(state))) as con:
        rule_names = {code: spec.name for code, spec in load_policy().rules.items()}
        cases = open_cases(con, as_of, rule_names)
        reviews = (con.execute("SELECT * FROM ledger.reviews_due WHERE run_date = ?", [as_of]).df()
                   if table_exists(con, "ledger", "reviews_due") else None)
        # the workbooks (a helper process) and the PDFs (Chromium) are written while the rest is
        workbook_job = start_district_workbooks(cases, out_dir, as_of.isoformat(), reviews)
        bundles = start_bundles(con, as_of, out_dir, cases, reviews, report_problems)
        try:
            paths = write_cases(cases, out_dir)
            added = {"sources": source_rows(con, as_of, summary["sources"]), "cases_exported": len(cases),
                     "problems": [{**p, "line": problem_line(p)} for p in delivery_problems(con, as_of)]}
            site = Site(con, as_of)          # read once, for the centre's report and every district's
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
def summary_task(out: str, summary: dict) -> dict:
    return {k: str(v) for k, v in write_summary(Path(out), summary).items()}


def _today_in_shanghai() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


@flow(name="crosscheck-night", persist_result=False, log_prints=False)
def night(landing: str, out: str, state: str, as_of: str | None = None, full: bool = False) -> dict:
    """Run one night as of `as_of` (YYYY-MM-DD; today in Asia/Shanghai when omitted, as for the
    scheduled deployment) on the deliveries in `landing`. Unchanged deliveries are reused (not read,
    validated or linked again) unless `full`. Two nights on one state folder at once are refused, never
    interleaved."""
    as_of = as_of or _today_in_shanghai()
    with exclusive_night(Path(state)):
        return _night(landing, as_of, out, state, full)


def _night(landing: str, as_of: str, out: str, state: str, full: bool = False) -> dict:
    logger = get_run_logger()
    run_date = date.fromisoformat(as_of)
    sources = list(load_sources().sources)
    timings: dict[str, float] = {}
    peaks: dict[str, float] = {}

    with measured(timings, peaks, "load"):
        loads = {s: load_task(landing, run_date, state, s, full) for s in sources}
    with measured(timings, peaks, "validate"):
        status = {s: validate_task(run_date, state, s) for s in sources}
        docs = data_docs_task(state, out)
    for source, state_ in status.items():
        if state_["status"] != "ok":
            logger.warning("source %s not usable tonight: %s (%s)", source, state_["status"], state_.get("reason"))
    with measured(timings, peaks, "link"):
        links = link_task(state, full)
    with measured(timings, peaks, "flag"):
        rules = flag_task(run_date, state, status)
    with measured(timings, peaks, "ledger"):
        feedback = feedback_task(landing, run_date, state)
        ledger = ledger_task(run_date, state, rules)
        reviews = reviews_task(run_date, state, out, status.get("roster"))
    for message in feedback["messages"]:
        logger.warning("feedback: %s", message)
    summary = {
        "run_date": as_of, "landing": landing, "out": out, "state": state,
        "sources": {s: {**loads[s], **status[s]} for s in sources},
        "links": links, "rules": rules, "ledger": ledger, "feedback": feedback, "stages": timings, "stage_peak_mib": peaks, **docs,
        "reviews": {k: v for k, v in reviews.items() if k != "outputs"},
    }
    with measured(timings, peaks, "report"):
        summary.update(report_task(run_date, state, out, summary))
    summary["stages"], summary["stage_peak_mib"] = timings, peaks
    summary["outputs"].update(reviews["outputs"])
    summary["outputs"].update(summary_task(out, summary))
    logger.info("night %s finished: %s", as_of, {r["rule"]: r["households"] for r in rules})
    return summary
