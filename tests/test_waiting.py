"""The tests' waiting helpers (tests/waiting.py) fail with a reason instead of hanging: a
step that does not finish says where it waits; a check that does not return counts against
the deadline."""

from __future__ import annotations

import asyncio

import pytest

from tests.waiting import until, within


async def test_within_says_where_it_waited() -> None:
    never = asyncio.Event()

    async def inner() -> None:
        await never.wait()

    async def outer() -> None:
        await inner()

    with pytest.raises(pytest.fail.Exception) as info:
        await within(outer(), 0.2, "the outer step")
    text = str(info.value)
    assert "not within 0.2 s: the outer step" in text
    # Outermost first, down to what it awaits.
    assert text.index("in outer") < text.index("in inner") < text.index("in wait")


async def test_within_returns_what_it_awaited() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await within(answer(), 5, "an answer") == 42


async def test_until_fails_when_one_check_does_not_return() -> None:
    never = asyncio.Event()

    async def check() -> bool:
        await never.wait()
        return True

    with pytest.raises(pytest.fail.Exception, match=r"agents holding \(one check\)"):
        await until(check, 0.2, "agents holding")


async def test_until_takes_sync_and_async_checks() -> None:
    calls = {"n": 0}

    def third_time() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    async def at_once() -> bool:
        return True

    await until(third_time, 5, "the third call")
    await until(at_once, 5, "at once")
    assert calls["n"] == 3
    with pytest.raises(pytest.fail.Exception, match=r"never \(state: x\)"):
        await until(lambda: False, 0.1, "never", lambda: "state: x")
