"""quick_init: the same record as the dataclass's own __init__ makes, still frozen."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpp.control.envelope import Bound, Envelope
from vpp.control.safety import Setpoint
from vpp.core.records import quick_init
from vpp.core.site import DeviceKind


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    """The reference: the dataclass's own __init__."""

    a: str
    b: float
    c: bool = False
    d: str = "x"


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Quick:
    a: str
    b: float
    c: bool = False
    d: str = "x"


@given(st.text(), st.floats(allow_nan=False), st.booleans(), st.text())
def test_same_fields_equality_and_hash_as_the_dataclass_init(
    a: str, b: float, c: bool, d: str
) -> None:
    for args in ((a, b), (a, b, c), (a, b, c, d)):
        plain, quick = _Plain(*args), _Quick(*args)
        assert dataclasses.astuple(plain) == dataclasses.astuple(quick)
        assert quick == _Quick(*args) and hash(quick) == hash(_Quick(*args))
    assert _Quick(a=a, b=b, d=d) == _Quick(a, b, False, d)


def test_still_frozen_and_replace_works() -> None:
    sp = Setpoint("bat-1", DeviceKind.BATTERY, 100.0, 120.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sp.power_w = 5.0  # type: ignore[misc]
    moved = dataclasses.replace(sp, power_w=50.0, clamped=True)
    assert (moved.power_w, moved.planned_w, moved.clamped, moved.reason) == (50.0, 120.0, True, "")
    env = Envelope(0.0, 1.0, "a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.lo = -1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Setpoint("bat-1", DeviceKind.BATTERY)  # type: ignore[call-arg]


def test_post_init_still_checks() -> None:
    with pytest.raises(ValueError, match=r"'rating': lo 2\.0 must be <= hi 1\.0"):
        Bound(2.0, 1.0, "rating")
    with pytest.raises(ValueError, match="must be <="):
        Bound(float("nan"), 1.0, "soc")


def test_refuses_what_it_does_not_handle() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    for cls in (NoSlots, NotFrozen, Factory):
        with pytest.raises(TypeError):
            quick_init(cls)
