"""Shared fixtures: leak checks and loopback ports.

Every test that starts a server or a task must stop it: the autouse fixtures below fail a
test that leaves threads or asyncio tasks behind (pymodbus tends to).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

# Imported from here by many tests.
from vpp.testing.ports import LOOPBACK as LOOPBACK
from vpp.testing.ports import free_port as free_port
from vpp.testing.ports import free_ports as free_ports


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        # "asyncio_N" threads are the event loop's default executor, which pytest-asyncio
        # shuts down with the loop after this fixture has run.
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before
            and t.is_alive()
            and not t.daemon
            and not t.name.startswith("asyncio_")
        ]
        if not leaked:
            return
        time.sleep(0.05)
    pytest.fail(f"test leaked threads: {[t.name for t in leaked]}")


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running on its loop."""
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks(loop)
    yield
    for _ in range(40):  # up to 2 s for tasks that are finishing their cancellation
        leaked = [t for t in asyncio.all_tasks(loop) - before if not t.done()]
        leaked = [t for t in leaked if t is not asyncio.current_task()]
        if not leaked:
            return
        await asyncio.sleep(0.05)
    names = [t.get_coro().__qualname__ for t in leaked]  # type: ignore[union-attr]
    for t in leaked:
        t.cancel()
    pytest.fail(f"test leaked asyncio tasks: {names}")
