"""Ports ``vpp run`` needs, checked before anything starts: a port another process holds (a
second instance, ``vpp simulate`` of the same site) is one line naming it and the fix."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from vpp.core.site import Site

#: Ports tried above a taken HTTP port for the suggestion in the error.
SUGGEST_WITHIN = 50


def in_use(host: str, port: int) -> bool:
    """True when ``host:port`` cannot be bound because another socket listens there.

    Binds the way the servers do (``SO_REUSEADDR``, as asyncio on Unix), so a port held only
    by connections in TIME_WAIT counts as free. Other failures (a host that does not
    resolve, no permission) are left to the server, whose error names them."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, kind, proto, _, addr in infos[:1]:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(addr)
            except OSError as exc:
                return exc.errno == errno.EADDRINUSE
    return False


def free_port_near(host: str, port: int) -> int | None:
    """The first port above ``port`` that is free, for the suggestion; None if none is."""
    for candidate in range(port + 1, min(port + SUGGEST_WITHIN, 65535) + 1):
        if not in_use(host, candidate):
            return candidate
    return None


def simulator_endpoints(site: Site) -> list[tuple[str, int]]:
    """The loopback endpoints the simulated fleet of ``site`` listens on."""
    seen = dict.fromkeys(
        (d.modbus.host, d.modbus.port)
        for d in site.devices
        if d.enabled and d.modbus.host in ("127.0.0.1", "localhost", "::1")
    )
    return list(seen)


def http_port_problem(host: str, port: int) -> str | None:
    """One line when the page's port is taken, with the option that changes it."""
    if port == 0 or not in_use(host, port):
        return None
    other = free_port_near(host, port) or port + 1
    return (
        f"port {port} on {host} (operator page and /metrics) is already in use, probably by "
        f"another vpp run; stop that one or choose another port: --http-port {other} "
        f'(make run ARGS="--http-port {other}")'
    )


def simulator_port_problem(endpoints: Iterable[tuple[str, int]]) -> str | None:
    """One line when a port of the simulated fleet is taken."""
    taken = [(h, p) for h, p in endpoints if in_use(h, p)]
    if not taken:
        return None
    host, port = taken[0]
    more = f" (and {len(taken) - 1} more of its ports)" if len(taken) > 1 else ""
    return (
        f"simulator port {port} on {host}{more} is already in use, probably by another "
        "vpp run or vpp simulate of this site; stop that one first (two controllers must "
        "not drive the same devices), or run against it with --no-simulate only if nothing "
        "else controls it"
    )
