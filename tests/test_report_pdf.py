"""The district PDF summaries (reports/pdf.py): content, masking, escaping, one district per file, and
Chinese that is really drawn, rare characters included.

"Really drawn" is checked on pixels, not assumed: the PDF's text layer is no proof, because Chromium maps a
missing glyph (tofu, a hollow box) back to its Unicode character, so pdftotext reads tofu as perfect Chinese
(test_control_without_cjk_fonts_fails_the_checks shows exactly that). So the tests rasterise with pdftoppm
and compare each character's bitmap with the bitmap Chromium draws for a code point no installed font has
(U+30000, CJK Ext G): a real glyph differs from that tofu box, and different characters differ from each
other. The control prints the same pages with fontconfig limited to DejaVu (no CJK font) and shows that
these checks then fail. pdffonts is used for what it can show: the Hanazono fonts embedded for Ext B
characters. Noto CJK's CFF outlines are embedded by Skia as unnamed Type 3 fonts, so "no Type 3" cannot be
a criterion here; the pixel checks are.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cases.ledger import ensure_ledger
from crosscheck import systemdeps
from reports import pdf as pdfmod
from reports.pdf import pdf_name, print_html_to_pdf, render_district_html, write_district_pdf, write_district_pdfs

RUN = date(2026, 11, 20)
FULL_ID = "420802198001011234"
FULL_ID_2 = "420802199002023456"
FULL_ID_OTHER = "420804197503037777"
RARE_NAME = "王䶮"                   # U+4DAE, CJK Ext A (Noto CJK covers it)
EXTB_NAME = "李𠀀𪛖"                 # U+20000 and U+2A6D6, CJK Ext B: only Hanazono has them here
TOFU = "\U00030000"                   # CJK Ext G: no installed font has it, so Chromium draws its missing-glyph box


@pytest.fixture(scope="module", autouse=True)
def _system_packages():
    still = systemdeps.ensure(["chromium", "fonts-noto-cjk", "fonts-hanazono", "poppler-utils"])
    if still:
        pytest.skip("not installed and not installable here: " + ", ".join(still))


def _case(case_id, household, rule, status, district, township, member_id, name, evidence, priority, deadline):
    return (case_id, household, rule, status, date(2026, 10, 1), RUN, deadline, township, district, township,
            "城市低保", member_id, name, evidence, "fp-" + case_id, "id_exact", 1.0, priority, None, RUN)


@pytest.fixture()
def ledger_con():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ledger")
    ensure_ledger(con)
    rows = [
        _case("R02-DB0001", "DB0001", "R02", "new", "东宝区", "子陵铺镇", FULL_ID, RARE_NAME,
              "<script>alert('x')</script> 机动车登记 鄂H12345 小型汽车 截至 2026-11-19", 1, date(2026, 10, 31)),
        _case("R01-DB0002", "DB0002", "R01", "open", "东宝区", "龙泉街道", FULL_ID_2, EXTB_NAME,
              f"火化信息 身份证号 {FULL_ID_2} 死亡日期 2026-09-01", 1, date(2026, 12, 20)),
        _case("R04-DB0003", "DB0003", "R04", "refuted", "东宝区", "龙泉街道", FULL_ID_2, "张伟",
              "经营企业 已查否", 2, date(2026, 9, 1)),
        _case("R02-DD0009", "DD0009", "R02", "new", "掇刀区", "团林铺镇", FULL_ID_OTHER, "刘洋",
              "机动车登记 鄂H99999", 2, date(2026, 12, 20)),
    ]
    con.executemany("INSERT INTO ledger.cases VALUES (" + ", ".join(["?"] * 20) + ")", rows)
    yield con
    con.close()


# --- pixels -------------------------------------------------------------------------------------------------------

def _read_pgm(path: Path) -> np.ndarray:
    """pdftoppm -gray writes binary PGM (P5, 8-bit): header, then one byte per pixel."""
    data = path.read_bytes()
    fields = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert fields, "expected a binary PGM from pdftoppm -gray"
    width, height, maxval = map(int, fields.groups())
    assert maxval == 255
    return np.frombuffer(data[fields.end():fields.end() + width * height], dtype=np.uint8).reshape(height, width)


def _rasterise(pdf: Path, prefix: Path, dpi: int, page: int = 1) -> np.ndarray:
    """pdftoppm one page to greyscale pixels (PGM, read without an imaging library)."""
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-f", str(page), "-l", str(page), "-singlefile",
                    str(pdf), str(prefix)], check=True, timeout=60)
    return _read_pgm(prefix.with_suffix(".pgm"))


CELL_MM, FONT_MM, DPI = 24, 16, 100


def _glyph_sheet(chars: list[str], folder: Path, env: dict | None = None) -> list[np.ndarray]:
    """Print each character alone in its own 24 mm cell (same fonts as the summary page), rasterise, and
    return each cell's ink mask."""
    cells = "".join(
        f'<div style="position:absolute;left:{i * CELL_MM}mm;top:0;width:{CELL_MM}mm;height:{CELL_MM}mm;'
        f'font-size:{FONT_MM}mm;line-height:{CELL_MM}mm;text-align:center">{ch}</div>' for i, ch in enumerate(chars))
    css = re.search(r"body \{ font-family: ([^;]+);", (pdfmod.TEMPLATES / "district_summary.html.j2").read_text(
        encoding="utf-8")).group(1)
    html = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><style>'
            f'@page{{size:{CELL_MM * len(chars)}mm {CELL_MM}mm;margin:0}}body{{margin:0;font-family:{css}}}'
            f'</style></head><body>{cells}</body></html>')
    page = folder / "sheet.html"
    page.write_text(html, encoding="utf-8")
    pdf = print_html_to_pdf(page, folder / "sheet.pdf", env=env)
    image = _rasterise(pdf, folder / "sheet", DPI)
    px = CELL_MM / 25.4 * DPI
    return [image[2:int(px) - 2, int(i * px) + 2:int((i + 1) * px) - 2] < 128 for i in range(len(chars))]


def _iou(a: np.ndarray, b: np.ndarray, shift: int = 2) -> float:
    """Overlap of two ink masks (intersection over union), the best over shifts of up to ``shift`` pixels, so
    a one-pixel difference in where a cell was cut does not make two identical boxes look different."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    best = 0.0
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            moved = np.roll(np.roll(b, dy, axis=0), dx, axis=1)
            union = (a | moved).sum()
            best = max(best, float((a & moved).sum() / union) if union else 1.0)
    return best


def _glyph_problems(chars: list[str], masks: list[np.ndarray]) -> list[str]:
    """What is wrong with the drawn characters: no ink, the same drawing as the missing-glyph box, or two
    different characters drawn alike (a row of identical boxes). The last mask is the tofu reference."""
    *glyphs, tofu = masks
    problems = []
    for ch, m in zip(chars, glyphs):
        if m.sum() < 40:
            problems.append(f"{ch} U+{ord(ch):04X}: no ink")
        elif tofu.sum() and _iou(m, tofu) > 0.5:
            problems.append(f"{ch} U+{ord(ch):04X}: drawn like the missing-glyph box (IoU {_iou(m, tofu):.2f})")
    for i in range(len(glyphs)):
        for j in range(i + 1, len(glyphs)):
            if chars[i] != chars[j] and glyphs[i].sum() and _iou(glyphs[i], glyphs[j]) > 0.8:
                problems.append(f"{chars[i]} and {chars[j]} drawn alike (IoU {_iou(glyphs[i], glyphs[j]):.2f})")
    return problems


SHEET = list("东宝区核对线索汇总") + list("䶮㛃㑇㐱㬎䓖䌹㺄") + ["𠀀", "𪛖"]


def _no_cjk_env(folder: Path) -> dict:
    """fontconfig limited to DejaVu: no font on the machine can draw Chinese."""
    folder.mkdir()
    (folder / "fonts.conf").write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{folder / 'cache'}</cachedir></fontconfig>",
        encoding="utf-8")
    return {**os.environ, "FONTCONFIG_FILE": str(folder / "fonts.conf")}


def _tofu_is_unsupported():
    listed = subprocess.run(["fc-list", f":charset={ord(TOFU):x}", "family"], capture_output=True, text=True).stdout
    if listed.strip():
        pytest.skip(f"some installed font covers U+{ord(TOFU):X}; pick another reference code point")


def _text(pdf: Path, layout: bool = False) -> str:
    return subprocess.run(["pdftotext", *(["-layout"] if layout else []), str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout


def _fonts(pdf: Path) -> str:
    return subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True, timeout=60).stdout


# --- the tests ----------------------------------------------------------------------------------------------------

def test_district_pdf_content_masking_escaping_and_only_its_district(ledger_con, tmp_path):
    out = tmp_path / "东宝区.pdf"
    problems: list[str] = []
    started = time.perf_counter()
    assert write_district_pdf(ledger_con, RUN, "东宝区", out, problems=problems) == out, problems
    print(f"one district PDF: {time.perf_counter() - started:.2f} s")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p != out], "temporary files left behind"
    text = _text(out)
    flat = re.sub(r"\s+", "", text)
    assert "东宝区·核对线索汇总·2026-11-20" in flat
    for expected in ("子陵铺镇", "龙泉街道", RARE_NAME, EXTB_NAME, "死亡未停保", "拥有机动车", "R02-DB0001", "R01-DB0002",
                     "420802********1234", "420802********3456", "<script>alert('x')</script>"):
        assert expected in flat or expected in text, expected
    assert FULL_ID not in flat and FULL_ID_2 not in flat, "a full ID reached the PDF (evidence is masked too)"
    for other in ("掇刀区", "团林铺镇", "DD0009", "刘洋", FULL_ID_OTHER[:6] + "********"):
        assert other not in flat, f"another district's case leaked: {other}"
    assert "R04-DB0003" not in flat.split("待核查线索明细")[1], "a refuted case is listed among the open ones"
    # Hanazono is embedded for the Ext B characters of EXTB_NAME (Noto has none of them)
    fonts = _fonts(out)
    assert "HanaMinA" in fonts and "HanaMinB" in fonts, fonts


def test_template_escapes_markup(ledger_con):
    html = render_district_html(ledger_con, RUN, "东宝区")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert FULL_ID not in html and FULL_ID_2 not in html


def test_chinese_is_drawn_on_the_page_not_tofu(ledger_con, tmp_path):
    """pdftoppm page 1 at 80 dpi: the title band has ink and is not what the same page looks like with no CJK
    font; and every character of the title and every rare character is drawn as its own glyph."""
    _tofu_is_unsupported()
    out = write_district_pdf(ledger_con, RUN, "东宝区", tmp_path / "d.pdf")
    page = _rasterise(out, tmp_path / "page", 80)
    assert page.shape[0] > page.shape[1] > 500, "A4 portrait expected"
    assert (page < 128).mean() > 0.005, "the page is blank"
    band = page[30:80, 30:420] < 128                  # the title line: 14 mm top margin, 18 pt
    assert band.mean() > 0.05, f"no title in the title band ({band.mean():.3f} dark)"

    page_html = tmp_path / "page.html"
    page_html.write_text(render_district_html(ledger_con, RUN, "东宝区"), encoding="utf-8")
    control = print_html_to_pdf(page_html, tmp_path / "control.pdf", env=_no_cjk_env(tmp_path / "fc"))
    control_band = _rasterise(control, tmp_path / "control", 80)[30:80, 30:420] < 128
    assert _iou(band, control_band) < 0.5, "the title looks the same as with no CJK font at all"

    masks = _glyph_sheet(SHEET + [TOFU], tmp_path)
    assert _glyph_problems(SHEET, masks) == []


def test_control_without_cjk_fonts_fails_the_checks(tmp_path):
    """The checks above can fail: with fontconfig limited to DejaVu, Chromium draws boxes, pdftotext still
    reads perfect Chinese (so text extraction proves nothing), and _glyph_problems flags every character."""
    _tofu_is_unsupported()
    env = _no_cjk_env(tmp_path / "fc")
    masks = _glyph_sheet(SHEET + [TOFU], tmp_path, env=env)
    problems = _glyph_problems(SHEET, masks)
    flagged = {p.split(" ")[0] for p in problems}
    assert set(SHEET) <= flagged, problems
    text = _text(tmp_path / "sheet.pdf")
    survived = [ch for ch in SHEET if ch in text]
    assert len(survived) >= len(SHEET) - 1, f"expected the text layer to survive as tofu; it holds {survived}"
    assert "HanaMin" not in _fonts(tmp_path / "sheet.pdf")


def test_missing_chromium_or_timeout_returns_none_with_a_message(ledger_con, tmp_path, monkeypatch):
    problems: list[str] = []
    assert write_district_pdf(ledger_con, RUN, "东宝区", tmp_path / "t.pdf", problems=problems, timeout=0.05) is None
    assert "did not finish" in problems[-1]
    monkeypatch.setattr(pdfmod, "find_chromium", lambda: None)
    assert write_district_pdf(ledger_con, RUN, "东宝区", tmp_path / "m.pdf", problems=problems) is None
    assert "Chromium is not installed" in problems[-1]
    assert write_district_pdfs(ledger_con, RUN, {"东宝区": tmp_path / "d.pdf"}, problems=problems) == {}
    assert "Chromium is not installed" in problems[-1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("printer", ["devtools pipe", "command line"])
def test_concurrent_printing_one_failure_leaves_the_others(ledger_con, tmp_path, monkeypatch, printer):
    """Two Chromium processes at a time: a district whose print fails (here: times out) is reported in
    ``problems`` with its name, and the other districts' PDFs are written all the same. Either printer: one
    Chromium per worker over the DevTools pipe, or, when that cannot start, one ``--print-to-pdf`` per page."""
    from reports import chromium

    printing = {"now": 0, "most": 0}

    def counted(print_page, html_path, timeout, timeout_error):
        printing["now"] += 1
        printing["most"] = max(printing["most"], printing["now"])
        try:
            if "掇刀区" in html_path.read_text(encoding="utf-8"):
                raise timeout_error
            return print_page()
        finally:
            printing["now"] -= 1

    if printer == "devtools pipe":
        real_pipe = chromium.PipePrinter.print_pdf

        def flaky_pipe(self, html_path, pdf_path, timeout):
            return counted(lambda: real_pipe(self, html_path, pdf_path, timeout), html_path, timeout,
                           chromium.PrintTimeout("no answer in time"))

        monkeypatch.setattr(chromium.PipePrinter, "print_pdf", flaky_pipe)
        monkeypatch.setattr(pdfmod, "print_html_to_pdf", lambda *a, **k: pytest.fail("the pipe printer works"))
    else:
        real = pdfmod.print_html_to_pdf

        def no_pipe(*args, **kwargs):
            raise chromium.PrinterError("no DevTools pipe here")

        def flaky(html_path, pdf_path, *, timeout=pdfmod.PRINT_TIMEOUT_S, env=None):
            return counted(lambda: real(html_path, pdf_path, timeout=timeout, env=env), html_path, timeout,
                           pdfmod.PdfError(f"Chromium did not finish printing {html_path.name} within {timeout:.0f} s"))

        monkeypatch.setattr(pdfmod, "PipePrinter", no_pipe)
        monkeypatch.setattr(pdfmod, "print_html_to_pdf", flaky)
    targets = {d: tmp_path / pdf_name(d, RUN) for d in ("东宝区", "掇刀区", "不存在区")}
    problems: list[str] = []
    timings: dict[str, float] = {}
    written = write_district_pdfs(ledger_con, RUN, targets, problems=problems, timings=timings)
    assert set(written) == {"东宝区", "不存在区"}
    assert problems == [f"PDF 掇刀区: Chromium did not finish printing summary.html within {pdfmod.PRINT_TIMEOUT_S} s"]
    assert 1 <= printing["most"] <= pdfmod.PRINT_WORKERS and set(timings) == set(targets)
    for district, path in written.items():
        assert path == targets[district] and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert f"{district}·核对线索汇总·{RUN.isoformat()}" in re.sub(r"\s+", "", _text(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written.values()), \
        "temporary files left behind, or a failed PDF in place"


def test_pipe_printer_prints_what_the_command_line_prints(tmp_path):
    """The DevTools printer gives the PDF ``chromium --print-to-pdf --no-pdf-header-footer`` gives: same
    page count, page size and text; it leaves no browser and no profile behind."""
    from reports.chromium import PipePrinter

    page = tmp_path / "page.html"
    page.write_text("<!doctype html><meta charset='utf-8'><style>@page { size: A4; margin: 15mm }</style>"
                    + "".join(f"<p>第 {i} 行 东宝区 核对线索</p>" for i in range(300)), encoding="utf-8")
    cli = print_html_to_pdf(page, tmp_path / "cli.pdf")
    printer = PipePrinter(pdfmod.find_chromium(), pdfmod.CHROMIUM_FLAGS)
    try:
        piped = printer.print_pdf(page, tmp_path / "pipe.pdf", 60)
        again = printer.print_pdf(page, tmp_path / "pipe2.pdf", 60)     # the same browser, a second page
    finally:
        printer.close()
    info = lambda pdf: [line for line in subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,  # noqa: E731
                                                        check=True, timeout=60).stdout.splitlines()
                        if line.startswith(("Pages:", "Page size:"))]
    assert info(piped) == info(cli) == info(again) and "Pages:" in info(cli)[0]
    assert _text(piped) == _text(cli) and "第 299 行" in _text(piped)
    assert stat.S_IMODE(piped.stat().st_mode) == 0o600
    assert printer.proc.poll() is not None and not Path(printer.profile).exists()


def test_pipe_printer_never_prints_an_error_page_and_stops_on_a_timeout(tmp_path):
    from reports.chromium import PipePrinter, PrinterError, PrintTimeout

    printer = PipePrinter(pdfmod.find_chromium(), pdfmod.CHROMIUM_FLAGS)
    try:
        with pytest.raises(PrinterError, match="could not open"):
            printer.print_pdf(tmp_path / "missing.html", tmp_path / "missing.pdf", 60)
        assert not (tmp_path / "missing.pdf").exists()
        page = tmp_path / "page.html"
        page.write_text("<p>东宝区</p>", encoding="utf-8")
        with pytest.raises(PrintTimeout):
            printer.print_pdf(page, tmp_path / "late.pdf", 0.001)
        assert printer.proc.poll() is not None, "a timed-out browser is stopped, with its process group"
    finally:
        printer.close()
    assert not Path(printer.profile).exists() and not (tmp_path / "late.pdf").exists()


def test_small_night_one_pdf_per_district_with_only_its_cases(small_night, tmp_path):
    from crosscheck.warehouse import connect

    base, _, _ = small_night
    con = connect(base / "state" / "warehouse.duckdb", read_only=True)
    try:
        cases = con.execute("SELECT district, case_id, status FROM ledger.cases").fetchall()
        timings: dict[str, float] = {}
        problems: list[str] = []
        districts = {d for d, _, _ in cases if d}
        (tmp_path / "pdf").mkdir()
        written = write_district_pdfs(con, RUN, {d: tmp_path / "pdf" / pdf_name(d, RUN) for d in sorted(districts)},
                                      problems=problems, timings=timings)
    finally:
        con.close()
    assert problems == [] and set(written) == districts and districts
    print("PDF seconds per district: " + ", ".join(f"{d} {s:.2f}" for d, s in timings.items()))
    for district, path in written.items():
        assert path == tmp_path / "pdf" / pdf_name(district, RUN) and path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        flat = re.sub(r"\s+", "", _text(path))
        assert f"{district}·核对线索汇总·{RUN.isoformat()}" in flat
        own = {c for d, c, s in cases if d == district and s in ("new", "open")}
        others = {c for d, c, _ in cases if d != district}
        assert own and all(c in flat for c in own), f"{district}: missing own cases"
        leaked = [c for c in others if c in flat]
        assert not leaked, f"{district}: other districts' cases in its PDF: {leaked[:5]}"
