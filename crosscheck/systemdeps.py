"""The few Debian packages the project needs beyond Python, installed by the project itself.

* ``chromium``: the headless browser the tests open the dashboard, Data Docs and reports in;
* ``fonts-noto-cjk`` and ``fonts-hanazono``: Chinese text (rare characters too) in PDFs and screenshots;
* ``poppler-utils``: ``pdftoppm``, which turns a PDF into images so tests can look at it.

``ensure`` installs what is missing with apt-get when it runs as root (CI, the project's machines) and
otherwise says what to install; it never pretends a package is there.
"""
from __future__ import annotations

import os
import shutil
import subprocess

PACKAGES = {
    "chromium": "/usr/bin/chromium",
    "fonts-noto-cjk": "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "fonts-hanazono": "/usr/share/fonts/truetype/hanazono/HanaMinA.ttf",
    "poppler-utils": "/usr/bin/pdftoppm",
}


def missing(packages: list[str] | None = None) -> list[str]:
    return [p for p in (packages or list(PACKAGES)) if not os.path.exists(PACKAGES[p])]


def ensure(packages: list[str] | None = None) -> list[str]:
    """Install the missing packages if this process may; returns those still missing afterwards."""
    todo = missing(packages)
    if todo and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run = lambda *cmd: subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # noqa: E731
                                          text=True, timeout=1200)
        if run("apt-get", "install", "-y", "--no-install-recommends", *todo).returncode != 0:
            run("apt-get", "update")
            run("apt-get", "install", "-y", "--no-install-recommends", *todo)
    return missing(packages)


def main() -> int:
    still = ensure()
    if still:
        print("not installed (run as root: apt-get install " + " ".join(still) + ")")
        return 1
    print("system packages present: " + ", ".join(PACKAGES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
