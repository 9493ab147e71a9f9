"""OpenADR 2.0b: a VTN from openleadr on loopback, the controller's VEN polling it through the
signals watch. Events become constraints and are acknowledged (optIn), a bad event is
answered optOut and changes nothing, a cancelled event ends its signals, and a VTN that falls
silent puts its devices into the failsafe until it answers again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openleadr import OpenADRServer

from adapters.openadr import OpenAdrVen
from tests.conftest import LOOPBACK, free_port
from vpp.core.site import ConfigError, Site, parse_site
from vpp.signals import SignalError, SignalKind
from vpp.signals.openadr import decode_event
from vpp.signals.rules import FLOOR_14A_W
from vpp.signals.watch import SignalWatch
from vpp.testing.harness import small_site

VEN_ID = "ven-vpp"
TIMEOUT_S = 30.0


def openadr_site(port: int) -> Site:
    data = small_site().model_dump(mode="json")
    for d in data["devices"]:
        if d["kind"] == "battery":
            d["enwg_14a"] = True
    data["signals"] = {
        "openadr": [
            {
                "id": "vtn-1",
                "vtn_url": f"http://{LOOPBACK}:{port}/OpenADR2/Simple/2.0b",
                "ven_id": VEN_ID,
                "heartbeat_timeout_s": TIMEOUT_S,
                "poll_interval_s": 5.0,
                "failsafe_feed_in_pct": 30.0,
            }
        ]
    }
    return parse_site(data, "<openadr>")


@dataclass
class Vtn:
    port: int
    server: OpenADRServer | None = None
    acks: list[tuple[str, str, str]] = field(default_factory=list)

    async def start(self) -> None:
        server = OpenADRServer(
            vtn_id="VTN-GRID",
            http_host=LOOPBACK,
            http_port=self.port,
            verify_message_signatures=False,
            show_fingerprint=False,
        )

        async def register(info: dict[str, Any]) -> tuple[str, str]:
            return info.get("ven_id") or VEN_ID, "reg-1"

        server.add_handler("on_create_party_registration", register)
        await server.run_async()
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def event(self, name: str, kind: str, payload: float, minutes: int = 30, **kw: Any) -> str:
        assert self.server is not None
        start = datetime.now(UTC) - timedelta(minutes=1)
        return str(
            self.server.add_event(
                ven_id=VEN_ID,
                signal_name=name,
                signal_type=kind,
                intervals=[
                    {
                        "dtstart": start,
                        "duration": timedelta(minutes=minutes),
                        "signal_payload": payload,
                    }
                ],
                callback=lambda ven_id, event_id, opt_type: self.acks.append(
                    (ven_id, event_id, opt_type)
                ),
                **kw,
            )
        )


@dataclass
class Rig:
    site: Site
    vtn: Vtn
    watch: SignalWatch
    vens: list[OpenAdrVen]
    now: datetime

    async def poll(self, seconds: float = 5.0) -> list[Any]:
        self.now += timedelta(seconds=seconds)
        update = await self.watch.poll(self.now)
        return update.notes


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    port = free_port()
    site = openadr_site(port)
    vtn = Vtn(port)
    await vtn.start()
    vens: list[OpenAdrVen] = []

    def vtn_reader(cfg: Any, check: Any) -> Any:
        ven = OpenAdrVen(cfg, check)
        vens.append(ven)
        return ven.read

    now = datetime.now(UTC).replace(microsecond=0)
    watch = SignalWatch.for_site(site, lambda cfg: None, now, vtn_reader)  # type: ignore[arg-type,return-value]
    try:
        yield Rig(site, vtn, watch, vens, now)
    finally:
        for ven in vens:
            await ven.close()
        await vtn.stop()


async def test_an_event_becomes_a_constraint_of_its_scope_and_is_acknowledged(rig: Rig) -> None:
    await rig.poll()  # registers, nothing queued
    assert rig.vens[0].registered
    assert rig.watch.resolved.bounds == {}
    event_id = rig.vtn.event("SIMPLE", "level", 2, targets=[{"group_id": "F1"}])
    notes = await rig.poll()
    assert [n.kind for n in notes] == ["signal_changed"]
    on_f1 = {d.id for d in rig.site.pv if d.feeder == "F1"}
    assert set(rig.watch.resolved.bounds) == on_f1
    for pv in rig.site.pv:
        if pv.id in on_f1:
            (bound,) = rig.watch.resolved.bounds[pv.id]
            assert bound.hi == pytest.approx(0.3 * pv.rated_w)
    assert rig.vtn.acks == [(VEN_ID, event_id, "optIn")]
    (signal,) = rig.watch.resolved.active
    assert signal.source == f"vtn-1:{event_id}" and signal.end is not None
    # A grid cap and a §14a limit for the whole site, from two more events.
    rig.vtn.event("LOAD_DISPATCH", "setpoint", -20_000)
    rig.vtn.event("LOAD_CONTROL", "x-loadControlSetpoint", 0)
    await rig.poll()
    await rig.poll()
    assert rig.watch.resolved.export_cap_w == 20_000
    for bat in rig.site.batteries:
        (bound,) = rig.watch.resolved.bounds[bat.id]
        assert bound.lo == pytest.approx(-FLOOR_14A_W)  # dimmed to the floor, not below
    assert [a[2] for a in rig.vtn.acks] == ["optIn"] * 3


async def test_a_bad_event_is_answered_opt_out_and_changes_nothing(rig: Rig) -> None:
    await rig.poll()
    rig.vtn.event("SIMPLE", "level", 1)
    await rig.poll()
    before = rig.watch.resolved
    assert before.bounds
    bad = rig.vtn.event("LOAD_CONTROL", "x-loadControlCapacity", 1.5)
    notes = await rig.poll()
    (note,) = [n for n in notes if n.kind == "signal_bad_payload"]
    assert note.level == "error"
    assert "x-loadControlCapacity must be 0..1, got 1.5" in note.message
    assert f"vtn-1 event {bad}" in note.message
    assert rig.vtn.acks[-1] == (VEN_ID, bad, "optOut")
    assert rig.watch.resolved.bounds == before.bounds
    assert not [n for n in await rig.poll() if n.kind == "signal_bad_payload"]  # said once
    unknown = rig.vtn.event("SIMPLE", "level", 1, targets=[{"resource_id": "pv-999"}])
    notes = await rig.poll()
    assert any("resource_id 'pv-999' is no device of vtn-1" in n.message for n in notes)
    assert rig.vtn.acks[-1] == (VEN_ID, unknown, "optOut")
    assert rig.watch.resolved.bounds == before.bounds


async def test_a_cancelled_event_ends_its_signals(rig: Rig) -> None:
    await rig.poll()
    event_id = rig.vtn.event("LOAD_DISPATCH", "setpoint", 50_000)
    await rig.poll()
    assert rig.watch.resolved.import_cap_w == 50_000
    assert rig.vtn.server is not None
    rig.vtn.server.cancel_event(VEN_ID, event_id)
    await rig.poll()
    assert rig.watch.resolved.import_cap_w is None


async def test_a_silent_vtn_puts_its_devices_into_the_failsafe_until_it_is_back(rig: Rig) -> None:
    await rig.poll()
    await rig.vtn.stop()
    notes: list[Any] = []
    for _ in range(int(TIMEOUT_S // 5)):  # up to the timeout: no failsafe yet
        notes += await rig.poll()
    assert [n.kind for n in notes] == ["signal_source_failed"]
    assert not rig.watch.resolved.bounds
    notes = await rig.poll()
    assert [n.kind for n in notes] == ["signal_failsafe_on"]
    for pv in rig.site.pv:
        (bound,) = rig.watch.resolved.bounds[pv.id]
        assert bound.hi == pytest.approx(0.3 * pv.rated_w)
    await rig.vtn.start()
    notes = await rig.poll()
    assert "signal_failsafe_off" in [n.kind for n in notes]
    assert not rig.watch.resolved.bounds


def test_event_payloads_are_checked_naming_the_field() -> None:
    site = openadr_site(1)
    cfg = site.signals.openadr[0]
    t = datetime(2026, 12, 1, 12, tzinfo=UTC)

    def event(**signal: Any) -> dict[str, Any]:
        base = {
            "signal_name": "SIMPLE",
            "signal_type": "level",
            "intervals": [{"dtstart": t, "duration": timedelta(minutes=5), "signal_payload": 1.0}],
        }
        return {"event_descriptor": {"event_id": "e1", "modification_number": 0},
                "event_signals": [base | signal], "targets": []}  # fmt: skip

    assert decode_event(site, cfg, event())[0].kind == SignalKind.FEED_IN
    with pytest.raises(SignalError, match=r"SIMPLE level must be 0, 1, 2 or 3, got 7"):
        decode_event(site, cfg, event(intervals=[{"dtstart": t, "duration": timedelta(0),
                                                  "signal_payload": 7}]))  # fmt: skip
    with pytest.raises(SignalError, match=r"event_signals\[0\]: ELECTRICITY_PRICE/price is not"):
        decode_event(site, cfg, event(signal_name="ELECTRICITY_PRICE", signal_type="price"))
    naive = [{"dtstart": t.replace(tzinfo=None), "duration": timedelta(0), "signal_payload": 1}]
    with pytest.raises(SignalError, match=r"intervals\[0\]\.dtstart must be a time with"):
        decode_event(site, cfg, event(intervals=naive))
    nan = [{"dtstart": t, "duration": timedelta(0), "signal_payload": float("nan")}]
    with pytest.raises(SignalError, match=r"signal_payload must be finite"):
        decode_event(site, cfg, event(intervals=nan))
    open_ended = [{"dtstart": t, "duration": timedelta(0), "signal_payload": 3}]
    (signal,) = decode_event(site, cfg, event(intervals=open_ended))
    assert signal.end is None and signal.feed_in_pct == 0.0
    with pytest.raises(SignalError, match=r"without event_descriptor\.event_id"):
        decode_event(site, cfg, {"event_signals": []})


def test_a_bad_vtn_url_is_refused_naming_the_field() -> None:
    data = openadr_site(1).model_dump(mode="json")
    data["signals"]["openadr"][0]["vtn_url"] = "ftp://vtn"
    with pytest.raises(ConfigError, match=r"openadr\.0\.vtn_url|vtn_url"):
        parse_site(data, "<bad>")


async def test_the_vtn_is_polled_at_its_own_interval(rig: Rig) -> None:
    await rig.poll()
    rig.vtn.event("LOAD_DISPATCH", "setpoint", 40_000)
    await rig.poll(seconds=2.0)  # 2 s after the last read: not due, nothing read
    assert rig.watch.resolved.import_cap_w is None
    await rig.poll(seconds=3.0)  # 5 s: read
    assert rig.watch.resolved.import_cap_w == 40_000
