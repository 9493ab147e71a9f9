"""Register images decode back, with the project's own decoder, to what the config says."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.regmap import load_map
from adapters.sim.create import create_device
from adapters.sim.device import SimulatedDevice
from adapters.sim.fleet import SimFleet
from adapters.sim.images import PointSlot, RegisterImage
from adapters.sim.synthetic import synthetic_site
from adapters.sunspec.codec import decode_value, scale
from adapters.sunspec.decode import DecodedModel, decode_model
from adapters.sunspec.models import load_model
from tests.adapters.sim.util import NOON, battery, datacentre, heat_pump, make_site, meter, pv
from vpp.core.clock import ManualClock
from vpp.core.site import Site


def decode_image(image: RegisterImage) -> dict[int, DecodedModel]:
    """Walk the SunSpec chain of an image and decode every model."""
    regs, base = image.regs, image.base
    assert regs[:2] == [0x5375, 0x6E53]
    models: dict[int, DecodedModel] = {}
    off = 2
    while regs[off] != 0xFFFF:
        model_id, length = regs[off], regs[off + 1]
        body = regs[off + 2 : off + 2 + length]
        models[model_id] = decode_model(load_model(model_id), base + off, body)
        assert models[model_id].errors == []
        off += 2 + length
    assert regs[off : off + 2] == [0xFFFF, 0] and off + 2 == len(regs)
    return models


def device(site: Site, dev_id: str, base: int = 40000) -> SimulatedDevice:
    return create_device(site.device(dev_id), site, ManualClock(NOON), base)


SITE = make_site(
    [pv("pv-a", 1502, 1, 103), pv("pv-b", 1502, 2, 113, rated_w=8_000, peak_wp=9_000),
     battery("bat-a", 1503, 1, 124), battery("bat-b", 1503, 2, 802), meter("m", 1504, 1),
     heat_pump(1505), datacentre(1506)],
    meter_id="m",
)  # fmt: skip


@pytest.mark.parametrize(("dev_id", "measurement"), [("pv-a", 103), ("pv-b", 113)])
def test_pv_image(dev_id: str, measurement: int) -> None:
    cfg = SITE.device(dev_id)
    models = decode_image(device(SITE, dev_id).refresh())
    expected = [1, measurement, 120, 123] + ([160] if cfg.rated_w > 10_000 else [])
    assert list(models) == expected
    common = models[1].values
    assert (common["Mn"], common["SN"], common["DA"]) == ("vpp-sim", dev_id, cfg.modbus.unit)
    assert models[120].values["WRtg"] == cfg.rated_w
    assert models[123].values["WMaxLimPct"] == 100
    assert models[123].values["WMaxLim_Ena"] == 0
    assert models[measurement].values["W"] == 0  # no step yet: nothing produced
    assert models[measurement].values["WH"] > 0


def test_pv_with_two_mppt_inputs_presents_model_160() -> None:
    site = make_site([pv("big", 1502, 1, rated_w=20_000, peak_wp=22_000)])
    models = decode_image(device(site, "big").refresh())
    assert list(models) == [1, 103, 120, 123, 160]
    assert models[160].values["N"] == 2
    assert [g.values["IDStr"] for g in models[160].groups["module"]] == ["MPPT1", "MPPT2"]


def test_pv_with_704_control_presents_model_704() -> None:
    site = make_site([pv("p7", 1502, 1, control="704", rated_w=5_000)])
    models = decode_image(device(site, "p7").refresh())
    assert list(models) == [1, 103, 120, 704]
    assert models[704].values["WMaxLimPct"] == 100


def test_battery_124_image() -> None:
    cfg = SITE.device("bat-a")
    models = decode_image(device(SITE, "bat-a").refresh())
    assert list(models) == [1, 103, 120, 124]
    assert models[1].values["Md"] == "SIM-BAT-124"
    assert models[120].values["WHRtg"] == cfg.capacity_wh
    assert models[120].values["MaxChaRte"] == cfg.max_charge_w
    storage = models[124].values
    assert storage["ChaState"] == cfg.soc_initial_pct
    assert storage["WChaMax"] == cfg.max_charge_w
    assert (storage["ChaState_SF"], storage["InOutWRte_SF"]) == (-1, -2)
    assert storage["StorCtl_Mod"] == 0 and storage["MinRsvPct"] == cfg.soc_min_pct


def test_battery_802_image() -> None:
    cfg = SITE.device("bat-b")
    models = decode_image(device(SITE, "bat-b").refresh())
    assert list(models) == [1, 701, 702, 704, 802]
    bat = models[802].values
    assert (bat["SoC"], bat["WHRtg"], bat["SoCMax"], bat["SoCMin"]) == (
        cfg.soc_initial_pct, cfg.capacity_wh, cfg.soc_max_pct, cfg.soc_min_pct)  # fmt: skip
    assert models[702].values["WMaxRtg"] == cfg.max_discharge_w
    assert (models[704].values["WSetEna"], models[704].values["WSetMod"]) == (0, 1)


def test_meter_image() -> None:
    models = decode_image(device(SITE, "m").refresh())
    assert list(models) == [1, 203]
    assert models[203].values["PhVphA"] == 230.0
    assert models[203].values["TotWhImp"] > 0


@pytest.mark.parametrize("base", [0, 40000, 50000])
def test_base_address_is_configurable(base: int) -> None:
    image = device(SITE, "pv-a", base).refresh()
    assert image.base == base
    assert list(decode_image(image)) == [1, 103, 120, 123]


def test_writable_registers_follow_the_definitions() -> None:
    image = device(SITE, "pv-a").refresh()
    for key in ("123.WMaxLimPct", "123.WMaxLim_Ena", "123.WMaxLimPct_RvrtTms", "1.DA"):
        assert image.slots[key].writable
        assert image.all_writable(image.slots[key].address, 1)
    for key in ("103.W", "123.WMaxLimPct_SF", "120.WRtg", "1.SN"):
        assert not image.all_writable(image.slots[key].address, 1)
    header = image.slots["123.ID"].address
    assert not image.all_writable(header, 2)


def test_map_images_decode_with_their_register_maps() -> None:
    hp = device(SITE, "hp").refresh()
    rmap = load_map("heat_pump")
    (start, count), *_ = rmap.blocks("holding")
    values = rmap.decode("holding", start, hp.regs[start - hp.base : start - hp.base + count])
    assert values["el_setpoint_w"] == 50_000  # heat-led: half of max_el_w
    assert values["setpoint_revert_s"] == 900
    assert hp.all_writable(rmap.channel("el_setpoint_w").address, 2)
    assert not hp.all_writable(rmap.channel("el_power_w").address, 2)
    dc = device(SITE, "dc").refresh()
    dmap = load_map("datacentre_meter")
    (start, count), *_ = dmap.blocks("input")
    assert set(dmap.decode("input", start, dc.regs[start : start + count])) == {
        "it_power_w", "waste_heat_temp_c", "flow_m3_per_h", "waste_heat_w"}  # fmt: skip


def test_synthetic_site_layout() -> None:
    site = synthetic_site(n_pv=250, n_batteries=60, base_port=20000, units_per_port=100)
    assert len(site.pv) == 250 and len(site.batteries) == 60
    ports = sorted({d.modbus.port for d in site.devices})
    assert ports == [20000, 20001, 20002, 20003]
    assert max(d.modbus.unit for d in site.devices) == 100
    assert {d.sim.sunspec_model for d in site.pv} == {103, 113}
    models = decode_image(device(site, site.batteries[0].id).refresh())
    assert list(models) == [1, 103, 120, 124]
    with pytest.raises(ValueError, match="units_per_port"):
        synthetic_site(1, 0, 20000, units_per_port=248)


_NAMES = st.sampled_from(["W", "PF", "Hz"])
_SET = st.tuples(st.just("set"), _NAMES, st.sampled_from([0.0, 1234.5, 5000.0, 50.0, 100.0]))
_WRITE = st.tuples(st.just("write"), _NAMES, st.integers(0, 0xFFFE))
_OPS = st.lists(st.one_of(_SET, _WRITE), max_size=30)


@given(_OPS)
def test_set_holds_what_was_set_last_whatever_was_written_in_between(
    ops: list[tuple[str, str, float]],
) -> None:
    """Setting a value again is skipped when the registers still hold its encoding; a raw
    write in between (a Modbus write) is noticed, so the image always reads what an image
    that encodes every time would hold."""
    cached = device(SITE, "pv-a").image
    fresh = device(SITE, "pv-a").image
    for op, name, value in ops:
        key = f"103.{name}"
        if op == "set":
            cached.set(key, value)
            slot = fresh.slots[key]
            off = slot.address - fresh.base
            fresh.regs[off : off + slot.size] = slot.encode(value)
        else:
            for image in (cached, fresh):
                off = image.slots[key].address - image.base
                image.regs[off] = int(value)
        assert cached.regs == fresh.regs


@given(
    ptype=st.sampled_from(["uint16", "count", "enum16", "bitfield16", "acc16", "int16"]),
    reg=st.integers(0, 0xFFFF) | st.sampled_from([0, 0x7FFF, 0x8000, 0xFFFF]),
    sf=st.none() | st.integers(-3, 3),
)
def test_one_register_points_decode_as_the_codec_decodes_them(
    ptype: str, reg: int, sf: int | None
) -> None:
    """The inline decoding of one-register points agrees with adapters.sunspec.codec,
    sentinels ("not implemented") included."""
    raw = decode_value(ptype, [reg])
    assert raw is None or isinstance(raw, int)
    want = raw if sf is None or raw is None else scale(raw, sf)
    assert PointSlot(40000, 1, True, ptype, sf).decode([reg]) == want


_DEVICE = st.integers(0, 6)
#: Control points (some of them also published by the device), else a writable slot by index.
_CONTROLS = ["123.WMaxLim_Ena", "123.WMaxLimPct", "123.WMaxLimPct_RvrtTms", "124.StorCtl_Mod",
             "124.OutWRte", "124.InWRte", "124.InOutWRte_RvrtTms", "704.WSetEna", "704.WSet",
             "704.WSetRvrtTms", "el_setpoint_w", "setpoint_revert_s"]  # fmt: skip
_STAGED_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("step"), st.sampled_from([0.5, 1.0, 30.0, 900.0])),
        st.tuples(
            st.just("write"),
            _DEVICE,
            st.sampled_from(_CONTROLS) | st.integers(0, 999),
            st.sampled_from([0, 1, 2, 3, 30, 100, 500]) | st.integers(0, 0xFFFF),
        ),
        st.tuples(st.just("read"), _DEVICE, st.integers(0, 999), st.integers(1, 125)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(_STAGED_OPS)
@example([("step", 1.0), ("read", 0, 0, 10), ("write", 0, "123.WMaxLim_Ena", 1),
          ("read", 0, 500, 125)])  # fmt: skip
@example([("step", 1.0), ("read", 3, 0, 10), ("write", 3, "704.WSetEna", 1),
          ("write", 3, "704.WSetRvrtTms", 60), ("step", 30.0), ("read", 3, 600, 125)])  # fmt: skip
def test_reads_of_a_staged_image_see_what_eager_publishing_shows(
    ops: list[tuple[Any, ...]],
) -> None:
    """A device publishes into a staged image and encodes only what a read touches
    (``SimulatedDevice.refresh``); every read, after any mix of physics steps, control
    writes (taken or refused) and reads of other spans, answers what a device that encodes
    everything at once answers, and so does the whole image at the end. The eager device
    publishes before every read, outside staging, and its registers are read directly.
    (The examples: a write of a point the device also publishes, after a read elsewhere
    left it staged.)"""
    staged = SimFleet(SITE, ManualClock(NOON), step_interval_s=None)
    eager = SimFleet(SITE, ManualClock(NOON), step_interval_s=None)
    for op in ops:
        if op[0] == "step":
            staged.step(op[1])
            eager.step(op[1])
            continue
        lazy, full = staged.devices[op[1]], eager.devices[op[1]]
        image = full.image
        if op[0] == "write":
            keys = sorted(k for k, s in image.slots.items() if s.writable)
            key = keys[op[2] % len(keys)] if keys and isinstance(op[2], int) else op[2]
            if key not in image.slots:  # not a point of this device (the meter takes none)
                continue
            slot = image.slots[key]
            values = [op[3]] * slot.size
            assert lazy.write(slot.address, values) == full.write(slot.address, values)
        else:
            offset = op[2] * len(image.regs) // 1000
            count = min(op[3], len(image.regs) - offset)
            full.publish()  # every point encoded now, nothing staged
            assert lazy.read_regs(offset, count) == image.regs[offset : offset + count]
    for lazy, full in zip(staged.devices, eager.devices, strict=True):
        full.publish()
        assert lazy.refresh().regs == full.image.regs
