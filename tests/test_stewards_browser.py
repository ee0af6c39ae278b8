"""The stewards' pages opened the way a steward opens them: headless Chromium, file://, network off.

Styling is checked, not assumed: computed styles of elements the stylesheets style, compared with the
same page with its stylesheets blocked (so the check is shown able to fail). Screenshots are saved in
the session's temporary folder, or in $CROSSCHECK_SCREENSHOTS when set.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CROSSCHECK_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_offline(browser, path: Path, *, block_styles: bool = False):
    """A page on ``path`` with the network off; returns (page, context, requests made off the disk)."""
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    external: list[str] = []

    def route(r):
        url = r.request.url
        if not url.startswith(("file:", "data:", "about:")):
            external.append(url)
            return r.abort()
        if block_styles and (r.request.resource_type == "stylesheet" or url.endswith(".css")):
            return r.abort()
        return r.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, context, external


def style(page, selector: str, prop: str) -> str:
    return page.evaluate("([s, p]) => getComputedStyle(document.querySelector(s)).getPropertyValue(p)",
                         [selector, prop])


def test_dashboard_offline_styled_and_complete(small_night, browser, shots):
    base, _, summary = small_night
    page, context, external = open_offline(browser, base / "out" / "dashboard.html")
    try:
        assert external == []
        assert style(page, "header", "background-color") == "rgb(18, 59, 99)"
        assert style(page, "td.num", "text-align") == "right"
        assert style(page, ".badge.ok", "background-color") == "rgb(46, 125, 50)"
        rows = page.locator("#sources tbody tr")
        assert rows.count() == len(summary["sources"])
        for source in summary["sources"]:
            row = page.locator(f"#source-{source}")
            assert row.locator(".badge").inner_text() == "ok"
            assert row.locator("svg.spark circle").count() >= 1          # the trend has tonight's point
        # the broken deliveries of the generated night are listed with file, rows and reason
        problems = page.locator("#problems tbody tr")
        assert problems.count() == len(summary["problems"]) > 0
        assert "完全重复" in page.locator("#problems").inner_text()
        page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    finally:
        context.close()


DATA_DOCS_STYLED = {
    # Bootstrap 4 makes the tab list a flex row and colours secondary buttons; Font Awesome draws the icons
    ".nav-tabs": ("display", "flex"),
    ".btn-secondary": ("background-color", "rgb(108, 117, 125)"),
}


def data_docs_state(page) -> dict:
    page.evaluate("document.fonts.ready")
    state = {sel: style(page, sel, prop) for sel, (prop, _) in DATA_DOCS_STYLED.items()}
    state["icon_font"] = page.evaluate(
        "document.fonts.check('900 16px \"Font Awesome 6 Free\"') && "
        "getComputedStyle(document.querySelector('.fas')).fontFamily.includes('Font Awesome')")
    state["tables_enhanced"] = page.locator(".bootstrap-table").count() > 0      # jQuery + bootstrap-table ran
    return state


def test_data_docs_offline_styled(small_night, browser, shots):
    base, _, summary = small_night
    index = base / "out" / "data_docs" / "index.html"
    assert summary["data_docs"] == str(index) and index.exists()
    page, context, external = open_offline(browser, index)
    try:
        state = data_docs_state(page)
        assert external == [], external
        assert {sel: state[sel] for sel in DATA_DOCS_STYLED} == {s: v for s, (_, v) in DATA_DOCS_STYLED.items()}
        assert state["icon_font"] and state["tables_enhanced"]
        page.screenshot(path=str(shots / "data_docs_index.png"), full_page=True)
        # the page of one night's validation of one suite
        assert page.locator("table.ge-index-page-validation-results-table tbody tr").count() > 0
        suites = {p.relative_to(index.parent / "validations").parts[0]
                  for p in (index.parent / "validations").rglob("*.html")}
        assert {f"{s}" for s in summary["sources"]} <= {x.split(".")[0] for x in suites}   # every source validated
    finally:
        context.close()
    validation = sorted((index.parent / "validations").rglob("*.html"))[0]
    page, context, external = open_offline(browser, validation)
    try:
        assert style(page, "table", "border-collapse") == "collapse"     # Bootstrap's table style
        assert page.evaluate("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
        assert "可用身份证号" in page.inner_text("body") or "代码表" in page.inner_text("body") or \
            "行数" in page.inner_text("body")                              # our steward wording, in Chinese
        page.screenshot(path=str(shots / "data_docs_validation.png"), full_page=True)
        assert external == [], external
    finally:
        context.close()
    # the same page with its stylesheets refused: the checks above see the difference
    page, context, _ = open_offline(browser, index, block_styles=True)
    try:
        state = data_docs_state(page)
        assert state[".nav-tabs"] != "flex" and state[".btn-secondary"] != "rgb(108, 117, 125)"
        assert not state["icon_font"]
    finally:
        context.close()
