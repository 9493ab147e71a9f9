"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol, for page tests.

A small client on aiohttp's websocket, so a test drives the browser from its own event loop
while the controller under test runs on the same loop, and nothing beyond the project's own
dependencies is needed. Usage::

    async with Chromium(tmp_path) as browser:
        await browser.open("http://127.0.0.1:9310/")
        await browser.wait_for("document.querySelector('#chart').dataset.ready === 'true'")
        await browser.type_text("#token", "secret")
        await browser.click("#cap-submit")
        await browser.screenshot(path)

Without the binary :func:`require_chromium` skips the test, except where the environment
variable CI is set: there it fails, so CI cannot pass by skipping.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest

from tests.conftest import LOOPBACK, free_port

DEBIAN_BINARY = "/usr/bin/chromium"
#: Flags for a closed network and a throwaway profile (plus the debugging port and profile dir).
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
)  # fmt: skip
READY_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def require_chromium() -> str:
    """The binary's path; skips without one (fails instead when CI is set)."""
    path = DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else shutil.which("chromium")
    if path is not None:
        return path
    reason = f"Chromium not installed ({DEBIAN_BINARY} missing; apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install it, not skip the browser tests")
    pytest.skip(reason)


class BrowserError(RuntimeError):
    """A DevTools command failed, or the page threw."""


class Chromium:
    """One headless browser with one page; its profile lives under ``tmp_path``."""

    def __init__(self, tmp_path: Path, width: int = 1440, height: int = 1100) -> None:
        self.binary = require_chromium()
        self.dir = Path(tmp_path) / "chromium"
        self.size = (width, height)
        self.port = 0
        #: Uncaught exceptions and console errors of the page, as text.
        self.errors: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Chromium:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _launch(self) -> None:
        # Popen returns at once; the browser's start-up is awaited over HTTP afterwards.
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = [
            self.binary,
            *FLAGS,
            f"--user-data-dir={self.dir / 'profile'}",
            f"--remote-debugging-address={LOOPBACK}",
            f"--remote-debugging-port={self.port}",
            f"--window-size={self.size[0]},{self.size[1]}",
            "about:blank",
        ]
        with (self.dir / "chromium.log").open("wb") as log:
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    async def _start(self) -> None:
        self._launch()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0))
        ws_url = await self._page_socket()
        self._ws = await self._session.ws_connect(ws_url, max_msg_size=64 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read(), name="chromium-devtools-reader")
        for domain in ("Page.enable", "Runtime.enable"):
            await self.call(domain)
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.size[0],
            height=self.size[1],
            deviceScaleFactor=1,
            mobile=False,
        )

    async def _page_socket(self) -> str:
        """The websocket of the first page target, once the browser answers (bounded)."""
        assert self._session is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrowserError(
                    f"chromium exited with {self._proc.returncode}: "
                    f"{(self.dir / 'chromium.log').read_text(errors='replace')}"
                )
            try:
                async with self._session.get(f"http://{LOOPBACK}:{self.port}/json/list") as r:
                    pages = [t for t in await r.json() if t.get("type") == "page"]
                    if pages:
                        return str(pages[0]["webSocketDebuggerUrl"])
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium not ready within {READY_TIMEOUT_S} s")
            await asyncio.sleep(0.2)

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            else:
                self._on_event(data)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrowserError("browser connection closed"))

    def _on_event(self, data: dict[str, Any]) -> None:
        method, params = data.get("method"), data.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(
                "console.error: "
                + " ".join(
                    str(a.get("value", a.get("description"))) for a in params.get("args", [])
                )
            )

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result."""
        assert self._ws is not None
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, CALL_TIMEOUT_S)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def open(self, url: str) -> None:
        """Navigate and wait until the document has loaded."""
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", what=f"load {url}")

    async def wait_for(
        self, expression: str, timeout_s: float = 20.0, what: str | None = None
    ) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{what or expression} not true within {timeout_s} s; "
                    f"page errors: {self.errors}"
                )
            await asyncio.sleep(0.2)

    async def type_text(self, selector: str, text: str) -> None:
        """Focus an input, clear it and type ``text`` as keyboard input."""
        await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.focus(); e.select && e.select(); return true; })()"
        )
        await self.call("Input.insertText", text=text)

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    async def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole page by default)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            metrics = await self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        data = await self.call("Page.captureScreenshot", **params)
        return _save(path, base64.b64decode(data["data"]))

    async def close(self) -> None:
        """Close the connection and stop the browser (kill if it does not stop in time)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        for _ in range(int(STOP_TIMEOUT_S / 0.05)):  # not proc.wait(): the loop keeps running
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def _save(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
