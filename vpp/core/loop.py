"""The event loop a process runs on: uvloop (libuv, the default of ``vpp run``) or asyncio's
own.

uvloop takes less of the controller's CPU for the same Modbus traffic: polling 10,000
devices the poll job's CPU per device falls by about a tenth (``bench/process_limit.py``
measures both in one run). Everything the controller uses (tasks, timeouts, sockets,
signal handlers, ``asyncio.to_thread``) behaves the same on both; the live cycle is tested
on both (``tests/vpp/control/test_event_loop.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: The loops on offer, the default first.
LOOPS = ("uvloop", "asyncio")


def run(main: Coroutine[Any, Any, T], loop: str = LOOPS[0]) -> T:
    """Run ``main`` to completion on a new event loop of the kind ``loop``."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    if loop == "asyncio":
        return asyncio.run(main)
    main.close()
    raise ValueError(f"event loop {loop!r}: one of {', '.join(LOOPS)}")
