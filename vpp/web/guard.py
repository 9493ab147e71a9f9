"""What stands between the network and the handlers: the Host allow-list and admission control.

Host allow-list
    A page on another site can point its own host name at 127.0.0.1 (DNS rebinding) and then
    read whatever this server answers, because the browser takes the server for that site.
    The request still names that site in its ``Host`` header, so only names on a short list
    are served: the bind address, ``127.0.0.1``, ``localhost`` and ``[::1]``, with any port
    (an SSH tunnel changes the port, never the name), plus the configured names; an entry
    with a port (``vpp.example.org:8443``) matches that port only. A server bound to every
    interface (``0.0.0.0``, ``::``) also answers IP literals (``10.1.2.3:9310``): a page can
    only make the browser send one when it was itself loaded from that address. Other names
    get 421. Requests without a ``Host`` header (HTTP/1.0 tools; browsers always send one)
    are served.

Admission control
    The server runs on its own thread, but that thread shares Python's interpreter lock with
    the control loop: a server that computes answers without pause takes every other time
    slice from the jobs. So requests pass a :class:`Gate` before their handler runs: a
    bounded number run at once, a bounded number wait (more get 503 at once), none waits
    longer than its deadline (then 503), and the server thread's CPU time is kept within a
    share of one core (:class:`CpuBudget`): past it, requests wait until the share is free
    again. A handler that runs past its own deadline is cut off with 503. Every 503 carries
    ``Retry-After``. ``/metrics`` has its own gate, so readers of the API cannot crowd out
    Prometheus; ``/healthz`` costs nothing and is never held.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Host names served whatever the configuration says (loopback cannot be rebound).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})


# -- Host allow-list ---------------------------------------------------------------------------


def split_host(value: str) -> tuple[str, int | None]:
    """``Host`` header or allow-list entry as (lower-case name, port or None).

    IPv6 literals keep their brackets (``[::1]``); a bare IPv6 address (as a bind address is
    written) gets them; a trailing dot is dropped; a port that is not a number makes the whole
    value a name that matches nothing.
    """
    text = value.strip().lower()
    if text.startswith("["):
        name, _, rest = text.partition("]")
        name += "]"
        if not rest:
            return name, None
        if rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit():
            return name, int(rest[1:])
        return text, None
    if text.count(":") > 1:  # a bare IPv6 address: no port
        return f"[{text}]", None
    name, colon, port = text.partition(":")
    if not colon:
        return name.rstrip("."), None
    if port.isascii() and port.isdigit():
        return name.rstrip("."), int(port)
    return text, None


def _ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` headers are served (see the module docstring)."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._configured = tuple(allowed)
        self._bind: str | None = None
        self._rebuild()

    @property
    def configured(self) -> tuple[str, ...]:
        return self._configured

    def configure(self, allowed: Iterable[str]) -> None:
        """Replace the configured names (the loopback names stay)."""
        self._configured = tuple(allowed)
        self._rebuild()

    def bind(self, host: str) -> None:
        """The address the server binds to (its name is served too)."""
        self._bind = host
        self._rebuild()

    def _rebuild(self) -> None:
        entries = [*LOOPBACK_HOSTS, *self._configured]
        self.any_ip = self._bind is not None and self._bind.strip() in WILDCARD_BINDS
        if self._bind is not None and not self.any_ip:
            entries.append(self._bind)
        self.any_port: set[str] = set()
        self.with_port: set[tuple[str, int]] = set()
        for entry in entries:
            name, port = split_host(entry)
            if port is None:
                self.any_port.add(name)
            else:
                self.with_port.add((name, port))

    def allows(self, header: str | None) -> bool:
        """True if a request with this ``Host`` header (None: none sent) is served."""
        if header is None:
            return True
        name, port = split_host(header)
        if name in self.any_port or (port is not None and (name, port) in self.with_port):
            return True
        return self.any_ip and _ip_literal(name)


# -- admission control -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """How much the HTTP server may take (see the module docstring); times in wall seconds."""

    #: Requests whose handlers run at once (API, page and static files).
    max_concurrent: int = 8
    #: Requests that may wait for a turn; more are answered 503 at once.
    max_waiting: int = 256
    #: Longest wait for a turn before 503.
    wait_s: float = 10.0
    #: Longest a handler may run before 503 (reading the body included).
    request_s: float = 15.0
    #: Share of one core the server thread may use (0 < share <= 1; 1: no limit), and the
    #: CPU seconds it may use at once before it waits (short bursts leave the control loop
    #: few and short waits for the interpreter lock).
    cpu_share: float = 0.1
    cpu_burst_s: float = 0.02
    #: Scrapes of ``/metrics`` at once, and waiting.
    metrics_concurrent: int = 1
    metrics_waiting: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < self.cpu_share <= 1.0:
            raise ValueError(f"cpu_share must be in (0, 1], got {self.cpu_share}")
        for name in ("max_concurrent", "metrics_concurrent"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("max_waiting", "metrics_waiting"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


class Busy(Exception):
    """The server cannot take this request now (answered 503 with the message)."""


class CpuBudget:
    """Keeps the calling thread's CPU time within ``share`` of the wall time that passes.

    Credit grows by ``share`` per wall second up to ``burst_s`` and shrinks by the thread's
    CPU time (``time.thread_time``: parsing, handlers, writing answers, everything the
    server thread does). :meth:`wait` returns while there is credit and otherwise sleeps
    until there will be. Use it from one thread only (the server's).
    """

    def __init__(self, share: float, burst_s: float = 0.02) -> None:
        self.share = share
        self.burst_s = burst_s
        self._credit = burst_s
        self._wall = time.perf_counter()
        self._cpu = time.thread_time()

    def _update(self) -> float:
        wall, cpu = time.perf_counter(), time.thread_time()
        earned = (wall - self._wall) * self.share
        self._credit = min(self.burst_s, self._credit + earned) - (cpu - self._cpu)
        self._wall, self._cpu = wall, cpu
        return self._credit

    async def wait(self) -> None:
        if self.share >= 1.0:
            return
        while True:
            credit = self._update()
            if credit > 0.0:
                return
            await asyncio.sleep(-credit / self.share + 0.001)


class Gate:
    """At most ``concurrent`` holders at once, at most ``waiting`` waiting for a turn, each for
    at most ``wait_s``; a turn also waits for the CPU budget. Create and use it on the server's
    event loop."""

    def __init__(
        self, name: str, concurrent: int, waiting: int, wait_s: float, budget: CpuBudget
    ) -> None:
        self.name = name
        self.wait_s = wait_s
        self.budget = budget
        self._sem = asyncio.Semaphore(concurrent)
        self._max_waiting = waiting
        self.waiting = 0
        self.refused = 0

    async def enter(self) -> None:
        """Take a turn, or raise :class:`Busy`; :meth:`leave` gives it back."""
        if self.waiting >= self._max_waiting and self._sem.locked():
            self.refused += 1
            raise Busy(f"too many requests waiting for the {self.name}; try again shortly")
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_s):
                await self._sem.acquire()
                try:
                    await self.budget.wait()
                except BaseException:
                    self._sem.release()
                    raise
        except TimeoutError:
            self.refused += 1
            raise Busy(
                f"the {self.name} is busy: no turn within {self.wait_s:g} s; try again shortly"
            ) from None
        finally:
            self.waiting -= 1

    def leave(self) -> None:
        self._sem.release()


@dataclass(slots=True)
class Gates:
    """The server's gates, made on its event loop when it starts."""

    api: Gate
    metrics: Gate

    @classmethod
    def make(cls, limits: Limits) -> Gates:
        budget = CpuBudget(limits.cpu_share, limits.cpu_burst_s)
        return cls(
            Gate("API", limits.max_concurrent, limits.max_waiting, limits.wait_s, budget),
            Gate(
                "metrics", limits.metrics_concurrent, limits.metrics_waiting, limits.wait_s, budget
            ),
        )


def busy_response(message: str) -> web.Response:
    """503 with ``{"error": message}`` and ``Retry-After``."""
    return web.json_response(
        {"error": message},
        status=503,
        headers={"Retry-After": "1", "Cache-Control": "no-store"},
    )


def misdirected_response(host: str) -> web.Response:
    """421 for a ``Host`` that is not served."""
    return web.json_response(
        {
            "error": f"host {host!r} is not served here; use the controller's address, or "
            f"add the name to the allowed hosts (run.allowed_hosts)",
            "field": "Host",
        },
        status=421,
        headers={"Cache-Control": "no-store"},
    )
