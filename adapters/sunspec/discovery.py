"""Find a device's SunSpec map, walk its model chain and read models in few requests.

Works over any ``RegisterReader`` (the Modbus bridge plugs in pymodbus; tests use a dict).
A reader raises ``RegisterReadError`` when the device answers with a Modbus exception (for
example "illegal data address"): discovery treats that as "not here" (try the next base,
learn an unreadable register). Any other exception (timeout, connection lost) means the device
is not answering at all and propagates unchanged.

Discovery costs one request per base tried and one per model header; the resulting
``ModelLocation`` list is meant to be cached per device, after which a poll is only
``read_models`` (a handful of requests of up to 125 registers). Some devices (SMA among them)
refuse reads that touch registers they do not implement, even inside a model; such reads are
split until the refused registers are isolated, and those addresses are remembered in the
``unreadable`` set the caller keeps with the locations, so later polls read around them.

The chain is walked with the lengths the device reports (the next header is at the model's
address + 2 + L), never the definition's: a model shorter or longer than its definition
still leads to the next one, and decodes with what fits (``DecodedModel.warnings``).
"""

from __future__ import annotations

import bisect
import functools
import struct
from collections.abc import Collection, Iterable, MutableSet, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from adapters.sunspec.codec import GroupPlan
from adapters.sunspec.compiled import ModelDecoder, compiled_decoder, points_decoder
from adapters.sunspec.decode import DecodedModel, decode_model, model_plan
from adapters.sunspec.models import (
    SunSpecDecodeError,
    SunSpecError,
    UnknownModelError,
    load_model,
)

__all__ = [
    "MAX_MODELS",
    "SUNS_BASES",
    "SUNS_MARKER",
    "ChainChangedError",
    "ChainError",
    "ChainTooLongError",
    "ModelLocation",
    "ModelOverrunError",
    "NoSunSpecError",
    "RegisterReadError",
    "RegisterReader",
    "ScanResult",
    "find_base",
    "plan_reads",
    "read_all_models",
    "read_chain",
    "read_models",
    "scan",
]

SUNS_BASES = (40000, 0, 50000)
SUNS_MARKER = (0x5375, 0x6E53)  # "SunS"
END_ID = 0xFFFF
MAX_MODELS = 200  # guard against garbage chains
ADDRESS_SPACE = 0x10000
MAX_READ = 125  # Modbus limit for one read of holding registers


class RegisterReader(Protocol):
    """Reads holding registers from one device."""

    async def read(self, address: int, count: int) -> list[int]:
        """``count`` (<= 125) registers from ``address``; RegisterReadError if refused."""
        ...


class RegisterReadError(SunSpecError):
    """The device refused a read (Modbus exception response, e.g. illegal data address)."""


class NoSunSpecError(SunSpecError):
    """No "SunS" marker at any candidate base address."""


class ChainError(SunSpecError):
    """The model chain cannot be walked; ``locations`` holds the models found before."""

    def __init__(self, message: str, locations: Sequence[ModelLocation] = ()) -> None:
        super().__init__(message)
        self.locations = list(locations)


class ModelOverrunError(ChainError):
    """A model's length runs past the readable registers or the 16-bit address space."""


class ChainTooLongError(ChainError):
    """More models than MAX_MODELS: the chain is garbage or has no end marker."""


class ChainChangedError(SunSpecError):
    """A cached model header no longer matches the device: rescan it."""


@dataclass(frozen=True, slots=True)
class ModelLocation:
    """Where a model sits: ``address`` of its ID register and its length L [registers]."""

    id: int
    address: int
    length: int

    @property
    def end(self) -> int:
        """First register after the model's body."""
        return self.address + 2 + self.length


@dataclass(slots=True)
class ScanResult:
    """A full scan of one device: base, chain, decoded models (chain order), learned holes."""

    base: int
    locations: list[ModelLocation]
    models: list[DecodedModel]
    unreadable: set[int] = field(default_factory=set)

    def model(self, model_id: int) -> DecodedModel:
        """The first model with ``model_id`` (KeyError if the device has none)."""
        for model in self.models:
            if model.id == model_id:
                return model
        raise KeyError(f"device at base {self.base} has no model {model_id}")


async def _read(reader: RegisterReader, address: int, count: int) -> list[int]:
    regs = await reader.read(address, count)
    if len(regs) != count:
        raise RegisterReadError(f"read of {count} registers at {address} returned {len(regs)}")
    return regs


async def find_base(reader: RegisterReader, base: int | None = None) -> int:
    """Address of the "SunS" marker: ``base`` first when given, then 40000, 0, 50000."""
    candidates = [base] if base is not None else []
    candidates += [b for b in SUNS_BASES if b != base]
    seen = []
    for address in candidates:
        try:
            regs = await _read(reader, address, 2)
        except RegisterReadError as exc:
            seen.append(f"{address}: read refused ({exc})")
            continue
        if tuple(regs) == SUNS_MARKER:
            return address
        seen.append(f"{address}: found {regs[0]:#06x} {regs[1]:#06x}")
    raise NoSunSpecError("no SunSpec 'SunS' marker; " + "; ".join(seen))


async def read_chain(reader: RegisterReader, base: int) -> list[ModelLocation]:
    """Walk the model chain after the marker at ``base`` up to the end marker (ID 0xFFFF)."""
    locations: list[ModelLocation] = []
    address = base + 2
    while True:
        if len(locations) >= MAX_MODELS:
            raise ChainTooLongError(
                f"device at base {base}: more than {MAX_MODELS} models, no end marker by "
                f"{address}", locations
            )  # fmt: skip
        header = await _read_header(reader, base, address, locations)
        if header[0] == END_ID:
            return locations
        model_id, length = header
        location = ModelLocation(model_id, address, length)
        if location.end > ADDRESS_SPACE:
            raise ModelOverrunError(
                f"device at base {base}: model {model_id} at {address} with L={length} "
                f"runs past the last register 65535", locations
            )  # fmt: skip
        locations.append(location)
        address = location.end


async def _read_header(
    reader: RegisterReader, base: int, address: int, locations: list[ModelLocation]
) -> list[int]:
    if address + 1 >= ADDRESS_SPACE:
        raise ModelOverrunError(
            f"device at base {base}: chain reaches the end of the address space at {address} "
            "without an end marker", locations
        )  # fmt: skip
    try:
        return await _read(reader, address, 2)
    except RegisterReadError as exc:
        # Some devices do not implement the L register of the end marker: read ID alone.
        try:
            (model_id,) = await _read(reader, address, 1)
        except RegisterReadError:
            model_id = None
        if model_id == END_ID:
            return [END_ID, 0]
        where = (
            f"after model {locations[-1].id} at {locations[-1].address} "
            f"(L={locations[-1].length}): its length overruns the readable registers "
            "or the end marker is missing"
            if locations
            else "right after the SunS marker"
        )
        raise ModelOverrunError(
            f"device at base {base}: cannot read a model header at {address} {where} ({exc})",
            locations,
        ) from exc


Span = tuple[int, int]  # [start, stop) register addresses


def plan_reads(
    locations: Sequence[ModelLocation],
    max_count: int = MAX_READ,
    *,
    within: Sequence[ModelLocation] | None = None,
    unreadable: Collection[int] = (),
) -> list[tuple[int, int]]:
    """(address, count) requests covering the headers and bodies of ``locations``.

    Greedy from the lowest uncovered register, each request as long as allowed, which gives
    the fewest requests: adjacent models share requests, and the registers of models in
    ``within`` (the whole chain) may be read across to bridge gaps between wanted models.
    Requests never include ``unreadable`` addresses and, where the layout is known without
    reading values, do not end inside a multi-register point (devices may refuse that).
    The plan depends only on its arguments: cache it with the locations.
    """
    needed = _subtract(_merge((loc.address, loc.end) for loc in locations), unreadable)
    chain = [*(within or ()), *locations]
    readable = _subtract(_merge((loc.address, loc.end) for loc in chain), unreadable)
    starts = [span[0] for span in readable]
    hazards: set[int] = set()
    for loc in chain:
        hazards.update(loc.address + off for off in _split_hazards(loc.id, loc.length))
    requests: list[tuple[int, int]] = []
    i, cur = 0, needed[0][0] if needed else 0
    while i < len(needed):
        cur = max(cur, needed[i][0])
        if cur >= needed[i][1]:
            i += 1
            continue
        run_end = readable[bisect.bisect_right(starts, cur) - 1][1]
        end = min(cur + max_count, run_end)
        while end < run_end and end in hazards and end - 1 > cur:
            end -= 1
        while i + 1 < len(needed) and needed[i + 1][0] < end:
            i += 1
        requests.append((cur, min(end, needed[i][1]) - cur))
        cur = end
    return requests


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        elif stop > start:
            merged.append((start, stop))
    return merged


def _subtract(spans: list[Span], holes: Collection[int]) -> list[Span]:
    if not holes:
        return spans
    result = []
    for start, stop in spans:
        cur = start
        for hole in sorted(h for h in holes if start <= h < stop):
            if hole > cur:
                result.append((cur, hole))
            cur = hole + 1
        if cur < stop:
            result.append((cur, stop))
    return result


@functools.cache
def _split_hazards(model_id: int, length: int) -> frozenset[int]:
    """Offsets from a model's ID register where a read boundary would cut a point.

    Only the part of the layout known from the definition and L is covered (it stops at the
    first group counted by a point value, and at L: beyond it are the next model's registers).
    """
    try:
        plan = model_plan(load_model(model_id))
    except UnknownModelError:
        return frozenset()
    hazards: set[int] = set()
    _walk_hazards(plan, 0, length + 2, hazards)
    return frozenset(h for h in hazards if h < length + 2)


def _walk_hazards(plan: GroupPlan, off: int, end: int, hazards: set[int]) -> int | None:
    for _name, start, size in plan.spans:
        hazards.update(range(off + start + 1, off + start + size))
    pos: int | None = off + plan.size
    for child in plan.children:
        count = child.gdef.count
        if pos is None or isinstance(count, str):
            return None
        if count == 0 and child.static_size:
            count = max(0, (end - pos) // child.static_size)
        for _ in range(1 if count is None else count):
            pos = _walk_hazards(child, pos, end, hazards)
            if pos is None:
                return None
    return pos


@functools.lru_cache(maxsize=4096)
def _cached_plan(
    wanted: tuple[ModelLocation, ...],
    within: tuple[ModelLocation, ...],
    unreadable: frozenset[int],
) -> tuple[tuple[int, int], ...]:
    """:func:`plan_reads` once per layout: devices of one make share their chain, so a fleet
    of thousands plans its reads a handful of times instead of at every poll."""
    return tuple(plan_reads(wanted, within=within, unreadable=unreadable))


async def read_all_models(
    reader: RegisterReader,
    locations: Sequence[ModelLocation],
    ids: Collection[int] | None = None,
    *,
    unreadable: MutableSet[int] | None = None,
    within: Sequence[ModelLocation] | None = None,
) -> list[DecodedModel]:
    """Read and decode the models of ``locations`` (all, or those in ``ids``), chain order.

    Reads are planned by plan_reads (fewest requests of <= 125 registers, avoiding the
    addresses in ``unreadable``); addresses found unreadable on the way are added to it.
    ``within`` is the whole chain when ``locations`` is a part of it (reads may bridge gaps).
    A model whose L differs from its definition decodes what fits and says so in
    ``warnings``. A model that cannot be decoded (unknown id, register values out of range)
    comes back with ``values`` empty, its raw registers and the reason in ``errors``; the
    others are unaffected.
    Raises ChainChangedError if a model header no longer matches ``locations``.
    """
    holes = unreadable if unreadable is not None else set()
    wanted = [loc for loc in locations if ids is None or loc.id in ids]
    plan = _cached_plan(tuple(wanted), tuple(within or locations), frozenset(holes))
    return await read_planned(reader, wanted, plan, holes)


async def read_planned(
    reader: RegisterReader,
    wanted: Sequence[ModelLocation],
    plan: Iterable[tuple[int, int]],
    unreadable: MutableSet[int],
) -> list[DecodedModel]:
    """The models ``wanted`` read with the requests ``plan`` (from :func:`plan_reads` for
    them and ``unreadable``), decoded as :func:`read_all_models` decodes them; addresses
    found unreadable on the way are added to ``unreadable`` (plan again after that)."""
    image: Image = []
    for address, count in plan:
        # _read_span's first read written out: a coroutine frame less per request.
        try:
            regs = await reader.read(address, count)
            if len(regs) != count:
                raise RegisterReadError(
                    f"read of {count} registers at {address} returned {len(regs)}"
                )
        except RegisterReadError:
            await _split_span(reader, address, count, image, unreadable)
            continue
        image.append((address, regs))
    return [_decode_location(loc, image) for loc in wanted]


async def read_models(
    reader: RegisterReader,
    locations: Sequence[ModelLocation],
    ids: Collection[int] | None = None,
    *,
    unreadable: MutableSet[int] | None = None,
) -> dict[int, DecodedModel]:
    """Like read_all_models, by model id; of a model present twice only the first is read."""
    first: dict[int, ModelLocation] = {}
    for loc in locations:
        first.setdefault(loc.id, loc)
    wanted = [loc for loc in first.values() if ids is None or loc.id in ids]
    models = await read_all_models(reader, wanted, unreadable=unreadable, within=locations)
    return {model.id: model for model in models}


#: Registers read in one poll: (first address, registers) per request, in the order read.
Image = list[tuple[int, Sequence[int]]]


def _registers(image: Image, start: int, end: int) -> list[int | None]:
    """Registers ``start .. end - 1`` of ``image``, None where none was read (a later read
    of a register wins)."""
    for address, regs in image:  # one request covers a whole model: a slice
        if address <= start and end <= address + len(regs):
            return list(regs[start - address : end - address])
    out: list[int | None] = [None] * (end - start)
    for address, regs in image:
        lo, hi = max(start, address), min(end, address + len(regs))
        if lo < hi:
            out[lo - start : hi - start] = regs[lo - address : hi - address]
    return out


async def _read_span(
    reader: RegisterReader, address: int, count: int, image: Image, holes: MutableSet[int]
) -> None:
    """Read a span into ``image``; on refusal split it to isolate the refused registers."""
    try:
        regs = await reader.read(address, count)  # what _read does, one frame less
        if len(regs) != count:
            raise RegisterReadError(f"read of {count} registers at {address} returned {len(regs)}")
    except RegisterReadError:
        await _split_span(reader, address, count, image, holes)
        return
    image.append((address, regs))


async def _split_span(
    reader: RegisterReader, address: int, count: int, image: Image, holes: MutableSet[int]
) -> None:
    """A refused span: one register is a hole, a longer span is read again in halves."""
    if count == 1:
        holes.add(address)
        return
    half = count // 2
    await _read_span(reader, address, half, image, holes)
    await _read_span(reader, address + half, count - half, image, holes)


def decode_span(
    loc: ModelLocation, regs: Sequence[int], points: frozenset[str] | None = None
) -> DecodedModel:
    """The model at ``loc`` from its registers ``loc.address .. loc.end - 1`` (header
    included), as :func:`read_all_models` decodes it; ChainChangedError if the header no
    longer matches.

    ``points``: only these points are needed (a write's read-back): where the layout has a
    generated decoder of those points (``compiled.points_decoder``) the model comes back
    with only them in ``values``, each as the whole model would have it; else whole."""
    if len(regs) != loc.end - loc.address:
        raise ValueError(f"model {loc.id}: {len(regs)} registers for {loc.end - loc.address}")
    image = [(loc.address, regs)]
    if points is not None:
        decoder = points_decoder(loc.id, loc.length, points)
        if decoder is not None:
            fast = _decode_compiled(decoder, loc, image)
            if fast is not None:
                return fast
    return _decode_location(loc, image)


def _decode_location(loc: ModelLocation, image: Image) -> DecodedModel:
    decoder = compiled_decoder(loc.id, loc.length)
    if decoder is not None:
        fast = _decode_compiled(decoder, loc, image)
        if fast is not None:
            return fast
    registers = _registers(image, loc.address, loc.end)
    header = (registers[0], registers[1])
    if header != (loc.id, loc.length):
        raise ChainChangedError(
            f"model {loc.id} expected at {loc.address} with L={loc.length}, device now has "
            f"header {header}: the register map changed, rescan the device"
        )
    body = registers[2:]
    try:
        model = load_model(loc.id)
    except UnknownModelError as exc:
        return _undecoded(loc, f"model_{loc.id}", body, exc)
    try:
        return decode_model(model, loc.address, body)
    except SunSpecDecodeError as exc:
        return _undecoded(loc, model.name, body, exc)


def _decode_compiled(
    decoder: ModelDecoder, loc: ModelLocation, image: Image
) -> DecodedModel | None:
    """The model at ``loc`` by its generated decoder, from the bytes of the one request
    that covers it; None when ``decode_model`` has to do it (see ``compiled``)."""
    for address, regs in image:
        if address <= loc.address and loc.end <= address + len(regs):
            start = loc.address - address
            data = getattr(regs, "data", None)  # the answer's bytes, as the bridge keeps them
            if data is None:
                size = loc.end - loc.address
                try:
                    data = _words(size).pack(*regs[start : start + size])
                except struct.error:
                    return None  # values outside 0..65535: decode_model says so
                start = 0
            return decoder(data, 2 * start, loc.address)
    return None


@functools.lru_cache(maxsize=128)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f">{count}H")


def _undecoded(
    loc: ModelLocation, name: str, body: list[int | None], error: SunSpecError
) -> DecodedModel:
    raw = [0 if r is None else r for r in body]
    return DecodedModel(loc.id, name, loc.address, loc.length, {}, {}, raw, [error])


async def scan(reader: RegisterReader, base: int | None = None) -> ScanResult:
    """Discover the base, walk the chain and decode every model of one device."""
    found = await find_base(reader, base)
    locations = await read_chain(reader, found)
    holes: set[int] = set()
    models = await read_all_models(reader, locations, unreadable=holes)
    return ScanResult(found, locations, models, holes)
