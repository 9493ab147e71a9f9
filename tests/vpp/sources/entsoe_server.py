"""A loopback stand-in for the ENTSO-E REST API that answers with recorded A44 documents.

It checks the query as the platform would (token, document type, zone, sequence), answers
with the recorded document whose period overlaps the requested one, and otherwise with the
platform's "No matching data found" acknowledgement. :func:`loopback_session` gives a
``requests.Session`` whose HTTPS requests to the platform land here instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from tests.conftest import LOOPBACK

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "entsoe"
TOKEN = "test-token-0000"
DE_LU = "10Y1001A1001A82H"
_PERIOD = re.compile(r"<period\.timeInterval>\s*<start>(.*?)</start>\s*<end>(.*?)</end>", re.S)


@dataclass
class Recording:
    path: Path
    start: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def load(cls, name: str) -> Recording:
        path = FIXTURES / name
        match = _PERIOD.search(path.read_text(encoding="utf-8"))
        assert match, f"{name}: no period.timeInterval"
        return cls(path, pd.Timestamp(match[1]), pd.Timestamp(match[2]))


@dataclass
class FakePlatform:
    """What the server serves and what it was asked."""

    recordings: list[Recording]
    requests: list[dict[str, str]] = field(default_factory=list)
    down: bool = False

    def answer(self, query: dict[str, str]) -> tuple[int, str]:
        self.requests.append(query)
        if query.get("securityToken") != TOKEN:
            return 401, "<html><body><h1>Unauthorized</h1></body></html>"
        if self.down:
            return 503, "<html><body>Service Unavailable</body></html>"
        wanted = {"documentType": "A44", "in_Domain": DE_LU, "out_Domain": DE_LU}
        assert all(query.get(k) == v for k, v in wanted.items()), query
        start = pd.to_datetime(query["periodStart"], format="%Y%m%d%H%M", utc=True)
        end = pd.to_datetime(query["periodEnd"], format="%Y%m%d%H%M", utc=True)
        for rec in self.recordings:
            if rec.start < end and start < rec.end:
                return 200, rec.path.read_text(encoding="utf-8")
        return 200, (FIXTURES / "ack_no_matching_data.xml").read_text(encoding="utf-8")


def _handler(platform: FakePlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            status, body = platform.answer(query)
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/xml" if status == 200 else "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler


@contextmanager
def serve(platform: FakePlatform) -> Iterator[str]:
    """Run the fake platform on loopback; yields its base URL."""
    server = ThreadingHTTPServer((LOOPBACK, 0), _handler(platform))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-entsoe"
    )
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _ToLoopback(HTTPAdapter):
    """Sends every request to ``base`` (scheme and host swapped, path and query kept)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = urlsplit(base)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        url = urlsplit(str(request.url))
        request.url = urlunsplit((self.base.scheme, self.base.netloc, url.path, url.query, ""))
        return super().send(request, *args, **kwargs)


def loopback_session(base: str) -> requests.Session:
    """A session whose HTTPS requests (the platform's address) go to ``base`` instead."""
    session = requests.Session()
    session.mount("https://", _ToLoopback(base))
    return session
