"""The city link's payloads: what is sent is what is read; bad payloads name the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vpp.city import schema as s

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def targets(**kw: object) -> s.Targets:
    base: dict[str, object] = dict(
        agent="north", seq=3, sent_at=NOW, start=NOW + timedelta(minutes=15),
        expires_at=NOW + timedelta(minutes=45), planned_at=NOW,
        battery_w=[1000.0, -2000.0], pv_w=[5000.0, 6000.0],
    )  # fmt: skip
    base.update(kw)
    return s.Targets.model_validate(base)


def test_targets_round_trip() -> None:
    t = targets()
    back = s.decode(s.Targets, s.encode(t), "north")
    assert back == t
    assert b'"schema":"vpp.city/1"' in s.encode(t)
    assert back.end() == NOW + timedelta(minutes=45)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"battery_w": [1.0, "x"]}, "battery_w.1"),
        ({"pv_w": [-1.0, 2.0]}, "pv_w.0"),
        ({"seq": 0}, "seq"),
        ({"sent_at": "2026-06-01T10:00:00"}, "sent_at"),
        ({"colour": "red"}, "colour"),
        ({"pv_w": [1.0]}, "targets.pv_w"),
        ({"battery_w": [float("nan"), 1.0]}, "battery_w.0"),
    ],
)
def test_a_bad_target_names_its_field(change: dict[str, object], field: str) -> None:
    raw = targets().model_dump(mode="json", by_alias=True)
    raw.update(change)
    import json

    with pytest.raises(s.PayloadError, match=field.replace(".", r"\.")):
        s.decode(s.Targets, json.dumps(raw).replace("NaN", "NaN"), "north")


def test_other_versions_and_agents_are_refused() -> None:
    body = s.encode(targets()).replace(b"vpp.city/1", b"vpp.city/2")
    with pytest.raises(s.PayloadError, match="schema"):
        s.decode(s.Targets, body)
    with pytest.raises(s.PayloadError, match="agent"):
        s.decode(s.Targets, s.encode(targets()), "south")
    with pytest.raises(s.PayloadError, match="not JSON"):
        s.decode(s.Targets, b"{", "north")


def test_topics() -> None:
    assert s.topic("north", "down/targets") == "vpp/v1/north/down/targets"
    assert s.parse_topic("vpp/v1/north/up/flex") == ("north", "up/flex")
    with pytest.raises(s.PayloadError, match="unknown stream"):
        s.parse_topic("vpp/v1/north/up/gossip")
    with pytest.raises(s.PayloadError, match="not below"):
        s.parse_topic("other/v1/north/up/flex")
