"""A simulated grid operator's control box (FNN Steuerbox or ripple-control receiver).

Its relay contacts (§9 EEG feed-in stages 100 / 60 / 30 / 0 %, the §14a EnWG dimming
contact) read as bits at the addresses of the site's ``[[signals.sources]]`` entry, in both
the coils and the discrete inputs tables; holding registers carry a heartbeat counter that
advances once per ``heartbeat_period_s`` of the injected clock (so a manual clock drives it
without a task) and, where configured, the feed-in limit in %. Tests flip the relays
(:meth:`SimControlBox.set_feed_in`, :meth:`SimControlBox.set_dim`), stop the heartbeat
(``heartbeat_stopped``) or write any raw value (:meth:`SimControlBox.set_register`).
:class:`adapters.sim.server.ControlBoxServer` serves it over Modbus TCP.
"""

from __future__ import annotations

from vpp.core.clock import Clock
from vpp.core.site import ControlBoxSource

#: The relay contacts by feed-in stage [%].
STAGES = {100: "feed_in_100", 60: "feed_in_60", 30: "feed_in_30", 0: "feed_in_0"}
CONTACTS = (*STAGES.values(), "dim_14a")


class SimControlBox:
    """The state of one simulated control box; see the module doc."""

    def __init__(
        self, config: ControlBoxSource, clock: Clock, heartbeat_period_s: float = 1.0
    ) -> None:
        self.config = config
        self.id = config.id
        self.clock = clock
        self.heartbeat_period_s = heartbeat_period_s
        self.heartbeat_stopped = False
        self._frozen_heartbeat = 0
        #: Closed contacts by name.
        self.contacts: dict[str, bool] = dict.fromkeys(CONTACTS, False)
        self.contacts["feed_in_100"] = True
        #: Holding registers written by tests beyond the heartbeat and the feed-in register.
        self.registers: dict[int, int] = {}
        if config.feed_in_pct_register is not None:
            self.registers[config.feed_in_pct_register] = 100
        self.requests = 0

    # -- what tests do ----------------------------------------------------------------------

    def set_feed_in(self, pct: int) -> None:
        """Close the contact of stage ``pct`` (100, 60, 30 or 0) and open the others; set
        the feed-in register (if any) to the same value."""
        if pct not in STAGES:
            raise ValueError(f"no relay for {pct} % (one of {sorted(STAGES)})")
        for stage, name in STAGES.items():
            self.contacts[name] = stage == pct
        if self.config.feed_in_pct_register is not None:
            self.registers[self.config.feed_in_pct_register] = pct

    def set_dim(self, on: bool) -> None:
        self.contacts["dim_14a"] = on

    def set_register(self, address: int, value: int) -> None:
        self.registers[address] = value & 0xFFFF

    def stop_heartbeat(self) -> None:
        self._frozen_heartbeat = self.heartbeat()
        self.heartbeat_stopped = True

    def start_heartbeat(self) -> None:
        self.heartbeat_stopped = False

    # -- what the server reads ----------------------------------------------------------------

    def heartbeat(self) -> int:
        if self.heartbeat_stopped:
            return self._frozen_heartbeat
        return int(self.clock.now().timestamp() // self.heartbeat_period_s) % 0x10000

    def bits(self, count: int) -> list[bool]:
        """Bit addresses 0 .. count-1 (open where nothing is wired)."""
        out = [False] * count
        relays = self.config.relays
        for name in CONTACTS:
            address = getattr(relays, name)
            if address is not None and address < count:
                out[address] = self.contacts[name]
        return out

    def holding(self, count: int) -> list[int]:
        """Holding registers 0 .. count-1."""
        out = [0] * count
        for address, value in self.registers.items():
            if address < count:
                out[address] = value
        if self.config.heartbeat_register is not None and self.config.heartbeat_register < count:
            out[self.config.heartbeat_register] = self.heartbeat()
        return out

    def bit_span(self) -> int:
        """Bits the box serves: past its highest wired contact, whole 16-bit words."""
        relays = self.config.relays
        wired = [a for a in (getattr(relays, n) for n in CONTACTS) if a is not None]
        return (max(wired, default=0) // 16 + 1) * 16

    def register_span(self) -> int:
        """Holding registers the box serves: past its highest configured register."""
        used = [*self.registers, self.config.heartbeat_register or 0]
        return max(used, default=0) + 1
