"""Reading a grid operator's control box over the Modbus bridge.

One :meth:`ControlBoxReader.read` fetches the relay contacts (one bit read over the wired
addresses, coils or discrete inputs as configured) and the holding registers with the
heartbeat and the feed-in limit, under the box's circuit breaker. It returns what it read,
raw: what the contacts and values *mean* (and whether they make sense) is decided by
:mod:`vpp.signals.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.bridge import ModbusBridge
from adapters.bridge.errors import CommsError, with_device
from vpp.core.site import ControlBoxSource, PollSettings

#: Relay contact names, as in :class:`vpp.core.site.RelayContacts`.
CONTACTS = ("feed_in_100", "feed_in_60", "feed_in_30", "feed_in_0", "dim_14a")


@dataclass(frozen=True, slots=True)
class BoxReading:
    """One read of a control box: the wired contacts (closed = True), the heartbeat counter
    and the feed-in register (None where not configured)."""

    contacts: dict[str, bool]
    heartbeat: int | None
    feed_in_pct_raw: int | None


class ControlBoxReader:
    """Reads one configured control box through ``bridge``."""

    def __init__(
        self, bridge: ModbusBridge, config: ControlBoxSource, settings: PollSettings | None = None
    ) -> None:
        self.config = config
        self.id = config.id
        self.link = bridge.link(config.id, config.modbus, settings)
        relays = config.relays
        self._wired = {n: a for n in CONTACTS if (a := getattr(relays, n)) is not None}
        regs = [
            a for a in (config.heartbeat_register, config.feed_in_pct_register) if a is not None
        ]
        # One read when the registers are close together, else one each.
        if regs and max(regs) - min(regs) < 16:
            self._reads = [(min(regs), max(regs) - min(regs) + 1)]
        else:
            self._reads = [(a, 1) for a in regs]

    async def read(self) -> BoxReading:
        """Contacts and registers now; a CommsError (or BreakerOpenError) when the box does
        not answer."""
        cfg = self.config
        bridge = self.link.bridge
        table: Literal["coils", "discrete"] = "coils" if cfg.relays.table == "coils" else "discrete"
        async with self.link.attempt():
            contacts: dict[str, bool] = {}
            if self._wired:
                lo = min(self._wired.values())
                count = max(self._wired.values()) - lo + 1
                try:
                    bits = await bridge.read_bits(cfg.modbus, table, lo, count)
                except CommsError as exc:
                    raise with_device(exc, self.id) from None
                contacts = {n: bits[a - lo] for n, a in self._wired.items()}
            values: dict[int, int] = {}
            for start, count in self._reads:
                regs = await self.link.read(start, count)
                values.update({start + i: v for i, v in enumerate(regs)})
        heartbeat = feed_in = None
        if cfg.heartbeat_register is not None:
            heartbeat = values[cfg.heartbeat_register]
        if cfg.feed_in_pct_register is not None:
            feed_in = values[cfg.feed_in_pct_register]
        return BoxReading(contacts, heartbeat, feed_in)
