"""``vpp run`` as a user starts it, in a real subprocess: a port another process holds is one
line naming it and the fix, and Ctrl-C or SIGTERM ends a running controller cleanly (exit 0,
no traceback, jobs in flight finish or end quietly).
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK, free_port, free_ports

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "demo.toml"
#: Wall seconds a run may take to start (simulators, first plan) on a busy machine, and to stop.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def demo_on_free_ports(tmp_path: Path) -> Path:
    """The demo site file with its simulator ports moved to free ones."""
    text = DEMO.read_text(encoding="utf-8")
    old = sorted({int(p) for p in re.findall(r"\bport = (\d+)", text)})
    new = dict(zip(old, free_ports(len(old)), strict=True))
    text = re.sub(r"\bport = (\d+)", lambda m: f"port = {new[int(m.group(1))]}", text)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A socket that holds a loopback port, as a first instance would."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


def vpp(*args: str) -> list[str]:
    return [sys.executable, "-m", "vpp", *args]


def test_a_taken_http_port_is_one_line_with_the_fix(
    tmp_path: Path, listening: socket.socket
) -> None:
    port = listening.getsockname()[1]
    args = ["run", "--no-simulate", "--http-port", str(port), "--db", str(tmp_path / "v.db")]
    res = subprocess.run(vpp(*args), capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 1
    [line] = res.stderr.splitlines()
    assert line.startswith(f"vpp run: port {port} on 127.0.0.1 ")
    assert (
        "already in use" in line and "--http-port" in line and 'make run ARGS="--http-port' in line
    )
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_a_taken_simulator_port_is_one_line(tmp_path: Path, listening: socket.socket) -> None:
    site = demo_on_free_ports(tmp_path)
    taken = listening.getsockname()[1]
    text = site.read_text(encoding="utf-8")
    first = re.search(r"\bport = (\d+)", text)
    assert first is not None
    site.write_text(text.replace(f"port = {first.group(1)}", f"port = {taken}"), encoding="utf-8")
    args = ["run", "--config", str(site), "--simulate", "--http-port", str(free_port())]
    res = subprocess.run(
        vpp(*args, "--db", str(tmp_path / "v.db")),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert res.returncode == 1
    [line] = res.stderr.splitlines()
    assert f"simulator port {taken} on 127.0.0.1" in line and "--no-simulate" in line
    assert "Traceback" not in res.stderr


class Lines:
    """stderr of a process read line by line against a wall-clock deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        self.proc, self.stream = proc, proc.stderr
        os.set_blocking(self.stream.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.stream, selectors.EVENT_READ)
        self.buf = b""
        self.lines: list[str] = []

    def until(self, pattern: str, count: int, timeout_s: float) -> None:
        """Read until ``count`` lines match ``pattern``; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while sum(bool(re.search(pattern, line)) for line in self.lines) < count:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and not self._read(0)):
                pytest.fail(f"no {count} lines like {pattern!r}; got:\n" + "".join(self.lines))
            self._read(min(left, 1.0))

    def _read(self, wait_s: float) -> bool:
        if not self.sel.select(wait_s):
            return False
        chunk = self.stream.read() or b""
        self.buf += chunk
        *done, self.buf = self.buf.split(b"\n")
        self.lines += [d.decode() + "\n" for d in done]
        return bool(chunk)

    def rest(self, timeout_s: float) -> str:
        """Everything until the process exits (bounded)."""
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        while self._read(0):
            pass
        self.lines += [self.buf.decode()] if self.buf else []
        return "".join(self.lines)


@pytest.mark.parametrize(
    ("sig", "simulate", "dispatches"),
    [(signal.SIGINT, True, 2), (signal.SIGTERM, False, 1)],
    ids=["ctrl-c-demo", "sigterm-offline"],
)
def test_ctrl_c_and_sigterm_stop_cleanly(
    tmp_path: Path, sig: signal.Signals, simulate: bool, dispatches: int
) -> None:
    site = demo_on_free_ports(tmp_path)
    args = ["run", "--config", str(site), "--simulate" if simulate else "--no-simulate"]
    args += ["--speed", "60", "--http-port", str(free_port()), "--db", str(tmp_path / "v.db")]
    proc = subprocess.Popen(vpp(*args), stderr=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    try:
        lines = Lines(proc)
        lines.until(r"INFO vpp.control: dispatch ", dispatches, START_TIMEOUT_S)
        proc.send_signal(sig)
        err = lines.rest(STOP_TIMEOUT_S)
        assert proc.wait(timeout=STOP_TIMEOUT_S) == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
    assert "Traceback" not in err and "CancelledError" not in err, err
    assert "never awaited" not in err, err
    assert err.rstrip().endswith("INFO vpp.run: stopped"), err[-2000:]
    assert re.search(r"INFO vpp.control: plan \w+ from ", err), err
