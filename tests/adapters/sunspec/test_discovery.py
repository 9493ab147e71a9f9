"""Discovery, chain walking, read planning and the faults of bad devices."""

from __future__ import annotations

import pytest

from adapters.sunspec.decode import encode_model
from adapters.sunspec.discovery import (
    MAX_MODELS,
    ChainChangedError,
    ChainTooLongError,
    ModelLocation,
    ModelOverrunError,
    NoSunSpecError,
    RegisterReadError,
    find_base,
    plan_reads,
    read_chain,
    read_models,
    scan,
)
from adapters.sunspec.models import SunSpecError, UnknownModelError, load_model
from tests.adapters.sunspec.helpers import END, SUNS, DictReader, device_image

COMMON = encode_model(load_model(1), {"Mn": "SunSpecTest", "SN": "42"})
INVERTER = encode_model(load_model(101), {"W": 1500, "W_SF": 0, "St": 4})
NAMEPLATE = encode_model(load_model(120), {"WRtg": 5000, "WRtg_SF": 0, "DERTyp": 4})


def test_device_image_layout() -> None:
    regs = device_image(COMMON, INVERTER)
    assert regs[:4] == [*SUNS, 1, 66] and regs[-2:] == END


@pytest.mark.parametrize("base", [40000, 0, 50000])
async def test_finds_marker_at_standard_bases(base: int) -> None:
    reader = DictReader.image(base, device_image(COMMON, INVERTER))
    assert await find_base(reader) == base
    result = await scan(reader)
    assert [m.id for m in result.models] == [1, 101]
    assert result.model(101).values["W"] == 1500 and result.model(1).values["SN"] == "42"


async def test_configured_base_is_tried_first() -> None:
    reader = DictReader.image(1000, device_image(COMMON))
    reader.registers.update({40000 + i: r for i, r in enumerate(device_image(INVERTER))})
    assert await find_base(reader, base=1000) == 1000
    assert reader.requests[0] == (1000, 2)
    assert await find_base(reader) == 40000


async def test_no_marker_anywhere() -> None:
    with pytest.raises(NoSunSpecError, match=r"40000: read refused.*0: read.*50000: read"):
        await find_base(DictReader({}))


async def test_wrong_marker_is_reported_with_what_was_found() -> None:
    reader = DictReader({40000: 0x5375, 40001: 0x6E54, 0: 0, 1: 0})
    with pytest.raises(NoSunSpecError, match=r"40000: found 0x5375 0x6e54; 0: found 0x0000"):
        await find_base(reader)


async def test_other_reader_failures_propagate() -> None:
    class DeadDevice:
        async def read(self, address: int, count: int) -> list[int]:
            raise TimeoutError("no response")

    with pytest.raises(TimeoutError):
        await find_base(DeadDevice())


async def test_chain_with_end_marker_without_length_register() -> None:
    regs = device_image(COMMON)[:-1]  # the device does not serve L of the end marker
    locations = await read_chain(DictReader.image(40000, regs), 40000)
    assert locations == [ModelLocation(1, 40002, 66)]


async def test_model_length_overrunning_the_device() -> None:
    inverter = [101, 80, *INVERTER[2:]]  # L claims 80 registers, the device has 50
    reader = DictReader.image(40000, [*SUNS, *COMMON, *inverter])
    with pytest.raises(ModelOverrunError, match=r"after model 101 at 40070 \(L=80\)") as info:
        await read_chain(reader, 40000)
    assert [loc.id for loc in info.value.locations] == [1, 101]
    assert "base 40000" in str(info.value)


async def test_model_length_past_the_address_space() -> None:
    reader = DictReader.image(65000, [*SUNS, 1, 1000])
    with pytest.raises(ModelOverrunError, match="past the last register 65535"):
        await read_chain(reader, 65000)


async def test_chain_longer_than_the_guard() -> None:
    regs = [*SUNS] + [64999, 0] * (MAX_MODELS + 5)  # endless empty vendor models
    with pytest.raises(ChainTooLongError, match=f"more than {MAX_MODELS} models"):
        await read_chain(DictReader.image(40000, regs), 40000)


async def test_unknown_models_are_kept_raw_misfit_lengths_decode_what_fits() -> None:
    vendor = [64999, 3, 7, 8, 9]
    short_inverter = [101, 49, *INVERTER[2:-1]]  # one register short: EvtVnd4 is cut
    reader = DictReader.image(40000, device_image(COMMON, vendor, short_inverter, NAMEPLATE))
    result = await scan(reader)
    by_id = {m.id: m for m in result.models}
    assert not by_id[64999].decoded and by_id[64999].raw == [7, 8, 9]
    assert isinstance(by_id[64999].errors[0], UnknownModelError)
    inverter = by_id[101]
    assert inverter.decoded and inverter.errors == [] and inverter.length == 49
    assert (inverter.values["W"], inverter.values["St"]) == (1500, 4)
    assert inverter.values["EvtVnd4"] is None and inverter.missing == {"EvtVnd4"}
    assert "L=49 is shorter than the definition (50 registers)" in str(inverter.warnings[0])
    assert by_id[120].values["WRtg"] == 5000 and by_id[1].decoded


async def test_scale_factor_out_of_range_does_not_break_the_scan() -> None:
    inverter = list(INVERTER)
    inverter[load_model(101).group.point("W_SF").offset] = 0x0014  # W_SF = 20
    result = await scan(DictReader.image(40000, device_image(COMMON, inverter)))
    model = result.model(101)
    assert model.values["W"] is None and model.values["St"] == 4
    assert "W_SF=20 outside -10..10" in str(model.errors[0])


async def test_changed_register_map_is_detected() -> None:
    reader = DictReader.image(40000, device_image(COMMON, INVERTER))
    locations = await read_chain(reader, 40000)
    reader.registers[40070] = 103  # firmware update moved things around
    with pytest.raises(ChainChangedError, match="rescan"):
        await read_models(reader, locations)


async def test_read_models_selected_ids_and_duplicates() -> None:
    reader = DictReader.image(40000, device_image(COMMON, INVERTER, NAMEPLATE, INVERTER))
    locations = await read_chain(reader, 40000)
    reader.requests.clear()
    models = await read_models(reader, locations, ids={101})
    assert list(models) == [101] and models[101].address == 40070  # the first instance
    assert reader.requests == [(40070, 52)]


def test_plan_combines_models_and_respects_the_limit() -> None:
    locations = [ModelLocation(1, 40002, 66), ModelLocation(101, 40070, 50),
                 ModelLocation(120, 40122, 26)]  # fmt: skip
    plan = plan_reads(locations)
    assert all(count <= 125 for _, count in plan)
    assert plan[0][0] == 40002 and sum(c for _, c in plan) == 40150 - 40002
    assert len(plan) == 2  # 148 registers: the minimum
    # Never split a 32-bit point: model 101's WH sits at offsets 24-25, EvtVnd3 at 48-49.
    assert plan_reads([ModelLocation(101, 40000, 50)], max_count=25) == [
        (40000, 24), (40024, 24), (40048, 4),
    ]  # fmt: skip


def test_plan_reads_across_unwanted_models_and_around_holes() -> None:
    chain = [ModelLocation(1, 40002, 66), ModelLocation(11, 40070, 13),
             ModelLocation(101, 40085, 50)]  # fmt: skip
    wanted = [chain[0], chain[2]]
    assert plan_reads(wanted) == [(40002, 68), (40085, 52)]
    assert plan_reads(wanted, within=chain) == [(40002, 125), (40127, 10)]
    assert plan_reads(wanted, within=chain, unreadable={40100}) == [
        (40002, 98), (40101, 36),
    ]  # fmt: skip


def test_every_error_is_a_sunspec_error() -> None:
    for error in (NoSunSpecError, ModelOverrunError, ChainTooLongError, RegisterReadError,
                  ChainChangedError, UnknownModelError):  # fmt: skip
        assert issubclass(error, SunSpecError)
