"""Free TCP ports on loopback, for simulated devices and servers of tests and benchmarks.

A port is chosen below the kernel's range of ephemeral ports (Linux:
``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 by default). A port the kernel
hands out for ``bind(0)`` comes from that range, the same range every outgoing connection
(a Modbus client, the browser, a scrape) takes its local port from: on a busy machine one
of them could take the port between the choice and the server's bind. Below the range only
another chooser can; each process draws from its own random sequence (seeded by its pid),
so parallel test workers seldom draw the same port, and a port something is bound to is
skipped."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: Lowest port drawn; the highest is just below the ephemeral range.
LOWEST = 10_000
#: Ephemeral range's start where the kernel does not say (the Linux default).
EPHEMERAL_START = 32_768
#: Draws per port wanted before giving up.
TRIES = 200

_draws: dict[int, random.Random] = {}


def ephemeral_start() -> int:
    """Where the kernel's range of ephemeral ports starts."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_START
    return low if low > LOWEST + 1_000 else EPHEMERAL_START


def free_port() -> int:
    """A TCP port on loopback that nothing is bound to right now."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports, below the ephemeral range; OSError when
    ``TRIES`` draws per port find too few."""
    draw = _draws.setdefault(os.getpid(), random.Random(os.getpid()))
    high = ephemeral_start()
    socks: list[socket.socket] = []
    try:
        for _ in range(TRIES * n):
            if len(socks) == n:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((LOOPBACK, draw.randrange(LOWEST, high)))
            except OSError:
                sock.close()
                continue
            socks.append(sock)
        if len(socks) < n:
            raise OSError(f"found {len(socks)} of {n} free loopback ports in {LOWEST}-{high}")
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()
