"""Waiting in async tests, bounded in time: :func:`until` a condition holds, :func:`within`
a deadline; a check or a step that does not return fails the test too, and says where it
waited."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def await_chain(aw: Any) -> str:
    """Where a suspended coroutine waits, outermost first: each coroutine it awaits, down to
    the future at the end (a task's own stack shows only its outermost frame)."""
    lines = []
    for _ in range(100):  # bounded: a chain is a few dozen deep at most
        frame = getattr(aw, "cr_frame", None) or getattr(aw, "ag_frame", None)
        if frame is None:
            lines.append(f"  awaiting {aw!r}")
            break
        code = frame.f_code
        lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        aw = getattr(aw, "cr_await", None) or getattr(aw, "ag_await", None)
        if aw is None:
            break
    return "\n".join(lines)


async def within(aw: Awaitable[T], timeout_s: float, why: str) -> T:
    """``await aw``, failing the test after ``timeout_s`` with where it was waiting."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait([task], timeout=timeout_s)
    if not done:
        where = await_chain(task.get_coro())
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pytest.fail(f"not within {timeout_s} s: {why}; it waited at\n{where}")
    return task.result()


async def until(
    what: Callable[[], bool | Awaitable[bool]],
    timeout_s: float,
    why: str,
    state: Callable[[], str] | None = None,
    poll_s: float = 0.05,
) -> None:
    """Until ``what()`` is true (it may be a coroutine function), checked every ``poll_s``;
    the test fails after ``timeout_s``, also when one check itself does not return."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / poll_s) + 2):  # bounded in count and, below, in time
        left = deadline - time.monotonic()
        result = what()
        if inspect.isawaitable(result):
            result = await within(result, max(left, 0.05), f"{why} (one check)")
        if result:
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(poll_s)
    extra = f" ({state()})" if state is not None else ""
    pytest.fail(f"not within {timeout_s} s: {why}{extra}")
