"""A broker and a database of the tests' own: Mosquitto with per-agent users and ACLs on a
loopback port, a throwaway PostgreSQL cluster; both stopped by the fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from vpp.city.broker import COORDINATOR_USER, Broker, BrokerConfig
from vpp.city.link import LinkConfig

AGENTS = ["north", "south"]


def _need(binary: str, package: str) -> None:
    if shutil.which(binary) is None and not Path(binary).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{binary} missing: install the Debian package {package}")
        pytest.skip(f"{binary} missing (Debian package {package})")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    _need("/usr/sbin/mosquitto", "mosquitto")
    b = Broker(BrokerConfig(tmp_path / "broker", free_port(), list(AGENTS)))
    b.start()
    try:
        yield b
    finally:
        b.stop()


def link_for(broker: Broker, user: str, client_id: str | None = None) -> LinkConfig:
    cfg = broker.config
    return LinkConfig(cfg.host, cfg.port, user, cfg.passwords[user], client_id or user)


def coordinator_link(broker: Broker) -> LinkConfig:
    return link_for(broker, COORDINATOR_USER)
