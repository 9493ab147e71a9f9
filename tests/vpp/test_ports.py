"""Free loopback ports for the tests' servers: distinct, bindable, and below the kernel's
ephemeral range (where an outgoing connection could take one before the server binds it)."""

from __future__ import annotations

import socket

import pytest

from vpp.testing.ports import LOOPBACK, LOWEST, ephemeral_start, free_ports


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(LOWEST <= p < ephemeral_start() for p in ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, port))


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the range narrowed to one port that a server holds, no port is found."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((LOOPBACK, 0))
        port = int(held.getsockname()[1])
        monkeypatch.setattr("vpp.testing.ports.LOWEST", port)
        monkeypatch.setattr("vpp.testing.ports.ephemeral_start", lambda: port + 1)
        with pytest.raises(OSError, match="found 0 of 1 free loopback ports"):
            free_ports(1)
