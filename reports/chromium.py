"""One headless Chromium that prints many pages: the DevTools protocol over a private pipe.

``chromium --print-to-pdf`` starts a whole browser for every page: at scale 1 the seven district summaries
took 9.5 s one after another, of which 4 s were seven browser start-ups. ``PipePrinter`` starts Chromium
once with ``--remote-debugging-pipe`` (the protocol on file descriptors 3 and 4 of the child, so no port
that another local user could connect to) and, per page, opens a tab on the local file, waits for its
load event and asks for ``Page.printToPDF`` with the page's own CSS page size and no header or footer:
the same PDF as ``--print-to-pdf --no-pdf-header-footer`` (checked page for page and byte count for the
seven scale-1 summaries), in 5.4 s for all seven.

The browser runs with the flags reports/pdf.py gives the command-line printer: headless, offline (every
host name resolves to nothing), a throw-away user-data-dir, its own process group killed on a timeout or
when the printer is closed. Messages are NUL-separated JSON; every read has a deadline.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from crosscheck.runtime import background_helper


class PrinterError(RuntimeError):
    """The browser could not be started, died, or answered with an error (not a timeout)."""


class PrintTimeout(RuntimeError):
    """The page was not printed within its time limit."""


def _child_pipes(read_fd: int, write_fd: int):
    """preexec_fn: the protocol pipe on the child's descriptors 3 (Chromium reads) and 4 (Chromium writes)."""
    def arrange() -> None:
        high_read = fcntl.fcntl(read_fd, fcntl.F_DUPFD, 10)      # above 4, so that neither dup2 clobbers the other
        high_write = fcntl.fcntl(write_fd, fcntl.F_DUPFD, 10)
        os.dup2(high_read, 3)
        os.dup2(high_write, 4)
        background_helper()
    return arrange


class PipePrinter:
    """A Chromium process printing local HTML files to PDF, one page at a time. Not thread-safe: one per thread."""

    def __init__(self, chromium: str, flags: list[str], *, start_timeout: float = 30.0):
        self.profile = tempfile.mkdtemp(prefix="crosscheck-pdf-profile-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [chromium, *flags, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(3, 4), start_new_session=True, preexec_fn=_child_pipes(to_child_r, from_child_w))
        except OSError as exc:
            self._close_fds()
            shutil.rmtree(self.profile, ignore_errors=True)
            raise PrinterError(f"Chromium could not be started: {exc}") from None
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._buffer = bytearray()       # appended in place: a PDF message is megabytes
        self._next_id = 0
        try:
            self._call("Browser.getVersion", deadline=time.monotonic() + start_timeout)
        except (PrinterError, PrintTimeout) as exc:
            self.close(kill=True)
            raise PrinterError(f"Chromium did not answer on its DevTools pipe: {exc}") from None

    # --- protocol ------------------------------------------------------------------------------------
    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_child, data):]
        except OSError as exc:
            raise PrinterError(f"the DevTools pipe is closed ({exc})") from None
        return self._next_id

    def _receive(self, deadline: float) -> dict:
        end = self._buffer.find(b"\0")
        while end < 0:                      # a PDF arrives as one message of megabytes: look only at new bytes
            left = deadline - time.monotonic()
            if left <= 0:
                raise PrintTimeout("no answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                raise PrintTimeout("no answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise PrinterError(f"Chromium closed its DevTools pipe (exit {self.proc.poll()})")
            found = chunk.find(b"\0")
            if found >= 0:
                end = len(self._buffer) + found
            self._buffer += chunk
        message, self._buffer = self._buffer[:end], self._buffer[end + 1:]
        return json.loads(message)

    def _call(self, method: str, params: dict | None = None, session: str | None = None, *,
              deadline: float) -> dict:
        wanted = self._send(method, params, session)
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise PrinterError(f"{method}: {message['error'].get('message', message['error'])}")
                return message.get("result", {})

    def _wait_event(self, name: str, session: str, deadline: float) -> None:
        while True:
            message = self._receive(deadline)
            if message.get("method") == name and message.get("sessionId") == session:
                return

    # --- printing ------------------------------------------------------------------------------------
    def print_pdf(self, html_path: Path, pdf_path: Path, timeout: float) -> Path:
        """Print ``html_path`` to ``pdf_path``. Raises PrintTimeout (the browser is then stopped: a page
        that hangs may have left it busy) or PrinterError."""
        deadline = time.monotonic() + timeout
        try:
            target = self._call("Target.createTarget", {"url": "about:blank"}, deadline=deadline)["targetId"]
            session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 deadline=deadline)["sessionId"]
            self._call("Page.enable", session=session, deadline=deadline)
            opened = self._call("Page.navigate", {"url": Path(html_path).resolve().as_uri()}, session=session,
                                deadline=deadline)
            if opened.get("errorText"):            # never print Chromium's own error page as the summary
                raise PrinterError(f"Chromium could not open {Path(html_path).name}: {opened['errorText']}")
            self._wait_event("Page.loadEventFired", session, deadline)
            printed = self._call("Page.printToPDF", {"preferCSSPageSize": True, "displayHeaderFooter": False},
                                 session=session, deadline=deadline)
            self._call("Target.closeTarget", {"targetId": target}, deadline=deadline)
        except PrintTimeout:
            self.close(kill=True)
            raise
        data = base64.b64decode(printed.get("data", ""))
        if not data.startswith(b"%PDF-"):
            raise PrinterError("Chromium returned no PDF")
        fd = os.open(pdf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return pdf_path

    def close(self, *, kill: bool = False) -> None:
        """Stop the browser (politely unless ``kill``, then its whole process group) and remove its profile;
        idempotent."""
        if not kill and self.proc.poll() is None and self._to_child is not None:
            try:
                self._send("Browser.close")
                self.proc.wait(timeout=5)
            except (PrinterError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._close_fds()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _close_fds(self) -> None:
        for name in ("_to_child", "_from_child"):
            fd = getattr(self, name, None)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, None)
