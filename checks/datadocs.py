"""Great Expectations Data Docs for the stored validation results, readable offline.

``build_data_docs(context_root, out_dir)`` renders the GX file context in ``context_root`` (where
``GxCheckEngine`` keeps each night's results) into ``<out_dir>/data_docs/`` and returns the path of its
``index.html``.

GX's page templates load their CSS, JavaScript and fonts from CDNs (bootstrap, jQuery, popper,
bootstrap-table, bootstrap-datepicker, bootstrap-dark, Font Awesome, vega / vega-lite / vega-embed) and
the logo from GX's S3 bucket, with a build time and the context id in its query string. The verification
centre's machines reach no CDN, and a page of our results must not announce itself to anybody. So after
GX has written the site:

* the exact files those URLs serve, taken from the npm registry and kept in ``checks/datadocs_assets/``
  with their licences (README.md there lists versions, sources and checksums), are copied to
  ``data_docs/static/vendor/``, Font Awesome's webfonts beside its CSS;
* every page's references are rewritten to relative paths (so the docs open from ``file://`` and can be
  copied anywhere as one folder), the ``integrity`` / ``crossorigin`` attributes that file:// pages cannot
  satisfy are dropped (the files' sha384 equal those hashes: see README.md), the logo points at GX's own
  copy in ``static/images/``, and the newsletter footer is removed;
* every HTML and CSS file is scanned: a script, stylesheet, font or image still pointing at http(s) is an
  error (``strict=True``) or is blanked with a warning (default), so the docs never load anything remote.

The site is built in a temporary folder next to the target and moved into place when finished; every
file is owner-only (0600, folders 0700).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

from checks.gx_engine import using_context
from crosscheck.safety import make_private_dir

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("datadocs_assets")
SITE_NAME = "crosscheck"
DOCS_DIR = "data_docs"
VENDOR = "static/vendor"

# URL as GX 1.x's templates write it -> file under checks/datadocs_assets/ (see README.md there)
CDN: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap-4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/umd/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table-1.19.1/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table-1.19.1/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark-1.1.0/css/bootstrap-prefers-dark.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome-free-6.6.0/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega-5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite-5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed-6.29.0/vega-embed.min.js",
}
# GX's logo (light and dark) from its S3 bucket, light one with ?d=<build time>&dataContextId=<id>
_GX_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[\w.-]*\.amazonaws\.com/"
                      r"(?:logo-long|full_logo_dark)\.png(?:\?[^\"'\s)]*)?")
_SRI = re.compile(r"\s+(?:integrity|crossorigin)=\"[^\"]*\"")
_NEWSLETTER = re.compile(r"<footer>\s*<p>[^<]*newsletter.*?</footer>", re.S | re.I)
_STATIC_REF = re.compile(r"""((?:src|href)\s*=\s*["']|url\(\s*["']?)(?:\./|(?:\.\./)+)?static/""", re.I)
_EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.I)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]*)\1\s*\)|@import\s+(['\"])([^'\"]*)\3", re.I)


def build_data_docs(context_root: Path | str, out_dir: Path | str, *, strict: bool = False) -> Path:
    """Render the validation results kept in the GX file context ``context_root`` as Data Docs in
    ``<out_dir>/data_docs/`` with every script, stylesheet, font and image local. Returns the index page.
    ``strict``: raise instead of blanking a remote reference no asset here accounts for."""
    root = Path(context_root)
    if not (root / "great_expectations.yml").is_file():
        raise FileNotFoundError(f"no Great Expectations context in {root} (great_expectations.yml missing)")
    out = make_private_dir(Path(out_dir))
    final = out / DOCS_DIR
    tmp = out / f".{DOCS_DIR}.{os.getpid()}.tmp"
    old = out / f".{DOCS_DIR}.{os.getpid()}.old"
    with using_context(root) as context:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)
        make_private_dir(tmp)
        try:
            _build(context, tmp, strict)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    return final / "index.html"


def _build(context, tmp: Path, strict: bool) -> None:
    """GX writes the site into ``tmp`` through a site configured for this build only (not saved to
    great_expectations.yml), then the pages are made offline."""
    sites = context.variables.data_docs_sites
    context.variables.data_docs_sites = {SITE_NAME: {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(tmp)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }}
    try:
        context.build_data_docs(site_names=[SITE_NAME])
    finally:
        context.variables.data_docs_sites = sites
    localise(tmp, strict=strict)
    make_owner_only(tmp)


def localise(site: Path, *, strict: bool = False) -> None:
    """Ship the vendored assets into ``site`` and point every page at them (see the module docstring)."""
    vendor = site / VENDOR
    if vendor.exists():
        shutil.rmtree(vendor)
    shutil.copytree(ASSETS, vendor, copy_function=shutil.copyfile, ignore=shutil.ignore_patterns("README.md"))
    pages = [p for p in site.rglob("*") if p.suffix in (".html", ".css") and vendor not in p.parents]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        static = os.path.relpath(site / "static", page.parent).replace(os.sep, "/")
        if page.suffix == ".html":
            # GX's own static files, wherever the page is (GX miscounts the depth of the favicon's path on
            # validation pages whose suite name has a dot, which becomes a folder)
            text = _STATIC_REF.sub(lambda m: f"{m.group(1)}{static}/", text)
            for url, local in CDN.items():
                text = text.replace(f'"{url}"', f'"{static}/vendor/{local}"')
            text = _SRI.sub("", text)
            text = _NEWSLETTER.sub("", text)
        text = _GX_LOGO.sub(f"{static}/images/logo-long.png", text)
        page.write_text(text, encoding="utf-8")
    left = external_references(site)
    if left:
        listing = "; ".join(f"{path.relative_to(site)}: {url}" for path, url in left[:10])
        if strict:
            raise RuntimeError(f"Data Docs still load {len(left)} remote resource(s): {listing}")
        log.warning("Data Docs: blanking %d remote resource(s) no vendored asset covers: %s", len(left), listing)
        for path in {p for p, _ in left}:
            text = path.read_text(encoding="utf-8")
            for url in {u for p, u in left if p == path}:
                text = text.replace(url, "about:blank" if path.suffix == ".html" else "")
            path.write_text(text, encoding="utf-8")


def make_owner_only(top: Path) -> None:
    for folder, dirs, files in os.walk(top):
        os.chmod(folder, 0o700)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o600)


# --- finding what a page would load from elsewhere -------------------------------------------------------

_LOADING_ATTRS = {
    "script": ("src",), "img": ("src", "srcset"), "source": ("src", "srcset"), "iframe": ("src",),
    "embed": ("src",), "object": ("data",), "video": ("src", "poster"), "audio": ("src",), "track": ("src",),
    "input": ("src",), "image": ("href", "xlink:href"), "use": ("href", "xlink:href"), "link": ("href",),
}


_LOADING_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "prefetch", "modulepreload",
                 "manifest", "mask-icon"}


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        rel = set((values.get("rel") or "").lower().split())
        if tag == "link" and rel and rel.isdisjoint(_LOADING_RELS):
            pass                                   # e.g. rel=canonical / author: a link, not a load
        else:
            for attr in _LOADING_ATTRS.get(tag, ()):
                value = values.get(attr) or ""
                for part in value.split(","):
                    url = part.strip().split(" ")[0]
                    if _EXTERNAL.match(url):
                        self.urls.append(url)
        if values.get("style"):
            self.urls += css_references(values["style"])
        if tag == "style":
            self._in_style = True

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += css_references(data)


def css_references(css: str) -> list[str]:
    """Remote url(...) and @import targets in a piece of CSS (data: URIs are local)."""
    out = []
    for m in _CSS_URL.finditer(css):
        url = (m.group(2) if m.group(2) is not None else m.group(4) or "").strip()
        if _EXTERNAL.match(url):
            out.append(url)
    return out


def external_references(top: Path) -> list[tuple[Path, str]]:
    """(file, url) for every script, stylesheet, font or image under ``top`` that would be fetched over the
    network: <script src>, <link rel=stylesheet|icon|preload href>, <img src>, …, url() and @import in
    <style>, style="" and .css files. Plain links (<a href>) are not loads and are not reported."""
    found = []
    for path in sorted(top.rglob("*")):
        if path.suffix == ".html":
            parser = _Refs()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            found += [(path, u) for u in parser.urls]
        elif path.suffix == ".css":
            found += [(path, u) for u in css_references(path.read_text(encoding="utf-8", errors="replace"))]
    return found
